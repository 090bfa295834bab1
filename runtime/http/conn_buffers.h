/* conn_buffers.h — carry and write-buffer management for iox_conn
 * (internal to the runtime). */
#ifndef IOX_CONN_BUFFERS_H
#define IOX_CONN_BUFFERS_H
#include <ioxide/http_conn.h>
#include <stddef.h>

/* Size of the blocks kept on the per-reactor free lists. */
#define IOX_BLOCK 16384u

/* Append up to n bytes to the carry, growing it up to `max` bytes.
 * Returns the bytes appended (less than n when the cap is reached). */
size_t iox_carry_append(struct iox_conn *c, const char *p, size_t n, size_t max);
/* Drop the first `used` bytes of the carry. */
void iox_carry_consume(struct iox_conn *c, size_t used);
/* Give an empty carry's block back to the reactor. */
void iox_carry_release(struct iox_conn *c);

/* Room for n more bytes at out + wlen, growing (moving owed bytes to a new
 * buffer) while keeping the total owed under `max`. NULL when it cannot. */
char *iox_out_reserve(struct iox_conn *c, size_t n, size_t max);
/* Return the write buffer to the reactor when nothing is owed or in flight,
 * and free a retired buffer once its send is done. */
void iox_out_release(struct iox_conn *c);
/* A send completed (in full, short or failed): the old buffer it was reading
 * (retired when the buffer grew under it) is no longer read; free it. */
void iox_out_release_retired(struct iox_conn *c);
/* Room for n more bytes in slot s's side buffer (a response waiting behind
 * an earlier one), growing it while the connection's total owed bytes
 * (write buffer + side buffers) stay under `max`. NULL when it cannot. */
char *iox_side_reserve(struct iox_conn *c, struct iox_rslot *s, size_t n, size_t max);
/* Give slot s's side buffer back (its bytes are no longer counted). */
void iox_side_free(struct iox_conn *c, struct iox_rslot *s);
/* Free the side buffers of every open request (connection released). */
void iox_slots_release(struct iox_conn *c);
/* Free every block on a reactor free list. */
void iox_block_list_free(void **list);

#endif
