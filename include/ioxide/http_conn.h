/* ioxide/http_conn.h — an HTTP/1.1 server connection on a reactor.
 *
 * The connection's lifecycle is the generated machine http_conn
 * (spec/machines/http_conn.toml → generated/http_conn_machine.[ch]); this
 * file declares the connection's data and the API handlers use to answer.
 *
 * Input: multishot recv into provided buffers. Bytes are parsed where they
 * lie (zero-copy); only a request cut by a buffer boundary is copied into
 * the connection's carry, and every buffer goes back to the ring before the
 * completion handler returns — a connection never holds a ring buffer.
 * Output: responses are appended to the connection's write buffer; at the end
 * of the loop turn everything committed goes out in one send. While a send
 * is in flight, new responses are appended behind it; when pending output
 * reaches write_cap, the connection stops reading (recv cancelled) until the
 * send drains.
 * Close: exactly once, after every op on the socket has completed or been
 * cancelled; the slot's generation then changes so late CQEs are dropped. */
#ifndef IOX_CONN_H
#define IOX_CONN_H
#include "http_conn_machine.h"
#include <ioxide/http_parser.h>
#include <ioxide/http_server.h>
#include <ioxide/reactor.h>
#include <ioxide/stream_core.h>
#include <stddef.h>
#include <stdint.h>

/* Machine arg: the completion being delivered, plus its bytes for recv. */
struct iox_event {
    int32_t res;
    uint32_t flags;
    const char *data;   /* recv: the buffer's bytes */
    uint32_t len;
};

/* One request's response slot. Requests of a connection are numbered (seq);
 * the open ones — dispatched, response not yet committed — are
 * [rq_head, rq_tail), each in ring entry seq & mask. The oldest open one
 * writes straight into the write buffer ("direct"); a later one writes into
 * its side buffer, moved into the write buffer in request order once every
 * earlier response is committed (see docs/architecture.md). */
struct iox_rslot {
    char *buf;                  /* side buffer (from the reactor's free lists) */
    void (*on_drain)(struct iox_conn *c, void *arg);
    void *on_drain_arg;
    void *user;                 /* the application's per-request pointer (iox_req_set_user) */
    uint32_t len, cap;
    uint32_t flushed;           /* side bytes sendable at once when it becomes the oldest */
    uint16_t seq;
    uint8_t awaiting;           /* an async handler owns it (iox_conn_async_done not called) */
    uint8_t counted;            /* counted in nasync */
    uint8_t body_done;          /* its answer is not held for its body: read completely, or handed to the handler */
    uint8_t head, keep_alive, minor;   /* what the response writers need */
    uint8_t framing;            /* how iox_resp_start framed the body (conn_response.c, RF_*) */
    uint8_t skip_body;          /* the body will not be read (100-continue not asked for, or refused): close after the answer */
    uint8_t ka_req;             /* the request's own keep-alive (keep_alive is cleared while skip_body is provisional) */
};
_Static_assert(sizeof(struct iox_rslot) <= 56, "struct iox_rslot: one per pipelined request per connection");

struct iox_conn {
    struct iox_reactor *r;
    struct iox_http_server *hs;  /* the server (per reactor, per listener) it belongs to */
    /* The socket mechanics (ioxide/stream_core.h), kept by the stream
     * core for every completion in every state: fd, slot index and
     * generation, the op books (ops in flight — close waits for 0 —, the
     * recv armed or being cancelled, the peer's EOF: guard peer_shut, the
     * send in flight), this turn's parked/dirty lists, the carry (input
     * not in a ring buffer), the write buffer ([0, wsent) sent, [wsent,
     * wcommit) ready to send, [wcommit, wlen) the current request's
     * response, not yet committed) and the timer (its class: conn.c,
     * timer_class). */
    struct iox_sock sk;
    /* The control state: written only by the generated machine
     * (http_conn_fire and the [reuse] functions http_conn_free/_open).
     * Whether the slot is in use, the peer's EOF aside, reading stopped for
     * backpressure, paused behind async requests, finishing: all in here
     * (spec/machines/http_conn.toml). */
    http_conn_state_t state;
    /* What the parser loop knows, read by the guards close_due,
     * between_requests and body_pending: they change per request, inside
     * one recv's parse, so they are data rather than states. */
    uint8_t close_after;     /* the last request is dispatched: close once it is answered */
    uint8_t one_more;        /* close_after, but the head being read is still dispatched (shutdown mid-head) */
    uint8_t body_pending;    /* the last request's body is still arriving */
    /* Read by the guard client_done (finishing: close at once instead of
     * lingering): the client itself asked to close on a request read whole,
     * and nothing it sent was dropped unread. */
    uint8_t client_close;    /* the last request said Connection: close (or HTTP/1.0 without keep-alive) */
    uint8_t input_dropped;   /* bytes or a body the client sent were dropped unread */
    /* The response target's (tgt's) request: mirrors of its slot. */
    uint8_t req_head;        /* HEAD: no response body */
    uint8_t req_keep_alive;
    uint8_t req_minor;
    uint8_t firing;          /* inside http_conn_fire: queue nested events */
    uint8_t nqueued;
    uint8_t queued[HTTP_CONN_EVENT_COUNT];   /* distinct, payload-less (conn.c: the re-entrancy queue) */
    /* Open requests [rq_head, rq_tail) in the response ring (hs->rslot_mask
     * + 1 entries); tgt is the request iox_resp_* write for; nasync counts
     * the outstanding async ones (at most hs->max_async). side_len: bytes in
     * side buffers, counted against the write cap. */
    uint16_t rq_head, rq_tail, tgt, nasync;
    uint16_t rq_base;        /* seq at ring position 0 (conn_internal.h, iox_conn_slot) */
    uint32_t side_len;
    struct iox_http_parser hp;
    void (*on_close)(struct iox_conn *c, void *arg);
    void *on_close_arg;
    /* The body being handed to its handler (iox_req_body_stream/_read);
     * NULL: the body arriving, if any, is drained (guard body_handed). */
    struct iox_body *body;
    /* Free for the application while it owns an async request. */
    void *app_data;
    uint64_t app_u64;
};

/* The slot holds a connection (from iox_conn_open until it is released). */
static inline int iox_conn_in_use(const struct iox_conn *c)
{
    return c->state != HTTP_CONN_S_CLOSED;
}

/* The socket is being closed, or the slot is free: no op may be issued on
 * it, no answer written to it. */
static inline int iox_conn_closing(const struct iox_conn *c)
{
    return c->state == HTTP_CONN_S_CLOSING || c->state == HTTP_CONN_S_CLOSED;
}

/* A handle on one request that survives the connection: deref gives NULL
 * once the connection was closed (and its slot possibly reused) or the
 * request no longer awaits an answer; otherwise the connection, with its
 * response target set to that request (iox_resp_* write its answer, which
 * leaves in request order). Take it in on_request to answer asynchronously.
 * Up to IOX_MAX_ASYNC (env, default 16) async requests of one connection are
 * outstanding at once; parsing pauses at the limit. */
struct iox_conn_ref { struct iox_http_server *hs; uint32_t idx; uint16_t gen, seq; };
/* Small enough to travel by value (a pg query's user value, a message). */
_Static_assert(sizeof(struct iox_conn_ref) <= 24, "struct iox_conn_ref must stay small");
struct iox_conn_ref iox_conn_ref(struct iox_conn *c);
struct iox_conn *iox_conn_deref(struct iox_conn_ref ref);
/* deref + iox_conn_async_done: the request's answer is written. 0, or
 * -ESTALE when the handle no longer derefs (nothing done). */
int iox_conn_ref_done(struct iox_conn_ref ref);

/* Per-request user data: one pointer per open request (not per
 * connection: pipelined async requests each have their own), NULL when the
 * request is dispatched. Set and read for the target request (in on_request,
 * or after iox_conn_deref). The runtime never frees it: an application that
 * owns memory through it frees it when it finishes the request, or in its
 * body callback's error call / the close hook when the request goes away. */
void iox_req_set_user(struct iox_conn *c, void *user);
void *iox_req_user(const struct iox_conn *c);

/* ---- Reading a request body (in on_request) ----
 *
 * By default a body is drained by the runtime after on_request returns
 * (up to the parser's max_body, IOX_MAX_BODY_MB: 413 and close beyond),
 * and the request's answer leaves only once it has been read — so a body
 * that turns out malformed gets its 400 instead. A handler can instead take
 * it, in on_request, before writing any of its answer:
 *   - iox_req_body_stream: a callback per piece, as the bytes arrive (views,
 *     no copy); reading pauses while the handler holds a piece and while the
 *     connection's unsent output is over the write cap; the answer may leave
 *     while the body still arrives (an echo);
 *   - iox_req_body_read: the body gathered whole (malloc'd, up to `limit`:
 *     413 and close beyond), handed over in one callback.
 * Taking the body makes the request asynchronous: on_request returns
 * IOX_ASYNC (it is treated so either way) and the answer is finished with
 * iox_conn_async_done (from the callback, or later). Content-Length and
 * chunked bodies alike (chunk extensions and trailers are validated and not
 * passed on). `Expect: 100-continue`: the interim 100 is written when the
 * handler takes the body (in request order, behind earlier answers); a
 * request whose handler does not take it gets its answer with `Connection:
 * close` and the connection closes after it (RFC 9110 §10.1.1 lets a server
 * skip reading a body it never asked for) — its body is never read. A body
 * that turns out malformed after its answer started (streamed) closes the
 * connection: the answer can no longer be changed. Only one body is being
 * read at a time (requests are read in order), so these are per
 * connection. */

/* Body callback statuses (status argument) and results. */
enum { IOX_BODY_PIECE = 0, IOX_BODY_END = 1 };
enum { IOX_BODY_OK = 0, IOX_BODY_HOLD = 1 };

/* Streamed: fn(c, data, len, IOX_BODY_PIECE, arg) per piece (data valid
 * during the call only), then fn(c, NULL, 0, IOX_BODY_END, arg) once the
 * body is complete; or, once, fn(c, NULL, 0, status < 0, arg) when the body
 * can never complete (an IOX_HTTP_E_* framing error or limit, -ECONNRESET:
 * the connection went away; the request's handle is stale by then). The
 * target is set to the request for each call, so iox_resp_* write its
 * answer. A piece fn returns IOX_BODY_HOLD for was not taken: reading stops
 * until iox_req_body_release, which hands the same piece again. With no
 * body (none, or Content-Length: 0) the END call comes at once, from inside
 * this call. 0, or -EINVAL (not in on_request, or the body already taken). */
typedef int (*iox_body_fn)(struct iox_conn *c, const char *data, size_t len, int status, void *arg);
int iox_req_body_stream(struct iox_conn *c, const struct iox_http_request *req, iox_body_fn fn, void *arg);

/* Whole: fn(c, body, len, IOX_BODY_END, arg) once the body is complete
 * (body valid during the call only; NULL with len 0 for an empty body), or
 * fn(c, NULL, 0, status < 0, arg) as above. A body over `limit` bytes (a
 * Content-Length over it at once, a chunked one when it gets there) is
 * answered 413 by the runtime and the connection closes; fn gets
 * IOX_HTTP_E_BODY_TOO_LARGE (for a Content-Length over the limit, from
 * inside this call). 0, or -EINVAL as above. */
typedef void (*iox_body_whole_fn)(struct iox_conn *c, const char *data, size_t len, int status, void *arg);
int iox_req_body_read(struct iox_conn *c, const struct iox_http_request *req, size_t limit,
                      iox_body_whole_fn fn, void *arg);

/* The streamed body's handler takes the piece it held: it is handed again
 * (from inside this call when it is made outside the handler's callback)
 * and reading resumes. No-op when nothing is held. */
void iox_req_body_release(struct iox_conn *c);

/* ---- Writing a response (on_request, or later for an async request) ---- */

/* A complete response: status line, Date, Content-Type (if ctype), Content-
 * Length, Connection as the request's keep-alive state requires, and the body.
 * For HEAD the body is omitted and Content-Length still says what a GET would
 * get (RFC 9110 §9.3.2); a 1xx, 204 or 304 gets neither Content-Length nor
 * body, whatever len says. Returns 0, or -ENOBUFS when it does not fit under
 * the connection's output limit (nothing is written then). */
int iox_resp_simple(struct iox_conn *c, int status, const char *ctype,
                    const void *body, size_t len);
/* The same with extra header lines (CRLF-terminated, may be NULL), e.g.
 * "Allow: GET, HEAD\r\n" on a 405. */
int iox_resp_simple_ex(struct iox_conn *c, int status, const char *ctype,
                       const char *extra_headers, const void *body, size_t len);
/* A prepared answer: the pieces of a constant iox_resp_simple answer (a
 * status, a Content-Type, a short body), copied in once. Each reactor
 * keeps the bytes of the last prepared answer it wrote, for the Date second
 * and the Connection line it was built with: a burst of the same answer
 * (a pipelined batch) is one copy per request instead of a head built
 * field by field. Fields are the runtime's; fill it with iox_resp_prepare. */
#define IOX_RESP_PREPARED_CTYPE 64   /* longest Content-Type, with its NUL */
#define IOX_RESP_PREPARED_BODY 64    /* longest body */
struct iox_resp_prepared {
    uint32_t id;                     /* unique per iox_resp_prepare call: the reactors' cache key */
    uint16_t status;
    uint8_t ctype_len;
    uint8_t body_len;
    char ctype[IOX_RESP_PREPARED_CTYPE];
    char body[IOX_RESP_PREPARED_BODY];
};
/* Fill *p with a copy of status, ctype (NUL-terminated, shorter than
 * IOX_RESP_PREPARED_CTYPE) and body[0, len) (len ≤ IOX_RESP_PREPARED_BODY).
 * Callable from any thread at any time, typically once at startup; *p must
 * not change while a reactor may use it (prepare another one instead).
 * Returns 0, or -EINVAL (status outside 100..599, ctype NULL or too long,
 * body too long). */
int iox_resp_prepare(struct iox_resp_prepared *p, int status, const char *ctype,
                     const void *body, size_t len);
/* The answer iox_resp_simple(c, p's status, ctype, body, len) writes, byte
 * for byte (HEAD, bodiless statuses and the Connection line included), from
 * the reactor's cached copy when it was built for the same prepared answer,
 * Connection line and Date second. When on_request may run (like
 * iox_resp_simple). Returns 0, or -ENOBUFS over the output limit (nothing
 * written). p stays the caller's. */
int iox_resp_send_prepared(struct iox_conn *c, const struct iox_resp_prepared *p);
/* Head only, for callers streaming the body themselves: like iox_resp_simple
 * but writes `extra_headers` (CRLF-terminated lines, may be NULL) and no body;
 * content_length is announced as given. */
int iox_resp_head(struct iox_conn *c, int status, const char *ctype,
                  uint64_t content_length, const char *extra_headers);
/* Raw bytes appended to the response being built. 0 or -ENOBUFS. After a
 * head for a HEAD request or a 1xx/204/304 status (iox_resp_head,
 * iox_resp_start) they are dropped: such an answer has no content. */
int iox_resp_write(struct iox_conn *c, const void *data, size_t len);

/* A response in pieces: iox_resp_start writes the head — status with its
 * reason phrase, Date, Content-Type (if ctype), extra_headers (CRLF-ended
 * lines, may be NULL), the framing, Connection — then iox_resp_chunk the
 * body piece by piece and iox_resp_end the end. content_length >= 0: a
 * known length (Content-Length; the pieces must add up to it);
 * IOX_RESP_CHUNKED (-1): unknown, sent chunked to HTTP/1.1 clients
 * (iox_resp_end's trailers, CRLF-ended field lines or NULL, after the last
 * chunk) and close-delimited to HTTP/1.0 ones (no framing, Connection:
 * close, the connection closes after this answer; trailers dropped; requests
 * pipelined behind it are not answered). HEAD, 1xx, 204 and 304: the head
 * only (HEAD keeps the framing header a GET would get), pieces and trailers
 * dropped. Pieces are sendable once iox_conn_flush is called (or when the
 * answer completes); a streamed producer respects the write cap: it writes
 * while iox_conn_writable, and goes on from the drain hook
 * (iox_conn_set_drain_hook). Each returns 0, or -ENOBUFS when the bytes do
 * not fit under the connection's output limit (nothing written then). */
#define IOX_RESP_CHUNKED (-1)
int iox_resp_start(struct iox_conn *c, int status, const char *ctype, const char *extra_headers,
                   int64_t content_length);
int iox_resp_chunk(struct iox_conn *c, const void *data, size_t len);
int iox_resp_end(struct iox_conn *c, const char *trailers);

/* Unsent output (write buffer and side buffers) is under the write cap:
 * a streamed producer may write more now. */
int iox_conn_writable(const struct iox_conn *c);
/* Reason phrase for a status code ("OK", "Not Found"): every RFC 9110 code
 * and the other registered ones; "" for a code without one. */
const char *iox_http_reason(int status);

/* Room for n more bytes of the response being built, without counting them
 * yet: fill them (e.g. with a positional file read on the ring) and count
 * them with iox_resp_commit_bytes. The pointer stays valid until the next
 * iox_resp_* call for this request — and, for a request that is not the
 * oldest outstanding one (iox_conn_is_oldest), until an earlier answer
 * completes: fill it at once, or wait for the drain hook (which only runs
 * for the oldest). NULL when over the write cap. */
char *iox_resp_reserve(struct iox_conn *c, size_t n);
void iox_resp_commit_bytes(struct iox_conn *c, size_t n);
/* n bytes of the target request's body left on the socket without passing
 * through the write buffer (a splice from a file, on an op the caller
 * holds with iox_conn_op_begin): counted in the bytes-out stats and the
 * access log's body bytes. Call it when the op completes with n > 0. */
void iox_resp_sent_direct(struct iox_conn *c, uint64_t n);

/* Streaming an async response: make what has been written so far sendable
 * now (normally a response goes out only once complete) — at once for the
 * oldest outstanding request, else as soon as every earlier answer is
 * committed. Only while the request has been read completely (always true
 * for GET/HEAD without body). */
void iox_conn_flush(struct iox_conn *c);

/* The target request is the oldest outstanding one: its bytes go straight
 * into the write buffer. */
int iox_conn_is_oldest(const struct iox_conn *c);

/* Called (on the reactor thread, with the target set to the request) each
 * time the connection's committed output has all been sent while the target
 * request is the oldest outstanding one and still owned by its async
 * handler: the producer of a streamed response writes its next chunk from
 * here. Per request; NULL to clear. */
void iox_conn_set_drain_hook(struct iox_conn *c, void (*fn)(struct iox_conn *c, void *arg), void *arg);

/* Called once (on the reactor thread) when the connection is released —
 * closed, every op on it ended — while the hook is set: an async request's
 * per-connection state (a file stream) is freed here when the peer goes away
 * before the response is complete. Cleared when called, and by the next
 * connection on the slot; set NULL to clear it once the response is done.
 * One per connection: while it is set no further pipelined request is
 * dispatched (a streamed response is exclusive from behind). */
void iox_conn_set_close_hook(struct iox_conn *c, void (*fn)(struct iox_conn *c, void *arg), void *arg);

/* An op of the application's that writes into this connection's memory (a
 * file read into its write buffer): the close waits for iox_conn_op_end. */
void iox_conn_op_begin(struct iox_conn *c);
void iox_conn_op_end(struct iox_conn *c);

/* End of the target async request: its response has been written with
 * iox_resp_*. It is committed (with every completed answer behind it) once
 * the earlier ones are; a connection paused at the async limit resumes
 * parsing. Safe to call from the on_request handler's continuation on the
 * same reactor only. */
void iox_conn_async_done(struct iox_conn *c);

/* Close now (abortive for the peer: pending output is dropped). */
void iox_conn_abort(struct iox_conn *c);

/* Internal: completion entry points used by the reactor. */
void iox_conn_on_cqe(struct iox_conn *c, unsigned op, const struct iox_cqe *cqe);
void iox_conn_on_timer(struct iox_conn *c);
void iox_conn_on_shutdown(struct iox_conn *c);
void iox_conn_start_send(struct iox_conn *c);
void iox_conn_rearm(struct iox_conn *c);
void iox_conn_init_slot(struct iox_http_server *hs, struct iox_conn *c, uint32_t idx);
void iox_conn_open(struct iox_conn *c, int fd);

#endif
