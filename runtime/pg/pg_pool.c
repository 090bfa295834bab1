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

#define TICK_MS 50u
#define RBUF_INIT (16u * 1024u)
#define WBUF_MAX (64u << 20)
#define REQ_MSG_MAX (64u << 20)

/* The pool's clock is the reactor's (r->now_ms: the coarse monotonic clock
 * refreshed every reactor tick, which the pool asks for every TICK_MS; on
 * the simulated seam the test moves it with iox_reactor_advance_clock), so
 * deadlines and backoff are judged on the clock the tick runs on and a
 * simulated run is deterministic. */
uint64_t pg_now(const struct iox_pg_pool *p)
{
    return p->r->now_ms;
}

uint64_t pg_ud(struct iox_pg_conn *c, unsigned op)
{
    return iox_dial_ud(&c->dl, op);
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

/* q's deadline passed on a session: answer it now, but keep the slot — q
 * stays in the session's FIFO as a zombie (cb NULL) until the server's
 * ReadyForQuery for it, whose result query_input swallows. */
void pg_req_answer_early(struct iox_pg_pool *p, struct pg_req *q, int err, const char *msg)
{
    struct iox_pg_res res = {
        .status = IOX_PG_FAILED, .err = err, .sqlstate = "", .message = msg, .command_tag = "", .pool = p,
    };
    p->n_failed++;
    iox_pg_result_cb cb = q->cb;
    q->cb = NULL;
    cb(q->user, &res);    /* the slot stays allocated: user (and user_val) are valid */
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

/* ---- cancel connections (CancelRequest, protocol-flow "Canceling
 * Requests in Progress"): the pool's ops, not a session's ---- */

static void cancel_failed(struct iox_pg_pool *p, struct pg_cancel *x, const char *what, int res)
{
    p->n_cancel_failed++;
    if (!p->stopping)
        IOX_WARN("pg: cancel request for connection %u (backend pid %d) to %s port %u: %s: %s "
                 "(the session is dropped if it does not recover)", x->conn, x->pid, p->ci.hosts[x->host].host,
                 p->ci.hosts[x->host].port,
                 what, res ? strerror(-res) : "no SQE");
}

/* Close the cancel's socket (or forget it: no socket, or no SQE). */
static void cancel_close(struct iox_pg_pool *p, struct pg_cancel *x)
{
    (void)p;
    if (x->dl.fd >= 0) iox_dial_close(&x->dl);   /* no SQE: closed at once, nothing in flight on it */
}

static int cancel_submit(struct iox_pg_pool *p, struct pg_cancel *x, unsigned op)
{
    switch (op) {
    case IOX_OP_CONNECT: return iox_dial_connect(&x->dl, (const struct sockaddr *)&p->sa[x->host], p->salen[x->host]);
    case IOX_OP_SEND: return iox_dial_send(&x->dl, (const char *)x->msg, sizeof x->msg);
    case IOX_OP_RECV: return iox_dial_recv(&x->dl, x->rbuf, sizeof x->rbuf);
    default: return -EINVAL;
    }
}

int pg_cancel_start(struct iox_pg_conn *c)
{
    struct iox_pg_pool *p = c->pool;
    if (!c->have_key) {
        IOX_WARN("pg: connection %u: the server sent no BackendKeyData: the overdue query cannot be cancelled", c->idx);
        return -ENOTSUP;
    }
    struct pg_cancel *x = NULL;
    for (unsigned i = 0; i < p->cfg.size && !x; i++)
        if (!p->cancels[i].dl.ops && p->cancels[i].dl.fd < 0) x = &p->cancels[i];
    p->n_cancels++;
    if (!x) {
        p->n_cancel_failed++;
        IOX_WARN("pg: connection %u: every cancel connection is busy: the overdue query is not cancelled", c->idx);
        return -EBUSY;
    }
    iox_dial_reset(&x->dl);     /* a new generation: late CQEs of the last use are dropped */
    x->conn = c->idx;
    x->host = (uint8_t)c->host;   /* the server that runs the query, of a host list */
    x->pid = c->be_pid;
    x->cancelled = 0;
    /* CancelRequest: Int32 16, Int32 80877102, Int32 pid, Int32 key. */
    uint32_t v[4] = {16u, 80877102u, (uint32_t)c->be_pid, (uint32_t)c->be_key};
    for (unsigned i = 0; i < 4; i++) {
        x->msg[4 * i] = (unsigned char)(v[i] >> 24);
        x->msg[4 * i + 1] = (unsigned char)(v[i] >> 16);
        x->msg[4 * i + 2] = (unsigned char)(v[i] >> 8);
        x->msg[4 * i + 3] = (unsigned char)v[i];
    }
    /* Its ops are cancelled after this deadline. */
    uint64_t deadline = pg_now(p) + (p->ci.connect_timeout_ms ? p->ci.connect_timeout_ms : p->ci.query_timeout_ms);
    int rc = iox_dial_open(&x->dl, p->sa[x->host].ss_family, deadline);
    if (rc < 0) { cancel_failed(p, x, "socket", rc); return rc; }
    IOX_DEBUG("pg: connection %u: query past its deadline: cancel request for backend pid %d", c->idx, c->be_pid);
    return 0;
}

/* A completion of a cancel connection: which op it was says what follows. */
static void cancel_cqe(struct iox_pg_pool *p, uint32_t i, const struct iox_cqe *cqe)
{
    unsigned op = iox_ud_op(cqe->ud);
    int res = cqe->res;
    if (i >= p->cfg.size) { IOX_ERROR("pg: completion for unknown cancel slot %u (op %u, res %d)", i, op, res); return; }
    struct pg_cancel *x = &p->cancels[i];
    if (!iox_dial_take(&x->dl, p->r, cqe)) return;   /* a socket's descriptor is kept in x->dl.fd */
    if (op == IOX_OP_CANCEL) return;
    if (op == IOX_OP_CLOSE) {
        if (res < 0) IOX_WARN("pg: close of a cancel connection: %s", strerror(-res));
        return;
    }
    if (op == IOX_OP_SOCKET && res < 0) { cancel_failed(p, x, "socket", res); return; }
    int next = 0;                 /* the op to submit next, 0: close */
    const char *what = "";
    if (p->stopping || x->cancelled) {
        /* Abandoned (stop, or no progress before its deadline): close. */
        if (!p->stopping && op != IOX_OP_RECV) cancel_failed(p, x, "no progress before the deadline", -ETIMEDOUT);
    } else switch (op) {
    case IOX_OP_SOCKET:
        next = IOX_OP_CONNECT;
        break;
    case IOX_OP_CONNECT:
        if (res == 0) next = IOX_OP_SEND;
        else what = "connect";
        break;
    case IOX_OP_SEND:
        if (res > 0) {
            int rc = iox_dial_sent(&x->dl, res);
            if (rc > 0) return;                  /* the rest of the 16 bytes is on its way */
            if (rc == 0) next = IOX_OP_RECV;
            else { what = "send"; res = rc; }
        } else {
            what = "send";
            if (!res) res = -EIO;
        }
        break;
    case IOX_OP_RECV:
        /* The server closes once it has processed the request (EOF); what
         * the server does with it is told on the session itself. */
        if (res < 0 && res != -ECONNRESET) IOX_DEBUG("pg: cancel connection recv: %s", strerror(-res));
        break;
    default:
        IOX_ERROR("pg: unexpected op %u on a cancel connection (res %d)", op, res);
        break;
    }
    if (what[0]) cancel_failed(p, x, what, res);
    if (next) {
        int rc = cancel_submit(p, x, (unsigned)next);
        if (rc == 0) return;
        cancel_failed(p, x, next == IOX_OP_CONNECT ? "connect" : next == IOX_OP_SEND ? "send" : "recv", rc);
    }
    cancel_close(p, x);
}

/* Cancel the ops of a cancel connection (stop, or its own deadline). */
static void cancel_abandon(struct iox_pg_pool *p, struct pg_cancel *x)
{
    (void)p;
    if (x->cancelled || !x->dl.ops) return;
    x->cancelled = 1;
    /* No socket yet: the socket op's completion closes what it gives. */
    iox_dial_cancel(&x->dl);
}

/* The reactor's tick (every TICK_MS at most, after the clock moved). */
static void on_tick(struct iox_reactor *r, void *ctx)
{
    (void)r;
    struct iox_pg_pool *p = ctx;
    if (p->stopping) return;
    uint64_t now = pg_now(p);
    p->now_ms = now;
    for (unsigned i = 0; i < p->cfg.size && !p->stopping; i++) {
        struct iox_pg_conn *c = &p->conns[i];
        switch (c->state) {
        case PG_CONN_S_DOWN:
            if (i < p->want && now >= c->dl.retry_at_ms) pg_conn_deliver(c, PG_CONN_EV_OPEN, NULL);
            break;
        case PG_CONN_S_SOCKETING: case PG_CONN_S_CONNECTING: case PG_CONN_S_SSL_REQUESTING:
        case PG_CONN_S_HANDSHAKING: case PG_CONN_S_AUTHENTICATING: case PG_CONN_S_CHECKING_SESSION:
            if (iox_dial_overdue(&c->dl, now)) {
                char msg[96];
                snprintf(msg, sizeof msg, "no session within %u ms (connect_timeout)", p->ci.connect_timeout_ms);
                pg_conn_set_fail(c, -ETIMEDOUT, msg);
                pg_conn_deliver(c, PG_CONN_EV_TIMEOUT, NULL);
            }
            break;
        case PG_CONN_S_READY: case PG_CONN_S_BUSY:
            /* The oldest query is overdue: the machine cancels it (cancelling). */
            if (c->inflight.head && c->inflight.head->deadline_ms && now >= c->inflight.head->deadline_ms)
                pg_conn_deliver(c, PG_CONN_EV_TIMEOUT, NULL);
            break;
        case PG_CONN_S_CANCELLING:
            if (now >= c->cancel_deadline_ms) {
                /* The cancel did not help in time: drop the session (and its
                 * pipeline) rather than let everything behind it wait. */
                char msg[128];
                snprintf(msg, sizeof msg, "query timed out after %u ms (query_timeout_ms) and the session did not "
                         "recover within %u ms of the cancel", p->ci.query_timeout_ms, p->ci.query_timeout_ms);
                pg_conn_set_fail(c, -ETIMEDOUT, msg);
                pg_conn_deliver(c, PG_CONN_EV_TIMEOUT, NULL);
            }
            break;
        default:
            break;
        }
    }
    for (unsigned i = 0; i < p->cfg.size && !p->stopping; i++)
        if (p->cancels[i].dl.ops && iox_dial_overdue(&p->cancels[i].dl, now)) cancel_abandon(p, &p->cancels[i]);
    while (p->waiting.head && p->waiting.head->deadline_ms && now >= p->waiting.head->deadline_ms)
        pg_fail_req(p, list_pop(&p->waiting), -ETIMEDOUT, NULL, "query timed out waiting for a connection");
}

/* End of a loop turn: what was queued this turn leaves in one send per
 * connection. */
static void pg_flush(struct iox_reactor *r, void *ctx)
{
    (void)r;
    struct iox_pg_pool *p = ctx;
    /* Queries that waited while every session was full or cancelling: a
     * session back from cancelling (its input_done came after its
     * query_input took nothing) takes them here. */
    if (p->waiting.head && !p->stopping) pg_pool_take_waiting(p);
    for (unsigned i = 0; i < p->cfg.size; i++) {
        struct iox_pg_conn *c = &p->conns[i];
        if ((c->wb[c->fill].len || (c->tls && pg_tls_out_pending(c))) && !c->dl.send_busy && c->dl.fd >= 0)
            pg_conn_deliver(c, PG_CONN_EV_FLUSH, NULL);
    }
}

static void pg_dispatch(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    (void)r;
    struct iox_pg_pool *p = ctx;
    unsigned op = iox_ud_op(cqe->ud);
    uint32_t idx = iox_ud_idx(cqe->ud);
    if (idx == PG_GUARD_IDX) { p->guard_fired = 1; return; }   /* not counted in ops */
    p->ops--;
    if ((idx & PG_CANCEL_BIT) && idx < PG_CTL_CANCEL_IDX) {
        cancel_cqe(p, idx & ~PG_CANCEL_BIT, cqe);
        return;
    }
    if (idx >= p->cfg.size) {
        IOX_ERROR("pg: completion for unknown slot %u (op %u, res %d)", idx, op, cqe->res);
        return;
    }
    struct iox_pg_conn *c = &p->conns[idx];
    if (!iox_dial_take(&c->dl, r, cqe)) return;   /* stale: cannot happen while close waits for every op */
    struct iox_pg_event ev = {cqe->res, op};
    if (op == IOX_OP_CLOSE) {
        if (cqe->res < 0) IOX_WARN("pg: close of connection %u: %s", c->idx, strerror(-cqe->res));
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
        {"ioxide_pg_cancels_total", "CancelRequests started for queries past query_timeout_ms.", 0, p->n_cancels},
        {"ioxide_pg_cancel_failures_total", "CancelRequests that could not be delivered (logged with the cause).", 0, p->n_cancel_failed},
        {"ioxide_pg_sessions_up", "Sessions up now.", 1, p->nup},
        {"ioxide_pg_waiting", "Queries in the queue now.", 1, p->waiting.n},
    };
    unsigned n = 0;
    for (; n < sizeof c / sizeof c[0] && n < max; n++) out[n] = c[n];
    return n;
}

static const struct iox_kind pg_kind = {.name = "pg", .on_cqe = pg_dispatch, .on_flush = pg_flush,
                                        .on_tick = on_tick, .counters = pg_counters};

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
    p->listener = -1;
    if (p->cfg.depth > p->cfg.pipeline_max) p->cfg.depth = p->cfg.pipeline_max;
    if (!p->cfg.queue_max) p->cfg.queue_max = 1024;
    if (!p->cfg.backoff_max_ms) p->cfg.backoff_max_ms = 2000;
    int rc = iox_pg_conninfo_load(&p->ci, cfg->conninfo, err, errlen);
    for (unsigned i = 0; !rc && i < p->ci.nhosts; i++)
        rc = iox_pg_conninfo_host_sockaddr(&p->ci, i, &p->sa[i], &p->salen[i], err, errlen);
    if (rc) { free(p); return rc; }
    /* load_balance_hosts=random: the pool's own PRNG (per reactor, no
     * shared state); cfg->lb_seed makes the orders repeatable. */
    p->rng = cfg->lb_seed ? cfg->lb_seed : ((uint64_t)time(NULL) << 20) ^ (uint64_t)r->now_ms ^ (uint64_t)(uintptr_t)p;
    if (!p->rng) p->rng = 0x9E3779B97F4A7C15ull;
    p->on_host = -1;
    if (!rc) rc = pg_tls_ctx_open(p, err, errlen);
    if (rc) { free(p); return rc; }
    if (p->ci.warning[0]) IOX_WARN("pg: %s", p->ci.warning);     /* e.g. an ignored ~/.pgpass, as libpq warns */
    p->nreqs = p->cfg.size * p->cfg.pipeline_max + p->cfg.queue_max;
    p->conns = calloc(p->cfg.size, sizeof *p->conns);
    p->reqs = calloc(p->nreqs, sizeof *p->reqs);
    p->cancels = calloc(p->cfg.size, sizeof *p->cancels);
    if (!p->conns || !p->reqs || !p->cancels) goto nomem;
    for (unsigned i = 0; i < p->cfg.size; i++)   /* owner set below, once registered */
        iox_dial_init(&p->cancels[i].dl, r, 0, PG_CANCEL_BIT | i, &p->ops);
    for (uint32_t i = p->nreqs; i-- > 0;) {
        p->reqs[i].next = p->free_reqs;
        p->free_reqs = &p->reqs[i];
    }
    for (unsigned i = 0; i < p->cfg.size; i++) {
        struct iox_pg_conn *c = &p->conns[i];
        c->pool = p;
        c->idx = i;
        iox_dial_init(&c->dl, r, 0, i, &p->ops);   /* owner set below, once registered */
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
    for (unsigned i = 0; i < p->cfg.size; i++) p->conns[i].dl.owner = p->cancels[i].dl.owner = (uint8_t)p->owner;
    iox_reactor_want_tick(r, TICK_MS);
    p->now_ms = pg_now(p);
    for (unsigned i = 0; i < p->want; i++) pg_conn_deliver(&p->conns[i], PG_CONN_EV_OPEN, NULL);
    *out = p;
    return 0;
nomem:
    for (unsigned i = 0; p->conns && i < p->cfg.size; i++) free(p->conns[i].rbuf);
    pg_tls_ctx_close(p);
    free(p->conns);
    free(p->reqs);
    free(p->cancels);
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
    for (unsigned i = 0; i < p->cfg.size; i++) cancel_abandon(p, &p->cancels[i]);
    (void)r;
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
    if (iox_dial_drain(r, (unsigned)p->owner, PG_GUARD_IDX, &p->ops, &p->guard_fired))
        IOX_WARN("pg: %u ops still in the ring at close", p->ops);
    for (unsigned i = 0; i < p->cfg.size; i++) iox_dial_forget(&p->cancels[i].dl);
    for (unsigned i = 0; i < p->cfg.size; i++) {
        struct iox_pg_conn *c = &p->conns[i];
        iox_dial_forget(&c->dl);
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
    free(p->cancels);
    free(p);
}

/* ---- iox_pg_listen: one listening session, re-LISTENed when lost ---- */

static void listen_done(void *user, const struct iox_pg_res *res)
{
    struct iox_pg_pool *p = user;
    /* A lost session is not logged again: the next one LISTENs anew. */
    if (res->status == IOX_PG_ERROR)
        IOX_WARN("pg: LISTEN refused by the server: %s (SQLSTATE %s)", res->message, res->sqlstate);
    else if (res->status == IOX_PG_FAILED && !p->stopping)
        IOX_DEBUG("pg: LISTEN did not complete: %s", res->message);
}

/* LISTEN channels [from, nlisten) on c, as one simple query of the pool's. */
static void listen_on(struct iox_pg_pool *p, struct iox_pg_conn *c, unsigned from)
{
    char sql[IOX_PG_LISTEN_MAX * 140];
    size_t n = 0;
    for (unsigned i = from; i < p->nlisten; i++) {
        n += (size_t)snprintf(sql + n, sizeof sql - n, "LISTEN \"");
        for (const char *s = p->listen_ch[i]; *s; s++) {       /* a quoted identifier: " doubled */
            if (*s == '"') sql[n++] = '"';
            sql[n++] = *s;
        }
        n += (size_t)snprintf(sql + n, sizeof sql - n, "\";");
    }
    struct pg_req *q = req_alloc(p);
    int rc = -EAGAIN;
    if (q) {
        q->stmt = NULL;
        q->cb = listen_done;
        q->user = p;
        q->deadline_ms = p->ci.query_timeout_ms ? pg_now(p) + p->ci.query_timeout_ms : 0;
        rc = assign(c, q, NULL, 0, NULL, sql);
        if (rc) pg_req_free(p, q);
    }
    if (rc) IOX_WARN("pg: cannot queue LISTEN on connection %u: %s", c->idx, strerror(-rc));
}

/* c is up (session_up), or NULL: pick any up session. */
void pg_pool_listen_session(struct iox_pg_pool *p, struct iox_pg_conn *c)
{
    if (!p->nlisten || p->stopping || p->listener >= 0) return;
    for (unsigned i = 0; !c && i < p->cfg.size; i++)
        if (pg_conn_is_up(&p->conns[i])) c = &p->conns[i];
    if (!c) return;
    p->listener = (int)c->idx;
    listen_on(p, c, 0);
}

/* c's session ends (drop): if it was the listener, LISTEN on another. */
void pg_pool_listener_lost(struct iox_pg_pool *p, struct iox_pg_conn *c)
{
    if (p->listener != (int)c->idx) return;
    p->listener = -1;
    pg_pool_listen_session(p, NULL);
}

int iox_pg_listen(struct iox_pg_pool *p, const char *channel)
{
    if (p->stopping) return -ESHUTDOWN;
    size_t len = channel ? strlen(channel) : 0;
    if (!len || len >= sizeof p->listen_ch[0]) return -EINVAL;
    for (unsigned i = 0; i < p->nlisten; i++)
        if (!strcmp(p->listen_ch[i], channel)) return -EEXIST;
    if (p->nlisten >= IOX_PG_LISTEN_MAX) return -ENOSPC;
    memcpy(p->listen_ch[p->nlisten++], channel, len + 1);
    if (p->listener >= 0) listen_on(p, &p->conns[p->listener], p->nlisten - 1);
    else pg_pool_listen_session(p, NULL);
    return 0;
}

void iox_pg_on_notify(struct iox_pg_pool *p, iox_pg_notify_cb fn, void *arg)
{
    p->on_notify = fn;
    p->notify_arg = arg;
}

void iox_pg_on_notice(struct iox_pg_pool *p, iox_pg_notice_cb fn, void *arg)
{
    p->on_notice = fn;
    p->notice_arg = arg;
}

struct iox_pg_pool *iox_pg_pool_of(struct iox_reactor *r) { return iox_reactor_service(r, &pg_pool_key); }
struct iox_reactor *iox_pg_pool_reactor(struct iox_pg_pool *p) { return p->r; }
unsigned iox_pg_pool_up(const struct iox_pg_pool *p) { return p->nup; }
const char *iox_pg_pool_last_error(const struct iox_pg_pool *p) { return p->last_error; }
uint64_t iox_pg_pool_sessions(const struct iox_pg_pool *p) { return p->sessions; }
