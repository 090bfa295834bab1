/* test_conn_sim.c — the HTTP connection machine driven through the
 * simulated ring: every split point, seeded random schedules with faults,
 * and the invariants that must hold whatever happens: responses complete and
 * in request order, every provided buffer returned, the socket closed exactly
 * once and never touched after. A failing seed prints itself; replay it with
 * IOX_SEED=<n> build/tests conn_sim. */
#include "iox_test.h"
#include "sim_world.h"
#include "http_conn_machine.h"
#include "http_oracle.h"
#include <ioxide/http_conn.h>
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD 7

/* ---- the application under test ---- */

static struct iox_conn_ref pending_async[64];
static unsigned npending_async;
static char big_body[10000];

static int app_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    if (req->path_len == 1 && req->path[0] == '/') {
        iox_resp_simple(c, 200, "text/plain", "ok", 2);
    } else if (req->path_len == 6 && !memcmp(req->path, "/async", 6)) {
        pending_async[npending_async++] = iox_conn_ref(c);
        return IOX_ASYNC;
    } else if (req->path_len == 5 && !memcmp(req->path, "/sync", 5)) {
        /* The async API used synchronously: the reply is raised inside the
         * machine's own chain (a re-entrant event). */
        iox_resp_simple(c, 200, "text/plain", "sync", 4);
        iox_conn_async_done(c);
        return IOX_ASYNC;
    } else if (req->path_len == 11 && !memcmp(req->path, "/status/", 8)) {
        /* /status/NNN: that status with a 4-byte body, for the writers. */
        int st = (req->path[8] - '0') * 100 + (req->path[9] - '0') * 10 + (req->path[10] - '0');
        iox_resp_simple(c, st, "text/plain", "body", 4);
    } else if (req->path_len == 4 && !memcmp(req->path, "/big", 4)) {
        iox_resp_simple(c, 200, "text/plain", big_body, sizeof big_body);
    } else {
        iox_resp_simple(c, 404, "text/plain", "nf", 2);
    }
    return IOX_HANDLED;
}

static const struct iox_http_app app = {app_request};

/* Completion order of the async replies: 0 in order, else a seeded
 * shuffle (answers must still leave in request order). */
static uint64_t order_seed;

static void finish_asyncs(void)
{
    unsigned n = npending_async;
    struct iox_conn_ref refs[64];
    memcpy(refs, pending_async, n * sizeof refs[0]);
    npending_async = 0;
    for (unsigned i = n; order_seed && i > 1; i--) {
        order_seed ^= order_seed << 13; order_seed ^= order_seed >> 7; order_seed ^= order_seed << 17;
        unsigned j = (unsigned)(order_seed % i);
        struct iox_conn_ref t = refs[i - 1]; refs[i - 1] = refs[j]; refs[j] = t;
    }
    for (unsigned i = 0; i < n; i++) {
        struct iox_conn *c = iox_conn_deref(refs[i]);
        if (!c) continue;
        iox_resp_simple(c, 200, "text/plain", "async", 5);
        iox_conn_async_done(c);
    }
}

/* ---- harness ---- */

struct h {
    struct sim_world w;        /* tests/sim_world.h: simulator, reactor, clock */
    struct iox_http_config hcfg;
    struct iox_http_server *hs;
    struct iox_conn *c;
};

static void h_init(struct h *h, unsigned nbufs, unsigned bufsize, uint32_t write_cap)
{
    memset(h, 0, sizeof *h);
    memset(big_body, 'b', sizeof big_body);
    npending_async = 0;
    order_seed = 0;
    h->hcfg.idle_timeout_ms = 1000;
    h->hcfg.linger_ms = 100;
    h->hcfg.max_conns = 4;
    h->hcfg.write_cap = write_cap;
    h->hcfg.app = &app;
    CU_ASSERT_FATAL(sw_open(&h->w, nbufs, bufsize, 500) == 0);
    CU_ASSERT_FATAL(h->w.r.seam == iox_sim_seam(h->w.sim));   /* the reactor runs on the simulator */
    CU_ASSERT_FATAL(sw_http_open(&h->w, &h->hcfg, &h->hs) == 0);   /* Date fixed */
    h->c = iox_http_adopt(h->hs, FD);
    CU_ASSERT_FATAL(h->c != NULL);
}

static void h_fini(struct h *h)
{
    iox_http_server_close(h->hs);
    sw_close(&h->w);
}

/* One loop turn: what the reactor does before io_uring_enter, plus the
 * completions that need no decision (cancel, close, shutdown). */
static void turn(struct h *h) { sw_turn(&h->w); }

static int conn_open(struct h *h) { return h->hs->nconns > 0; }

/* Deliver bytes, re-delivering what an -ENOBUFS left in the "socket". */
static int deliver(struct h *h, const char *p, size_t n, size_t chunk) { return sw_deliver_chunked(&h->w, FD, p, n, chunk); }

/* Complete sends (fully) until none is left. */
static void drain_sends(struct h *h) { sw_send_all(&h->w, FD, 1000000); }

/* The peer closes: EOF on the recv if one is armed, and lingering ends. */
static void peer_close(struct h *h) { sw_http_peer_close(&h->w, h->hs, FD, 10000); }

static void check_books(struct h *h, const char *where)
{
    CU_ASSERT_EQUAL(iox_sim_closes(h->w.sim, FD), 1);
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(h->w.sim), 0);
    CU_ASSERT_EQUAL(iox_sim_live_ops(h->w.sim, FD), 0);
    CU_ASSERT_EQUAL(iox_sim_violations(h->w.sim), 0);
    CU_ASSERT_EQUAL(h->hs->nconns, 0);
    if (iox_sim_closes(h->w.sim, FD) != 1 || iox_sim_bufs_lent(h->w.sim) || iox_sim_violations(h->w.sim) ||
        iox_sim_live_ops(h->w.sim, FD) || h->hs->nconns)
        fprintf(stderr, "\n  %s: closes=%u lent=%u live=%u conns=%u violation=%s\n", where,
                iox_sim_closes(h->w.sim, FD), iox_sim_bufs_lent(h->w.sim), iox_sim_live_ops(h->w.sim, FD),
                h->hs->nconns, iox_sim_last_violation(h->w.sim));
}

static const char STREAM[] =
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n"
    "GET /async HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET /big HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET /async?2 HTTP/1.1\r\nHost: a\r\n\r\n"
    "HEAD /async HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET /nf HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET /async HTTP/1.0\r\n\r\n";

/* What app_request answers, told to the independent response model
 * (tests/http_oracle.c): the simulations judge the server by it, not only
 * against the server's own reference run. */
static int app_expect(const struct oracle_req *rq, struct oracle_expect *ex, void *arg)
{
    (void)arg;
    size_t pl = strcspn(rq->target, "?");
    const char *t = rq->target;
    if (pl == 1 && t[0] == '/') *ex = (struct oracle_expect){200, "ok", 2, 0};
    else if (pl == 6 && !memcmp(t, "/async", 6)) *ex = (struct oracle_expect){200, "async", 5, 0};
    else if (pl == 5 && !memcmp(t, "/sync", 5)) *ex = (struct oracle_expect){200, "sync", 4, 0};
    else if (pl == 4 && !memcmp(t, "/big", 4)) *ex = (struct oracle_expect){200, big_body, sizeof big_body, 0};
    else if (pl == 11 && !memcmp(t, "/status/", 8))
        *ex = (struct oracle_expect){(t[8] - '0') * 100 + (t[9] - '0') * 10 + (t[10] - '0'), "body", 4, 0};
    else *ex = (struct oracle_expect){404, "nf", 2, 0};
    return 0;
}

/* The oracle's verdict on one exchange: 0, or -1 with the reason printed. */
static int oracle_ok(const char *in, size_t in_len, const char *out, size_t on, unsigned flags, const char *where)
{
    char why[320];
    if (http_oracle_check(in, in_len, out, on, app_expect, NULL, flags, why, sizeof why) >= 0) return 0;
    fprintf(stderr, "\n  %s: the response model refuses the output: %s\n", where, why);
    return -1;
}

/* Reference output: the stream in one piece, everything completing at once. */
static char *reference(size_t *len)
{
    struct h h;
    h_init(&h, 64, 4096, 1 << 20);
    turn(&h);
    deliver(&h, STREAM, sizeof STREAM - 1, 0);
    finish_asyncs();
    turn(&h);
    peer_close(&h);
    check_books(&h, "reference");
    size_t n;
    const char *out = iox_sim_peer_bytes(h.w.sim, FD, &n);
    /* Every run is compared with this one: it must itself be right. */
    CU_ASSERT_EQUAL(oracle_ok(STREAM, sizeof STREAM - 1, out, n, 0, "reference run"), 0);
    char *copy = malloc(n + 1);
    memcpy(copy, out, n);
    copy[n] = 0;
    *len = n;
    h_fini(&h);
    return copy;
}

static unsigned count(const char *hay, size_t n, const char *needle)
{
    unsigned k = 0;
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(hay + i, needle, m)) k++;
    return k;
}

IOX_TEST(conn_sim, reference_run_answers_everything_in_order)
{
    size_t n;
    char *ref = reference(&n);
    CU_ASSERT_EQUAL(count(ref, n, "HTTP/1.1 "), 9);
    const char *a = strstr(ref, "HTTP/1.1 200"), *b = strstr(ref, "HTTP/1.1 404"), *c = strstr(ref, "async");
    CU_ASSERT(a && b && c && a < b && b < c);
    CU_ASSERT(strstr(ref, "Connection: close") != NULL);
    free(ref);
}

IOX_TEST(conn_sim, every_split_point_gives_the_same_bytes)
{
    size_t rn;
    char *ref = reference(&rn);
    const size_t n = sizeof STREAM - 1;
    for (size_t k = 1; k < n; k++) {
        struct h h;
        h_init(&h, 64, 128, 1 << 20);
        turn(&h);
        deliver(&h, STREAM, k, 0);
        drain_sends(&h);
        finish_asyncs();
        turn(&h);
        deliver(&h, STREAM + k, n - k, 0);
        finish_asyncs();
        turn(&h);
        peer_close(&h);
        size_t on;
        const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
        CU_ASSERT(on == rn && !memcmp(out, ref, rn));
        if (on != rn || memcmp(out, ref, rn)) fprintf(stderr, "\n  split at %zu differs\n", k);
        check_books(&h, "split");
        h_fini(&h);
    }
    free(ref);
}

IOX_TEST(conn_sim, byte_by_byte_with_one_byte_sends)
{
    size_t rn;
    char *ref = reference(&rn);
    struct h h;
    h_init(&h, 8, 64, 1 << 20);
    turn(&h);
    for (size_t i = 0; i < sizeof STREAM - 1; i++) {
        deliver(&h, STREAM + i, 1, 1);
        while (iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD)) { iox_sim_send(h.w.sim, FD, 1); turn(&h); }
        finish_asyncs();
        turn(&h);
    }
    peer_close(&h);
    size_t on;
    const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
    CU_ASSERT(on == rn && !memcmp(out, ref, rn));
    check_books(&h, "byte-by-byte");
    h_fini(&h);
    free(ref);
}

/* xorshift: deterministic, seedable. */
static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

enum ending { END_EOF, END_RESET, END_TIMEOUT, END_SHUTDOWN, END_SEND_ERROR };

/* One seeded schedule. Returns 0 when every invariant held. */
static int run_seed(uint64_t seed, const char *ref, size_t rn)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    struct h h;
    /* Tiny rings make ENOBUFS frequent; tiny write caps make backpressure. */
    unsigned nbufs = 1u << (rnd(&s) % 4);           /* 1..8 */
    unsigned bsz = 16u << (rnd(&s) % 4);            /* 16..128 */
    uint32_t cap = (rnd(&s) % 2) ? 1024 : (1u << 20);
    h_init(&h, nbufs, bsz, cap);
    order_seed = rnd(&s) | 1;   /* async replies complete in a random order */
    turn(&h);
    const size_t n = sizeof STREAM - 1;
    enum ending end = (enum ending)(rnd(&s) % 5);
    size_t cut = end == END_EOF ? n : (size_t)(rnd(&s) % (n + 1));
    size_t off = 0;
    int failed = 0;
    for (int steps = 0; conn_open(&h) && steps < 200000; steps++) {
        unsigned what = (unsigned)(rnd(&s) % 8);
        if (what < 3 && off < cut) {
            size_t k = 1 + rnd(&s) % 40;
            if (k > cut - off) k = cut - off;
            long got = iox_sim_recv(h.w.sim, FD, STREAM + off, k, 1 + rnd(&s) % bsz);
            if (got > 0) off += (size_t)got;
        } else if (what < 5) {
            if (iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD)) iox_sim_send(h.w.sim, FD, (int)(1 + rnd(&s) % 300));
        } else if (what == 5) {
            finish_asyncs();
        } else {
            turn(&h);
        }
        if (off >= cut && !iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD) && !npending_async) break;
    }
    turn(&h);
    if (getenv("IOX_SIM_TRACE"))
        fprintf(stderr, "pre-end: state %s nasync %u open %u in %u w %u/%u/%u side %u peer_shut %u recv %u send %u pend %u off %zu/%zu\n",
                http_conn_state_names[h.c->state], h.c->nasync, (uint16_t)(h.c->rq_tail - h.c->rq_head),
                h.c->sk.in_len, h.c->sk.wsent, h.c->sk.wcommit, h.c->sk.wlen, h.c->side_len, h.c->sk.peer_shut, h.c->sk.recv_armed,
                iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD), npending_async, off, cut);
    switch (end) {
    case END_EOF:
        /* Requests held back by backpressure are dispatched as the sends
         * drain: answer them too (in random order) before the EOF. */
        for (int k = 0; k < 64 && (npending_async || iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD)); k++) {
            drain_sends(&h);
            finish_asyncs();
            turn(&h);
        }
        peer_close(&h);
        break;
    case END_RESET:
        if (iox_sim_recv_end(h.w.sim, FD, -ECONNRESET) < 0) peer_close(&h);
        turn(&h);
        drain_sends(&h);
        break;
    case END_TIMEOUT:
        h.w.now += 5000;
        iox_reactor_advance_clock(&h.w.r, h.w.now);
        turn(&h);
        drain_sends(&h);
        break;
    case END_SHUTDOWN:
        iox_reactor_begin_stop(&h.w.r);
        turn(&h);
        finish_asyncs();
        turn(&h);
        drain_sends(&h);
        peer_close(&h);
        break;
    case END_SEND_ERROR:
        finish_asyncs();
        turn(&h);
        if (iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD)) iox_sim_send(h.w.sim, FD, -EPIPE);
        turn(&h);
        peer_close(&h);
        break;
    }
    if (conn_open(&h)) {   /* whatever is left: the idle timer ends it */
        finish_asyncs();
        h.w.now += 60000;
        iox_reactor_advance_clock(&h.w.r, h.w.now);
        turn(&h);
        drain_sends(&h);
    }
    size_t on;
    const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
    /* Responses in order and never corrupted: the output is a prefix of the
     * reference; a clean run produces all of it. */
    if (on > rn || memcmp(out, ref, on)) failed = 1;
    if (end == END_EOF && on != rn) failed = 1;
    if (oracle_ok(STREAM, cut, out, on, end == END_EOF ? 0 : ORACLE_PARTIAL, "seeded run")) failed = 1;
    if (iox_sim_closes(h.w.sim, FD) != 1 || iox_sim_bufs_lent(h.w.sim) || iox_sim_violations(h.w.sim) ||
        iox_sim_live_ops(h.w.sim, FD) || h.hs->nconns)
        failed = 1;
    if (failed)
        fprintf(stderr, "\n  seed %llu failed (end %d, bufs %u×%u, cap %u): out %zu/%zu bytes, closes %u, lent %u, live %u, conns %u, %s\n"
                "  replay: IOX_SEED=%llu build/tests conn_sim\n",
                (unsigned long long)seed, end, nbufs, bsz, cap, on, rn, iox_sim_closes(h.w.sim, FD),
                iox_sim_bufs_lent(h.w.sim), iox_sim_live_ops(h.w.sim, FD), h.hs->nconns,
                iox_sim_last_violation(h.w.sim), (unsigned long long)seed);
    h_fini(&h);
    return failed;
}

struct seed_ref { const char *ref; size_t rn; };

static int run_seed_arg(uint64_t seed, void *arg)
{
    const struct seed_ref *sr = arg;
    return run_seed(seed, sr->ref, sr->rn);
}

IOX_TEST(conn_sim, seeded_schedules_with_faults)
{
    size_t rn;
    char *ref = reference(&rn);
    struct seed_ref sr = {ref, rn};
    unsigned failures = iox_test_run_seeds(run_seed_arg, &sr, 10000);
    CU_ASSERT_EQUAL(failures, 0);
    free(ref);
}

/* The same schedules on incremental provided buffers: a buffer holds the
 * pieces of several receives (slices), returned one by one; the books
 * (every slice back once, nothing lent at the end) and the bytes answered
 * must be those of the plain ring. */
IOX_TEST(conn_sim, seeded_schedules_on_incremental_buffers)
{
    size_t rn;
    char *ref = reference(&rn);
    struct seed_ref sr = {ref, rn};
    sw_inc_bufs = 1;
    unsigned failures = iox_test_run_seeds(run_seed_arg, &sr, 3000);
    sw_inc_bufs = 0;
    CU_ASSERT_EQUAL(failures, 0);
    free(ref);
}

/* A body that ends exactly where the input ends is answered at once, with
 * no later byte to trigger it (found by a POST hanging in the playground). */
IOX_TEST(conn_sim, body_ending_with_the_input_is_answered_at_once)
{
    const char *reqs[] = {
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        NULL,   /* filled below: Content-Length 300 across several buffers */
    };
    char long_req[400];
    int k = snprintf(long_req, sizeof long_req, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 300\r\n\r\n");
    memset(long_req + k, 'x', 300);
    long_req[k + 300] = 0;
    reqs[2] = long_req;
    for (unsigned i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        for (size_t chunk = 1; chunk <= 64; chunk *= 4) {
            struct h h;
            h_init(&h, 8, 64, 1 << 20);
            turn(&h);
            deliver(&h, reqs[i], strlen(reqs[i]), chunk);
            drain_sends(&h);
            size_t on;
            const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
            CU_ASSERT_EQUAL(count(out, on, "HTTP/1.1 200"), 1);
            if (count(out, on, "HTTP/1.1 200") != 1) fprintf(stderr, "\n  request %u chunk %zu: no answer\n", i, chunk);
            peer_close(&h);
            check_books(&h, "body end");
            h_fini(&h);
        }
    }
}

IOX_TEST(conn_sim, eof_mid_request_closes_once_without_answer)
{
    struct h h;
    h_init(&h, 8, 64, 1 << 20);
    turn(&h);
    deliver(&h, "GET / HTTP/1.1\r\nHo", 18, 0);
    CU_ASSERT_EQUAL(iox_sim_recv_end(h.w.sim, FD, 0), 0);
    turn(&h);
    size_t on;
    iox_sim_peer_bytes(h.w.sim, FD, &on);
    CU_ASSERT_EQUAL(on, 0);
    check_books(&h, "eof mid-request");
    h_fini(&h);
}

IOX_TEST(conn_sim, reset_closes_once)
{
    struct h h;
    h_init(&h, 8, 64, 1 << 20);
    turn(&h);
    deliver(&h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, 0);
    CU_ASSERT(iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD));
    CU_ASSERT_EQUAL(iox_sim_recv_end(h.w.sim, FD, -ECONNRESET), 0);
    turn(&h);
    check_books(&h, "reset");
    h_fini(&h);
}

IOX_TEST(conn_sim, idle_timeout_closes_a_stuck_request)
{
    struct h h;
    h_init(&h, 8, 64, 1 << 20);
    turn(&h);
    deliver(&h, "GET / HT", 8, 0);
    h.w.now += 500;
    iox_reactor_advance_clock(&h.w.r, h.w.now);
    turn(&h);
    CU_ASSERT(conn_open(&h));                 /* not yet */
    deliver(&h, "T", 1, 0);                   /* a trickle does not renew it */
    h.w.now += 600;
    iox_reactor_advance_clock(&h.w.r, h.w.now);
    turn(&h);
    CU_ASSERT(!conn_open(&h));
    check_books(&h, "timeout");
    h_fini(&h);
}

static void advance(struct h *h, uint64_t ms)
{
    h->w.now += ms;
    iox_reactor_advance_clock(&h->w.r, h->w.now);
    turn(h);
}

/* The soak's file-mode failure (issue 10): a request that arrives late in
 * an idle period, whose answer the server takes longer than the rest of
 * that period to produce, must still be answered: the deadline used to run
 * from the last send, so the connection was closed with nothing sent. */
IOX_TEST(conn_sim, slow_answer_to_a_late_request_is_not_timed_out)
{
    struct h h;
    h_init(&h, 8, 64, 1 << 20);
    turn(&h);
    deliver(&h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, 0);
    drain_sends(&h);
    advance(&h, 900);                           /* idle, almost timed out */
    CU_ASSERT_FATAL(conn_open(&h));
    deliver(&h, "GET /async HTTP/1.1\r\nHost: a\r\n\r\n", 32, 0);
    for (int i = 0; i < 5; i++) advance(&h, 1000);   /* the server takes 5 s */
    CU_ASSERT_FATAL(conn_open(&h));
    finish_asyncs();
    turn(&h);
    drain_sends(&h);
    size_t on;
    const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
    CU_ASSERT_EQUAL(count(out, on, "HTTP/1.1 200"), 2);
    CU_ASSERT_EQUAL(count(out, on, "async"), 1);
    /* Owed nothing now: idle again, and the idle deadline holds. */
    advance(&h, 600);
    CU_ASSERT(conn_open(&h));
    advance(&h, 600);
    CU_ASSERT(!conn_open(&h));
    check_books(&h, "slow answer");
    h_fini(&h);
}

/* A client that does not take its answers is idle: the deadline runs from
 * the last send that made progress. */
IOX_TEST(conn_sim, client_not_reading_times_out_from_last_progress)
{
    struct h h;
    h_init(&h, 8, 64, 1 << 20);
    turn(&h);
    deliver(&h, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", 30, 0);
    CU_ASSERT_FATAL(iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD));
    for (int i = 0; i < 4; i++) {              /* 100 bytes every 600 ms */
        advance(&h, 600);
        CU_ASSERT_FATAL(conn_open(&h));
        CU_ASSERT_EQUAL(iox_sim_send(h.w.sim, FD, 100), 0);
        turn(&h);
    }
    advance(&h, 600);
    CU_ASSERT(conn_open(&h));
    advance(&h, 600);                          /* 1.2 s without progress */
    CU_ASSERT(!conn_open(&h));
    check_books(&h, "not reading");
    h_fini(&h);
}

/* Our last send ends when the kernel takes the bytes: a client still
 * taking a large answer out of the socket buffer is not idle while the
 * queue shrinks; one whose queue stays put is. */
IOX_TEST(conn_sim, client_draining_the_socket_buffer_is_not_idle)
{
    struct h h;
    h_init(&h, 8, 64, 1 << 20);
    turn(&h);
    deliver(&h, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", 30, 0);
    drain_sends(&h);                           /* all of it is in the kernel */
    uint32_t q = 9000;
    iox_sim_set_unsent(h.w.sim, FD, q);
    for (int i = 0; i < 4; i++) {              /* the client reads slowly */
        advance(&h, 1100);
        CU_ASSERT_FATAL(conn_open(&h));
        q -= 2000;
        iox_sim_set_unsent(h.w.sim, FD, q);
    }
    advance(&h, 1100);                         /* it moved since: renewed */
    CU_ASSERT_FATAL(conn_open(&h));
    advance(&h, 1100);                         /* stuck at 1000 bytes */
    CU_ASSERT(!conn_open(&h));
    check_books(&h, "draining");
    h_fini(&h);
}

/* Replies raised inside the chain, more of them than the old 6-entry queue
 * held: none is lost, the answers leave in order, the connection goes on. */
IOX_TEST(conn_sim, many_reentrant_replies_in_one_chain)
{
    struct h h;
    h_init(&h, 64, 4096, 1 << 20);
    turn(&h);
    char req[40 * 40];
    size_t n = 0;
    for (int i = 0; i < 40; i++) n += (size_t)sprintf(req + n, "GET /sync HTTP/1.1\r\nHost: a\r\n\r\n");
    n += (size_t)sprintf(req + n, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    deliver(&h, req, n, 0);
    drain_sends(&h);
    size_t on;
    const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
    CU_ASSERT_EQUAL(count(out, on, "HTTP/1.1 200"), 41);
    CU_ASSERT_EQUAL(count(out, on, "sync"), 40);
    CU_ASSERT(on > 2 && !memcmp(out + on - 2, "ok", 2));   /* the last one last */
    CU_ASSERT(conn_open(&h) && h.c->state == HTTP_CONN_S_READING);
    peer_close(&h);
    check_books(&h, "reentrant");
    h_fini(&h);
}

/* A body that keeps coming is not stuck; one that stops is. */
IOX_TEST(conn_sim, request_body_deadline_renews_with_progress)
{
    struct h h;
    h_init(&h, 8, 64, 1 << 20);
    turn(&h);
    deliver(&h, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n", 48, 0);
    for (int i = 0; i < 3; i++) {
        advance(&h, 700);
        CU_ASSERT_FATAL(conn_open(&h));
        deliver(&h, "x", 1, 0);
    }
    advance(&h, 700);
    CU_ASSERT_FATAL(conn_open(&h));
    advance(&h, 400);                          /* 1.1 s since the last byte */
    CU_ASSERT(!conn_open(&h));
    size_t on;
    iox_sim_peer_bytes(h.w.sim, FD, &on);
    CU_ASSERT_EQUAL(on, 0);
    check_books(&h, "stuck body");
    h_fini(&h);
}

IOX_TEST(conn_sim, enobufs_parks_and_loses_nothing)
{
    struct h h;
    h_init(&h, 2, 16, 1 << 20);
    turn(&h);
    const char *req = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t n = strlen(req);
    /* No turn between chunks: the 2-buffer ring runs dry at the third. */
    long got = iox_sim_recv(h.w.sim, FD, req, n, 16);
    CU_ASSERT(got == 32);
    CU_ASSERT(!iox_sim_has_op(h.w.sim, IOX_OP_RECV, FD));
    CU_ASSERT_EQUAL(h.hs->n_enobufs, 1);
    turn(&h);                                  /* buffers published, recv re-armed */
    CU_ASSERT(iox_sim_has_op(h.w.sim, IOX_OP_RECV, FD));
    deliver(&h, req + got, n - (size_t)got, 16);
    drain_sends(&h);
    size_t on;
    const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
    CU_ASSERT_EQUAL(count(out, on, "HTTP/1.1 200"), 1);
    CU_ASSERT_EQUAL(count(out, on, "HTTP/1.1 404"), 1);
    CU_ASSERT(conn_open(&h));
    peer_close(&h);
    check_books(&h, "enobufs");
    h_fini(&h);
}

IOX_TEST(conn_sim, backpressure_stops_reading_and_resumes)
{
    struct h h;
    h_init(&h, 64, 4096, 2048);
    turn(&h);
    char req[64 * 40];
    size_t n = 0;
    for (int i = 0; i < 64; i++) n += (size_t)sprintf(req + n, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
    iox_sim_recv(h.w.sim, FD, req, n, 0);
    turn(&h);
    /* Over the write cap after the first response: reading stopped. */
    CU_ASSERT(!iox_sim_has_op(h.w.sim, IOX_OP_RECV, FD));
    drain_sends(&h);
    CU_ASSERT(iox_sim_has_op(h.w.sim, IOX_OP_RECV, FD));
    size_t on;
    const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
    CU_ASSERT_EQUAL(count(out, on, "HTTP/1.1 200"), 64);
    peer_close(&h);
    check_books(&h, "backpressure");
    h_fini(&h);
}

IOX_TEST(conn_sim, malformed_request_gets_400_then_close)
{
    struct h h;
    h_init(&h, 8, 64, 1 << 20);
    turn(&h);
    deliver(&h, "GET / HTTP/1.1\r\nHost: a\r\n\r\nBAD\r\n\r\nGET / HTTP/1.1\r\n\r\n", 49, 0);
    drain_sends(&h);
    size_t on;
    const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
    CU_ASSERT_EQUAL(count(out, on, "HTTP/1.1 200"), 1);
    CU_ASSERT_EQUAL(count(out, on, "HTTP/1.1 400"), 1);
    CU_ASSERT_EQUAL(count(out, on, "HTTP/1.1 "), 2);
    CU_ASSERT(h.c->state == HTTP_CONN_S_LINGERING);
    peer_close(&h);
    check_books(&h, "malformed");
    h_fini(&h);
}

IOX_TEST(conn_sim, shutdown_closes_idle_and_finishes_busy)
{
    struct h h;
    h_init(&h, 8, 64, 1 << 20);
    turn(&h);
    deliver(&h, "GET /async HTTP/1.1\r\nHost: a\r\n\r\n", 32, 0);
    iox_reactor_begin_stop(&h.w.r);
    turn(&h);
    CU_ASSERT(conn_open(&h));                 /* busy: its answer is owed */
    finish_asyncs();
    turn(&h);
    drain_sends(&h);
    size_t on;
    const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
    CU_ASSERT_EQUAL(count(out, on, "Connection: close"), 1);
    /* Lingers (half-closed) so the answer is not lost to a RST, until the
     * peer closes or the grace ends. */
    CU_ASSERT(h.c->state == HTTP_CONN_S_LINGERING);
    peer_close(&h);
    CU_ASSERT(!conn_open(&h));
    check_books(&h, "shutdown");
    h_fini(&h);
}

IOX_TEST(conn_sim, late_completion_for_reused_slot_is_dropped)
{
    struct h h;
    h_init(&h, 8, 64, 1 << 20);
    turn(&h);
    uint64_t old_ud = iox_ud(IOX_OP_SEND, (unsigned)h.hs->owner, h.c->sk.gen, h.c->sk.idx);
    CU_ASSERT_EQUAL(iox_sim_recv_end(h.w.sim, FD, -ECONNRESET), 0);
    turn(&h);
    struct iox_conn *c2 = iox_http_adopt(h.hs, FD + 1);
    CU_ASSERT_PTR_EQUAL(c2, h.c);              /* same slot, new generation */
    struct iox_cqe late = {old_ud, 100, 0};
    uint64_t stale = h.w.r.n_stale_cqes;
    iox_reactor_dispatch(&h.w.r, &late);
    CU_ASSERT_EQUAL(h.w.r.n_stale_cqes, stale + 1);
    CU_ASSERT_EQUAL(c2->sk.wsent, 0);
    h_fini(&h);
}

/* Answers of one connection's pipelined async requests, completed in any
 * order, leave in request order; a sync answer between them waits its turn;
 * a malformed request behind them gets its 400 after their answers. */
static void check_in_order(const char *out, size_t on, unsigned nasync, int with_404, int with_400)
{
    const char *p = out, *end = out + on;
    unsigned k = 0;
    while (p < end) {
        const char *q = memmem(p, (size_t)(end - p), "HTTP/1.1 ", 9);
        if (!q) break;
        char want[16];
        snprintf(want, sizeof want, "n=%u", k);
        if (with_404 && k == nasync / 2) {
            CU_ASSERT(!strncmp(q, "HTTP/1.1 404", 12));
            with_404 = 0;
            p = q + 9;
            continue;
        }
        if (k == nasync) {
            CU_ASSERT(with_400 && !strncmp(q, "HTTP/1.1 400", 12));
            k++;
            p = q + 9;
            continue;
        }
        const char *b = memmem(q, (size_t)(end - q), "\r\n\r\n", 4);
        CU_ASSERT_FATAL(b != NULL);
        CU_ASSERT(!strncmp(q, "HTTP/1.1 200", 12));
        CU_ASSERT(!strncmp(b + 4, want, strlen(want)));
        k++;
        p = b + 4;
    }
    CU_ASSERT_EQUAL(k, nasync + (with_400 ? 1 : 0));
}

IOX_TEST(conn_sim, pipelined_asyncs_answered_in_reverse_leave_in_order)
{
    for (int variant = 0; variant < 3; variant++) {
        struct h h;
        h_init(&h, 64, 4096, 1 << 20);
        turn(&h);
        char req[64 * 48];
        size_t n = 0;
        for (unsigned i = 0; i < 16; i++) {
            if (variant == 1 && i == 8) n += (size_t)sprintf(req + n, "GET /nf HTTP/1.1\r\nHost: a\r\n\r\n");
            n += (size_t)sprintf(req + n, "GET /async HTTP/1.1\r\nHost: a\r\n\r\n");
        }
        if (variant == 2) n += (size_t)sprintf(req + n, "BAD\r\n\r\n");
        deliver(&h, req, n, 0);
        turn(&h);
        /* Every request dispatched before any reply; nothing sent yet
         * (the 404 waits behind the first eight). */
        CU_ASSERT_EQUAL(npending_async, 16);
        size_t on;
        iox_sim_peer_bytes(h.w.sim, FD, &on);
        CU_ASSERT_EQUAL(on, 0);
        CU_ASSERT(!iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD));
        for (unsigned i = 16; i-- > 0;) {
            struct iox_conn *c = iox_conn_deref(pending_async[i]);
            CU_ASSERT_FATAL(c != NULL);
            char body[16];
            int bl = snprintf(body, sizeof body, "n=%u", i);
            iox_resp_simple(c, 200, "text/plain", body, (size_t)bl);
            iox_conn_async_done(c);
            CU_ASSERT_PTR_NULL(iox_conn_deref(pending_async[i]));   /* answered: gone */
            turn(&h);
            if (i) CU_ASSERT(!iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD));
        }
        npending_async = 0;
        drain_sends(&h);
        const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
        check_in_order(out, on, 16, variant == 1, variant == 2);
        if (variant == 2) {
            CU_ASSERT(h.c->state == HTTP_CONN_S_LINGERING);
        } else {
            CU_ASSERT(conn_open(&h) && h.c->state == HTTP_CONN_S_READING);
        }
        peer_close(&h);
        check_books(&h, "reverse asyncs");
        h_fini(&h);
    }
}

/* The limit: the 17th async request waits (parsing pauses) until one of
 * the 16 outstanding ones is answered — any one. */
IOX_TEST(conn_sim, async_limit_pauses_parsing)
{
    struct h h;
    h_init(&h, 64, 4096, 1 << 20);
    turn(&h);
    char req[20 * 40];
    size_t n = 0;
    for (unsigned i = 0; i < 20; i++) n += (size_t)sprintf(req + n, "GET /async HTTP/1.1\r\nHost: a\r\n\r\n");
    deliver(&h, req, n, 0);
    turn(&h);
    CU_ASSERT_EQUAL(npending_async, 16);
    CU_ASSERT(h.c->state == HTTP_CONN_S_WAITING);
    struct iox_conn *c = iox_conn_deref(pending_async[5]);
    CU_ASSERT_FATAL(c != NULL);
    iox_resp_simple(c, 200, "text/plain", "x", 1);
    iox_conn_async_done(c);
    turn(&h);
    CU_ASSERT_EQUAL(npending_async, 17);
    pending_async[5] = pending_async[--npending_async];
    order_seed = 12345;
    while (npending_async) { finish_asyncs(); turn(&h); }
    drain_sends(&h);
    size_t on;
    const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
    CU_ASSERT_EQUAL(count(out, on, "HTTP/1.1 200"), 20);
    peer_close(&h);
    check_books(&h, "async limit");
    h_fini(&h);
}

/* What iox_resp_simple writes for a status (RFC 9110 §15, §9.3.2): the
 * status line with its reason phrase (none for a code without one); no
 * Content-Length and no content for 1xx, 204 and 304; for HEAD the
 * Content-Length of the GET, without the content. Byte for byte: an answer
 * with content it must not carry would shift every answer behind it. */
IOX_TEST(conn_sim, status_lines_and_bodiless_answers)
{
    static const struct { const char *req, *want; } x[] = {
        {"GET /status/204", "HTTP/1.1 204 No Content\r\n%s\r\n"},
        {"GET /status/304", "HTTP/1.1 304 Not Modified\r\n%s\r\n"},
        {"GET /status/101", "HTTP/1.1 101 Switching Protocols\r\n%s\r\n"},
        {"HEAD /status/200", "HTTP/1.1 200 OK\r\n%sContent-Length: 4\r\n\r\n"},
        {"HEAD /status/404", "HTTP/1.1 404 Not Found\r\n%sContent-Length: 4\r\n\r\n"},
        {"GET /status/201", "HTTP/1.1 201 Created\r\n%sContent-Length: 4\r\n\r\nbody"},
        {"GET /status/417", "HTTP/1.1 417 Expectation Failed\r\n%sContent-Length: 4\r\n\r\nbody"},
        {"GET /status/501", "HTTP/1.1 501 Not Implemented\r\n%sContent-Length: 4\r\n\r\nbody"},
        {"GET /status/299", "HTTP/1.1 299 \r\n%sContent-Length: 4\r\n\r\nbody"},
        {"GET /status/200", "HTTP/1.1 200 OK\r\n%sContent-Length: 4\r\n\r\nbody"},
    };
    static const char fields[] = "Server: ioxide\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
                                 "Content-Type: text/plain\r\n";
    struct h h;
    h_init(&h, 64, 4096, 1 << 20);
    turn(&h);
    char req[2048], want[4096];
    size_t n = 0, wn = 0;
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) {
        n += (size_t)snprintf(req + n, sizeof req - n, "%s HTTP/1.1\r\nHost: a\r\n\r\n", x[i].req);
        wn += (size_t)snprintf(want + wn, sizeof want - wn, x[i].want, fields);
    }
    deliver(&h, req, n, 0);
    drain_sends(&h);
    size_t on;
    const char *out = iox_sim_peer_bytes(h.w.sim, FD, &on);
    CU_ASSERT(on == wn && memcmp(out, want, wn) == 0);
    if (on != wn || memcmp(out, want, wn) != 0)
        fprintf(stderr, "\n  got:\n%.*s\n  want:\n%.*s\n", (int)on, out, (int)wn, want);
    peer_close(&h);
    check_books(&h, "status lines");
    h_fini(&h);
}

/* Every status code RFC 9110 §15 defines has its reason phrase; the codes
 * it marks "(Unused)" and unknown ones have none (not the class's). */
IOX_TEST(conn_sim, reason_phrases_rfc9110)
{
    static const struct { int code; const char *reason; } rfc9110[] = {
        {100, "Continue"}, {101, "Switching Protocols"},
        {200, "OK"}, {201, "Created"}, {202, "Accepted"}, {203, "Non-Authoritative Information"},
        {204, "No Content"}, {205, "Reset Content"}, {206, "Partial Content"},
        {300, "Multiple Choices"}, {301, "Moved Permanently"}, {302, "Found"}, {303, "See Other"},
        {304, "Not Modified"}, {305, "Use Proxy"}, {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"}, {401, "Unauthorized"}, {402, "Payment Required"}, {403, "Forbidden"},
        {404, "Not Found"}, {405, "Method Not Allowed"}, {406, "Not Acceptable"},
        {407, "Proxy Authentication Required"}, {408, "Request Timeout"}, {409, "Conflict"},
        {410, "Gone"}, {411, "Length Required"}, {412, "Precondition Failed"},
        {413, "Content Too Large"}, {414, "URI Too Long"}, {415, "Unsupported Media Type"},
        {416, "Range Not Satisfiable"}, {417, "Expectation Failed"}, {421, "Misdirected Request"},
        {422, "Unprocessable Content"}, {426, "Upgrade Required"},
        {500, "Internal Server Error"}, {501, "Not Implemented"}, {502, "Bad Gateway"},
        {503, "Service Unavailable"}, {504, "Gateway Timeout"}, {505, "HTTP Version Not Supported"},
        /* registered elsewhere, sent by this runtime or its modes */
        {431, "Request Header Fields Too Large"}, {429, "Too Many Requests"},
        /* "(Unused)" in RFC 9110, and codes nobody defined */
        {306, ""}, {418, ""}, {299, ""}, {299, ""}, {499, ""}, {599, ""}, {0, ""}, {1000, ""},
    };
    for (size_t i = 0; i < sizeof rfc9110 / sizeof rfc9110[0]; i++) {
        const char *got = iox_http_reason(rfc9110[i].code);
        CU_ASSERT_STRING_EQUAL(got, rfc9110[i].reason);
        if (strcmp(got, rfc9110[i].reason))
            fprintf(stderr, "\n  %d: \"%s\", want \"%s\"\n", rfc9110[i].code, got, rfc9110[i].reason);
    }
}

IOX_SUITE(conn_sim, NULL, NULL);
