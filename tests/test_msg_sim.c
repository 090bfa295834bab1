/* test_msg_sim.c — cross-reactor messages through linked simulated rings,
 * driving the playground's hop application over several reactors.
 *
 * Each reactor runs on its own simulated ring; the rings are linked
 * (iox_sim_link_ring) so a msg_ring on one is delivered to another when the
 * test says so. The hop logic is examples/playground/mode_hop.c itself,
 * #included below: it is application code (not the library) made of static
 * functions, and including it tests exactly what the playground runs
 * without moving it into runtime/.
 *
 * A seeded schedule: 1–4 reactors, 1–3 HTTP connections each, a pipeline
 * of requests per connection (GET / hops to another reactor, GET /x is
 * answered at once) delivered in random chunks; messages delivered in
 * random order across senders, some delayed for many turns, some finding
 * the target's CQ full (-EOVERFLOW: the runtime must resend on its next
 * turn), some finding the target gone (-ENXIO / -EBADF on a hop request:
 * the origin answers 503 itself); short sends; a reactor beginning to stop
 * mid-way (iox_reactor_begin_stop), with its grace running out or not.
 *
 * Invariants: every connection's answers are its requests' answers, in
 * request order, each exactly once (a prefix of them when its reactor
 * stopped; all of them otherwise); a hop body names the connection's
 * reactor as origin and another reactor as target (itself only with one
 * reactor); no message left in any ring; every hop message back in its
 * owner's pool; every connection closed exactly once, nothing queued on it
 * after, every provided buffer returned.
 *
 * Replay a failing seed: IOX_SEED=<n> build/tests msg_sim. */
#include "iox_test.h"
#include <ioxide/log.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include "../examples/playground/mode_hop.c"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXR 4
#define MAXC 3
#define MAXREQ 24
#define FD0 7
#define RING_FD0 100

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

struct hconn {
    int fd;
    char in[MAXREQ * 40];
    size_t in_len, in_off;
    uint8_t kind[MAXREQ];    /* 1: GET / (hop), 0: GET /x (404) */
    unsigned nreq;
};

struct world {
    unsigned nr, nc;
    struct iox_seam_sim *sim[MAXR];
    struct iox_reactor r[MAXR];
    int ring_fds[MAXR];
    struct iox_server_config cfg;
    struct iox_http_config hcfg;
    struct iox_http_server *hs[MAXR];
    struct hconn conn[MAXR][MAXC];
    uint64_t now;
    int stopped[MAXR];
    unsigned bounced, overflows, delivered;
    char why[240];
};

static void sink(void *ctx, const struct iox_cqe *cqe) { iox_reactor_dispatch(ctx, cqe); }

static void turn_one(struct world *w, unsigned i)
{
    do {
        iox_sim_publish(w->sim[i]);
        iox_reactor_flush(&w->r[i]);
    } while (iox_sim_pump(w->sim[i]) > 0);
}

static void turn_all(struct world *w)
{
    for (unsigned i = 0; i < w->nr; i++) turn_one(w, i);
}

static unsigned msgs_pending(struct world *w)
{
    unsigned n = 0;
    for (unsigned i = 0; i < w->nr; i++) n += iox_sim_msgs(w->sim[i]);
    return n;
}

/* Complete the k-th pending message of reactor i with a fate. */
static void msg_step(struct world *w, unsigned i, uint64_t *s, int faults)
{
    unsigned n = iox_sim_msgs(w->sim[i]);
    if (!n) return;
    unsigned k = (unsigned)(rnd(s) % n);      /* any of them: reordering within and across senders */
    uint64_t data;
    iox_sim_msg_peek(w->sim[i], k, NULL, NULL, &data);
    /* A batch (the turn's messages to one reactor, chained): only one of
     * hop requests alone may bounce — a reply's target is its origin,
     * which never goes away while the server runs. */
    int all_req = 1;
    for (const struct iox_msg *m = iox_ud_to_ptr(data); m; m = m->next) all_req &= m->kind == HOP_REQ;
    int res = 0;
    unsigned f = (unsigned)(rnd(s) % 10);
    if (faults && f < 2) { res = -EOVERFLOW; w->overflows++; }
    else if (faults && f == 2 && all_req) { res = rnd(s) % 2 ? -ENXIO : -EBADF; w->bounced++; }
    else w->delivered++;
    iox_sim_msg_complete(w->sim[i], k, res);
    turn_all(w);
}

static void deliver_bytes(struct world *w, unsigned i, struct hconn *c, size_t max, size_t chunk)
{
    if (c->in_off >= c->in_len) return;
    size_t k = c->in_len - c->in_off;
    if (k > max) k = max;
    long got = iox_sim_recv(w->sim[i], c->fd, c->in + c->in_off, k, chunk);
    if (got > 0) c->in_off += (size_t)got;
    turn_one(w, i);
}

/* Run everything to quiescence: messages delivered, sends completed. */
static void settle(struct world *w, uint64_t *s)
{
    for (int guard = 0; guard < 10000; guard++) {
        int progress = 0;
        turn_all(w);
        for (unsigned i = 0; i < w->nr; i++) {
            while (iox_sim_msgs(w->sim[i])) { msg_step(w, i, s, 0); progress = 1; }
            for (unsigned j = 0; j < w->nc; j++) {
                struct hconn *c = &w->conn[i][j];
                while (iox_sim_has_op(w->sim[i], IOX_OP_SEND, c->fd)) {
                    iox_sim_send(w->sim[i], c->fd, 0);
                    turn_one(w, i);
                    progress = 1;
                }
            }
        }
        if (!progress && !msgs_pending(w)) return;
    }
}

/* Check connection c of reactor i's output against its requests. */
static int check_output(struct world *w, unsigned i, unsigned j)
{
    struct hconn *c = &w->conn[i][j];
    size_t n;
    const char *out = iox_sim_peer_bytes(w->sim[i], c->fd, &n);
    size_t pos = 0;
    unsigned k = 0;
    while (pos < n) {
        const char *head = out + pos;
        const char *end = memmem(head, n - pos, "\r\n\r\n", 4);
        if (!end && w->stopped[i] == 2) return 0;   /* grace over: the last answer may be cut */
        if (!end || k >= c->nreq) {
            snprintf(w->why, sizeof w->why, "r%u c%u: %s after %u answers", i, j, end ? "more answers than requests" : "a cut answer", k);
            return 1;
        }
        int status = atoi(head + 9);
        const char *cl = memmem(head, (size_t)(end - head), "Content-Length: ", 16);
        size_t blen = cl ? strtoul(cl + 16, NULL, 10) : 0;
        const char *body = end + 4;
        if ((size_t)(body - out) + blen > n && w->stopped[i] == 2) return 0;
        if ((size_t)(body - out) + blen > n) { snprintf(w->why, sizeof w->why, "r%u c%u: answer %u cut", i, j, k); return 1; }
        pos = (size_t)(body - out) + blen;
        if (c->kind[k] == 0) {
            if (status != 404) { snprintf(w->why, sizeof w->why, "r%u c%u: answer %u is %d, want 404", i, j, k, status); return 1; }
        } else if (status == 503) {
            if (blen != 23 || memcmp(body, "hop target unavailable\n", 23)) { snprintf(w->why, sizeof w->why, "r%u c%u: bad 503 body", i, j); return 1; }
        } else {
            unsigned a, b;
            char tail, buf[48];
            int ok = status == 200 && blen < sizeof buf;
            if (ok) { memcpy(buf, body, blen); buf[blen] = 0; ok = sscanf(buf, "hop=%u->%u%c", &a, &b, &tail) == 2; }
            if (!ok || a != i || b >= w->nr || (w->nr > 1 && b == a)) {
                snprintf(w->why, sizeof w->why, "r%u c%u: answer %u is %d '%.*s', want hop=%u->(another of %u)",
                         i, j, k, status, (int)(blen < 40 ? blen : 40), body, i, w->nr);
                return 1;
            }
        }
        k++;
    }
    if (k < c->nreq && !w->stopped[i]) {
        snprintf(w->why, sizeof w->why, "r%u c%u: %u answers for %u requests (reactor not stopped)", i, j, k, c->nreq);
        return 1;
    }
    return 0;
}

static unsigned pool_free(struct iox_reactor *r)
{
    unsigned n = 0;
    for (struct hop_msg *m = HOP(r)->free; m && n <= HOP_POOL; m = m->free_next) n++;
    return n;
}

static struct { uint64_t seeds, reactors, conns, requests, answers, hops, bounced503, overflows, delivered, stops; } stats;

static int run_seed(uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 3;
    struct world *w = calloc(1, sizeof *w);
    int failed = 0;
    w->nr = 1 + (unsigned)(rnd(&s) % MAXR);
    w->nc = 1 + (unsigned)(rnd(&s) % MAXC);
    w->hcfg.max_conns = MAXC;
    w->hcfg.idle_timeout_ms = 1000;
    w->hcfg.linger_ms = 100;
    w->hcfg.write_cap = 1 << 20;
    w->cfg.shutdown_grace_ms = 500;
    w->hcfg.app = &hop_app;
    for (unsigned i = 0; i < w->nr; i++) {
        w->sim[i] = iox_sim_create(4, 32);
        w->ring_fds[i] = RING_FD0 + (int)i;
        if (!w->sim[i] || iox_reactor_init_sim(&w->r[i], iox_sim_seam(w->sim[i]), &w->cfg)) abort();
        if (iox_http_server_open(&w->r[i], &w->hcfg, 0, &w->hs[i])) abort();
        iox_sim_set_sink(w->sim[i], sink, &w->r[i]);
        w->r[i].id = i;
        w->r[i].nreactors = w->nr;
        w->r[i].peer_ring_fds = w->ring_fds;
        if (hop_start(&w->r[i], NULL)) abort();
    }
    w->now = w->r[0].now_ms;
    for (unsigned i = 0; i < w->nr; i++) {
        w->r[i].now_ms = w->now;
        for (unsigned j = 0; j < w->nr; j++) iox_sim_link_ring(w->sim[i], RING_FD0 + (int)j, w->sim[j]);
        for (unsigned j = 0; j < w->nc; j++) {
            struct hconn *c = &w->conn[i][j];
            c->fd = FD0 + (int)j;
            if (!iox_http_adopt(w->hs[i], c->fd)) abort();
            c->nreq = 1 + (unsigned)(rnd(&s) % MAXREQ);
            for (unsigned k = 0; k < c->nreq; k++) {
                c->kind[k] = rnd(&s) % 4 != 0;
                c->in_len += (size_t)sprintf(c->in + c->in_len, c->kind[k] ? "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
                                                                          : "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
            }
        }
    }
    turn_all(w);
    int stop_at = rnd(&s) % 3 == 0 ? (int)(rnd(&s) % 300) : -1;
    unsigned stopper = (unsigned)(rnd(&s) % w->nr);
    int grace_ends = rnd(&s) % 2;
    for (int step = 0; step < 3000; step++) {
        if (step == stop_at) {
            w->stopped[stopper] = 1;
            iox_reactor_begin_stop(&w->r[stopper]);
            turn_one(w, stopper);
            if (grace_ends) {
                w->stopped[stopper] = 2;
                /* Only the stopper's clock: the others' idle timers must not fire. */
                iox_reactor_advance_clock(&w->r[stopper], w->r[stopper].now_ms + 1000);
                turn_all(w);
            }
        }
        unsigned i = (unsigned)(rnd(&s) % w->nr);
        struct hconn *c = &w->conn[i][rnd(&s) % w->nc];
        switch (rnd(&s) % 8) {
        case 0: case 1: deliver_bytes(w, i, c, 1 + rnd(&s) % 80, 1 + rnd(&s) % 32); break;
        case 2: case 3:
            if (iox_sim_has_op(w->sim[i], IOX_OP_SEND, c->fd)) { iox_sim_send(w->sim[i], c->fd, (int)(1 + rnd(&s) % 200)); turn_one(w, i); }
            break;
        case 4: case 5: case 6: msg_step(w, i, &s, 1); break;   /* others wait: delays */
        default: turn_all(w); break;
        }
        int left = 0;
        for (unsigned a = 0; a < w->nr; a++)
            for (unsigned b = 0; b < w->nc; b++) left |= w->conn[a][b].in_off < w->conn[a][b].in_len && !w->stopped[a];
        if (!left && step > stop_at) break;
    }
    /* The rest of the input (bytes to a stopped reactor's connection are
     * taken only while it still reads), then quiescence. */
    for (unsigned i = 0; i < w->nr; i++)
        for (unsigned j = 0; j < w->nc; j++)
            for (int g = 0; g < 100 && w->conn[i][j].in_off < w->conn[i][j].in_len; g++) {
                if (!iox_sim_has_op(w->sim[i], IOX_OP_RECV, w->conn[i][j].fd)) { turn_one(w, i); if (!iox_sim_has_op(w->sim[i], IOX_OP_RECV, w->conn[i][j].fd)) { settle(w, &s); if (!iox_sim_has_op(w->sim[i], IOX_OP_RECV, w->conn[i][j].fd)) break; } }
                deliver_bytes(w, i, &w->conn[i][j], (size_t)-1, 0);
                settle(w, &s);
            }
    settle(w, &s);
    /* Every peer closes; timers end whatever lingers. */
    for (unsigned i = 0; i < w->nr; i++)
        for (unsigned j = 0; j < w->nc; j++)
            if (iox_sim_recv_end(w->sim[i], w->conn[i][j].fd, 0) == 0) turn_one(w, i);
    settle(w, &s);
    w->now += 60000;
    for (unsigned i = 0; i < w->nr; i++) iox_reactor_advance_clock(&w->r[i], w->now);
    settle(w, &s);

    for (unsigned i = 0; i < w->nr && !failed; i++)
        for (unsigned j = 0; j < w->nc && !failed; j++) failed = check_output(w, i, j);
    for (unsigned i = 0; i < w->nr; i++) {
        struct iox_seam_sim *sim = w->sim[i];
        for (unsigned j = 0; j < w->nc; j++) {
            int fd = w->conn[i][j].fd;
            if (!failed && (iox_sim_closes(sim, fd) != 1 || iox_sim_live_ops(sim, fd))) {
                failed = 1;
                snprintf(w->why, sizeof w->why, "r%u c%u: closes %u, live ops %u", i, j, iox_sim_closes(sim, fd), iox_sim_live_ops(sim, fd));
            }
        }
        if (!failed && (iox_sim_bufs_lent(sim) || iox_sim_violations(sim) || w->hs[i]->nconns || iox_sim_msgs(sim))) {
            failed = 1;
            snprintf(w->why, sizeof w->why, "r%u: lent %u, conns %u, msgs %u, %s", i, iox_sim_bufs_lent(sim),
                     w->hs[i]->nconns, iox_sim_msgs(sim), iox_sim_last_violation(sim));
        }
        if (!failed && (pool_free(&w->r[i]) != HOP_POOL || iox_reactor_msgs_outstanding(&w->r[i]))) {
            failed = 1;
            snprintf(w->why, sizeof w->why, "r%u: %u of %u hop messages back in the pool%s", i, pool_free(&w->r[i]),
                     HOP_POOL, iox_reactor_msgs_outstanding(&w->r[i]) ? ", messages still queued" : "");
        }
    }
    stats.seeds++;
    stats.reactors += w->nr;
    stats.overflows += w->overflows;
    stats.delivered += w->delivered;
    stats.stops += stop_at >= 0;
    for (unsigned i = 0; i < w->nr; i++)
        for (unsigned j = 0; j < w->nc; j++) {
            size_t n;
            const char *out = iox_sim_peer_bytes(w->sim[i], w->conn[i][j].fd, &n);
            stats.conns++;
            stats.requests += w->conn[i][j].nreq;
            for (const char *p = out; (p = memmem(p, n - (size_t)(p - out), "HTTP/1.1 ", 9)); p += 9) {
                stats.answers++;
                stats.hops += !strncmp(p + 9, "200", 3);
                stats.bounced503 += !strncmp(p + 9, "503", 3);
            }
        }
    if (failed)
        fprintf(stderr, "\n  seed %llu failed (%u reactors × %u conns, stop %d on r%u%s): %s\n"
                "  replay: IOX_SEED=%llu build/tests msg_sim\n",
                (unsigned long long)seed, w->nr, w->nc, stop_at, stopper, grace_ends ? " + grace over" : "", w->why,
                (unsigned long long)seed);
    for (unsigned i = 0; i < w->nr; i++) {
        hop_stop(&w->r[i], NULL);
        iox_http_server_close(w->hs[i]);
        iox_reactor_fini(&w->r[i]);
        iox_sim_destroy(w->sim[i]);
    }
    free(w);
    return failed;
}

static int quiet_level;
static int suite_init(void)
{
    quiet_level = iox_log_level;
    if (!getenv("IOX_LOG")) iox_log_level = -1;   /* bounced messages are logged as warnings */
    return 0;
}
static int suite_clean(void) { iox_log_level = quiet_level; return 0; }

static int run_seed_arg(uint64_t seed, void *arg)
{
    (void)arg;
    return run_seed(seed);
}

IOX_TEST(msg_sim, seeded_hops_across_reactors)
{
    unsigned failures = iox_test_run_seeds(run_seed_arg, NULL, 10000);
    CU_ASSERT_EQUAL(failures, 0);
    if (getenv("IOX_SIM_STATS"))
        fprintf(stderr, "\n  msg_sim: %llu seeds, %llu reactors, %llu conns, %llu requests, %llu answers (%llu hops, %llu bounced 503); "
                "msgs %llu delivered, %llu overflowed and resent; %llu runs with a reactor stopping\n",
                (unsigned long long)stats.seeds, (unsigned long long)stats.reactors, (unsigned long long)stats.conns,
                (unsigned long long)stats.requests, (unsigned long long)stats.answers, (unsigned long long)stats.hops,
                (unsigned long long)stats.bounced503, (unsigned long long)stats.delivered,
                (unsigned long long)stats.overflows, (unsigned long long)stats.stops);
}

IOX_SUITE(msg_sim, suite_init, suite_clean);
