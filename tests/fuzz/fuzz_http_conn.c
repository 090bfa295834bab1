/* fuzz_http_conn.c — libFuzzer target for the generated HTTP connection
 * machine, driven through the simulated ring (ioxide/seam_sim.h) the way
 * tests/test_conn_sim.c drives it, except that the fuzzer writes the
 * schedule.
 *
 * Input: one config byte, then a program of ops (op byte, operands):
 *   config  bits 0-1: 1,2,4,8 provided buffers; bits 2-3: 16..128-byte
 *           buffers; bits 4-5: write cap 1 MiB / 1 KiB / 64 B / 4 KiB;
 *           bit 6: small parser limits
 *   RECV n c <n bytes>  the peer sends n (1..256) bytes; delivered in
 *                       recv completions of at most c bytes each
 *   TMPL t c            the peer sends canned request t (see TEMPLATES)
 *   DELIVER c           deliver what an -ENOBUFS left in the "socket"
 *   SEND s              complete the oldest send: s == 0 in full, else
 *                       short at s bytes
 *   SENDERR e           fail the oldest send (-EPIPE / -ECONNRESET)
 *   TURN                one loop turn: publish buffers, flush, pump
 *   ASYNC i             finish pending async request i (in order of the
 *                       path: /async answers, /stream streams, /abort aborts)
 *   EOF                 the peer shuts its side (only once the socket is empty)
 *   RESET               recv fails with -ECONNRESET
 *   CLOCK d             advance the clock by d*10 ms (idle 1000, linger 100)
 *   STOP                graceful shutdown (iox_reactor_begin_stop)
 *   STALE o             a CQE for the connection's previous generation
 * When the program ends an epilogue finishes every async request, drains
 * sends, sends EOF and advances time until the connection is gone.
 *
 * Invariants checked (abort() on violation): the socket closed exactly once,
 * no provided buffer still lent, no violation booked by the simulator (double
 * buffer return, op after close, close with live ops), no live op left, the
 * connection slot freed. Differential: unless an async request aborted,
 * the bytes the peer received are a prefix of what a reference run produces
 * from the same delivered bytes in one piece with prompt completions — and
 * all of it when nothing failed (no reset, send error, timeout, shutdown,
 * bytes left undelivered). Connection header lines are ignored in the
 * comparison: an early EOF or a shutdown legitimately turns keep-alive off. */
#include "fuzz_common.h"
#include "http_conn_machine.h"
#include <ioxide/http_conn.h>
#include <ioxide/log.h>
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include <errno.h>

#define FD 7

static const char *const TEMPLATES[] = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n",
    "GET /async HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /big HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.0\r\n\r\n",
    "BAD\r\n\r\n",
    "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST /async HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    "GET /abort HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    "GET /async HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    "10\r\n0123456789abcdef\r\n0\r\n\r\n",
    "\r\n",
    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\nabcdefg",
    "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    "POST /hold HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 90\r\n\r\n",
    "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefgh",
    "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n90\r\n",
};
#define NTEMPLATES (sizeof TEMPLATES / sizeof TEMPLATES[0])

enum { OP_RECV, OP_TMPL, OP_DELIVER, OP_SEND, OP_SENDERR, OP_TURN, OP_ASYNC,
       OP_EOF, OP_RESET, OP_CLOCK, OP_STOP, OP_STALE, OP__COUNT };

/* ---- the application ---- */

enum { A_REPLY, A_STREAM, A_ABORT, A_HOLD };
struct pending { struct iox_conn_ref ref; uint8_t kind, chunks_left, stream_started; };
static struct pending pend[64];
static unsigned npend;
static int aborted_any;          /* an async request was aborted: output timing-dependent */
static char big_body[3000];

#define STREAM_CHUNK 40
#define STREAM_CHUNKS 3

/* /echo: a Content-Length body streamed back piece by piece (a
 * Content-Length answer: the same bytes however the input was cut); a
 * chunked one read whole (limit 64: 413 beyond) and sent back in one
 * answer. /hold: streamed, every piece held once, released by the ASYNC op
 * (the pending entry). */
static int echo_piece(struct iox_conn *c, const char *d, size_t n, int status, void *arg)
{
    struct pending *p = arg;
    if (status == IOX_BODY_PIECE) {
        if (p && !p->stream_started) {   /* hold it once; the harness releases */
            p->stream_started = 1;
            return IOX_BODY_HOLD;
        }
        if (p) p->stream_started = 0;
        FUZZ_CHECK(iox_resp_chunk(c, d, n) == 0);
        iox_conn_flush(c);
        return IOX_BODY_OK;
    }
    if (p) p->ref.hs = NULL;   /* done (or gone) */
    if (status == IOX_BODY_END) {
        FUZZ_CHECK(iox_resp_end(c, NULL) == 0);
        iox_conn_async_done(c);
    }
    return IOX_BODY_OK;
}

static void echo_whole(struct iox_conn *c, const char *d, size_t n, int status, void *arg)
{
    (void)arg;
    if (status != IOX_BODY_END) return;
    iox_resp_simple(c, 200, "text/plain", d, n);
    iox_conn_async_done(c);
}

static int app_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    int kind = -1;
    int echo = req->path_len == 5 && !memcmp(req->path, "/echo", 5);
    int hold = req->path_len == 5 && !memcmp(req->path, "/hold", 5);
    if ((echo || hold) && req->body_kind == IOX_HTTP_BODY_NONE) {
        iox_resp_simple(c, 200, "text/plain", "", 0);
        return IOX_HANDLED;
    }
    if (echo && req->body_kind == IOX_HTTP_BODY_CHUNKED) {
        FUZZ_CHECK(iox_req_body_read(c, req, 64, echo_whole, NULL) == 0);
        return IOX_ASYNC;
    }
    if (echo || hold) {
        struct pending *p = NULL;
        if (hold) {
            p = &pend[npend++];
            *p = (struct pending){iox_conn_ref(c), A_HOLD, 0, 0};
        }
        FUZZ_CHECK(iox_req_body_stream(c, req, echo_piece, p) == 0);
        FUZZ_CHECK(iox_resp_start(c, 200, "text/plain", NULL, (int64_t)req->content_length) == 0);
        return IOX_ASYNC;
    }
    if (req->path_len == 6 && !memcmp(req->path, "/async", 6)) kind = A_REPLY;
    else if (req->path_len == 7 && !memcmp(req->path, "/stream", 7)) kind = A_STREAM;
    else if (req->path_len == 6 && !memcmp(req->path, "/abort", 6)) kind = A_ABORT;
    if (getenv("FUZZ_TRACE"))
        fprintf(stderr, "request %.*s %.*s body=%u state=%s\n", (int)req->method_len, req->method,
                (int)req->target_len, req->target, req->body_kind, http_conn_state_names[c->state]);
    /* Entries are never reused (drain hooks point at them): past the
     * table, requests are answered 503 at once — by request count, so the
     * reference run decides alike. */
    if ((kind >= 0 || hold) && npend == sizeof pend / sizeof pend[0]) {
        iox_resp_simple(c, 503, "text/plain", "full", 4);
        return IOX_HANDLED;
    }
    if (kind >= 0) {
        pend[npend++] = (struct pending){iox_conn_ref(c), (uint8_t)kind, STREAM_CHUNKS, 0};
        return IOX_ASYNC;
    }
    if (req->path_len == 4 && !memcmp(req->path, "/big", 4))
        iox_resp_simple(c, 200, "text/plain", big_body, sizeof big_body);
    else if (req->path_len == 1 && req->path[0] == '/')
        iox_resp_simple(c, 200, "text/plain", "ok", 2);
    else
        iox_resp_simple(c, 404, "text/plain", "nf", 2);
    return IOX_HANDLED;
}
static const struct iox_http_app app = {app_request};

static char chunk_bytes[STREAM_CHUNK];

/* Streamed response: the drain hook writes the next chunk each time the
 * previous one has gone out; the last chunk leaves the request to be ended
 * by the harness (iox_conn_async_done from outside the hook). */
static void on_drain(struct iox_conn *c, void *arg)
{
    struct pending *p = arg;
    if (!p->chunks_left) return;
    FUZZ_CHECK(iox_resp_write(c, chunk_bytes, STREAM_CHUNK) == 0);
    p->chunks_left--;
    iox_conn_flush(c);
    if (!p->chunks_left) iox_conn_set_drain_hook(c, NULL, NULL);
}

/* Advance pending async request i. Returns 1 while it still wants work. */
static void async_step(unsigned i)
{
    struct pending *p = &pend[i];
    struct iox_conn *c = iox_conn_deref(p->ref);
    if (getenv("FUZZ_TRACE")) fprintf(stderr, "async_step %u kind %u conn %s\n", i, p->kind, c ? http_conn_state_names[c->state] : "gone");
    int done = 1;
    if (c) {
        switch (p->kind) {
        case A_REPLY:
            iox_resp_simple(c, 200, "text/plain", "async", 5);
            iox_conn_async_done(c);
            break;
        case A_ABORT:
            aborted_any = 1;
            iox_conn_abort(c);
            break;
        case A_HOLD:
            iox_req_body_release(c);   /* no-op unless a piece is held */
            done = 0;                  /* the body's END marks it done */
            break;
        case A_STREAM:
            if (!p->stream_started) {
                p->stream_started = 1;
                FUZZ_CHECK(iox_resp_head(c, 200, "text/plain", (uint64_t)STREAM_CHUNK * (STREAM_CHUNKS + 1), NULL) == 0);
                FUZZ_CHECK(iox_resp_write(c, chunk_bytes, STREAM_CHUNK) == 0);
                iox_conn_flush(c);
                iox_conn_set_drain_hook(c, on_drain, p);
                done = 0;
            } else if (p->chunks_left) {
                done = 0;           /* still streaming: the drain hook moves it */
            } else {
                iox_conn_async_done(c);
            }
            break;
        }
    }
    if (done) {
        /* Pending entries are referenced by drain hooks: keep order stable
         * by marking done instead of compacting while hooks may be set. */
        p->ref.hs = NULL;
    }
}

static unsigned live_pending(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < npend; i++) n += pend[i].ref.hs != NULL;
    return n;
}

/* ---- harness (tests/test_conn_sim.c's, with books turned into aborts) ---- */

struct h {
    struct iox_seam_sim *sim;
    struct iox_reactor r;
    struct iox_server_config cfg;
    struct iox_http_config hcfg;
    struct iox_http_server *hs;
    struct iox_conn *c;
    uint64_t now;
    uint16_t first_gen;
};

static void sink(void *ctx, const struct iox_cqe *cqe) { iox_reactor_dispatch(ctx, cqe); }

static void h_init(struct h *h, uint8_t conf)
{
    memset(h, 0, sizeof *h);
    npend = 0;
    aborted_any = 0;
    static const uint32_t caps[4] = {1u << 20, 1024, 64, 4096};
    h->hcfg.idle_timeout_ms = 1000;
    h->hcfg.linger_ms = 100;
    h->hcfg.max_conns = 4;
    h->hcfg.write_cap = caps[(conf >> 4) & 3];
    h->cfg.shutdown_grace_ms = 500;
    h->hcfg.app = &app;
    if (conf & 0x40) {
        h->hcfg.limits.max_head = 96;
        h->hcfg.limits.max_headers = 3;
        h->hcfg.limits.max_target = 16;
        h->hcfg.limits.max_body = 8;
    }
    h->sim = iox_sim_create(1u << (conf & 3), 16u << ((conf >> 2) & 3));
    FUZZ_CHECK(h->sim != NULL);
    FUZZ_CHECK(iox_reactor_init_sim(&h->r, iox_sim_seam(h->sim), &h->cfg) == 0);
    FUZZ_CHECK(iox_http_server_open(&h->r, &h->hcfg, 0, &h->hs) == 0);
    iox_sim_set_sink(h->sim, sink, &h->r);
    snprintf(h->hs->date, sizeof h->hs->date, "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n");
    h->now = h->r.now_ms;
    h->c = iox_http_adopt(h->hs, FD);
    FUZZ_CHECK(h->c != NULL);
    h->first_gen = h->c->sk.gen;
}

static void h_fini(struct h *h)
{
    iox_http_server_close(h->hs);
    iox_reactor_fini(&h->r);
    iox_sim_destroy(h->sim);
}

static void turn(struct h *h)
{
    int guard = 0;
    do {
        FUZZ_CHECK(++guard < 10000, "loop turn does not settle");
        iox_sim_publish(h->sim);
        iox_reactor_flush(&h->r);
    } while (iox_sim_pump(h->sim) > 0);
}

static int conn_open(struct h *h) { return h->hs->nconns > 0; }

/* The peer's socket: bytes sent by the peer, not yet delivered to a recv. */
struct sock {
    char *q;
    size_t len, cap;
    uint8_t shut;          /* EOF or reset happened: the peer sends no more */
    struct fz_log delivered;   /* every byte a recv completion carried, in order */
};

static void sock_push(struct sock *s, const char *d, size_t n)
{
    if (s->shut || !n) return;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 512;
        while (cap < s->len + n) cap *= 2;
        char *q = realloc(s->q, cap);
        if (!q) abort();
        s->q = q;
        s->cap = cap;
    }
    memcpy(s->q + s->len, d, n);
    s->len += n;
}

static void sock_deliver(struct h *h, struct sock *s, size_t chunk)
{
    if (!s->len) return;
    long k = iox_sim_recv(h->sim, FD, s->q, s->len, chunk);
    if (k <= 0) return;            /* no recv armed, or the ring is dry */
    FUZZ_CHECK((size_t)k <= s->len);
    fz_put(&s->delivered, s->q, (size_t)k);
    memmove(s->q, s->q + k, s->len - (size_t)k);
    s->len -= (size_t)k;
}

static void drain_sends(struct h *h)
{
    for (int guard = 0; iox_sim_has_op(h->sim, IOX_OP_SEND, FD); guard++) {
        FUZZ_CHECK(guard < 100000, "sends never drain");
        iox_sim_send(h->sim, FD, 0);
        turn(h);
    }
}

/* Everything the program left open: answer asyncs, deliver what is queued,
 * send, EOF, wait out the linger and idle timers. */
static void epilogue(struct h *h, struct sock *s)
{
    for (int round = 0; conn_open(h) && round < 4096; round++) {
        size_t before;
        iox_sim_peer_bytes(h->sim, FD, &before);
        unsigned before_pend = npend, before_in = h->c->sk.in_len;
        if (getenv("FUZZ_TRACE"))
            fprintf(stderr, "epilogue %d: state %s nasync %u body %u in_len %u recv %u peer_shut %u sock %zu pending %u\n",
                    round, http_conn_state_names[h->c->state], h->c->nasync, h->c->body_pending,
                    h->c->sk.in_len, h->c->sk.recv_armed, h->c->sk.peer_shut, s->len, live_pending());
        turn(h);
        for (unsigned i = 0; i < npend; i++)
            if (pend[i].ref.hs) async_step(i);
        turn(h);
        sock_deliver(h, s, 0);
        turn(h);
        drain_sends(h);
        if (!s->len && !live_pending()) {
            if (iox_sim_recv_end(h->sim, FD, 0) == 0) s->shut = 1;
            turn(h);
            drain_sends(h);
        }
        size_t after;
        iox_sim_peer_bytes(h->sim, FD, &after);
        int progress = conn_open(h) && (after != before || npend != before_pend || h->c->sk.in_len != before_in);
        /* Time passes only when nothing else moves: a timer must not cut
         * work the epilogue is still finishing (a stream, a pipeline). */
        if (!progress || (!s->len && !live_pending())) {
            h->now += 1500;
            iox_reactor_advance_clock(&h->r, h->now);
            turn(h);
        }
    }
}

static void check_books(struct h *h)
{
    unsigned closes = iox_sim_closes(h->sim, FD), lent = iox_sim_bufs_lent(h->sim);
    unsigned viol = iox_sim_violations(h->sim), live = iox_sim_live_ops(h->sim, FD);
    FUZZ_CHECK(closes == 1 && !lent && !viol && !live && h->hs->nconns == 0,
               "closes=%u lent=%u live=%u conns=%u violation=%s", closes, lent, live,
               h->hs->nconns, viol ? iox_sim_last_violation(h->sim) : "none");
}

/* A copy of the peer's bytes without Connection header lines: when the
 * peer's EOF or a shutdown arrives decides whether a response says
 * "Connection: close", and nothing else may depend on timing. */
static char *normalize(const char *in, size_t n, size_t *out_n)
{
    /* Lines whose presence legitimately depends on the schedule: the
     * Connection header after an early EOF or a shutdown, and the interim
     * 100 Continue, sent only when the body has not arrived with the head. */
    static const char *const drop[] = {"Connection: close\r\n", "Connection: keep-alive\r\n",
                                       "HTTP/1.1 100 Continue\r\n\r\n"};
    char *o = fz_dup(in, n);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        int skipped = 0;
        for (unsigned d = 0; d < sizeof drop / sizeof drop[0] && !skipped; d++) {
            size_t l = strlen(drop[d]);
            if (n - i >= l && !memcmp(in + i, drop[d], l)) { i += l; skipped = 1; }
            /* A send cut inside such a line: drop the cut tail too. */
            else if (n - i < l && !memcmp(in + i, drop[d], n - i)) { i = n; skipped = 1; }
        }
        if (!skipped) o[k++] = in[i++];
    }
    *out_n = k;
    return o;
}

/* The same request bytes in one piece, prompt completions, then EOF. */
static char *reference(uint8_t conf, const char *in, size_t n, size_t *out_len, int *aborted)
{
    struct h h;
    struct sock s = {0};
    h_init(&h, conf);
    turn(&h);
    sock_push(&s, in, n);
    for (int round = 0; s.len && round < 10000 && conn_open(&h); round++) {
        sock_deliver(&h, &s, 0);
        turn(&h);
        for (unsigned i = 0; i < npend; i++)
            if (pend[i].ref.hs) async_step(i);
        turn(&h);
        drain_sends(&h);
    }
    epilogue(&h, &s);
    check_books(&h);
    size_t on;
    const char *out = iox_sim_peer_bytes(h.sim, FD, &on);
    char *copy = fz_dup(out, on);
    *out_len = on;
    *aborted = aborted_any;
    h_fini(&h);
    free(s.q);
    fz_log_free(&s.delivered);
    return copy;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    memset(big_body, 'b', sizeof big_body);
    memset(chunk_bytes, 's', sizeof chunk_bytes);
    if (!getenv("IOX_LOG")) iox_log_level = IOX_LOG_ERROR;   /* IOX_LOG=debug to trace a crash */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t conf = data[0];
    size_t i = 1;
#define ARG() (i < size ? data[i++] : 0)
    struct h h;
    struct sock s = {0};
    int stopped = 0, clean = 1;
    h_init(&h, conf);
    turn(&h);
    for (unsigned steps = 0; i < size && conn_open(&h) && steps < 4096; steps++) {
        unsigned op = data[i++] % OP__COUNT;
        switch (op) {
        case OP_RECV: {
            size_t n = 1 + (size_t)ARG(), chunk = ARG();
            if (n > size - i) n = size - i;
            sock_push(&s, (const char *)data + i, n);
            i += n;
            sock_deliver(&h, &s, chunk);
            break;
        }
        case OP_TMPL: {
            const char *t = TEMPLATES[ARG() % NTEMPLATES];
            size_t chunk = ARG();
            sock_push(&s, t, strlen(t));
            sock_deliver(&h, &s, chunk);
            break;
        }
        case OP_DELIVER:
            sock_deliver(&h, &s, ARG());
            break;
        case OP_SEND: {
            unsigned sz = ARG();
            iox_sim_send(h.sim, FD, (int)sz);
            break;
        }
        case OP_SENDERR:
            if (iox_sim_send(h.sim, FD, ARG() & 1 ? -ECONNRESET : -EPIPE) == 0) clean = 0;
            break;
        case OP_TURN:
            turn(&h);
            break;
        case OP_ASYNC: {
            unsigned k = ARG();
            if (npend) {
                unsigned j = k % npend;
                if (pend[j].ref.hs) async_step(j);
            }
            break;
        }
        case OP_EOF:
            if (!s.len && !s.shut && iox_sim_recv_end(h.sim, FD, 0) == 0) s.shut = 1;
            break;
        case OP_RESET:
            if (!s.shut && iox_sim_recv_end(h.sim, FD, -ECONNRESET) == 0) {
                s.shut = 1;
                s.len = 0;
                clean = 0;
            }
            break;
        case OP_CLOCK:
            h.now += 10u * ARG();
            iox_reactor_advance_clock(&h.r, h.now);
            clean = 0;
            break;
        case OP_STOP:
            if (!stopped) iox_reactor_begin_stop(&h.r);
            stopped = 1;
            break;
        case OP_STALE: {
            /* A late CQE of the previous life of this slot: must be dropped. */
            unsigned k = ARG();
            static const unsigned ops[] = {IOX_OP_RECV, IOX_OP_SEND, IOX_OP_CLOSE, IOX_OP_CANCEL, IOX_OP_SHUTDOWN};
            struct iox_cqe late = {iox_ud(ops[k % 5], (unsigned)h.hs->owner, (uint16_t)(h.c->sk.gen - 1), h.c->sk.idx),
                                   (int32_t)(k & 0xf0) - 8, (k & 1) ? IOX_CQE_F_MORE : 0};
            uint64_t stale = h.r.n_stale_cqes;
            iox_reactor_dispatch(&h.r, &late);
            FUZZ_CHECK(h.r.n_stale_cqes == stale + 1, "stale CQE was not dropped");
            break;
        }
        }
    }
#undef ARG
    if (s.len) clean = 0;            /* bytes that never got in: not comparable with EOF */
    epilogue(&h, &s);
    check_books(&h);

    size_t raw_n;
    const char *raw = iox_sim_peer_bytes(h.sim, FD, &raw_n);
    FUZZ_CHECK(!memcmp(raw, "HTTP/", raw_n < 5 ? raw_n : 5), "peer received something else than a response");
    if (!aborted_any) {
        size_t rn, on;
        int ref_aborted;
        char *ref = reference(conf, s.delivered.s ? s.delivered.s : "", s.delivered.n, &rn, &ref_aborted);
        char *out = normalize(raw, raw_n, &on);
        char *nref = normalize(ref, rn, &rn);
        if (!ref_aborted) {
            if (on > rn || memcmp(out, nref, on)) {
                fprintf(stderr, "\nFUZZ DIFFERENTIAL: output is not a prefix of the reference (%zu vs %zu bytes)\n"
                        "--- schedule output:\n%.*s\n--- reference:\n%.*s\n", on, rn, (int)on, out, (int)rn, nref);
                abort();
            }
            /* Nothing went wrong on the way: every answer was delivered. */
            if (clean && !stopped && on != rn) {
                fprintf(stderr, "\nFUZZ DIFFERENTIAL: clean schedule delivered %zu of %zu reference bytes\n"
                        "--- schedule output:\n%.*s\n--- reference:\n%.*s\n", on, rn, (int)on, out, (int)rn, nref);
                abort();
            }
        }
        free(ref);
        free(nref);
        free(out);
    }
    h_fini(&h);
    free(s.q);
    fz_log_free(&s.delivered);
    return 0;
}
