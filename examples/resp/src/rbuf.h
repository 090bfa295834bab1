/* rbuf.h — a growable byte buffer and the RESP2 reply encoders.
 *
 * Replies are built in an rbuf (a reactor's scratch for local commands, a
 * hop message's reply buffer for a command run on another reactor), then
 * handed to the stream. The buffer keeps its capacity across uses: after
 * warm-up no reply allocates. Out of memory sets `oom` and drops bytes; the
 * caller answers an error instead. */
#ifndef RESP_RBUF_H
#define RESP_RBUF_H
#include <stddef.h>
#include <stdint.h>

struct rbuf {
    char *p;
    size_t len, cap;
    int oom;
};

/* Make room for n more bytes: the pointer to write them at, or NULL (oom). */
char *rb_room(struct rbuf *b, size_t n);
void rb_raw(struct rbuf *b, const void *p, size_t n);
void rb_free(struct rbuf *b);
static inline void rb_reset(struct rbuf *b) { b->len = 0; b->oom = 0; }

/* "+s\r\n" */
void rb_simple(struct rbuf *b, const char *s);
/* "-s\r\n"; s is the whole error ("ERR syntax error"). */
void rb_error(struct rbuf *b, const char *s);
/* printf-formatted error line; CR and LF in the result become spaces (as
 * redis-server does, so an argument cannot break the framing). */
void rb_errorf(struct rbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ":n\r\n" */
void rb_int(struct rbuf *b, long long n);
/* "$len\r\n<bytes>\r\n" */
void rb_bulk(struct rbuf *b, const void *p, size_t n);
void rb_bulk_str(struct rbuf *b, const char *s);
/* "$-1\r\n" */
void rb_nil(struct rbuf *b);
/* "*n\r\n" */
void rb_array(struct rbuf *b, long long n);

/* Length of the one RESP2 reply at p[0..n): > 0, 0 when incomplete, -1
 * when malformed. (The client's framing and the MGET gather use it.) */
long resp_reply_len(const char *p, size_t n);

#endif
