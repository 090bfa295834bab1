/* test_scripts_file.c — completion scripts for the file_stream machine (a
 * file streamed as an HTTP response body through positional reads, or the
 * splice path file → pipe → socket), its vocabulary of the generic runner
 * (tests/script_runner.h); corpus tests/data/machines/file_stream/NAME.md.
 *
 * One HTTP connection (fd 7) on a simulated ring; the application answers
 * GET /file with a 200 head and a stream of a 10 000-byte temp file in
 * 4096-byte chunks (three reads), /empty with a zero-length stream, /hold
 * asynchronously (answered by `reply`), anything else 404. The splice path
 * (a first step `splice on`: iox_file_streams_splice with one 4096-byte
 * pipe, for ranges of at least 1 byte) sends the body by splice instead.
 * Steps (# starts a comment):
 *   splice on            first step only: the splice path
 *   zc on                first step only: the zero-copy path
 *                        (iox_file_streams_zc with one 4096-byte chunk for
 *                        ranges of at least 1 byte: READ_FIXED, booked as a
 *                        read, then SEND_ZC)
 *   zc on splice         first step only: both (one chunk, then one pipe of
 *                        4096 bytes), so a stream whose zero-copy sends
 *                        are reported copied can move to splice
 *   send-zc all | send-zc N | send-zc -ECONNRESET | send-zc -EINVAL no-notif
 *                        the oldest zero-copy send's result: all, N bytes
 *                        (short), failed; each with IOX_CQE_F_MORE (its
 *                        notification follows) but the no-notif form
 *   notif                the oldest owed notification (before or after
 *                        its send's result)
 *   notif copied         the same, saying the kernel copied the bytes
 *                        (IOX_NOTIF_ZC_COPIED)
 *   get PATH             the request "GET PATH HTTP/1.1" arrives (cut at
 *                        every byte on replays)
 *   recv "bytes" | recv eof | recv -ECONNRESET   as in the http_conn corpus
 *   read all | read N | read 0 | read -EIO   the oldest positional read
 *                        completes in full, with at most N bytes (short),
 *                        0 (the file ended early) or fails
 *   no-sqe read          the next read cannot be queued (no SQE: -EBUSY)
 *   splice in all | splice in N | splice in 0 | splice out all |
 *   splice out N | splice -EIO   the oldest splice of that half (in: file →
 *                        pipe, out: pipe → socket) completes, short, early
 *                        EOF, or the oldest splice fails
 *   send all | send N | send N/M | send -EPIPE   the oldest send
 *   reply                the held request (/hold) is answered 200 "held"
 *   fini                 iox_file_streams_fini: the streams table is freed
 *                        with a stream active (cancel)
 *   timeout | shutdown   the idle timeout passes / the reactor stops
 * Expectations (they do not turn the loop):
 *   expect read | no-read | splice | no-splice | send | no-send
 *   expect answer STATUS N   the next answer the peer received has that
 *                        status and N bytes of body, the file's first N
 *                        bytes for a 200 (N -: not checked)
 *   expect ended OK|ERRNO   the stream's end callback ran once, with 0
 *                        (OK) or -ERRNO (EPIPE, ECANCELED, EIO, ...)
 *   expect not-ended     it has not run
 *   expect closed | open  the socket closed exactly once, nothing in flight
 *   expect state NAME, expect took FROM/EVENT  (the core's)
 * After the script (unless `fini` freed the table: then only the ends and
 * the violations are checked) every read, splice and send completes in full, the peer
 * sends EOF, the clock runs out: the socket must be closed once with no op
 * left, no read or splice left, every started stream ended once, every
 * buffer back, every pipe back in the pool, no ring violation. */
#include "iox_test.h"
#include "file_stream_machine.h"
#include "script_runner.h"
#include "sim_world.h"
#include <ioxide/file_stream.h>
#include <ioxide/http_conn.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FD 7
#define FLEN 10000u
#define CHUNK 4096u
#define IDLE_MS 1000

static char data[FLEN];
static int file_fd = -1;

struct fw {
    struct sim_world w;
    struct iox_http_config hcfg;
    struct iox_http_server *hs;
    struct iox_conn *c;
    struct iox_conn_ref held;
    int have_held;
    int state;
    unsigned ends, starts;
    int end_err;
    int finied;
    size_t read_off;
};

static struct fw world;
static const struct sr_script *cur_script;   /* the script being replayed */

static void on_end(struct iox_reactor *r, void *arg, int err)
{
    (void)r; (void)arg;
    world.ends++;
    world.end_err = err;
}

static int on_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    struct fw *g = &world;
    if (req->target_len == 5 && !memcmp(req->target, "/hold", 5)) {
        g->held = iox_conn_ref(c);
        g->have_held = 1;
        return IOX_ASYNC;
    }
    int empty = req->target_len == 6 && !memcmp(req->target, "/empty", 6);
    if (!empty && !(req->target_len == 5 && !memcmp(req->target, "/file", 5))) {
        iox_resp_simple(c, 404, "text/plain", "nf", 2);
        return IOX_HANDLED;
    }
    uint64_t len = empty ? 0 : FLEN;
    if (iox_resp_head(c, 200, "application/octet-stream", len, NULL) < 0) return IOX_HANDLED;
    g->starts++;
    return iox_file_stream_start(c, file_fd, 0, len, CHUNK, "file", on_end, NULL);
}

static const struct iox_http_app app = {.on_request = on_request};

static void trace(struct iox_file_stream *st, int from, int event, int to)
{
    (void)st;
    world.state = to;
    sr_took(from, event, to);
}

static void *fs_open(const struct sr_script *sc, char *why, size_t wl)
{
    struct fw *g = &world;
    memset(g, 0, sizeof *g);
    cur_script = sc;
    if (file_fd < 0) {
        char path[] = "/tmp/iox_scripts_file.XXXXXX";
        file_fd = mkstemp(path);
        if (file_fd < 0) { snprintf(why, wl, "mkstemp: %s", strerror(errno)); return NULL; }
        unlink(path);
        for (unsigned i = 0; i < FLEN; i++) data[i] = (char)('a' + i % 26);
        if (write(file_fd, data, FLEN) != (ssize_t)FLEN) { snprintf(why, wl, "write: %s", strerror(errno)); return NULL; }
    }
    g->hcfg.idle_timeout_ms = IDLE_MS;
    g->hcfg.linger_ms = 100;
    g->hcfg.max_conns = 2;
    g->hcfg.write_cap = 1 << 20;
    g->hcfg.app = &app;
    if (sw_open(&g->w, 4, 4096, 500)) { snprintf(why, wl, "sim world setup failed"); return NULL; }
    if (iox_http_server_open(&g->w.r, &g->hcfg, 0, &g->hs) || iox_file_streams_init(g->hs)) {
        snprintf(why, wl, "http server / file streams setup failed");
        return NULL;
    }
    if (sc->n && !strcmp(sc->st[0].verb, "splice") && !strcmp(sc->st[0].arg, "on") &&
        iox_file_streams_splice(&g->w.r, 1, 1, 4096)) {
        snprintf(why, wl, "iox_file_streams_splice failed");
        return NULL;
    }
    if (sc->n && !strcmp(sc->st[0].verb, "zc") && !strcmp(sc->st[0].arg, "on") &&
        iox_file_streams_zc(&g->w.r, 1, 1, 4096)) {
        snprintf(why, wl, "iox_file_streams_zc failed");
        return NULL;
    }
    if (sc->n && !strcmp(sc->st[0].verb, "zc") && !strcmp(sc->st[0].arg, "on") && strstr(sc->st[0].rest, "splice") &&
        iox_file_streams_splice(&g->w.r, 1, 1, 4096)) {
        snprintf(why, wl, "iox_file_streams_splice failed");
        return NULL;
    }
    g->state = FILE_STREAM_S_IDLE;
    file_stream_trace = trace;
    g->c = iox_http_adopt(g->hs, FD);
    if (!g->c) { snprintf(why, wl, "adopt failed"); return NULL; }
    sw_turn(&g->w);
    return g;
}

static void fs_close(void *arg)
{
    struct fw *g = arg;
    file_stream_trace = NULL;
    if (!g->finied) iox_file_streams_fini(&g->w.r);
    iox_http_server_close(g->hs);
    sw_close(&g->w);
}

static int fs_state(void *arg) { return ((struct fw *)arg)->state; }

static int errno_named(const char *n)
{
    static const struct { const char *n; int e; } t[] = {
        {"OK", 0}, {"EPIPE", EPIPE}, {"ECANCELED", ECANCELED}, {"EIO", EIO}, {"EBUSY", EBUSY},
        {"ENODATA", ENODATA}, {"ECONNRESET", ECONNRESET}, {"EINVAL", EINVAL},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i].n, n)) return t[i].e;
    return -1;
}

static int fs_parse(struct sr_step *st, char *why, size_t wl)
{
    const char *v = st->verb, *a = st->arg, *rest = st->rest;
    if (!strcmp(v, "splice") && !strcmp(a, "on")) return 0;
    if (!strcmp(v, "zc") && !strcmp(a, "on")) return 0;
    if (!strcmp(v, "notif")) return 0;
    if (!strcmp(v, "send-zc")) {
        st->num2 = !strstr(st->rest, "no-notif");   /* more */
        if (!strcmp(a, "all")) st->num = 0;
        else if (!strcmp(a, "-ECONNRESET")) st->num = -ECONNRESET;
        else if (!strcmp(a, "-EINVAL")) st->num = -EINVAL;
        else if ((st->num = strtol(a, NULL, 10)) <= 0) {
            snprintf(why, wl, "send-zc all | N | -ECONNRESET | -EINVAL [no-notif]");
            return -1;
        }
        return 0;
    }
    if (!strcmp(v, "get")) {
        sb_printf(&st->data, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", a);
        st->has_data = st->split = 1;
        return 0;
    }
    if (!strcmp(v, "recv")) {
        if (*rest == '"') {
            if (sr_quoted(&rest, &st->data)) { snprintf(why, wl, "unterminated string"); return -1; }
            st->has_data = st->split = 1;
            return 0;
        }
        if (!strcmp(a, "eof") || !strcmp(a, "-ECONNRESET")) return 0;
        snprintf(why, wl, "recv \"bytes\" | eof | -ECONNRESET");
        return -1;
    }
    if (!strcmp(v, "read")) {
        if (!strcmp(a, "all")) st->num = -1;
        else if (!strcmp(a, "-EIO")) st->num = -2;
        else if ((st->num = strtol(a, NULL, 10)) < 0 || (!st->num && strcmp(a, "0"))) {
            snprintf(why, wl, "read all | N | 0 | -EIO");
            return -1;
        }
        return 0;
    }
    if (!strcmp(v, "no-sqe")) {
        if (strcmp(a, "read")) { snprintf(why, wl, "no-sqe read"); return -1; }
        return 0;
    }
    if (!strcmp(v, "splice")) {
        char how[16] = "";
        if (!strcmp(a, "-EIO")) { st->num = -2; return 0; }
        if ((strcmp(a, "in") && strcmp(a, "out")) || sscanf(rest, "%*s %15s", how) != 1) {
            snprintf(why, wl, "splice in|out all|N, splice in 0, splice -EIO");
            return -1;
        }
        st->num2 = !strcmp(a, "in");
        if (!strcmp(how, "all")) st->num = -1;
        else if ((st->num = strtol(how, NULL, 10)) < 0 || (!st->num && (strcmp(how, "0") || !st->num2))) {
            snprintf(why, wl, "splice in|out all|N, splice in 0, splice -EIO");
            return -1;
        }
        return 0;
    }
    if (!strcmp(v, "send")) {
        if (strcmp(a, "all") && strcmp(a, "-EPIPE") && (st->num = strtol(a, NULL, 10)) <= 0) {
            snprintf(why, wl, "send all | N | N/M | -EPIPE");
            return -1;
        }
        return 0;
    }
    if (!strcmp(v, "reply") || !strcmp(v, "fini") || !strcmp(v, "timeout") || !strcmp(v, "shutdown")) return 0;
    if (!strcmp(v, "expect")) {
        static const char *const flags[] = {"read", "no-read", "splice", "no-splice", "send", "no-send", "closed",
                                            "open", "not-ended", "zc-send", "no-zc-send", NULL};
        for (int i = 0; flags[i]; i++)
            if (!strcmp(a, flags[i])) return 0;
        if (!strcmp(a, "ended")) {
            char nm[32];
            if (sscanf(rest, "ended %31s", nm) != 1 || (st->num = errno_named(nm)) < 0) {
                snprintf(why, wl, "expect ended OK|EPIPE|ECANCELED|EIO|...");
                return -1;
            }
            return 0;
        }
        if (!strcmp(a, "answer")) {
            char len[16];
            if (sscanf(rest, "answer %ld %15s", &st->num, len) != 2) { snprintf(why, wl, "expect answer STATUS N|-"); return -1; }
            st->num2 = !strcmp(len, "-") ? -1 : strtol(len, NULL, 10);
            return 0;
        }
        snprintf(why, wl, "unknown expectation \"%s\"", a);
        return -1;
    }
    snprintf(why, wl, "unknown step \"%s\"", v);
    return -1;
}

#define FAILF(...) do { snprintf(why, wl, __VA_ARGS__); return SR_FAIL; } while (0)

static int is_open(struct fw *g) { return g->hs->nconns > 0; }

/* The oldest splice of one half (in: from the file), or -1. */
static int find_splice(struct fw *g, int in)
{
    unsigned n = iox_sim_splices(g->w.sim);
    for (unsigned k = 0; k < n; k++) {
        int fin, fout;
        if (iox_sim_splice_peek(g->w.sim, k, &fin, NULL, &fout, NULL, NULL)) continue;
        if ((fin == file_fd) == in) return (int)k;
    }
    return -1;
}

/* The next answer in the peer's bytes: status and body length (by its
 * Content-Length; the body must have arrived). 1, 0 (none complete), -1. */
static int next_answer(struct fw *g, int *status, const char **body, size_t *blen)
{
    size_t n;
    const char *all = iox_sim_peer_bytes(g->w.sim, FD, &n);
    if (!all || g->read_off >= n) return 0;
    const char *p = all + g->read_off, *e = all + n;
    const char *hend = memmem(p, (size_t)(e - p), "\r\n\r\n", 4);
    if (!hend) return 0;
    if (e - p < 12 || memcmp(p, "HTTP/1.1 ", 9)) return -1;
    *status = atoi(p + 9);
    long cl = 0;
    const char *h = memmem(p, (size_t)(hend - p), "\r\nContent-Length: ", 18);
    if (h) cl = strtol(h + 18, NULL, 10);
    const char *b = hend + 4;
    if (e - b < cl) return 0;
    *body = b;
    *blen = (size_t)cl;
    g->read_off = (size_t)(b + cl - all);
    return 1;
}

static int fs_step(void *arg, const struct sr_step *st, size_t split, char *why, size_t wl)
{
    struct fw *g = arg;
    struct iox_seam_sim *sim = g->w.sim;
    const char *v = st->verb, *a = st->arg;
#define NOOP(...) do { if (st->lenient) return SR_SKIP; FAILF(__VA_ARGS__); } while (0)
    if ((!strcmp(v, "splice") || !strcmp(v, "zc")) && !strcmp(a, "on")) {
        if (st != &cur_script->st[0]) FAILF("%s on must come first", v);
        return SR_OK;
    }
    if (st->has_data) {                         /* get, recv "bytes" */
        const char *d = st->data.s;
        size_t n = st->data.n;
        if (!is_open(g) || !g->c->sk.recv_armed) NOOP("no recv armed to take the bytes");
        if (split && split < n) {
            if (sw_deliver(&g->w, FD, d, split) || sw_deliver(&g->w, FD, d + split, n - split)) FAILF("no recv armed to take the bytes");
        } else if (sw_deliver(&g->w, FD, d, n)) FAILF("no recv armed to take the bytes");
        return SR_OK;
    }
    if (!strcmp(v, "recv")) {
        if (iox_sim_recv_end(sim, FD, !strcmp(a, "eof") ? 0 : -ECONNRESET) < 0) NOOP("no recv armed to end");
    } else if (!strcmp(v, "read")) {
        if (!iox_sim_reads(sim)) NOOP("no read in flight");
        if (iox_sim_read_complete(sim, 0, st->num == -1 || st->num == -2 ? (size_t)-1 : (size_t)st->num,
                                  st->num == -2 ? -EIO : 0, NULL))
            FAILF("the read could not be completed");
    } else if (!strcmp(v, "no-sqe")) {
        iox_sim_fail_submit(sim, IOX_OP_READ, 1, -EBUSY);
        return SR_OK;
    } else if (!strcmp(v, "splice")) {
        int k = st->num == -2 ? (iox_sim_splices(sim) ? 0 : -1) : find_splice(g, (int)st->num2);
        if (k < 0) NOOP("no splice%s in flight", st->num == -2 ? "" : st->num2 ? " in" : " out");
        if (iox_sim_splice_complete(sim, (unsigned)k, st->num < 0 ? (size_t)-1 : (size_t)st->num, st->num == -2 ? -EIO : 0, NULL))
            FAILF("the splice could not be completed");
    } else if (!strcmp(v, "send")) {
        if (!iox_sim_has_op(sim, IOX_OP_SEND, FD)) NOOP("no send in flight");
        if (!strcmp(a, "all")) sw_send_all(&g->w, FD, 1000);
        else iox_sim_send(sim, FD, !strcmp(a, "-EPIPE") ? -EPIPE : (int)st->num);
    } else if (!strcmp(v, "send-zc")) {
        if (iox_sim_send_zc(sim, FD, (int)st->num, (int)st->num2) < 0) NOOP("no zero-copy send owing its result");
    } else if (!strcmp(v, "notif")) {
        int copied = strstr(st->rest, "copied") != NULL;
        if ((copied ? iox_sim_send_zc_notif_copied(sim, FD) : iox_sim_send_zc_notif(sim, FD)) < 0)
            NOOP("no zero-copy send owing its notification");
    } else if (!strcmp(v, "reply")) {
        if (!g->have_held) NOOP("no request held");
        g->have_held = 0;
        struct iox_conn *c = iox_conn_deref(g->held);
        if (c) {
            iox_resp_simple(c, 200, "text/plain", "held", 4);
            iox_conn_async_done(c);
        }
    } else if (!strcmp(v, "fini")) {
        if (g->finied) FAILF("fini twice");
        iox_file_streams_fini(&g->w.r);
        g->finied = 1;
    } else if (!strcmp(v, "timeout")) {
        sw_advance(&g->w, IDLE_MS + 1);
    } else if (!strcmp(v, "shutdown")) {
        iox_reactor_begin_stop(&g->w.r);
    } else if (!strcmp(v, "expect")) {
        int reading = iox_sim_reads(sim) > 0, splicing = iox_sim_splices(sim) > 0;
        int sending = iox_sim_has_op(sim, IOX_OP_SEND, FD);
        if (!strcmp(a, "read") && !reading) FAILF("no read in flight");
        if (!strcmp(a, "no-read") && reading) FAILF("a read is in flight");
        if (!strcmp(a, "splice") && !splicing) FAILF("no splice in flight");
        if (!strcmp(a, "no-splice") && splicing) FAILF("a splice is in flight");
        if (!strcmp(a, "send") && !sending) FAILF("no send in flight");
        if (!strcmp(a, "no-send") && sending) FAILF("a send is in flight");
        int zsending = iox_sim_has_op(sim, IOX_OP_SEND_ZC, FD);
        if (!strcmp(a, "zc-send") && !zsending) FAILF("no zero-copy send in flight");
        if (!strcmp(a, "no-zc-send") && zsending) FAILF("a zero-copy send is in flight");
        if (!strcmp(a, "closed")) {
            unsigned cl = iox_sim_closes(sim, FD), live = iox_sim_live_ops(sim, FD);
            if (cl != 1 || live || is_open(g)) FAILF("not closed once: %u closes, %u live ops%s", cl, live, is_open(g) ? ", still open" : "");
        }
        if (!strcmp(a, "open") && (!is_open(g) || iox_sim_closes(sim, FD))) FAILF("the connection is closed");
        if (!strcmp(a, "not-ended") && g->ends) FAILF("the stream ended (%d)", g->end_err);
        if (!strcmp(a, "ended")) {
            if (g->ends != 1) FAILF("the end callback ran %u times", g->ends);
            if (g->end_err != -(int)st->num) FAILF("ended with %d (%s), want -%ld", g->end_err, strerror(-g->end_err), st->num);
        }
        if (!strcmp(a, "answer")) {
            int status;
            const char *b;
            size_t bl;
            int k = next_answer(g, &status, &b, &bl);
            if (k == 0) FAILF("no complete answer received");
            if (k < 0) FAILF("what was received is not an HTTP/1.1 answer");
            if (status != st->num) FAILF("answer %d, want %ld", status, st->num);
            if (st->num2 >= 0 && bl != (size_t)st->num2) FAILF("a body of %zu bytes, want %ld", bl, st->num2);
            if (status == 200 && bl <= FLEN && bl > 4 && memcmp(b, data, bl)) FAILF("the body is not the file's bytes");
        }
        return SR_OK;
    }
#undef NOOP
    sw_turn(&g->w);
    return SR_OK;
}

static int fs_finish(void *arg, char *why, size_t wl)
{
    struct fw *g = arg;
    struct iox_seam_sim *sim = g->w.sim;
    if (g->finied) {   /* the table is gone (a reactor's stop): the server's close ends the rest */
        if (g->ends != g->starts) FAILF("at the end: %u streams started, %u ended", g->starts, g->ends);
        if (iox_sim_violations(sim)) FAILF("%u violations (%s)", iox_sim_violations(sim), iox_sim_last_violation(sim));
        return 0;
    }
    if (g->have_held) {
        g->have_held = 0;
        struct iox_conn *c = iox_conn_deref(g->held);
        if (c) { iox_resp_simple(c, 200, "text/plain", "held", 4); iox_conn_async_done(c); }
        sw_turn(&g->w);
    }
    for (int guard = 0; guard < 1000; guard++) {
        if (iox_sim_has_op(sim, IOX_OP_SEND, FD)) iox_sim_send(sim, FD, 0);
        else if (iox_sim_has_op(sim, IOX_OP_SEND_ZC, FD)) {
            if (iox_sim_send_zc(sim, FD, 0, 1) < 0) iox_sim_send_zc_notif(sim, FD);
        }
        else if (iox_sim_reads(sim)) iox_sim_read_complete(sim, 0, (size_t)-1, 0, NULL);
        else if (iox_sim_splices(sim)) iox_sim_splice_complete(sim, 0, (size_t)-1, 0, NULL);
        else break;
        sw_turn(&g->w);
    }
    if (is_open(g) && iox_sim_recv_end(sim, FD, 0) == 0) sw_turn(&g->w);
    sw_send_all(&g->w, FD, 1000);
    for (int k = 0; k < 4 && is_open(g); k++) {
        sw_advance(&g->w, 60000);
        sw_turn(&g->w);
        sw_send_all(&g->w, FD, 1000);
    }
    if (iox_sim_closes(sim, FD) != 1 || iox_sim_live_ops(sim, FD) || is_open(g))
        FAILF("at the end: %u closes, %u live ops, %s", iox_sim_closes(sim, FD), iox_sim_live_ops(sim, FD),
              is_open(g) ? "still open" : "slot free");
    if (iox_sim_reads(sim) || iox_sim_splices(sim)) FAILF("at the end: %u reads, %u splices left", iox_sim_reads(sim), iox_sim_splices(sim));
    if (iox_sim_has_op(sim, IOX_OP_SEND_ZC, FD)) FAILF("at the end: a zero-copy send left");
    if (g->ends != g->starts) FAILF("at the end: %u streams started, %u ended", g->starts, g->ends);
    if (!g->finied) {
        struct iox_file_streams *fs = iox_file_streams_of(&g->w.r);
        if (fs->active) FAILF("at the end: %u streams still active", fs->active);
        for (uint32_t i = 0; i < fs->npipes; i++)
            if (fs->pipes[i].busy) FAILF("at the end: pipe %u not back in the pool", i);
        for (uint32_t i = 0; i < fs->nchunks; i++)
            if (fs->chunks[i].busy) FAILF("at the end: chunk %u not back in the pool", i);
    }
    if (iox_sim_bufs_lent(sim) || iox_sim_violations(sim))
        FAILF("at the end: %u buffers not returned, %u violations (%s)", iox_sim_bufs_lent(sim), iox_sim_violations(sim),
              iox_sim_last_violation(sim));
    return 0;
}

/* A trail line of generated/file_stream.pml's @@script table as a step. */
static int from_trail(const char *t, char *out, size_t cap)
{
    if (t[0] == '(' || strstr(t, "(connection closing)")) return 0;
    if (!strcmp(t, "start")) snprintf(out, cap, "get /file");
    else if (!strcmp(t, "read 5/9")) snprintf(out, cap, "read 100");
    else if (!strncmp(t, "splice file", 11)) snprintf(out, cap, "splice in %s", strstr(t, " 0") ? "0" : "all");
    else if (!strncmp(t, "splice pipe", 11)) snprintf(out, cap, "splice out %s", strstr(t, "5/9") ? "100" : "all");
    else if (!strncmp(t, "read-fixed", 10)) snprintf(out, cap, "read %s", strstr(t, "5/9") ? "100" : t + 11);
    else if (!strncmp(t, "send-zc", 7))
        snprintf(out, cap, "send-zc %s", strstr(t, "5/9") ? "100" : strstr(t, "-ECONNRESET") ? "-ECONNRESET"
                                         : strstr(t, "-EINVAL") ? "-EINVAL no-notif" : "all");
    else if (!strncmp(t, "notif", 5)) snprintf(out, cap, strstr(t, "copied") ? "notif copied" : "notif");
    else if (!strcmp(t, "conn closes")) snprintf(out, cap, "recv -ECONNRESET");
    else if (!strcmp(t, "cancel")) snprintf(out, cap, "fini");
    else snprintf(out, cap, "%s", t);
    return 1;
}

static const char *const file_unreached[] = {NULL};

extern const struct sr_vocab file_stream_vocab;
const struct sr_vocab file_stream_vocab = {
    .machine = "file_stream",
    .state_names = file_stream_state_names,
    .nstates = FILE_STREAM_STATE_COUNT,
    .event_names = file_stream_event_names,
    .nevents = FILE_STREAM_EVENT_COUNT,
    .parse = fs_parse,
    .open = fs_open,
    .step = fs_step,
    .state = fs_state,
    .finish = fs_finish,
    .close = fs_close,
    .from_trail = from_trail,
    .unreached_ok = file_unreached,
};

IOX_TEST(machine_scripts, file_stream_corpus)
{
    unsigned cases = 0, runs = 0;
    unsigned failures = sr_run_corpus(&file_stream_vocab, &cases, &runs);
    CU_ASSERT(cases >= 15);
    CU_ASSERT_EQUAL(failures, 0);
}
