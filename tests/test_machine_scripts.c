/* test_machine_scripts.c — completion scripts as data (issue 15 §2): the
 * http_conn vocabulary of the generic runner (tests/script_runner.h). The
 * corpus tests/data/machines/http_conn/NAME.md drives one HTTP connection
 * through the simulated ring, completion by completion, and checks what it
 * submits and answers along the way. The other machines' vocabularies are
 * tests/test_scripts_{pg,file,stream,client}.c, in the same suite.
 *
 * A case is a "## heading", one sentence on why it exists, and a ```script
 * block, one step a line (# starts a comment):
 *   recv "bytes"        bytes arrive on the multishot recv (escapes \r \n
 *                       \t \0 \\ \" \xHH); replayed whole, then split at
 *                       every byte into two deliveries with a turn between.
 *                       A recv must be armed when the step begins; bytes it
 *                       no longer takes (the connection throttled or held
 *                       after the first piece) stay in the socket and are
 *                       delivered once a recv is armed again
 *   recv "bytes" xN     the bytes N times over, in one step (not cut)
 *   recv-last "bytes"   bytes arrive and the multishot recv ends with them
 *                       (no F_MORE: the kernel stopped it); not split
 *   recv eof            the recv ends: 0 (EOF), or an error: recv -ECONNRESET,
 *   recv -ENOBUFS       recv -ENOBUFS (the buffer ring ran dry)
 *   send N | send -EPIPE  the oldest send completes N bytes (short) or fails
 *   send all            every send completes in full, until none is left
 *   reply "body"        the oldest pending async request (GET /async) is
 *                       answered 200 with body, and marked done
 *   release             the body piece POST /hold held is released
 *                       (iox_req_body_release): handed again, and taken
 *   advance MS          the clock moves MS milliseconds
 *   timeout             the clock moves past the idle timeout (1000 ms)
 *   shutdown            the server begins to stop
 *   expect send | no-send          a send is (not) in flight
 *   expect recv | no-recv          a recv is (not) armed
 *   expect state NAME              the machine's state (http_conn_state_names;
 *                                  a freed slot is `closed`)
 *   expect took FROM/EVENT         that transition ran (script_runner.h)
 *   expect answer STATUS "body"    the next answer the peer received has
 *                                  that status and content (body -: any;
 *                                  head: a HEAD answer, no content framed)
 *   expect silence                 nothing received beyond the answers read
 *   expect pending N               N async requests wait for a reply
 *   expect closed | open           the socket closed exactly once (and no op
 *                                  is live on it) / still open
 * Every step is followed by a loop turn. After the script, whatever it left
 * open is closed by the peer, and the books must balance: every provided
 * buffer back, one close, no op after it, no violation; everything received
 * must satisfy the independent response model (tests/http_oracle.c).
 * Failures are reported as file.md:line, with the split that broke it.
 *
 * The application: GET / → 200 "ok"; /async → answered by `reply` (at most
 * 2 outstanding: max_async); /big → 10 000 × 'b'; /huge → 1.5 MiB of 'h'
 * (over the 1 MiB write cap); POST /hold → the body streamed, its first
 * piece held until `release`, then 200 "body"; /status/NNN → that status,
 * body "body"; else 404 "nf". */
#include "http_conn_machine.h"
#include "http_oracle.h"
#include "iox_test.h"
#include "sbuf.h"
#include "script_runner.h"
#include "sim_world.h"
#include <errno.h>
#include <ioxide/http_conn.h>
#include <ioxide/log.h>
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD 9
#define IDLE_MS 1000

/* ---- the application ---- */

static struct iox_conn_ref pend[64];
static unsigned npend;
static char big[10000];
static char huge[3 << 19];           /* 1.5 MiB: over the 1 MiB write cap */
static int hold_next, held;           /* POST /hold: hold the first body piece */

static int body_piece(struct iox_conn *c, const char *data, size_t len, int status, void *arg)
{
    (void)data; (void)len; (void)arg;
    if (status == IOX_BODY_PIECE) {
        if (hold_next) { hold_next = 0; held = 1; return IOX_BODY_HOLD; }
        return IOX_BODY_OK;
    }
    if (status == IOX_BODY_END) {
        iox_resp_simple(c, 200, "text/plain", "body", 4);
        iox_conn_async_done(c);
    }
    return IOX_BODY_OK;
}

static int on_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    if (req->path_len == 1 && req->path[0] == '/') {
        iox_resp_simple(c, 200, "text/plain", "ok", 2);
    } else if (req->path_len == 6 && !memcmp(req->path, "/async", 6) && npend < 64) {
        pend[npend++] = iox_conn_ref(c);
        return IOX_ASYNC;
    } else if (req->path_len == 5 && !memcmp(req->path, "/huge", 5)) {
        iox_resp_simple(c, 200, "text/plain", huge, sizeof huge);
    } else if (req->path_len == 5 && !memcmp(req->path, "/hold", 5)) {
        hold_next = 1;
        iox_req_body_stream(c, req, body_piece, NULL);
        return IOX_ASYNC;
    } else if (req->path_len == 4 && !memcmp(req->path, "/big", 4)) {
        iox_resp_simple(c, 200, "text/plain", big, sizeof big);
    } else if (req->path_len == 11 && !memcmp(req->path, "/status/", 8)) {
        int st = (req->path[8] - '0') * 100 + (req->path[9] - '0') * 10 + (req->path[10] - '0');
        iox_resp_simple(c, st, "text/plain", "body", 4);
    } else {
        iox_resp_simple(c, 404, "text/plain", "nf", 2);
    }
    return IOX_HANDLED;
}
static const struct iox_http_app app = {on_request};

/* ---- one connection on a simulated ring ---- */

struct rig {
    struct sim_world w;
    struct iox_http_config hcfg;
    struct iox_http_server *hs;
    struct iox_conn *c;
    size_t read_off;          /* how far `expect answer` has read the peer's bytes */
    struct sbuf sent;         /* every byte the peer sent (for the response model) */
    struct sbuf backlog;      /* bytes "in the socket": no recv armed to take them yet */
    size_t backlog_off;
};

static void trace(struct iox_conn *c, int from, int event, int to) { (void)c; sr_took(from, event, to); }

static void *rig_open(const struct sr_script *sc, char *why, size_t wl)
{
    (void)sc;
    static struct rig rig;
    struct rig *g = &rig;
    memset(g, 0, sizeof *g);
    memset(big, 'b', sizeof big);
    memset(huge, 'h', sizeof huge);
    npend = 0;
    hold_next = held = 0;
    g->hcfg.idle_timeout_ms = IDLE_MS;
    g->hcfg.linger_ms = 100;
    g->hcfg.max_conns = 2;
    g->hcfg.write_cap = 1 << 20;
    g->hcfg.max_async = 2;
    g->hcfg.app = &app;
    if (sw_open(&g->w, 8, 64, 500)) { snprintf(why, wl, "sim world setup failed"); return NULL; }
    if (iox_http_server_open(&g->w.r, &g->hcfg, 0, &g->hs) != 0) {
        sw_close(&g->w);
        snprintf(why, wl, "http server setup failed");
        return NULL;
    }
    snprintf(g->hs->date, sizeof g->hs->date, "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n");
    http_conn_trace = trace;
    g->c = iox_http_adopt(g->hs, FD);
    if (!g->c) {
        iox_http_server_close(g->hs);
        sw_close(&g->w);
        snprintf(why, wl, "adopt failed");
        return NULL;
    }
    sw_turn(&g->w);
    return g;
}

static void rig_close(void *arg)
{
    struct rig *g = arg;
    http_conn_trace = NULL;
    iox_http_server_close(g->hs);
    sw_close(&g->w);
    free(g->sent.s);
    free(g->backlog.s);
}

static int is_open(struct rig *g) { return g->hs->nconns > 0; }

static int rig_state(void *arg)
{
    struct rig *g = arg;
    return is_open(g) ? (int)g->c->state : HTTP_CONN_S_CLOSED;
}

/* ---- scripts ---- */

/* Check one step line (the core has split verb and arg). 0, or -1 with why. */
static int parse_step(struct sr_step *st, char *why, size_t wl)
{
    const char *rest = st->rest;
    if (!strcmp(st->verb, "recv-last")) {
        if (sr_quoted(&rest, &st->data)) { snprintf(why, wl, "recv-last needs quoted bytes"); return -1; }
        st->has_data = 1;
        return 0;
    }
    if (!strcmp(st->verb, "recv") || !strcmp(st->verb, "reply")) {
        if (*rest == '"') {
            if (sr_quoted(&rest, &st->data)) { snprintf(why, wl, "unterminated string"); return -1; }
            st->has_data = 1;
            st->split = !strcmp(st->verb, "recv");
            strcpy(st->arg, "bytes");
            long times;
            if (!strcmp(st->verb, "recv") && sscanf(rest, " x%ld", &times) == 1) {   /* "bytes" xN: N times, not cut */
                if (times < 1 || times > 100000) { snprintf(why, wl, "recv \"bytes\" xN: 1 <= N <= 100000"); return -1; }
                size_t one = st->data.n;
                char *unit = malloc(one);
                if (!unit) abort();
                memcpy(unit, st->data.s, one);           /* sb_put may move st->data.s */
                for (long k = 1; k < times; k++) sb_put(&st->data, unit, one);
                free(unit);
                st->split = 0;
            }
        } else if (!strcmp(st->verb, "reply")) {
            snprintf(why, wl, "reply needs a quoted body"); return -1;
        } else if (strcmp(st->arg, "eof") && strcmp(st->arg, "-ECONNRESET") && strcmp(st->arg, "-ENOBUFS")) {
            snprintf(why, wl, "recv takes \"bytes\", eof, -ECONNRESET or -ENOBUFS"); return -1;
        }
        return 0;
    }
    if (!strcmp(st->verb, "send")) {
        if (strcmp(st->arg, "all") && strcmp(st->arg, "-EPIPE") && (st->num = strtol(st->arg, NULL, 10)) <= 0) {
            snprintf(why, wl, "send takes N > 0, all or -EPIPE"); return -1;
        }
        return 0;
    }
    if (!strcmp(st->verb, "advance")) {
        if ((st->num = strtol(st->arg, NULL, 10)) <= 0) { snprintf(why, wl, "advance takes milliseconds"); return -1; }
        return 0;
    }
    if (!strcmp(st->verb, "timeout") || !strcmp(st->verb, "shutdown") || !strcmp(st->verb, "release")) return 0;
    if (!strcmp(st->verb, "expect")) {
        static const char *const plain[] = {"send", "no-send", "recv", "no-recv", "silence", "closed", "open"};
        for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
            if (!strcmp(st->arg, plain[i])) return 0;
        if (!strcmp(st->arg, "pending")) {
            if (sscanf(rest, "pending %ld", &st->num) != 1) { snprintf(why, wl, "expect pending N"); return -1; }
            return 0;
        }
        if (!strcmp(st->arg, "answer")) {
            const char *q = rest + strlen("answer");
            while (*q == ' ') q++;
            char *e;
            st->num = strtol(q, &e, 10);
            if (e == q || st->num < 100 || st->num > 599) { snprintf(why, wl, "expect answer STATUS \"body\" | - | head"); return -1; }
            q = e;
            while (*q == ' ') q++;
            if (*q == '"') {
                if (sr_quoted(&q, &st->data)) { snprintf(why, wl, "unterminated string"); return -1; }
                st->has_data = 1;
            } else if (!strncmp(q, "head", 4)) {
                st->has_data = 2;
            } else if (*q != '-') { snprintf(why, wl, "expect answer STATUS \"body\" | - | head"); return -1; }
            return 0;
        }
        snprintf(why, wl, "unknown expectation \"%s\"", st->arg);
        return -1;
    }
    snprintf(why, wl, "unknown step \"%s\"", st->verb);
    return -1;
}

/* Read the next answer out of the peer's bytes: status and content. 1, 0
 * when none is complete, -1 when it is malformed. */
static int next_answer(struct rig *g, int head, int *status, const char **body, size_t *blen)
{
    size_t n;
    const char *all = iox_sim_peer_bytes(g->w.sim, FD, &n);
    if (g->read_off >= n) return 0;
    const char *p = all + g->read_off, *e = all + n;
    const char *hend = memmem(p, (size_t)(e - p), "\r\n\r\n", 4);
    if (!hend) return 0;
    if (e - p < 12 || memcmp(p, "HTTP/1.1 ", 9)) return -1;
    *status = atoi(p + 9);
    long cl = 0;
    const char *h = memmem(p, (size_t)(hend - p), "\r\nContent-Length: ", 18);
    if (h) cl = strtol(h + 18, NULL, 10);
    if (head || *status == 204 || *status == 304 || *status < 200) cl = 0;
    const char *b = hend + 4;
    if (e - b < cl) return 0;
    *body = b;
    *blen = (size_t)cl;
    g->read_off = (size_t)(b + cl - all);
    return 1;
}

#define FAILF(...) do { snprintf(why, wl, __VA_ARGS__); return -1; } while (0)

/* Hand the socket's bytes to the recv while one is armed (a throttled or
 * held connection cancels it: the rest waits, as in the kernel). */
static void pump(struct rig *g)
{
    for (int guard = 0; g->backlog_off < g->backlog.n && guard < 10000; guard++) {
        long k = iox_sim_recv(g->w.sim, FD, g->backlog.s + g->backlog_off, g->backlog.n - g->backlog_off, 0);
        if (k < 0) return;
        g->backlog_off += (size_t)k;
        sw_turn(&g->w);
    }
}

/* A loop turn, then whatever the socket still holds to a recv armed by it. */
static void settle(struct rig *g)
{
    sw_turn(&g->w);
    pump(g);
}

/* Every send completed in full, the socket's bytes delivered in between
 * (a connection that resumes reading while its answers drain). */
static void send_all(struct rig *g)
{
    for (int k = 0; k < 100000 && iox_sim_has_op(g->w.sim, IOX_OP_SEND, FD); k++) {
        iox_sim_send(g->w.sim, FD, 0);
        settle(g);
    }
}

static int run_step1(struct rig *g, const struct sr_step *st, size_t split, char *why, size_t wl);

/* One step. SR_OK, SR_FAIL with why, or SR_SKIP (a lenient step with
 * nothing in flight to complete). split: for a recv, deliver [0, split)
 * and [split, n) apart (0: whole). After every step but an expectation,
 * bytes left in the socket go to a recv if one is armed. */
static int run_step(void *arg, const struct sr_step *st, size_t split, char *why, size_t wl)
{
    struct rig *g = arg;
    int rc = run_step1(g, st, split, why, wl);
    if (rc == SR_OK && strcmp(st->verb, "expect")) pump(g);
    return rc;
}

static int run_step1(struct rig *g, const struct sr_step *st, size_t split, char *why, size_t wl)
{
    struct iox_seam_sim *sim = g->w.sim;
    const char *v = st->verb, *a = st->arg;
#define NOOP(...) do { if (st->lenient) return SR_SKIP; FAILF(__VA_ARGS__); } while (0)
    if (!strcmp(v, "recv")) {
        if (st->has_data) {
            const char *d = st->data.s;
            size_t n = st->data.n;
            if (st->lenient && (!is_open(g) || !g->c->sk.recv_armed)) return SR_SKIP;
            if (!iox_sim_has_op(sim, IOX_OP_RECV, FD)) FAILF("no recv armed to take the bytes");
            sb_put(&g->sent, d, n);
            if (split && split < n) {
                sb_put(&g->backlog, d, split);
                pump(g);
                sb_put(&g->backlog, d + split, n - split);
            } else {
                sb_put(&g->backlog, d, n);
            }
        } else {
            int res = !strcmp(a, "eof") ? 0 : !strcmp(a, "-ECONNRESET") ? -ECONNRESET : -ENOBUFS;
            if (iox_sim_recv_end(sim, FD, res) < 0) NOOP("no recv armed to end");
        }
    } else if (!strcmp(v, "recv-last")) {
        sb_put(&g->sent, st->data.s, st->data.n);
        if (iox_sim_recv_last(sim, FD, st->data.s, st->data.n) != (long)st->data.n) FAILF("no recv armed to take the bytes");
    } else if (!strcmp(v, "send")) {
        if (!strcmp(a, "all")) {
            if (!iox_sim_has_op(sim, IOX_OP_SEND, FD)) NOOP("no send in flight");
            send_all(g);
        } else if (iox_sim_send(sim, FD, !strcmp(a, "-EPIPE") ? -EPIPE : (int)st->num) < 0) {
            NOOP("no send in flight");
        }
    } else if (!strcmp(v, "reply")) {
        if (!npend) NOOP("no async request waits for a reply");
        struct iox_conn_ref ref = pend[0];
        memmove(pend, pend + 1, --npend * sizeof pend[0]);
        struct iox_conn *c = iox_conn_deref(ref);
        if (c) {
            iox_resp_simple(c, 200, "text/plain", st->data.s, st->data.n);
            iox_conn_async_done(c);
        }
    } else if (!strcmp(v, "advance") || !strcmp(v, "timeout")) {
        sw_advance(&g->w, !strcmp(v, "timeout") ? IDLE_MS + 1 : (uint64_t)st->num);
    } else if (!strcmp(v, "shutdown")) {
        iox_reactor_begin_stop(&g->w.r);
    } else if (!strcmp(v, "release")) {
        if (!held || !is_open(g)) NOOP("no body piece is held");
        held = 0;
        iox_req_body_release(g->c);
    } else if (!strcmp(v, "expect")) {
        int sending = iox_sim_has_op(sim, IOX_OP_SEND, FD);
        int recving = is_open(g) && g->c->sk.recv_armed;
        if (!strcmp(a, "send") && !sending) FAILF("no send in flight");
        if (!strcmp(a, "no-send") && sending) FAILF("a send is in flight");
        if (!strcmp(a, "recv") && !recving) FAILF("no recv armed");
        if (!strcmp(a, "no-recv") && recving) FAILF("a recv is armed");
        if (!strcmp(a, "closed")) {
            unsigned cl = iox_sim_closes(sim, FD), live = iox_sim_live_ops(sim, FD);
            if (cl != 1 || live || is_open(g)) FAILF("not closed exactly once: %u closes, %u live ops, %s", cl, live,
                                                     is_open(g) ? "still in the table" : "slot free");
        }
        if (!strcmp(a, "open") && (!is_open(g) || iox_sim_closes(sim, FD))) FAILF("the connection is closed");
        if (!strcmp(a, "pending") && (long)npend != st->num) FAILF("%u async requests pending, want %ld", npend, st->num);
        if (!strcmp(a, "silence")) {
            size_t n;
            iox_sim_peer_bytes(sim, FD, &n);
            if (n > g->read_off) FAILF("%zu bytes received beyond the answers expected", n - g->read_off);
        }
        if (!strcmp(a, "answer")) {
            int status;
            const char *b;
            size_t bl;
            int k = next_answer(g, st->has_data == 2, &status, &b, &bl);
            if (k == 0) FAILF("no complete answer received");
            if (k < 0) FAILF("what was received is not an HTTP/1.1 answer");
            if (status != st->num) FAILF("answer %d, want %ld", status, st->num);
            if (st->has_data == 1 && (bl != st->data.n || memcmp(b, st->data.s, bl)))
                FAILF("answer content \"%.*s\" (%zu bytes), want \"%.*s\"", (int)(bl > 40 ? 40 : bl), b, bl,
                      (int)(st->data.n > 40 ? 40 : st->data.n), st->data.s);
        }
        return SR_OK;              /* expectations do not turn the loop */
    }
#undef NOOP
    sw_turn(&g->w);
    return SR_OK;
}

/* After the script: the peer goes away; whatever was left must end cleanly,
 * and the books balance. */
static int rig_finish(void *arg, char *why, size_t wl)
{
    struct rig *g = arg;
    struct iox_seam_sim *sim = g->w.sim;
    pump(g);
    send_all(g);
    while (npend) {
        struct iox_conn *c = iox_conn_deref(pend[--npend]);
        if (c) { iox_resp_simple(c, 200, "text/plain", "late", 4); iox_conn_async_done(c); }
        sw_turn(&g->w);
    }
    if (is_open(g) && iox_sim_recv_end(sim, FD, 0) == 0) sw_turn(&g->w);
    send_all(g);
    for (int k = 0; k < 4 && is_open(g); k++) {
        sw_advance(&g->w, 60000);
        sw_turn(&g->w);
        send_all(g);
    }
    if (iox_sim_closes(sim, FD) != 1 || iox_sim_live_ops(sim, FD) || is_open(g))
        FAILF("at the end: %u closes, %u live ops, %s", iox_sim_closes(sim, FD), iox_sim_live_ops(sim, FD),
              is_open(g) ? "still open" : "slot free");
    if (iox_sim_bufs_lent(sim) || iox_sim_violations(sim))
        FAILF("at the end: %u buffers not returned, %u violations (%s)", iox_sim_bufs_lent(sim),
              iox_sim_violations(sim), iox_sim_last_violation(sim));
    size_t n;
    const char *out = iox_sim_peer_bytes(sim, FD, &n);
    char ow[240];
    if (http_oracle_check(g->sent.s ? g->sent.s : "", g->sent.n, out, n, NULL, NULL, ORACLE_PARTIAL, ow, sizeof ow) < 0)
        FAILF("the response model refuses what was received: %s", ow);
    return 0;
}

/* A SPIN trail line (generated/http_conn.pml's @@script table) as a step:
 * the model's recv 0 is EOF, its short send 5/9 a 5-byte send; cancels,
 * closes and shutdown(SHUT_WR) are completed by the turn. */
static int from_trail(const char *t, char *out, size_t cap)
{
    if (!strncmp(t, "cancel ", 7) || !strncmp(t, "close ", 6) || !strncmp(t, "shutdown(SHUT_WR)", 17)) return 0;
    if (!strcmp(t, "recv -ECANCELED") || !strcmp(t, "send -ECANCELED") || !strncmp(t, "body release", 12)) return 0;
    if (!strcmp(t, "recv 0")) snprintf(out, cap, "recv eof");
    else if (!strncmp(t, "send ", 5) && strchr(t, '/')) snprintf(out, cap, "send %d", atoi(t + 5));
    else if (!strncmp(t, "recv \"", 6) && strstr(t, "(no F_MORE)")) snprintf(out, cap, "recv-last %.*s", (int)(strstr(t, " (no F_MORE)") - t - 5), t + 5);
    else if (!strcmp(t, "reply")) snprintf(out, cap, "reply \"late\"");
    else snprintf(out, cap, "%s", t);
    return 1;
}

static const char *const http_unreached[] = {NULL};

extern const struct sr_vocab http_conn_vocab;
const struct sr_vocab http_conn_vocab = {
    .machine = "http_conn",
    .state_names = http_conn_state_names,
    .nstates = HTTP_CONN_STATE_COUNT,
    .event_names = http_conn_event_names,
    .nevents = HTTP_CONN_EVENT_COUNT,
    .parse = parse_step,
    .open = rig_open,
    .step = run_step,
    .state = rig_state,
    .finish = rig_finish,
    .close = rig_close,
    .from_trail = from_trail,
    .unreached_ok = http_unreached,
};

IOX_TEST(machine_scripts, http_conn_corpus)
{
    unsigned cases = 0, runs = 0;
    unsigned failures = sr_run_corpus(&http_conn_vocab, &cases, &runs);
    CU_ASSERT(cases >= 10);
    CU_ASSERT_EQUAL(failures, 0);
}

/* ---- trails: SPIN counterexamples replayed in the real machines ---- */

extern const struct sr_vocab pg_conn_vocab, file_stream_vocab, stream_conn_vocab, stream_client_vocab;

/* Every tests/data/machines/MACHINE/trails/NAME.trail: the counterexample
 * `make verify` printed for a mutated spec (tests/data/verify/), replayed
 * through the real machine (which is right): its steps must land and the
 * books balance (socket closed once, every op ended, buffers back). */
IOX_TEST(machine_scripts, trails_replay)
{
    const struct sr_vocab *vs[] = {&http_conn_vocab, &pg_conn_vocab, &file_stream_vocab, &stream_conn_vocab,
                                   &stream_client_vocab};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/tests/data/machines/%s/trails", iox_test_src_dir(), vs[i]->machine);
        DIR *d = opendir(dir);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        unsigned n = 0;
        for (struct dirent *e; (e = readdir(d));) {
            size_t l = strlen(e->d_name);
            if (l < 7 || strcmp(e->d_name + l - 6, ".trail")) continue;
            char rel[400];
            snprintf(rel, sizeof rel, "tests/data/machines/%s/trails/%s", vs[i]->machine, e->d_name);
            unsigned applied = 0, skipped = 0;
            int rc = sr_run_trail(vs[i], rel, &applied, &skipped);
            CU_ASSERT_EQUAL(rc, 0);
            CU_ASSERT(applied >= 1);
            fprintf(stderr, " [%s: %u steps applied, %u skipped] ", rel, applied, skipped);
            n++;
        }
        closedir(d);
        CU_ASSERT(n >= 1);   /* one committed example per machine */
    }
}

static int quiet_level;
static int suite_init(void)
{
    quiet_level = iox_log_level;
    if (!getenv("IOX_LOG")) iox_log_level = -1;   /* expected connection losses */
    return 0;
}
static int suite_clean(void) { iox_log_level = quiet_level; return 0; }

IOX_SUITE(machine_scripts, suite_init, suite_clean);
