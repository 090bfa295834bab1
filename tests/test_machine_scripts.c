/* test_machine_scripts.c — completion scripts as data (issue 15 §2): the
 * corpus tests/data/machines/http_conn/NAME.md drives one HTTP connection
 * through the simulated ring, completion by completion, and checks what it
 * submits and answers along the way.
 *
 * A case is a "## heading", one sentence on why it exists, and a ```script
 * block, one step a line (# starts a comment):
 *   recv "bytes"        bytes arrive on the multishot recv (escapes \r \n
 *                       \t \0 \\ \" \xHH); replayed whole, then split at
 *                       every byte into two deliveries with a turn between
 *   recv-last "bytes"   bytes arrive and the multishot recv ends with them
 *                       (no F_MORE: the kernel stopped it); not split
 *   recv eof            the recv ends: 0 (EOF), or an error: recv -ECONNRESET,
 *   recv -ENOBUFS       recv -ENOBUFS (the buffer ring ran dry)
 *   send N | send -EPIPE  the oldest send completes N bytes (short) or fails
 *   send all            every send completes in full, until none is left
 *   reply "body"        the oldest pending async request (GET /async) is
 *                       answered 200 with body, and marked done
 *   advance MS          the clock moves MS milliseconds
 *   timeout             the clock moves past the idle timeout (1000 ms)
 *   shutdown            the server begins to stop
 *   expect send | no-send          a send is (not) in flight
 *   expect recv | no-recv          a recv is (not) armed
 *   expect state NAME              the machine's state (http_conn_state_names)
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
 * The application: GET / → 200 "ok"; /async → answered by `reply`; /big →
 * 10 000 × 'b'; /status/NNN → that status, body "body"; else 404 "nf". */
#include "http_conn_machine.h"
#include "http_oracle.h"
#include "iox_test.h"
#include "sbuf.h"
#include <errno.h>
#include <ioxide/http_conn.h>
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
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

static int on_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    if (req->path_len == 1 && req->path[0] == '/') {
        iox_resp_simple(c, 200, "text/plain", "ok", 2);
    } else if (req->path_len == 6 && !memcmp(req->path, "/async", 6) && npend < 64) {
        pend[npend++] = iox_conn_ref(c);
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
    struct iox_seam_sim *sim;
    struct iox_reactor r;
    struct iox_server_config cfg;
    struct iox_http_config hcfg;
    struct iox_http_server *hs;
    struct iox_conn *c;
    uint64_t now;
    size_t read_off;          /* how far `expect answer` has read the peer's bytes */
};

static void sink(void *ctx, const struct iox_cqe *cqe) { iox_reactor_dispatch(ctx, cqe); }

static void turn(struct rig *g)
{
    do {
        iox_sim_publish(g->sim);
        iox_reactor_flush(&g->r);
    } while (iox_sim_pump(g->sim) > 0);
}

static int rig_open(struct rig *g)
{
    memset(g, 0, sizeof *g);
    memset(big, 'b', sizeof big);
    npend = 0;
    g->hcfg.idle_timeout_ms = IDLE_MS;
    g->hcfg.linger_ms = 100;
    g->hcfg.max_conns = 2;
    g->hcfg.write_cap = 1 << 20;
    g->hcfg.app = &app;
    g->cfg.shutdown_grace_ms = 500;
    g->sim = iox_sim_create(8, 64);
    if (!g->sim) return -1;
    if (iox_reactor_init_sim(&g->r, iox_sim_seam(g->sim), &g->cfg) != 0) return -1;
    if (iox_http_server_open(&g->r, &g->hcfg, 0, &g->hs) != 0) return -1;
    iox_sim_set_sink(g->sim, sink, &g->r);
    snprintf(g->hs->date, sizeof g->hs->date, "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n");
    g->now = g->r.now_ms;
    g->c = iox_http_adopt(g->hs, FD);
    if (!g->c) return -1;
    turn(g);
    return 0;
}

static void rig_close(struct rig *g)
{
    iox_http_server_close(g->hs);
    iox_reactor_fini(&g->r);
    iox_sim_destroy(g->sim);
}

static int is_open(struct rig *g) { return g->hs->nconns > 0; }

/* Deliver bytes in buffer-sized pieces, re-delivering what an ENOBUFS left. */
static int deliver(struct rig *g, const char *p, size_t n)
{
    size_t done = 0;
    for (int guard = 0; done < n && guard < 10000; guard++) {
        long k = iox_sim_recv(g->sim, FD, p + done, n - done, 0);
        if (k < 0) return -1;
        done += (size_t)k;
        turn(g);
    }
    return done == n ? 0 : -1;
}

/* ---- scripts ---- */

enum { MAXSTEPS = 128 };
struct step {
    int line;
    char verb[16], arg[32];
    struct sbuf data;         /* recv/reply/answer bytes */
    int has_data;
    long num;
};
struct script {
    const char *file;
    char name[160];
    int line;
    struct step st[MAXSTEPS];
    int n;
};

/* A quoted string with escapes, from *p; advances *p. 0, or -1. */
static int quoted(const char **p, struct sbuf *out)
{
    const char *s = *p;
    if (*s != '"') return -1;
    s++;
    const char *b = s;
    while (*s && *s != '"') s += (*s == '\\' && s[1]) ? 2 : 1;
    if (*s != '"') return -1;
    sb_unescape(out, b, (size_t)(s - b));
    if (!out->s) sb_put(out, "", 0);
    *p = s + 1;
    return 0;
}

/* Parse one step line into st. 0, or -1 with why. */
static int parse_step(const char *l, struct step *st, char *why, size_t wl)
{
    memset(st, 0, sizeof *st);
    int n = 0;
    if (sscanf(l, "%15s %31s%n", st->verb, st->arg, &n) < 1) { snprintf(why, wl, "empty step"); return -1; }
    const char *rest = strchr(l, ' ');
    rest = rest ? rest + 1 : l + strlen(l);
    if (!strcmp(st->verb, "recv-last")) {
        if (quoted(&rest, &st->data)) { snprintf(why, wl, "recv-last needs quoted bytes"); return -1; }
        st->has_data = 1;
        return 0;
    }
    if (!strcmp(st->verb, "recv") || !strcmp(st->verb, "reply")) {
        if (*rest == '"') {
            if (quoted(&rest, &st->data)) { snprintf(why, wl, "unterminated string"); return -1; }
            st->has_data = 1;
            strcpy(st->arg, "bytes");
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
    if (!strcmp(st->verb, "timeout") || !strcmp(st->verb, "shutdown")) return 0;
    if (!strcmp(st->verb, "expect")) {
        static const char *const plain[] = {"send", "no-send", "recv", "no-recv", "silence", "closed", "open"};
        for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
            if (!strcmp(st->arg, plain[i])) return 0;
        if (!strcmp(st->arg, "state")) {
            char nm[32];
            if (sscanf(rest, "state %31s", nm) != 1) { snprintf(why, wl, "expect state NAME"); return -1; }
            sb_put(&st->data, nm, strlen(nm));
            for (int s = 0; s < HTTP_CONN_STATE_COUNT; s++)
                if (!strcmp(http_conn_state_names[s], nm)) { st->num = s; return 0; }
            snprintf(why, wl, "no state \"%s\" in http_conn", nm);
            return -1;
        }
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
                if (quoted(&q, &st->data)) { snprintf(why, wl, "unterminated string"); return -1; }
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
    const char *all = iox_sim_peer_bytes(g->sim, FD, &n);
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

/* One step. 0, or -1 with why. split: for a recv, deliver [0, split) and
 * [split, n) apart (0: whole). */
static int run_step(struct rig *g, const struct step *st, size_t split, char *why, size_t wl)
{
    const char *v = st->verb, *a = st->arg;
    if (!strcmp(v, "recv")) {
        if (st->has_data) {
            const char *d = st->data.s;
            size_t n = st->data.n;
            if (split && split < n) {
                if (deliver(g, d, split) || deliver(g, d + split, n - split)) FAILF("no recv armed to take the bytes");
            } else if (deliver(g, d, n)) FAILF("no recv armed to take the bytes");
        } else {
            int res = !strcmp(a, "eof") ? 0 : !strcmp(a, "-ECONNRESET") ? -ECONNRESET : -ENOBUFS;
            if (iox_sim_recv_end(g->sim, FD, res) < 0) FAILF("no recv armed to end");
        }
    } else if (!strcmp(v, "recv-last")) {
        if (iox_sim_recv_last(g->sim, FD, st->data.s, st->data.n) != (long)st->data.n) FAILF("no recv armed to take the bytes");
    } else if (!strcmp(v, "send")) {
        if (!strcmp(a, "all")) {
            if (!iox_sim_has_op(g->sim, IOX_OP_SEND, FD)) FAILF("no send in flight");
            for (int k = 0; k < 1000 && iox_sim_has_op(g->sim, IOX_OP_SEND, FD); k++) {
                iox_sim_send(g->sim, FD, 0);
                turn(g);
            }
        } else if (iox_sim_send(g->sim, FD, !strcmp(a, "-EPIPE") ? -EPIPE : (int)st->num) < 0) {
            FAILF("no send in flight");
        }
    } else if (!strcmp(v, "reply")) {
        if (!npend) FAILF("no async request waits for a reply");
        struct iox_conn_ref ref = pend[0];
        memmove(pend, pend + 1, --npend * sizeof pend[0]);
        struct iox_conn *c = iox_conn_deref(ref);
        if (c) {
            iox_resp_simple(c, 200, "text/plain", st->data.s, st->data.n);
            iox_conn_async_done(c);
        }
    } else if (!strcmp(v, "advance") || !strcmp(v, "timeout")) {
        g->now += !strcmp(v, "timeout") ? IDLE_MS + 1 : (uint64_t)st->num;
        iox_reactor_advance_clock(&g->r, g->now);
    } else if (!strcmp(v, "shutdown")) {
        iox_reactor_begin_stop(&g->r);
    } else if (!strcmp(v, "expect")) {
        int sending = iox_sim_has_op(g->sim, IOX_OP_SEND, FD);
        int recving = is_open(g) && g->c->sk.recv_armed;
        if (!strcmp(a, "send") && !sending) FAILF("no send in flight");
        if (!strcmp(a, "no-send") && sending) FAILF("a send is in flight");
        if (!strcmp(a, "recv") && !recving) FAILF("no recv armed");
        if (!strcmp(a, "no-recv") && recving) FAILF("a recv is armed");
        if (!strcmp(a, "closed")) {
            unsigned cl = iox_sim_closes(g->sim, FD), live = iox_sim_live_ops(g->sim, FD);
            if (cl != 1 || live || is_open(g)) FAILF("not closed exactly once: %u closes, %u live ops, %s", cl, live,
                                                     is_open(g) ? "still in the table" : "slot free");
        }
        if (!strcmp(a, "open") && (!is_open(g) || iox_sim_closes(g->sim, FD))) FAILF("the connection is closed");
        if (!strcmp(a, "state")) {
            if (!is_open(g) && st->num != HTTP_CONN_S_CLOSED) FAILF("the connection is gone (want %s)", st->data.s);
            if (is_open(g) && (long)g->c->state != st->num)
                FAILF("state %s, want %s", http_conn_state_names[g->c->state], st->data.s);
        }
        if (!strcmp(a, "pending") && (long)npend != st->num) FAILF("%u async requests pending, want %ld", npend, st->num);
        if (!strcmp(a, "silence")) {
            size_t n;
            iox_sim_peer_bytes(g->sim, FD, &n);
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
        return 0;                  /* expectations do not turn the loop */
    }
    turn(g);
    return 0;
}

/* Replay a script once; split_step/split_at choose the recv cut in two.
 * 0, or -1 with why and the failing line in *line. */
static int replay(const struct script *sc, int split_step, size_t split_at, int *line, char *why, size_t wl)
{
    struct rig g;
    if (rig_open(&g)) { snprintf(why, wl, "rig setup failed"); *line = sc->line; return -1; }
    int rc = 0;
    struct sbuf sent = {0};
    for (int i = 0; i < sc->n && !rc; i++) {
        const struct step *st = &sc->st[i];
        *line = st->line;
        if ((!strcmp(st->verb, "recv") || !strcmp(st->verb, "recv-last")) && st->has_data)
            sb_put(&sent, st->data.s, st->data.n);
        rc = run_step(&g, st, i == split_step ? split_at : 0, why, wl);
    }
    if (!rc) {
        *line = sc->line;
        /* The peer goes away; whatever was left must end cleanly. */
        for (int k = 0; k < 1000 && iox_sim_has_op(g.sim, IOX_OP_SEND, FD); k++) { iox_sim_send(g.sim, FD, 0); turn(&g); }
        while (npend) {
            struct iox_conn *c = iox_conn_deref(pend[--npend]);
            if (c) { iox_resp_simple(c, 200, "text/plain", "late", 4); iox_conn_async_done(c); }
            turn(&g);
        }
        if (is_open(&g) && iox_sim_recv_end(g.sim, FD, 0) == 0) turn(&g);
        for (int k = 0; k < 1000 && iox_sim_has_op(g.sim, IOX_OP_SEND, FD); k++) { iox_sim_send(g.sim, FD, 0); turn(&g); }
        if (is_open(&g)) { g.now += 60000; iox_reactor_advance_clock(&g.r, g.now); turn(&g); }
        if (iox_sim_closes(g.sim, FD) != 1 || iox_sim_live_ops(g.sim, FD) || is_open(&g)) {
            snprintf(why, wl, "at the end: %u closes, %u live ops, %s", iox_sim_closes(g.sim, FD),
                     iox_sim_live_ops(g.sim, FD), is_open(&g) ? "still open" : "slot free");
            rc = -1;
        } else if (iox_sim_bufs_lent(g.sim) || iox_sim_violations(g.sim)) {
            snprintf(why, wl, "at the end: %u buffers not returned, %u violations (%s)", iox_sim_bufs_lent(g.sim),
                     iox_sim_violations(g.sim), iox_sim_last_violation(g.sim));
            rc = -1;
        } else {
            size_t n;
            const char *out = iox_sim_peer_bytes(g.sim, FD, &n);
            char ow[240];
            if (http_oracle_check(sent.s ? sent.s : "", sent.n, out, n, NULL, NULL, ORACLE_PARTIAL, ow, sizeof ow) < 0) {
                snprintf(why, wl, "the response model refuses what was received: %s", ow);
                rc = -1;
            }
        }
    }
    free(sent.s);
    rig_close(&g);
    return rc;
}

static void free_script(struct script *sc)
{
    for (int i = 0; i < sc->n; i++) free(sc->st[i].data.s);
    sc->n = 0;
}

/* Run one parsed case whole and at every split; count failures. */
static unsigned run_case(struct script *sc, unsigned *runs)
{
    char why[400];
    int line;
    if (replay(sc, -1, 0, &line, why, sizeof why)) {
        fprintf(stderr, "\n  %s:%d: %s: %s\n", sc->file, line, sc->name, why);
        return 1;
    }
    (*runs)++;
    for (int i = 0; i < sc->n; i++) {
        if (strcmp(sc->st[i].verb, "recv") || !sc->st[i].has_data) continue;
        for (size_t k = 1; k < sc->st[i].data.n; k++) {
            (*runs)++;
            if (replay(sc, i, k, &line, why, sizeof why)) {
                fprintf(stderr, "\n  %s:%d: %s (recv of line %d split at byte %zu): %s\n", sc->file, line, sc->name,
                        sc->st[i].line, k, why);
                return 1;
            }
        }
    }
    return 0;
}

IOX_TEST(machine_scripts, http_conn_corpus)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/tests/data/machines/http_conn", iox_test_src_dir());
    char *names[64];
    int nf = corpus_md_files(dir, names, 64);
    CU_ASSERT_FATAL(nf > 0);
    unsigned cases = 0, failures = 0, runs = 0;
    for (int f = 0; f < nf; f++) {
        char path[PATH_MAX + 80], rel[200];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        snprintf(rel, sizeof rel, "tests/data/machines/http_conn/%s", names[f]);
        FILE *fp = fopen(path, "r");
        CU_ASSERT_FATAL(fp != NULL);
        static struct script sc;
        memset(&sc, 0, sizeof sc);
        sc.file = rel;
        char buf[4096];
        int ln = 0, in_script = 0, have = 0;
        while (fgets(buf, sizeof buf, fp)) {
            ln++;
            buf[strcspn(buf, "\n")] = 0;
            if (!strncmp(buf, "## ", 3)) {
                if (have) { cases++; failures += run_case(&sc, &runs); free_script(&sc); }
                snprintf(sc.name, sizeof sc.name, "%.150s", buf + 3);
                sc.line = ln;
                have = 1;
                continue;
            }
            if (!strncmp(buf, "```script", 9)) { in_script = 1; continue; }
            if (!strncmp(buf, "```", 3)) { in_script = 0; continue; }
            if (!in_script) continue;
            char *s = buf;
            while (*s == ' ') s++;
            if (!*s || *s == '#') continue;
            char why[160];
            if (sc.n == MAXSTEPS || parse_step(s, &sc.st[sc.n], why, sizeof why)) {
                fprintf(stderr, "\n  %s:%d: %s\n", rel, ln, sc.n == MAXSTEPS ? "too many steps" : why);
                failures++;
                continue;
            }
            sc.st[sc.n++].line = ln;
        }
        if (have) { cases++; failures += run_case(&sc, &runs); free_script(&sc); }
        fclose(fp);
        free(names[f]);
    }
    fprintf(stderr, " [%u cases, %u replays] ", cases, runs);
    CU_ASSERT(cases >= 10);
    CU_ASSERT_EQUAL(failures, 0);
}

IOX_SUITE(machine_scripts, NULL, NULL);
