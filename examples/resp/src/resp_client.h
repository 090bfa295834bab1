/* resp_client.h — a small Redis (RESP2) client on ioxide's client kit
 * (ioxide/stream_client.h): one pool per reactor, pipelined, reconnecting.
 *
 * Everything runs on the reactor thread that opened the client; nothing is
 * locked. A command is encoded as a multibulk request into the client's
 * scratch and handed to the pool, which copies it; its reply comes back to
 * the callback as the raw RESP2 bytes of exactly one reply (use the
 * resp_client_reply_* helpers to read it). New connections say PING first
 * (the handshake: a peer that does not answer +PONG is not a Redis server
 * and is retried after the backoff).
 *
 * Order: replies match requests FIFO per connection, and a request goes to
 * the connection with the fewest in flight. Requests sent without waiting
 * for each other's replies therefore run in the order sent only with
 * conns = 1; with more connections, wait for a reply before sending what
 * depends on it (SET, then GET the same key). */
#ifndef RESP_CLIENT_H
#define RESP_CLIENT_H
#include <ioxide/reactor.h>
#include <ioxide/stream_client.h>
#include <stddef.h>
#include <stdint.h>

struct resp_client;

struct resp_client_config {
    const char *host;          /* "127.0.0.1" */
    uint16_t port;             /* 6379 */
    unsigned conns;            /* pool size (2) */
    unsigned max_inflight;     /* pipelined requests per connection (128) */
    uint32_t down_fail_ms;     /* fail fast after being down this long (1000) */
};

/* Callback: status 0 and reply[0, len) (one RESP2 reply, maybe an error
 * reply "-ERR ..."), or status < 0 as iox_client_cb (-ECONNRESET,
 * -ENOTCONN, -ECANCELED, -EPROTO). */
typedef void (*resp_client_cb)(void *arg, int status, const char *reply, size_t len);

/* Open on reactor r (its thread). 0 and *out, or -errno with why. */
int resp_client_open(struct iox_reactor *r, const struct resp_client_config *cfg, struct resp_client **out,
                     char *why, size_t why_len);
/* Send argv[0..argc) (lens[i] bytes each; lens NULL: C strings). 0 when
 * accepted (cb is called once), or the -errno of iox_client_request
 * (-EAGAIN full, -ENOTCONN down, -ESHUTDOWN, -ENOMEM); cb is then never
 * called. */
int resp_client_command(struct resp_client *c, unsigned argc, const char *const *argv, const size_t *lens,
                        resp_client_cb cb, void *arg);
/* The pool underneath (stats, connections up, last error). */
struct iox_client_pool *resp_client_pool(struct resp_client *c);
/* Stop: every waiting request fails with -ECANCELED. Then free once
 * iox_client_pool_ops() is 0 (or let resp_client_close wait). */
void resp_client_stop(struct resp_client *c);
void resp_client_close(struct resp_client *c);

/* Reading a reply. Type: '+', '-', ':', '$', '*'. */
static inline char resp_client_reply_type(const char *r, size_t n) { return n ? r[0] : 0; }
/* ':' reply → 1 and *v. */
int resp_client_reply_int(const char *r, size_t n, long long *v);
/* A bulk reply: 1 with *p and *len (NULL and 0 for nil); a simple or error reply: its text. */
int resp_client_reply_str(const char *r, size_t n, const char **p, size_t *len);

#endif
