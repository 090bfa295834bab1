/* ioxide/stream_client.h — the client kit: a per-reactor pool of outbound
 * stream connections to one host:port, for request/reply protocols whose
 * replies come back in request order (RESP, memcached text, line
 * protocols, ...).
 *
 * Model
 *  - One pool per reactor and peer, opened on the reactor thread (on_start)
 *    and used only there: no locks, nothing shared. The address is an IPv4
 *    or IPv6 literal, or a name resolved ONCE when the pool opens (never on
 *    the hot path).
 *  - Each connection is the generated machine stream_client
 *    (spec/machines/stream_client.toml): socket and connect on the ring,
 *    a connect timeout, an optional handshake (bytes sent first on every
 *    new connection, e.g. AUTH / HELLO, whose replies the handshake hook
 *    checks), then up. A failed connect or a lost connection reconnects
 *    after an exponential backoff (backoff_min_ms doubling to
 *    backoff_max_ms, reset by a successful handshake).
 *  - Replies are framed by the protocol's reply_len hook and matched to
 *    requests FIFO per connection. Requests are pipelined: many in flight
 *    per connection (max_inflight); a new request goes to the up connection
 *    with the fewest in flight; requests of one loop turn leave in one
 *    send per connection, at the end of the turn (the pool kind's flush).
 *  - No connection up: a request waits in a bounded queue (max_queued;
 *    full → -EAGAIN at once), and is sent as soon as one comes up — unless
 *    the pool has been down for longer than down_fail_ms, then it fails at
 *    once with -ENOTCONN (a service in front answers "unavailable" instead
 *    of waiting). When the pool goes down-for-too-long, the queued requests
 *    fail too.
 *  - Every accepted request gets its callback exactly once: the reply, or
 *    a failure (a lost connection fails the requests it carried with
 *    -ECONNRESET — they may or may not have been executed by the peer; the
 *    pool's close fails everything with -ECANCELED). Never lost silently,
 *    never answered twice. Requests are not retried by the kit.
 *  - Hot path: no malloc (request slots allocated at open; buffers grow
 *    only past the largest request/reply seen), no locks, no syscalls
 *    besides the ring's.
 */
#ifndef IOX_STREAM_CLIENT_H
#define IOX_STREAM_CLIENT_H
#include <ioxide/reactor.h>
#include <stddef.h>
#include <stdint.h>

struct iox_client_pool;   /* opaque */

/* The protocol's framing and handshake. Hooks are called on the pool's
 * reactor thread with cfg->proto_ctx; the bytes they see are valid only
 * during the call. */
struct iox_client_proto {
    /* Is there one complete reply at the start of p[0, n)? Return its
     * length (1..n), 0 when more bytes are needed, < 0 for a protocol error
     * (the connection is dropped: its requests fail with -EPROTO).
     * Required. */
    long (*reply_len)(const char *p, size_t n, void *ctx);
    /* Optional: write the handshake for a new connection into buf (cap
     * bytes) and return its length (0: none; > cap or < 0: the connection
     * fails). *nreplies gets how many replies the handshake expects. */
    long (*handshake)(char *buf, size_t cap, unsigned *nreplies, void *ctx);
    /* Optional: check the i-th (0-based) handshake reply; 0 accepts, < 0
     * fails the connection (it reconnects after the backoff; the error is
     * reported by iox_client_pool_last_error). Without it every reply is
     * accepted. */
    int (*handshake_reply)(const char *reply, size_t len, unsigned i, void *ctx);
};

/* Zero fields get the defaults in brackets. */
struct iox_client_config {
    const char *host;          /* IPv4/IPv6 literal or a name (resolved at open) ("127.0.0.1") */
    uint16_t port;             /* required */
    unsigned conns;            /* connections in the pool (2) */
    unsigned max_inflight;     /* requests in flight per connection (128) */
    unsigned max_queued;       /* requests waiting while none can take them (1024) */
    uint32_t connect_timeout_ms;  /* socket+connect+handshake must finish within (2000) */
    uint32_t backoff_min_ms;   /* first reconnect delay (50) */
    uint32_t backoff_max_ms;   /* reconnect delay cap (2000) */
    uint32_t down_fail_ms;     /* down longer than this: requests fail fast (1000; UINT32_MAX: never) */
    const struct iox_client_proto *proto;   /* required */
    void *proto_ctx;
};

/* A request's outcome, on the pool's reactor thread, from completion
 * processing or the end-of-turn flush — never from inside
 * iox_client_request. status 0: reply[0, len) is the complete reply as
 * reply_len framed it, valid only during the call. status < 0 (reply NULL,
 * len 0):
 *   -ECONNRESET  the connection carrying it was lost (peer closed, reset,
 *                send failed): it may or may not have been executed
 *   -EPROTO      reply_len rejected the bytes: the connection was dropped
 *   -ENOTCONN    it waited in the queue and the pool stayed down past
 *                down_fail_ms
 *   -ECANCELED   the pool was stopped or closed
 * The callback may issue new requests. */
typedef void (*iox_client_cb)(void *arg, int status, const char *reply, size_t len);

/* Open a pool on reactor r, on r's thread (on_start, or a test): resolve
 * the address, allocate everything, register the pool's kind, start
 * connecting every connection on the ring (without waiting: a peer that is
 * down is not an error here, the connections keep retrying). Returns 0 and
 * *out; -EINVAL with why (no proto/reply_len/port, an address that does
 * not resolve); -ENOMEM. */
int iox_client_pool_open(struct iox_reactor *r, const struct iox_client_config *cfg,
                         struct iox_client_pool **out, char *why, size_t why_len);

/* Send one request of the protocol (`len` bytes that expect exactly one
 * reply) and call cb(arg, ...) once with its reply. The bytes are copied
 * before the call
 * returns. Returns 0 when accepted (cb will be called exactly once), or,
 * with cb never called:
 *   -EAGAIN     every up connection is full and the queue too, or none is
 *               up and the queue is full
 *   -ENOTCONN   no connection is up and the pool has been down longer than
 *               down_fail_ms
 *   -ESHUTDOWN  the pool is stopping
 *   -EINVAL     len 0 or no cb
 *   -ENOMEM
 * On the pool's reactor thread only. */
int iox_client_request(struct iox_client_pool *p, const void *bytes, size_t len,
                       iox_client_cb cb, void *arg);

/* Begin closing without freeing: waiting and in-flight requests get
 * -ECANCELED, every connection is dropped (its ops cancelled, its socket
 * closed once they are in), new requests get -ESHUTDOWN. The loop keeps
 * running and delivers the completions; once iox_client_pool_ops() is 0
 * nothing of the pool is left in the ring. Idempotent. The pool's kind
 * reports its in-flight requests as busy(), so a stopping reactor waits for
 * their replies before the pool needs stopping. */
void iox_client_pool_stop(struct iox_client_pool *p);
/* Stop (if not yet) and free, on the pool's reactor thread (on_stop, or a
 * test after its loop): ops still in the ring are waited for (real ring,
 * bounded: 500 ms) so no buffer is freed under the kernel; sockets closed;
 * the kind unregistered. p is gone afterwards. NULL is ignored. */
void iox_client_pool_close(struct iox_client_pool *p);
/* Ops of the pool still in the ring (0 after a stop once the loop has
 * delivered their completions). */
unsigned iox_client_pool_ops(const struct iox_client_pool *p);

/* Connections up now (handshake done). */
unsigned iox_client_pool_up(const struct iox_client_pool *p);
/* Why the last connection attempt failed or the last connection was lost
 * ("127.0.0.1:6379: connect: Connection refused"), "" if none. The string
 * is the pool's: valid until the next failure or the pool's close. */
const char *iox_client_pool_last_error(const struct iox_client_pool *p);
/* The reactor the pool runs on. */
struct iox_reactor *iox_client_pool_reactor(const struct iox_client_pool *p);

/* Counters of one pool (monotonic, except the *_now fields). */
struct iox_client_stats {
    uint64_t connects;         /* connections that came up (handshake done) */
    uint64_t connect_failures; /* attempts that failed (refused, timeout, handshake) */
    uint64_t losses;           /* up connections that were lost */
    uint64_t requests;         /* accepted requests */
    uint64_t replies;          /* callbacks with status 0 */
    uint64_t failures;         /* callbacks with status < 0 */
    uint64_t bytes_out, bytes_in;
    uint32_t inflight_now, queued_now, up_now;
};
/* Copy p's counters into *out. On the pool's reactor thread. */
void iox_client_pool_stats(const struct iox_client_pool *p, struct iox_client_stats *out);

#endif
