/* test_file_sim.c — the file sender through the simulated ring: the
 * playground's file mode (examples/playground/mode_file.c and
 * file_snapshot.c, #included below like test_msg_sim does with mode_hop.c,
 * so the exact playground code runs) on one simulated reactor, streaming
 * through the runtime's file_stream machine (runtime/file_stream.c).
 *
 * The snapshot is taken over a temp dir with files of fixed, varied sizes
 * (0 B, 1 B, around 4 KiB, around the per-seed bake threshold, several
 * chunks); the bake threshold (0, 4096, 9000 or 65536) and the chunk size
 * (4096, 5000, 16384 or 65536) are drawn per seed, so the same file is
 * baked in one schedule and streamed in another. A seeded schedule: 1–3
 * connections, each a pipeline of GET/HEAD requests (whole file, Range
 * a-b / a- / -n, unsatisfiable ranges, multi-ranges that are ignored,
 * missing files, a directory index) delivered in random chunks through a
 * small provided-buffer ring; the test completes the positional reads the
 * streams queued (by copying the real file's bytes into the recorded
 * buffer: iox_sim_read_complete) in random order, full or short, and in
 * faulty schedules also -EIO and early EOF; sends full, short or failed;
 * resets mid-stream, an idle timeout, a shutdown, a SIGHUP (new snapshot
 * while streams read the old one), and stale read completions for slots
 * whose stream is over.
 *
 * Invariants: the bytes each peer received are exactly the expected
 * responses (status, Content-Length, Content-Range, body = the file's bytes
 * or range), all of them on a connection the schedule did not cut, a prefix
 * otherwise; every read completed, stale ones dropped and counted (n_stale)
 * without touching memory (ASan); every stream slot freed (active 0, every
 * started stream ended exactly once); every connection closed exactly once
 * with no op left on it (so iox_conn_op_begin/op_end balanced: the close
 * waits for the count to reach 0), no provided buffer lent; no stream holds
 * a snapshot (hold.streams 0) and the process's open fds are the current
 * snapshot's only — every older snapshot was freed — and back to the
 * baseline after file_stop.
 *
 * Replay a failing seed: IOX_SEED=<n> build/tests file_sim. */
#include "iox_test.h"
#include "iox_log.h"
#include "iox_seam_sim.h"
#include "iox_ud.h"
#include "iox_file_stream.h"
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

#define MAXC 3
#define MAXREQ 8
#define FD0 3000   /* simulated sockets, far from the real files' fds */

static uint64_t rnd(uint64_t *s)
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

static int make_files(void)
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

static void remove_files(void)
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

static int count_fds(void)
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
    char in[MAXREQ * 128];
    size_t in_len, in_off;
    struct expect exp[MAXREQ];
    unsigned nreq;
    int cut;                 /* the schedule may have cut its answers */
};

static void add_request(struct hconn *c, uint64_t *s, unsigned *stat_range)
{
    struct expect *x = &c->exp[c->nreq++];
    int head = rnd(s) % 4 == 0;
    unsigned pick = (unsigned)(rnd(s) % (NFILES + 2));
    char range[64] = "";
    const char *path;
    memset(x, 0, sizeof *x);
    if (pick == NFILES) {                       /* missing */
        path = "/nope";
        x->status = 404;
        x->clen = 10;
        x->body = "not found\n";
    } else {
        unsigned fi = pick == NFILES + 1 ? NFILES - 1 : pick;
        path = pick == NFILES + 1 ? "/d/" : files[fi].path;
        uint64_t size = files[fi].size;
        uint64_t a = 0, b = size ? size - 1 : 0;
        x->status = 200;
        switch (rnd(s) % 7) {
        case 0: case 1: case 2: break;          /* whole file */
        case 3:                                 /* a-b */
            if (!size) { snprintf(range, sizeof range, "bytes=0-0"); x->status = 416; break; }
            a = rnd(s) % size;
            b = a + rnd(s) % (size - a);
            snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)a, (unsigned long long)b);
            x->status = 206;
            break;
        case 4:                                 /* a- */
            if (!size) { snprintf(range, sizeof range, "bytes=0-"); x->status = 416; break; }
            a = rnd(s) % size;
            snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)a);
            x->status = 206;
            break;
        case 5:                                 /* -n, or unsatisfiable */
            if (!size || rnd(s) % 3 == 0) {
                snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)size + rnd(s) % 3);
                x->status = 416;
                break;
            }
            {
                uint64_t n = 1 + rnd(s) % size;
                a = size - n;
                snprintf(range, sizeof range, "bytes=-%llu", (unsigned long long)n);
                x->status = 206;
            }
            break;
        default:                                /* several ranges: ignored, 200 */
            snprintf(range, sizeof range, "bytes=0-0,2-3");
            break;
        }
        *stat_range += range[0] != 0;
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
}

/* ---- the world ---- */

struct world {
    struct iox_seam_sim *sim;
    struct iox_reactor r;
    struct iox_server_config cfg;
    struct hconn conn[MAXC];
    unsigned nc;
    uint64_t stale_sent;
    char why[256];
};

static void sink(void *ctx, const struct iox_cqe *cqe) { iox_reactor_dispatch(ctx, cqe); }

static void turn(struct world *w)
{
    do {
        iox_sim_publish(w->sim);
        iox_reactor_flush(&w->r);
    } while (iox_sim_pump(w->sim) > 0);
}

static struct hconn *conn_of_slot(struct world *w, uint32_t idx)
{
    int fd = w->r.conns[idx].fd;
    for (unsigned j = 0; j < w->nc; j++)
        if (w->conn[j].fd == fd) return &w->conn[j];
    return NULL;
}

static struct {
    uint64_t seeds, conns, requests, ranges, answers, complete_conns, cut_conns;
    uint64_t reads_full, reads_short, reads_eio, reads_eof, sends_short, sends_failed;
    uint64_t resets, timeouts, stops, sighups, stale, submit_fails, started, done, gone;
} stats;

/* Complete the k-th live read with a fate. */
static void read_step(struct world *w, uint64_t *s, int faults)
{
    unsigned n = iox_sim_reads(w->sim);
    if (!n) return;
    unsigned k = (unsigned)(rnd(s) % n);
    size_t len;
    uint64_t ud;
    iox_sim_read_peek(w->sim, k, NULL, NULL, &len, &ud);
    unsigned f = (unsigned)(rnd(s) % 100);
    uint32_t idx = iox_ud_idx(ud);
    struct hconn *c = conn_of_slot(w, idx);
    uint16_t gen0 = w->r.conns[idx].gen;
    if (faults && f < 6) {
        /* A failed read or an early EOF aborts the connection at once (not
         * at its idle timeout: a stream waiting for bytes that never come
         * would pin its snapshot and slot until then). */
        if (f < 3) iox_sim_read_complete(w->sim, k, 0, -EIO, NULL);
        else iox_sim_read_complete(w->sim, k, 0, 0, NULL);   /* 0 bytes: the file "ended" early */
        if (c) c->cut = 1;
        f < 3 ? stats.reads_eio++ : stats.reads_eof++;
        struct iox_conn *cc = &w->r.conns[idx];
        if (!w->why[0] && cc->in_use && cc->gen == gen0 && cc->state != HTTP_CONN_S_CLOSING)
            snprintf(w->why, sizeof w->why, "slot %u: %s read did not abort the connection (state %s)", idx,
                     f < 3 ? "failed" : "early-EOF", http_conn_state_names[cc->state]);
        turn(w);
        return;
    }
    if (f < 30 && len > 1) {
        iox_sim_read_complete(w->sim, k, 1 + rnd(s) % (len - 1), 0, NULL);
        stats.reads_short++;
    } else {
        iox_sim_read_complete(w->sim, k, len, 0, NULL);
        stats.reads_full++;
    }
    turn(w);
}

static void deliver(struct world *w, struct hconn *c, size_t max, size_t chunk)
{
    if (c->in_off >= c->in_len) return;
    size_t k = c->in_len - c->in_off;
    if (k > max) k = max;
    long got = iox_sim_recv(w->sim, c->fd, c->in + c->in_off, k, chunk);
    if (got > 0) c->in_off += (size_t)got;
    turn(w);
}

/* Everything to quiescence: reads completed in full, sends in full. */
static void settle(struct world *w)
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
        for (unsigned j = 0; j < w->nc; j++)
            if (iox_sim_has_op(w->sim, IOX_OP_SEND, w->conn[j].fd)) {
                iox_sim_send(w->sim, w->conn[j].fd, 0);
                turn(w);
                progress = 1;
            }
        if (!progress) return;
    }
}

static int check_output(struct world *w, unsigned j)
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
            if (getenv("IOX_SEED"))   /* replaying: show the requests and the answer's head */
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

/* Transitions taken, by (from, event), via the generated tracer. */
static uint64_t taken[FILE_STREAM_STATE_COUNT][FILE_STREAM_EVENT_COUNT];
static void trace(struct iox_file_stream *st, int from, int event, int to)
{
    (void)st; (void)to;
    taken[from][event]++;
}

static int run_seed(uint64_t seed)
{
    static const uint64_t bakes[] = {0, 4096, 9000, 65536};
    static const uint32_t chunks[] = {4096, 5000, 16384, 65536};
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 5;
    struct world *w = calloc(1, sizeof *w);
    int failed = 0;
    int fds0 = count_fds();

    memset(&app, 0, sizeof app);
    app.opt.root = tmpdir;
    app.opt.bake_max = bakes[rnd(&s) % 4];
    app.opt.max_files = 1000;
    app.opt.max_depth = 8;
    app.opt.nreactors = 1;
    app.chunk = chunks[rnd(&s) % 4];
    char why[512] = "";
    if (fs_snapshot_build(&app.opt, 1, &app.latest, why, sizeof why) < 0) {
        fprintf(stderr, "\n  snapshot: %s\n", why);
        free(w);
        return 1;
    }
    app.generation = 1;

    int faults = rnd(&s) % 2;
    w->nc = 1 + (unsigned)(rnd(&s) % MAXC);
    w->cfg.max_conns = MAXC + 1;
    w->cfg.idle_timeout_ms = 1000;
    w->cfg.linger_ms = 100;
    w->cfg.write_cap = 1 << 20;
    w->cfg.shutdown_grace_ms = 500;
    w->cfg.app = &file_app;
    w->sim = iox_sim_create(8, 64u << (rnd(&s) % 3));
    if (!w->sim || iox_reactor_init_sim(&w->r, iox_sim_seam(w->sim), &w->cfg)) abort();
    iox_sim_set_sink(w->sim, sink, &w->r);
    w->r.nreactors = 1;
    if (file_start(&w->r, NULL)) abort();
    for (unsigned j = 0; j < w->nc; j++) {
        struct hconn *c = &w->conn[j];
        c->fd = FD0 + (int)j;
        if (!iox_reactor_adopt(&w->r, c->fd)) abort();
        unsigned nreq = 1 + (unsigned)(rnd(&s) % MAXREQ);
        for (unsigned k = 0; k < nreq; k++) {
            unsigned nr = 0;
            add_request(c, &s, &nr);
            stats.ranges += nr;
        }
    }
    turn(w);

    int stopped = 0;
    for (int step = 0; step < 4000; step++) {
        struct hconn *c = &w->conn[rnd(&s) % w->nc];
        unsigned what = (unsigned)(rnd(&s) % 100);
        if (what < 25) {
            deliver(w, c, 1 + rnd(&s) % 200, 1 + rnd(&s) % 64);
        } else if (what < 50) {
            read_step(w, &s, faults);
        } else if (what < 75) {
            if (iox_sim_has_op(w->sim, IOX_OP_SEND, c->fd)) {
                unsigned f = (unsigned)(rnd(&s) % 100);
                if (faults && f < 2) { c->cut = 1; iox_sim_send(w->sim, c->fd, -EPIPE); stats.sends_failed++; }
                else if (f < 40) { iox_sim_send(w->sim, c->fd, (int)(1 + rnd(&s) % 3000)); stats.sends_short++; }
                else iox_sim_send(w->sim, c->fd, 0);
                turn(w);
            }
        } else if (what < 97) {
            turn(w);
        } else {
            /* Rare events. */
            unsigned e = (unsigned)(rnd(&s) % 10);
            if (faults && e < 3) {            /* reset: mid-stream when a stream runs */
                if (iox_sim_recv_end(w->sim, c->fd, -ECONNRESET) == 0) { c->cut = 1; stats.resets++; }
                turn(w);
            } else if (faults && e == 3) {    /* every connection idle past its deadline */
                for (unsigned j = 0; j < w->nc; j++) w->conn[j].cut = 1;
                iox_reactor_advance_clock(&w->r, w->r.now_ms + 1500);
                turn(w);
                stats.timeouts++;
            } else if (faults && e == 4 && !stopped) {
                for (unsigned j = 0; j < w->nc; j++) w->conn[j].cut = 1;
                stopped = 1;
                iox_reactor_begin_stop(&w->r);
                turn(w);
                stats.stops++;
            } else if (faults && e == 5) {    /* no SQE for the next read: the stream cannot go on */
                for (unsigned j = 0; j < w->nc; j++) w->conn[j].cut = 1;
                iox_sim_fail_submit(w->sim, IOX_OP_READ, 1, -EBUSY);
                stats.submit_fails++;
            } else if (e < 8) {              /* SIGHUP: a new snapshot, this reactor told */
                file_sighup(NULL);
                on_hup(&w->r, NULL);
                turn(w);
                stats.sighups++;
            } else {                          /* a read completion for a slot whose stream is over */
                uint32_t idx = (uint32_t)(rnd(&s) % w->r.max_conns);
                struct iox_file_stream *st = &iox_file_streams_of(&w->r)->s[idx];
                uint16_t gen = (uint16_t)(st->gen - 1 - rnd(&s) % 3);
                struct iox_cqe late = {iox_ud(IOX_OP_READ, IOX_OWN_FILE, gen, idx), (int32_t)(rnd(&s) % 5000), 0};
                iox_reactor_dispatch(&w->r, &late);
                w->stale_sent++;
                stats.stale++;
            }
        }
        int left = 0;
        for (unsigned j = 0; j < w->nc; j++) left |= w->conn[j].in_off < w->conn[j].in_len && !w->conn[j].cut;
        if (!left && step > 200) break;
    }
    iox_sim_fail_submit(w->sim, IOX_OP_READ, 0, 0);
    /* The rest of the input for connections nothing cut, then quiescence. */
    for (unsigned j = 0; j < w->nc; j++)
        for (int g = 0; g < 1000 && w->conn[j].in_off < w->conn[j].in_len; g++) {
            settle(w);
            if (!iox_sim_has_op(w->sim, IOX_OP_RECV, w->conn[j].fd)) break;
            deliver(w, &w->conn[j], (size_t)-1, 0);
        }
    settle(w);
    /* Every peer closes; timers end whatever lingers. */
    for (unsigned j = 0; j < w->nc; j++)
        if (iox_sim_recv_end(w->sim, w->conn[j].fd, 0) == 0) turn(w);
    settle(w);
    iox_reactor_advance_clock(&w->r, w->r.now_ms + 60000);
    settle(w);

    failed = w->why[0] != 0;
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
    if (!failed && (iox_sim_bufs_lent(w->sim) || iox_sim_violations(w->sim) || w->r.nconns || iox_sim_reads(w->sim))) {
        failed = 1;
        snprintf(w->why, sizeof w->why, "lent %u, conns %u, reads left %u, %s", iox_sim_bufs_lent(w->sim), w->r.nconns,
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
    struct file_reactor *fr = w->r.services[FILE_SERVICE];
    if (!failed) {
        struct fs_snapshot *cur = fr->view.cur;
        int fds = count_fds();
        if (cur->hold[0].streams || atomic_load(&cur->claims) != 1 || cur->next ||
            fds != fds0 + (int)cur->nstreamed) {
            failed = 1;
            snprintf(w->why, sizeof w->why, "snapshot gen %llu: %u streams held, %u claims, %d fds open (baseline %d + %u streamed files)",
                     (unsigned long long)cur->generation, cur->hold[0].streams, atomic_load(&cur->claims), fds, fds0,
                     cur->nstreamed);
        }
    }
    stats.seeds++;
    stats.conns += w->nc;
    stats.started += fs->n_started;
    stats.done += fs->n_done;
    stats.gone += fs->n_gone;
    for (unsigned j = 0; j < w->nc; j++) {
        stats.requests += w->conn[j].nreq;
        stats.cut_conns += w->conn[j].cut;
    }
    file_stop(&w->r, NULL);
    if (!failed && count_fds() != fds0) {
        failed = 1;
        snprintf(w->why, sizeof w->why, "%d fds open after file_stop, baseline %d", count_fds(), fds0);
    }
    if (failed)
        fprintf(stderr, "\n  seed %llu failed (%u conns, bake %llu, chunk %u, %s): %s\n"
                "  replay: IOX_SEED=%llu build/tests file_sim\n",
                (unsigned long long)seed, w->nc, (unsigned long long)app.opt.bake_max, app.chunk,
                faults ? "faults" : "clean", w->why, (unsigned long long)seed);
    iox_reactor_fini(&w->r);
    iox_sim_destroy(w->sim);
    free(w);
    return failed;
}

static int quiet_level;
static int suite_init(void)
{
    quiet_level = iox_log_level;
    if (!getenv("IOX_LOG")) iox_log_level = -1;   /* injected read errors are logged as errors */
    file_stream_trace = trace;
    return make_files();
}
static int suite_clean(void)
{
    iox_log_level = quiet_level;
    file_stream_trace = NULL;
    remove_files();
    return 0;
}

IOX_TEST(file_sim, seeded_streams_with_faults)
{
    const char *one = getenv("IOX_SEED");
    const char *many = getenv("IOX_SIM_SEEDS");
    uint64_t first = one ? strtoull(one, NULL, 10) : 1;
    uint64_t nseeds = one ? 1 : many ? strtoull(many, NULL, 10) : 2000;
    unsigned failures = 0;
    for (uint64_t seed = first; seed < first + nseeds; seed++) {
        failures += (unsigned)run_seed(seed);
        if (failures > 5) break;
    }
    CU_ASSERT_EQUAL(failures, 0);
    if (getenv("IOX_SIM_STATS"))
        fprintf(stderr, "\n  file_sim: %llu seeds, %llu conns (%llu cut by the schedule), %llu requests (%llu with Range), "
                "%llu answers checked; streams %llu started, %llu done, %llu gone with their connection; "
                "reads %llu full, %llu short, %llu EIO, %llu early EOF; sends %llu short, %llu failed; "
                "%llu resets, %llu idle timeouts, %llu shutdowns, %llu SIGHUPs, %llu stale read completions, %llu read submissions failed\n",
                (unsigned long long)stats.seeds, (unsigned long long)stats.conns, (unsigned long long)stats.cut_conns,
                (unsigned long long)stats.requests, (unsigned long long)stats.ranges, (unsigned long long)stats.answers,
                (unsigned long long)stats.started, (unsigned long long)stats.done, (unsigned long long)stats.gone,
                (unsigned long long)stats.reads_full, (unsigned long long)stats.reads_short,
                (unsigned long long)stats.reads_eio, (unsigned long long)stats.reads_eof,
                (unsigned long long)stats.sends_short, (unsigned long long)stats.sends_failed,
                (unsigned long long)stats.resets, (unsigned long long)stats.timeouts, (unsigned long long)stats.stops,
                (unsigned long long)stats.sighups, (unsigned long long)stats.stale,
                (unsigned long long)stats.submit_fails);
    if (getenv("IOX_SIM_STATS")) {
        fprintf(stderr, "  file_stream transitions taken:");
        for (int a = 0; a < FILE_STREAM_STATE_COUNT; a++)
            for (int e = 0; e < FILE_STREAM_EVENT_COUNT; e++)
                if (taken[a][e]) fprintf(stderr, " %s/%s %llu", file_stream_state_names[a], file_stream_event_names[e],
                                         (unsigned long long)taken[a][e]);
        fprintf(stderr, "\n");
    }
}

IOX_SUITE(file_sim, suite_init, suite_clean);
