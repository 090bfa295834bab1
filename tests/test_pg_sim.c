/* test_pg_sim.c — the Postgres client (pool + pg_conn machine) driven
 * through the simulated ring, the test playing the server.
 *
 * A pool of 1–3 connections runs on a reactor over the simulated seam. The
 * test completes IORING_OP_SOCKET (with a fake fd, never reused), CONNECT,
 * the pool's plain recvs (iox_sim_recv_into: the server's bytes, split at
 * random points and delivered in random chunk sizes) and its sends (short
 * ones too); it reads what the client sent with a small frontend-message
 * reader and answers with backend messages built by hand (trust, cleartext
 * and MD5 authentication, ParameterStatus, BackendKeyData, ReadyForQuery,
 * ParseComplete, BindComplete, RowDescription, DataRow, CommandComplete,
 * ErrorResponse; the server is tests/pg_sim_server.h, shared with
 * tests/fuzz/fuzz_pg_conn.c). Every query carries its number; the server answers
 * "r<n>" (or an ErrorResponse "e<n>" for every fifth), so a result given
 * to the wrong query is seen.
 *
 * A seeded schedule interleaves query submissions (prepared and simple,
 * from random points, into a small pipeline and wait queue: queue full
 * happens), deliveries, sends, clock advances with the pool's tick, and
 * faults: connect refused, socket failure, reset, EOF mid-message, a FATAL
 * mid-pipeline (the database dying), a garbage type byte, a failed send,
 * a server that stops answering (query and connect timeouts). Then the
 * faults stop and the server serves everything.
 *
 * Invariants: every accepted query's callback runs exactly once and a
 * refused one never; each result is its own query's; every socket is
 * closed exactly once and no op is queued on it after; after the faults
 * the pool is back to its full size and a final batch succeeds; after
 * stop + close no op is left in the ring.
 *
 * A failing seed prints itself; replay: IOX_SEED=<n> build/tests pg_sim
 * (IOX_SIM_SEEDS=<n> runs more). */
#include "iox_test.h"
#include "sim_world.h"
#include <ioxide/log.h>
#include <ioxide/pg.h>
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include "pg_conn_machine.h"
#include "pg_sim_server.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXQ 4096
#define MAXFD 256
#define FD0 1000          /* fake fds: [FD0, FD0 + MAXFD), never reused */

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

struct world {
    struct sim_world sw;  /* tests/sim_world.h: simulator, reactor, clock */
    struct iox_pg_pool *pool;
    struct srv srv[MAXFD];
    unsigned nsrv;
    int auth;
    struct srv_host host; /* what the server (pg_sim_server.h) needs from us */
    /* Queries. */
    unsigned nq;
    uint8_t accepted[MAXQ], calls[MAXQ], final_batch[MAXQ];
    int status[MAXQ];
    unsigned bad;         /* results not matching their query */
    unsigned cancel_hits; /* queries answered 57014 (a cancel landed on them) */
    unsigned timeouts;    /* queries answered -ETIMEDOUT */
    uint64_t *rng;        /* callbacks submit queries too (re-entrancy) while set */
    char why[200];
};

static struct iox_pg_stmt stmt;
static int stmt_ready;

static void turn(struct world *w) { sw_turn(&w->sw); }

static void note_bad(struct world *w, const char *fmt, unsigned q, const char *got)
{
    w->bad++;
    if (!w->why[0]) snprintf(w->why, sizeof w->why, fmt, q, got);
}

struct qctx { struct world *w; unsigned q; };
static struct qctx qctx[MAXQ];

static void submit(struct world *w, uint64_t *s);

static void on_result(void *user, const struct iox_pg_res *res)
{
    struct qctx *x = user;
    struct world *w = x->w;
    unsigned q = x->q;
    w->calls[q]++;
    w->status[q] = res->status;
    if (!w->accepted[q]) note_bad(w, "query %u: callback for a refused query%s", q, "");
    if (w->calls[q] > 1) note_bad(w, "query %u: callback called twice%s", q, "");
    char want[32];
    if (res->status == IOX_PG_OK) {
        snprintf(want, sizeof want, "r%u", q);
        if (query_is_error(q)) note_bad(w, "query %u: OK where the server answered an error%s", q, "");
        else if (res->nrows != 1 || res->ncols != 1 || iox_pg_cell(res, 0, 0)->len != (int32_t)strlen(want) ||
                 memcmp(iox_pg_cell(res, 0, 0)->ptr, want, strlen(want)))
            note_bad(w, "query %u: wrong rows (%s)", q, res->nrows ? "another query's?" : "none");
    } else if (res->status == IOX_PG_ERROR && !strcmp(res->sqlstate, "57014")) {
        /* A cancel meant for an overdue query that landed on this one (the
         * slow one finished first): an error of its own, never another's rows. */
        w->cancel_hits++;
    } else if (res->status == IOX_PG_ERROR) {
        snprintf(want, sizeof want, "e%u", q);
        if (!query_is_error(q) || strcmp(res->message, want)) note_bad(w, "query %u: unexpected error '%s'", q, res->message);
    } else if (res->err >= 0 || !res->message[0]) {
        note_bad(w, "query %u: FAILED without an errno or message '%s'", q, res->message);
    } else if (res->err == -ETIMEDOUT) {
        w->timeouts++;
    }
    /* From inside the callback (completion processing, a drop failing the
     * pipeline, the tick, stop): start another query now and then. */
    if (w->rng && rnd(w->rng) % 4 == 0) submit(w, w->rng);
}

static void submit(struct world *w, uint64_t *s)
{
    if (w->nq >= MAXQ) return;
    unsigned q = w->nq++;
    char v[16];
    snprintf(v, sizeof v, "%u", q);
    qctx[q] = (struct qctx){w, q};
    int rc;
    if (rnd(s) % 3 == 0) {
        char sql[32];
        snprintf(sql, sizeof sql, "SELECT %u", q);
        rc = iox_pg_query_simple(w->pool, sql, on_result, &qctx[q]);
    } else {
        const char *vals[1] = {v};
        rc = iox_pg_query(w->pool, &stmt, 1, vals, on_result, &qctx[q]);
    }
    if (rc == 0) w->accepted[q] = 1;
    else if (rc != -EAGAIN && rc != -ENOTCONN && rc != -ESHUTDOWN) note_bad(w, "query %u: unexpected refusal %s", q, strerror(-rc));
}

static void host_bad(void *ctx, const char *fmt, unsigned q, const char *got) { note_bad(ctx, fmt, q, got); }
static void host_turn(void *ctx) { turn(ctx); }
static struct srv *host_find(void *ctx, int32_t pid)
{
    struct world *w = ctx;
    for (unsigned i = 0; i < w->nsrv; i++)
        if (w->srv[i].fd == pid) return &w->srv[i];
    return NULL;
}

static void serve(struct world *w, struct srv *sv) { srv_serve(&w->host, sv); }
static void deliver(struct world *w, struct srv *sv, size_t max, size_t chunk) { srv_deliver(&w->host, sv, max, chunk); }

static struct srv *new_srv(struct world *w)
{
    if (w->nsrv >= MAXFD) return NULL;
    struct srv *sv = &w->srv[w->nsrv];
    memset(sv, 0, sizeof *sv);
    sv->fd = FD0 + (int)w->nsrv++;
    sv->st = SV_CONNECTING;
    return sv;
}

static struct srv *pick_srv(struct world *w, uint64_t *s, int live_only)
{
    if (!w->nsrv) return NULL;
    for (int tries = 0; tries < 8; tries++) {
        struct srv *sv = &w->srv[rnd(s) % w->nsrv];
        if (!live_only || sv->st != SV_DEAD) return sv;
    }
    return NULL;
}

/* The server side of a connection dies: no more bytes from it. */
static void kill_srv(struct world *w, struct srv *sv, int res)
{
    sv->st = SV_DEAD;
    if (iox_sim_recv_end(w->sw.sim, sv->fd, res) == 0) turn(w);
}

/* A dead server's socket reads EOF whenever the client reads again. */
static void reap_dead(struct world *w)
{
    for (unsigned i = 0; i < w->nsrv; i++)
        if (w->srv[i].st == SV_DEAD && iox_sim_recv_end(w->sw.sim, w->srv[i].fd, 0) == 0) turn(w);
}

static void tick(struct world *w, uint64_t ms)
{
    w->sw.now += ms;
    iox_reactor_advance_clock(&w->sw.r, w->sw.now);
    iox_sim_complete_all(w->sw.sim, IOX_OP_TIMEOUT, -ETIME);
    turn(w);
}

/* One step of the schedule; faults only when `faults`. */
static void step(struct world *w, uint64_t *s, int faults)
{
    unsigned what = (unsigned)(rnd(s) % 16);
    struct srv *sv;
    switch (what) {
    case 0: case 1:
        if (iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1)) {
            if (faults && rnd(s) % 10 == 0) iox_sim_complete_one(w->sw.sim, IOX_OP_SOCKET, -1, -EMFILE);
            else if ((sv = new_srv(w))) iox_sim_complete_one(w->sw.sim, IOX_OP_SOCKET, -1, sv->fd);
            turn(w);
        }
        break;
    case 2:
        if ((sv = pick_srv(w, s, 1)) && sv->st == SV_CONNECTING && iox_sim_has_op(w->sw.sim, IOX_OP_CONNECT, sv->fd)) {
            if (faults && rnd(s) % 4 == 0) { sv->st = SV_DEAD; iox_sim_complete_one(w->sw.sim, IOX_OP_CONNECT, sv->fd, -ECONNREFUSED); }
            else if (faults && rnd(s) % 8 == 0) sv->stalled = 1;   /* connect never completes: connect timeout */
            else { sv->st = SV_STARTUP; iox_sim_complete_one(w->sw.sim, IOX_OP_CONNECT, sv->fd, 0); }
            turn(w);
        }
        break;
    case 3: case 4:
        if ((sv = pick_srv(w, s, 0)) && iox_sim_has_op(w->sw.sim, IOX_OP_SEND, sv->fd)) {
            if (sv->send_fail) { sv->send_fail = 0; iox_sim_send(w->sw.sim, sv->fd, -EPIPE); }
            else iox_sim_send(w->sw.sim, sv->fd, rnd(s) % 3 ? 0 : (int)(1 + rnd(s) % 40));
            turn(w);
        }
        break;
    case 5: case 6:
        if ((sv = pick_srv(w, s, 1))) { serve(w, sv); deliver(w, sv, 1 + rnd(s) % 200, 1 + rnd(s) % 64); }
        break;
    case 7: case 8: {
        unsigned k = 1 + (unsigned)(rnd(s) % 6);
        for (unsigned i = 0; i < k; i++) submit(w, s);
        if (rnd(s) % 2) turn(w);
        break;
    }
    case 9:
        tick(w, rnd(s) % 4 ? rnd(s) % 300 : 1000 + rnd(s) % 1000);   /* long ones: query/connect timeouts */
        break;
    case 10:
        turn(w);
        break;
    case 11:
        if (!faults || !(sv = pick_srv(w, s, 1)) || sv->st == SV_CONNECTING) break;
        switch (rnd(s) % 7) {
        case 0: kill_srv(w, sv, -ECONNRESET); break;
        case 1: /* EOF mid-message */
            serve(w, sv);
            if (sv->tx.len > sv->tx.off + 1) deliver(w, sv, 1 + rnd(s) % (sv->tx.len - sv->tx.off - 1), 1 + rnd(s) % 64);
            kill_srv(w, sv, 0);
            break;
        case 2: /* the database dies mid-pipeline: FATAL, then EOF */
            if (sv->st != SV_UP) break;
            serve(w, sv);
            be_error(&sv->tx, "FATAL", "57P01", "terminating connection due to administrator command");
            deliver(w, sv, (size_t)-1, 1 + rnd(s) % 64);
            kill_srv(w, sv, 0);
            break;
        case 3: /* protocol error: a garbage type byte */
            serve(w, sv);
            b_put(&sv->tx, "\x01\0\0\0\4", 5);
            deliver(w, sv, (size_t)-1, 1 + rnd(s) % 64);
            sv->st = SV_DEAD;
            break;
        case 4: sv->send_fail = 1; break;
        case 5: sv->stalled = 1; break;   /* query timeout (or auth timeout) */
        case 6: deliver(w, sv, (size_t)-1, 1 + rnd(s) % 7); break;
        }
        break;
    default:
        if ((sv = pick_srv(w, s, 1))) { serve(w, sv); deliver(w, sv, (size_t)-1, 1 + rnd(s) % 512); }
        break;
    }
}

/* Serve everything without faults for a while. */
static void calm(struct world *w, uint64_t *s, unsigned steps)
{
    for (unsigned i = 0; i < w->nsrv; i++) {
        struct srv *sv = &w->srv[i];
        if (sv->stalled) {   /* a stall ends: a stalled connect is refused now */
            sv->stalled = 0;
            if (sv->st == SV_CONNECTING && iox_sim_has_op(w->sw.sim, IOX_OP_CONNECT, sv->fd)) {
                sv->st = SV_DEAD;
                iox_sim_complete_one(w->sw.sim, IOX_OP_CONNECT, sv->fd, -ECONNREFUSED);
            }
        }
        sv->send_fail = 0;
    }
    reap_dead(w);
    turn(w);
    for (unsigned i = 0; i < steps; i++) {
        while (iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1)) {
            struct srv *sv = new_srv(w);
            if (!sv) return;
            iox_sim_complete_one(w->sw.sim, IOX_OP_SOCKET, -1, sv->fd);
            turn(w);
        }
        for (unsigned j = 0; j < w->nsrv; j++) {
            struct srv *sv = &w->srv[j];
            if (sv->st == SV_CONNECTING && iox_sim_has_op(w->sw.sim, IOX_OP_CONNECT, sv->fd)) {
                sv->st = SV_STARTUP;
                iox_sim_complete_one(w->sw.sim, IOX_OP_CONNECT, sv->fd, 0);
                turn(w);
            }
            while (iox_sim_has_op(w->sw.sim, IOX_OP_SEND, sv->fd)) { iox_sim_send(w->sw.sim, sv->fd, 0); turn(w); }
            serve(w, sv);
            deliver(w, sv, (size_t)-1, 1 + rnd(s) % 512);
        }
        tick(w, 100);
    }
}

static int all_answered(struct world *w)
{
    for (unsigned q = 0; q < w->nq; q++)
        if (w->accepted[q] && !w->calls[q]) return 0;
    return 1;
}

static struct { uint64_t seeds, accepted, refused, ok, error, failed, sockets, sessions; } stats;

static int run_seed(uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
    struct world *w = calloc(1, sizeof *w);
    int failed = 0;
    if (sw_open(&w->sw, 4, 64, 500)) abort();
    w->auth = (int)(rnd(&s) % 3);
    w->host = (struct srv_host){w->sw.sim, w->auth, host_bad, host_turn, w, host_find};
    struct iox_pg_pool_config pc = {
        .size = 1 + (unsigned)(rnd(&s) % 3),
        .pipeline_max = 1 + (unsigned)(rnd(&s) % 8),
        .queue_max = (unsigned)(rnd(&s) % 8),
        .backoff_max_ms = 400,
        .conninfo = "host=/sim port=5432 user=sim dbname=sim password=pw connect_timeout_ms=1000 query_timeout_ms=1500",
    };
    pc.min_size = pc.size;   /* the invariants count on every session (sizing by load: its own case) */
    char err[200];
    int rc = iox_pg_pool_open(&w->sw.r, &pc, &w->pool, err, sizeof err);
    if (rc) { fprintf(stderr, "pool open: %s\n", err); abort(); }
    turn(w);
    unsigned nsteps = 50 + (unsigned)(rnd(&s) % 400);
    w->rng = &s;
    for (unsigned i = 0; i < nsteps; i++) step(w, &s, 1);
    /* Faults stop: the server serves everything; the pool must come back
     * to its full size (backoff ≤ 400 ms) and answer everything owed. */
    calm(w, &s, 40);
    unsigned up = iox_pg_pool_up(w->pool);
    if (up != pc.size) { failed = 1; snprintf(w->why, sizeof w->why, "pool up %u/%u after the faults stopped", up, pc.size); }
    if (!all_answered(w)) { failed = 1; if (!w->why[0]) snprintf(w->why, sizeof w->why, "queries unanswered after the faults stopped"); }
    calm(w, &s, 5);      /* what the callbacks started */
    w->rng = NULL;
    if (!all_answered(w)) { failed = 1; if (!w->why[0]) snprintf(w->why, sizeof w->why, "queries unanswered after the faults stopped"); }
    /* A final batch: everything accepted must succeed. */
    unsigned first = w->nq;
    for (unsigned i = 0; i < 3 * pc.size * pc.pipeline_max && w->nq < MAXQ - 1; i++) {
        unsigned q = w->nq;
        submit(w, &s);
        if (!w->accepted[q]) {   /* full (a legitimate -EAGAIN): let it drain, then it must be taken */
            calm(w, &s, 1);
            q = w->nq;
            submit(w, &s);
        }
        if (!w->accepted[q]) {
            failed = 1;
            if (!w->why[0]) snprintf(w->why, sizeof w->why, "final query %u refused by an idle pool", q);
            break;
        }
        w->final_batch[q] = 1;
        if (rnd(&s) % 2) calm(w, &s, 1);
    }
    calm(w, &s, 10);
    for (unsigned q = first; q < w->nq; q++)
        if (w->final_batch[q] && w->accepted[q] && (w->calls[q] != 1 || w->status[q] == IOX_PG_FAILED)) {
            failed = 1;
            if (!w->why[0]) snprintf(w->why, sizeof w->why, "final query %u: calls %u status %d", q, w->calls[q], w->status[q]);
        }
    /* Stop: everything is cancelled and closed; drain the ring; free. */
    stats.seeds++;
    stats.sockets += w->nsrv;
    stats.sessions += iox_pg_pool_sessions(w->pool);
    for (unsigned q = 0; q < w->nq; q++) {
        if (!w->accepted[q]) { stats.refused++; continue; }
        stats.accepted++;
        if (w->calls[q]) {
            if (w->status[q] == IOX_PG_OK) stats.ok++;
            else if (w->status[q] == IOX_PG_ERROR) stats.error++;
            else stats.failed++;
        }
    }
    iox_pg_pool_stop(w->pool);
    for (int guard = 0; iox_pg_pool_ops(w->pool) && guard < 100; guard++) {
        while (iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1)) {
            struct srv *sv = new_srv(w);
            if (!sv) break;
            iox_sim_complete_one(w->sw.sim, IOX_OP_SOCKET, -1, sv->fd);
        }
        turn(w);
    }
    if (iox_pg_pool_ops(w->pool)) { failed = 1; if (!w->why[0]) snprintf(w->why, sizeof w->why, "%u pool ops left after stop", iox_pg_pool_ops(w->pool)); }
    iox_pg_pool_close(w->pool);
    turn(w);
    for (unsigned q = 0; q < w->nq; q++)
        if (w->accepted[q] != w->calls[q]) {
            failed = 1;
            if (!w->why[0]) snprintf(w->why, sizeof w->why, "query %u: accepted %u, callbacks %u", q, w->accepted[q], w->calls[q]);
        }
    for (unsigned i = 0; i < w->nsrv; i++) {
        int fd = w->srv[i].fd;
        if (iox_sim_closes(w->sw.sim, fd) != 1 || iox_sim_live_ops(w->sw.sim, fd)) {
            failed = 1;
            if (!w->why[0]) snprintf(w->why, sizeof w->why, "fd %d: closes %u, live ops %u", fd,
                                     iox_sim_closes(w->sw.sim, fd), iox_sim_live_ops(w->sw.sim, fd));
        }
    }
    if (iox_sim_live_ops(w->sw.sim, -1)) { failed = 1; if (!w->why[0]) snprintf(w->why, sizeof w->why, "%u ops left on no fd (tick, socket)", iox_sim_live_ops(w->sw.sim, -1)); }
    if (iox_sim_violations(w->sw.sim)) { failed = 1; if (!w->why[0]) snprintf(w->why, sizeof w->why, "sim: %s", iox_sim_last_violation(w->sw.sim)); }
    if (w->bad) failed = 1;
    if (failed)
        fprintf(stderr, "\n  seed %llu failed (pool %u, pipeline %u, queue %u, auth %d, %u queries, %u sockets): %s\n"
                "  replay: IOX_SEED=%llu build/tests pg_sim\n",
                (unsigned long long)seed, pc.size, pc.pipeline_max, pc.queue_max, w->auth, w->nq, w->nsrv, w->why,
                (unsigned long long)seed);
    for (unsigned i = 0; i < MAXFD; i++) free(w->srv[i].tx.p);
    sw_close(&w->sw);
    free(w);
    return failed;
}

/* Transitions taken, by (from, event), via the generated tracer; and the
 * last `stop` (close_gives_up_on_closing). */
static uint64_t taken[PG_CONN_STATE_COUNT][PG_CONN_EVENT_COUNT];
static int stop_from = -1, stop_to = -1;
static void trace(struct iox_pg_conn *c, int from, int event, int to)
{
    (void)c;
    taken[from][event]++;
    if (event == PG_CONN_EV_STOP) stop_from = from, stop_to = to;
}

static int quiet_level;
static int suite_init(void)
{
    pg_conn_trace = trace;
    if (!stmt_ready) {
        if (iox_pg_stmt_init(&stmt, "SELECT 'r' || $1", 1)) return -1;
        stmt_ready = 1;
    }
    quiet_level = iox_log_level;
    if (!getenv("IOX_LOG")) iox_log_level = -1;   /* thousands of expected connection losses */
    return 0;
}
static int suite_clean(void) { iox_log_level = quiet_level; pg_conn_trace = NULL; return 0; }

static int run_seed_arg(uint64_t seed, void *arg)
{
    (void)arg;
    return run_seed(seed);
}

IOX_TEST(pg_sim, seeded_schedules_with_faults)
{
    unsigned failures = iox_test_run_seeds(run_seed_arg, NULL, 20000);
    CU_ASSERT_EQUAL(failures, 0);
    if (getenv("IOX_SIM_STATS"))
        fprintf(stderr, "\n  pg_sim: %llu seeds, %llu sockets, %llu sessions; queries %llu accepted (%llu ok, %llu error, %llu failed), %llu refused\n",
                (unsigned long long)stats.seeds, (unsigned long long)stats.sockets, (unsigned long long)stats.sessions,
                (unsigned long long)stats.accepted, (unsigned long long)stats.ok, (unsigned long long)stats.error,
                (unsigned long long)stats.failed, (unsigned long long)stats.refused);
    if (getenv("IOX_SIM_STATS")) {
        fprintf(stderr, "  pg_conn transitions taken:");
        for (int a = 0; a < PG_CONN_STATE_COUNT; a++)
            for (int e = 0; e < PG_CONN_EVENT_COUNT; e++)
                if (taken[a][e]) fprintf(stderr, " %s/%s %llu", pg_conn_state_names[a], pg_conn_event_names[e],
                                         (unsigned long long)taken[a][e]);
        fprintf(stderr, "\n");
    }
}

/* ---- one turn, one write; few connections deep ---- */

/* Syncs the client sent on fd since *off (frontend messages after the
 * startup), and move *off to the end. */
static unsigned syncs_since(struct world *w, int fd, size_t *off)
{
    size_t n;
    const unsigned char *in = (const unsigned char *)iox_sim_peer_bytes(w->sw.sim, fd, &n);
    unsigned k = 0;
    while (*off + 5 <= n) {
        uint32_t len = rd32(in + *off + 1);
        if (in[*off] == 'S' && len == 4) k++;
        *off += 1 + len;
    }
    return k;
}

static void submit_prepared(struct world *w)
{
    unsigned q = w->nq++;
    char v[16];
    snprintf(v, sizeof v, "%u", q);
    qctx[q] = (struct qctx){w, q};
    const char *vals[1] = {v};
    int rc = iox_pg_query(w->pool, &stmt, 1, vals, on_result, &qctx[q]);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc == 0) w->accepted[q] = 1;
}

/* One pool on a simulated reactor against the test's trusting server, for
 * the cases that script a schedule by hand: open (and one turn), and the
 * close that checks the books (no op left after stop, no ring violation). */
static struct world *pool_world(const struct iox_pg_pool_config *pc)
{
    struct world *w = calloc(1, sizeof *w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_FATAL(sw_open(&w->sw, 4, 64, 500) == 0);
    w->auth = AUTH_TRUST;
    w->host = (struct srv_host){w->sw.sim, w->auth, host_bad, host_turn, w, host_find};
    char err[200];
    CU_ASSERT_FATAL(iox_pg_pool_open(&w->sw.r, pc, &w->pool, err, sizeof err) == 0);
    turn(w);
    return w;
}

static void pool_world_close(struct world *w)
{
    iox_pg_pool_stop(w->pool);
    for (int guard = 0; iox_pg_pool_ops(w->pool) && guard < 100; guard++) turn(w);
    CU_ASSERT_EQUAL(iox_pg_pool_ops(w->pool), 0);
    iox_pg_pool_close(w->pool);
    turn(w);
    CU_ASSERT_EQUAL(iox_sim_violations(w->sw.sim), 0);
    for (unsigned i = 0; i < MAXFD; i++) free(w->srv[i].tx.p);
    sw_close(&w->sw);
    free(w);
}

static int cmp_desc(const void *a, const void *b) { return (int)*(const unsigned *)b - (int)*(const unsigned *)a; }

/* Queries of one loop turn leave in one send per connection, and the pool
 * fills the deepest connection under `depth` before it uses another (issue
 * 14: PostgreSQL pays per read, not per pipelined query). What was queued
 * while a send was in flight waits for the end of the turn, so it leaves
 * with the rest of that turn's queries in one send. */
IOX_TEST(pg_sim, one_turn_one_write_few_deep_connections)
{
    struct iox_pg_pool_config pc = {
        .size = 4, .min_size = 4, .pipeline_max = 16, .depth = 8,
        .conninfo = "host=/sim port=5432 user=sim dbname=sim password=pw",
    };
    struct world *w = pool_world(&pc);
    uint64_t s = 42;
    calm(w, &s, 3);
    CU_ASSERT_EQUAL_FATAL(iox_pg_pool_up(w->pool), 4);
    CU_ASSERT_EQUAL_FATAL(w->nsrv, 4);
    size_t off[4];
    for (unsigned i = 0; i < 4; i++) {
        iox_sim_peer_bytes(w->sw.sim, w->srv[i].fd, &off[i]);
        CU_ASSERT_FALSE(iox_sim_has_op(w->sw.sim, IOX_OP_SEND, w->srv[i].fd));
    }

    /* 20 queries in one turn: 8 + 8 + 4 on three connections, one send
     * each (the first carries the statement's Parse), the fourth idle. */
    for (unsigned i = 0; i < 20; i++) submit_prepared(w);
    turn(w);
    unsigned got[4];
    for (unsigned i = 0; i < 4; i++) {
        int fd = w->srv[i].fd;
        unsigned sends = 0;
        while (iox_sim_has_op(w->sw.sim, IOX_OP_SEND, fd)) { iox_sim_send(w->sw.sim, fd, 0); sends++; turn(w); }
        got[i] = syncs_since(w, fd, &off[i]);
        CU_ASSERT(sends <= 1);
        CU_ASSERT_EQUAL(sends, got[i] ? 1u : 0u);
    }
    qsort(got, 4, sizeof got[0], cmp_desc);
    CU_ASSERT_EQUAL(got[0], 8);
    CU_ASSERT_EQUAL(got[1], 8);
    CU_ASSERT_EQUAL(got[2], 4);
    CU_ASSERT_EQUAL(got[3], 0);
    calm(w, &s, 2);
    CU_ASSERT_TRUE(all_answered(w));
    for (unsigned i = 0; i < 4; i++) syncs_since(w, w->srv[i].fd, &off[i]);

    /* A send in flight: 3 queries sent, 3 more queued behind it. Its
     * completion starts nothing mid-turn; the end of the turn sends those
     * 3 and 2 more in one write, on the same (deepest) connection. */
    for (unsigned i = 0; i < 3; i++) submit_prepared(w);
    turn(w);
    int busy = -1;
    for (unsigned i = 0; i < 4; i++)
        if (iox_sim_has_op(w->sw.sim, IOX_OP_SEND, w->srv[i].fd)) { CU_ASSERT_EQUAL(busy, -1); busy = (int)i; }
    CU_ASSERT_FATAL(busy >= 0);
    int fd = w->srv[busy].fd;
    for (unsigned i = 0; i < 3; i++) submit_prepared(w);
    iox_sim_send(w->sw.sim, fd, 0);                      /* the completion, mid-turn */
    CU_ASSERT_FALSE(iox_sim_has_op(w->sw.sim, IOX_OP_SEND, fd));
    CU_ASSERT_EQUAL(syncs_since(w, fd, &off[busy]), 3);
    for (unsigned i = 0; i < 2; i++) submit_prepared(w);
    turn(w);                                          /* the end of the turn */
    CU_ASSERT_TRUE(iox_sim_has_op(w->sw.sim, IOX_OP_SEND, fd));
    iox_sim_send(w->sw.sim, fd, 0);
    turn(w);
    CU_ASSERT_FALSE(iox_sim_has_op(w->sw.sim, IOX_OP_SEND, fd));
    CU_ASSERT_EQUAL(syncs_since(w, fd, &off[busy]), 5);
    for (unsigned i = 0; i < 4; i++)
        if ((int)i != busy) CU_ASSERT_EQUAL(syncs_since(w, w->srv[i].fd, &off[i]), 0);
    calm(w, &s, 2);
    CU_ASSERT_TRUE(all_answered(w));
    for (unsigned q = 0; q < w->nq; q++) CU_ASSERT_EQUAL(w->calls[q], 1);
    CU_ASSERT_EQUAL(w->bad, 0);

    pool_world_close(w);
}

/* The wait queue is bounded: with every session at pipeline_max and
 * queue_max queries waiting, the next query is refused at once (-EAGAIN,
 * a 503 in pg mode) instead of growing memory; once the queue drains it is
 * taken again, and every accepted query is answered exactly once. */
IOX_TEST(pg_sim, full_wait_queue_refuses_at_once)
{
    struct iox_pg_pool_config pc = {
        .size = 1, .min_size = 1, .pipeline_max = 2, .depth = 2, .queue_max = 3,
        .conninfo = "host=/sim port=5432 user=sim dbname=sim password=pw",
    };
    struct world *w = pool_world(&pc);
    uint64_t s = 7;
    calm(w, &s, 3);
    CU_ASSERT_EQUAL_FATAL(iox_pg_pool_up(w->pool), 1);
    for (unsigned i = 0; i < 5; i++) submit_prepared(w);   /* 2 in flight + 3 waiting */
    unsigned q = w->nq++;
    qctx[q] = (struct qctx){w, q};
    const char *vals[1] = {"x"};
    CU_ASSERT_EQUAL(iox_pg_query(w->pool, &stmt, 1, vals, on_result, &qctx[q]), -EAGAIN);
    turn(w);
    calm(w, &s, 3);
    CU_ASSERT_TRUE(all_answered(w));
    for (unsigned k = 0; k < 5; k++) CU_ASSERT_EQUAL(w->calls[k], 1);
    CU_ASSERT_EQUAL(w->calls[q], 0);
    submit_prepared(w);                                    /* drained: taken again */
    calm(w, &s, 3);
    CU_ASSERT_EQUAL(w->calls[w->nq - 1], 1);
    CU_ASSERT_EQUAL(w->bad, 0);
    pool_world_close(w);
}

/* The only session is lost with queries waiting behind it: they fail at
 * once (503s) instead of waiting for a reconnect that may take long, and
 * the one in flight fails with the session. No clock moves in between. */
IOX_TEST(pg_sim, waiting_queries_fail_when_no_session_is_up)
{
    struct iox_pg_pool_config pc = {
        .size = 1, .min_size = 1, .pipeline_max = 1, .depth = 1, .queue_max = 4,
        .conninfo = "host=/sim port=5432 user=sim dbname=sim password=pw",
    };
    struct world *w = pool_world(&pc);
    uint64_t s = 11;
    calm(w, &s, 3);
    CU_ASSERT_EQUAL_FATAL(iox_pg_pool_up(w->pool), 1);
    unsigned first = w->nq;
    for (unsigned i = 0; i < 3; i++) submit_prepared(w);   /* 1 on the session, 2 waiting */
    turn(w);
    int fd = w->srv[w->nsrv - 1].fd;
    CU_ASSERT_EQUAL(iox_sim_recv_end(w->sw.sim, fd, -ECONNRESET), 0);
    turn(w);
    for (unsigned q = first; q < first + 3; q++) {
        CU_ASSERT_EQUAL(w->calls[q], 1);
        CU_ASSERT_EQUAL(w->status[q], IOX_PG_FAILED);
    }
    CU_ASSERT_EQUAL(w->bad, 0);
    pool_world_close(w);
}

/* Sized by load: a pool opens min_size sessions (default 1) and one more
 * only when every up session is `depth` deep, one at a time (not again
 * until the new one is up); the query that found them all deep still goes
 * out at once, on the least loaded, and the next turn's queries fill the
 * new session. */
IOX_TEST(pg_sim, pool_grows_by_load_one_session_at_a_time)
{
    struct iox_pg_pool_config pc = {
        .size = 4, .pipeline_max = 16, .depth = 4,
        .conninfo = "host=/sim port=5432 user=sim dbname=sim password=pw",
    };
    struct world *w = pool_world(&pc);
    uint64_t s = 7;
    calm(w, &s, 3);
    CU_ASSERT_EQUAL(iox_pg_pool_up(w->pool), 1);
    CU_ASSERT_EQUAL_FATAL(w->nsrv, 1);
    CU_ASSERT_FALSE(iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1));
    size_t off[2] = {0, 0};
    iox_sim_peer_bytes(w->sw.sim, w->srv[0].fd, &off[0]);

    for (unsigned i = 0; i < 4; i++) submit_prepared(w);   /* up to depth: no growth */
    turn(w);
    CU_ASSERT_FALSE(iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1));
    submit_prepared(w);                                     /* the 5th finds it deep: grow */
    CU_ASSERT_TRUE(iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1));
    for (unsigned i = 0; i < 3; i++) submit_prepared(w);   /* the new one is not up: no more growth */
    turn(w);
    while (iox_sim_has_op(w->sw.sim, IOX_OP_SEND, w->srv[0].fd)) { iox_sim_send(w->sw.sim, w->srv[0].fd, 0); turn(w); }
    CU_ASSERT_EQUAL(syncs_since(w, w->srv[0].fd, &off[0]), 8);   /* 4 + 4 spilled, at once */
    calm(w, &s, 3);
    CU_ASSERT_EQUAL(iox_pg_pool_up(w->pool), 2);
    CU_ASSERT_EQUAL_FATAL(w->nsrv, 2);
    CU_ASSERT_TRUE(all_answered(w));
    syncs_since(w, w->srv[0].fd, &off[0]);
    iox_sim_peer_bytes(w->sw.sim, w->srv[1].fd, &off[1]);   /* count from after the new session's startup */

    /* Both idle: 6 queries in one turn fill the first to depth, the rest
     * go to the second; the pool does not grow. */
    for (unsigned i = 0; i < 6; i++) submit_prepared(w);
    turn(w);
    CU_ASSERT_FALSE(iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1));
    unsigned got[2];
    for (unsigned i = 0; i < 2; i++) {
        while (iox_sim_has_op(w->sw.sim, IOX_OP_SEND, w->srv[i].fd)) { iox_sim_send(w->sw.sim, w->srv[i].fd, 0); turn(w); }
        got[i] = syncs_since(w, w->srv[i].fd, &off[i]);
    }
    CU_ASSERT_EQUAL(got[0] + got[1], 6);
    CU_ASSERT((got[0] == 4 && got[1] == 2) || (got[0] == 2 && got[1] == 4));
    calm(w, &s, 2);
    CU_ASSERT_TRUE(all_answered(w));
    for (unsigned q = 0; q < w->nq; q++) CU_ASSERT_EQUAL(w->calls[q], 1);
    CU_ASSERT_EQUAL(w->bad, 0);
    CU_ASSERT_EQUAL(iox_pg_pool_up(w->pool), 2);

    pool_world_close(w);
}

/* ---- cancel (query_timeout_ms): the session survives ---- */

static uint64_t counter(struct world *w, const char *name)
{
    struct iox_counter c[64];
    unsigned n = iox_reactor_counters(&w->sw.r, c, 64);
    for (unsigned i = 0; i < n; i++)
        if (!strcmp(c[i].name, name)) return c[i].value;
    return ~0ull;
}

/* Complete the client's sends on sv, then let the server answer. */
static void pump_srv(struct world *w, struct srv *sv)
{
    while (iox_sim_has_op(w->sw.sim, IOX_OP_SEND, sv->fd)) { iox_sim_send(w->sw.sim, sv->fd, 0); turn(w); }
    serve(w, sv);
    deliver(w, sv, (size_t)-1, 512);
}

/* The cancel connection the pool opened: socket, then connect with
 * connect_res (0 or an error); returns its server. */
static struct srv *cancel_conn(struct world *w, int connect_res)
{
    CU_ASSERT_TRUE_FATAL(iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1));
    struct srv *cx = new_srv(w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cx);
    CU_ASSERT_EQUAL(iox_sim_complete_one(w->sw.sim, IOX_OP_SOCKET, -1, cx->fd), 0);
    turn(w);
    CU_ASSERT_TRUE(iox_sim_has_op(w->sw.sim, IOX_OP_CONNECT, cx->fd));
    cx->st = connect_res ? SV_DEAD : SV_STARTUP;
    CU_ASSERT_EQUAL(iox_sim_complete_one(w->sw.sim, IOX_OP_CONNECT, cx->fd, connect_res), 0);
    turn(w);
    return cx;
}

static const struct iox_pg_pool_config cancel_pc = {
    .size = 1, .min_size = 1, .pipeline_max = 8, .depth = 8,
    .conninfo = "host=/sim port=5432 user=sim dbname=sim password=pw query_timeout_ms=1000",
};

/* The server is stuck on q0 with q1 behind it. At the deadline q0 is
 * answered -ETIMEDOUT at once and a CancelRequest (the session's pid and
 * key) goes out on a fresh connection; the server fails q0 with 57014 —
 * swallowed — and answers q1: same session, nothing mismatched. */
IOX_TEST(pg_sim, overdue_query_is_cancelled_and_the_session_survives)
{
    struct world *w = pool_world(&cancel_pc);
    uint64_t s = 3;
    calm(w, &s, 3);
    CU_ASSERT_EQUAL_FATAL(iox_pg_pool_up(w->pool), 1);
    struct srv *sv = &w->srv[0];
    unsigned q0 = w->nq;
    submit_prepared(w);
    submit_prepared(w);
    turn(w);
    sv->stalled = 1;                       /* pg_sleep: nothing comes back */
    pump_srv(w, sv);
    tick(w, 999);
    CU_ASSERT_EQUAL(w->calls[q0], 0);
    CU_ASSERT_FALSE(iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1));
    tick(w, 1);
    CU_ASSERT_EQUAL(w->calls[q0], 1);      /* answered at once */
    CU_ASSERT_EQUAL(w->status[q0], IOX_PG_FAILED);
    CU_ASSERT_EQUAL(w->timeouts, 1);
    CU_ASSERT_EQUAL(w->calls[q0 + 1], 0);  /* behind it: still waiting */
    CU_ASSERT_EQUAL(counter(w, "ioxide_pg_cancels_total"), 1);
    struct srv *cx = cancel_conn(w, 0);
    pump_srv(w, cx);                       /* the server reads the CancelRequest, closes */
    CU_ASSERT_TRUE(cx->was_cancel);
    CU_ASSERT_EQUAL(sv->cancels, 1);       /* it reached the right backend, right key */
    CU_ASSERT_EQUAL(iox_sim_recv_end(w->sw.sim, cx->fd, 0), 0);
    turn(w);
    CU_ASSERT_EQUAL(iox_sim_closes(w->sw.sim, cx->fd), 1);
    CU_ASSERT_EQUAL(iox_sim_live_ops(w->sw.sim, cx->fd), 0);
    pump_srv(w, sv);                       /* 57014 for q0 (swallowed), then q1's rows */
    CU_ASSERT_EQUAL(w->calls[q0], 1);
    CU_ASSERT_EQUAL(w->calls[q0 + 1], 1);
    CU_ASSERT_EQUAL(w->status[q0 + 1], query_is_error(q0 + 1) ? IOX_PG_ERROR : IOX_PG_OK);
    CU_ASSERT_EQUAL(w->cancel_hits, 0);
    tick(w, 1500);                         /* past the recovery bound: recovered, kept */
    CU_ASSERT_EQUAL(iox_pg_pool_sessions(w->pool), 1);
    CU_ASSERT_EQUAL(iox_pg_pool_up(w->pool), 1);
    CU_ASSERT_EQUAL(iox_sim_closes(w->sw.sim, sv->fd), 0);
    submit_prepared(w);
    turn(w);
    pump_srv(w, sv);
    CU_ASSERT_EQUAL(w->calls[w->nq - 1], 1);
    CU_ASSERT_EQUAL(w->status[w->nq - 1], query_is_error(w->nq - 1) ? IOX_PG_ERROR : IOX_PG_OK);
    CU_ASSERT_EQUAL(counter(w, "ioxide_pg_cancel_failures_total"), 0);
    CU_ASSERT_EQUAL(w->bad, 0);
    pool_world_close(w);
}

/* While the session is cancelling it takes no new query: one submitted
 * then waits in the pool's queue, and leaves at the end of the turn in
 * which the cancelled query's ReadyForQuery brings the session back. */
IOX_TEST(pg_sim, a_query_waiting_during_the_cancel_runs_after_it)
{
    struct world *w = pool_world(&cancel_pc);
    uint64_t s = 6;
    calm(w, &s, 3);
    CU_ASSERT_EQUAL_FATAL(iox_pg_pool_up(w->pool), 1);
    struct srv *sv = &w->srv[0];
    unsigned q0 = w->nq;
    submit_prepared(w);
    turn(w);
    sv->stalled = 1;
    pump_srv(w, sv);
    tick(w, 1000);
    CU_ASSERT_EQUAL(w->calls[q0], 1);
    unsigned q1 = w->nq;
    submit_prepared(w);                    /* the session is cancelling: q1 waits */
    turn(w);
    CU_ASSERT_FALSE(iox_sim_has_op(w->sw.sim, IOX_OP_SEND, sv->fd));
    struct srv *cx = cancel_conn(w, 0);
    pump_srv(w, cx);
    CU_ASSERT_EQUAL(iox_sim_recv_end(w->sw.sim, cx->fd, 0), 0);
    turn(w);
    pump_srv(w, sv);                       /* 57014 for q0: the session is back, q1 leaves */
    CU_ASSERT_TRUE(iox_sim_has_op(w->sw.sim, IOX_OP_SEND, sv->fd));
    pump_srv(w, sv);
    CU_ASSERT_EQUAL(w->calls[q1], 1);
    CU_ASSERT_EQUAL(w->status[q1], query_is_error(q1) ? IOX_PG_ERROR : IOX_PG_OK);
    CU_ASSERT_EQUAL(w->cancel_hits, 0);
    CU_ASSERT_EQUAL(iox_pg_pool_sessions(w->pool), 1);
    CU_ASSERT_EQUAL(w->bad, 0);
    pool_world_close(w);
}

/* The race libpq users know: the slow query finishes just as its deadline
 * passes, so the cancel lands on the NEXT query. That one fails with 57014
 * (its own error, never q0's rows), q0's late rows are swallowed, and the
 * session lives on. */
IOX_TEST(pg_sim, a_late_cancel_fails_the_next_query_never_mismatches)
{
    struct world *w = pool_world(&cancel_pc);
    uint64_t s = 4;
    calm(w, &s, 3);
    CU_ASSERT_EQUAL_FATAL(iox_pg_pool_up(w->pool), 1);
    struct srv *sv = &w->srv[0];
    unsigned q0 = w->nq;
    submit_prepared(w);
    turn(w);
    sv->stalled = 1;
    pump_srv(w, sv);
    tick(w, 1000);
    CU_ASSERT_EQUAL(w->calls[q0], 1);
    CU_ASSERT_EQUAL(w->status[q0], IOX_PG_FAILED);
    sv->stalled = 0;
    pump_srv(w, sv);                       /* q0 finished after all: its rows go nowhere */
    CU_ASSERT_EQUAL(w->calls[q0], 1);
    unsigned q1 = w->nq;
    submit_prepared(w);                    /* the session takes queries again */
    turn(w);
    while (iox_sim_has_op(w->sw.sim, IOX_OP_SEND, sv->fd)) { iox_sim_send(w->sw.sim, sv->fd, 0); turn(w); }
    struct srv *cx = cancel_conn(w, 0);    /* only now does the cancel land */
    pump_srv(w, cx);
    CU_ASSERT_EQUAL(sv->cancels, 1);
    CU_ASSERT_EQUAL(iox_sim_recv_end(w->sw.sim, cx->fd, 0), 0);
    turn(w);
    pump_srv(w, sv);
    CU_ASSERT_EQUAL(w->calls[q1], 1);
    CU_ASSERT_EQUAL(w->status[q1], IOX_PG_ERROR);
    CU_ASSERT_EQUAL(w->cancel_hits, 1);    /* sqlstate 57014 (on_result checks the rest) */
    CU_ASSERT_EQUAL(w->calls[q0], 1);
    CU_ASSERT_EQUAL(iox_pg_pool_sessions(w->pool), 1);
    submit_prepared(w);
    turn(w);
    pump_srv(w, sv);
    CU_ASSERT_EQUAL(w->calls[w->nq - 1], 1);
    CU_ASSERT_EQUAL(w->status[w->nq - 1], query_is_error(w->nq - 1) ? IOX_PG_ERROR : IOX_PG_OK);
    CU_ASSERT_EQUAL(iox_sim_closes(w->sw.sim, cx->fd), 1);
    CU_ASSERT_EQUAL(w->bad, 0);
    pool_world_close(w);
}

/* The cancel cannot be delivered (connect refused): logged, counted, its
 * socket closed; the stuck session is dropped at the second deadline
 * (query_timeout_ms after the cancel) — never a hang — and the pool
 * reconnects. */
IOX_TEST(pg_sim, cancel_refused_drops_the_session_at_the_second_deadline)
{
    struct world *w = pool_world(&cancel_pc);
    uint64_t s = 5;
    calm(w, &s, 3);
    CU_ASSERT_EQUAL_FATAL(iox_pg_pool_up(w->pool), 1);
    struct srv *sv = &w->srv[0];
    unsigned q0 = w->nq;
    submit_prepared(w);
    submit_prepared(w);
    turn(w);
    sv->stalled = 1;
    pump_srv(w, sv);
    tick(w, 1000);
    CU_ASSERT_EQUAL(w->calls[q0], 1);
    struct srv *cx = cancel_conn(w, -ECONNREFUSED);
    CU_ASSERT_EQUAL(iox_sim_closes(w->sw.sim, cx->fd), 1);
    CU_ASSERT_EQUAL(iox_sim_live_ops(w->sw.sim, cx->fd), 0);
    CU_ASSERT_EQUAL(counter(w, "ioxide_pg_cancel_failures_total"), 1);
    tick(w, 999);
    CU_ASSERT_EQUAL(w->calls[q0 + 1], 0);  /* still within the bound */
    CU_ASSERT_EQUAL(iox_sim_closes(w->sw.sim, sv->fd), 0);
    tick(w, 1);
    CU_ASSERT_EQUAL(w->calls[q0 + 1], 1);  /* dropped with its pipeline */
    CU_ASSERT_EQUAL(w->status[q0 + 1], IOX_PG_FAILED);
    CU_ASSERT_EQUAL(iox_sim_closes(w->sw.sim, sv->fd), 1);
    CU_ASSERT_STRING_EQUAL(iox_pg_pool_last_error(w->pool),
                           "query timed out after 1000 ms (query_timeout_ms) and the session did not recover "
                           "within 1000 ms of the cancel");
    sv->st = SV_DEAD;
    calm(w, &s, 5);
    CU_ASSERT_EQUAL(iox_pg_pool_up(w->pool), 1);
    CU_ASSERT_EQUAL(iox_pg_pool_sessions(w->pool), 2);
    CU_ASSERT_EQUAL(w->bad, 0);
    pool_world_close(w);
}

/* A cancel connection that hangs (a connect never answered) is given up at
 * connect_timeout: its op cancelled, its socket closed, the failure
 * counted; the stuck session still goes at the recovery bound. */
IOX_TEST(pg_sim, a_hanging_cancel_connection_is_given_up)
{
    struct iox_pg_pool_config pc = cancel_pc;
    pc.conninfo = "host=/sim port=5432 user=sim dbname=sim password=pw query_timeout_ms=1000 connect_timeout_ms=500";
    struct world *w = pool_world(&pc);
    uint64_t s = 8;
    calm(w, &s, 3);
    CU_ASSERT_EQUAL_FATAL(iox_pg_pool_up(w->pool), 1);
    struct srv *sv = &w->srv[0];
    unsigned q0 = w->nq;
    submit_prepared(w);
    submit_prepared(w);
    turn(w);
    sv->stalled = 1;
    pump_srv(w, sv);
    tick(w, 1000);
    CU_ASSERT_EQUAL(w->calls[q0], 1);
    struct srv *cx = new_srv(w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cx);
    CU_ASSERT_EQUAL(iox_sim_complete_one(w->sw.sim, IOX_OP_SOCKET, -1, cx->fd), 0);
    turn(w);
    CU_ASSERT_TRUE(iox_sim_has_op(w->sw.sim, IOX_OP_CONNECT, cx->fd));   /* never answered */
    tick(w, 499);
    CU_ASSERT_TRUE(iox_sim_has_op(w->sw.sim, IOX_OP_CONNECT, cx->fd));
    CU_ASSERT_EQUAL(counter(w, "ioxide_pg_cancel_failures_total"), 0);
    tick(w, 1);                    /* connect_timeout: the connect is cancelled (the sim answers -ECANCELED) */
    CU_ASSERT_FALSE(iox_sim_has_op(w->sw.sim, IOX_OP_CONNECT, cx->fd));
    CU_ASSERT_EQUAL(iox_sim_closes(w->sw.sim, cx->fd), 1);
    CU_ASSERT_EQUAL(iox_sim_live_ops(w->sw.sim, cx->fd), 0);
    CU_ASSERT_EQUAL(counter(w, "ioxide_pg_cancel_failures_total"), 1);
    CU_ASSERT_EQUAL(w->calls[q0 + 1], 0);
    tick(w, 500);                                                     /* the recovery bound */
    CU_ASSERT_EQUAL(w->calls[q0 + 1], 1);
    CU_ASSERT_EQUAL(w->status[q0 + 1], IOX_PG_FAILED);
    CU_ASSERT_EQUAL(iox_sim_closes(w->sw.sim, sv->fd), 1);
    CU_ASSERT_EQUAL(w->bad, 0);
    pool_world_close(w);
}

/* iox_pg_pool_close does not wait for the simulated ring, as it gives up on
 * a real one after 500 ms: a connection still closing — its socket op in
 * flight (closing), or its close (closing_socket) — takes `stop` there and
 * is stopped (spec/machines/pg_conn.toml), with no op queued after. */
static void close_while(int close_in_flight)
{
    struct sim_world sw;
    CU_ASSERT_FATAL(sw_open(&sw, 4, 64, 500) == 0);
    CU_ASSERT_FATAL(sw.r.seam == iox_sim_seam(sw.sim));   /* the reactor runs on the simulator */
    struct iox_reactor *r = &sw.r;
    struct iox_seam_sim *sim = sw.sim;
    struct iox_pg_pool_config pc = {
        .size = 1, .conninfo = "host=/sim port=5432 user=sim dbname=sim password=pw connect_timeout_ms=1000",
    };
    struct iox_pg_pool *pool;
    char err[200];
    CU_ASSERT_FATAL(iox_pg_pool_open(r, &pc, &pool, err, sizeof err) == 0);
    const int fd = FD0;
    if (close_in_flight) {
        /* socket → connect in flight; stop cancels it; both completions
         * come (the tick's cancel is left alone): the close is queued. */
        CU_ASSERT_EQUAL(iox_sim_complete_one(sim, IOX_OP_SOCKET, -1, fd), 0);
        CU_ASSERT_TRUE(iox_sim_has_op(sim, IOX_OP_CONNECT, fd));
        iox_pg_pool_stop(pool);
        CU_ASSERT_EQUAL(iox_sim_complete_one(sim, IOX_OP_CONNECT, fd, -ECANCELED), 0);
        CU_ASSERT_EQUAL(iox_sim_complete_one(sim, IOX_OP_CANCEL, fd, 1), 0);
        CU_ASSERT_TRUE(iox_sim_has_op(sim, IOX_OP_CLOSE, fd));
    } else {
        iox_pg_pool_stop(pool);   /* the socket op stays in flight */
        CU_ASSERT_TRUE(iox_sim_has_op(sim, IOX_OP_SOCKET, -1));
    }
    CU_ASSERT_NOT_EQUAL(iox_pg_pool_ops(pool), 0);
    unsigned live = iox_sim_live_ops(sim, close_in_flight ? fd : -1);
    stop_from = stop_to = -1;
    iox_pg_pool_close(pool);
    CU_ASSERT_EQUAL(stop_from, close_in_flight ? PG_CONN_S_CLOSING_SOCKET : PG_CONN_S_CLOSING);
    CU_ASSERT_EQUAL(stop_to, PG_CONN_S_STOPPED);
    CU_ASSERT_EQUAL(iox_sim_live_ops(sim, close_in_flight ? fd : -1), live);   /* nothing new queued */
    CU_ASSERT_EQUAL(iox_sim_violations(sim), 0);
    sw_close(&sw);
}

IOX_TEST(pg_sim, close_gives_up_on_closing) { close_while(0); }
IOX_TEST(pg_sim, close_gives_up_on_closing_socket) { close_while(1); }

/* ---- several hosts: host=/sim1,/sim2 (docs/pg-client.md "Several hosts") ---- */

/* What the server at an address is: refuses connections, or a standby /
 * primary that reports what it is (PostgreSQL 14+) or must be asked. */
struct role { const char *path; int refuse; uint8_t standby, report; };

static const struct role *role_of(struct world *w, const struct srv *sv, const struct role *roles, unsigned n)
{
    const char *a = iox_sim_connect_addr(w->sw.sim, sv->fd);
    for (unsigned i = 0; i < n; i++)
        if (!strncmp(a, roles[i].path, strlen(roles[i].path))) return &roles[i];
    CU_FAIL("connect to an address no role names");
    return NULL;
}

/* calm() for a host list: every connect is answered as its address's role
 * says; the clock moves only when with_tick. */
static void drive_hosts(struct world *w, uint64_t *s, const struct role *roles, unsigned nroles, unsigned steps,
                        int with_tick)
{
    for (unsigned i = 0; i < steps; i++) {
        turn(w);
        for (int again = 1; again;) {
            again = 0;
            while (iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1)) {
                struct srv *sv = new_srv(w);
                if (!sv) return;
                iox_sim_complete_one(w->sw.sim, IOX_OP_SOCKET, -1, sv->fd);
                turn(w);
            }
            for (unsigned j = 0; j < w->nsrv; j++) {
                struct srv *sv = &w->srv[j];
                if (sv->st == SV_CONNECTING && iox_sim_has_op(w->sw.sim, IOX_OP_CONNECT, sv->fd)) {
                    const struct role *ro = role_of(w, sv, roles, nroles);
                    if (!ro || ro->refuse) {
                        sv->st = SV_DEAD;
                        iox_sim_complete_one(w->sw.sim, IOX_OP_CONNECT, sv->fd, -ECONNREFUSED);
                    } else {
                        sv->standby = ro->standby;
                        sv->report = ro->report;
                        sv->st = SV_STARTUP;
                        iox_sim_complete_one(w->sw.sim, IOX_OP_CONNECT, sv->fd, 0);
                    }
                    turn(w);
                    again = 1;
                }
                while (iox_sim_has_op(w->sw.sim, IOX_OP_SEND, sv->fd)) { iox_sim_send(w->sw.sim, sv->fd, 0); turn(w); again = 1; }
                size_t owed = sv->tx.len - sv->tx.off;
                serve(w, sv);
                deliver(w, sv, (size_t)-1, 1 + rnd(s) % 512);
                if (sv->tx.len - sv->tx.off != owed) again = 1;
            }
        }
        if (with_tick) tick(w, 100);
    }
}

/* Host 1 refuses the connection: the session moves on to host 2 at once
 * (no backoff between the hosts of a pass) and the queries go there. */
IOX_TEST(pg_sim, host_list_moves_on_when_a_host_refuses)
{
    struct iox_pg_pool_config pc = {.size = 1, .conninfo = "host=/sim1,/sim2 port=5432 user=sim dbname=sim"};
    struct world *w = pool_world(&pc);
    uint64_t s = 5;
    static const struct role roles[] = {{"/sim1/", 1, 0, 0}, {"/sim2/", 0, 0, 0}};
    drive_hosts(w, &s, roles, 2, 2, 0);
    CU_ASSERT_EQUAL_FATAL(iox_pg_pool_up(w->pool), 1);
    CU_ASSERT_EQUAL_FATAL(w->nsrv, 2);
    CU_ASSERT_STRING_EQUAL(iox_sim_connect_addr(w->sw.sim, w->srv[0].fd), "/sim1/.s.PGSQL.5432");
    CU_ASSERT_STRING_EQUAL(iox_sim_connect_addr(w->sw.sim, w->srv[1].fd), "/sim2/.s.PGSQL.5432");
    for (unsigned i = 0; i < 3; i++) submit_prepared(w);
    drive_hosts(w, &s, roles, 2, 2, 0);
    CU_ASSERT_TRUE(all_answered(w));
    CU_ASSERT_EQUAL(w->srv[1].queries, 3);
    CU_ASSERT_EQUAL(w->bad, 0);
    pool_world_close(w);
}

/* target_session_attrs=read-write with a hot standby listed first: its
 * session is rejected — by the ParameterStatus a PostgreSQL 14+ server
 * reports, or by SHOW transaction_read_only on an older one — before it
 * takes any query; the session moves to the primary and every query is
 * answered there. */
IOX_TEST(pg_sim, read_write_moves_past_a_standby)
{
    for (int report = 0; report < 2; report++) {
        struct iox_pg_pool_config pc = {
            .size = 1, .conninfo = "host=/sim1,/sim2 user=sim dbname=sim target_session_attrs=read-write"};
        struct world *w = pool_world(&pc);
        uint64_t s = 9;
        const struct role roles[] = {{"/sim1/", 0, 1, (uint8_t)report}, {"/sim2/", 0, 0, (uint8_t)report}};
        drive_hosts(w, &s, roles, 2, 2, 0);
        CU_ASSERT_EQUAL_FATAL(iox_pg_pool_up(w->pool), 1);
        CU_ASSERT_EQUAL_FATAL(w->nsrv, 2);
        CU_ASSERT_EQUAL(w->srv[0].checks, report ? 0u : 1u);     /* asked only when not reported */
        CU_ASSERT_EQUAL(w->srv[1].checks, report ? 0u : 1u);
        for (unsigned i = 0; i < 4; i++) submit_prepared(w);
        drive_hosts(w, &s, roles, 2, 2, 0);
        CU_ASSERT_TRUE(all_answered(w));
        CU_ASSERT_EQUAL(w->srv[0].queries, 0);                   /* the standby served nothing */
        CU_ASSERT_EQUAL(w->srv[1].queries, 4);
        CU_ASSERT_EQUAL(w->bad, 0);
        pool_world_close(w);
    }
}

/* standby / prefer-standby / primary / read-only pick their server from the
 * same two; prefer-standby with no standby takes a second pass accepting
 * any (at once, no backoff), standby with none does not get up. */
IOX_TEST(pg_sim, target_session_attrs_pick_their_server)
{
    static const struct { const char *attrs; uint8_t standby1, standby2; int up; unsigned nsrv, on; } cases[] = {
        {"standby", 0, 1, 1, 2, 1},
        {"read-only", 0, 1, 1, 2, 1},
        {"primary", 1, 0, 1, 2, 1},
        {"prefer-standby", 0, 1, 1, 2, 1},
        {"prefer-standby", 1, 1, 1, 1, 0},
        {"prefer-standby", 0, 0, 1, 3, 2},     /* no standby: pass 2 takes the first host */
        {"standby", 0, 0, 0, 2, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int report = 0; report < 2; report++) {
            char ci[160];
            snprintf(ci, sizeof ci, "host=/sim1,/sim2 user=sim dbname=sim target_session_attrs=%s", cases[k].attrs);
            struct iox_pg_pool_config pc = {.size = 1, .conninfo = ci};
            struct world *w = pool_world(&pc);
            uint64_t s = 3;
            const struct role roles[] = {{"/sim1/", 0, cases[k].standby1, (uint8_t)report},
                                         {"/sim2/", 0, cases[k].standby2, (uint8_t)report}};
            drive_hosts(w, &s, roles, 2, 1, 0);
            int ok = iox_pg_pool_up(w->pool) == (unsigned)cases[k].up && w->nsrv == cases[k].nsrv;
            if (ok && cases[k].up) {
                submit_prepared(w);
                drive_hosts(w, &s, roles, 2, 1, 0);
                for (unsigned i = 0; i < w->nsrv; i++) ok &= w->srv[i].queries == (i == cases[k].on ? 1u : 0u);
                ok &= all_answered(w);
            }
            if (!ok) fprintf(stderr, "\n  %s (report %d): up %u, %u servers", cases[k].attrs, report,
                             iox_pg_pool_up(w->pool), w->nsrv);
            CU_ASSERT(ok);
            pool_world_close(w);
        }
    }
}

/* Every host refuses: the backoff is per pass over the list — both hosts
 * are tried at once, then nothing until 100 ms, both again, then 200 ms. */
IOX_TEST(pg_sim, backoff_once_per_pass_when_every_host_fails)
{
    struct iox_pg_pool_config pc = {.size = 1, .conninfo = "host=/sim1,/sim2 user=sim dbname=sim"};
    struct world *w = pool_world(&pc);
    uint64_t s = 4;
    static const struct role roles[] = {{"/sim1/", 1, 0, 0}, {"/sim2/", 1, 0, 0}};
    drive_hosts(w, &s, roles, 2, 1, 0);
    CU_ASSERT_EQUAL(w->nsrv, 2);                                  /* one pass: both hosts */
    CU_ASSERT_FALSE(iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1));
    tick(w, 60);
    CU_ASSERT_FALSE(iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1));  /* backoff 100 ms */
    tick(w, 60);
    CU_ASSERT_TRUE(iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1));
    drive_hosts(w, &s, roles, 2, 1, 0);
    CU_ASSERT_EQUAL(w->nsrv, 4);
    CU_ASSERT_STRING_EQUAL(iox_sim_connect_addr(w->sw.sim, w->srv[2].fd), "/sim1/.s.PGSQL.5432");   /* from the top */
    tick(w, 120);
    CU_ASSERT_FALSE(iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1));  /* doubled: 200 ms */
    tick(w, 100);
    CU_ASSERT_TRUE(iox_sim_has_op(w->sw.sim, IOX_OP_SOCKET, -1));
    CU_ASSERT_EQUAL(iox_pg_pool_up(w->pool), 0);
    drive_hosts(w, &s, roles, 2, 1, 0);       /* that pass fails too: nothing left in the ring */
    pool_world_close(w);
}

/* load_balance_hosts=random: each pass shuffles the list with the pool's
 * PRNG; with a fixed seed the order is the same every run, and over many
 * passes each host comes first. */
IOX_TEST(pg_sim, load_balance_random_shuffles_each_pass)
{
    unsigned first[2][3] = {{0}};
    for (int run = 0; run < 2; run++) {
        struct iox_pg_pool_config pc = {
            .size = 1, .lb_seed = 12345,
            .conninfo = "host=/sim1,/sim2,/sim3 user=sim dbname=sim load_balance_hosts=random"};
        struct world *w = pool_world(&pc);
        uint64_t s = 4;
        static const struct role roles[] = {{"/sim1/", 1, 0, 0}, {"/sim2/", 1, 0, 0}, {"/sim3/", 1, 0, 0}};
        for (unsigned pass = 0; pass < 12; pass++) {
            unsigned n0 = w->nsrv;
            drive_hosts(w, &s, roles, 3, 1, 0);
            CU_ASSERT_EQUAL(w->nsrv, n0 + 3);
            const char *a = iox_sim_connect_addr(w->sw.sim, w->srv[n0].fd);
            if (strlen(a) > 4) first[run][a[4] - '1']++;
            tick(w, 2100);
        }
        drive_hosts(w, &s, roles, 3, 1, 0);
        pool_world_close(w);
    }
    for (int h = 0; h < 3; h++) {
        CU_ASSERT_EQUAL(first[0][h], first[1][h]);     /* the seed decides */
        CU_ASSERT(first[0][h] > 0);
    }
}

IOX_SUITE(pg_sim, suite_init, suite_clean);
