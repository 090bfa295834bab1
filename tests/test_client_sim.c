/* test_client_sim.c — suite `client_sim`: the client kit
 * (ioxide/stream_client.h, spec/machines/stream_client.toml) on the
 * simulated ring: connect, handshake, FIFO replies cut anywhere, one send
 * per turn per connection, every failure path failing each request once
 * (connect refused, connect timeout, handshake refused, an unframeable
 * reply, a reply nobody asked for, the peer's EOF, stop), the backoff, the
 * bounded queue, and the books (buffers back, every socket closed once). */
#include "iox_test.h"
#include "sim_world.h"
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/stream_client.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD0 40

static long reply_len(const char *p, size_t n, void *ctx)
{
    (void)ctx;
    if (n && p[0] == '!') return -1;   /* unframeable */
    const char *nl = memchr(p, '\n', n);
    return nl ? (long)(nl - p + 1) : 0;
}

static unsigned hs_seen;
static long handshake(char *buf, size_t cap, unsigned *nreplies, void *ctx)
{
    (void)ctx;
    if (cap < 6) return -1;
    memcpy(buf, "HELLO\n", 6);
    *nreplies = 1;
    return 6;
}
static int handshake_reply(const char *r, size_t n, unsigned i, void *ctx)
{
    (void)ctx; (void)i;
    hs_seen++;
    return n == 3 && !memcmp(r, "OK\n", 3) ? 0 : -1;
}

static const struct iox_client_proto plain = {.reply_len = reply_len};
static const struct iox_client_proto hello = {.reply_len = reply_len, .handshake = handshake,
                                              .handshake_reply = handshake_reply};

struct res { int status, calls; char reply[32]; };
static void cb(void *arg, int status, const char *reply, size_t len)
{
    struct res *r = arg;
    r->status = status;
    r->calls++;
    snprintf(r->reply, sizeof r->reply, "%.*s", (int)len, reply ? reply : "");
}

struct h {
    struct sim_world w;        /* tests/sim_world.h: simulator, reactor, clock */
    struct iox_client_pool *p;
};

static void h_init(struct h *h, const struct iox_client_proto *proto, unsigned conns, unsigned max_queued)
{
    memset(h, 0, sizeof *h);
    hs_seen = 0;
    CU_ASSERT_FATAL(sw_open(&h->w, 8, 64, 0) == 0);
    CU_ASSERT_FATAL(h->w.r.seam == iox_sim_seam(h->w.sim));   /* the reactor runs on the simulator */
    h->w.r.now_ms = 1000;
    struct iox_client_config cc = {.host = "127.0.0.1", .port = 9, .conns = conns, .max_inflight = 4,
                                   .max_queued = max_queued, .connect_timeout_ms = 500,
                                   .backoff_min_ms = 100, .backoff_max_ms = 400, .down_fail_ms = 10000,
                                   .proto = proto};
    char why[128];
    CU_ASSERT_FATAL(iox_client_pool_open(&h->w.r, &cc, &h->p, why, sizeof why) == 0);
}

static void turn(struct h *h)
{
    iox_sim_publish(h->w.sim);
    iox_reactor_flush(&h->w.r);
    iox_sim_pump(h->w.sim);
}

/* Bring connection k (socket FD0 + k) up: socket, connect, handshake. */
static void bring_up(struct h *h, int fd, int with_hello)
{
    CU_ASSERT_EQUAL(iox_sim_complete_one(h->w.sim, IOX_OP_SOCKET, -1, fd), 0);
    CU_ASSERT_EQUAL(iox_sim_complete_one(h->w.sim, IOX_OP_CONNECT, fd, 0), 0);
    turn(h);
    if (with_hello) {
        size_t n;
        CU_ASSERT_EQUAL(iox_sim_send(h->w.sim, fd, 0), 0);
        const char *b = iox_sim_peer_bytes(h->w.sim, fd, &n);
        CU_ASSERT(n == 6 && !memcmp(b, "HELLO\n", 6));
        iox_sim_peer_clear(h->w.sim, fd);
        CU_ASSERT_EQUAL(iox_sim_recv(h->w.sim, fd, "OK\n", 3, 0), 3);
    }
}

static void h_fini(struct h *h)
{
    iox_client_pool_stop(h->p);
    /* A socket still being made arrives after the stop: it is closed too. */
    if (iox_sim_complete_one(h->w.sim, IOX_OP_SOCKET, -1, 99) == 0) {
        turn(h);
        CU_ASSERT_EQUAL(iox_sim_closes(h->w.sim, 99), 1);
    }
    for (int i = 0; i < 8 && iox_client_pool_ops(h->p); i++) turn(h);
    CU_ASSERT_EQUAL(iox_client_pool_ops(h->p), 0);
    iox_client_pool_close(h->p);
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(h->w.sim), 0);
    CU_ASSERT_EQUAL(iox_sim_violations(h->w.sim), 0);
    if (iox_sim_violations(h->w.sim)) fprintf(stderr, "\n  violation: %s\n", iox_sim_last_violation(h->w.sim));
    sw_close(&h->w);
}

IOX_TEST(client_sim, handshake_then_pipelined_replies_fifo_cut_anywhere)
{
    struct h h;
    h_init(&h, &hello, 1, 8);
    struct res r[6] = {0};
    /* Before the connection is up: queued. */
    CU_ASSERT_EQUAL(iox_client_request(h.p, "a\n", 2, cb, &r[0]), 0);
    bring_up(&h, FD0, 1);
    CU_ASSERT_EQUAL(hs_seen, 1);
    CU_ASSERT_EQUAL(iox_client_pool_up(h.p), 1);
    for (int i = 1; i < 4; i++) {
        char q[4] = {(char)('a' + i), '\n', 0};
        CU_ASSERT_EQUAL(iox_client_request(h.p, q, 2, cb, &r[i]), 0);
    }
    turn(&h);
    /* One send for the four requests of this turn. */
    CU_ASSERT_EQUAL(iox_sim_send(h.w.sim, FD0, 0), 0);
    CU_ASSERT_EQUAL(iox_sim_send(h.w.sim, FD0, 0), -1);
    size_t n;
    const char *b = iox_sim_peer_bytes(h.w.sim, FD0, &n);
    CU_ASSERT(n == 8 && !memcmp(b, "a\nb\nc\nd\n", 8));
    /* max_inflight 4: the fifth waits. */
    CU_ASSERT_EQUAL(iox_client_request(h.p, "e\n", 2, cb, &r[4]), 0);
    /* Replies cut at every place: one byte per buffer. */
    static const char rep[] = "RA\nRB\nRC\nRD\n";
    for (size_t i = 0; i < sizeof rep - 1; i++) {
        turn(&h);
        CU_ASSERT_EQUAL(iox_sim_recv(h.w.sim, FD0, rep + i, 1, 1), 1);
    }
    CU_ASSERT_STRING_EQUAL(r[0].reply, "RA\n");
    CU_ASSERT_STRING_EQUAL(r[3].reply, "RD\n");
    for (int i = 0; i < 4; i++) CU_ASSERT(r[i].calls == 1 && r[i].status == 0);
    turn(&h);
    CU_ASSERT_EQUAL(iox_sim_send(h.w.sim, FD0, 0), 0);   /* the fifth left once room was made */
    CU_ASSERT_EQUAL(iox_sim_recv(h.w.sim, FD0, "RE\n", 3, 0), 3);
    CU_ASSERT_STRING_EQUAL(r[4].reply, "RE\n");
    CU_ASSERT_EQUAL(r[4].calls, 1);
    h_fini(&h);
}

IOX_TEST(client_sim, every_failure_fails_each_request_once_and_reconnects)
{
    struct h h;
    h_init(&h, &plain, 1, 2);
    struct res r[8];
    memset(r, 0, sizeof r);
    /* Connect refused: the queued request keeps waiting, a retry follows the backoff. */
    CU_ASSERT_EQUAL(iox_client_request(h.p, "x\n", 2, cb, &r[0]), 0);
    CU_ASSERT_EQUAL(iox_client_request(h.p, "y\n", 2, cb, &r[1]), 0);
    CU_ASSERT_EQUAL(iox_client_request(h.p, "z\n", 2, cb, &r[2]), -EAGAIN);   /* queue of 2 full */
    CU_ASSERT_EQUAL(iox_sim_complete_one(h.w.sim, IOX_OP_SOCKET, -1, FD0), 0);
    CU_ASSERT_EQUAL(iox_sim_complete_one(h.w.sim, IOX_OP_CONNECT, FD0, -ECONNREFUSED), 0);
    turn(&h);
    CU_ASSERT_EQUAL(iox_sim_closes(h.w.sim, FD0), 1);
    CU_ASSERT(strstr(iox_client_pool_last_error(h.p), "Connection refused") != NULL);
    CU_ASSERT_EQUAL(r[0].calls, 0);
    CU_ASSERT(!iox_sim_has_op(h.w.sim, IOX_OP_SOCKET, -1));   /* backing off */
    iox_reactor_advance_clock(&h.w.r, h.w.r.now_ms + 100);
    CU_ASSERT(iox_sim_has_op(h.w.sim, IOX_OP_SOCKET, -1));
    /* Connect timeout: the attempt is dropped, the socket closed. */
    CU_ASSERT_EQUAL(iox_sim_complete_one(h.w.sim, IOX_OP_SOCKET, -1, FD0 + 1), 0);
    iox_reactor_advance_clock(&h.w.r, h.w.r.now_ms + 600);
    turn(&h);
    CU_ASSERT_EQUAL(iox_sim_closes(h.w.sim, FD0 + 1), 1);
    CU_ASSERT(strstr(iox_client_pool_last_error(h.p), "connect_timeout_ms") != NULL);
    /* Up at last: the waiting two go, in order. */
    iox_reactor_advance_clock(&h.w.r, h.w.r.now_ms + 400);
    bring_up(&h, FD0 + 2, 0);
    turn(&h);
    CU_ASSERT_EQUAL(iox_sim_send(h.w.sim, FD0 + 2, 0), 0);
    CU_ASSERT_EQUAL(iox_sim_recv(h.w.sim, FD0 + 2, "X\n", 2, 0), 2);
    CU_ASSERT_STRING_EQUAL(r[0].reply, "X\n");
    /* A reply nobody asked for after the second one: the connection is
     * dropped, the request in flight has had its reply; a new one fails. */
    CU_ASSERT_EQUAL(iox_sim_recv(h.w.sim, FD0 + 2, "Y\nZ\n", 4, 0), 4);
    CU_ASSERT_STRING_EQUAL(r[1].reply, "Y\n");
    CU_ASSERT_EQUAL(r[1].calls, 1);
    turn(&h);
    CU_ASSERT_EQUAL(iox_sim_closes(h.w.sim, FD0 + 2), 1);
    CU_ASSERT_EQUAL(iox_client_pool_up(h.p), 0);
    /* Up again; an unframeable reply fails what is in flight with -EPROTO. */
    iox_reactor_advance_clock(&h.w.r, h.w.r.now_ms + 1000);
    bring_up(&h, FD0 + 3, 0);
    CU_ASSERT_EQUAL(iox_client_request(h.p, "p\n", 2, cb, &r[3]), 0);
    CU_ASSERT_EQUAL(iox_client_request(h.p, "q\n", 2, cb, &r[4]), 0);
    turn(&h);
    CU_ASSERT_EQUAL(iox_sim_recv(h.w.sim, FD0 + 3, "!bad\n", 5, 0), 5);
    CU_ASSERT_EQUAL(r[3].status, -EPROTO);
    CU_ASSERT_EQUAL(r[4].status, -EPROTO);
    CU_ASSERT(r[3].calls == 1 && r[4].calls == 1);
    iox_sim_complete_all(h.w.sim, IOX_OP_SEND, -ECANCELED);
    turn(&h);
    CU_ASSERT_EQUAL(iox_sim_closes(h.w.sim, FD0 + 3), 1);
    /* Up again; the peer's EOF fails what is in flight with -ECONNRESET. */
    iox_reactor_advance_clock(&h.w.r, h.w.r.now_ms + 1000);
    bring_up(&h, FD0 + 4, 0);
    CU_ASSERT_EQUAL(iox_client_request(h.p, "s\n", 2, cb, &r[5]), 0);
    turn(&h);
    CU_ASSERT_EQUAL(iox_sim_send(h.w.sim, FD0 + 4, 0), 0);
    CU_ASSERT_EQUAL(iox_sim_recv_end(h.w.sim, FD0 + 4, 0), 0);
    CU_ASSERT_EQUAL(r[5].status, -ECONNRESET);
    CU_ASSERT_EQUAL(r[5].calls, 1);
    turn(&h);
    CU_ASSERT_EQUAL(iox_sim_closes(h.w.sim, FD0 + 4), 1);
    /* Stop: what waits fails with -ECANCELED, new requests -ESHUTDOWN. */
    CU_ASSERT_EQUAL(iox_client_request(h.p, "t\n", 2, cb, &r[6]), 0);
    iox_client_pool_stop(h.p);
    CU_ASSERT_EQUAL(r[6].status, -ECANCELED);
    CU_ASSERT_EQUAL(iox_client_request(h.p, "u\n", 2, cb, &r[7]), -ESHUTDOWN);
    CU_ASSERT_EQUAL(r[7].calls, 0);
    struct iox_client_stats st;
    iox_client_pool_stats(h.p, &st);
    CU_ASSERT_EQUAL(st.losses, 3);
    CU_ASSERT_EQUAL(st.connect_failures, 2);
    CU_ASSERT_EQUAL(st.replies, 2);
    for (int i = 0; i < 8; i++) CU_ASSERT(r[i].calls <= 1);
    h_fini(&h);
}

IOX_TEST(client_sim, refused_handshake_reconnects_with_backoff)
{
    struct h h;
    h_init(&h, &hello, 1, 4);
    CU_ASSERT_EQUAL(iox_sim_complete_one(h.w.sim, IOX_OP_SOCKET, -1, FD0), 0);
    CU_ASSERT_EQUAL(iox_sim_complete_one(h.w.sim, IOX_OP_CONNECT, FD0, 0), 0);
    turn(&h);
    CU_ASSERT_EQUAL(iox_sim_send(h.w.sim, FD0, 0), 0);
    CU_ASSERT_EQUAL(iox_sim_recv(h.w.sim, FD0, "NO\n", 3, 0), 3);
    turn(&h);
    CU_ASSERT_EQUAL(iox_client_pool_up(h.p), 0);
    CU_ASSERT(strstr(iox_client_pool_last_error(h.p), "handshake reply 0 refused") != NULL);
    CU_ASSERT_EQUAL(iox_sim_closes(h.w.sim, FD0), 1);
    /* The backoff doubles: 100, then 200 ms. */
    iox_reactor_advance_clock(&h.w.r, h.w.r.now_ms + 100);
    CU_ASSERT_EQUAL(iox_sim_complete_one(h.w.sim, IOX_OP_SOCKET, -1, FD0 + 1), 0);
    CU_ASSERT_EQUAL(iox_sim_complete_one(h.w.sim, IOX_OP_CONNECT, FD0 + 1, -ECONNREFUSED), 0);
    turn(&h);
    iox_reactor_advance_clock(&h.w.r, h.w.r.now_ms + 150);
    CU_ASSERT(!iox_sim_has_op(h.w.sim, IOX_OP_SOCKET, -1));
    iox_reactor_advance_clock(&h.w.r, h.w.r.now_ms + 60);
    CU_ASSERT(iox_sim_has_op(h.w.sim, IOX_OP_SOCKET, -1));
    h_fini(&h);
}

/* ---- seeded schedules ----
 * 1-3 connections against a simulated echo server: requests issued at
 * random (some while nothing is up), replies delivered in random chunks,
 * short sends, connects refused or timing out, resets and EOFs, the clock
 * moving; then a stop. Whatever happens: every accepted request's callback
 * runs exactly once, with its own echo or an error; no op is left in the
 * ring; every socket the pool got is closed exactly once; every buffer is
 * back. Replay: IOX_SEED=<n> build/tests client_sim:seeded_schedules_keep_the_invariants. */

static uint64_t crng;
static unsigned crnd(unsigned n)
{
    crng ^= crng << 13; crng ^= crng >> 7; crng ^= crng << 17;
    return (unsigned)(crng % n);
}

#define NREQ 200
static struct creq { char want[16]; int calls, status, ok; } creqs[NREQ];
static void ccb(void *arg, int status, const char *reply, size_t len)
{
    struct creq *q = arg;
    q->calls++;
    q->status = status;
    q->ok = status == 0 && len == strlen(q->want) && !memcmp(reply, q->want, len);
}

static int one_client_schedule(uint64_t seed, void *arg)
{
    (void)arg;
    crng = seed * 0x9e3779b97f4a7c15ull + 7;
    unsigned failed_before = CU_get_number_of_failures();
    struct h h;
    memset(&h, 0, sizeof h);
    CU_ASSERT_FATAL(sw_open(&h.w, 4, 16 + crnd(100), 0) == 0);
    CU_ASSERT_FATAL(h.w.r.seam == iox_sim_seam(h.w.sim));   /* the reactor runs on the simulator */
    h.w.r.now_ms = 1000;
    struct iox_client_config cc = {.host = "127.0.0.1", .port = 9, .conns = 1 + crnd(3), .max_inflight = 1 + crnd(8),
                                   .max_queued = 1 + crnd(16), .connect_timeout_ms = 500,
                                   .backoff_min_ms = 50, .backoff_max_ms = 200, .down_fail_ms = 2000,
                                   .proto = &plain};
    char why[128];
    CU_ASSERT_FATAL(iox_client_pool_open(&h.w.r, &cc, &h.p, why, sizeof why) == 0);
    memset(creqs, 0, sizeof creqs);
    unsigned nreq = 0, accepted = 0;
    int next_fd = 100;
    size_t echoed[4096 - 100];
    memset(echoed, 0, sizeof echoed);
    for (unsigned step = 0; step < 600; step++) {
        unsigned a = crnd(100);
        if (a < 20 && nreq < NREQ) {
            struct creq *q = &creqs[nreq];
            snprintf(q->want, sizeof q->want, "r%u\n", nreq);
            int rc = iox_client_request(h.p, q->want, strlen(q->want), ccb, q);
            CU_ASSERT(rc == 0 || rc == -EAGAIN || rc == -ENOTCONN);
            if (rc == 0) accepted++;
            else q->calls = -100;   /* never to be called */
            nreq++;
        } else if (a < 30) {
            if (iox_sim_complete_one(h.w.sim, IOX_OP_SOCKET, -1, next_fd) == 0 && next_fd < 4000) next_fd++;
        } else if (a < 40) {
            for (int fd = 100; fd < next_fd; fd++)
                if (iox_sim_has_op(h.w.sim, IOX_OP_CONNECT, fd)) {
                    iox_sim_complete_one(h.w.sim, IOX_OP_CONNECT, fd, crnd(4) ? 0 : -ECONNREFUSED);
                    break;
                }
        } else if (a < 55) {
            for (int fd = 100; fd < next_fd; fd++)
                if (iox_sim_has_op(h.w.sim, IOX_OP_SEND, fd)) { iox_sim_send(h.w.sim, fd, crnd(3) ? 0 : (int)(1 + crnd(5))); break; }
        } else if (a < 75) {
            /* The echo server answers what it received, in a random chunk. */
            for (int fd = 100; fd < next_fd; fd++) {
                size_t n;
                const char *b = iox_sim_peer_bytes(h.w.sim, fd, &n);
                size_t *e = &echoed[fd - 100];
                if (!b || *e >= n || !iox_sim_has_op(h.w.sim, IOX_OP_RECV, fd)) continue;
                size_t k = 1 + crnd((unsigned)(n - *e));
                long got = iox_sim_recv(h.w.sim, fd, b + *e, k, 1 + crnd(20));
                if (got > 0) *e += (size_t)got;
                break;
            }
        } else if (a < 90) {
            turn(&h);
        } else if (a < 96) {
            iox_reactor_advance_clock(&h.w.r, h.w.r.now_ms + 10 + crnd(300));
        } else {
            for (int fd = 100; fd < next_fd; fd++)
                if (iox_sim_has_op(h.w.sim, IOX_OP_RECV, fd)) {
                    iox_sim_recv_end(h.w.sim, fd, crnd(2) ? 0 : -ECONNRESET);
                    break;
                }
        }
    }
    /* The end: stop, then let every op finish. */
    iox_client_pool_stop(h.p);
    for (int i = 0; i < 20 && iox_client_pool_ops(h.p); i++) {
        if (iox_sim_complete_one(h.w.sim, IOX_OP_SOCKET, -1, next_fd) == 0 && next_fd < 4000) next_fd++;
        for (int fd = 100; fd < next_fd; fd++) {
            while (iox_sim_complete_one(h.w.sim, IOX_OP_CONNECT, fd, -ECANCELED) == 0) {}
            while (iox_sim_send(h.w.sim, fd, -ECANCELED) == 0) {}
        }
        turn(&h);
    }
    CU_ASSERT_EQUAL(iox_client_pool_ops(h.p), 0);
    unsigned once = 0, refused_called = 0, wrong = 0, answered = 0;
    for (unsigned i = 0; i < nreq; i++) {
        if (creqs[i].calls < 0) { refused_called += creqs[i].calls != -100; continue; }   /* refused: never called */
        once += creqs[i].calls == 1;
        answered += creqs[i].calls == 1 && creqs[i].status == 0;
        wrong += creqs[i].calls == 1 && creqs[i].status == 0 && !creqs[i].ok;
    }
    if (getenv("CLIENT_SIM_STATS")) fprintf(stderr, "C %u %u %u\n", nreq, accepted, answered);
    CU_ASSERT_EQUAL(once, accepted);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(refused_called, 0);
    for (int fd = 100; fd < next_fd; fd++) CU_ASSERT_EQUAL(iox_sim_closes(h.w.sim, fd), 1);
    iox_client_pool_close(h.p);
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(h.w.sim), 0);
    CU_ASSERT_EQUAL(iox_sim_violations(h.w.sim), 0);
    if (iox_sim_violations(h.w.sim)) fprintf(stderr, "\n  violation: %s\n", iox_sim_last_violation(h.w.sim));
    sw_close(&h.w);
    int bad = CU_get_number_of_failures() != failed_before;
    if (bad) fprintf(stderr, "\n  seed %llu failed: IOX_SEED=%llu build/tests client_sim:seeded_schedules_keep_the_invariants\n",
                     (unsigned long long)seed, (unsigned long long)seed);
    return bad;
}

IOX_TEST(client_sim, seeded_schedules_keep_the_invariants)
{
    CU_ASSERT_EQUAL(iox_test_run_seeds(one_client_schedule, NULL, 300), 0);
}

IOX_SUITE(client_sim, NULL, NULL);
