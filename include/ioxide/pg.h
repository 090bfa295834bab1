/* ioxide/pg.h — the PostgreSQL client on a reactor's ring: a per-reactor pool
 * of pipelined connections.
 *
 * Model
 *  - One pool per reactor, opened on the reactor thread (on_start) and used
 *    only there: no locks, nothing shared. Connections are opened on the
 *    ring (IORING_OP_SOCKET + IORING_OP_CONNECT, TCP or Unix socket per
 *    pg_conninfo.h), negotiate TLS over TCP per sslmode (SSLRequest, then
 *    OpenSSL on memory BIOs: the ring moves the ciphertext, nothing
 *    blocks; docs/pg-client.md "TLS") and authenticate with trust,
 *    cleartext, MD5 or SCRAM-SHA-256 as the server asks.
 *  - Each connection is the generated machine pg_conn
 *    (spec/machines/pg_conn.toml); actions in runtime/pg/pg_conn.c.
 *  - Queries use the extended protocol with named prepared statements
 *    (Parse once per connection per statement, then Bind/Execute/Sync every
 *    time) or the simple protocol. Every query ends with its own Sync, so
 *    results are matched to queries in FIFO order by ReadyForQuery, and an
 *    ErrorResponse fails only its own query.
 *  - Many queries are in flight per connection (up to pipeline_max). The
 *    pool keeps few connections deep rather than many shallow: a new query
 *    goes to the deepest up connection still under `depth` in flight
 *    (preferring one that already has bytes queued this turn), so one
 *    loop turn's queries leave together on one connection; only when every
 *    used connection is at `depth` does traffic spill to another one (the
 *    one with the fewest in flight, up to pipeline_max), and then the pool
 *    grows by one session if it has fewer than `size` (sized by load: it
 *    opens `min_size` at start and never closes one for being idle; it
 *    grows again only once every session it wants is up). PostgreSQL's CPU
 *    per query falls with the number of queries each of its reads brings
 *    (docs/pg-client.md). When every up connection is at pipeline_max the
 *    query waits in a bounded FIFO (queue_max). When no
 *    connection is up, a query fails at once (-ENOTCONN): a service in front
 *    answers 503 instead of waiting for a database that is down.
 *  - Queries queued during one loop turn leave in one send per connection,
 *    at the end of the turn (the pool kind's on_flush hook).
 *  - A query past its deadline (query_timeout_ms) is cancelled as libpq's
 *    PQcancel does it: it is answered at once (IOX_PG_FAILED, -ETIMEDOUT;
 *    pg mode answers 504), a CancelRequest with the session's
 *    BackendKeyData goes to the server on a fresh connection on the ring
 *    (plaintext, as libpq before 17 sends it), and the session keeps
 *    serving: the server's answer to the cancelled query (57014
 *    query_canceled, or its rows if it finished meanwhile) is swallowed,
 *    the queries behind it complete normally. A cancel that reaches the
 *    server after the slow query ended can cancel the NEXT query on that
 *    session (libpq has the same race): that one is answered IOX_PG_ERROR
 *    with sqlstate 57014, never with another query's result. A session
 *    still not past the cancelled query query_timeout_ms after the cancel
 *    is dropped. docs/pg-client.md "Cancel".
 *  - A lost connection (EOF, reset, FATAL, protocol error, a cancel that
 *    did not help) fails its in-flight queries with a clear message, and the slot
 *    reconnects with exponential backoff (100 ms doubling, capped at
 *    2 s) driven by the reactor's tick and clock (r->now_ms): when the
 *    database comes back the pool recovers by itself.
 *  - Several hosts (host=a,b port=p1,p2, or postgresql://a:p1,b:p2/db):
 *    each session passes over the list as libpq does — in order, or
 *    shuffled per pass (load_balance_hosts=random, the pool's own PRNG,
 *    seeded by cfg.lb_seed) — moving on at once when a host cannot be
 *    reached or does not fit target_session_attrs (any, read-write,
 *    read-only, primary, standby, prefer-standby: decided by the
 *    in_hot_standby / default_transaction_read_only the server reports,
 *    else by SHOW transaction_read_only / SELECT pg_is_in_recovery(),
 *    before the session takes any query). A server that refuses the
 *    startup or the authentication ends the pass (libpq tries no other
 *    host then); the backoff is per pass. So with read-write, a failover
 *    (the primary gone, a standby promoted) is followed by the reconnects
 *    alone. A session whose server turns read-only while it stays up is
 *    not noticed (as in libpq). docs/pg-client.md "Several hosts".
 *  - sslmode allow / prefer retry a host once the other way (allow: TLS
 *    after a refused plaintext session; prefer: plaintext after a failed
 *    handshake or a refused TLS session), as libpq.
 *  - Hot path: no malloc (buffers and request slots are allocated when the
 *    pool opens and grow only for results or parameters larger than seen
 *    before), no locks, no syscalls besides the ring's.
 */
#ifndef IOX_PG_H
#define IOX_PG_H
#include <ioxide/pg_parser.h>
#include <stddef.h>
#include <stdint.h>

struct iox_reactor;
struct iox_pg_pool;

/* Pool settings. Zero fields take the defaults. */
struct iox_pg_pool_config {
    const char *conninfo;      /* libpq-style keywords on top of PG* env (may be NULL) */
    unsigned size;             /* connections at most (PG_POOL_SIZE, default 4) */
    unsigned min_size;         /* sessions opened at start and always kept (PG_POOL_MIN,
                                * default 1, at most size); more are opened under load */
    unsigned pipeline_max;     /* queries in flight per connection (PG_PIPELINE_MAX, 64) */
    unsigned depth;            /* in flight on a connection before the next one is used
                                * (PG_POOL_DEPTH, default 32, at most pipeline_max) */
    unsigned queue_max;        /* waiting queries when all are full (PG_QUEUE_MAX, 1024) */
    uint32_t backoff_max_ms;   /* reconnect backoff cap (2000) */
    uint64_t lb_seed;          /* load_balance_hosts=random: seed of the pool's own PRNG
                                * (0: from the clock and the pool's address); a test sets
                                * it to get the same host orders every run */
};

/* Fill cfg's zero fields from PG_POOL_SIZE, PG_POOL_MIN, PG_PIPELINE_MAX, PG_POOL_DEPTH, PG_QUEUE_MAX.
 * Returns 0 or -EINVAL (a malformed number; err says which). */
int iox_pg_pool_config_from_env(struct iox_pg_pool_config *cfg, char *err, size_t errlen);

/* Open a pool on reactor r, on r's thread (on_start). Loads the conninfo
 * (environment + cfg->conninfo), allocates everything, registers the
 * pool's kind (its completions and end-of-turn flush) and the pool as the
 * reactor's pg service (iox_pg_pool_of: the last one opened), and starts
 * connecting every slot on the ring —
 * it does not wait: a database that is down is not an error here, the
 * slots keep retrying (cfg->min_size of them at first; more under load).
 * Returns 0 and *out; -EINVAL with err set when the
 * conninfo is bad or a host of the list needs DNS; -ENOMEM. */
int iox_pg_pool_open(struct iox_reactor *r, const struct iox_pg_pool_config *cfg,
                     struct iox_pg_pool **out, char *err, size_t errlen);

/* Close and free a pool, on its reactor's thread (on_stop, or a test after
 * its loop). In-flight and waiting queries get their callback with
 * -ECANCELED; ops still in the ring are cancelled and waited for (bounded,
 * 500 ms) so no buffer is freed under the kernel; sockets are closed. */
void iox_pg_pool_close(struct iox_pg_pool *p);

/* The first half of close, without freeing: in-flight and waiting queries
 * get -ECANCELED, every session is dropped (its ops cancelled, its socket
 * closed once they are in), the tick is cancelled; new queries get
 * -ESHUTDOWN. The loop keeps running and delivers the completions; once
 * iox_pg_pool_ops() is 0 nothing of the pool is left in the ring and close
 * frees at once. Idempotent; close calls it. On the simulated seam (where
 * close cannot wait for the ring) a test calls it, runs turns until
 * iox_pg_pool_ops() is 0, then closes. */
void iox_pg_pool_stop(struct iox_pg_pool *p);
/* Ops of the pool still in the ring (sessions and tick). */
unsigned iox_pg_pool_ops(const struct iox_pg_pool *p);

/* The pool a reactor opened (its pg service), or NULL. */
struct iox_pg_pool *iox_pg_pool_of(struct iox_reactor *r);
/* The reactor the pool runs on. */
struct iox_reactor *iox_pg_pool_reactor(struct iox_pg_pool *p);
/* Connections currently ready for queries (states ready and busy). */
unsigned iox_pg_pool_up(const struct iox_pg_pool *p);
/* Why the last session ended or could not start (for a 503 body), "" if none. */
const char *iox_pg_pool_last_error(const struct iox_pg_pool *p);
/* Sessions established since the pool opened (reconnects included); a
 * session rejected by target_session_attrs is not counted. */
uint64_t iox_pg_pool_sessions(const struct iox_pg_pool *p);

/* Asynchronous messages (LISTEN/NOTIFY and notices; docs/pg-client.md
 * "Notifications"). Both callbacks run on the pool's reactor thread, from
 * completion processing, while the session's input is parsed: they may
 * start queries but must not close the pool. Every pointer is valid only
 * during the call; the strings are NUL-terminated.
 *
 * LISTEN is per session: a channel is listened on by the session that ran
 * LISTEN, and a session the pool reconnects (after a restart, a lost
 * connection or a cancel that did not help) listens on nothing. A LISTEN
 * sent as a query lands on whichever session the pool picks and is gone
 * with it: use iox_pg_listen, which the pool re-issues on a new session
 * (what libpq users do by hand after PQreset). */
struct iox_pg_notification {
    const char *channel;
    const char *payload;
    int32_t pid;                 /* the notifying backend's process id */
};
typedef void (*iox_pg_notify_cb)(void *arg, const struct iox_pg_notification *n);

/* A NoticeResponse (RAISE NOTICE, WARNING, ...). Fields the server left
 * out are "". */
struct iox_pg_notice {
    const char *severity;        /* "NOTICE", "WARNING", ... (not localized) */
    const char *sqlstate;
    const char *message;
    const char *detail;
    const char *hint;
    int32_t pid;                 /* the backend of the session that got it */
};
typedef void (*iox_pg_notice_cb)(void *arg, const struct iox_pg_notice *n);

/* Set (fn != NULL) or clear (NULL) the pool's notification callback, on its
 * reactor's thread, at any time. Without one, notifications are dropped.
 * arg is passed back as is. */
void iox_pg_on_notify(struct iox_pg_pool *p, iox_pg_notify_cb fn, void *arg);
/* Likewise for notices. Without one, a notice is logged at debug level. */
void iox_pg_on_notice(struct iox_pg_pool *p, iox_pg_notice_cb fn, void *arg);

/* LISTEN on channel for the pool's life, as libpq users re-LISTEN by hand
 * after a reconnect: the pool keeps the channel (copied) and LISTENs on
 * exactly one of its sessions at a time (so a notification arrives once),
 * and again on another session, or the next one up, whenever that one is
 * lost (a restart, a failover, a cancel that did not help). Notifications
 * sent while no session listens are lost, as with libpq. The LISTEN runs
 * as a query of the pool's own (its failure is logged). On the pool's
 * reactor thread. Returns 0; -EINVAL (empty, or 64 bytes or more:
 * PostgreSQL's NAMEDATALEN); -ENOSPC after IOX_PG_LISTEN_MAX channels;
 * -EEXIST when already listened; -ESHUTDOWN when closing. */
#define IOX_PG_LISTEN_MAX 16
int iox_pg_listen(struct iox_pg_pool *p, const char *channel);

/* A statement prepared by name once per connection. Define it once (static
 * storage), initialise with iox_pg_stmt_init before any pool uses it; it is
 * read-only afterwards and may be shared by every reactor. */
struct iox_pg_stmt {
    const char *sql;
    uint16_t nparams;
    uint8_t id;               /* 0..63, assigned by iox_pg_stmt_init */
    char name[16];            /* "iox_s<id>" */
};
#define IOX_PG_MAX_STMTS 64
/* Give stmt a process-wide id and name. sql is referenced, not copied.
 * Returns 0, or -ENOSPC after IOX_PG_MAX_STMTS statements. Thread-safe. */
int iox_pg_stmt_init(struct iox_pg_stmt *stmt, const char *sql, uint16_t nparams);

enum iox_pg_status {
    IOX_PG_OK = 0,       /* the query ran; rows below */
    IOX_PG_ERROR = 1,    /* the server answered ErrorResponse: sqlstate, message */
    IOX_PG_FAILED = 2,   /* no answer: the session was lost, timed out, or the
                            pool closed; err is -ECONNRESET, -ETIMEDOUT,
                            -EPROTO or -ECANCELED, message says why.
                            -ETIMEDOUT: past query_timeout_ms (the query was
                            cancelled; the session lives on) or waiting for
                            a connection too long — a gateway timeout, 504 */
};

/* A query's outcome. Everything it points to is valid only during the
 * callback. cells is row-major: cell (row, col) is cells[row * ncols + col];
 * a cell with len -1 is SQL NULL (ptr NULL); text-format values are NOT
 * NUL-terminated. ncols comes from the DataRows (0 when there are none).
 * For a simple-protocol query with several statements, the rows are those
 * of the last statement that returned rows. */
struct iox_pg_res {
    int status;                      /* enum iox_pg_status */
    int err;                         /* 0, or -errno for IOX_PG_FAILED */
    const char *sqlstate;            /* "" unless status is ERROR (or a FATAL) */
    const char *message;             /* "" on success */
    const char *command_tag;         /* "SELECT 1", ... ("" when none) */
    uint32_t nrows, ncols;
    const struct iox_pg_str *cells;
    struct iox_pg_pool *pool;
};
static inline const struct iox_pg_str *iox_pg_cell(const struct iox_pg_res *res,
                                                   uint32_t row, uint32_t col)
{
    return &res->cells[(size_t)row * res->ncols + col];
}

/* Called exactly once per accepted query, on the pool's reactor thread,
 * from completion processing (never from inside iox_pg_query). It may
 * start new queries. */
typedef void (*iox_pg_result_cb)(void *user, const struct iox_pg_res *res);

/* Run a prepared statement with nparams text parameters (values[i] NULL =
 * SQL NULL; the values are copied before the call returns). Returns 0 when
 * accepted — cb will be called once — or, with cb never called:
 *   -EAGAIN    every connection is full and the wait queue too (→ 503)
 *   -ENOTCONN  no connection is up (database down or still connecting)
 *   -ESHUTDOWN the pool is closing
 *   -EINVAL    nparams differs from the statement's
 *   -ENOMEM / -ENOSPC  the parameters do not fit the buffers
 * On the pool's reactor thread only. */
int iox_pg_query(struct iox_pg_pool *p, const struct iox_pg_stmt *stmt, int nparams,
                 const char *const *values, iox_pg_result_cb cb, void *user);

/* As iox_pg_query, with a user value of up to IOX_PG_USER_MAX bytes kept
 * by value with the query: the callback's `user` points at a copy, valid
 * during the callback. For a handle that must not be a pointer — an HTTP
 * request's struct iox_conn_ref, which derefs to NULL once the request is
 * gone — so no application packs bits into a void *. -EINVAL when
 * user_len is too large; otherwise as iox_pg_query. */
#define IOX_PG_USER_MAX 24
int iox_pg_query_v(struct iox_pg_pool *p, const struct iox_pg_stmt *stmt, int nparams,
                   const char *const *values, iox_pg_result_cb cb, const void *user, size_t user_len);

/* Run sql with the simple protocol (Query message; may hold several
 * statements). Returns as iox_pg_query. */
int iox_pg_query_simple(struct iox_pg_pool *p, const char *sql, iox_pg_result_cb cb, void *user);

#endif
