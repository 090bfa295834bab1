/* conn_buffers.h — carry and write-buffer management for iox_conn
 * (internal to the runtime). */
#ifndef IOX_CONN_BUFFERS_H
#define IOX_CONN_BUFFERS_H
#include <ioxide/http_conn.h>
#include <ioxide/http_server.h>
#include <stddef.h>

/* The carry and the write buffer are the stream core's (stream_core.h);
 * these name them for a connection. */
static inline size_t iox_carry_append(struct iox_conn *c, const char *p, size_t n, size_t max)
{
    return iox_sock_carry_append(&c->hs->sh, &c->sk, p, n, max);
}
static inline void iox_carry_consume(struct iox_conn *c, size_t used)
{
    iox_sock_carry_consume(&c->hs->sh, &c->sk, used);
}
static inline void iox_carry_release(struct iox_conn *c)
{
    iox_sock_carry_release(&c->hs->sh, &c->sk);
}
static inline char *iox_out_reserve(struct iox_conn *c, size_t n, size_t max)
{
    /* The common case, inline: the write buffer has the room already (every
     * answer of a small pipelined batch). iox_sock_out_reserve starts with
     * the same test; it grows or gets the buffer otherwise. */
    if (c->sk.out && c->sk.wlen + n <= c->sk.wcap) return c->sk.out + c->sk.wlen;
    return iox_sock_out_reserve(&c->hs->sh, &c->sk, n, max);
}
static inline void iox_out_release(struct iox_conn *c)
{
    iox_sock_out_release(&c->hs->sh, &c->sk);
}

/* Room for n more bytes in slot s's side buffer (a response waiting behind
 * an earlier one), growing it while the connection's total owed bytes
 * (write buffer + side buffers) stay under `max`. NULL when it cannot. */
char *iox_side_reserve(struct iox_conn *c, struct iox_rslot *s, size_t n, size_t max);
/* Give slot s's side buffer back (its bytes are no longer counted). */
void iox_side_free(struct iox_conn *c, struct iox_rslot *s);
/* Free the side buffers of every open request (connection released). */
void iox_slots_release(struct iox_conn *c);

#endif
