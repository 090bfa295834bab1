/* ioxide/stream.h — the protocol-neutral stream connection (server side).
 *
 * A protocol on ioxide is a parser, its actions and this layer: put
 * iox_stream_protocol on a listener with a struct iox_stream_config, and
 * every accepted socket becomes a struct iox_stream whose bytes reach
 * cfg->on_data. Everything a stream protocol needs besides its grammar is
 * here, once:
 *
 *   input    multishot recv into the ring's provided buffers; on_data is
 *            offered the bytes where they lie (zero-copy) and returns how
 *            many it consumed; the unconsumed tail (a message cut by a
 *            buffer boundary) is copied into the stream's carry and offered
 *            again, in front of the next bytes. Every ring buffer goes back
 *            before the completion handler returns.
 *   output   iox_stream_write / iox_stream_reserve + iox_stream_commit
 *            append to the stream's write buffer; at the end of the loop
 *            turn everything written goes out in ONE send per stream.
 *   order    reply slots (iox_stream_reply_begin): answers leave in request
 *            order even when some are written later (an async hop, a query).
 *   pressure when unsent output (write buffer plus reply side buffers)
 *            reaches write_cap, the stream stops reading until it drained.
 *   timers   idle timeout (on_timeout may keep the stream), linger after a
 *            graceful close.
 *   close    exactly once, after every op on the socket completed; the
 *            slot's generation changes, so late completions and stale
 *            references (iox_stream_deref) find nothing.
 *   stop     SIGTERM: accept stops, on_shutdown (or the default policy:
 *            close each stream once it owes nothing) and the reactor's loop
 *            waits for every stream to finish (the kind's busy()).
 *
 * The connection's lifecycle is the generated machine stream_conn
 * (spec/machines/stream_conn.toml). Everything here runs on the reactor
 * thread that owns the stream; nothing is thread-safe and nothing needs to
 * be. A struct iox_stream is owned by the runtime: never free it, never
 * keep the pointer past the callback you got it in (keep an iox_stream_ref).
 * See docs/stream.md for a protocol written on it. */
#ifndef IOX_STREAM_H
#define IOX_STREAM_H
#include <ioxide/reactor.h>
#include <stddef.h>
#include <stdint.h>

struct iox_stream;           /* one connection (opaque) */
struct iox_stream_server;    /* one reactor's streams for one listener (opaque) */

/* Why a stream was closed: the `cause` of on_close. */
enum iox_stream_cause {
    IOX_STREAM_CLOSED = 0,   /* iox_stream_close: graceful, everything owed was sent */
    IOX_STREAM_ABORTED,      /* iox_stream_abort, or the server was closed */
    IOX_STREAM_PEER_EOF,     /* the peer closed its side (after we sent what was owed) */
    IOX_STREAM_ERROR,        /* a socket error (iox_stream_error: the -errno) */
    IOX_STREAM_TIMEOUT,      /* idle_timeout_ms without progress (on_timeout said close) */
    IOX_STREAM_TOO_BIG,      /* a message larger than max_carry was cut across buffers */
    IOX_STREAM_PROTOCOL,     /* on_data returned < 0 (after what was written was sent) */
    IOX_STREAM_SHUTDOWN,     /* the reactor stopped (SIGTERM) */
};
/* A short name for a cause ("peer_eof"), for logs: a static string, never
 * NULL. Any thread. */
const char *iox_stream_cause_name(enum iox_stream_cause cause);

/* Results of on_timeout. */
enum { IOX_STREAM_TIMEOUT_CLOSE = 0, IOX_STREAM_TIMEOUT_KEEP = 1 };

/* Zero fields get the defaults in brackets (iox_stream_config_defaults);
 * every callback but on_data is optional. Callbacks run on the stream's
 * reactor thread with cfg->ctx as their last argument. */
struct iox_stream_config {
    /* A new stream (accepted or adopted), before any of its bytes. May
     * write (a greeting), close or abort it. */
    void (*on_open)(struct iox_stream *s, void *ctx);
    /* Input: n > 0 bytes at p, valid only during the call. Return how many
     * were consumed, 0..n: the rest is carried and offered again, in front
     * of the next bytes (so a message cut anywhere arrives whole). Return
     * < 0 for a protocol error: reading stops, what was written is sent,
     * then the stream closes (cause IOX_STREAM_PROTOCOL) — write the error
     * answer first. on_data is not called for this stream while it is
     * paused (iox_stream_pause) or every reply slot is open (after a
     * reply_begin returned -ENOSPC: until a reply ends), and never after
     * iox_stream_close / _abort. Required. */
    long (*on_data)(struct iox_stream *s, const char *p, size_t n, void *ctx);
    /* Output that had reached write_cap (reading stopped) was all sent and
     * reading resumes; also once after iox_stream_want_drain. */
    void (*on_drain)(struct iox_stream *s, void *ctx);
    /* Exactly once per stream, when its slot is given up: the socket is
     * closed and no op of it is in flight. Writes are refused from here
     * on; the user pointer is still readable. Free what you hung on it. */
    void (*on_close)(struct iox_stream *s, enum iox_stream_cause cause, void *ctx);
    /* idle_timeout_ms passed without input or output progress — never
     * while a reply is open and nothing is sendable (the server is still
     * producing an answer: not the peer's idleness). Return
     * IOX_STREAM_TIMEOUT_KEEP to give it another period, or
     * IOX_STREAM_TIMEOUT_CLOSE (the default without the callback): the
     * stream is closed, gracefully when nothing is unsent, else aborted. */
    int (*on_timeout)(struct iox_stream *s, void *ctx);
    /* The reactor begins a graceful stop (SIGTERM), once per open stream.
     * Without it the policy is: stop reading now, close each stream once it
     * owes nothing (no open reply, nothing unsent), cause
     * IOX_STREAM_SHUTDOWN. With it, the protocol decides (write a goodbye,
     * iox_stream_close); streams still open when the reactor's grace
     * (shutdown_grace_ms) ends are aborted either way. */
    void (*on_shutdown)(struct iox_stream *s, void *ctx);
    void *ctx;
    uint32_t idle_timeout_ms;  /* no input and no output progress → on_timeout (30000) */
    uint32_t linger_ms;        /* after a graceful close's shutdown, wait for EOF (2000) */
    uint32_t max_conns;        /* streams per reactor; accept pauses when reached (16384) */
    uint32_t write_cap;        /* unsent output bytes before reading stops (256 KiB) */
    uint32_t max_carry;        /* largest message cut across buffers (64 KiB; bigger: IOX_STREAM_TOO_BIG) */
    uint32_t max_replies;      /* open reply slots per stream (16, at most IOX_STREAM_MAX_REPLIES) */
};
#define IOX_STREAM_MAX_REPLIES 256u

/* Apply the defaults above to cfg's zero fields. */
void iox_stream_config_defaults(struct iox_stream_config *cfg);
/* Fill cfg's zero fields from IDLE_TIMEOUT_MS, IOX_LINGER_MS,
 * IOX_MAX_CONNS, IOX_WRITE_CAP, IOX_MAX_CARRY, IOX_MAX_REPLIES (when set).
 * 0, or -EINVAL with "NAME=value is not a number in [min, max]" in why. */
int iox_stream_config_from_env(struct iox_stream_config *cfg, char *why, size_t why_len);

/* The protocol for iox_listener_config.proto; proto_cfg is a const struct
 * iox_stream_config * that outlives the server (required: on_data). Each
 * reactor copies it and applies the defaults. */
extern const struct iox_protocol iox_stream_protocol;

/* ---- Servers without a listener (tests on the simulated ring, tools) ---- */

/* Make a stream server on reactor r (call on its thread): its table of
 * cfg->max_conns streams and its kind in r's registry. `listener` is only
 * used to pause/resume accept (any value when there is none). cfg is copied.
 * 0 and *out, -EINVAL (no on_data, max_replies too large) or -ENOMEM. */
int iox_stream_server_open(struct iox_reactor *r, const struct iox_stream_config *cfg,
                           unsigned listener, struct iox_stream_server **out);
/* Close every stream's fd at once (no ceremony, on_close with
 * IOX_STREAM_ABORTED for each open one), unregister the kind (late
 * completions are dropped) and free the server. */
void iox_stream_server_close(struct iox_stream_server *srv);
/* The stream server of r's listener `listener`, or NULL (that listener's
 * protocol is not iox_stream_protocol). */
struct iox_stream_server *iox_stream_server_of(struct iox_reactor *r, unsigned listener);
/* Adopt a connected socket (what an accept does): on_open runs, a recv is
 * armed. Returns the stream, or NULL when the table is full or the server
 * is stopping (the caller keeps fd). */
struct iox_stream *iox_stream_adopt(struct iox_stream_server *srv, int fd);

/* Counters of one server on one reactor (monotonic, except open). */
struct iox_stream_stats {
    uint64_t accepted;     /* streams opened (accepted or adopted) */
    uint64_t closed;       /* on_close calls */
    uint64_t bytes_in, bytes_out;
    uint64_t enobufs;      /* recvs that ended because the buffer ring was dry */
    uint64_t timeouts;     /* idle timeouts that closed a stream */
    uint64_t stale_cqes;   /* completions for a closed, reused slot (dropped) */
    uint32_t open;         /* streams open now */
};
/* Copy srv's counters into *out. Any time on srv's reactor thread. */
void iox_stream_server_stats(const struct iox_stream_server *srv, struct iox_stream_stats *out);

/* ---- A stream -------------------------------------------------------------
 * Unless said otherwise, these may be called from the stream's callbacks
 * and, for a stream found through iox_stream_deref, from any code on its
 * reactor thread. */

/* The server, the reactor, the socket of s. */
struct iox_stream_server *iox_stream_server_of_stream(const struct iox_stream *s);
struct iox_reactor *iox_stream_reactor(const struct iox_stream *s);
int iox_stream_fd(const struct iox_stream *s);
/* The protocol's per-stream pointer: NULL at on_open; yours to set and to
 * free (in on_close at the latest). */
void *iox_stream_user(const struct iox_stream *s);
void iox_stream_set_user(struct iox_stream *s, void *user);
/* The -errno of the socket error that closed / is closing s (0 if none). */
int iox_stream_error(const struct iox_stream *s);
/* 1 while s accepts writes (not closing, not closed), else 0. */
int iox_stream_writable(const struct iox_stream *s);

/* ---- Output ----------------------------------------------------------------
 * The write buffer grows as needed (write_cap only stops reading, never
 * refuses a write); it is sent at the end of the loop turn in one send.
 * While reply slots are open (below), a plain write is an answer ordered
 * after every reply begun before it: it waits in a side buffer like a
 * later reply that already ended. */

/* Append n bytes. 0, -EPIPE (closing or closed: dropped) or -ENOMEM. */
int iox_stream_write(struct iox_stream *s, const void *p, size_t n);
/* Room for at least n bytes at the end of the output, to format into in
 * place; follow with iox_stream_commit(s, used ≤ n) before any other call
 * on s. Returns the pointer (valid until the commit), or NULL (closing,
 * or -ENOMEM). A reserve that is never committed writes nothing. */
char *iox_stream_reserve(struct iox_stream *s, size_t n);
void iox_stream_commit(struct iox_stream *s, size_t used);
/* Call on_drain once everything written so far has been sent (at once, at
 * the end of this turn, if nothing is unsent). For producers that stream a
 * large answer in parts. 0, or -EPIPE (closing). */
int iox_stream_want_drain(struct iox_stream *s);
/* Bytes written and not yet acknowledged by a send completion (write
 * buffer plus reply side buffers). */
size_t iox_stream_unsent(const struct iox_stream *s);

/* ---- Ordered replies for async work --------------------------------------
 * A protocol that answers some messages later while answering pipelined
 * later ones at once begins a reply slot per message, in message order. The
 * oldest open reply writes straight into the write buffer; a later one
 * writes into its side buffer, moved into the write buffer in order when
 * every earlier one has ended. Replies are numbered per stream: the id is
 * valid on this stream (same generation) until iox_stream_reply_end; keep it
 * next to an iox_stream_ref for an async answer. */

/* Begin the next reply in order. Returns its id (≥ 0), -ENOSPC when
 * max_replies are open — input delivery then pauses: return from on_data
 * without consuming this message; it is offered again once a reply ended —
 * or -EPIPE (closing). */
int iox_stream_reply_begin(struct iox_stream *s);
/* Append to reply `id`. 0, -ESTALE (no such open reply), -EPIPE (aborted
 * or closed; a graceful close still takes the replies begun before it),
 * -ENOMEM. */
int iox_stream_reply_write(struct iox_stream *s, int id, const void *p, size_t n);
/* Format in place into reply `id` (as iox_stream_reserve / _commit). */
char *iox_stream_reply_reserve(struct iox_stream *s, int id, size_t n);
void iox_stream_reply_commit(struct iox_stream *s, int id, size_t used);
/* The reply is complete: if it is the oldest, it and every later ended one
 * move to the write buffer (sent this turn), and paused input resumes.
 * 0, or -ESTALE (no such open reply). */
int iox_stream_reply_end(struct iox_stream *s, int id);
/* Open replies of s now. */
unsigned iox_stream_replies_open(const struct iox_stream *s);

/* ---- Input control -------------------------------------------------------- */

/* Stop offering input: on_data is not called for s from now on (not even
 * for the rest of the bytes being offered); reading stops at the end of the
 * turn (the recv is cancelled) and bytes already on their way are kept in
 * the carry. Idempotent. */
void iox_stream_pause(struct iox_stream *s);
/* Offer input again: the carry is re-offered before the end of this loop
 * turn (never from inside this call), and reading resumes. Idempotent. */
void iox_stream_resume(struct iox_stream *s);

/* ---- Closing --------------------------------------------------------------- */

/* Graceful close: stop reading, wait for open replies to end, send
 * everything written, shut the write side, wait up to linger_ms for the
 * peer's EOF, close; on_close(IOX_STREAM_CLOSED). Idempotent; writes after
 * it are refused. */
void iox_stream_close(struct iox_stream *s);
/* Close now: unsent output is dropped, on_close(IOX_STREAM_ABORTED) once
 * every op completed (or at once). Idempotent; fine after iox_stream_close. */
void iox_stream_abort(struct iox_stream *s);

/* ---- References for async callbacks ----------------------------------------
 * A stream pointer is valid only during the callback it came in. To answer
 * later (after a hop to another reactor, a query), keep a ref: it names the
 * reactor (so the answer can be routed home), the server, the slot and the
 * generation. Plain value, copy it freely. */
struct iox_stream_ref {
    struct iox_reactor *r;          /* the reactor that owns the stream */
    struct iox_stream_server *srv;
    uint32_t idx;
    uint16_t gen;
};
/* A ref to s. */
struct iox_stream_ref iox_stream_ref(const struct iox_stream *s);
/* The stream ref names, on ref.r's thread only, or NULL once it can no
 * longer take its replies' writes: aborted, closed (its slot possibly
 * reused by another stream since). A stream in a graceful close that still
 * waits for open replies is returned: finish them. */
struct iox_stream *iox_stream_deref(struct iox_stream_ref ref);

#endif
