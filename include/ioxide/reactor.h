/* ioxide/reactor.h — the per-core reactor and the server built from them.
 *
 * One reactor = one thread pinned to one core, owning one io_uring ring, its
 * own SO_REUSEPORT socket for every configured listener, its provided recv
 * buffers, a tick, and the registry of kinds (protocol servers, client
 * pools, file streams: whatever owns ops on the ring) that the listeners'
 * protocols and the application register on it. The reactor itself knows no
 * protocol. Nothing is shared between reactors; they talk only through ring
 * messages (iox_reactor_send_msg, an IORING_OP_MSG_RING).
 *
 * Loop turn: iox_reactor_flush (every kind's end-of-turn hook, message
 * retries, accept re-arms, the tick) → iox_reactor_turn (one
 * io_uring_submit_and_wait, then the ready CQEs reaped in batches of 256
 * until one is not full — what arrives after that waits for the next turn —, each
 * user_data decoded (ioxide/ud.h) and dispatched to the owning kind).
 *
 * The same reactor runs on the simulated seam (ioxide/seam_sim.h) for tests:
 * iox_reactor_init_sim() skips the thread, ring and listener, and the test
 * drives iox_reactor_dispatch() and iox_reactor_flush() itself. */
#ifndef IOX_REACTOR_H
#define IOX_REACTOR_H
#include <ioxide/seam.h>
#include <pthread.h>
#include <stdint.h>

struct iox_reactor;

/* A message between reactors. Embedded at the start of every payload.
 *
 * Ownership: the sender gives the payload up when iox_reactor_send_msg
 * returns; the receiver owns it from its handler on, and hands it back the
 * same way when the protocol says so (hop). Memory comes from the sender's
 * per-reactor pool and is freed only by its owner reactor, so no allocator
 * is ever shared.
 *
 * Delivery: messages to one reactor in one loop turn travel together — at
 * the end of the turn (iox_reactor_flush) one IORING_OP_MSG_RING per
 * destination carries the turn's messages, chained through `next`, and the
 * target runs their handlers in the order they were sent. One batch per
 * destination is in flight at a time. When the target's CQ is full
 * (-EOVERFLOW) or no SQE is free, the sender keeps the batch and sends it
 * again on its next loop turn, ahead of newer messages: nothing is dropped
 * or reordered. If the target cannot take messages at all (its ring is
 * gone), the handler of each message's kind is called ON THE SENDER with
 * status < 0, in order, so the sender can answer for itself. */
struct iox_msg {
    uint32_t kind;
    uint16_t from, to;
    int32_t status;         /* 0 delivered; < 0 -errno: bounced back undelivered */
    struct iox_msg *next;   /* the runtime's: the batch chain (read it in no handler) */
};
typedef void (*iox_msg_handler)(struct iox_reactor *r, struct iox_msg *m);
/* IOX_MSG_SHUTDOWN and IOX_MSG_HUP come from the main thread with a NULL
 * payload. HUP is posted to every reactor on SIGHUP, after cfg->on_sighup
 * (if set) returned: every kind's on_hup hook runs, then a handler
 * registered for it (iox_reactor_on_msg) picks up what on_sighup published
 * (a new file snapshot) at a safe point of the reactor's loop. */
enum { IOX_MSG_SHUTDOWN = 1, IOX_MSG_HUP = 2, IOX_MSG_STATS = 3 /* the HTTP stats gathering */, IOX_MSG_APP0 = 4 };

/* ---- Listeners ------------------------------------------------------------
 *
 * A protocol serves the sockets one listener accepts (the HTTP server is one:
 * iox_http_protocol in ioxide/http_server.h). Per reactor, open() makes the
 * protocol's state for that listener (its connection table, its kind) on the
 * reactor's thread; on_accept() takes each accepted socket. */
struct iox_protocol {
    const char *name;
    /* On each reactor thread, before accepting: make this reactor's server
     * for a listener configured with proto_cfg. 0 and *ctx, or -errno with
     * one line in why (cause and fix). */
    int (*open)(struct iox_reactor *r, const void *proto_cfg, unsigned listener, void **ctx,
                char *why, size_t why_len);
    /* An accepted socket (non-blocking, close-on-exec): take it and return
     * 0, or return -ENOSPC when full (the reactor closes it and pauses this
     * listener until iox_reactor_accept_resume). With direct descriptors
     * (IOX_DIRECT_FDS, ioxide/seam.h) fd is a slot of this reactor's ring
     * (iox_fd_is_direct): only the seam's ops may touch it. open() should
     * say how many connections it holds (iox_reactor_want_conns) so the
     * ring's file table is sized for them. */
    int (*on_accept)(struct iox_reactor *r, void *ctx, int fd);
    /* After the reactor's loop ended (every kind idle): free it all. */
    void (*close)(struct iox_reactor *r, void *ctx);
};

struct iox_listener_config {
    const char *host;            /* IPv4 or IPv6 literal ("::", "[::1]"); default "0.0.0.0" */
    uint16_t port;               /* default 8080 */
    int backlog;                 /* listen() backlog (default 4096) */
    /* TCP_NOTSENT_LOWAT of accepted sockets (default 128 KiB; UINT32_MAX:
     * the kernel's default). Bounds the unsent bytes a connection parks in
     * the kernel: without it send buffers autotune to tcp_wmem's max (4 MiB)
     * per connection, and thousands of large responses push the machine
     * into TCP memory pressure, where Linux drops incoming segments —
     * clients' requests among them (docs/architecture.md, Timers). */
    uint32_t notsent_lowat;
    const struct iox_protocol *proto;   /* required */
    const void *proto_cfg;              /* the protocol's own configuration */
};

#define IOX_MAX_LISTENERS 64u

struct iox_server_config {
    unsigned reactors;           /* default online CPUs */
    int pin;                     /* pin reactor i to the i-th allowed CPU (default 1; -1 off) */
    uint32_t shutdown_grace_ms;  /* SIGTERM: time for in-flight work (3000; UINT32_MAX: none) */
    struct iox_uring_config ring;
    /* Listeners (1 .. IOX_MAX_LISTENERS; none is a startup error naming
     * the fix). Zero fields of each get the defaults above; an HTTP server
     * with everything defaulted is one call: iox_http_serve. */
    const struct iox_listener_config *listeners;
    unsigned nlisteners;
    void *app_ctx;
    /* Runs on each reactor thread after its ring exists, before the
     * listeners' protocols open; open client pools here. Non-zero aborts
     * startup. */
    int (*on_start)(struct iox_reactor *r, void *app_ctx);
    /* Runs on each reactor thread when it stops. */
    void (*on_stop)(struct iox_reactor *r, void *app_ctx);
    /* Runs on the main thread on SIGHUP (e.g. re-snapshot files). */
    void (*on_sighup)(void *app_ctx);
};

/* Zero fields get: reactors = online CPUs, pin = 1, shutdown_grace_ms =
 * 3000, ring = iox_seam_uring_create's defaults; a listener's: host
 * 0.0.0.0, port 8080, backlog 4096, notsent_lowat 128 KiB. iox_server_run
 * applies them to its own copy; call this to see them beforehand. */
void iox_server_config_defaults(struct iox_server_config *cfg);

/* Fill cfg's zero fields from the environment (REACTORS, IOX_PIN,
 * IOX_SHUTDOWN_GRACE_MS, IOX_RECV_BUFFERS, IOX_RECV_BUFSIZE, IOX_RECV_BUFS,
 * IOX_SQ_ENTRIES, IOX_DIRECT_FDS=auto|on|off). Returns 0, or -EINVAL with a
 * message in why (a malformed number or word). Defaults for what is still zero are applied by iox_server_run. */
int iox_server_config_from_env(struct iox_server_config *cfg, char *why, size_t why_len);
/* Fill a listener's zero fields from HOST, PORT and IOX_NOTSENT_LOWAT
 * (0 = the kernel default). 0 or -EINVAL with why. */
int iox_listener_config_from_env(struct iox_listener_config *l, char *why, size_t why_len);

/* Start the reactors, serve until SIGTERM/SIGINT, then drain and stop.
 * Returns the process exit status: 0 after a clean shutdown, 1 when startup
 * failed (one line naming the cause and the fix is printed). */
int iox_server_run(const struct iox_server_config *cfg);

/* ---- The registry: kinds, services, messages -------------------------------
 *
 * A kind is anything that owns operations on the reactor's ring — a server
 * protocol's connections, a client pool, file streams, an application's own
 * sockets. It registers its hooks once per reactor (on the reactor's thread,
 * at startup: from on_start) and receives an owner id for the user_data of
 * its SQEs (iox_ud(op, owner, gen, idx)); its completions come back to
 * on_cqe. No id is reserved for any protocol. */
/* One number a kind reports to the stats scrape: a Prometheus metric name
 * (e.g. "ioxide_pg_queries_total"), its help line, whether it is a gauge
 * (else a counter), and its value on this reactor. Several kinds may report
 * the same name: the values add up per reactor. */
struct iox_counter {
    const char *name;
    const char *help;
    uint8_t gauge;
    uint64_t value;
};

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
    /* Counters for the stats scrape (optional): fill at most max entries of
     * out and return how many. Runs on the reactor's thread when a scrape
     * asks (not the hot path); names and help are static strings. */
    unsigned (*counters)(struct iox_reactor *r, void *ctx, struct iox_counter *out, unsigned max);
    /* SIGHUP reached this reactor (optional): reopen log files, reload.
     * Runs on the reactor's thread at a safe point of its loop, before the
     * IOX_MSG_HUP handler (iox_reactor_on_msg) if one is registered. */
    void (*on_hup)(struct iox_reactor *r, void *ctx);
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
/* Every registered kind's counters (struct iox_kind.counters), at most max,
 * entries of one name summed. Returns how many were written. On r's thread. */
unsigned iox_reactor_counters(struct iox_reactor *r, struct iox_counter *out, unsigned max);

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
struct iox_msg_out;
struct iox_service_slot { const struct iox_service_key *key; void *svc; };

/* A listener on one reactor. */
struct iox_listener_rt {
    int fd;
    uint8_t armed, paused;       /* paused: 1 protocol full, 2 out of fds (one tick) */
    const struct iox_protocol *proto;
    void *ctx;                   /* the protocol's state for it on this reactor */
};

struct iox_reactor {
    unsigned id, nreactors;
    struct iox_seam *seam;
    struct iox_seam_uring *uring;     /* NULL on the simulated seam */
    const struct iox_server_config *cfg;
    pthread_t thread;
    int ring_fd;
    int *peer_ring_fds;               /* nreactors entries; read-only after startup */
    struct iox_listener_rt *listeners;
    unsigned nlisteners;
    uint8_t stopping, stopped;
    uint64_t now_ms;                  /* coarse monotonic clock, refreshed per tick */
    uint64_t stop_deadline_ms;        /* stopping: when the grace ends */
    struct iox_msg_out *msg_out;      /* per destination: this turn's messages, the batch in flight (reactor.c) */
    /* The registry (kind.c): grown at registration, indexed by owner id. */
    struct iox_kind_slot *kinds;
    unsigned nkinds;
    struct iox_service_slot *services;
    unsigned nservices;
    iox_msg_handler *msg_handlers;    /* indexed by message kind */
    uint32_t nmsg_handlers;
    /* Counters (this reactor only). */
    uint64_t n_accepted, n_stale_cqes, n_accept_pauses, n_cqes, n_enters;
    uint64_t n_msgs_sent, n_msgs_received, n_msg_batches;   /* messages; MSG_RINGs that carried them */
    uint32_t tick_ms;
    uint32_t want_conns;              /* the protocols' connections (sizes the direct descriptor table) */
    uint8_t tick_armed;
    uint8_t tick_errors;     /* tick timeouts in a row that failed instead of expiring */
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
/* End-of-turn work: every kind's on_flush (sends, recv re-arms), message
 * retries, accept re-arms, the tick. Called once per loop turn before
 * iox_reactor_turn. */
void iox_reactor_flush(struct iox_reactor *r);
/* One kernel entry and what it brought: submit everything queued, wait for
 * at least one completion (DEFER_TASKRUN runs task work here), then
 * dispatch the ready completions (in batches of 256 until one is not full:
 * later ones wait for the next call). The reactor threads, the embedded
 * reactor (iox_reactor_run_until) and the pg pool's close all turn through
 * here. Real ring only (on the simulated seam the test completes ops).
 * Returns 0, or -errno from io_uring_enter. */
int iox_reactor_turn(struct iox_reactor *r);
/* Stop accepting on a listener because its protocol is full (its table:
 * the backlog holds what arrives meanwhile), and resume once it has room.
 * `listener` is the index its protocol's open() was given. */
void iox_reactor_accept_pause(struct iox_reactor *r, unsigned listener);
void iox_reactor_accept_resume(struct iox_reactor *r, unsigned listener);
/* Ask for a tick at least every `ms` (10..250; a kind whose deadlines are
 * short wants a finer tick). The tick is the finest asked, 250 ms by
 * default. Call from open/on_start. */
void iox_reactor_want_tick(struct iox_reactor *r, uint32_t ms);
/* From a protocol's open(): it holds up to n connections on this reactor
 * (summed over listeners; sizes the ring's direct descriptor table,
 * IOX_DIRECT_FDS, created after every protocol opened). */
static inline void iox_reactor_want_conns(struct iox_reactor *r, uint32_t n) { r->want_conns += n; }
/* Read an unsigned environment variable into *out when it is set: 0, or
 * -EINVAL with "NAME=value is not a number in [min, max]" in why. */
int iox_env_u32(const char *name, uint32_t *out, uint32_t min, uint32_t max, char *why, size_t n);
/* Set the coarse clock (tests) and fire timers that are due. */
void iox_reactor_advance_clock(struct iox_reactor *r, uint64_t now_ms);
/* Begin a graceful stop on this reactor (what SIGTERM does). */
void iox_reactor_begin_stop(struct iox_reactor *r);

/* Register (h) or clear (NULL) the handler for message kind (IOX_MSG_APP0
 * and up, < 65536). 0, -EINVAL or -ENOMEM. */
int iox_reactor_on_msg(struct iox_reactor *r, uint32_t kind, iox_msg_handler h);
/* The handler for a message kind, or NULL. */
iox_msg_handler iox_reactor_msg_handler(const struct iox_reactor *r, uint32_t kind);
/* Send m to reactor `to` (m->kind set by the caller), on r's thread. 0 when
 * queued: the sender no longer owns m; it leaves at the end of this loop
 * turn with every other message for `to` in one MSG_RING (a full target
 * CQ is retried on later turns). -EINVAL (no such reactor, m NULL);
 * -ENOMEM only when the per-destination queues could not be allocated
 * (iox_reactor_msgs_init was not called, and the lazy allocation failed). */
int iox_reactor_send_msg(struct iox_reactor *r, unsigned to, struct iox_msg *m);
/* Allocate r's per-destination message queues (r->nreactors entries) now,
 * so no send ever allocates; the server does it at startup. 0 or -ENOMEM;
 * idempotent. */
int iox_reactor_msgs_init(struct iox_reactor *r);
/* Messages sent by r and not yet known delivered (queued, or in a batch
 * whose MSG_RING has not completed). A stopping reactor leaves its loop
 * only at 0. */
unsigned iox_reactor_msgs_outstanding(const struct iox_reactor *r);

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
