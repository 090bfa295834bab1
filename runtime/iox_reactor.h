/* iox_reactor.h — the per-core reactor and the server built from them.
 *
 * One reactor = one thread pinned to one core, owning one io_uring ring, its
 * SO_REUSEPORT listener, its connection table, its provided recv buffers, its
 * timers and whatever client pools the application opens in on_start. Nothing
 * is shared between reactors; they talk only through ring messages
 * (iox_reactor_send_msg, an IORING_OP_MSG_RING).
 *
 * Loop turn: iox_reactor_flush (pending sends, parked recvs, end-of-turn
 * hooks) → iox_reactor_turn (one io_uring_submit_and_wait, then every ready
 * CQE reaped in batches, its user_data decoded (iox_ud.h) and dispatched to
 * the owning machine).
 *
 * The same reactor runs on the simulated seam (iox_seam_sim.h) for tests:
 * iox_reactor_init_sim() skips the thread, ring and listener, and the test
 * drives iox_reactor_dispatch() and iox_reactor_flush() itself. */
#ifndef IOX_REACTOR_H
#define IOX_REACTOR_H
#include "iox_seam.h"
#include "iox_http_parser.h"
#include <pthread.h>
#include <stdint.h>

struct iox_conn;
struct iox_reactor;

/* Handler results. */
enum { IOX_HANDLED = 0, IOX_ASYNC = 1 };

/* Outstanding async requests per connection: default and most. */
#define IOX_MAX_ASYNC_DEFAULT 16u
#define IOX_MAX_ASYNC_LIMIT 64u

/* An HTTP application. on_request runs on the reactor thread for every
 * complete request head; req's views are valid only during the call. It
 * writes the response with iox_resp_*() and returns IOX_HANDLED, or returns
 * IOX_ASYNC after taking iox_conn_ref(c), to answer later on the same
 * reactor (iox_conn_deref, iox_resp_*, iox_conn_async_done: pg query, hop);
 * the connection goes on parsing pipelined requests meanwhile, up to
 * max_async outstanding ones, and answers leave in request order. Request bodies are consumed and
 * discarded by the runtime; a response is sent only once the whole request
 * (body included) has been read, so a request whose body turns out
 * malformed gets the 400, never the handler's answer. */
struct iox_http_app {
    int (*on_request)(struct iox_conn *c, const struct iox_http_request *req, void *app_ctx);
};

/* A message between reactors. Embedded at the start of every payload.
 *
 * Ownership: the sender gives the payload up when iox_reactor_send_msg
 * returns; the receiver owns it from its handler on, and hands it back the
 * same way when the protocol says so (hop). Memory comes from the sender's
 * per-reactor pool and is freed only by its owner reactor, so no allocator
 * is ever shared.
 *
 * Delivery: an IORING_OP_MSG_RING posts a CQE on the target ring. When the
 * target's CQ is full (-EOVERFLOW) or no SQE is free, the sender keeps the
 * message and sends it again on its next loop turn: nothing is dropped. If
 * the target cannot take messages at all (its ring is gone), the handler of
 * the message's kind is called ON THE SENDER with status < 0, so the sender
 * can answer for itself. */
struct iox_msg {
    uint32_t kind;
    uint16_t from, to;
    int32_t status;         /* 0 delivered; < 0 -errno: bounced back undelivered */
    struct iox_msg *next;   /* sender-side retry queue */
};
typedef void (*iox_msg_handler)(struct iox_reactor *r, struct iox_msg *m);
/* IOX_MSG_SHUTDOWN and IOX_MSG_HUP come from the main thread with a NULL
 * payload. HUP is posted to every reactor after cfg->on_sighup returned: a
 * handler registered for it (iox_reactor_on_msg) picks up what on_sighup
 * published (a new file snapshot) at a safe point of the reactor's loop. */
enum { IOX_MSG_SHUTDOWN = 1, IOX_MSG_HUP = 2, IOX_MSG_APP0 = 4 };

struct iox_server_config {
    const char *host;            /* listen address (default 0.0.0.0) */
    uint16_t port;               /* default 8080 */
    unsigned reactors;           /* default online CPUs */
    int pin;                     /* pin reactor i to CPU i (default 1) */
    uint32_t idle_timeout_ms;    /* idle or stuck mid-request → close (30000) */
    uint32_t linger_ms;          /* after a final response, wait this long for EOF (2000) */
    uint32_t max_conns;          /* per reactor; accept pauses when reached (16384) */
    uint32_t write_cap;          /* pending response bytes before reading stops (256 KiB) */
    uint32_t max_async;          /* outstanding async requests per connection (16, ≤ 64) */
    uint32_t shutdown_grace_ms;  /* SIGTERM: time for in-flight requests (3000) */
    /* TCP_NOTSENT_LOWAT of accepted sockets (128 KiB; UINT32_MAX: leave the
     * kernel's default). Bounds the unsent bytes a connection parks in the
     * kernel: without it send buffers autotune to tcp_wmem's max (4 MiB) per
     * connection, and thousands of large responses push the whole machine
     * into TCP memory pressure, where Linux drops incoming segments —
     * clients' requests among them (docs/architecture.md, Timers). */
    uint32_t notsent_lowat;
    struct iox_http_limits http; /* parser limits (0 = defaults) */
    struct iox_uring_config ring;
    const struct iox_http_app *app;
    void *app_ctx;
    /* Runs on each reactor thread after its ring exists, before accepting;
     * open client pools here. Non-zero aborts startup. */
    int (*on_start)(struct iox_reactor *r, void *app_ctx);
    /* Runs on each reactor thread when it stops. */
    void (*on_stop)(struct iox_reactor *r, void *app_ctx);
    /* Runs on the main thread on SIGHUP (e.g. re-snapshot files). */
    void (*on_sighup)(void *app_ctx);
};

/* Fill cfg from the environment (PORT, REACTORS, IDLE_TIMEOUT_MS,
 * IOX_MAX_CONNS, IOX_WRITE_CAP, IOX_MAX_ASYNC, IOX_RECV_BUFFERS, IOX_RECV_BUFSIZE,
 * IOX_MAX_HEAD, IOX_MAX_HEADERS, IOX_MAX_TARGET, IOX_MAX_BODY, HOST).
 * Returns 0, or -EINVAL with a message in why (a malformed number). */
int iox_server_config_from_env(struct iox_server_config *cfg, char *why, size_t why_len);

/* Start the reactors, serve until SIGTERM/SIGINT, then drain and stop.
 * Returns the process exit status: 0 after a clean shutdown, 1 when startup
 * failed (one line naming the cause and the fix is printed). */
int iox_server_run(const struct iox_server_config *cfg);

struct iox_conn_list { struct iox_conn *head, *tail; };

/* ---- The registry: kinds, services, messages -------------------------------
 *
 * A kind is anything that owns operations on the reactor's ring — a server
 * protocol's connections, a client pool, file streams, an application's own
 * sockets. It registers its hooks once per reactor (on the reactor's thread,
 * at startup: from on_start) and receives an owner id for the user_data of
 * its SQEs (iox_ud(op, owner, gen, idx)); its completions come back to
 * on_cqe. No id is reserved for any protocol. */
struct iox_kind {
    const char *name;
    /* A completion for this owner (required). */
    void (*on_cqe)(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe);
    /* End of every loop turn, before the ring is entered (optional): send
     * what this turn queued. */
    void (*on_flush)(struct iox_reactor *r, void *ctx);
    /* Every reactor tick (optional; ≤ 250 ms, after the clock moved). */
    void (*on_tick)(struct iox_reactor *r, void *ctx);
    /* The reactor begins a graceful stop (optional): finish, then close. */
    void (*on_stop)(struct iox_reactor *r, void *ctx);
    /* Connections or ops this kind still has open (optional): a stopping
     * reactor's loop ends only when every kind reports 0. */
    unsigned (*busy)(struct iox_reactor *r, void *ctx);
};
/* Register a kind; ctx is passed back to every hook. Returns the owner id
 * (≥ IOX_OWN_FIRST_KIND), -EINVAL (no on_cqe), -ENOSPC (255 kinds) or
 * -ENOMEM. The kind struct must outlive the registration. */
int iox_reactor_register_kind(struct iox_reactor *r, const struct iox_kind *k, void *ctx);
/* Forget a kind (its id may be reused); late completions for it are
 * dropped (a recv buffer among them is handed back). */
void iox_reactor_unregister_kind(struct iox_reactor *r, int owner);
/* Sum of every kind's busy(). */
unsigned iox_reactor_kinds_busy(struct iox_reactor *r);

/* A per-reactor service (a pool, a snapshot, an application's table) is
 * found by the address of its key: define one `static const struct
 * iox_service_key` per service type and wrap the lookup in a typed getter
 * (iox_pg_pool_of), so the cast lives in one place. */
struct iox_service_key { const char *name; };
/* Set (svc != NULL) or remove (NULL) the service for key. 0 or -ENOMEM. */
int iox_reactor_set_service(struct iox_reactor *r, const struct iox_service_key *key, void *svc);
/* The service for key, or NULL. A scan of the few services a reactor has. */
void *iox_reactor_service(const struct iox_reactor *r, const struct iox_service_key *key);

struct iox_kind_slot { const struct iox_kind *kind; void *ctx; };
struct iox_service_slot { const struct iox_service_key *key; void *svc; };

struct iox_reactor {
    unsigned id, nreactors;
    struct iox_seam *seam;
    struct iox_seam_uring *uring;     /* NULL on the simulated seam */
    const struct iox_server_config *cfg;
    pthread_t thread;
    int ring_fd;
    int *peer_ring_fds;               /* nreactors entries; read-only after startup */
    int listen_fd;
    uint8_t accept_armed, accept_paused, stopping, stopped;
    uint64_t now_ms;                  /* coarse monotonic clock, refreshed per turn */
    uint64_t stop_deadline_ms;
    /* Connection table: flat array indexed by slot, free slots in a stack. */
    struct iox_conn *conns;
    uint32_t max_conns, nconns, nfree;
    uint32_t *free_slots;
    /* Response rings: rslot_mask + 1 entries per connection slot, stored
     * position-major (conn_internal.h, iox_conn_slot). */
    struct iox_rslot *rslots;
    uint32_t rslot_mask;
    uint32_t max_async;
    struct iox_conn_list idle;        /* ordered by deadline (timers) */
    struct iox_conn_list linger;
    struct iox_conn *dirty;           /* conns with output to send this turn */
    struct iox_conn *parked;          /* conns whose recv must be re-armed */
    struct iox_msg *msg_retry;        /* messages to re-send next turn */
    /* The registry (kind.c): grown at registration, indexed by owner id. */
    struct iox_kind_slot *kinds;
    unsigned nkinds;
    struct iox_service_slot *services;
    unsigned nservices;
    iox_msg_handler *msg_handlers;    /* indexed by message kind */
    uint32_t nmsg_handlers;
    int http_owner;                   /* owner id of the HTTP connections */
    char date[40];                    /* "Date: ...\r\n" cached per second */
    uint64_t date_sec;
    /* Counters (this reactor only). */
    uint64_t n_accepted, n_closed, n_requests, n_stale_cqes, n_enobufs, n_accept_pauses;
    /* Free lists of buffers (carry, write) so the hot path does not malloc. */
    void *free_carry, *free_wbuf;
    /* Larger write buffers (32 KiB .. 1 MiB, powers of two: a baked file or
     * a streamed chunk) are recycled by size class too. */
    void *free_wbuf_big[6];
    uint32_t tick_ms;
    uint8_t tick_armed;
    uint8_t counted_out;              /* left the running-reactor count */
    /* Reactors still serving (shutdown only): a stopped reactor keeps
     * answering messages until every reactor is done, so a hop in flight to
     * it is never stranded. */
    _Atomic unsigned *running;
};

/* Allocate a reactor's tables (internal: server.c). */
int reactor_alloc_public(struct iox_reactor *r, const struct iox_server_config *cfg);

/* Per-reactor setup/teardown without a thread or ring: tests use it with the
 * simulated seam. Returns 0 or -errno. */
int iox_reactor_init_sim(struct iox_reactor *r, struct iox_seam *seam,
                         const struct iox_server_config *cfg);
void iox_reactor_fini(struct iox_reactor *r);
/* Dispatch one completion to its owner. */
void iox_reactor_dispatch(struct iox_reactor *r, const struct iox_cqe *cqe);
/* End-of-batch work: start sends for connections with output, re-arm
 * parked recvs, fire due timers. Called once per loop turn before submit. */
void iox_reactor_flush(struct iox_reactor *r);
/* One kernel entry and what it brought: submit everything queued, wait for
 * at least one completion (DEFER_TASKRUN runs task work here), then
 * dispatch every ready completion. The reactor threads, the embedded
 * reactor (iox_reactor_run_until) and the pg pool's close all turn through
 * here. Real ring only (on the simulated seam the test completes ops).
 * Returns 0, or -errno from io_uring_enter. */
int iox_reactor_turn(struct iox_reactor *r);
/* Adopt an accepted socket (what the accept completion does). */
struct iox_conn *iox_reactor_adopt(struct iox_reactor *r, int fd);
/* Set the coarse clock (tests) and fire timers that are due. */
void iox_reactor_advance_clock(struct iox_reactor *r, uint64_t now_ms);
/* Begin a graceful stop on this reactor (what SIGTERM does). */
void iox_reactor_begin_stop(struct iox_reactor *r);

/* A connection slot became free: resume a paused accept (internal). */
void iox_reactor_slot_freed(struct iox_reactor *r);

/* Register (h) or clear (NULL) the handler for message kind (IOX_MSG_APP0
 * and up, < 65536). 0, -EINVAL or -ENOMEM. */
int iox_reactor_on_msg(struct iox_reactor *r, uint32_t kind, iox_msg_handler h);
/* The handler for a message kind, or NULL. */
iox_msg_handler iox_reactor_msg_handler(const struct iox_reactor *r, uint32_t kind);
/* Send m to reactor `to` (m->kind set by the caller). 0 when queued (the
 * sender no longer owns m); a full target CQ is retried on later turns. */
int iox_reactor_send_msg(struct iox_reactor *r, unsigned to, struct iox_msg *m);

/* ---- A reactor on the calling thread (tests, tools) ---------------------
 * No listener, no signals: a ring created on the caller's thread (so the
 * caller must be the one that runs and closes it), a tick every 10 ms so
 * predicates are re-checked. Use it to drive client pools (pg) on a real
 * ring. */

/* Set up r with cfg (max_conns may be small) and a real ring on this
 * thread. Returns 0, or -errno with a one-line cause in why. */
int iox_reactor_open_here(struct iox_reactor *r, const struct iox_server_config *cfg,
                          char *why, size_t why_len);
/* Run loop turns until done(arg) returns non-zero (checked before every
 * wait) or timeout_ms passes. Returns 0 when done, -ETIMEDOUT, or the
 * ring's -errno. */
int iox_reactor_run_until(struct iox_reactor *r, int (*done)(void *arg), void *arg,
                          uint32_t timeout_ms);
/* Free the tables and destroy the ring (close pools first). */
void iox_reactor_close_here(struct iox_reactor *r);

#endif
