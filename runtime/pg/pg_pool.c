/* pg_pool.c — the per-reactor PostgreSQL pool: request slots, the wait
 * queue, the completion handler for the pool's kind, the end-of-turn flush, the
 * tick (connect/query deadlines, reconnect backoff) and the query API.
 * See ioxide/pg.h for the model, pg_conn.c for the session machine's actions. */
#include "pg_internal.h"
#include "pg_conn_machine.h"
#include <ioxide/log.h>
#include <ioxide/reactor.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS (50ull * 1000000ull)
#define RBUF_INIT (16u * 1024u)
#define WBUF_MAX (64u << 20)
#define REQ_MSG_MAX (64u << 20)

uint64_t pg_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);   /* vDSO: no syscall */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The pool's clock: the monotonic clock on a real ring; on the simulated
 * seam the reactor's clock (r->now_ms, moved by iox_reactor_advance_clock),
 * so tests control backoff and deadlines. */
uint64_t pg_now(const struct iox_pg_pool *p)
{
    return p->r->uring ? pg_mono_ms() : p->r->now_ms;
}

uint64_t pg_ud(struct iox_pg_conn *c, unsigned op)
{
    return iox_ud(op, (unsigned)c->pool->owner, c->gen, c->idx);
}

void pg_conn_deliver(struct iox_pg_conn *c, int event, const struct iox_pg_event *ev)
{
    static const struct iox_pg_event none = {0, 0};
    pg_conn_fire(c, &c->state, event, ev ? ev : &none);
}

int pg_conn_is_up(const struct iox_pg_conn *c)
{
    return c->state == PG_CONN_S_READY || c->state == PG_CONN_S_BUSY;
}

/* The session is over and its socket not closed yet: every completion is op_done. */
static int pg_conn_is_closing(const struct iox_pg_conn *c)
{
    return c->state == PG_CONN_S_CLOSING || c->state == PG_CONN_S_CLOSING_SOCKET;
}

/* ---- configuration ---- */

static int env_num(const char *name, unsigned *out, unsigned min, unsigned max, char *err, size_t n)
{
    const char *v = getenv(name);
    if (*out || !v || !*v) return 0;
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (errno || *end || v[0] == '-' || x < min || x > max) {
        if (err) snprintf(err, n, "%s=%s is not a number in [%u, %u]", name, v, min, max);
        return -EINVAL;
    }
    *out = (unsigned)x;
    return 0;
}

int iox_pg_pool_config_from_env(struct iox_pg_pool_config *cfg, char *err, size_t errlen)
{
    int rc = 0;
    rc |= env_num("PG_POOL_SIZE", &cfg->size, 1, 1024, err, errlen);
    rc |= env_num("PG_POOL_MIN", &cfg->min_size, 1, 1024, err, errlen);
    rc |= env_num("PG_PIPELINE_MAX", &cfg->pipeline_max, 1, 65536, err, errlen);
    rc |= env_num("PG_POOL_DEPTH", &cfg->depth, 1, 65536, err, errlen);
    rc |= env_num("PG_QUEUE_MAX", &cfg->queue_max, 0, 1u << 20, err, errlen);
    return rc ? -EINVAL : 0;
}

int iox_pg_stmt_init(struct iox_pg_stmt *stmt, const char *sql, uint16_t nparams)
{
    static unsigned next_id;
    unsigned id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
    if (id >= IOX_PG_MAX_STMTS) return -ENOSPC;
    stmt->sql = sql;
    stmt->nparams = nparams;
    stmt->id = (uint8_t)id;
    snprintf(stmt->name, sizeof stmt->name, "iox_s%u", id);
    return 0;
}

/* ---- request slots ---- */

static struct pg_req *req_alloc(struct iox_pg_pool *p)
{
    struct pg_req *q = p->free_reqs;
    if (!q) return NULL;
    p->free_reqs = q->next;
    q->next = NULL;
    q->sent_parse = 0;
    iox_pg_wbuf_init_fixed(&q->msg, q->inl, sizeof q->inl);
    return q;
}

void pg_req_free(struct iox_pg_pool *p, struct pg_req *q)
{
    iox_pg_wbuf_free(&q->msg);   /* frees only a growable (large-parameter) buffer */
    q->cb = NULL;
    q->next = p->free_reqs;
    p->free_reqs = q;
}

/* The callback runs after the slot is free (it may start queries), so a
 * by-value user value is copied out first. */
void pg_req_complete(struct iox_pg_conn *c, struct pg_req *q, const struct iox_pg_res *res)
{
    iox_pg_result_cb cb = q->cb;
    if (res->status != IOX_PG_OK) c->pool->n_failed++;   /* server errors and lost answers */
    _Alignas(8) unsigned char val[IOX_PG_USER_MAX];
    void *user = q->user;
    if (user == q->user_val) { memcpy(val, q->user_val, sizeof val); user = val; }
    pg_req_free(c->pool, q);
    cb(user, res);
}

void pg_fail_req(struct iox_pg_pool *p, struct pg_req *q, int err, const char *sqlstate, const char *msg)
{
    struct iox_pg_res res = {
        .status = IOX_PG_FAILED, .err = err, .sqlstate = sqlstate ? sqlstate : "",
        .message = msg, .command_tag = "", .pool = p,
    };
    p->n_failed++;
    iox_pg_result_cb cb = q->cb;
    _Alignas(8) unsigned char val[IOX_PG_USER_MAX];
    void *user = q->user;
    if (user == q->user_val) { memcpy(val, q->user_val, sizeof val); user = val; }
    pg_req_free(p, q);
    cb(user, &res);
}

static void list_push(struct pg_req_list *l, struct pg_req *q)
{
    q->next = NULL;
    if (l->tail) l->tail->next = q; else l->head = q;
    l->tail = q;
    l->n++;
}

static struct pg_req *list_pop(struct pg_req_list *l)
{
    struct pg_req *q = l->head;
    if (!q) return NULL;
    l->head = q->next;
    if (!l->head) l->tail = NULL;
    l->n--;
    q->next = NULL;
    return q;
}

/* ---- building queries ---- */

static int build_exec(struct iox_pg_wbuf *w, const struct iox_pg_stmt *stmt, int nparams,
                      const char *const *values, const char *sql)
{
    if (!stmt) return iox_pg_build_query(w, sql);
    int rc;
    if ((rc = iox_pg_build_bind(w, "", stmt->name, (uint16_t)nparams, values, NULL, 0))) return rc;
    if ((rc = iox_pg_build_execute(w, "", 0))) return rc;
    return iox_pg_build_sync(w);
}

/* Put q's messages on connection c: the statement's Parse first when c has
 * not seen it, then either q's prebuilt bytes (msg != NULL) or freshly built
 * ones. All or nothing. */
static int assign(struct iox_pg_conn *c, struct pg_req *q, const struct iox_pg_wbuf *msg,
                  int nparams, const char *const *values, const char *sql)
{
    struct iox_pg_wbuf *w = &c->wb[c->fill];
    size_t len0 = w->len;
    uint64_t prepared0 = c->prepared;
    int rc = 0;
    q->sent_parse = 0;
    if (q->stmt && !(c->prepared & (1ull << q->stmt->id))) {
        rc = iox_pg_build_parse(w, q->stmt->name, q->stmt->sql, q->stmt->nparams, NULL);
        c->prepared |= 1ull << q->stmt->id;
        q->sent_parse = 1;
    }
    if (!rc) rc = msg ? iox_pg_wbuf_append(w, msg->buf, msg->len) : build_exec(w, q->stmt, nparams, values, sql);
    if (rc) {
        w->len = len0;
        c->prepared = prepared0;
        q->sent_parse = 0;
        return rc;
    }
    list_push(&c->inflight, q);
    return 0;
}

/* Few connections deep rather than many shallow. PostgreSQL pays per
 * wakeup and per read far more than per pipelined query (libpq pipeline
 * mode, one Sync per query: ~14 us of backend CPU per query at depth 1,
 * ~6 us at depth 16), and spreading one turn's queries over every
 * connection (the old "fewest in flight") sent each a write of one or two
 * queries. So: the deepest up connection under cfg.depth, preferring one
 * that already has bytes queued this turn (they leave in the same write);
 * when every up connection is at cfg.depth, the one with the fewest in
 * flight under pipeline_max (an idle session joins in only under load). */
/* Under load (pick found every up connection at cfg.depth): one more
 * session, if the pool has room and every session it wants is up (so a
 * burst opens one at a time, not all at once). Slots at want and above were
 * never opened: the new one is `down` with no backoff and opens now. */
static void grow(struct iox_pg_pool *p)
{
    if (p->stopping || p->want >= p->cfg.size || p->nup < p->want) return;
    struct iox_pg_conn *c = &p->conns[p->want++];
    IOX_DEBUG("pg: pool grows to %u sessions (every up one has %u in flight)", p->want, p->cfg.depth);
    if (c->state == PG_CONN_S_DOWN) pg_conn_deliver(c, PG_CONN_EV_OPEN, NULL);
}

static struct iox_pg_conn *pick(struct iox_pg_pool *p)
{
    struct iox_pg_conn *deep = NULL, *spill = NULL;
    unsigned deep_score = 0;
    for (unsigned i = 0; i < p->cfg.size; i++) {
        struct iox_pg_conn *c = &p->conns[i];
        if (!pg_conn_is_up(c) || c->inflight.n >= p->cfg.pipeline_max) continue;
        if (c->inflight.n < p->cfg.depth) {
            unsigned score = (c->wb[c->fill].len ? 0x80000000u : 0) | c->inflight.n;
            if (!deep || score > deep_score) { deep = c; deep_score = score; }
        } else if (!spill || c->inflight.n < spill->inflight.n) {
            spill = c;
        }
    }
    if (deep) return deep;
    grow(p);
    return spill;
}

void pg_pool_take_waiting(struct iox_pg_pool *p)
{
    while (p->waiting.head) {
        struct iox_pg_conn *c = pick(p);
        if (!c) return;
        struct pg_req *q = list_pop(&p->waiting);
        /* The deadline restarts when the query reaches a connection: the
         * wait in the queue was bounded by its own deadline, and a session
         * is judged stuck only by time spent on it — counting the queue wait
         * dropped healthy sessions with their whole pipeline (found by
         * fuzz_pg_conn: corpus seed queue-wait-counts-toward-query-timeout). */
        if (q->deadline_ms) q->deadline_ms = pg_now(p) + p->ci.query_timeout_ms;
        int rc = assign(c, q, &q->msg, 0, NULL, NULL);
        if (rc) pg_fail_req(p, q, rc, NULL, "the query does not fit the connection's write buffer");
    }
}

void pg_pool_note_down(struct iox_pg_pool *p)
{
    if (p->nup) return;
    /* No connection is up: waiting queries fail now rather than wait for
     * a database that may be gone for long (503 beats a hang). */
    if (p->was_up && !p->stopping)
        IOX_WARN("pg: no connection to the database is up: %s", p->last_error);
    p->was_up = 0;
    struct pg_req *q;
    while ((q = list_pop(&p->waiting)))
        pg_fail_req(p, q, p->stopping ? -ECANCELED : -ENOTCONN, NULL,
                    p->last_error[0] ? p->last_error : "no connection to the database");
}

static int submit(struct iox_pg_pool *p, const struct iox_pg_stmt *stmt, int nparams,
                  const char *const *values, const char *sql, iox_pg_result_cb cb, void *user,
                  const void *val, size_t val_len)
{
    if (val_len > IOX_PG_USER_MAX) return -EINVAL;
    if (p->stopping) return -ESHUTDOWN;
    if (stmt && nparams != stmt->nparams) return -EINVAL;
    if (!p->nup) return -ENOTCONN;
    struct iox_pg_conn *c = pick(p);
    if (!c && p->waiting.n >= p->cfg.queue_max) return -EAGAIN;
    struct pg_req *q = req_alloc(p);
    if (!q) return -EAGAIN;
    q->stmt = stmt;
    q->cb = cb;
    q->user = user;
    if (val) {
        memcpy(q->user_val, val, val_len);
        q->user = q->user_val;
    }
    q->deadline_ms = p->ci.query_timeout_ms ? pg_now(p) + p->ci.query_timeout_ms : 0;
    int rc;
    if (c) {
        rc = assign(c, q, NULL, nparams, values, sql);
    } else {
        /* Every connection is full: keep the bytes (the caller's values
         * are gone after we return) and wait in line. */
        rc = build_exec(&q->msg, stmt, nparams, values, sql);
        if (rc == -ENOSPC) {
            iox_pg_wbuf_init_growable(&q->msg, REQ_MSG_MAX);
            rc = build_exec(&q->msg, stmt, nparams, values, sql);
        }
        if (!rc) { list_push(&p->waiting, q); p->n_waited++; }
    }
    if (rc) { pg_req_free(p, q); return rc; }
    return 0;
}

static int counted(struct iox_pg_pool *p, int rc)
{
    if (rc == 0) p->n_queries++;
    else p->n_refused++;
    return rc;
}

int iox_pg_query(struct iox_pg_pool *p, const struct iox_pg_stmt *stmt, int nparams,
                 const char *const *values, iox_pg_result_cb cb, void *user)
{
    if (!stmt) return -EINVAL;
    return counted(p, submit(p, stmt, nparams, values, NULL, cb, user, NULL, 0));
}

int iox_pg_query_v(struct iox_pg_pool *p, const struct iox_pg_stmt *stmt, int nparams,
                   const char *const *values, iox_pg_result_cb cb, const void *user, size_t user_len)
{
    if (!stmt || !user) return -EINVAL;
    return counted(p, submit(p, stmt, nparams, values, NULL, cb, NULL, user, user_len));
}

int iox_pg_query_simple(struct iox_pg_pool *p, const char *sql, iox_pg_result_cb cb, void *user)
{
    if (!sql) return -EINVAL;
    return counted(p, submit(p, NULL, 0, NULL, sql, cb, user, NULL, 0));
}

/* ---- completions, flush, tick ---- */

static void arm_tick(struct iox_pg_pool *p)
{
    if (p->tick_armed || p->stopping) return;
    int rc = iox_seam_timeout(p->r->seam, TICK_NS, iox_ud(IOX_OP_TIMEOUT, (unsigned)p->owner, 0, PG_TICK_IDX));
    if (rc < 0) { IOX_WARN("pg: cannot arm the pool tick: %s (retrying next turn)", strerror(-rc)); return; }
    p->tick_armed = 1;
    p->ops++;
}

static void on_tick(struct iox_pg_pool *p)
{
    uint64_t now = pg_now(p);
    p->now_ms = now;
    for (unsigned i = 0; i < p->cfg.size && !p->stopping; i++) {
        struct iox_pg_conn *c = &p->conns[i];
        switch (c->state) {
        case PG_CONN_S_DOWN:
            if (i < p->want && now >= c->retry_at_ms) pg_conn_deliver(c, PG_CONN_EV_OPEN, NULL);
            break;
        case PG_CONN_S_SOCKETING: case PG_CONN_S_CONNECTING: case PG_CONN_S_SSL_REQUESTING:
        case PG_CONN_S_HANDSHAKING: case PG_CONN_S_AUTHENTICATING: case PG_CONN_S_CHECKING_SESSION:
            if (c->deadline_ms && now >= c->deadline_ms) {
                char msg[96];
                snprintf(msg, sizeof msg, "no session within %u ms (connect_timeout)", p->ci.connect_timeout_ms);
                pg_conn_set_fail(c, -ETIMEDOUT, msg);
                pg_conn_deliver(c, PG_CONN_EV_TIMEOUT, NULL);
            }
            break;
        case PG_CONN_S_READY: case PG_CONN_S_BUSY:
            if (c->inflight.head && c->inflight.head->deadline_ms && now >= c->inflight.head->deadline_ms) {
                /* The session is stuck behind this query: drop it (and its
                 * pipeline) rather than let everything behind it wait. */
                char msg[96];
                snprintf(msg, sizeof msg, "query timed out after %u ms (query_timeout_ms)", p->ci.query_timeout_ms);
                pg_conn_set_fail(c, -ETIMEDOUT, msg);
                pg_conn_deliver(c, PG_CONN_EV_TIMEOUT, NULL);
            }
            break;
        default:
            break;
        }
    }
    while (p->waiting.head && p->waiting.head->deadline_ms && now >= p->waiting.head->deadline_ms)
        pg_fail_req(p, list_pop(&p->waiting), -ETIMEDOUT, NULL, "query timed out waiting for a connection");
    arm_tick(p);
}

/* End of a loop turn: what was queued this turn leaves in one send per
 * connection. */
static void pg_flush(struct iox_reactor *r, void *ctx)
{
    (void)r;
    struct iox_pg_pool *p = ctx;
    for (unsigned i = 0; i < p->cfg.size; i++) {
        struct iox_pg_conn *c = &p->conns[i];
        if ((c->wb[c->fill].len || (c->tls && pg_tls_out_pending(c))) && !c->send_busy && c->fd >= 0)
            pg_conn_deliver(c, PG_CONN_EV_FLUSH, NULL);
    }
    arm_tick(p);
}

static void pg_dispatch(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    (void)r;
    struct iox_pg_pool *p = ctx;
    unsigned op = iox_ud_op(cqe->ud);
    uint32_t idx = iox_ud_idx(cqe->ud);
    if (idx == PG_GUARD_IDX) { p->guard_fired = 1; return; }   /* not counted in ops */
    p->ops--;
    if (idx == PG_CTL_CANCEL_IDX) return;
    if (idx == PG_TICK_IDX) {
        p->tick_armed = 0;
        if (cqe->res != -ETIME && cqe->res != -ECANCELED && cqe->res < 0)
            IOX_WARN("pg: pool tick: %s", strerror(-cqe->res));
        if (!p->stopping) on_tick(p);
        return;
    }
    if (idx >= p->cfg.size) {
        IOX_ERROR("pg: completion for unknown slot %u (op %u, res %d)", idx, op, cqe->res);
        return;
    }
    struct iox_pg_conn *c = &p->conns[idx];
    if (c->gen != iox_ud_gen(cqe->ud)) {
        /* Cannot happen while close waits for every op; kept as a guard. */
        r->n_stale_cqes++;
        if (op == IOX_OP_SOCKET && cqe->res >= 0) close(cqe->res);
        return;
    }
    c->ops--;
    struct iox_pg_event ev = {cqe->res, op};
    if (op == IOX_OP_SOCKET && cqe->res >= 0) c->fd = cqe->res;
    if (op == IOX_OP_RECV) c->recv_armed = 0;
    if (op == IOX_OP_CLOSE) {
        if (cqe->res < 0) IOX_WARN("pg: close of connection %u: %s", c->idx, strerror(-cqe->res));
        c->fd = -1;
        pg_conn_deliver(c, PG_CONN_EV_CLOSED, &ev);
        return;
    }
    if (pg_conn_is_closing(c)) {
        pg_conn_deliver(c, PG_CONN_EV_OP_DONE, &ev);
        return;
    }
    int res = cqe->res;
    switch (op) {
    case IOX_OP_SOCKET:
        if (res >= 0) { pg_conn_deliver(c, PG_CONN_EV_SOCKET_OK, &ev); return; }
        {
            char msg[128];
            snprintf(msg, sizeof msg, "socket: %s", strerror(-res));
            pg_conn_set_fail(c, res, msg);
        }
        break;
    case IOX_OP_CONNECT:
        if (res == 0) { pg_conn_deliver(c, PG_CONN_EV_CONNECT_OK, &ev); return; }
        {
            char msg[400];
            snprintf(msg, sizeof msg, "connect to %s port %u: %s", p->ci.hosts[c->host].host, p->ci.hosts[c->host].port,
                     strerror(-res));
            pg_conn_set_fail(c, res, msg);
        }
        break;
    case IOX_OP_RECV:
        if (res > 0) {
            if (!c->tls) c->rlen += (uint32_t)res;
            else if (pg_tls_received(c, (uint32_t)res) < 0) break;     /* reason set */
            pg_conn_deliver(c, PG_CONN_EV_RECV, &ev);
            return;
        }
        if (res == 0) pg_conn_set_fail(c, -ECONNRESET, "the server closed the connection");
        else {
            char msg[128];
            snprintf(msg, sizeof msg, "recv: %s", strerror(-res));
            pg_conn_set_fail(c, res, msg);
        }
        break;
    case IOX_OP_SEND:
        if (res > 0) { pg_conn_deliver(c, PG_CONN_EV_SENT, &ev); return; }
        {
            char msg[128];
            snprintf(msg, sizeof msg, "send: %s", res ? strerror(-res) : "sent nothing");
            pg_conn_set_fail(c, res ? res : -EIO, msg);
        }
        break;
    case IOX_OP_CANCEL:
        if (res < 0 && res != -ENOENT && res != -EALREADY)
            IOX_WARN("pg: cancel on connection %u: %s", c->idx, strerror(-res));
        return;
    default:
        IOX_ERROR("pg: unexpected op %u on connection %u (res %d)", op, c->idx, res);
        return;
    }
    /* A handshake cut short is a failed handshake (sslmode=prefer retries
     * the host without TLS, as libpq). */
    if (c->state == PG_CONN_S_HANDSHAKING) c->tls_failed = 1;
    pg_conn_deliver(c, PG_CONN_EV_IO_ERROR, &ev);
}

/* ---- open / close ---- */

static const struct iox_service_key pg_pool_key = {"pg pool"};
static unsigned pg_counters(struct iox_reactor *r, void *ctx, struct iox_counter *out, unsigned max)
{
    (void)r;
    const struct iox_pg_pool *p = ctx;
    const struct iox_counter c[] = {
        {"ioxide_pg_queries_total", "Queries the pool took.", 0, p->n_queries},
        {"ioxide_pg_refused_total", "Queries refused at once (pool full, no session up, stopping): 503s.", 0, p->n_refused},
        {"ioxide_pg_waited_total", "Queries that waited in the pool's queue for a session.", 0, p->n_waited},
        {"ioxide_pg_failed_total", "Queries taken that failed (server error, session lost, deadline).", 0, p->n_failed},
        {"ioxide_pg_sessions_total", "Sessions opened (authenticated).", 0, p->sessions},
        {"ioxide_pg_sessions_up", "Sessions up now.", 1, p->nup},
        {"ioxide_pg_waiting", "Queries in the queue now.", 1, p->waiting.n},
    };
    unsigned n = 0;
    for (; n < sizeof c / sizeof c[0] && n < max; n++) out[n] = c[n];
    return n;
}

static const struct iox_kind pg_kind = {.name = "pg", .on_cqe = pg_dispatch, .on_flush = pg_flush,
                                        .counters = pg_counters};

int iox_pg_pool_open(struct iox_reactor *r, const struct iox_pg_pool_config *cfg,
                     struct iox_pg_pool **out, char *err, size_t errlen)
{
    struct iox_pg_pool *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->r = r;
    p->cfg = *cfg;
    if (!p->cfg.size) p->cfg.size = 4;
    if (!p->cfg.pipeline_max) p->cfg.pipeline_max = 64;
    if (!p->cfg.depth) p->cfg.depth = 32;
    if (!p->cfg.min_size) p->cfg.min_size = 1;
    if (p->cfg.min_size > p->cfg.size) p->cfg.min_size = p->cfg.size;
    p->want = p->cfg.min_size;
    if (p->cfg.depth > p->cfg.pipeline_max) p->cfg.depth = p->cfg.pipeline_max;
    if (!p->cfg.queue_max) p->cfg.queue_max = 1024;
    if (!p->cfg.backoff_max_ms) p->cfg.backoff_max_ms = 2000;
    int rc = iox_pg_conninfo_load(&p->ci, cfg->conninfo, err, errlen);
    for (unsigned i = 0; !rc && i < p->ci.nhosts; i++)
        rc = iox_pg_conninfo_host_sockaddr(&p->ci, i, &p->sa[i], &p->salen[i], err, errlen);
    if (rc) { free(p); return rc; }
    /* load_balance_hosts=random: the pool's own PRNG (per reactor, no
     * shared state); cfg->lb_seed makes the orders repeatable. */
    p->rng = cfg->lb_seed ? cfg->lb_seed : ((uint64_t)pg_mono_ms() << 20) ^ (uint64_t)(uintptr_t)p;
    if (!p->rng) p->rng = 0x9E3779B97F4A7C15ull;
    p->on_host = -1;
    if (!rc) rc = pg_tls_ctx_open(p, err, errlen);
    if (rc) { free(p); return rc; }
    if (p->ci.warning[0]) IOX_WARN("pg: %s", p->ci.warning);     /* e.g. an ignored ~/.pgpass, as libpq warns */
    p->nreqs = p->cfg.size * p->cfg.pipeline_max + p->cfg.queue_max;
    p->conns = calloc(p->cfg.size, sizeof *p->conns);
    p->reqs = calloc(p->nreqs, sizeof *p->reqs);
    if (!p->conns || !p->reqs) goto nomem;
    for (uint32_t i = p->nreqs; i-- > 0;) {
        p->reqs[i].next = p->free_reqs;
        p->free_reqs = &p->reqs[i];
    }
    for (unsigned i = 0; i < p->cfg.size; i++) {
        struct iox_pg_conn *c = &p->conns[i];
        c->pool = p;
        c->idx = i;
        c->fd = -1;
        pg_conn_init(&c->state);
        pg_pass_begin(c);
        c->rcap = RBUF_INIT;
        c->rbuf = malloc(c->rcap);
        if (!c->rbuf) goto nomem;
        iox_pg_wbuf_init_growable(&c->wb[0], WBUF_MAX);
        iox_pg_wbuf_init_growable(&c->wb[1], WBUF_MAX);
    }
    /* The pool is a client service: its lifetime is the application's (it
     * is closed after the loop, with its own bounded wait), so it reports
     * no busy() that would hold a stopping reactor. */
    p->owner = iox_reactor_register_kind(r, &pg_kind, p);
    if (p->owner < 0 || iox_reactor_set_service(r, &pg_pool_key, p) < 0) {
        if (p->owner >= 0) iox_reactor_unregister_kind(r, p->owner);
        goto nomem;
    }
    p->now_ms = pg_now(p);
    for (unsigned i = 0; i < p->want; i++) pg_conn_deliver(&p->conns[i], PG_CONN_EV_OPEN, NULL);
    arm_tick(p);
    *out = p;
    return 0;
nomem:
    for (unsigned i = 0; p->conns && i < p->cfg.size; i++) free(p->conns[i].rbuf);
    pg_tls_ctx_close(p);
    free(p->conns);
    free(p->reqs);
    free(p);
    if (err) snprintf(err, errlen, "out of memory for the pg pool");
    return -ENOMEM;
}

void iox_pg_pool_stop(struct iox_pg_pool *p)
{
    if (!p || p->stopping) return;
    struct iox_reactor *r = p->r;
    p->stopping = 1;
    for (unsigned i = 0; i < p->cfg.size; i++) {
        struct iox_pg_conn *c = &p->conns[i];
        if (c->state != PG_CONN_S_DOWN && !pg_conn_is_closing(c) && c->state != PG_CONN_S_STOPPED) {
            pg_conn_set_fail(c, -ECANCELED, "the pool is closing");
            pg_conn_deliver(c, PG_CONN_EV_SHUTDOWN, NULL);
        }
    }
    pg_pool_note_down(p);
    if (p->tick_armed) {
        if (iox_seam_cancel(r->seam, iox_ud(IOX_OP_TIMEOUT, (unsigned)p->owner, 0, PG_TICK_IDX),
                            iox_ud(IOX_OP_CANCEL, (unsigned)p->owner, 0, PG_CTL_CANCEL_IDX)) == 0)
            p->ops++;
    }
}

unsigned iox_pg_pool_ops(const struct iox_pg_pool *p) { return p->ops; }

void iox_pg_pool_close(struct iox_pg_pool *p)
{
    if (!p) return;
    struct iox_reactor *r = p->r;
    iox_pg_pool_stop(p);
    /* Wait (bounded) for every op of ours to leave the ring, so no recv
     * lands in a freed buffer. Only on the real ring; the loop has ended,
     * so only our completions (and stale ones) arrive here. */
    if (r->uring && p->ops) {
        if (iox_seam_timeout(r->seam, 500ull * 1000000ull, iox_ud(IOX_OP_TIMEOUT, (unsigned)p->owner, 0, PG_GUARD_IDX)) < 0)
            p->guard_fired = 1;   /* no guard, no unbounded wait */
        while (p->ops > 0 && !p->guard_fired)
            if (iox_reactor_turn(r) < 0) break;
        if (p->ops)
            IOX_WARN("pg: %u ops still in the ring at close", p->ops);
    }
    for (unsigned i = 0; i < p->cfg.size; i++) {
        struct iox_pg_conn *c = &p->conns[i];
        if (c->fd >= 0 && r->uring) close(c->fd);   /* simulated fds are not ours to close */
        c->fd = -1;
        /* down, or closing / closing_socket when the bounded wait ran out
         * (or on a simulated ring, which is not waited for): stopped. */
        pg_conn_deliver(c, PG_CONN_EV_STOP, NULL);
        if (c->sasl) iox_pg_scram_clear(&c->scram);
        free(c->rbuf);
        free(c->cells);
        iox_pg_wbuf_free(&c->wb[0]);
        iox_pg_wbuf_free(&c->wb[1]);
        pg_tls_end(c);
        free(c->tin);
        iox_pg_wbuf_free(&c->tx);
    }
    pg_tls_ctx_close(p);
    for (uint32_t i = 0; i < p->nreqs; i++) iox_pg_wbuf_free(&p->reqs[i].msg);
    iox_reactor_unregister_kind(r, p->owner);
    if (iox_reactor_service(r, &pg_pool_key) == p) {
        iox_reactor_set_service(r, &pg_pool_key, NULL);
    }
    free(p->conns);
    free(p->reqs);
    free(p);
}

struct iox_pg_pool *iox_pg_pool_of(struct iox_reactor *r) { return iox_reactor_service(r, &pg_pool_key); }
struct iox_reactor *iox_pg_pool_reactor(struct iox_pg_pool *p) { return p->r; }
unsigned iox_pg_pool_up(const struct iox_pg_pool *p) { return p->nup; }
const char *iox_pg_pool_last_error(const struct iox_pg_pool *p) { return p->last_error; }
uint64_t iox_pg_pool_sessions(const struct iox_pg_pool *p) { return p->sessions; }
