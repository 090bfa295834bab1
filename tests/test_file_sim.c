/* test_file_sim.c — the file sender through the simulated ring: the
 * playground's file mode (examples/playground/mode_file.c and
 * file_snapshot.c, #included by file_sim_harness.h like test_msg_sim does with mode_hop.c,
 * so the exact playground code runs) on one simulated reactor, streaming
 * through the runtime's file_stream machine (runtime/file/file_stream.c).
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
 * The files, requests, world, epilogue and books are in
 * tests/file_sim_harness.h, shared with tests/fuzz/fuzz_file_stream.c
 * (the same sender on a schedule written by libFuzzer).
 *
 * Replay a failing seed: IOX_SEED=<n> build/tests file_sim. */
#include "iox_test.h"
#include "file_sim_harness.h"

#define MAXREQ 8   /* requests per connection in a seeded schedule */

static uint64_t draw_rnd(void *ctx, uint64_t bound) { return rnd(ctx) % bound; }

/* Complete the k-th live read with a fate. */
static void read_step(struct world *w, uint64_t *s, int faults)
{
    unsigned n = iox_sim_reads(w->sim);
    if (!n) return;
    unsigned k = (unsigned)(rnd(s) % n);
    size_t len;
    iox_sim_read_peek(w->sim, k, NULL, NULL, &len, NULL);
    unsigned f = (unsigned)(rnd(s) % 100);
    if (faults && f < 6) {
        fsim_read_fault(w, k, f < 3);
        f < 3 ? stats.reads_eio++ : stats.reads_eof++;
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

/* Complete the k-th live splice with a fate: full, short, or (faults) a
 * failure / an early end of file. */
static void splice_step(struct world *w, uint64_t *s, int faults)
{
    unsigned n = iox_sim_splices(w->sim);
    if (!n) return;
    unsigned k = (unsigned)(rnd(s) % n);
    size_t len;
    iox_sim_splice_peek(w->sim, k, NULL, NULL, NULL, &len, NULL);
    unsigned f = (unsigned)(rnd(s) % 100);
    if (faults && f < 4) {
        fsim_splice_fault(w, k, f < 2);
        stats.splices_failed++;
        return;
    }
    if (f < 35 && len > 1) {
        iox_sim_splice_complete(w->sim, k, 1 + rnd(s) % (len - 1), 0, NULL);
        stats.splices_short++;
    } else {
        iox_sim_splice_complete(w->sim, k, len, 0, NULL);
        stats.splices_full++;
    }
    turn(w);
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

    uint64_t bake = bakes[rnd(&s) % 4];
    uint32_t chunk = chunks[rnd(&s) % 4];
    int faults = rnd(&s) % 2;
    unsigned nc = 1 + (unsigned)(rnd(&s) % FSIM_MAXC);
    unsigned bufsize = 64u << (rnd(&s) % 3);
    /* Half the seeds take the splice path for streams of 1+ bytes or of
     * 9000+ (the rest read); pipes of one page or the default 64 KiB. */
    static const uint64_t splice_mins[] = {0, 0, 1, 9000};
    fsim_splice_min = splice_mins[rnd(&s) % 4];
    fsim_pipe_size = rnd(&s) % 2 ? 4096 : 0;
    if (fsim_start(w, bake, chunk, nc, bufsize) < 0) {
        fprintf(stderr, "\n  %s\n", w->why);
        free(w);
        return 1;
    }
    for (unsigned j = 0; j < w->nc; j++) {
        struct hconn *c = &w->conn[j];
        unsigned nreq = 1 + (unsigned)(rnd(&s) % MAXREQ);
        for (unsigned k = 0; k < nreq; k++)
            stats.ranges += add_request(c, draw_rnd, &s, FSIM_PICKS_SIM, FSIM_KINDS_SIM) == 1;
    }
    turn(w);

    int stopped = 0;
    for (int step = 0; step < 4000; step++) {
        struct hconn *c = &w->conn[rnd(&s) % w->nc];
        unsigned what = (unsigned)(rnd(&s) % 100);
        if (what < 25) {
            deliver(w, c, 1 + rnd(&s) % 200, 1 + rnd(&s) % 64);
        } else if (what < 50) {
            if (rnd(&s) % 2) read_step(w, &s, faults);
            else splice_step(w, &s, faults);
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
            } else if (faults && e == 5) {    /* no SQE for the next read or splice: the stream cannot go on */
                for (unsigned j = 0; j < w->nc; j++) w->conn[j].cut = 1;
                iox_sim_fail_submit(w->sim, fsim_splice_min && rnd(&s) % 2 ? IOX_OP_SPLICE : IOX_OP_READ, 1, -EBUSY);
                stats.submit_fails++;
            } else if (e < 8) {              /* SIGHUP: a new snapshot, this reactor told */
                file_sighup(NULL);
                on_hup(&w->r, NULL);
                turn(w);
                stats.sighups++;
            } else {                          /* a read completion for a slot whose stream is over */
                uint32_t idx = (uint32_t)(rnd(&s) % w->hs->max_conns);
                struct iox_file_stream *st = &iox_file_streams_of(&w->r)->s[idx];
                uint16_t gen = (uint16_t)(st->gen - 1 - rnd(&s) % 3);
                struct iox_cqe late = {iox_ud(IOX_OP_READ, (unsigned)iox_file_streams_of(&w->r)->owner, gen, idx), (int32_t)(rnd(&s) % 5000), 0};
                iox_reactor_dispatch(&w->r, &late);
                w->stale_sent++;
                stats.stale++;
            }
        }
        int left = 0;
        for (unsigned j = 0; j < w->nc; j++) left |= w->conn[j].in_off < w->conn[j].in_len && !w->conn[j].cut;
        if (!left && step > 200) break;
    }
    fsim_epilogue(w);

    failed = fsim_check_books(w);
    struct iox_file_streams *fs = iox_file_streams_of(&w->r);
    stats.seeds++;
    stats.conns += w->nc;
    stats.started += fs->n_started;
    stats.done += fs->n_done;
    stats.gone += fs->n_gone;
    stats.spliced_streams += fs->n_spliced;
    stats.pipes_renewed += fs->n_pipe_renewed;
    for (unsigned j = 0; j < w->nc; j++) {
        stats.requests += w->conn[j].nreq;
        stats.cut_conns += w->conn[j].cut;
    }
    failed |= fsim_stop(w);
    if (failed)
        fprintf(stderr, "\n  seed %llu failed (%u conns, bake %llu, chunk %u, %s): %s\n"
                "  replay: IOX_SEED=%llu build/tests file_sim\n",
                (unsigned long long)seed, w->nc, (unsigned long long)app.opt.bake_max, app.chunk,
                faults ? "faults" : "clean", w->why, (unsigned long long)seed);
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

static int run_seed_arg(uint64_t seed, void *arg)
{
    (void)arg;
    return run_seed(seed);
}

IOX_TEST(file_sim, seeded_streams_with_faults)
{
    unsigned failures = iox_test_run_seeds(run_seed_arg, NULL, 2000);
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
    if (getenv("IOX_SIM_STATS"))
        fprintf(stderr, "  splice path: %llu streams spliced; splices %llu full, %llu short, %llu failed; %llu pipes made again\n",
                (unsigned long long)stats.spliced_streams, (unsigned long long)stats.splices_full,
                (unsigned long long)stats.splices_short, (unsigned long long)stats.splices_failed,
                (unsigned long long)stats.pipes_renewed);
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
