/* test_scripts_client.c — completion scripts for the stream_client machine
 * (one pooled outbound connection of the client kit, ioxide/stream_client.h),
 * its vocabulary of the generic runner (tests/script_runner.h); corpus
 * tests/data/machines/stream_client/NAME.md.
 *
 * A pool of one connection to 127.0.0.1:9 on a simulated ring (8 provided
 * buffers of 64 B; max_inflight 4, max_queued 4, connect_timeout_ms 500,
 * backoff 100–400 ms, down_fail_ms 10000). The protocol: a reply is a line
 * ("...\n"); a reply starting with '!' cannot be framed (protocol error).
 * With `handshake on` as the first step, a new connection sends "HELLO\n"
 * and needs the reply "OK\n". Each `socket ok` gives a new descriptor (40,
 * 41, ...). Steps (# starts a comment):
 *   handshake on           first step only
 *   socket ok | socket -EMFILE      the pool's IORING_OP_SOCKET completes
 *   connect ok | connect -ECONNREFUSED
 *   recv "bytes"           the server's bytes on the multishot recv; cut at
 *                          every byte (what a recv no longer takes stays in
 *                          the socket until one is armed)
 *   recv eof | recv -ECONNRESET | recv -ENOBUFS
 *   send all | send N | send N/M | send -EPIPE
 *   request NAME "bytes"   iox_client_request
 *   advance MS | timeout   the clock moves (timeout: past the connect
 *                          deadline, 501 ms)
 *   stop                   iox_client_pool_stop
 * Expectations (they do not turn the loop):
 *   expect sent "bytes"    what the server received since the last look, on
 *                          the current socket
 *   expect reply NAME "bytes" | expect failed NAME ECONNRESET|EPROTO|ENOTCONN|ECANCELED
 *   expect waiting NAME    no callback yet
 *   expect refused NAME EAGAIN|ENOTCONN|ESHUTDOWN
 *   expect up N            connections up (iox_client_pool_up)
 *   expect op KIND | no-op KIND   socket connect recv send close in flight
 *   expect closed | open   the current socket closed exactly once with no
 *                          op left / not closed
 *   expect state NAME, expect took FROM/EVENT  (the core's)
 * After the script the pool is stopped (a socket still coming is given a
 * descriptor) and closed: every accepted request's callback exactly once,
 * every socket closed exactly once with nothing left on it, no op of the
 * pool left, every buffer back, no ring violation, state stopped. */
#include "iox_test.h"
#include "script_runner.h"
#include "sim_world.h"
#include "stream_client_machine.h"
#include <ioxide/stream_client.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD0 40
enum { MAXRQ = 32, MAXFDS = 16 };

static long reply_len(const char *p, size_t n, void *ctx)
{
    (void)ctx;
    if (n && p[0] == '!') return -1;
    const char *nl = memchr(p, '\n', n);
    return nl ? (long)(nl - p + 1) : 0;
}
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
    return n == 3 && !memcmp(r, "OK\n", 3) ? 0 : -1;
}
static const struct iox_client_proto plain = {.reply_len = reply_len};
static const struct iox_client_proto hello = {.reply_len = reply_len, .handshake = handshake,
                                              .handshake_reply = handshake_reply};

struct rq { char name[16]; int rc, calls, status; char reply[64]; };

struct cw {
    struct sim_world w;
    struct iox_client_pool *p;
    int nfd;
    size_t seen[MAXFDS];
    int state;
    struct rq q[MAXRQ];
    unsigned nq;
    struct sbuf backlog;           /* the server's bytes no recv has taken yet */
    size_t backlog_off;
    int backlog_fd;
};

static struct cw world;
static const struct sr_script *cur_script;

static void trace(struct iox_client_conn *c, int from, int event, int to)
{
    (void)c;
    world.state = to;
    sr_took(from, event, to);
}

static void on_reply(void *arg, int status, const char *reply, size_t len)
{
    struct rq *q = arg;
    q->calls++;
    q->status = status;
    snprintf(q->reply, sizeof q->reply, "%.*s", (int)(len < 63 ? len : 63), reply ? reply : "");
}

static int fd_now(struct cw *g) { return g->nfd ? FD0 + g->nfd - 1 : -1; }

static void *cl_open(const struct sr_script *sc, char *why, size_t wl)
{
    struct cw *g = &world;
    free(g->backlog.s);
    memset(g, 0, sizeof *g);
    cur_script = sc;
    if (sw_open(&g->w, 8, 64, 500)) { snprintf(why, wl, "sim world setup failed"); return NULL; }
    g->state = STREAM_CLIENT_S_DOWN;
    stream_client_trace = trace;
    int hs = sc->n && !strcmp(sc->st[0].verb, "handshake");
    struct iox_client_config cc = {.host = "127.0.0.1", .port = 9, .conns = 1, .max_inflight = 4, .max_queued = 4,
                                   .connect_timeout_ms = 500, .backoff_min_ms = 100, .backoff_max_ms = 400,
                                   .down_fail_ms = 10000, .proto = hs ? &hello : &plain};
    char err[128];
    if (iox_client_pool_open(&g->w.r, &cc, &g->p, err, sizeof err)) {
        snprintf(why, wl, "pool open: %s", err);
        stream_client_trace = NULL;
        sw_close(&g->w);
        return NULL;
    }
    sw_turn(&g->w);
    return g;
}

static void cl_close(void *arg)
{
    struct cw *g = arg;
    if (g->p) iox_client_pool_close(g->p);
    stream_client_trace = NULL;
    sw_close(&g->w);
}

static int cl_state(void *arg) { return ((struct cw *)arg)->state; }

static int errno_named(const char *n)
{
    static const struct { const char *n; int e; } t[] = {
        {"ECONNRESET", ECONNRESET}, {"EPROTO", EPROTO}, {"ENOTCONN", ENOTCONN}, {"ECANCELED", ECANCELED},
        {"EAGAIN", EAGAIN}, {"ESHUTDOWN", ESHUTDOWN},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i].n, n)) return t[i].e;
    return -1;
}

static int op_kind(const char *k)
{
    static const struct { const char *n; int op; } ops[] = {
        {"socket", IOX_OP_SOCKET}, {"connect", IOX_OP_CONNECT}, {"recv", IOX_OP_RECV}, {"send", IOX_OP_SEND},
        {"close", IOX_OP_CLOSE},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(ops[i].n, k)) return ops[i].op;
    return -1;
}

static int cl_parse(struct sr_step *st, char *why, size_t wl)
{
    const char *v = st->verb, *a = st->arg, *rest = st->rest;
    if (!strcmp(v, "handshake")) {
        if (strcmp(a, "on")) { snprintf(why, wl, "handshake on"); return -1; }
        return 0;
    }
    if (!strcmp(v, "socket")) {
        if (strcmp(a, "ok") && strcmp(a, "-EMFILE")) { snprintf(why, wl, "socket ok | -EMFILE"); return -1; }
        return 0;
    }
    if (!strcmp(v, "connect")) {
        if (strcmp(a, "ok") && strcmp(a, "-ECONNREFUSED")) { snprintf(why, wl, "connect ok | -ECONNREFUSED"); return -1; }
        return 0;
    }
    if (!strcmp(v, "recv")) {
        if (*rest == '"') {
            if (sr_quoted(&rest, &st->data)) { snprintf(why, wl, "unterminated string"); return -1; }
            st->has_data = st->split = 1;
            return 0;
        }
        if (!strcmp(a, "eof") || !strcmp(a, "-ECONNRESET") || !strcmp(a, "-ENOBUFS")) return 0;
        snprintf(why, wl, "recv \"bytes\" | eof | -ECONNRESET | -ENOBUFS");
        return -1;
    }
    if (!strcmp(v, "send")) {
        if (strcmp(a, "all") && strcmp(a, "-EPIPE") && (st->num = strtol(a, NULL, 10)) <= 0) {
            snprintf(why, wl, "send all | N | N/M | -EPIPE");
            return -1;
        }
        return 0;
    }
    if (!strcmp(v, "request")) {
        const char *r = rest + strlen(a);
        while (*r == ' ') r++;
        if (strlen(a) >= 16 || sr_quoted(&r, &st->data) || !st->data.n) { snprintf(why, wl, "request NAME \"bytes\""); return -1; }
        return 0;
    }
    if (!strcmp(v, "advance")) {
        if ((st->num = strtol(a, NULL, 10)) <= 0) { snprintf(why, wl, "advance MS"); return -1; }
        return 0;
    }
    if (!strcmp(v, "timeout") || !strcmp(v, "stop")) return 0;
    if (!strcmp(v, "expect")) {
        if (!strcmp(a, "closed") || !strcmp(a, "open")) return 0;
        if (!strcmp(a, "op") || !strcmp(a, "no-op")) {
            char k[32];
            if (sscanf(rest, "%*s %31s", k) != 1 || (st->num = op_kind(k)) < 0) {
                snprintf(why, wl, "expect op|no-op socket|connect|recv|send|close");
                return -1;
            }
            return 0;
        }
        if (!strcmp(a, "up")) {
            if (sscanf(rest, "up %ld", &st->num) != 1) { snprintf(why, wl, "expect up N"); return -1; }
            return 0;
        }
        if (!strcmp(a, "sent")) {
            const char *r = rest + 4;
            while (*r == ' ') r++;
            if (sr_quoted(&r, &st->data)) { snprintf(why, wl, "expect sent \"bytes\""); return -1; }
            return 0;
        }
        char nm[32], x[32] = "";
        if (sscanf(rest, "%*s %31s %31s", nm, x) < 1) { snprintf(why, wl, "expect %s NAME ...", a); return -1; }
        if (!strcmp(a, "reply")) {
            const char *r = strstr(rest, nm) + strlen(nm);
            while (*r == ' ') r++;
            if (sr_quoted(&r, &st->data)) { snprintf(why, wl, "expect reply NAME \"bytes\""); return -1; }
        } else if (!strcmp(a, "failed") || !strcmp(a, "refused")) {
            if ((st->num = errno_named(x)) < 0) { snprintf(why, wl, "expect %s NAME ERRNO", a); return -1; }
        } else if (strcmp(a, "waiting")) {
            snprintf(why, wl, "unknown expectation \"%s\"", a);
            return -1;
        }
        snprintf(st->arg + strlen(st->arg), sizeof st->arg - strlen(st->arg), " %.15s", nm);
        return 0;
    }
    snprintf(why, wl, "unknown step \"%s\"", v);
    return -1;
}

#define FAILF(...) do { snprintf(why, wl, __VA_ARGS__); return SR_FAIL; } while (0)

static void pump(struct cw *g)
{
    for (int guard = 0; g->backlog_off < g->backlog.n && guard < 10000; guard++) {
        if (g->backlog_fd != fd_now(g)) { g->backlog_off = g->backlog.n; return; }   /* that socket is gone */
        long k = iox_sim_recv(g->w.sim, g->backlog_fd, g->backlog.s + g->backlog_off, g->backlog.n - g->backlog_off, 0);
        if (k < 0) return;
        g->backlog_off += (size_t)k;
        sw_turn(&g->w);
    }
}

static void settle(struct cw *g)
{
    sw_turn(&g->w);
    pump(g);
}

static int find_q(struct cw *g, const char *name)
{
    for (unsigned i = 0; i < g->nq; i++)
        if (!strcmp(g->q[i].name, name)) return (int)i;
    return -1;
}

static int cl_step1(struct cw *g, const struct sr_step *st, size_t split, char *why, size_t wl)
{
    struct iox_seam_sim *sim = g->w.sim;
    const char *v = st->verb, *a = st->arg;
    int fd = fd_now(g);
#define NOOP(...) do { if (st->lenient) return SR_SKIP; FAILF(__VA_ARGS__); } while (0)
    if (!strcmp(v, "handshake")) {
        if (st != &cur_script->st[0]) FAILF("handshake on must come first");
        return SR_OK;
    }
    if (!strcmp(v, "socket")) {
        if (!strcmp(a, "ok")) {
            if (g->nfd == MAXFDS) FAILF("too many sockets");
            if (iox_sim_complete_one(sim, IOX_OP_SOCKET, -1, FD0 + g->nfd) < 0) NOOP("no socket op in flight");
            g->nfd++;
        } else if (iox_sim_complete_one(sim, IOX_OP_SOCKET, -1, -EMFILE) < 0) NOOP("no socket op in flight");
    } else if (!strcmp(v, "connect")) {
        if (fd < 0 || iox_sim_complete_one(sim, IOX_OP_CONNECT, fd, !strcmp(a, "ok") ? 0 : -ECONNREFUSED) < 0)
            NOOP("no connect in flight");
    } else if (!strcmp(v, "recv")) {
        if (fd < 0 || !iox_sim_has_op(sim, IOX_OP_RECV, fd)) NOOP("no recv armed");
        if (st->has_data) {
            if (g->backlog_fd != fd) { g->backlog.n = g->backlog_off = 0; g->backlog_fd = fd; }
            if (split && split < st->data.n) {
                sb_put(&g->backlog, st->data.s, split);
                pump(g);
                sb_put(&g->backlog, st->data.s + split, st->data.n - split);
            } else {
                sb_put(&g->backlog, st->data.s, st->data.n);
            }
            return SR_OK;
        }
        int res = !strcmp(a, "eof") ? 0 : !strcmp(a, "-ECONNRESET") ? -ECONNRESET : -ENOBUFS;
        iox_sim_recv_end(sim, fd, res);
    } else if (!strcmp(v, "send")) {
        if (fd < 0 || !iox_sim_has_op(sim, IOX_OP_SEND, fd)) NOOP("no send in flight");
        if (!strcmp(a, "all")) {
            for (int k = 0; k < 1000 && iox_sim_has_op(sim, IOX_OP_SEND, fd); k++) { iox_sim_send(sim, fd, 0); settle(g); }
            return SR_OK;
        }
        iox_sim_send(sim, fd, !strcmp(a, "-EPIPE") ? -EPIPE : (int)st->num);
    } else if (!strcmp(v, "request")) {
        if (g->nq == MAXRQ) FAILF("too many requests");
        if (find_q(g, a) >= 0) FAILF("request %s named twice", a);
        struct rq *q = &g->q[g->nq++];
        memset(q, 0, sizeof *q);
        snprintf(q->name, sizeof q->name, "%.15s", a);
        q->rc = iox_client_request(g->p, st->data.s, st->data.n, on_reply, q);
    } else if (!strcmp(v, "advance") || !strcmp(v, "timeout")) {
        sw_advance(&g->w, !strcmp(v, "timeout") ? 501 : (uint64_t)st->num);
    } else if (!strcmp(v, "stop")) {
        iox_client_pool_stop(g->p);
    } else if (!strcmp(v, "expect")) {
        if (!strcmp(a, "closed") || !strcmp(a, "open")) {
            if (fd < 0) FAILF("no socket was ever made");
            unsigned cl = iox_sim_closes(sim, fd), live = iox_sim_live_ops(sim, fd);
            if (!strcmp(a, "closed") && (cl != 1 || live)) FAILF("fd %d: %u closes, %u ops in flight", fd, cl, live);
            if (!strcmp(a, "open") && cl) FAILF("fd %d is closed", fd);
        } else if (!strcmp(a, "op") || !strcmp(a, "no-op")) {
            int on = st->num == IOX_OP_SOCKET ? -1 : fd;
            int has = (on >= 0 || st->num == IOX_OP_SOCKET) && iox_sim_has_op(sim, (unsigned)st->num, on);
            if (!strcmp(a, "op") && !has) FAILF("no %s in flight", st->rest + 3);
            if (!strcmp(a, "no-op") && has) FAILF("%s in flight", st->rest + 6);
        } else if (!strcmp(a, "up")) {
            if ((long)iox_client_pool_up(g->p) != st->num) FAILF("%u up, want %ld", iox_client_pool_up(g->p), st->num);
        } else if (!strcmp(a, "sent")) {
            size_t n = 0;
            const char *b = fd >= 0 ? iox_sim_peer_bytes(sim, fd, &n) : NULL;
            size_t k = fd >= 0 ? n - g->seen[fd - FD0] : 0;
            if (k != st->data.n || (k && memcmp(b + g->seen[fd - FD0], st->data.s, k))) {
                struct sbuf e = {0};
                sb_escape(&e, b ? b + g->seen[fd - FD0] : "", k > 60 ? 60 : k);
                snprintf(why, wl, "the server got \"%s\" (%zu bytes), want %zu bytes", e.s ? e.s : "", k, st->data.n);
                free(e.s);
                return SR_FAIL;
            }
            if (fd >= 0) g->seen[fd - FD0] = n;
        } else {
            char nm[32];
            sscanf(a, "%*s %31s", nm);
            int k = find_q(g, nm);
            if (k < 0) FAILF("no request %s", nm);
            struct rq *q = &g->q[k];
            if (!strncmp(a, "refused", 7)) {
                if (q->rc != -(int)st->num) FAILF("request %s: %d (%s), want refused -%ld", nm, q->rc, strerror(-q->rc), st->num);
                if (q->calls) FAILF("refused request %s got a callback", nm);
            } else if (q->rc) {
                FAILF("request %s was refused (%s)", nm, strerror(-q->rc));
            } else if (!strncmp(a, "waiting", 7)) {
                if (q->calls) FAILF("request %s was answered (%d, \"%s\")", nm, q->status, q->reply);
            } else {
                if (q->calls != 1) FAILF("request %s: %d callbacks, want 1", nm, q->calls);
                if (!strncmp(a, "reply", 5) && (q->status || strcmp(q->reply, st->data.s))) {
                    struct sbuf got = {0}, want = {0};
                    sb_escape(&got, q->reply, strlen(q->reply));
                    sb_escape(&want, st->data.s, st->data.n);
                    snprintf(why, wl, "request %s: status %d reply \"%s\", want \"%s\"", nm, q->status,
                             got.s ? got.s : "", want.s ? want.s : "");
                    free(got.s);
                    free(want.s);
                    return SR_FAIL;
                }
                if (!strncmp(a, "failed", 6) && q->status != -(int)st->num)
                    FAILF("request %s: status %d (%s), want -%ld", nm, q->status, strerror(-q->status), st->num);
            }
        }
        return SR_OK;
    }
#undef NOOP
    sw_turn(&g->w);
    return SR_OK;
}

static int cl_step(void *arg, const struct sr_step *st, size_t split, char *why, size_t wl)
{
    struct cw *g = arg;
    int rc = cl_step1(g, st, split, why, wl);
    if (rc == SR_OK && strcmp(st->verb, "expect")) pump(g);
    return rc;
}

static int cl_finish(void *arg, char *why, size_t wl)
{
    struct cw *g = arg;
    struct iox_seam_sim *sim = g->w.sim;
    pump(g);
    iox_client_pool_stop(g->p);
    sw_turn(&g->w);
    for (int guard = 0; iox_client_pool_ops(g->p) && guard < 100; guard++) {
        if (g->nfd < MAXFDS && iox_sim_complete_one(sim, IOX_OP_SOCKET, -1, FD0 + g->nfd) == 0) g->nfd++;
        int fd = fd_now(g);
        if (fd >= 0) {
            iox_sim_complete_one(sim, IOX_OP_CONNECT, fd, -ECANCELED);
            iox_sim_recv_end(sim, fd, -ECANCELED);
            iox_sim_send(sim, fd, -ECANCELED);
        }
        sw_turn(&g->w);
    }
    if (iox_client_pool_ops(g->p)) FAILF("after stop: %u ops of the pool left", iox_client_pool_ops(g->p));
    iox_client_pool_close(g->p);
    g->p = NULL;
    sw_turn(&g->w);
    for (unsigned i = 0; i < g->nq; i++)
        if (!g->q[i].rc && g->q[i].calls != 1) FAILF("request %s: %d callbacks after close, want 1", g->q[i].name, g->q[i].calls);
        else if (g->q[i].rc && g->q[i].calls) FAILF("refused request %s got a callback", g->q[i].name);
    for (int k = 0; k < g->nfd; k++)
        if (iox_sim_closes(sim, FD0 + k) != 1 || iox_sim_live_ops(sim, FD0 + k))
            FAILF("fd %d: %u closes, %u ops in flight at the end", FD0 + k, iox_sim_closes(sim, FD0 + k),
                  iox_sim_live_ops(sim, FD0 + k));
    if (iox_sim_bufs_lent(sim) || iox_sim_violations(sim))
        FAILF("%u buffers not returned, %u ring violations (%s)", iox_sim_bufs_lent(sim), iox_sim_violations(sim),
              iox_sim_last_violation(sim));
    if (g->state != STREAM_CLIENT_S_STOPPED) FAILF("state %s after close, want stopped", stream_client_state_names[g->state]);
    return 0;
}

/* A trail line of generated/stream_client.pml's @@script table as a step. */
static int from_trail(const char *t, char *out, size_t cap)
{
    if (!strncmp(t, "cancel ", 7) || !strncmp(t, "close ", 6) || strstr(t, "-ECANCELED") || !strcmp(t, "open") ||
        t[0] == '(')
        return 0;
    if (!strncmp(t, "socket ", 7)) snprintf(out, cap, "socket %s", t[7] == '-' ? "-EMFILE" : "ok");
    else if (!strncmp(t, "connect ", 8)) snprintf(out, cap, "connect %s", t[8] == '0' ? "ok" : "-ECONNREFUSED");
    else if (!strcmp(t, "recv 0")) snprintf(out, cap, "recv eof");
    else if (!strncmp(t, "recv \"+OK", 9)) snprintf(out, cap, "recv \"OK\\n\"");
    else if (!strncmp(t, "recv \"+PONG", 11)) snprintf(out, cap, "recv \"PONG\\n\"");
    else if (!strncmp(t, "recv \"+PO\"", 10)) snprintf(out, cap, "recv \"PO\"");
    else if (!strncmp(t, "send ", 5) && strchr(t, '/')) snprintf(out, cap, "send %d", atoi(t + 5));
    else if (!strcmp(t, "request")) {
        static unsigned n;
        snprintf(out, cap, "request t%u \"PING\\n\"", n++);
    } else snprintf(out, cap, "%s", t);
    return 1;
}

static const char *const client_unreached[] = {NULL};

extern const struct sr_vocab stream_client_vocab;
const struct sr_vocab stream_client_vocab = {
    .machine = "stream_client",
    .state_names = stream_client_state_names,
    .nstates = STREAM_CLIENT_STATE_COUNT,
    .event_names = stream_client_event_names,
    .nevents = STREAM_CLIENT_EVENT_COUNT,
    .parse = cl_parse,
    .open = cl_open,
    .step = cl_step,
    .state = cl_state,
    .finish = cl_finish,
    .close = cl_close,
    .from_trail = from_trail,
    .unreached_ok = client_unreached,
};

IOX_TEST(machine_scripts, stream_client_corpus)
{
    unsigned cases = 0, runs = 0;
    unsigned failures = sr_run_corpus(&stream_client_vocab, &cases, &runs);
    CU_ASSERT(cases >= 15);
    CU_ASSERT_EQUAL(failures, 0);
}
