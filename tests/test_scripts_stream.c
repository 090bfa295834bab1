/* test_scripts_stream.c — completion scripts for the stream_conn machine
 * (the protocol-neutral stream connection, ioxide/stream.h), its vocabulary
 * of the generic runner (tests/script_runner.h); corpus
 * tests/data/machines/stream_conn/NAME.md.
 *
 * The protocol (as in tests/test_stream_sim.c): each '\n'-terminated line
 * is a message. "A..." is answered later by `reply` (a reply slot stays
 * open), "BIG" gets 600 'x' and '\n', "QUIT" gets "bye\n" and a graceful
 * close, "BAD" gets "ERR\n" and a protocol error, anything else is echoed
 * at once. Configuration: 8 provided buffers of 64 B, write_cap 1024,
 * max_replies 2, max_carry 256, idle timeout 1000 ms, linger 100 ms.
 * Steps (# starts a comment):
 *   recv "bytes"         bytes arrive on the multishot recv (escapes as in
 *                        the http_conn corpus); whole, then cut at every
 *                        byte. Bytes no recv is armed for (the stream held
 *                        or throttled after the first piece) stay in the
 *                        socket and are delivered once a recv is armed again
 *   recv-last "bytes"    ... and the multishot ends with them (no F_MORE)
 *   recv-eof "bytes"     the bytes, then EOF, before the loop turns (the
 *                        peer's EOF reaching a recv about to be cancelled)
 *   recv eof | recv -ECONNRESET | recv -ENOBUFS   the recv ends
 *   send all | send N | send N/M | send -EPIPE    the oldest send
 *   reply                the oldest open async reply is answered "<line>!\n"
 *   pause | resume | close | abort   iox_stream_pause/resume/close/abort
 *   advance MS | timeout  the clock moves (timeout: past the idle timeout)
 *   shutdown             the reactor begins to stop
 * Expectations (they do not turn the loop):
 *   expect peer "bytes"  what the peer received since the last `expect
 *                        peer`, exactly
 *   expect send | no-send | recv | no-recv   a send in flight, a recv armed
 *   expect pending N     N async replies open
 *   expect cause NAME    on_close ran once with that cause
 *                        (iox_stream_cause_name: closed, aborted, ...)
 *   expect closed | open the socket closed exactly once with nothing in
 *                        flight and on_close run once / not closed
 *   expect state NAME, expect took FROM/EVENT  (the core's)
 * After the script the peer sends EOF, everything is sent, the clock runs
 * out: the socket must be closed once, on_close run once, every buffer back,
 * no ring violation, and the peer's bytes must be the answers in message
 * order (a prefix of them after a fault). */
#include "iox_test.h"
#include "script_runner.h"
#include "sim_world.h"
#include "stream_conn_machine.h"
#include <ioxide/stream.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD 9
#define IDLE_MS 1000

struct pend { struct iox_stream_ref ref; int id; char line[32]; };

struct sw {
    struct sim_world w;
    struct iox_stream_config scfg;
    struct iox_stream_server *srv;
    struct iox_stream *s;
    int state;
    struct pend pending[16];
    unsigned npending;
    unsigned nclose;
    int cause;
    size_t peer_off;               /* how far `expect peer` has read */
    struct sbuf backlog;           /* bytes "in the socket": no recv armed to take them yet */
    size_t backlog_off;
    struct sbuf want;              /* the answers owed, in message order */
};

static struct sw world;

static long on_data(struct iox_stream *s, const char *p, size_t n, void *ctx)
{
    (void)ctx;
    struct sw *g = &world;
    size_t used = 0;
    while (used < n) {
        const char *nl = memchr(p + used, '\n', n - used);
        if (!nl) break;
        size_t len = (size_t)(nl - (p + used));
        char line[320];
        snprintf(line, sizeof line, "%.*s", (int)(len < 319 ? len : 319), p + used);
        if (!strcmp(line, "BAD")) {
            iox_stream_write(s, "ERR\n", 4);
            sb_put(&g->want, "ERR\n", 4);
            return -1;
        }
        if (!strcmp(line, "QUIT")) {
            iox_stream_write(s, "bye\n", 4);
            sb_put(&g->want, "bye\n", 4);
            iox_stream_close(s);
            return (long)(used + len + 1);
        }
        int id = iox_stream_reply_begin(s);
        if (id == -ENOSPC) break;                       /* offered again later */
        if (id < 0) return -1;
        if (line[0] == 'A') {
            struct pend *q = &g->pending[g->npending++];
            q->ref = iox_stream_ref(s);
            q->id = id;
            snprintf(q->line, sizeof q->line, "%.31s", line);
            sb_printf(&g->want, "%s!\n", q->line);
        } else if (!strcmp(line, "BIG")) {
            char *d = iox_stream_reply_reserve(s, id, 600);
            if (!d) return -1;
            memset(d, 'x', 599);
            d[599] = '\n';
            iox_stream_reply_commit(s, id, 600);
            iox_stream_reply_end(s, id);
            for (int i = 0; i < 599; i++) sb_put(&g->want, "x", 1);
            sb_put(&g->want, "\n", 1);
        } else {
            iox_stream_reply_write(s, id, line, strlen(line));
            iox_stream_reply_write(s, id, "\n", 1);
            iox_stream_reply_end(s, id);
            sb_printf(&g->want, "%s\n", line);
        }
        used += len + 1;
    }
    return (long)used;
}

static void on_close(struct iox_stream *s, enum iox_stream_cause cause, void *ctx)
{
    (void)s; (void)ctx;
    world.nclose++;
    world.cause = (int)cause;
}

static void trace(struct iox_stream *s, int from, int event, int to)
{
    (void)s;
    world.state = to;
    sr_took(from, event, to);
}

static void *st_open(const struct sr_script *sc, char *why, size_t wl)
{
    (void)sc;
    struct sw *g = &world;
    free(g->want.s);
    free(g->backlog.s);
    memset(g, 0, sizeof *g);
    g->scfg.on_data = on_data;
    g->scfg.on_close = on_close;
    g->scfg.idle_timeout_ms = IDLE_MS;
    g->scfg.linger_ms = 100;
    g->scfg.max_conns = 2;
    g->scfg.write_cap = 1024;
    g->scfg.max_replies = 2;
    g->scfg.max_carry = 256;
    if (sw_open(&g->w, 8, 64, 500)) { snprintf(why, wl, "sim world setup failed"); return NULL; }
    if (iox_stream_server_open(&g->w.r, &g->scfg, 0, &g->srv)) {
        sw_close(&g->w);
        snprintf(why, wl, "stream server open failed");
        return NULL;
    }
    g->state = STREAM_CONN_S_READING;
    stream_conn_trace = trace;
    g->s = iox_stream_adopt(g->srv, FD);
    if (!g->s) { snprintf(why, wl, "adopt failed"); return NULL; }
    sw_turn(&g->w);
    return g;
}

static void st_close(void *arg)
{
    struct sw *g = arg;
    stream_conn_trace = NULL;
    if (g->srv) iox_stream_server_close(g->srv);
    sw_close(&g->w);
}

static int st_state(void *arg) { return ((struct sw *)arg)->state; }

static const char *const causes[] = {"closed", "aborted", "peer_eof", "error", "timeout", "too_big", "protocol",
                                     "shutdown", NULL};

static int st_parse(struct sr_step *st, char *why, size_t wl)
{
    const char *v = st->verb, *rest = st->rest;
    if (!strcmp(v, "recv") || !strcmp(v, "recv-last") || !strcmp(v, "recv-eof")) {
        if (*rest == '"') {
            if (sr_quoted(&rest, &st->data)) { snprintf(why, wl, "unterminated string"); return -1; }
            st->has_data = 1;
            st->split = !strcmp(v, "recv");
            return 0;
        }
        if (!strcmp(v, "recv") && (!strcmp(st->arg, "eof") || !strcmp(st->arg, "-ECONNRESET") || !strcmp(st->arg, "-ENOBUFS")))
            return 0;
        snprintf(why, wl, "recv \"bytes\" | eof | -ECONNRESET | -ENOBUFS");
        return -1;
    }
    if (!strcmp(v, "send")) {
        if (strcmp(st->arg, "all") && strcmp(st->arg, "-EPIPE") && (st->num = strtol(st->arg, NULL, 10)) <= 0) {
            snprintf(why, wl, "send all | N | N/M | -EPIPE");
            return -1;
        }
        return 0;
    }
    if (!strcmp(v, "advance")) {
        if ((st->num = strtol(st->arg, NULL, 10)) <= 0) { snprintf(why, wl, "advance MS"); return -1; }
        return 0;
    }
    static const char *const plain[] = {"reply", "pause", "resume", "close", "abort", "timeout", "shutdown", NULL};
    for (int i = 0; plain[i]; i++)
        if (!strcmp(v, plain[i])) return 0;
    if (!strcmp(v, "expect")) {
        const char *a = st->arg;
        static const char *const flags[] = {"send", "no-send", "recv", "no-recv", "closed", "open", NULL};
        for (int i = 0; flags[i]; i++)
            if (!strcmp(a, flags[i])) return 0;
        if (!strcmp(a, "pending")) {
            if (sscanf(rest, "pending %ld", &st->num) != 1) { snprintf(why, wl, "expect pending N"); return -1; }
            return 0;
        }
        if (!strcmp(a, "peer")) {
            const char *q = rest + 4;
            while (*q == ' ') q++;
            if (sr_quoted(&q, &st->data)) { snprintf(why, wl, "expect peer \"bytes\""); return -1; }
            return 0;
        }
        if (!strcmp(a, "cause")) {
            char nm[32];
            if (sscanf(rest, "cause %31s", nm) != 1) { snprintf(why, wl, "expect cause NAME"); return -1; }
            for (int i = 0; causes[i]; i++)
                if (!strcmp(causes[i], nm)) { st->num = i; return 0; }
            snprintf(why, wl, "no cause \"%s\"", nm);
            return -1;
        }
        snprintf(why, wl, "unknown expectation \"%s\"", a);
        return -1;
    }
    snprintf(why, wl, "unknown step \"%s\"", v);
    return -1;
}

#define FAILF(...) do { snprintf(why, wl, __VA_ARGS__); return SR_FAIL; } while (0)

static int is_open(struct sw *g) { return g->state != STREAM_CONN_S_CLOSED; }

static int answer_oldest(struct sw *g)
{
    if (!g->npending) return -1;
    struct pend q = g->pending[0];
    memmove(g->pending, g->pending + 1, --g->npending * sizeof g->pending[0]);
    struct iox_stream *s = iox_stream_deref(q.ref);
    if (!s) return 0;
    char b[40];
    int n = snprintf(b, sizeof b, "%s!\n", q.line);
    iox_stream_reply_write(s, q.id, b, (size_t)n);
    iox_stream_reply_end(s, q.id);
    return 0;
}

/* Hand the socket's bytes to the recv while one is armed (a held or
 * throttled stream cancels it: the rest waits, as in the kernel). */
static void pump(struct sw *g)
{
    for (int guard = 0; g->backlog_off < g->backlog.n && guard < 10000; guard++) {
        long k = iox_sim_recv(g->w.sim, FD, g->backlog.s + g->backlog_off, g->backlog.n - g->backlog_off, 0);
        if (k < 0) return;
        g->backlog_off += (size_t)k;
        sw_turn(&g->w);
    }
}

/* A loop turn, then whatever the socket still holds to a recv armed by it. */
static void settle(struct sw *g)
{
    sw_turn(&g->w);
    pump(g);
}

/* Every send completed in full, the socket's bytes delivered in between
 * (a connection that resumes reading while its answers drain). */
static void send_all(struct sw *g)
{
    for (int k = 0; k < 100000 && iox_sim_has_op(g->w.sim, IOX_OP_SEND, FD); k++) {
        iox_sim_send(g->w.sim, FD, 0);
        settle(g);
    }
}

static int st_step1(struct sw *g, const struct sr_step *st, size_t split, char *why, size_t wl);

static int st_step(void *arg, const struct sr_step *st, size_t split, char *why, size_t wl)
{
    struct sw *g = arg;
    int rc = st_step1(g, st, split, why, wl);
    if (rc == SR_OK && strcmp(st->verb, "expect")) pump(g);
    return rc;
}

static int st_step1(struct sw *g, const struct sr_step *st, size_t split, char *why, size_t wl)
{
    struct iox_seam_sim *sim = g->w.sim;
    const char *v = st->verb, *a = st->arg;
#define NOOP(...) do { if (st->lenient) return SR_SKIP; FAILF(__VA_ARGS__); } while (0)
    if (!strcmp(v, "recv") && st->has_data) {
        const char *d = st->data.s;
        size_t n = st->data.n;
        if (!iox_sim_has_op(sim, IOX_OP_RECV, FD)) NOOP("no recv armed to take the bytes");
        if (split && split < n) {
            sb_put(&g->backlog, d, split);
            pump(g);
            sb_put(&g->backlog, d + split, n - split);
        } else {
            sb_put(&g->backlog, d, n);
        }
        return SR_OK;
    } else if (!strcmp(v, "recv-eof")) {
        if (iox_sim_recv(sim, FD, st->data.s, st->data.n, 0) != (long)st->data.n) NOOP("no recv armed to take the bytes");
        if (iox_sim_recv_end(sim, FD, 0) < 0) FAILF("no recv armed to end");
    } else if (!strcmp(v, "recv-last")) {
        if (iox_sim_recv_last(sim, FD, st->data.s, st->data.n) != (long)st->data.n) NOOP("no recv armed to take the bytes");
    } else if (!strcmp(v, "recv")) {
        int res = !strcmp(a, "eof") ? 0 : !strcmp(a, "-ECONNRESET") ? -ECONNRESET : -ENOBUFS;
        if (iox_sim_recv_end(sim, FD, res) < 0) NOOP("no recv armed to end");
    } else if (!strcmp(v, "send")) {
        if (!iox_sim_has_op(sim, IOX_OP_SEND, FD)) NOOP("no send in flight");
        if (!strcmp(a, "all")) send_all(g);
        else iox_sim_send(sim, FD, !strcmp(a, "-EPIPE") ? -EPIPE : (int)st->num);
    } else if (!strcmp(v, "reply")) {
        if (answer_oldest(g)) NOOP("no async reply open");
    } else if (!strcmp(v, "pause") || !strcmp(v, "resume") || !strcmp(v, "close") || !strcmp(v, "abort")) {
        if (!is_open(g)) NOOP("the stream is closed");
        if (!strcmp(v, "pause")) iox_stream_pause(g->s);
        else if (!strcmp(v, "resume")) iox_stream_resume(g->s);
        else if (!strcmp(v, "close")) iox_stream_close(g->s);
        else iox_stream_abort(g->s);
    } else if (!strcmp(v, "advance") || !strcmp(v, "timeout")) {
        sw_advance(&g->w, !strcmp(v, "timeout") ? IDLE_MS + 1 : (uint64_t)st->num);
    } else if (!strcmp(v, "shutdown")) {
        iox_reactor_begin_stop(&g->w.r);
    } else if (!strcmp(v, "expect")) {
        int sending = iox_sim_has_op(sim, IOX_OP_SEND, FD), recving = iox_sim_has_op(sim, IOX_OP_RECV, FD);
        if (!strcmp(a, "send") && !sending) FAILF("no send in flight");
        if (!strcmp(a, "no-send") && sending) FAILF("a send is in flight");
        if (!strcmp(a, "recv") && !recving) FAILF("no recv armed");
        if (!strcmp(a, "no-recv") && recving) FAILF("a recv is armed");
        if (!strcmp(a, "pending") && (long)g->npending != st->num) FAILF("%u replies open, want %ld", g->npending, st->num);
        if (!strcmp(a, "closed")) {
            unsigned cl = iox_sim_closes(sim, FD), live = iox_sim_live_ops(sim, FD);
            if (cl != 1 || live || g->nclose != 1 || is_open(g))
                FAILF("not closed once: %u closes, %u live ops, on_close %u times, state %s", cl, live, g->nclose,
                      stream_conn_state_names[g->state]);
        }
        if (!strcmp(a, "open") && (iox_sim_closes(sim, FD) || g->nclose)) FAILF("the stream is closed");
        if (!strcmp(a, "cause")) {
            if (g->nclose != 1) FAILF("on_close ran %u times", g->nclose);
            if (g->cause != st->num) FAILF("cause %s, want %s", causes[g->cause], causes[st->num]);
        }
        if (!strcmp(a, "peer")) {
            size_t n;
            const char *p = iox_sim_peer_bytes(sim, FD, &n);
            size_t k = n - g->peer_off;
            if (k != st->data.n || memcmp(p + g->peer_off, st->data.s, k)) {
                struct sbuf e = {0};
                sb_escape(&e, p ? p + g->peer_off : "", k > 60 ? 60 : k);
                snprintf(why, wl, "the peer got \"%s\"%s (%zu bytes), want %zu bytes", e.s ? e.s : "", k > 60 ? "..." : "", k,
                         st->data.n);
                free(e.s);
                return SR_FAIL;
            }
            g->peer_off = n;
        }
        return SR_OK;
    }
#undef NOOP
    sw_turn(&g->w);
    return SR_OK;
}

static int st_finish(void *arg, char *why, size_t wl)
{
    struct sw *g = arg;
    struct iox_seam_sim *sim = g->w.sim;
    pump(g);
    while (g->npending) { answer_oldest(g); sw_turn(&g->w); }
    send_all(g);
    if (iox_sim_recv_end(sim, FD, 0) == 0) sw_turn(&g->w);
    send_all(g);
    for (int k = 0; k < 4 && is_open(g); k++) {
        sw_advance(&g->w, 60000);
        sw_turn(&g->w);
        send_all(g);
    }
    if (iox_sim_closes(sim, FD) != 1 || iox_sim_live_ops(sim, FD) || g->nclose != 1 || is_open(g))
        FAILF("at the end: %u closes, %u live ops, on_close %u times, state %s", iox_sim_closes(sim, FD),
              iox_sim_live_ops(sim, FD), g->nclose, stream_conn_state_names[g->state]);
    if (iox_sim_bufs_lent(sim) || iox_sim_violations(sim))
        FAILF("at the end: %u buffers not returned, %u violations (%s)", iox_sim_bufs_lent(sim), iox_sim_violations(sim),
              iox_sim_last_violation(sim));
    size_t n;
    const char *p = iox_sim_peer_bytes(sim, FD, &n);
    if (n > g->want.n || (n && memcmp(p, g->want.s, n)))
        FAILF("the peer's %zu bytes are not a prefix of the %zu owed in message order", n, g->want.n);
    return 0;
}

/* A trail line of generated/stream_conn.pml's @@script table as a step. */
static int from_trail(const char *t, char *out, size_t cap)
{
    if (!strncmp(t, "cancel ", 7) || !strncmp(t, "close 0", 7) || !strncmp(t, "shutdown(SHUT_WR)", 17) ||
        strstr(t, "-ECANCELED") || t[0] == '(')
        return 0;
    if (!strcmp(t, "recv 0")) snprintf(out, cap, "recv eof");
    else if (!strncmp(t, "recv \"", 6) && strstr(t, "(no F_MORE)")) snprintf(out, cap, "recv-last \"PING\\n\"");
    else if (!strncmp(t, "recv \"", 6)) snprintf(out, cap, "recv \"PING\\n\"");
    else if (!strncmp(t, "send ", 5) && strchr(t, '/')) snprintf(out, cap, "send %d", atoi(t + 5));
    else snprintf(out, cap, "%s", t);
    return 1;
}

static const char *const stream_unreached[] = {NULL};

extern const struct sr_vocab stream_conn_vocab;
const struct sr_vocab stream_conn_vocab = {
    .machine = "stream_conn",
    .state_names = stream_conn_state_names,
    .nstates = STREAM_CONN_STATE_COUNT,
    .event_names = stream_conn_event_names,
    .nevents = STREAM_CONN_EVENT_COUNT,
    .parse = st_parse,
    .open = st_open,
    .step = st_step,
    .state = st_state,
    .finish = st_finish,
    .close = st_close,
    .from_trail = from_trail,
    .unreached_ok = stream_unreached,
};

IOX_TEST(machine_scripts, stream_conn_corpus)
{
    unsigned cases = 0, runs = 0;
    unsigned failures = sr_run_corpus(&stream_conn_vocab, &cases, &runs);
    CU_ASSERT(cases >= 15);
    CU_ASSERT_EQUAL(failures, 0);
}
