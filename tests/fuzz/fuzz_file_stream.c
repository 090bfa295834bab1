/* fuzz_file_stream.c — libFuzzer target for the file sender: the playground's
 * file mode (examples/playground/mode_file.c, file_snapshot.c) streaming
 * through the runtime's generated file_stream machine (runtime/file/file_stream.c)
 * on the simulated ring, as tests/test_file_sim.c drives it (its harness:
 * tests/file_sim_harness.h), with a schedule written by the fuzzer.
 *
 * The temp dir of files (0 B, 1 B, 1000, 4095, 4096, 4097, 9000, 65536,
 * 150001 bytes, d/index.html) is made once per process and removed at exit.
 * Each input builds its own snapshot (its bake threshold) and frees it.
 *
 * Input: one config byte, then a program of ops (op byte % OP__COUNT, then
 * its operands; a missing operand reads as 0). `c` picks a connection
 * (c % connections).
 *   config  bits 0-1: bake threshold 0 / 4096 / 9000 / 65536 (files up to it
 *           are answered from memory, larger ones streamed); bits 2-3: chunk
 *           4096 / 5000 / 16384 / 65536; bits 4-5: 1 + b % 3 connections;
 *           bits 6-7: provided buffers of 64 << (b % 3) bytes (8 of them)
 *   REQ c h t k [..]  append a request to c's input (not yet sent): h % 4
 *                     == 0 HEAD, else GET; t % 13 the target (the 10 files,
 *                     a missing one, "/d/" = d/index.html, "/d" → 301);
 *                     k % 12 the Range form (0-2 none, 3 a-b, 4 a-, 5 -n or
 *                     unsatisfiable, 6 several ranges, 7 b past the end, 8
 *                     b < a, 9 suffix longer than the file, 10 -0, 11
 *                     another unit), then its numbers: one byte when the
 *                     bound is <= 256, else three (big-endian) — the order
 *                     of add_request in file_sim_harness.h; at most 16
 *                     requests per connection
 *   DELIVER c m k     the peer sends up to m bytes of its input (m 0: all),
 *                     in recv completions of at most k bytes (0: a buffer);
 *                     what the ring had no buffer for (-ENOBUFS) is sent by
 *                     a later DELIVER
 *   READ k f n        complete live positional read k % reads: f % 8 0-3
 *                     in full, 4-5 short at 1 + n * (len - 1) / 256 bytes,
 *                     6 -EIO, 7 0 bytes (the file ended early); the last two
 *                     must abort the connection at once
 *   SEND c s          complete c's send: s 0 in full, 1-127 short at s
 *                     bytes, 128-255 short at (s - 127) * 256 bytes
 *   SENDERR c         fail c's send (-EPIPE)
 *   TURN              one loop turn
 *   RESET c           c's recv ends with -ECONNRESET
 *   EOF c             c's peer shuts its side — only once all of c's input
 *                     is sent; c gets no more requests, and must still get
 *                     every answer
 *   CLOCK d           the clock moves d * 10 ms (idle timeout 1000 ms)
 *   STOP              graceful shutdown (grace 500 ms)
 *   NOSQE n           the next 1 + n % 4 read submissions fail (-EBUSY: no
 *                     SQE): a stream that cannot queue its read aborts its
 *                     connection
 *   SIGHUP            a new snapshot is built and published, the reactor
 *                     told (streams running finish from the old one)
 *   STALE s g r       a read completion (res r * 20) for slot s % slots
 *                     with the stream's generation - 1 - g % 3: dropped and
 *                     counted
 * Then file_sim's epilogue: no more submission failures, the rest of the
 * input to every connection that still reads, reads and sends completed in
 * full to quiescence, every peer's EOF, the clock +60 s.
 *
 * A connection's answers may be cut (a prefix is enough) when the program
 * reset it, failed its send, failed or ended a read of its stream, aborted
 * its stream for want of an SQE (its slot's stream ended FAILED), stopped
 * the server, or moved the clock past its idle or linger deadline (read
 * from the connection just before the move). Otherwise every answer must
 * come in full — EOF included.
 *
 * Invariants (abort() on violation), file_sim's: the exact bytes of every
 * answer (status, Content-Length, Content-Range, the file's bytes or range);
 * a failed read aborts its connection at once; each connection closed
 * exactly once with no op left (op_begin/op_end balanced: the close waits
 * for the read), no read left in the ring, no provided buffer lent, no
 * simulator violation, no connection left; every stream slot freed and each
 * started stream ended exactly once (done + gone + errors + early EOF);
 * stale completions all dropped and counted; no stream holding a snapshot,
 * only the current snapshot's files open, and none after file_stop. And:
 * streams fail only as often as faults were injected (errors + early EOF <=
 * -EIO + 0-byte reads + refused submissions).
 *
 * FUZZ_TRACE=1 prints the ops; FUZZ_STATS=1 the file_stream transitions
 * taken, at exit; IOX_LOG=debug the runtime's log. */
#include "fuzz_common.h"
#include "file_sim_harness.h"

enum { OP_REQ, OP_DELIVER, OP_READ, OP_SEND, OP_SENDERR, OP_TURN, OP_RESET, OP_EOF, OP_CLOCK,
       OP_STOP, OP_NOSQE, OP_SIGHUP, OP_STALE, OP__COUNT };
static const char *const OP_NAMES[] = {"REQ", "DELIVER", "READ", "SEND", "SENDERR", "TURN", "RESET",
                                       "EOF", "CLOCK", "STOP", "NOSQE", "SIGHUP", "STALE"};

#define MAXSTEPS 4096

struct cursor { const uint8_t *d; size_t n, i; };

static unsigned byte(struct cursor *k) { return k->i < k->n ? k->d[k->i++] : 0; }

/* add_request's choices, from the input. */
static uint64_t draw_input(void *ctx, uint64_t bound)
{
    struct cursor *k = ctx;
    if (bound <= 256) return byte(k) % bound;
    uint64_t v = (uint64_t)byte(k) << 16;
    v |= (uint64_t)byte(k) << 8;
    v |= byte(k);
    return v % bound;
}

static int tracing;

/* FUZZ_STATS=1: file_stream transitions taken, by (from, event), at exit. */
static uint64_t taken[FILE_STREAM_STATE_COUNT][FILE_STREAM_EVENT_COUNT];
static void count_transition(struct iox_file_stream *st, int from, int event, int to)
{
    (void)st; (void)to;
    taken[from][event]++;
}

static void cleanup(void)
{
    remove_files();
    if (!file_stream_trace) return;
    fprintf(stderr, "file_stream transitions taken:");
    for (int a = 0; a < FILE_STREAM_STATE_COUNT; a++)
        for (int e = 0; e < FILE_STREAM_EVENT_COUNT; e++)
            if (taken[a][e]) fprintf(stderr, " %s/%s %llu", file_stream_state_names[a], file_stream_event_names[e],
                                     (unsigned long long)taken[a][e]);
    fprintf(stderr, "\n");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    if (!getenv("IOX_LOG")) iox_log_level = -1;   /* injected read errors are logged as errors */
    tracing = getenv("FUZZ_TRACE") != NULL;
    if (getenv("FUZZ_STATS")) file_stream_trace = count_transition;
    if (make_files()) {
        fprintf(stderr, "fuzz_file_stream: cannot make the files in %s\n", tmpdir);
        abort();
    }
    atexit(cleanup);
    return 0;
}

static void fail(struct world *w, const char *what)
{
    fprintf(stderr, "\nFUZZ INVARIANT %s: %s\n  bake %llu, chunk %u, %u conns\n", what, w->why,
            (unsigned long long)app.opt.bake_max, app.chunk, w->nc);
    for (unsigned j = 0; j < w->nc; j++)
        fprintf(stderr, "  c%u: %u requests, %zu of %zu bytes sent, cut %d\n", j, w->conn[j].nreq,
                w->conn[j].in_off, w->conn[j].in_len, w->conn[j].cut);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t bakes[] = {0, 4096, 9000, 65536};
    static const uint32_t chunks[] = {4096, 5000, 16384, 65536};
    if (size < 1) return 0;
    struct cursor in = {data, size, 1};
    const uint8_t conf = data[0];
    struct world *w = calloc(1, sizeof *w);
    FUZZ_CHECK(w != NULL);
    if (fsim_start(w, bakes[conf & 3], chunks[(conf >> 2) & 3], 1 + ((conf >> 4) & 3) % 3,
                   64u << (((conf >> 6) & 3) % 3)) < 0) {
        fprintf(stderr, "fuzz_file_stream: %s\n", w->why);
        abort();
    }
    uint32_t slot[FSIM_MAXC];
    int shut[FSIM_MAXC] = {0};
    for (unsigned j = 0; j < w->nc; j++) {
        /* Slots are never reused: one adoption per connection. */
        slot[j] = FSIM_MAXC + 1;
        for (uint32_t i = 0; i < w->hs->max_conns; i++)
            if (iox_conn_in_use(&w->hs->conns[i]) && w->hs->conns[i].sk.fd == w->conn[j].fd) slot[j] = i;
        FUZZ_CHECK(slot[j] < w->hs->max_conns);
    }
    struct iox_file_streams *fs = iox_file_streams_of(&w->r);
    uint64_t faults = 0;
    int stopped = 0;
    turn(w);

    for (unsigned steps = 0; in.i < in.n && steps < MAXSTEPS; steps++) {
        unsigned op = byte(&in) % OP__COUNT;
        unsigned j = 0;
        if (op == OP_REQ || op == OP_DELIVER || op == OP_SEND || op == OP_SENDERR || op == OP_RESET || op == OP_EOF)
            j = byte(&in) % w->nc;
        struct hconn *c = &w->conn[j];
        if (tracing) fprintf(stderr, "op %s c%u\n", OP_NAMES[op], j);
        switch (op) {
        case OP_REQ:
            if (shut[j]) {                     /* its peer is done sending: the choices are skipped */
                struct hconn scratch = {0};
                add_request(&scratch, draw_input, &in, FSIM_PICKS_ALL, FSIM_KINDS_ALL);
                break;
            }
            add_request(c, draw_input, &in, FSIM_PICKS_ALL, FSIM_KINDS_ALL);
            break;
        case OP_DELIVER: {
            unsigned m = byte(&in), k = byte(&in);
            deliver(w, c, m ? m : (size_t)-1, k);
            break;
        }
        case OP_READ: {
            unsigned k = byte(&in), f = byte(&in) % 8, n = byte(&in);
            unsigned nr = iox_sim_reads(w->sim);
            if (!nr) break;
            k %= nr;
            size_t len;
            iox_sim_read_peek(w->sim, k, NULL, NULL, &len, NULL);
            if (f >= 6) {
                fsim_read_fault(w, k, f == 6);
                faults++;
                if (w->why[0]) fail(w, "read fault");
                break;
            }
            size_t max = f >= 4 && len > 1 ? 1 + (size_t)n * (len - 1) / 256 : len;
            iox_sim_read_complete(w->sim, k, max, 0, NULL);
            turn(w);
            break;
        }
        case OP_SEND: {
            unsigned s = byte(&in);
            int res = s == 0 ? 0 : s < 128 ? (int)s : (int)(s - 127) * 256;
            if (iox_sim_send(w->sim, c->fd, res) == 0) turn(w);
            break;
        }
        case OP_SENDERR:
            if (iox_sim_send(w->sim, c->fd, -EPIPE) == 0) { c->cut = 1; turn(w); }
            break;
        case OP_TURN:
            turn(w);
            break;
        case OP_RESET:
            if (iox_sim_recv_end(w->sim, c->fd, -ECONNRESET) == 0) { c->cut = 1; turn(w); }
            break;
        case OP_EOF:
            if (!shut[j] && c->in_off == c->in_len && iox_sim_recv_end(w->sim, c->fd, 0) == 0) {
                shut[j] = 1;
                turn(w);
            }
            break;
        case OP_CLOCK: {
            /* A connection whose idle or linger timer will fire may be cut
             * (its deadline is the runtime's: last activity + 1000 ms, or
             * the final answer + 100 ms); the others must go on. */
            uint64_t now = w->r.now_ms + 10u * byte(&in);
            for (unsigned i = 0; i < w->nc; i++) {
                const struct iox_conn *cc = &w->hs->conns[slot[i]];
                if (iox_conn_in_use(cc) && cc->sk.tlist && cc->sk.deadline_ms <= now) w->conn[i].cut = 1;
            }
            iox_reactor_advance_clock(&w->r, now);
            turn(w);
            break;
        }
        case OP_STOP:
            if (!stopped) {
                for (unsigned i = 0; i < w->nc; i++) w->conn[i].cut = 1;
                stopped = 1;
                iox_reactor_begin_stop(&w->r);
                turn(w);
            }
            break;
        case OP_NOSQE: {
            unsigned n = 1 + byte(&in) % 4;
            iox_sim_fail_submit(w->sim, IOX_OP_READ, n, -EBUSY);
            faults += n;
            break;
        }
        case OP_SIGHUP:
            file_sighup(NULL);
            on_hup(&w->r, NULL);
            turn(w);
            break;
        case OP_STALE: {
            uint32_t idx = byte(&in) % w->hs->max_conns;
            unsigned g = byte(&in) % 3, r = byte(&in);
            struct iox_file_stream *st = &fs->s[idx];
            uint16_t gen = (uint16_t)(st->gen - 1 - g);
            struct iox_cqe late = {iox_ud(IOX_OP_READ, (unsigned)iox_file_streams_of(&w->r)->owner, gen, idx), (int32_t)r * 20, 0};
            iox_reactor_dispatch(&w->r, &late);
            w->stale_sent++;
            break;
        }
        }
        /* A stream that could not queue its read (NOSQE) aborted its
         * connection: its answers may be cut. */
        for (unsigned i = 0; i < w->nc; i++)
            if (fs->s[slot[i]].state == FILE_STREAM_S_FAILED) w->conn[i].cut = 1;
        if (w->why[0]) fail(w, "schedule");
    }

    fsim_epilogue(w);
    if (fsim_check_books(w)) fail(w, "books");
    if (fs->n_errors + fs->n_eof_early > faults) {
        snprintf(w->why, sizeof w->why, "%llu read errors + %llu early EOFs, %llu faults injected",
                 (unsigned long long)fs->n_errors, (unsigned long long)fs->n_eof_early,
                 (unsigned long long)faults);
        fail(w, "spurious stream failure");
    }
    if (tracing)
        fprintf(stderr, "streams %llu started, %llu done, %llu gone, %llu errors, %llu early EOF, %llu reads (%llu short), %llu stale\n",
                (unsigned long long)fs->n_started, (unsigned long long)fs->n_done, (unsigned long long)fs->n_gone,
                (unsigned long long)fs->n_errors, (unsigned long long)fs->n_eof_early,
                (unsigned long long)fs->n_reads, (unsigned long long)fs->n_short, (unsigned long long)fs->n_stale);
    if (fsim_stop(w)) fail(w, "fds after file_stop");
    free(w);
    return 0;
}
