/* file_sim_harness.h — the file sender on one simulated reactor, shared by
 * tests/test_file_sim.c (seeded schedules) and tests/fuzz/fuzz_file_stream.c
 * (fuzzer-written schedules).
 *
 * It #includes the playground's file mode (examples/playground/mode_file.c
 * and file_snapshot.c), so the exact playground code runs, streaming
 * through the runtime's file_stream machine (runtime/file/file_stream.c). What
 * is here:
 *   - the files: a temp dir with files of fixed, varied sizes (0 B, 1 B,
 *     around 4 KiB, 9000, 65536, 150001, a directory with an index.html),
 *     whose bytes are kept in `content` (make_files / remove_files);
 *   - requests and what they must get: add_request appends one GET/HEAD
 *     request (whole file, Range a-b / a- / -n, unsatisfiable, several
 *     ranges, missing file, directory index; extra forms beyond
 *     FSIM_KINDS_SIM for the fuzzer) to a connection's input, and its
 *     expected answer; every choice comes from a `draw` callback, so the
 *     seeded test and the fuzzer share it;
 *   - the world (one reactor on a simulated ring, 1–FSIM_MAXC adopted
 *     connections) and its moves: turn, deliver, settle, a failed read;
 *   - the ending and the books: fsim_epilogue (the rest of the input,
 *     quiescence, every peer's EOF, timers), check_output (exact bytes of
 *     every answer — all of them on a connection the schedule did not cut,
 *     a prefix otherwise) and fsim_check_books (every connection closed
 *     once with no op left, no read left, no buffer lent, no simulator
 *     violation, every stream slot freed and every started stream ended
 *     once, stale read completions dropped and counted, no stream holding
 *     a snapshot and only the current snapshot's files open).
 *
 * The includer provides nothing; it gets `app`, `file_app`, file_start,
 * file_stop, file_sighup, on_hup from mode_file.c. */
#ifndef IOX_FILE_SIM_HARNESS_H
#define IOX_FILE_SIM_HARNESS_H
#include <ioxide/log.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include <ioxide/file_stream.h>
#include "file_stream_machine.h"
#include "http_conn_machine.h"
#include "../examples/playground/file_snapshot.c"
#include "../examples/playground/mode_file.c"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FSIM_MAXC 3
#define FSIM_MAXREQ 16       /* requests a connection's input can hold */
#define FD0 3000             /* simulated sockets, far from the real files' fds */

static inline uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

/* ---- the files ---- */

static const struct { const char *path; size_t size; } files[] = {
    {"/empty", 0}, {"/one", 1}, {"/small.txt", 1000}, {"/b4095", 4095}, {"/b4096", 4096},
    {"/b4097", 4097}, {"/mid.bin", 9000}, {"/c65536", 65536}, {"/big.bin", 150001},
    {"/d/index.html", 5000},
};
#define NFILES (sizeof files / sizeof files[0])
static char tmpdir[64];
static char *content[NFILES];

static inline int make_files(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/iox_file_sim.XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    char p[128];
    snprintf(p, sizeof p, "%s/d", tmpdir);
    if (mkdir(p, 0755)) return -1;
    uint64_t s = 0x1234567;
    for (unsigned i = 0; i < NFILES; i++) {
        content[i] = malloc(files[i].size + 1);
        for (size_t k = 0; k < files[i].size; k++) content[i][k] = (char)(rnd(&s) >> 24);
        snprintf(p, sizeof p, "%s%s", tmpdir, files[i].path);
        FILE *f = fopen(p, "wb");
        if (!f || fwrite(content[i], 1, files[i].size, f) != files[i].size) return -1;
        fclose(f);
    }
    return 0;
}

static inline void remove_files(void)
{
    char p[128];
    for (unsigned i = 0; i < NFILES; i++) {
        snprintf(p, sizeof p, "%s%s", tmpdir, files[i].path);
        unlink(p);
        free(content[i]);
        content[i] = NULL;
    }
    snprintf(p, sizeof p, "%s/d", tmpdir);
    rmdir(p);
    rmdir(tmpdir);
}

static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* ---- requests and what they must get ---- */

struct expect {
    int status;
    uint64_t clen;           /* announced Content-Length */
    const char *body;        /* expected body bytes (NULL: none) */
    size_t blen;             /* bytes of body on the wire (0 for HEAD) */
    uint64_t cr_first, cr_last, cr_size;   /* 206: Content-Range */
};

struct hconn {
    int fd;
    char in[FSIM_MAXREQ * 128];
    size_t in_len, in_off;
    struct expect exp[FSIM_MAXREQ];
    unsigned nreq;
    int cut;                 /* the schedule may have cut its answers */
};

/* A choice in [0, bound): the seeded test draws rnd() % bound, the fuzzer
 * reads it from its input. */
typedef uint64_t (*fsim_draw)(void *ctx, uint64_t bound);

/* Targets: the files, then "missing", "/d/" (the index); the fuzzer also
 * asks "/d" (301 to "/d/"). Range kinds: 0-2 none, 3 a-b, 4 a-, 5 -n or
 * unsatisfiable a-, 6 several ranges (ignored); the fuzzer's extra kinds:
 * 7 a-b with b past the end (clamped), 8 b < a (invalid: ignored), 9 a
 * suffix longer than the file (all of it), 10 "-0" (unsatisfiable), 11
 * another unit (ignored). */
#define FSIM_PICKS_SIM (NFILES + 2)
#define FSIM_PICKS_ALL (NFILES + 3)
#define FSIM_KINDS_SIM 7
#define FSIM_KINDS_ALL 12

/* Append one request to c's input and its expected answer. Returns 1 when
 * it carries a Range header, 0 when not, -1 when c is full. */
static inline int add_request(struct hconn *c, fsim_draw draw, void *ctx, unsigned npicks, unsigned nkinds)
{
    if (c->nreq >= FSIM_MAXREQ || sizeof c->in - c->in_len < 128) return -1;
    struct expect *x = &c->exp[c->nreq++];
    int head = draw(ctx, 4) == 0;
    unsigned pick = (unsigned)draw(ctx, npicks);
    char range[64] = "";
    const char *path;
    memset(x, 0, sizeof *x);
    if (pick == NFILES) {                       /* missing */
        path = "/nope";
        x->status = 404;
        x->clen = 10;
        x->body = "not found\n";
    } else if (pick == NFILES + 2) {            /* a directory without its '/' */
        path = "/d";
        x->status = 301;
        x->clen = 6;
        x->body = "moved\n";
    } else {
        unsigned fi = pick == NFILES + 1 ? NFILES - 1 : pick;
        path = pick == NFILES + 1 ? "/d/" : files[fi].path;
        uint64_t size = files[fi].size;
        uint64_t a = 0, b = size ? size - 1 : 0;
        x->status = 200;
        switch (draw(ctx, nkinds)) {
        case 0: case 1: case 2: break;          /* whole file */
        case 3:                                 /* a-b */
            if (!size) { snprintf(range, sizeof range, "bytes=0-0"); x->status = 416; break; }
            a = draw(ctx, size);
            b = a + draw(ctx, size - a);
            snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)a, (unsigned long long)b);
            x->status = 206;
            break;
        case 4:                                 /* a- */
            if (!size) { snprintf(range, sizeof range, "bytes=0-"); x->status = 416; break; }
            a = draw(ctx, size);
            snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)a);
            x->status = 206;
            break;
        case 5:                                 /* -n, or unsatisfiable */
            if (!size || draw(ctx, 3) == 0) {
                snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)size + draw(ctx, 3));
                x->status = 416;
                break;
            }
            {
                uint64_t n = 1 + draw(ctx, size);
                a = size - n;
                snprintf(range, sizeof range, "bytes=-%llu", (unsigned long long)n);
                x->status = 206;
            }
            break;
        case 6:                                 /* several ranges: ignored, 200 */
            snprintf(range, sizeof range, "bytes=0-0,2-3");
            break;
        case 7:                                 /* a-b, b past the end: clamped */
            if (!size) { snprintf(range, sizeof range, "bytes=0-5"); x->status = 416; break; }
            a = draw(ctx, size);
            snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)a,
                     (unsigned long long)(size + draw(ctx, 70000)));
            x->status = 206;
            break;
        case 8:                                 /* b < a: invalid, ignored */
            {
                uint64_t hi = 1 + draw(ctx, 200000);
                snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)hi,
                         (unsigned long long)(hi - 1 - draw(ctx, hi)));
            }
            break;
        case 9:                                 /* a suffix longer than the file: all of it */
            if (!size) { snprintf(range, sizeof range, "bytes=-1"); x->status = 416; break; }
            snprintf(range, sizeof range, "bytes=-%llu", (unsigned long long)(size + draw(ctx, 70000)));
            x->status = 206;
            break;
        case 10:                                /* an empty suffix */
            snprintf(range, sizeof range, "bytes=-0");
            x->status = 416;
            break;
        default:                                /* not bytes: ignored */
            snprintf(range, sizeof range, "items=0-1");
            break;
        }
        if (head && range[0]) {
            /* Range is for GET only (RFC 9110 §14.2): a HEAD gets the
             * whole file's 200 head. The draws above are kept as they are,
             * so seeds and fuzz inputs still pick the same requests. */
            x->status = 200;
            a = 0;
            b = size ? size - 1 : 0;
        }
        if (x->status == 416) {
            x->clen = 0;
            x->cr_size = size;
        } else {
            x->clen = b - a + 1;
            if (!size) x->clen = 0;
            x->body = content[fi] + a;
            if (x->status == 206) { x->cr_first = a; x->cr_last = b; x->cr_size = size; }
        }
    }
    x->blen = head ? 0 : (size_t)x->clen;
    c->in_len += (size_t)snprintf(c->in + c->in_len, sizeof c->in - c->in_len,
                                  "%s %s HTTP/1.1\r\nHost: h\r\n%s%s%s\r\n", head ? "HEAD" : "GET", path,
                                  range[0] ? "Range: " : "", range, range[0] ? "\r\n" : "");
    return range[0] != 0;
}

/* ---- the world ---- */

struct world {
    struct iox_seam_sim *sim;
    struct iox_reactor r;
    struct iox_server_config cfg;
    struct iox_http_config hcfg;
    struct iox_http_server *hs;
    struct hconn conn[FSIM_MAXC];
    unsigned nc;
    uint64_t stale_sent;
    int fds0;                /* open fds before the snapshot was built */
    char why[256];
};

static inline void sink(void *ctx, const struct iox_cqe *cqe) { iox_reactor_dispatch(ctx, cqe); }

static inline void turn(struct world *w)
{
    do {
        iox_sim_publish(w->sim);
        iox_reactor_flush(&w->r);
    } while (iox_sim_pump(w->sim) > 0);
}

static inline struct hconn *conn_of_slot(struct world *w, uint32_t idx)
{
    int fd = w->hs->conns[idx].sk.fd;
    for (unsigned j = 0; j < w->nc; j++)
        if (w->conn[j].fd == fd) return &w->conn[j];
    return NULL;
}

static struct {
    uint64_t seeds, conns, requests, ranges, answers, complete_conns, cut_conns;
    uint64_t reads_full, reads_short, reads_eio, reads_eof, sends_short, sends_failed;
    uint64_t resets, timeouts, stops, sighups, stale, submit_fails, started, done, gone;
    uint64_t splices_full, splices_short, splices_failed, spliced_streams, pipes_renewed;
} stats;

/* The splice path for the next fsim_start (0: off, the read path only):
 * streams of at least this many bytes go file → pipe → socket through
 * FSIM_PIPES real pipes of fsim_pipe_size bytes (0: the kernel's 64 KiB). */
#define FSIM_PIPES 2
static uint64_t fsim_splice_min;
static uint32_t fsim_pipe_size;

/* Build the snapshot (app.opt set by the caller, except what is set here)
 * and start the world: a simulated ring of 8 provided buffers of bufsize
 * bytes, nc adopted connections with no input yet. Returns 0, or -1 with
 * the reason in w->why (nothing to free then). */
static inline int fsim_start(struct world *w, uint64_t bake_max, uint32_t chunk, unsigned nc, unsigned bufsize)
{
    w->fds0 = count_fds();
    memset(&app, 0, sizeof app);
    app.opt.root = tmpdir;
    app.opt.bake_max = bake_max;
    app.opt.max_files = 1000;
    app.opt.max_depth = 8;
    app.opt.nreactors = 1;
    app.chunk = chunk;
    app.splice_min = fsim_splice_min;
    app.splice_pipes = FSIM_PIPES;
    app.pipe_size = fsim_pipe_size;
    char why[200] = "";
    if (fs_snapshot_build(&app.opt, 1, &app.latest, why, sizeof why) < 0) {
        snprintf(w->why, sizeof w->why, "snapshot: %s", why);
        return -1;
    }
    app.generation = 1;
    w->nc = nc;
    w->hcfg.max_conns = FSIM_MAXC + 1;
    w->hcfg.idle_timeout_ms = 1000;
    w->hcfg.linger_ms = 100;
    w->hcfg.write_cap = 1 << 20;
    w->cfg.shutdown_grace_ms = 500;
    w->hcfg.app = &file_app;
    w->sim = iox_sim_create(8, bufsize);
    if (!w->sim || iox_reactor_init_sim(&w->r, iox_sim_seam(w->sim), &w->cfg)) abort();
    if (iox_http_server_open(&w->r, &w->hcfg, 0, &w->hs)) abort();
    /* file_start finds the HTTP server as the reactor's listener 0 does. */
    static struct iox_listener_rt fsim_listener;
    fsim_listener = (struct iox_listener_rt){.fd = -1, .proto = &iox_http_protocol, .ctx = w->hs};
    w->r.listeners = &fsim_listener;
    w->r.nlisteners = 1;
    iox_sim_set_sink(w->sim, sink, &w->r);
    w->r.nreactors = 1;
    if (file_start(&w->r, NULL)) abort();
    for (unsigned j = 0; j < w->nc; j++) {
        struct hconn *c = &w->conn[j];
        c->fd = FD0 + (int)j;
        if (!iox_http_adopt(w->hs, c->fd)) abort();
    }
    return 0;
}

/* Fail the k-th live read: -EIO, or 0 bytes (the file "ended" early). It
 * must abort the connection at once (not at its idle timeout: a stream
 * waiting for bytes that never come would pin its snapshot and slot until
 * then); its answers are cut. */
static inline void fsim_read_fault(struct world *w, unsigned k, int eio)
{
    uint64_t ud;
    if (iox_sim_read_peek(w->sim, k, NULL, NULL, NULL, &ud)) return;
    uint32_t idx = iox_ud_idx(ud);
    struct hconn *c = conn_of_slot(w, idx);
    uint16_t gen0 = w->hs->conns[idx].sk.gen;
    if (eio) iox_sim_read_complete(w->sim, k, 0, -EIO, NULL);
    else iox_sim_read_complete(w->sim, k, 0, 0, NULL);
    if (c) c->cut = 1;
    struct iox_conn *cc = &w->hs->conns[idx];
    if (!w->why[0] && iox_conn_in_use(cc) && cc->sk.gen == gen0 && cc->state != HTTP_CONN_S_CLOSING)
        snprintf(w->why, sizeof w->why, "slot %u: %s read did not abort the connection (state %s)", idx,
                 eio ? "failed" : "early-EOF", http_conn_state_names[cc->state]);
    turn(w);
}

/* Fail the k-th live splice with err (-EIO), or complete a file → pipe
 * one with 0 bytes (early EOF, eio 0): the connection must be aborted at
 * once, as for a failed read. */
static inline void fsim_splice_fault(struct world *w, unsigned k, int eio)
{
    uint64_t ud;
    int64_t off_in;
    if (iox_sim_splice_peek(w->sim, k, NULL, &off_in, NULL, NULL, &ud)) return;
    if (!eio && off_in < 0) eio = 1;   /* a 0 from pipe → socket is not an EOF: fail it instead */
    uint32_t idx = iox_ud_idx(ud);
    struct hconn *c = conn_of_slot(w, idx);
    uint16_t gen0 = w->hs->conns[idx].sk.gen;
    iox_sim_splice_complete(w->sim, k, 0, eio ? -EIO : 0, NULL);
    if (c) c->cut = 1;
    struct iox_conn *cc = &w->hs->conns[idx];
    if (!w->why[0] && iox_conn_in_use(cc) && cc->sk.gen == gen0 && cc->state != HTTP_CONN_S_CLOSING)
        snprintf(w->why, sizeof w->why, "slot %u: %s splice did not abort the connection (state %s)", idx,
                 eio ? "failed" : "early-EOF", http_conn_state_names[cc->state]);
    turn(w);
}

static inline void deliver(struct world *w, struct hconn *c, size_t max, size_t chunk)
{
    if (c->in_off >= c->in_len) return;
    size_t k = c->in_len - c->in_off;
    if (k > max) k = max;
    long got = iox_sim_recv(w->sim, c->fd, c->in + c->in_off, k, chunk);
    if (got > 0) c->in_off += (size_t)got;
    turn(w);
}

/* Everything to quiescence: reads completed in full, sends in full. */
static inline void settle(struct world *w)
{
    for (int guard = 0; guard < 100000; guard++) {
        int progress = 0;
        turn(w);
        if (iox_sim_reads(w->sim)) {
            iox_sim_read_complete(w->sim, 0, (size_t)-1, 0, NULL);
            stats.reads_full++;
            turn(w);
            progress = 1;
        }
        if (iox_sim_splices(w->sim)) {
            iox_sim_splice_complete(w->sim, 0, (size_t)-1, 0, NULL);
            stats.splices_full++;
            turn(w);
            progress = 1;
        }
        for (unsigned j = 0; j < w->nc; j++)
            if (iox_sim_has_op(w->sim, IOX_OP_SEND, w->conn[j].fd)) {
                iox_sim_send(w->sim, w->conn[j].fd, 0);
                turn(w);
                progress = 1;
            }
        if (!progress) return;
    }
}

/* After the schedule: no more injected submission failures; the rest of
 * the input for every connection that still reads, quiescence, every peer
 * closes, timers end whatever lingers. */
static inline void fsim_epilogue(struct world *w)
{
    iox_sim_fail_submit(w->sim, IOX_OP_READ, 0, 0);
    iox_sim_fail_submit(w->sim, IOX_OP_SPLICE, 0, 0);
    for (unsigned j = 0; j < w->nc; j++)
        for (int g = 0; g < 1000 && w->conn[j].in_off < w->conn[j].in_len; g++) {
            settle(w);
            if (!iox_sim_has_op(w->sim, IOX_OP_RECV, w->conn[j].fd)) break;
            deliver(w, &w->conn[j], (size_t)-1, 0);
        }
    settle(w);
    for (unsigned j = 0; j < w->nc; j++)
        if (iox_sim_recv_end(w->sim, w->conn[j].fd, 0) == 0) turn(w);
    settle(w);
    iox_reactor_advance_clock(&w->r, w->r.now_ms + 60000);
    settle(w);
}

static inline int check_output(struct world *w, unsigned j)
{
    struct hconn *c = &w->conn[j];
    size_t n;
    const char *out = iox_sim_peer_bytes(w->sim, c->fd, &n);
    size_t pos = 0;
    unsigned k = 0;
    while (pos < n) {
        const char *head = out + pos;
        const char *end = memmem(head, n - pos, "\r\n\r\n", 4);
        if (k >= c->nreq) { snprintf(w->why, sizeof w->why, "c%u: more answers than requests", j); return 1; }
        if (!end) {
            if (c->cut) return 0;
            snprintf(w->why, sizeof w->why, "c%u: answer %u has a cut head", j, k);
            return 1;
        }
        struct expect *x = &c->exp[k];
        size_t hl = (size_t)(end - head) + 4;
        int status = atoi(head + 9);
        const char *cl = memmem(head, hl, "Content-Length: ", 16);
        unsigned long long clen = cl ? strtoull(cl + 16, NULL, 10) : ~0ull;
        if (status != x->status || clen != x->clen) {
            snprintf(w->why, sizeof w->why, "c%u: answer %u is %d (length %llu), want %d (length %llu)", j, k,
                     status, clen, x->status, (unsigned long long)x->clen);
            return 1;
        }
        if (x->status == 206 || x->status == 416) {
            char want[96];
            if (x->status == 206)
                snprintf(want, sizeof want, "Content-Range: bytes %llu-%llu/%llu\r\n", (unsigned long long)x->cr_first,
                         (unsigned long long)x->cr_last, (unsigned long long)x->cr_size);
            else
                snprintf(want, sizeof want, "Content-Range: bytes */%llu\r\n", (unsigned long long)x->cr_size);
            if (!memmem(head, hl, want, strlen(want))) {
                snprintf(w->why, sizeof w->why, "c%u: answer %u lacks '%.*s'", j, k, (int)strlen(want) - 2, want);
                return 1;
            }
        }
        pos += hl;
        size_t have = n - pos < x->blen ? n - pos : x->blen;
        if (have && memcmp(out + pos, x->body, have)) {
            if (getenv("IOX_SEED") || getenv("FUZZ_TRACE"))   /* replaying: show the requests and the answer's head */
                fprintf(stderr, "\n  requests:\n%.*s  answer %u head:\n%.*s", (int)c->in_len, c->in, k, (int)hl, head);
            size_t d = 0;
            while (out[pos + d] == x->body[d]) d++;
            snprintf(w->why, sizeof w->why, "c%u: answer %u (%d, %zu bytes) differs at body byte %zu", j, k, status,
                     x->blen, d);
            return 1;
        }
        pos += have;
        if (have < x->blen) {
            if (c->cut) return 0;
            snprintf(w->why, sizeof w->why, "c%u: answer %u cut after %zu of %zu body bytes", j, k, have, x->blen);
            return 1;
        }
        k++;
        stats.answers++;
    }
    if (k < c->nreq && !c->cut) {
        snprintf(w->why, sizeof w->why, "c%u: %u answers for %u requests", j, k, c->nreq);
        return 1;
    }
    stats.complete_conns += k == c->nreq;
    return 0;
}

/* The books after fsim_epilogue, before file_stop. Returns 1 with w->why
 * set on the first broken one. */
static inline int fsim_check_books(struct world *w)
{
    int failed = w->why[0] != 0;
    for (unsigned j = 0; j < w->nc && !failed; j++) failed = check_output(w, j);
    struct iox_file_streams *fs = iox_file_streams_of(&w->r);
    for (unsigned j = 0; j < w->nc && !failed; j++) {
        int fd = w->conn[j].fd;
        if (iox_sim_closes(w->sim, fd) != 1 || iox_sim_live_ops(w->sim, fd)) {
            failed = 1;
            snprintf(w->why, sizeof w->why, "c%u: closes %u, live ops %u", j, iox_sim_closes(w->sim, fd),
                     iox_sim_live_ops(w->sim, fd));
        }
    }
    if (!failed && (iox_sim_bufs_lent(w->sim) || iox_sim_violations(w->sim) || w->hs->nconns || iox_sim_reads(w->sim))) {
        failed = 1;
        snprintf(w->why, sizeof w->why, "lent %u, conns %u, reads left %u, %s", iox_sim_bufs_lent(w->sim), w->hs->nconns,
                 iox_sim_reads(w->sim), iox_sim_last_violation(w->sim));
    }
    if (!failed && (fs->active || fs->n_stale != w->stale_sent ||
                    fs->n_started != fs->n_done + fs->n_gone + fs->n_errors + fs->n_eof_early)) {
        failed = 1;
        snprintf(w->why, sizeof w->why, "streams: %u active, %llu stale of %llu sent, started %llu != done %llu + gone %llu + errors %llu + eof %llu",
                 fs->active, (unsigned long long)fs->n_stale, (unsigned long long)w->stale_sent,
                 (unsigned long long)fs->n_started, (unsigned long long)fs->n_done, (unsigned long long)fs->n_gone,
                 (unsigned long long)fs->n_errors, (unsigned long long)fs->n_eof_early);
    }
    /* Splice path: no splice left, every pipe back in the pool and open
     * (one a stream left bytes in was made again, not lost). */
    unsigned busy = 0;
    for (uint32_t i = 0; i < fs->npipes; i++)
        busy += fs->pipes[i].busy || fs->pipes[i].rfd < 0 || fs->pipes[i].wfd < 0;
    if (!failed && (iox_sim_splices(w->sim) || busy)) {
        failed = 1;
        snprintf(w->why, sizeof w->why, "splices left %u, pipes not back in the pool %u of %u", iox_sim_splices(w->sim),
                 busy, fs->npipes);
    }
    struct file_reactor *fr = FILE_REACTOR(&w->r);
    if (!failed) {
        struct fs_snapshot *cur = fr->view.cur;
        int fds = count_fds();
        if (cur->hold[0].streams || atomic_load(&cur->claims) != 1 || cur->next ||
            fds != w->fds0 + (int)cur->nstreamed + 2 * (int)fs->npipes) {
            failed = 1;
            snprintf(w->why, sizeof w->why, "snapshot gen %llu: %u streams held, %u claims, %d fds open (baseline %d + %u streamed files + 2 x %u pipes)",
                     (unsigned long long)cur->generation, cur->hold[0].streams, atomic_load(&cur->claims), fds, w->fds0,
                     cur->nstreamed, fs->npipes);
        }
    }
    return failed;
}

/* Stop file mode (frees the last snapshot) and the world; the process's
 * fds must be back to the baseline. Returns 1 with w->why set when not. */
static inline int fsim_stop(struct world *w)
{
    int failed = 0;
    file_stop(&w->r, NULL);
    if (count_fds() != w->fds0) {
        failed = 1;
        if (!w->why[0])
            snprintf(w->why, sizeof w->why, "%d fds open after file_stop, baseline %d", count_fds(), w->fds0);
    }
    iox_http_server_close(w->hs);
    w->r.listeners = NULL;             /* static, not the reactor's to free */
    w->r.nlisteners = 0;
    iox_reactor_fini(&w->r);
    iox_sim_destroy(w->sim);
    w->sim = NULL;
    return failed;
}

#endif
