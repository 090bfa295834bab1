/* fuzz_pg_conn.c — libFuzzer target for the PostgreSQL client: the pool
 * (runtime/pg/pg_pool.c) and its generated pg_conn machine (runtime/pg/pg_conn.c)
 * driven through the simulated ring, the target playing the server with
 * tests/pg_sim_server.h (the server of tests/test_pg_sim.c), on a schedule
 * written by the fuzzer instead of a seeded generator.
 *
 * Input: two config bytes, then a program of ops (op byte % OP__COUNT,
 * then its operands; a missing operand reads as 0):
 *   config[0]  bits 0-1: pool size 1 + b % 3 (1..3); bits 2-3: auth
 *              (trust, cleartext, MD5, trust); bit 4: every third query's
 *              callback submits another query (re-entrancy); bit 5: no
 *              query timeout in the conninfo
 *   config[1]  bits 0-2: pipeline_max 1..8; bits 3-5: queue_max 0..7
 *              (0 is the pool's default, 1024)
 * Servers are chosen by an operand k among the candidates of the op (live
 * servers; for SEND, servers with a send in the ring; for CONNECT,
 * servers whose connect is pending), k % count.
 *   SOCKET r         complete the oldest IORING_OP_SOCKET: a fresh fake fd,
 *                    or -EMFILE when r % 8 == 0
 *   CONNECT k r      complete a connect: r % 8 == 0 refused, == 1 the
 *                    server never answers it (connect timeout), else ok
 *   SEND k s         complete the oldest send on k: in full (s == 0) or
 *                    short at s bytes
 *   SERVE k m c      k reads what the client sent and queues its answers;
 *                    deliver up to m bytes (0: all) in recvs of <= c+1
 *   SUBMIT n f       submit 1 + n % 8 queries; f % 4: simple, prepared
 *                    (1 param), prepared with a second parameter padded to
 *                    (f >> 2) * 16 bytes (a large one waits in a growable
 *                    buffer; the simple query gets a padding comment of
 *                    that size), or alternate
 *   TICK d           clock += d * 10 ms, every ring timeout fires (the
 *                    pool's tick: backoff, connect and query deadlines)
 *   TURN             one loop turn
 *   RESET k          the server's socket resets (-ECONNRESET)
 *   EOF k m c        serve, deliver m % owed bytes of what is owed (never
 *                    all: EOF mid-message when something is owed), EOF
 *   FATAL k c        serve, then FATAL 57P01 (the database dies mid-
 *                    pipeline), delivered in recvs of <= c+1, then EOF
 *   GARBAGE k g c    serve, then protocol garbage template g at a message
 *                    boundary (every template is rejected by the parser, or
 *                    is a message the session must refuse), delivered in
 *                    recvs of <= c+1; the server is dead after
 *   SENDFAIL k       the next send on k fails (-EPIPE)
 *   STALL k          k stops answering (query / auth timeouts; an overdue
 *                    query is cancelled: the server reads a CancelRequest
 *                    on a connection of its own and fails the oldest
 *                    unanswered query with 57014, or ignores it when idle)
 *   NOISE k t        k queues a NoticeResponse / ParameterStatus /
 *                    NotificationResponse at a message boundary (ignored by
 *                    a session; a NotificationResponse during
 *                    authentication ends it)
 *   FLOOD            submit until the pool refuses (queue full: -EAGAIN,
 *                    or -ENOTCONN when nothing is up)
 *   AUTHFAIL k       k answers FATAL 28P01 (password authentication
 *                    failed), then EOF
 *   STOP             end the program here: stop the pool with whatever is
 *                    in flight (no recovery phase)
 * After the program (unless STOP) the faults end: stalls end (a stalled
 * connect is refused), dead sockets read EOF, and the server serves
 * everything for 40 rounds of 100 ms, and on while queries are still being
 * answered (a deep queue behind a pipeline of 1 drains one per round); the
 * pool must be back to its full size with every accepted query answered, and a final query of each kind
 * must not fail. Then iox_pg_pool_stop, turns until iox_pg_pool_ops() is 0,
 * iox_pg_pool_close.
 *
 * Invariants (abort() on violation): every accepted query's callback runs
 * exactly once and a refused one's never; a refusal is -EAGAIN, -ENOTCONN
 * or -ESHUTDOWN; each result is its query's (the server answers "r<n>" or
 * ErrorResponse "e<n>" for query n, so a result given to another query is
 * seen); a FAILED result has an errno and a message; the client never
 * sends the server something it cannot read; every fake fd is closed
 * exactly once, nothing is queued on it after its close (simulator books),
 * and no op is left in the ring after stop + close; the recovery above.
 * FUZZ_TRACE=1 prints the ops as they run; IOX_LOG=debug the runtime's log. */
#include "fuzz_common.h"
#include <ioxide/log.h>
#include <ioxide/pg.h>
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include "pg_sim_server.h"
#include <errno.h>

#define MAXQ 4096
#define MAXFD 2048
#define FD0 1000          /* fake fds: [FD0, FD0 + MAXFD), never reused */
#define MAXSTEPS 4096

enum { OP_SOCKET, OP_CONNECT, OP_SEND, OP_SERVE, OP_SUBMIT, OP_TICK, OP_TURN, OP_RESET,
       OP_EOF, OP_FATAL, OP_GARBAGE, OP_SENDFAIL, OP_STALL, OP_NOISE, OP_FLOOD, OP_AUTHFAIL,
       OP_STOP, OP__COUNT };
static const char *const OP_NAMES[] = {"SOCKET", "CONNECT", "SEND", "SERVE", "SUBMIT", "TICK", "TURN",
    "RESET", "EOF", "FATAL", "GARBAGE", "SENDFAIL", "STALL", "NOISE", "FLOOD", "AUTHFAIL", "STOP"};

/* Protocol garbage, appended at a message boundary. 0-11 are rejected by
 * iox_pg_parse itself (unknown type, bad length, too large, bad count,
 * truncated, malformed status, trailing bytes, unterminated string); 12-13
 * parse but have no place in a session. None may complete a query. */
#define G(s) {s, sizeof s - 1}
static const struct { const char *b; size_t n; } GARBAGE[] = {
    G("\x01\0\0\0\4"), G("D\0\0\0\3"), G("D\x7f\xff\xff\xff"), G("D\0\0\0\6\xff\xff"),
    G("E\0\0\0\5S"), G("Z\0\0\0\5X"), G("Z\0\0\0\6II"), G("C\0\0\0\5x"), G("1\0\0\0\5x"),
    G("T\0\0\0\6\0\1"), G("D\0\0\0\x0a\0\1\0\0\0\5"), G("Z\0\0\0\4"),
    G("R\0\0\0\x08\0\0\0\0"), G("K\0\0\0\x0c\0\0\0\1\0\0\0\2"),
};
#undef G
#define NGARBAGE (sizeof GARBAGE / sizeof GARBAGE[0])

struct world {
    struct iox_seam_sim *sim;
    struct iox_reactor r;
    struct iox_server_config cfg;
    struct iox_pg_pool *pool;
    struct iox_pg_pool_config pc;
    struct srv_host host;
    struct srv srv[MAXFD];
    unsigned nsrv;
    uint64_t now;
    int resubmit;             /* callbacks submit more queries */
    unsigned callback_submits;
    int final;                /* the final queries are being submitted */
    /* Queries. */
    unsigned nq;
    uint8_t accepted[MAXQ], calls[MAXQ];
    unsigned naccepted, answered;
    int status[MAXQ];
};

static struct world *W;
static struct iox_pg_stmt stmt1, stmt2;
static char pad[1024];
static int trace;

static void sink(void *ctx, const struct iox_cqe *cqe) { iox_reactor_dispatch(ctx, cqe); }

static void turn(struct world *w)
{
    int guard = 0;
    do {
        FUZZ_CHECK(++guard < 10000, "loop turn does not settle");
        iox_sim_publish(w->sim);
        iox_reactor_flush(&w->r);
    } while (iox_sim_pump(w->sim) > 0);
}

static void host_bad(void *ctx, const char *fmt, unsigned q, const char *got)
{
    (void)ctx;
    char why[200];
    snprintf(why, sizeof why, fmt, q, got);
    FUZZ_CHECK(0, "the client sent the server something wrong: %s", why);
}
static void host_turn(void *ctx) { turn(ctx); }
/* A CancelRequest's target: the session whose pid (its fd) it names. */
static struct srv *host_find(void *ctx, int32_t pid)
{
    struct world *w = ctx;
    for (unsigned i = 0; i < w->nsrv; i++)
        if (w->srv[i].fd == pid) return &w->srv[i];
    return NULL;
}

/* ---- queries ---- */

static void submit(struct world *w, unsigned kind, unsigned padlen);

static void on_result(void *user, const struct iox_pg_res *res)
{
    struct world *w = W;
    unsigned q = (unsigned)(uintptr_t)user;
    FUZZ_CHECK(q < w->nq && w->accepted[q], "query %u: callback for a query never accepted", q);
    FUZZ_CHECK(w->calls[q] == 0, "query %u: callback called twice", q);
    w->calls[q]++;
    w->answered++;
    w->status[q] = res->status;
    if (trace) fprintf(stderr, "  result %u: %s %d %s\n", q, res->status == IOX_PG_OK ? "ok" : res->status == IOX_PG_ERROR ? "error" : "FAILED",
                       res->err, res->message);
    char want[32];
    if (res->status == IOX_PG_OK) {
        snprintf(want, sizeof want, "r%u", q);
        FUZZ_CHECK(!query_is_error(q), "query %u: OK where the server answered an error", q);
        FUZZ_CHECK(res->nrows == 1 && res->ncols == 1, "query %u: %u rows x %u cols", q, res->nrows, res->ncols);
        const struct iox_pg_str *c = iox_pg_cell(res, 0, 0);
        FUZZ_CHECK(c->len == (int32_t)strlen(want) && !memcmp(c->ptr, want, strlen(want)),
                   "query %u: got '%.*s' (another query's result?)", q, c->len > 0 ? (int)c->len : 0, c->ptr ? c->ptr : "");
        FUZZ_CHECK(!strcmp(res->command_tag, "SELECT 1"), "query %u: tag '%s'", q, res->command_tag);
    } else if (res->status == IOX_PG_ERROR && !strcmp(res->sqlstate, "57014")) {
        /* A cancel meant for an overdue query landed on this one (the slow
         * one finished first): its own error, never another's rows. */
    } else if (res->status == IOX_PG_ERROR) {
        snprintf(want, sizeof want, "e%u", q);
        FUZZ_CHECK(query_is_error(q) && !strcmp(res->message, want) && !strcmp(res->sqlstate, "22012"),
                   "query %u: unexpected error '%s' (%s)", q, res->message, res->sqlstate);
    } else {
        FUZZ_CHECK(res->status == IOX_PG_FAILED, "query %u: status %d", q, res->status);
        FUZZ_CHECK(res->err < 0 && res->message && res->message[0],
                   "query %u: FAILED without an errno (%d) or a message", q, res->err);
    }
    /* From inside the callback (completion processing, a drop failing the
     * pipeline, the tick, stop): start another query. */
    if (w->resubmit && q % 3 == 0 && w->callback_submits < 1000) {
        w->callback_submits++;
        submit(w, q % 4, q % 2 ? 0 : 300);
    }
}

/* kind: 0 simple, 1 prepared, 2 prepared with a padded second parameter. */
static int submit_rc(struct world *w, unsigned kind, unsigned padlen)
{
    /* The last numbers are kept for the final queries. */
    if (w->nq >= (w->final ? MAXQ : MAXQ - 8)) return -EAGAIN;
    unsigned q = w->nq++;
    char v[16];
    snprintf(v, sizeof v, "%u", q);
    if (padlen > sizeof pad - 1) padlen = sizeof pad - 1;
    void *user = (void *)(uintptr_t)q;
    int rc;
    kind %= 3;
    if (kind == 0) {
        char sql[1100];
        if (padlen) snprintf(sql, sizeof sql, "SELECT %u /*%.*s*/", q, (int)padlen, pad);
        else snprintf(sql, sizeof sql, "SELECT %u", q);
        rc = iox_pg_query_simple(w->pool, sql, on_result, user);
    } else if (kind == 1) {
        const char *vals[1] = {v};
        rc = iox_pg_query(w->pool, &stmt1, 1, vals, on_result, user);
    } else {
        char p2[sizeof pad];
        memcpy(p2, pad, padlen);
        p2[padlen] = 0;
        const char *vals[2] = {v, padlen ? p2 : NULL};
        rc = iox_pg_query(w->pool, &stmt2, 2, vals, on_result, user);
    }
    if (trace) fprintf(stderr, "  query %u kind %u pad %u: %s\n", q, kind, padlen, rc ? strerror(-rc) : "accepted");
    if (rc == 0) { w->accepted[q] = 1; w->naccepted++; }
    else FUZZ_CHECK(rc == -EAGAIN || rc == -ENOTCONN || rc == -ESHUTDOWN, "query %u: unexpected refusal %s", q, strerror(-rc));
    return rc;
}

static void submit(struct world *w, unsigned kind, unsigned padlen) { (void)submit_rc(w, kind, padlen); }

/* ---- the servers ---- */

static struct srv *new_srv(struct world *w)
{
    if (w->nsrv >= MAXFD) return NULL;
    struct srv *sv = &w->srv[w->nsrv];
    memset(sv, 0, sizeof *sv);
    sv->fd = FD0 + (int)w->nsrv++;
    sv->st = SV_CONNECTING;
    return sv;
}

enum { PICK_LIVE, PICK_SEND, PICK_CONNECT };

/* The k-th (mod count) server fit for an op, or NULL. */
static struct srv *pick(struct world *w, unsigned k, int what)
{
    unsigned n = 0;
    for (int pass = 0; pass < 2; pass++) {
        unsigned i = 0;
        for (unsigned j = 0; j < w->nsrv; j++) {
            struct srv *sv = &w->srv[j];
            int fit = what == PICK_LIVE ? sv->st != SV_DEAD
                    : what == PICK_SEND ? iox_sim_has_op(w->sim, IOX_OP_SEND, sv->fd)
                    : sv->st == SV_CONNECTING && !sv->stalled && iox_sim_has_op(w->sim, IOX_OP_CONNECT, sv->fd);
            if (!fit) continue;
            if (pass == 1 && i == k % n) return sv;
            i++;
        }
        if (pass == 0) { n = i; if (!n) return NULL; }
    }
    return NULL;
}

static void kill_srv(struct world *w, struct srv *sv, int res)
{
    sv->st = SV_DEAD;
    if (iox_sim_recv_end(w->sim, sv->fd, res) == 0) turn(w);
}

static void reap_dead(struct world *w)
{
    for (unsigned i = 0; i < w->nsrv; i++)
        if (w->srv[i].st == SV_DEAD && iox_sim_recv_end(w->sim, w->srv[i].fd, 0) == 0) turn(w);
}

static void tick(struct world *w, uint64_t ms)
{
    w->now += ms;
    iox_reactor_advance_clock(&w->r, w->now);
    iox_sim_complete_all(w->sim, IOX_OP_TIMEOUT, -ETIME);
    turn(w);
}

static void serve(struct world *w, struct srv *sv) { srv_serve(&w->host, sv); }
static void deliver(struct world *w, struct srv *sv, size_t max, size_t chunk) { srv_deliver(&w->host, sv, max, chunk); }

/* The faults end; the server serves everything for `steps` rounds. */
static int calm(struct world *w, unsigned steps)
{
    for (unsigned i = 0; i < w->nsrv; i++) {
        struct srv *sv = &w->srv[i];
        if (sv->stalled) {   /* a stall ends: a stalled connect is refused now */
            sv->stalled = 0;
            if (sv->st == SV_CONNECTING && iox_sim_has_op(w->sim, IOX_OP_CONNECT, sv->fd)) {
                sv->st = SV_DEAD;
                iox_sim_complete_one(w->sim, IOX_OP_CONNECT, sv->fd, -ECONNREFUSED);
            }
        }
        sv->send_fail = 0;
    }
    reap_dead(w);
    turn(w);
    for (unsigned i = 0; i < steps; i++) {
        while (iox_sim_has_op(w->sim, IOX_OP_SOCKET, -1)) {
            struct srv *sv = new_srv(w);
            if (!sv) return -1;
            iox_sim_complete_one(w->sim, IOX_OP_SOCKET, -1, sv->fd);
            turn(w);
        }
        for (unsigned j = 0; j < w->nsrv; j++) {
            struct srv *sv = &w->srv[j];
            if (sv->st == SV_CONNECTING && iox_sim_has_op(w->sim, IOX_OP_CONNECT, sv->fd)) {
                sv->st = SV_STARTUP;
                iox_sim_complete_one(w->sim, IOX_OP_CONNECT, sv->fd, 0);
                turn(w);
            }
            while (iox_sim_has_op(w->sim, IOX_OP_SEND, sv->fd)) { iox_sim_send(w->sim, sv->fd, 0); turn(w); }
            serve(w, sv);
            deliver(w, sv, (size_t)-1, 1 + (i * 37 + j * 11) % 512);
        }
        tick(w, 100);
    }
    return 0;
}

/* calm() for 40 rounds, then for as long as queries are still being
 * answered: a deep queue behind a pipeline of 1 drains one query per round
 * (a pool of 1 x 1 with the default queue of 1024 holds 1025 queries).
 * Twenty rounds (2 s, five times the backoff cap) without an answer while
 * some are owed end it; the caller then finds them unanswered. */
static int recover(struct world *w)
{
    if (calm(w, 40)) return -1;
    unsigned idle = 0, answered = w->answered;
    for (unsigned n = 0; n < 20000 && w->answered < w->naccepted && idle < 20; n++) {
        if (calm(w, 1)) return -1;
        if (w->answered > answered) { answered = w->answered; idle = 0; }
        else idle++;
    }
    /* A query that waited in the queue keeps the deadline of its submission
     * (query_timeout_ms, default 30 s): dispatched late, it may have dropped
     * its session on the way. Give the slot its backoff to come back. */
    return calm(w, 10);
}

static int all_answered(struct world *w, unsigned *which)
{
    for (unsigned q = 0; q < w->nq; q++)
        if (w->accepted[q] && !w->calls[q]) { *which = q; return 0; }
    return 1;
}

/* ---- the program ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    if (iox_pg_stmt_init(&stmt1, "SELECT 'r' || $1", 1) || iox_pg_stmt_init(&stmt2, "SELECT 'r' || $1 || $2", 2))
        abort();
    memset(pad, 'p', sizeof pad);
    trace = getenv("FUZZ_TRACE") != NULL;
    if (!getenv("IOX_LOG")) iox_log_level = -1;   /* every schedule loses connections on purpose */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    struct world *w = calloc(1, sizeof *w);
    if (!w) abort();
    W = w;
    w->cfg.shutdown_grace_ms = 500;
    w->sim = iox_sim_create(4, 64);
    FUZZ_CHECK(w->sim && iox_reactor_init_sim(&w->r, iox_sim_seam(w->sim), &w->cfg) == 0);
    iox_sim_set_sink(w->sim, sink, &w->r);
    w->now = w->r.now_ms;
    const uint8_t c0 = data[0], c1 = data[1];
    int auth = (c0 >> 2) & 3;
    if (auth == 3) auth = AUTH_TRUST;
    w->resubmit = (c0 >> 4) & 1;
    w->host = (struct srv_host){w->sim, auth, host_bad, host_turn, w, host_find};
    w->pc = (struct iox_pg_pool_config){
        .size = 1 + (c0 & 3) % 3,
        .pipeline_max = 1 + (c1 & 7),
        .queue_max = (c1 >> 3) & 7,
        .backoff_max_ms = 400,
        .conninfo = (c0 & 0x20)
            ? "host=/sim port=5432 user=sim dbname=sim password=pw connect_timeout_ms=1000"
            : "host=/sim port=5432 user=sim dbname=sim password=pw connect_timeout_ms=1000 query_timeout_ms=1500",
    };
    w->pc.min_size = w->pc.size;   /* its invariants count on every session */
    char err[200];
    FUZZ_CHECK(iox_pg_pool_open(&w->r, &w->pc, &w->pool, err, sizeof err) == 0, "pool open: %s", err);
    turn(w);
    if (trace) fprintf(stderr, "pool size %u pipeline %u queue %u auth %d resubmit %d\n", w->pc.size,
                       w->pc.pipeline_max, w->pc.queue_max, auth, w->resubmit);

    size_t i = 2;
    int stopped_early = 0;
#define ARG() (i < size ? data[i++] : 0)
    for (unsigned steps = 0; i < size && steps < MAXSTEPS && !stopped_early; steps++) {
        unsigned op = data[i++] % OP__COUNT;
        struct srv *sv;
        if (trace) fprintf(stderr, "%s (up %u, ops %u)\n", OP_NAMES[op], iox_pg_pool_up(w->pool), iox_pg_pool_ops(w->pool));
        switch (op) {
        case OP_SOCKET: {
            unsigned r = ARG();
            if (!iox_sim_has_op(w->sim, IOX_OP_SOCKET, -1)) break;
            if (r % 8 == 0 || !(sv = new_srv(w))) iox_sim_complete_one(w->sim, IOX_OP_SOCKET, -1, -EMFILE);
            else iox_sim_complete_one(w->sim, IOX_OP_SOCKET, -1, sv->fd);
            turn(w);
            break;
        }
        case OP_CONNECT: {
            unsigned k = ARG(), r = ARG();
            if (!(sv = pick(w, k, PICK_CONNECT))) break;
            if (r % 8 == 0) { sv->st = SV_DEAD; iox_sim_complete_one(w->sim, IOX_OP_CONNECT, sv->fd, -ECONNREFUSED); }
            else if (r % 8 == 1) sv->stalled = 1;   /* never completes: connect timeout */
            else { sv->st = SV_STARTUP; iox_sim_complete_one(w->sim, IOX_OP_CONNECT, sv->fd, 0); }
            turn(w);
            break;
        }
        case OP_SEND: {
            unsigned k = ARG(), s = ARG();
            if (!(sv = pick(w, k, PICK_SEND))) break;
            if (sv->send_fail) { sv->send_fail = 0; iox_sim_send(w->sim, sv->fd, -EPIPE); }
            else iox_sim_send(w->sim, sv->fd, (int)s);
            turn(w);
            break;
        }
        case OP_SERVE: {
            unsigned k = ARG(), m = ARG(), c = ARG();
            if (!(sv = pick(w, k, PICK_LIVE))) break;
            serve(w, sv);
            deliver(w, sv, m ? m : (size_t)-1, 1 + (size_t)c);
            break;
        }
        case OP_SUBMIT: {
            unsigned n = 1 + ARG() % 8, f = ARG();
            for (unsigned j = 0; j < n; j++) submit(w, f % 4 == 3 ? j : f % 4, (f >> 2) * 16);
            if (n % 2) turn(w);   /* else the queries leave with the next turn */
            break;
        }
        case OP_TICK:
            tick(w, 10u * ARG());
            break;
        case OP_TURN:
            turn(w);
            break;
        case OP_RESET:
            if ((sv = pick(w, ARG(), PICK_LIVE)) && sv->st != SV_CONNECTING) kill_srv(w, sv, -ECONNRESET);
            break;
        case OP_EOF: {
            unsigned k = ARG(), m = ARG(), c = ARG();
            if (!(sv = pick(w, k, PICK_LIVE)) || sv->st == SV_CONNECTING) break;
            serve(w, sv);
            size_t owed = sv->tx.len - sv->tx.off;
            if (owed) deliver(w, sv, m % owed, 1 + (size_t)c);   /* never all of it */
            kill_srv(w, sv, 0);
            break;
        }
        case OP_FATAL: {
            unsigned k = ARG(), c = ARG();
            if (!(sv = pick(w, k, PICK_LIVE)) || sv->st != SV_UP) break;
            serve(w, sv);
            be_error(&sv->tx, "FATAL", "57P01", "terminating connection due to administrator command");
            deliver(w, sv, (size_t)-1, 1 + (size_t)c);
            kill_srv(w, sv, 0);
            break;
        }
        case OP_GARBAGE: {
            unsigned k = ARG(), g = ARG() % NGARBAGE, c = ARG();
            if (!(sv = pick(w, k, PICK_LIVE)) || sv->st == SV_CONNECTING) break;
            serve(w, sv);
            b_put(&sv->tx, GARBAGE[g].b, GARBAGE[g].n);
            deliver(w, sv, (size_t)-1, 1 + (size_t)c);
            sv->st = SV_DEAD;
            break;
        }
        case OP_SENDFAIL:
            if ((sv = pick(w, ARG(), PICK_LIVE))) sv->send_fail = 1;
            break;
        case OP_STALL:
            if ((sv = pick(w, ARG(), PICK_LIVE))) sv->stalled = 1;
            break;
        case OP_NOISE: {
            unsigned k = ARG(), t = ARG() % 3;
            if (!(sv = pick(w, k, PICK_LIVE)) || sv->st == SV_CONNECTING) break;
            serve(w, sv);
            struct buf pl = {0};
            if (t == 0) {
                b_put(&pl, "SNOTICE", 8); b_put(&pl, "C01000", 7); b_put(&pl, "Mnoise", 7); b_put(&pl, "", 1);
                b_msg(&sv->tx, 'N', &pl);
            } else if (t == 1) {
                b_str(&pl, "application_name"); b_str(&pl, "noise");
                b_msg(&sv->tx, 'S', &pl);
            } else {
                b_u32(&pl, 4242); b_str(&pl, "chan"); b_str(&pl, "payload");
                b_msg(&sv->tx, 'A', &pl);
            }
            free(pl.p);
            break;
        }
        case OP_FLOOD:
            for (unsigned j = 0; j < 4096 && submit_rc(w, j, 0) == 0; j++) {}
            break;
        case OP_AUTHFAIL:
            if (!(sv = pick(w, ARG(), PICK_LIVE)) || (sv->st != SV_STARTUP && sv->st != SV_PASSWORD)) break;
            be_error(&sv->tx, "FATAL", "28P01", "password authentication failed for user \"sim\"");
            deliver(w, sv, (size_t)-1, 64);
            kill_srv(w, sv, 0);
            break;
        case OP_STOP:
            stopped_early = 1;
            break;
        }
        FUZZ_CHECK(iox_pg_pool_up(w->pool) <= w->pc.size, "pool up %u > size %u", iox_pg_pool_up(w->pool), w->pc.size);
    }
#undef ARG

    /* The faults end: the pool must come back to its full size (backoff
     * <= 400 ms) and answer everything owed, then serve a final query of
     * each kind. Skipped after STOP, and when the schedule used up every
     * fake fd (MAXFD sockets: a limit of the harness, not of the pool). */
    if (!stopped_early && recover(w) == 0) {
        unsigned q;
        FUZZ_CHECK(iox_pg_pool_up(w->pool) == w->pc.size, "pool up %u/%u after the faults stopped",
                   iox_pg_pool_up(w->pool), w->pc.size);
        FUZZ_CHECK(all_answered(w, &q), "query %u unanswered after the faults stopped", q);
        if (recover(w) == 0) {   /* what the callbacks started */
            FUZZ_CHECK(all_answered(w, &q), "query %u unanswered after the faults stopped", q);
            w->resubmit = 0;
            w->final = 1;
            /* One at a time: a pool of 1 x 1 with no queue may hold only one. */
            for (unsigned k = 0; k < 3; k++) {
                unsigned fq = w->nq;
                int rc = submit_rc(w, k, k == 2 ? 500 : 0);
                FUZZ_CHECK(rc == 0, "final query %u refused by a recovered, idle pool: %s", fq, strerror(-rc));
                if (calm(w, 2)) break;
                FUZZ_CHECK(w->calls[fq] == 1 && w->status[fq] != IOX_PG_FAILED,
                           "final query %u: calls %u status %d", fq, w->calls[fq], w->status[fq]);
            }
        }
    }

    /* Stop: everything is cancelled and closed; drain the ring; free. */
    w->resubmit = 0;
    iox_pg_pool_stop(w->pool);
    for (int guard = 0; iox_pg_pool_ops(w->pool) && guard < 100; guard++) {
        while (iox_sim_has_op(w->sim, IOX_OP_SOCKET, -1)) {
            struct srv *sv = new_srv(w);
            iox_sim_complete_one(w->sim, IOX_OP_SOCKET, -1, sv ? sv->fd : -EMFILE);
        }
        turn(w);
    }
    FUZZ_CHECK(iox_pg_pool_ops(w->pool) == 0, "%u pool ops left after stop", iox_pg_pool_ops(w->pool));
    iox_pg_pool_close(w->pool);
    turn(w);
    for (unsigned q = 0; q < w->nq; q++)
        FUZZ_CHECK(w->accepted[q] == w->calls[q], "query %u: accepted %u, callbacks %u", q, w->accepted[q], w->calls[q]);
    for (unsigned j = 0; j < w->nsrv; j++) {
        int fd = w->srv[j].fd;
        FUZZ_CHECK(iox_sim_closes(w->sim, fd) == 1 && !iox_sim_live_ops(w->sim, fd), "fd %d: closes %u, live ops %u",
                   fd, iox_sim_closes(w->sim, fd), iox_sim_live_ops(w->sim, fd));
    }
    FUZZ_CHECK(!iox_sim_live_ops(w->sim, -1), "%u ops left on no fd (tick, socket)", iox_sim_live_ops(w->sim, -1));
    FUZZ_CHECK(!iox_sim_violations(w->sim), "simulator: %s", iox_sim_last_violation(w->sim));
    for (unsigned j = 0; j < MAXFD; j++) free(w->srv[j].tx.p);
    iox_reactor_fini(&w->r);
    iox_sim_destroy(w->sim);
    free(w);
    W = NULL;
    return 0;
}
