/* test_body_sim.c — request bodies handed to handlers, and responses in
 * pieces, driven through the simulated ring (the harness of
 * test_conn_sim.c): a streamed echo split at every byte, a handler that
 * holds pieces (reading stops until it releases them), a reader that does
 * not read (the connection's buffers stay bounded), 100-continue only when
 * the body is taken and in request order, whole reads over their limit
 * (413, close), chunked answers with trailers read back by the test's HTTP
 * client, HEAD and HTTP/1.0 on streamed answers, a body that breaks after
 * its answer started, per-request user data and stale handles. */
#include "http_client.h"
#include "iox_test.h"
#include "sim_world.h"
#include "http_conn_machine.h"
#include <ioxide/http_conn.h>
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD 7

/* ---- the application under test ---- */

static struct iox_conn_ref pending[64];
static unsigned npending;
static int hold_next;            /* /hold: hold every piece the first time it is handed */
static unsigned holds, pieces_seen, body_errors;
static int last_error;
static int user_tag;

static int echo_piece(struct iox_conn *c, const char *data, size_t len, int status, void *arg)
{
    int hold = arg != NULL;
    if (status == IOX_BODY_PIECE) {
        pieces_seen++;
        if (hold && hold_next) {
            hold_next = 0;
            holds++;
            return IOX_BODY_HOLD;
        }
        hold_next = 1;
        CU_ASSERT(iox_resp_chunk(c, data, len) == 0);
        iox_conn_flush(c);
        return IOX_BODY_OK;
    }
    if (status == IOX_BODY_END) {
        CU_ASSERT(iox_resp_end(c, NULL) == 0);
        iox_conn_async_done(c);
        return IOX_BODY_OK;
    }
    body_errors++;
    last_error = status;
    return IOX_BODY_OK;
}

static void whole_done(struct iox_conn *c, const char *data, size_t len, int status, void *arg)
{
    (void)arg;
    if (status != IOX_BODY_END) { body_errors++; last_error = status; return; }
    char head[64];
    snprintf(head, sizeof head, "X-Len: %zu\r\n", len);
    iox_resp_simple_ex(c, 200, "text/plain", head, data, len);
    iox_conn_async_done(c);
}

static int path_is(const struct iox_http_request *req, const char *p)
{
    return req->path_len == strlen(p) && !memcmp(req->path, p, req->path_len);
}

static int app_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    if (path_is(req, "/echo") || path_is(req, "/hold")) {
        if (req->body_kind == IOX_HTTP_BODY_NONE) {
            iox_resp_simple(c, 200, "application/octet-stream", "", 0);
            return IOX_HANDLED;
        }
        int64_t len = req->body_kind == IOX_HTTP_BODY_CHUNKED ? IOX_RESP_CHUNKED : (int64_t)req->content_length;
        CU_ASSERT(iox_req_body_stream(c, req, echo_piece, path_is(req, "/hold") ? (void *)1 : NULL) == 0);
        CU_ASSERT(iox_resp_start(c, 200, "application/octet-stream", NULL, len) == 0);
        return IOX_ASYNC;
    }
    if (path_is(req, "/whole")) {
        CU_ASSERT(iox_req_body_read(c, req, 100, whole_done, NULL) == 0);
        return IOX_ASYNC;
    }
    if (path_is(req, "/early")) {
        /* Takes the body, answers at once: the rest is drained. */
        CU_ASSERT(iox_req_body_stream(c, req, echo_piece, NULL) == 0);
        iox_resp_simple(c, 200, "text/plain", "early", 5);
        iox_conn_async_done(c);
        return IOX_ASYNC;
    }
    if (path_is(req, "/trailers")) {
        CU_ASSERT(iox_resp_start(c, 200, "text/plain", "Trailer: X-Sum\r\n", IOX_RESP_CHUNKED) == 0);
        CU_ASSERT(iox_resp_chunk(c, "abc", 3) == 0);
        CU_ASSERT(iox_resp_chunk(c, "defg", 4) == 0);
        CU_ASSERT(iox_resp_end(c, "X-Sum: 7\r\n") == 0);
        return IOX_HANDLED;
    }
    if (path_is(req, "/nocontent")) {
        CU_ASSERT(iox_resp_start(c, 204, NULL, NULL, IOX_RESP_CHUNKED) == 0);
        CU_ASSERT(iox_resp_chunk(c, "zzz", 3) == 0);
        CU_ASSERT(iox_resp_write(c, "yyy", 3) == 0);
        CU_ASSERT(iox_resp_end(c, "X-T: 1\r\n") == 0);
        return IOX_HANDLED;
    }
    if (path_is(req, "/async")) {
        iox_req_set_user(c, &user_tag);
        pending[npending++] = iox_conn_ref(c);
        return IOX_ASYNC;
    }
    iox_resp_simple(c, 200, "text/plain", "ok", 2);
    return IOX_HANDLED;
}

static const struct iox_http_app app = {app_request};

static void finish_pending(void)
{
    for (unsigned i = 0; i < npending; i++) {
        struct iox_conn *c = iox_conn_deref(pending[i]);
        if (!c) continue;
        CU_ASSERT(iox_req_user(c) == &user_tag);
        iox_resp_simple(c, 200, "text/plain", "async", 5);
        CU_ASSERT(iox_conn_ref_done(pending[i]) == 0);
        CU_ASSERT(iox_conn_ref_done(pending[i]) == -ESTALE);   /* answered: stale now */
    }
    npending = 0;
}

/* ---- harness (as in test_conn_sim.c) ---- */

struct h {
    struct sim_world w;        /* tests/sim_world.h: simulator, reactor, clock */
    struct iox_http_config hcfg;
    struct iox_http_server *hs;
    struct iox_conn *c;
};

static void h_init(struct h *h, unsigned nbufs, unsigned bufsize, uint32_t write_cap)
{
    memset(h, 0, sizeof *h);
    npending = 0;
    hold_next = 1;
    holds = pieces_seen = body_errors = 0;
    last_error = 0;
    h->hcfg.idle_timeout_ms = 1000;
    h->hcfg.linger_ms = 100;
    h->hcfg.max_conns = 4;
    h->hcfg.write_cap = write_cap;
    h->hcfg.app = &app;
    CU_ASSERT_FATAL(sw_open(&h->w, nbufs, bufsize, 500) == 0);
    CU_ASSERT_FATAL(h->w.r.seam == iox_sim_seam(h->w.sim));   /* the reactor runs on the simulator */
    CU_ASSERT_FATAL(sw_http_open(&h->w, &h->hcfg, &h->hs) == 0);   /* Date fixed */
    h->c = iox_http_adopt(h->hs, FD);
    CU_ASSERT_FATAL(h->c != NULL);
}

static void h_fini(struct h *h)
{
    iox_http_server_close(h->hs);
    sw_close(&h->w);
}

static void turn(struct h *h) { sw_turn(&h->w); }

static int conn_open(struct h *h) { return h->hs->nconns > 0; }

static int deliver(struct h *h, const char *p, size_t n, size_t chunk) { return sw_deliver_chunked(&h->w, FD, p, n, chunk); }

static void drain_sends(struct h *h) { sw_send_all(&h->w, FD, 1000000); }

static void peer_close(struct h *h) { sw_http_peer_close(&h->w, h->hs, FD, 10000); }

static void check_books(struct h *h)
{
    CU_ASSERT_EQUAL(iox_sim_closes(h->w.sim, FD), 1);
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(h->w.sim), 0);
    CU_ASSERT_EQUAL(iox_sim_live_ops(h->w.sim, FD), 0);
    CU_ASSERT_EQUAL(iox_sim_violations(h->w.sim), 0);
    CU_ASSERT_EQUAL(h->hs->nconns, 0);
}

static const char *out_bytes(struct h *h, size_t *n) { return iox_sim_peer_bytes(h->w.sim, FD, n); }

/* Parse every response of the peer's bytes with the test's client; heads
 * says which requests were HEAD. Returns the count parsed. */
static unsigned parse_all(const char *buf, size_t n, const int *heads, unsigned max, struct hc_response *out, int eof)
{
    unsigned k = 0;
    size_t off = 0;
    while (k < max && off < n) {
        size_t used = 0;
        const char *why = NULL;
        int r = hc_parse_response(buf + off, n - off, heads ? heads[k] : 0, eof, &out[k], &used, &why);
        if (r != 1) break;
        off += used;
        /* An interim 1xx is its own response: keep going. */
        k++;
    }
    return k;
}

static void free_all(struct hc_response *r, unsigned n)
{
    for (unsigned i = 0; i < n; i++) hc_response_free(&r[i]);
}

/* ---- streamed echo: every split, byte by byte ---- */

static const char ECHO_STREAM[] =
    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789"
    "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-T: v\r\n\r\n"
    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nZ"
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

static char *echo_reference(size_t *len)
{
    struct h h;
    h_init(&h, 64, 4096, 1 << 20);
    turn(&h);
    deliver(&h, ECHO_STREAM, sizeof ECHO_STREAM - 1, 0);
    turn(&h);
    peer_close(&h);
    check_books(&h);
    size_t n;
    const char *out = out_bytes(&h, &n);
    char *copy = malloc(n + 1);
    memcpy(copy, out, n);
    copy[n] = 0;
    *len = n;
    h_fini(&h);
    return copy;
}

IOX_TEST(body_sim, echo_reference_answers_each_body)
{
    size_t n;
    char *ref = echo_reference(&n);
    struct hc_response r[8];
    unsigned k = parse_all(ref, n, NULL, 8, r, 1);
    CU_ASSERT_EQUAL_FATAL(k, 5);
    CU_ASSERT(r[0].status == 200 && r[0].content_length == 10 && r[0].body_len == 10 &&
              !memcmp(r[0].body, "0123456789", 10));
    CU_ASSERT(r[1].status == 200 && r[1].chunked && r[1].body_len == 7 && !memcmp(r[1].body, "abcdefg", 7));
    CU_ASSERT(r[2].status == 200 && r[2].body_len == 0);
    CU_ASSERT(r[3].status == 200 && r[3].body_len == 1 && r[3].body[0] == 'Z');
    CU_ASSERT(r[4].status == 200 && r[4].body_len == 2 && !memcmp(r[4].body, "ok", 2));
    free_all(r, k);
    free(ref);
}

IOX_TEST(body_sim, echo_every_split_point_gives_the_same_bytes)
{
    size_t rn;
    char *ref = echo_reference(&rn);
    const size_t n = sizeof ECHO_STREAM - 1;
    for (size_t k = 1; k < n; k++) {
        struct h h;
        h_init(&h, 64, 128, 1 << 20);
        turn(&h);
        deliver(&h, ECHO_STREAM, k, 0);
        drain_sends(&h);
        deliver(&h, ECHO_STREAM + k, n - k, 0);
        turn(&h);
        peer_close(&h);
        /* Pieces are cut where the input was cut, and a chunked echo frames
         * each piece: compare what a client reads, not the bytes. */
        size_t on;
        const char *out = out_bytes(&h, &on);
        struct hc_response a[8], b[8];
        unsigned ka = parse_all(ref, rn, NULL, 8, a, 1), kb = parse_all(out, on, NULL, 8, b, 1);
        int same = ka == kb;
        for (unsigned i = 0; same && i < ka; i++)
            same = a[i].status == b[i].status && a[i].body_len == b[i].body_len &&
                   !memcmp(a[i].body, b[i].body, a[i].body_len);
        CU_ASSERT(same);
        if (!same) fprintf(stderr, "\n  split at %zu differs (%u vs %u answers)\n", k, ka, kb);
        free_all(a, ka);
        free_all(b, kb);
        check_books(&h);
        h_fini(&h);
    }
    free(ref);
}

IOX_TEST(body_sim, echo_byte_by_byte_with_one_byte_sends)
{
    struct h h;
    h_init(&h, 8, 64, 1 << 20);
    turn(&h);
    for (size_t i = 0; i < sizeof ECHO_STREAM - 1; i++) {
        deliver(&h, ECHO_STREAM + i, 1, 1);
        while (iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD)) { iox_sim_send(h.w.sim, FD, 1); turn(&h); }
        turn(&h);
    }
    peer_close(&h);
    size_t on;
    const char *out = out_bytes(&h, &on);
    struct hc_response r[8];
    unsigned k = parse_all(out, on, NULL, 8, r, 1);
    CU_ASSERT_EQUAL(k, 5);
    if (k == 5) {
        CU_ASSERT(r[0].body_len == 10 && !memcmp(r[0].body, "0123456789", 10));
        CU_ASSERT(r[1].body_len == 7 && !memcmp(r[1].body, "abcdefg", 7));
        CU_ASSERT(r[3].body_len == 1 && r[4].body_len == 2);
    }
    free_all(r, k);
    check_books(&h);
    h_fini(&h);
}

/* ---- holding pieces ---- */

IOX_TEST(body_sim, a_held_piece_stops_reading_until_released)
{
    struct h h;
    h_init(&h, 16, 64, 1 << 20);
    turn(&h);
    static const char head[] = "POST /hold HTTP/1.1\r\nHost: a\r\nContent-Length: 300\r\n\r\n";
    char body[300];
    for (int i = 0; i < 300; i++) body[i] = (char)('a' + i % 26);
    CU_ASSERT(deliver(&h, head, sizeof head - 1, 0) == 0);
    size_t off = 0;
    unsigned releases = 0;
    for (int guard = 0; guard < 10000 && off < sizeof body; guard++) {
        long k = iox_sim_recv(h.w.sim, FD, body + off, sizeof body - off, 40);
        if (k > 0) { off += (size_t)k; turn(&h); continue; }
        /* No recv armed: the handler holds a piece, and reading is stopped. */
        CU_ASSERT_EQUAL(h.c->state, HTTP_CONN_S_BODY_HELD);
        CU_ASSERT(!iox_sim_has_op(h.w.sim, IOX_OP_RECV, FD));
        iox_req_body_release(h.c);
        releases++;
        turn(&h);
    }
    for (int guard = 0; guard < 100 && h.c->state == HTTP_CONN_S_BODY_HELD; guard++) {
        iox_req_body_release(h.c);
        releases++;
        turn(&h);
    }
    CU_ASSERT(off == sizeof body);
    CU_ASSERT(holds > 0 && releases > 0);
    drain_sends(&h);
    size_t on;
    const char *out = out_bytes(&h, &on);
    struct hc_response r[2];
    unsigned k = parse_all(out, on, NULL, 1, r, 0);
    CU_ASSERT_EQUAL(k, 1);
    if (k == 1) CU_ASSERT(r[0].body_len == 300 && !memcmp(r[0].body, body, 300));   /* nothing lost, in order */
    free_all(r, k);
    peer_close(&h);
    check_books(&h);
    h_fini(&h);
}

/* ---- a peer that sends a large body and does not read its echo ---- */

IOX_TEST(body_sim, slow_reader_keeps_buffers_bounded)
{
    struct h h;
    const uint32_t cap = 64 * 1024;
    const unsigned nbufs = 16, bsz = 4096;
    h_init(&h, nbufs, bsz, cap);
    turn(&h);
    const size_t total = 10u << 20;
    char *body = malloc(total);
    for (size_t i = 0; i < total; i++) body[i] = (char)(i * 7 + (i >> 12));
    char head[128];
    int hl = snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n", total);
    CU_ASSERT(deliver(&h, head, (size_t)hl, 0) == 0);
    size_t off = 0, max_out = 0, max_in = 0, stops = 0;
    for (long guard = 0; guard < 10000000 && off < total; guard++) {
        long k = iox_sim_recv(h.w.sim, FD, body + off, total - off, bsz);
        if (k > 0) {
            off += (size_t)k;
        } else {
            /* Reading stopped: only now does the peer take some output. */
            stops++;
            if (iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD)) iox_sim_send(h.w.sim, FD, 0);
        }
        turn(&h);
        size_t o = h.c->sk.wcap + h.c->side_len, in = h.c->sk.in_cap;
        if (o > max_out) max_out = o;
        if (in > max_in) max_in = in;
    }
    CU_ASSERT(off == total);
    CU_ASSERT(stops > 0);   /* backpressure happened */
    /* The write buffer stays within twice the cap (it grows by powers of
     * two), the carry within one carry (a head, the ring, slack). */
    CU_ASSERT(max_out <= 2u * cap + 16384u);
    size_t carry = 65536u + 8u * bsz + 4096u + (size_t)nbufs * bsz;
    CU_ASSERT(max_in <= 2 * carry);
    if (max_out > 2u * cap + 16384u || max_in > 2 * carry)
        fprintf(stderr, "\n  max write buffer %zu, max carry %zu\n", max_out, max_in);
    drain_sends(&h);
    size_t on;
    const char *out = out_bytes(&h, &on);
    struct hc_response r[1];
    unsigned k = parse_all(out, on, NULL, 1, r, 0);
    CU_ASSERT_EQUAL(k, 1);
    if (k == 1) CU_ASSERT(r[0].body_len == total && !memcmp(r[0].body, body, total));
    free_all(r, k);
    peer_close(&h);
    check_books(&h);
    h_fini(&h);
    free(body);
}

/* ---- Expect: 100-continue ---- */

static int contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(hay + i, needle, m)) return (int)i;
    return -1;
}

IOX_TEST(body_sim, continue_comes_when_the_body_is_taken)
{
    struct h h;
    h_init(&h, 16, 256, 1 << 20);
    turn(&h);
    static const char req[] = "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    deliver(&h, req, sizeof req - 1, 0);
    drain_sends(&h);
    size_t on;
    const char *out = out_bytes(&h, &on);
    CU_ASSERT(contains(out, on, "HTTP/1.1 100 Continue\r\n\r\n") == 0);
    deliver(&h, "hello", 5, 0);
    drain_sends(&h);
    out = out_bytes(&h, &on);
    struct hc_response r[3];
    unsigned k = parse_all(out, on, NULL, 3, r, 0);
    CU_ASSERT_EQUAL(k, 2);
    if (k == 2) {
        CU_ASSERT(r[0].status == 100);
        CU_ASSERT(r[1].status == 200 && r[1].body_len == 5 && !memcmp(r[1].body, "hello", 5));
        CU_ASSERT(!r[1].conn_close);
    }
    free_all(r, k);
    peer_close(&h);
    check_books(&h);
    h_fini(&h);
}

IOX_TEST(body_sim, continue_waits_behind_an_earlier_answer)
{
    struct h h;
    h_init(&h, 16, 256, 1 << 20);
    turn(&h);
    static const char req[] = "GET /async HTTP/1.1\r\nHost: a\r\n\r\n"
                              "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    deliver(&h, req, sizeof req - 1, 0);
    drain_sends(&h);
    size_t on;
    out_bytes(&h, &on);
    CU_ASSERT_EQUAL(on, 0);   /* no 100 ahead of the async answer */
    finish_pending();
    turn(&h);
    drain_sends(&h);
    const char *out = out_bytes(&h, &on);
    int a = contains(out, on, "async"), c = contains(out, on, "100 Continue");
    CU_ASSERT(a > 0 && c > a);
    deliver(&h, "xyz", 3, 0);
    drain_sends(&h);
    out = out_bytes(&h, &on);
    struct hc_response r[4];
    unsigned k = parse_all(out, on, NULL, 4, r, 0);
    CU_ASSERT_EQUAL(k, 3);
    if (k == 3) CU_ASSERT(r[1].status == 100 && r[2].body_len == 3 && !memcmp(r[2].body, "xyz", 3));
    free_all(r, k);
    peer_close(&h);
    check_books(&h);
    h_fini(&h);
}

IOX_TEST(body_sim, continue_not_asked_for_answers_and_closes)
{
    struct h h;
    h_init(&h, 16, 256, 1 << 20);
    turn(&h);
    static const char req[] = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    deliver(&h, req, sizeof req - 1, 0);
    drain_sends(&h);
    size_t on;
    const char *out = out_bytes(&h, &on);
    CU_ASSERT(contains(out, on, "100 Continue") < 0);
    struct hc_response r[2];
    unsigned k = parse_all(out, on, NULL, 2, r, 0);
    CU_ASSERT_EQUAL(k, 1);
    if (k == 1) CU_ASSERT(r[0].status == 200 && r[0].conn_close);
    free_all(r, k);
    /* The connection is done reading requests: it lingers, then closes. */
    CU_ASSERT(h.c->state == HTTP_CONN_S_LINGERING || !conn_open(&h));
    peer_close(&h);
    check_books(&h);
    h_fini(&h);
}

IOX_TEST(body_sim, unknown_expectation_417)
{
    struct h h;
    h_init(&h, 16, 256, 1 << 20);
    turn(&h);
    static const char req[] = "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: foo\r\nContent-Length: 5\r\n\r\nhello";
    deliver(&h, req, sizeof req - 1, 0);
    drain_sends(&h);
    size_t on;
    const char *out = out_bytes(&h, &on);
    struct hc_response r[2];
    unsigned k = parse_all(out, on, NULL, 2, r, 0);
    CU_ASSERT_EQUAL(k, 1);
    if (k == 1) CU_ASSERT(r[0].status == 417 && !strcmp(r[0].reason, "Expectation Failed") && r[0].conn_close);
    free_all(r, k);
    peer_close(&h);
    check_books(&h);
    h_fini(&h);
}

/* ---- whole reads ---- */

static void whole_case(const char *req, int want_status, size_t want_len)
{
    struct h h;
    h_init(&h, 16, 64, 1 << 20);
    turn(&h);
    deliver(&h, req, strlen(req), 0);
    drain_sends(&h);
    size_t on;
    const char *out = out_bytes(&h, &on);
    struct hc_response r[2];
    unsigned k = parse_all(out, on, NULL, 2, r, 0);
    CU_ASSERT_EQUAL(k, 1);
    if (k >= 1) {
        CU_ASSERT_EQUAL(r[0].status, want_status);
        if (want_status == 200) {
            const char *xl = hc_header(&r[0], "X-Len");
            CU_ASSERT(xl && (size_t)atol(xl) == want_len && r[0].body_len == want_len);
        } else {
            CU_ASSERT(r[0].conn_close);
            CU_ASSERT(body_errors == 1 && last_error == IOX_HTTP_E_BODY_TOO_LARGE);
        }
    }
    free_all(r, k);
    peer_close(&h);
    check_books(&h);
    h_fini(&h);
}

IOX_TEST(body_sim, whole_read_under_and_over_its_limit)
{
    whole_case("POST /whole HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
               200, 100);
    whole_case("POST /whole HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n",
               200, 8);
    /* Content-Length over the limit: refused before a byte is read. */
    whole_case("POST /whole HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", 413, 0);
    /* Chunked: refused when it gets there. */
    char big[512];
    snprintf(big, sizeof big, "POST /whole HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             "40\r\n%064d\r\n40\r\n%064d\r\n0\r\n\r\n", 0, 0);
    whole_case(big, 413, 0);
}

/* ---- responses in pieces ---- */

IOX_TEST(body_sim, chunked_answer_with_trailers_head_and_http10)
{
    struct h h;
    h_init(&h, 16, 256, 1 << 20);
    turn(&h);
    static const char req[] = "GET /trailers HTTP/1.1\r\nHost: a\r\n\r\n"
                              "HEAD /trailers HTTP/1.1\r\nHost: a\r\n\r\n"
                              "GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n"
                              "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    deliver(&h, req, sizeof req - 1, 0);
    drain_sends(&h);
    size_t on;
    const char *out = out_bytes(&h, &on);
    static const int heads[] = {0, 1, 0, 0};
    struct hc_response r[4];
    unsigned k = parse_all(out, on, heads, 4, r, 0);
    CU_ASSERT_EQUAL(k, 4);
    if (k == 4) {
        CU_ASSERT(r[0].status == 200 && r[0].chunked && r[0].body_len == 7 && !memcmp(r[0].body, "abcdefg", 7));
        CU_ASSERT(contains(out, on, "0\r\nX-Sum: 7\r\n\r\n") > 0);
        CU_ASSERT(r[1].status == 200 && r[1].body_len == 0);
        CU_ASSERT(r[2].status == 204 && r[2].body_len == 0 && !hc_header(&r[2], "Transfer-Encoding"));
        CU_ASSERT(r[3].status == 200 && r[3].body_len == 2);
    }
    /* Exactly these bytes: nothing of the HEAD's or the 204's pieces. */
    size_t sum = 0;
    for (unsigned i = 0; i < k; i++) sum += r[i].wire_len;
    CU_ASSERT_EQUAL(sum, on);
    CU_ASSERT(contains(out, on, "zzz") < 0 && contains(out, on, "yyy") < 0 && contains(out, on, "X-T") < 0);
    free_all(r, k);
    peer_close(&h);
    check_books(&h);
    h_fini(&h);

    /* HTTP/1.0: close-delimited, the connection closes after it. */
    h_init(&h, 16, 256, 1 << 20);
    turn(&h);
    static const char req10[] = "GET /trailers HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    deliver(&h, req10, sizeof req10 - 1, 0);
    drain_sends(&h);
    out = out_bytes(&h, &on);
    k = parse_all(out, on, NULL, 1, r, 1);
    CU_ASSERT_EQUAL(k, 1);
    if (k == 1) {
        CU_ASSERT(r[0].until_close && r[0].conn_close && !r[0].chunked);
        CU_ASSERT(r[0].body_len == 7 && !memcmp(r[0].body, "abcdefg", 7));
    }
    free_all(r, k);
    CU_ASSERT(h.c->state == HTTP_CONN_S_LINGERING || !conn_open(&h));
    peer_close(&h);
    check_books(&h);
    h_fini(&h);
}

/* ---- bodies that end badly, handlers that finish early ---- */

IOX_TEST(body_sim, malformed_chunk_after_the_answer_started_closes)
{
    struct h h;
    h_init(&h, 16, 256, 1 << 20);
    turn(&h);
    static const char req[] = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    deliver(&h, req, sizeof req - 1, 0);
    drain_sends(&h);
    deliver(&h, "zz\r\n", 4, 0);
    drain_sends(&h);
    size_t on;
    const char *out = out_bytes(&h, &on);
    CU_ASSERT(contains(out, on, "HTTP/1.1 200") == 0);
    CU_ASSERT(contains(out, on, "hello") > 0);
    CU_ASSERT(contains(out, on, "HTTP/1.1 400") < 0);   /* the answer had started */
    CU_ASSERT(body_errors == 1 && last_error == IOX_HTTP_E_BAD_CHUNK_SIZE);
    CU_ASSERT(h.c->state == HTTP_CONN_S_LINGERING || !conn_open(&h));
    peer_close(&h);
    check_books(&h);
    h_fini(&h);
}

IOX_TEST(body_sim, handler_that_answers_early_gets_its_body_drained)
{
    struct h h;
    h_init(&h, 16, 64, 1 << 20);
    turn(&h);
    static const char req[] = "POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 200\r\n\r\n";
    deliver(&h, req, sizeof req - 1, 0);
    char body[200];
    memset(body, 'q', sizeof body);
    deliver(&h, body, sizeof body, 50);
    deliver(&h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, 0);
    drain_sends(&h);
    size_t on;
    const char *out = out_bytes(&h, &on);
    struct hc_response r[3];
    unsigned k = parse_all(out, on, NULL, 3, r, 0);
    CU_ASSERT_EQUAL(k, 2);
    if (k == 2) CU_ASSERT(r[0].body_len == 5 && r[1].body_len == 2 && !memcmp(r[1].body, "ok", 2));
    CU_ASSERT(pieces_seen == 0);   /* nothing handed after the answer was done */
    free_all(r, k);
    peer_close(&h);
    check_books(&h);
    h_fini(&h);
}

IOX_TEST(body_sim, peer_gone_mid_body_tells_the_handler)
{
    struct h h;
    h_init(&h, 16, 64, 1 << 20);
    turn(&h);
    static const char req[] = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc";
    deliver(&h, req, sizeof req - 1, 0);
    struct iox_conn_ref ref = {h.hs, h.c->sk.idx, h.c->sk.gen, h.c->tgt};
    iox_sim_recv_end(h.w.sim, FD, -ECONNRESET);
    turn(&h);
    peer_close(&h);
    CU_ASSERT(body_errors == 1 && last_error == -ECONNRESET);
    CU_ASSERT(iox_conn_deref(ref) == NULL);
    CU_ASSERT(iox_conn_ref_done(ref) == -ESTALE);
    check_books(&h);
    h_fini(&h);
}

/* The peer shuts its side mid-body: the body can never complete; the
 * handler is told at once and the connection finishes (no idle timer). */
IOX_TEST(body_sim, peer_eof_mid_body_finishes_at_once)
{
    struct h h;
    h_init(&h, 16, 64, 1 << 20);
    turn(&h);
    static const char req[] = "GET /async HTTP/1.1\r\nHost: a\r\n\r\n"
                              "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc";
    deliver(&h, req, sizeof req - 1, 0);
    CU_ASSERT(iox_sim_recv_end(h.w.sim, FD, 0) == 0);
    turn(&h);
    CU_ASSERT(body_errors == 1 && last_error == -ECONNRESET);
    CU_ASSERT_EQUAL(h.c->state, HTTP_CONN_S_FINISHING);   /* the async answer is still owed */
    finish_pending();
    turn(&h);
    drain_sends(&h);
    size_t on;
    const char *out = out_bytes(&h, &on);
    CU_ASSERT(contains(out, on, "async") > 0);   /* what was owed before the body went out */
    peer_close(&h);
    check_books(&h);
    h_fini(&h);
}

IOX_TEST(body_sim, user_data_is_per_request)
{
    struct h h;
    h_init(&h, 16, 256, 1 << 20);
    turn(&h);
    static const char req[] = "GET /async HTTP/1.1\r\nHost: a\r\n\r\nGET /async HTTP/1.1\r\nHost: a\r\n\r\n";
    deliver(&h, req, sizeof req - 1, 0);
    CU_ASSERT_EQUAL_FATAL(npending, 2);
    struct iox_conn *c = iox_conn_deref(pending[0]);
    CU_ASSERT_FATAL(c != NULL);
    static int other;
    iox_req_set_user(c, &other);   /* only the first request's */
    CU_ASSERT(iox_req_user(iox_conn_deref(pending[1])) == &user_tag);
    CU_ASSERT(iox_req_user(iox_conn_deref(pending[0])) == &other);
    iox_req_set_user(iox_conn_deref(pending[0]), &user_tag);
    finish_pending();
    turn(&h);
    drain_sends(&h);
    size_t on;
    const char *out = out_bytes(&h, &on);
    struct hc_response r[2];
    unsigned k = parse_all(out, on, NULL, 2, r, 0);
    CU_ASSERT_EQUAL(k, 2);
    free_all(r, k);
    peer_close(&h);
    check_books(&h);
    h_fini(&h);
}

IOX_SUITE(body_sim, NULL, NULL);
