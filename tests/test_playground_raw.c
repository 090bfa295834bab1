/* test_playground_raw.c — black-box tests of the raw playground over real
 * sockets (ARCHITECTURE.md §4): keep-alive, pipelining, split requests,
 * bodies, malformed requests, load, resets, timeouts, the buffer ring under
 * pressure, backpressure, SIGTERM and startup failure.
 *
 * The suite starts one server (REACTORS=2) in its init and stops it in its
 * clean, which fails unless the server exits 0. Tests needing a different
 * configuration start their own server. */
#include "http_client.h"
#include "iox_test.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "check.h"

static struct hc_server srv;
static int srv_up;

#define GET_ROOT "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
#define GET_NOPE "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"


static int connect_main(struct hc_conn *c)
{
    int r = hc_connect(c, srv.port, 2000);
    CHECK(r == 0, "connect to the playground: %s", strerror(-r));
    return r;
}

/* A 200 "ok" answer, with exactly one Content-Length: 2. */
static void expect_ok(int rc, const struct hc_response *r, int head, int line)
{
    CHECK_AT(line, rc == HC_OK, "read response: %s", hc_strerror(rc));
    if (rc != HC_OK) return;
    CHECK_AT(line, r->status == 200, "status %d, want 200", r->status);
    const char *cl = hc_header(r, "Content-Length");
    CHECK_AT(line, cl && strcmp(cl, "2") == 0, "Content-Length %s, want 2", cl ? cl : "(none)");
    CHECK_AT(line, hc_header_count(r, "Content-Length") == 1, "one Content-Length header");
    if (head) CHECK_AT(line, r->body_len == 0, "HEAD answer with %zu body bytes", r->body_len);
    else CHECK_AT(line, r->body_len == 2 && memcmp(r->body, "ok", 2) == 0, "body '%.*s', want 'ok'",
               (int)(r->body_len > 40 ? 40 : r->body_len), r->body);
}
#define EXPECT_OK(rc, r) expect_ok(rc, r, 0, __LINE__)
#define EXPECT_HEAD_OK(rc, r) expect_ok(rc, r, 1, __LINE__)

static void expect_status(int rc, const struct hc_response *r, int status, int line)
{
    CHECK_AT(line, rc == HC_OK, "read response: %s", hc_strerror(rc));
    if (rc == HC_OK) CHECK_AT(line, r->status == status, "status %d, want %d", r->status, status);
}
#define EXPECT_STATUS(rc, r, s) expect_status(rc, r, s, __LINE__)

/* ------------------------------------------------------------ suite setup */

static int suite_init(void)
{
    hc_raise_nofile(8192);   /* the load test holds 1000 sockets; the child inherits */
    static const char *const env[] = {"PLAYGROUND_MODE=raw", "REACTORS=2", NULL};
    if (hc_server_start(&srv, env) != 0) return -1;
    srv_up = 1;
    return 0;
}

static int suite_clean(void)
{
    if (!srv_up) return 0;
    long ms = 0;
    int st = hc_server_stop(&srv, &ms);
    int bad = st != 0 || ms > 5000;
    if (bad) {
        char *err = hc_server_stderr(&srv);
        fprintf(stderr, "\nplayground_raw: the suite's server exited with %d after %ld ms (want 0 within 5 s); stderr:\n%s\n",
                st, ms, err);
        free(err);
    }
    hc_server_free(&srv);
    srv_up = 0;
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------ basics */

IOX_TEST(playground_raw, get_root)
{
    struct hc_conn c;
    if (connect_main(&c)) return;
    struct hc_response r;
    int rc = hc_roundtrip(&c, GET_ROOT, &r, 0);
    EXPECT_OK(rc, &r);
    CU_ASSERT_FALSE(r.conn_close);
    CU_ASSERT_EQUAL(r.minor, 1);
    hc_response_free(&r);
    /* keep-alive: the same connection answers again */
    rc = hc_roundtrip(&c, GET_ROOT, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    CU_ASSERT_EQUAL(hc_pending(&c), 0);
    hc_close(&c);
}

IOX_TEST(playground_raw, unknown_path_404)
{
    struct hc_conn c;
    if (connect_main(&c)) return;
    struct hc_response r;
    int rc = hc_roundtrip(&c, GET_NOPE, &r, 0);
    EXPECT_STATUS(rc, &r, 404);
    CU_ASSERT_FALSE(r.conn_close);
    hc_response_free(&r);
    rc = hc_roundtrip(&c, GET_ROOT, &r, 0);   /* still open */
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    hc_close(&c);
}

IOX_TEST(playground_raw, head_then_pipelined_get)
{
    struct hc_conn c;
    if (connect_main(&c)) return;
    CU_ASSERT_EQUAL(hc_send_str(&c, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n" GET_ROOT
                                    "HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n" GET_ROOT), 0);
    struct hc_response r;
    int rc = hc_read_response(&c, &r, 1);
    EXPECT_HEAD_OK(rc, &r);
    hc_response_free(&r);
    /* If the HEAD answer carried "ok", this parse would start at "okHTTP/". */
    rc = hc_read_response(&c, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    rc = hc_read_response(&c, &r, 1);
    EXPECT_STATUS(rc, &r, 404);
    if (rc == HC_OK) CU_ASSERT_EQUAL(r.body_len, 0);
    hc_response_free(&r);
    rc = hc_read_response(&c, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    CU_ASSERT_EQUAL(hc_pending(&c), 0);
    hc_close(&c);
}

/* Request k of a pipelined sequence: a recognisable mix of paths and
 * methods so that answers out of order are caught. */
static const char *mix_req(unsigned k, int *status, int *head)
{
    switch (k % 5) {
    case 1: *status = 404; *head = 0; return GET_NOPE;
    case 3: *status = 200; *head = 1; return "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n";
    default: *status = 200; *head = 0; return GET_ROOT;
    }
}

IOX_TEST(playground_raw, pipeline_16_in_one_send)
{
    struct hc_conn c;
    if (connect_main(&c)) return;
    char buf[4096];
    size_t n = 0;
    int status[16], head[16];
    for (unsigned k = 0; k < 16; k++) {
        const char *q = mix_req(k, &status[k], &head[k]);
        memcpy(buf + n, q, strlen(q));
        n += strlen(q);
    }
    CU_ASSERT_EQUAL(hc_send(&c, buf, n), 0);
    for (unsigned k = 0; k < 16; k++) {
        struct hc_response r;
        int rc = hc_read_response(&c, &r, head[k]);
        CHECK(rc == HC_OK, "response %u: %s", k, hc_strerror(rc));
        if (rc != HC_OK) break;
        CHECK(r.status == status[k], "response %u: status %d, want %d", k, r.status, status[k]);
        if (status[k] == 200) CHECK(r.body_len == (head[k] ? 0u : 2u), "response %u: body length %zu", k, r.body_len);
        hc_response_free(&r);
    }
    CU_ASSERT_EQUAL(hc_pending(&c), 0);
    hc_close(&c);
}

IOX_TEST(playground_raw, request_byte_by_byte)
{
    struct hc_conn c;
    if (connect_main(&c)) return;
    /* Two requests, the second with a header the first lacks; TCP_NODELAY
     * is on, so each send is its own segment. */
    const char *q = "GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: itest\r\n\r\n" GET_NOPE;
    for (size_t i = 0; q[i]; i++) {
        if (hc_send(&c, q + i, 1) != 0) { CU_FAIL("send"); break; }
        usleep(500);
    }
    struct hc_response r;
    int rc = hc_read_response(&c, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    rc = hc_read_response(&c, &r, 0);
    EXPECT_STATUS(rc, &r, 404);
    hc_response_free(&r);
    hc_close(&c);
}

IOX_TEST(playground_raw, connection_close)
{
    struct hc_conn c;
    if (connect_main(&c)) return;
    struct hc_response r;
    int rc = hc_roundtrip(&c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r, 0);
    EXPECT_OK(rc, &r);
    CU_ASSERT_TRUE(r.conn_close);
    hc_response_free(&r);
    CU_ASSERT_EQUAL(hc_wait_eof(&c, 3000), 1);
    hc_close(&c);
}

IOX_TEST(playground_raw, http10_closes_by_default)
{
    struct hc_conn c;
    if (connect_main(&c)) return;
    struct hc_response r;
    int rc = hc_roundtrip(&c, "GET / HTTP/1.0\r\n\r\n", &r, 0);
    EXPECT_OK(rc, &r);
    CU_ASSERT_FALSE(r.conn_keep_alive);
    hc_response_free(&r);
    CU_ASSERT_EQUAL(hc_wait_eof(&c, 3000), 1);
    hc_close(&c);
}

IOX_TEST(playground_raw, http10_keep_alive)
{
    struct hc_conn c;
    if (connect_main(&c)) return;
    struct hc_response r;
    int rc = hc_roundtrip(&c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r, 0);
    EXPECT_OK(rc, &r);
    /* RFC 9112 §9.3: a 1.0 client only keeps the connection when told so. */
    CU_ASSERT_TRUE(r.conn_keep_alive);
    CU_ASSERT_FALSE(r.conn_close);
    hc_response_free(&r);
    rc = hc_roundtrip(&c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    /* the last one without keep-alive: answered, then closed */
    rc = hc_roundtrip(&c, "GET / HTTP/1.0\r\n\r\n", &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    CU_ASSERT_EQUAL(hc_wait_eof(&c, 3000), 1);
    hc_close(&c);
}

/* ------------------------------------------------------------ bodies */

IOX_TEST(playground_raw, post_content_length_then_get)
{
    struct hc_conn c;
    if (connect_main(&c)) return;
    /* The body looks like a request: it must be consumed, not parsed. */
    const char *body = GET_NOPE;
    char q[512];
    snprintf(q, sizeof q, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n%s" GET_ROOT,
             strlen(body), body);
    CU_ASSERT_EQUAL(hc_send_str(&c, q), 0);
    struct hc_response r;
    int rc = hc_read_response(&c, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    rc = hc_read_response(&c, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    /* nothing more: a third answer would mean the body was parsed */
    CU_ASSERT_EQUAL(hc_send_str(&c, GET_NOPE), 0);
    rc = hc_read_response(&c, &r, 0);
    EXPECT_STATUS(rc, &r, 404);
    hc_response_free(&r);
    CU_ASSERT_EQUAL(hc_pending(&c), 0);
    hc_close(&c);
}

static const char CHUNKED_POST[] =
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5;name=value\r\nhello\r\n"
    "1F\r\n" GET_NOPE "\r\n"
    "0\r\nX-Trailer: yes\r\n\r\n";

IOX_TEST(playground_raw, post_chunked_then_get)
{
    CU_ASSERT_EQUAL(strlen(GET_NOPE), 0x1F);
    struct hc_conn c;
    if (connect_main(&c)) return;
    char q[1024];
    snprintf(q, sizeof q, "%s%s", CHUNKED_POST, GET_ROOT);
    CU_ASSERT_EQUAL(hc_send_str(&c, q), 0);
    struct hc_response r;
    int rc = hc_read_response(&c, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    rc = hc_read_response(&c, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    CU_ASSERT_EQUAL(hc_send_str(&c, GET_NOPE), 0);
    rc = hc_read_response(&c, &r, 0);
    EXPECT_STATUS(rc, &r, 404);
    hc_response_free(&r);
    hc_close(&c);
}

IOX_TEST(playground_raw, body_split_across_sends)
{
    struct hc_conn c;
    if (connect_main(&c)) return;
    /* Content-Length body of 3000 bytes in 60 sends of 50. */
    char body[3000];
    for (size_t i = 0; i < sizeof body; i++) body[i] = (char)('a' + i % 26);
    char head[128];
    snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", sizeof body);
    CU_ASSERT_EQUAL(hc_send_str(&c, head), 0);
    for (size_t off = 0; off < sizeof body; off += 50) {
        CU_ASSERT_EQUAL(hc_send(&c, body + off, 50), 0);
        usleep(300);
    }
    CU_ASSERT_EQUAL(hc_send_str(&c, GET_NOPE), 0);
    struct hc_response r;
    int rc = hc_read_response(&c, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    rc = hc_read_response(&c, &r, 0);
    EXPECT_STATUS(rc, &r, 404);
    hc_response_free(&r);
    /* A chunked body, one byte per send (size lines and trailer cut too). */
    for (const char *p = CHUNKED_POST; *p; p++) {
        if (hc_send(&c, p, 1) != 0) { CU_FAIL("send"); break; }
        usleep(200);
    }
    CU_ASSERT_EQUAL(hc_send_str(&c, GET_ROOT), 0);
    rc = hc_read_response(&c, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    rc = hc_read_response(&c, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    CU_ASSERT_EQUAL(hc_pending(&c), 0);
    hc_close(&c);
}

/* ------------------------------------------------------------ malformed */

/* Sends req (write errors from an early close are ignored), expects one
 * answer `status` with Connection: close, then the server's FIN. */
static void expect_reject(const char *what, const char *req, size_t len, int status, int line)
{
    struct hc_conn c;
    int r = hc_connect(&c, srv.port, 2000);
    CHECK_AT(line, r == 0, "%s: connect: %s", what, strerror(-r));
    if (r) return;
    r = hc_send(&c, req, len);
    CHECK_AT(line, r == 0 || r == -EPIPE || r == -ECONNRESET, "%s: send: %s", what, strerror(-r));
    struct hc_response resp;
    int rc = hc_read_response(&c, &resp, 0);
    CHECK_AT(line, rc == HC_OK, "%s: read the %d answer: %s (%s)", what, status, hc_strerror(rc),
          rc == HC_IOERR ? strerror(c.err) : c.why ? c.why : "");
    if (rc == HC_OK) {
        CHECK_AT(line, resp.status == status, "%s: status %d, want %d", what, resp.status, status);
        CHECK_AT(line, resp.conn_close, "%s: no Connection: close on the %d", what, resp.status);
        hc_response_free(&resp);
        int e = hc_wait_eof(&c, 3000);
        CHECK_AT(line, e == 1, "%s: the server did not close after the error (wait_eof %d)", what, e);
    }
    hc_close(&c);
}
#define EXPECT_REJECT(what, req, status) expect_reject(what, req, strlen(req), status, __LINE__)

IOX_TEST(playground_raw, malformed_request_line)
{
    EXPECT_REJECT("garbage request line", "this is not http\r\nHost: t\r\n\r\n", 400);
    EXPECT_REJECT("two spaces", "GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    EXPECT_REJECT("no version", "GET /\r\nHost: t\r\n\r\n", 400);
}

IOX_TEST(playground_raw, malformed_after_good_pipelined)
{
    struct hc_conn c;
    if (connect_main(&c)) return;
    CU_ASSERT_EQUAL(hc_send_str(&c, GET_ROOT "BAD REQUEST\r\n\r\n" GET_ROOT), 0);
    struct hc_response r;
    int rc = hc_read_response(&c, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    rc = hc_read_response(&c, &r, 0);
    EXPECT_STATUS(rc, &r, 400);
    if (rc == HC_OK) CU_ASSERT_TRUE(r.conn_close);
    hc_response_free(&r);
    /* nothing is answered after the error */
    CU_ASSERT_EQUAL(hc_wait_eof(&c, 3000), 1);
    hc_close(&c);
}

IOX_TEST(playground_raw, content_length_with_transfer_encoding)
{
    EXPECT_REJECT("CL + TE",
                  "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "0\r\n\r\n", 400);
    EXPECT_REJECT("TE + CL",
                  "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                  "0\r\n\r\n", 400);
}

IOX_TEST(playground_raw, conflicting_content_lengths)
{
    EXPECT_REJECT("two Content-Lengths",
                  "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400);
    EXPECT_REJECT("a Content-Length list",
                  "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\n\r\nhello!", 400);
}

IOX_TEST(playground_raw, header_block_70k_431)
{
    /* 70 header lines of 1 KiB: under the header count limit, over 64 KiB. */
    size_t cap = 80 * 1024, n = 0;
    char *q = malloc(cap);
    n += (size_t)sprintf(q + n, "GET / HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 70; i++) {
        n += (size_t)sprintf(q + n, "X-Fill-%02d: ", i);
        memset(q + n, 'a' + i % 26, 1020);
        n += 1020;
        n += (size_t)sprintf(q + n, "\r\n");
    }
    n += (size_t)sprintf(q + n, "\r\n");
    CU_ASSERT_TRUE(n > 70 * 1024);
    expect_reject("70 KiB header block", q, n, 431, __LINE__);
    free(q);
}

IOX_TEST(playground_raw, target_over_8k_414)
{
    size_t tl = 9000;
    char *q = malloc(tl + 64);
    size_t n = (size_t)sprintf(q, "GET /");
    memset(q + n, 'x', tl);
    n += tl;
    n += (size_t)sprintf(q + n, " HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_reject("9000-byte target", q, n, 414, __LINE__);
    free(q);
}

IOX_TEST(playground_raw, http2_version_505)
{
    EXPECT_REJECT("HTTP/2.0", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505);
}

IOX_TEST(playground_raw, bare_lf_400)
{
    EXPECT_REJECT("bare LF everywhere", "GET / HTTP/1.1\nHost: t\n\n", 400);
    EXPECT_REJECT("bare LF in a header", "GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n", 400);
}

IOX_TEST(playground_raw, missing_host_400)
{
    EXPECT_REJECT("HTTP/1.1 without Host", "GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", 400);
    EXPECT_REJECT("two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

/* ------------------------------------------------------------ load engine */

/* nconns connections, each sending per_conn requests in batches of `depth`
 * pipelined requests (one send per batch) and checking every answer in
 * order, all from one thread with epoll. */
struct lconn {
    int fd;
    int connected;
    unsigned sent, got;
    char *in;
    size_t in_len, in_cap;
    char out[16 * 64];
    size_t out_len, out_off;
    int done;
};

struct load_result {
    unsigned long ok, bad_status, malformed, early_close, timeouts, io_errors, connect_errors;
    char first_error[256];
};

static void load_note(struct load_result *res, const char *fmt, ...)
{
    if (res->first_error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->first_error, sizeof res->first_error, fmt, ap);
    va_end(ap);
}

/* Request k of a connection: every 7th is /nope (404), the rest GET / —
 * so answers out of order are detected. */
static const char *load_req(unsigned k, int *status)
{
    if (k % 7 == 3) { *status = 404; return GET_NOPE; }
    *status = 200;
    return GET_ROOT;
}

static void lconn_fill_batch(struct lconn *l, unsigned per_conn, unsigned depth)
{
    l->out_len = l->out_off = 0;
    for (unsigned i = 0; i < depth && l->sent < per_conn; i++, l->sent++) {
        int st;
        const char *q = load_req(l->sent, &st);
        memcpy(l->out + l->out_len, q, strlen(q));
        l->out_len += strlen(q);
    }
}

static void lconn_finish(int ep, struct lconn *l)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, l->fd, NULL);
    close(l->fd);
    l->fd = -1;
    l->done = 1;
}

static void load_run(uint16_t port, unsigned nconns, unsigned per_conn, unsigned depth, int timeout_ms,
                     struct load_result *res)
{
    memset(res, 0, sizeof *res);
    if (depth > 16) depth = 16;
    struct lconn *ls = calloc(nconns, sizeof *ls);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned active = 0;
    for (unsigned i = 0; i < nconns; i++) {
        struct lconn *l = &ls[i];
        l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (l->fd < 0) { res->connect_errors++; load_note(res, "socket: %s", strerror(errno)); l->done = 1; continue; }
        if (connect(l->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
            res->connect_errors++;
            load_note(res, "connect: %s", strerror(errno));
            close(l->fd);
            l->fd = -1;
            l->done = 1;
            continue;
        }
        lconn_fill_batch(l, per_conn, depth);
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, l->fd, &ev);
        active++;
    }
    long long deadline = hc_now_ms() + timeout_ms;
    struct epoll_event evs[256];
    char rbuf[65536];
    while (active && hc_now_ms() < deadline) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int e = 0; e < n; e++) {
            struct lconn *l = &ls[evs[e].data.u32];
            if (l->done) continue;
            if (!l->connected && (evs[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) {
                    res->connect_errors++;
                    load_note(res, "connect: %s", strerror(err));
                    lconn_finish(ep, l);
                    active--;
                    continue;
                }
                l->connected = 1;
            }
            if (l->out_off < l->out_len) {
                ssize_t w = send(l->fd, l->out + l->out_off, l->out_len - l->out_off, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) {
                    res->io_errors++;
                    load_note(res, "send: %s after %u answers", strerror(errno), l->got);
                    lconn_finish(ep, l);
                    active--;
                    continue;
                }
                if (w > 0) l->out_off += (size_t)w;
                struct epoll_event ev = {.events = l->out_off < l->out_len ? EPOLLOUT | EPOLLIN : EPOLLIN,
                                         .data.u32 = evs[e].data.u32};
                epoll_ctl(ep, EPOLL_CTL_MOD, l->fd, &ev);
            }
            if (!(evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            int closed = 0;
            for (;;) {
                ssize_t r = recv(l->fd, rbuf, sizeof rbuf, 0);
                if (r > 0) {
                    if (l->in_len + (size_t)r > l->in_cap) {
                        l->in_cap = (l->in_len + (size_t)r) * 2;
                        l->in = realloc(l->in, l->in_cap);
                    }
                    memcpy(l->in + l->in_len, rbuf, (size_t)r);
                    l->in_len += (size_t)r;
                    continue;
                }
                if (r == 0) closed = 1;
                else if (errno != EAGAIN) {
                    res->io_errors++;
                    load_note(res, "recv: %s after %u answers", strerror(errno), l->got);
                    closed = 2;
                }
                break;
            }
            size_t off = 0;
            for (;;) {
                struct hc_response resp;
                size_t used = 0;
                const char *why = NULL;
                int p = hc_parse_response(l->in + off, l->in_len - off, 0, 0, &resp, &used, &why);
                if (p == 0) break;
                if (p < 0) {
                    res->malformed++;
                    load_note(res, "malformed answer %u: %s", l->got, why ? why : "?");
                    closed = 2;
                    break;
                }
                off += used;
                int want;
                load_req(l->got, &want);
                if (l->got >= l->sent) {
                    res->bad_status++;
                    load_note(res, "an answer to a request not sent (%u answers, %u sent)", l->got, l->sent);
                } else if (resp.status != want || (want == 200 && (resp.body_len != 2 || memcmp(resp.body, "ok", 2)))) {
                    res->bad_status++;
                    load_note(res, "answer %u: status %d, want %d", l->got, resp.status, want);
                } else {
                    res->ok++;
                }
                l->got++;
                hc_response_free(&resp);
            }
            if (off) {
                memmove(l->in, l->in + off, l->in_len - off);
                l->in_len -= off;
            }
            if (closed == 2) { lconn_finish(ep, l); active--; continue; }
            if (l->got == per_conn && l->in_len == 0) { lconn_finish(ep, l); active--; continue; }
            if (closed == 1) {
                res->early_close++;
                load_note(res, "the server closed after %u of %u answers", l->got, per_conn);
                lconn_finish(ep, l);
                active--;
                continue;
            }
            if (l->got == l->sent && l->sent < per_conn) {
                lconn_fill_batch(l, per_conn, depth);
                struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = evs[e].data.u32};
                epoll_ctl(ep, EPOLL_CTL_MOD, l->fd, &ev);
            }
        }
    }
    for (unsigned i = 0; i < nconns; i++) {
        if (!ls[i].done) {
            res->timeouts++;
            load_note(res, "timed out with %u of %u answers", ls[i].got, per_conn);
            close(ls[i].fd);
        }
        free(ls[i].in);
    }
    close(ep);
    free(ls);
}

static void check_load(const struct load_result *res, unsigned long want, int line)
{
    CHECK_AT(line, res->ok == want, "load: %lu good answers of %lu; bad %lu, malformed %lu, early close %lu, "
          "timeouts %lu, io errors %lu, connect errors %lu; first: %s", res->ok, want, res->bad_status,
          res->malformed, res->early_close, res->timeouts, res->io_errors, res->connect_errors,
          res->first_error[0] ? res->first_error : "-");
}

IOX_TEST(playground_raw, load_1000_conns_x_100)
{
    long long t0 = hc_now_ms();
    struct load_result res;
    load_run(srv.port, 1000, 100, 1, 25000, &res);
    check_load(&res, 100000, __LINE__);
    printf("\n    [1000 conns x 100 keep-alive requests: %lld ms] ", hc_now_ms() - t0);
}

/* ------------------------------------------------------------ resets */

IOX_TEST(playground_raw, reset_mid_request)
{
    struct hc_conn keep;
    if (connect_main(&keep)) return;
    struct hc_response r;
    int rc = hc_roundtrip(&keep, GET_ROOT, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    static const char *halves[] = {
        "GET / HTTP/1.1\r\nHo",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhalf a body",
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
        GET_ROOT GET_ROOT GET_ROOT "GET /",   /* answers owed while reset */
    };
    for (int round = 0; round < 40; round++) {
        struct hc_conn c;
        if (connect_main(&c)) return;
        CU_ASSERT_EQUAL(hc_send_str(&c, halves[round % 4]), 0);
        if (round % 2) usleep(2000);   /* sometimes the server has read it, sometimes not */
        hc_reset(&c);
    }
    /* The open connection and new ones are still served. */
    rc = hc_roundtrip(&keep, GET_ROOT, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    hc_close(&keep);
    struct hc_conn c;
    if (connect_main(&c)) return;
    rc = hc_roundtrip(&c, GET_ROOT, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    hc_close(&c);
}

/* ------------------------------------------------------------ idle timeout */

IOX_TEST(playground_raw, idle_timeout)
{
    struct hc_server s;
    static const char *const env[] = {"REACTORS=2", "IDLE_TIMEOUT_MS=300", NULL};
    if (hc_server_start(&s, env) != 0) { CU_FAIL("start a server with IDLE_TIMEOUT_MS=300"); return; }

    /* 1. a connection that never sends */
    struct hc_conn idle, used, slow;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&idle, s.port, 2000), 0);
    /* 2. one that made a request, then went quiet */
    CU_ASSERT_EQUAL_FATAL(hc_connect(&used, s.port, 2000), 0);
    struct hc_response r;
    int rc = hc_roundtrip(&used, GET_ROOT, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    long long t0 = hc_now_ms();
    /* 3. slowloris: one header byte every 100 ms, never finishing */
    CU_ASSERT_EQUAL_FATAL(hc_connect(&slow, s.port, 2000), 0);
    const char *drip = "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    long long slow_closed = -1;
    int slow_how = 0;
    for (size_t i = 0; drip[i] && hc_now_ms() - t0 < 3000; i++) {
        int e = hc_send(&slow, drip + i, 1);
        if (e < 0) { slow_closed = hc_now_ms() - t0; slow_how = e; break; }
        int w = hc_wait_eof(&slow, 100);
        if (w != 0) { slow_closed = hc_now_ms() - t0; slow_how = w; break; }
    }
    CHECK(slow_closed >= 0 && slow_closed < 2000, "slowloris connection closed after %lld ms (how %d), want < 2000",
          slow_closed, slow_how);
    /* The server closed it without an answer (EOF, or a reset if a byte was
     * in flight), never with a 200. */
    CHECK(slow_how == 1 || slow_how == -ECONNRESET || slow_how == -EPIPE,
          "slowloris: the connection ended with %d, want EOF or reset", slow_how);
    CU_ASSERT_EQUAL(hc_pending(&slow), 0);

    int e1 = hc_wait_eof(&idle, 2000);
    long long t_idle = hc_now_ms() - t0;
    CHECK(e1 == 1, "idle connection: wait_eof %d, want the server's FIN", e1);
    int e2 = hc_wait_eof(&used, 2000);
    long long t_used = hc_now_ms() - t0;
    CHECK(e2 == 1, "idle keep-alive connection: wait_eof %d, want the server's FIN", e2);
    CHECK(t_idle < 2000 && t_used < 2000, "closed after %lld / %lld ms, want < 2000", t_idle, t_used);
    /* not too early either: a fresh connection survives 150 ms */
    struct hc_conn fresh;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&fresh, s.port, 2000), 0);
    CU_ASSERT_EQUAL(hc_wait_eof(&fresh, 150), 0);
    rc = hc_roundtrip(&fresh, GET_ROOT, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    hc_close(&fresh);
    hc_close(&idle);
    hc_close(&used);
    hc_close(&slow);
    long ms;
    int st = hc_server_stop(&s, &ms);
    CHECK(st == 0, "the idle-timeout server exited with %d", st);
    hc_server_free(&s);
}

/* ------------------------------------------------------------ tiny buffer ring */

IOX_TEST(playground_raw, tiny_buffer_ring_under_load)
{
    struct hc_server s;
    /* IOX_LOG=debug: each reactor reports its ENOBUFS count when it stops. */
    static const char *const env[] = {"REACTORS=2", "IOX_RECV_BUFFERS=4", "IOX_RECV_BUFSIZE=64",
                                      "IOX_LOG=debug", NULL};
    if (hc_server_start(&s, env) != 0) { CU_FAIL("start a server with 4 x 64-byte buffers"); return; }
    struct load_result res;
    long long t0 = hc_now_ms();
    load_run(s.port, 64, 320, 16, 20000, &res);   /* 64 conns x 20 batches of 16 pipelined */
    check_load(&res, 64ul * 320, __LINE__);
    /* Bodies too: a POST whose body spans many 64-byte buffers. */
    struct hc_conn c;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&c, s.port, 2000), 0);
    char body[5000];
    memset(body, 'b', sizeof body);
    char head[128];
    snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", sizeof body);
    CU_ASSERT_EQUAL(hc_send_str(&c, head), 0);
    CU_ASSERT_EQUAL(hc_send(&c, body, sizeof body), 0);
    CU_ASSERT_EQUAL(hc_send_str(&c, GET_ROOT), 0);
    struct hc_response r;
    for (int i = 0; i < 2; i++) {
        int rc = hc_read_response(&c, &r, 0);
        EXPECT_OK(rc, &r);
        hc_response_free(&r);
    }
    hc_close(&c);
    long ms;
    int st = hc_server_stop(&s, &ms);
    CHECK(st == 0, "the tiny-ring server exited with %d", st);
    /* The ring did run dry: the test exercised ENOBUFS, not just load. */
    char *err = hc_server_stderr(&s);
    unsigned long long enobufs = 0;
    int reports = 0;
    for (const char *p = err; (p = strstr(p, "stopped: ")) != NULL; p++) {
        unsigned long long a, q, stale, nb;
        if (sscanf(p, "stopped: %llu accepted, %llu requests, %llu stale CQEs, %llu ENOBUFS", &a, &q, &stale, &nb) == 4) {
            enobufs += nb;
            reports++;
        }
    }
    CHECK(reports == 2, "%d reactor reports in the server's debug log, want 2", reports);
    CHECK(enobufs > 0, "no ENOBUFS with 4 x 64-byte buffers: the test did not exercise back-pressure");
    printf("\n    [tiny ring: %lld ms, %llu ENOBUFS] ", hc_now_ms() - t0, enobufs);
    if (st != 0) fprintf(stderr, "%s\n", err);
    free(err);
    hc_server_free(&s);
}

/* ------------------------------------------------------------ backpressure */

/* Pipelines N requests without reading (until the server stops taking
 * them), then reads every answer; the server's RSS must stay bounded. */
static void backpressure_run(const struct hc_server *server, unsigned N)
{
    /* Build the whole pipeline first. */
    size_t cap = (size_t)N * 40, n = 0;
    char *q = malloc(cap);
    for (unsigned k = 0; k < N; k++) {
        int st;
        const char *s = load_req(k, &st);
        memcpy(q + n, s, strlen(s));
        n += strlen(s);
    }
    struct hc_conn c;
    /* Small socket buffers so the backlog piles up in the server. */
    int r = hc_connect_ex(&c, server->port, 2000, 16384, 16384);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    long rss0 = hc_rss_kb(server->pid);
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    /* Phase 1: write without reading until all is written or the server
     * stops taking input (no progress for 500 ms). */
    size_t off = 0;
    int stalled = 0;
    while (off < n) {
        ssize_t w = send(c.fd, q + off, n - off, MSG_NOSIGNAL);
        if (w > 0) { off += (size_t)w; continue; }
        if (w < 0 && errno != EAGAIN) { CHECK(0, "send: %s", strerror(errno)); break; }
        struct pollfd pfd = {c.fd, POLLOUT, 0};
        if (poll(&pfd, 1, 500) == 0) { stalled = 1; break; }
    }
    size_t stalled_at = off;
    long rss1 = hc_rss_kb(server->pid);
    /* Phase 2: read everything, writing the rest as the server takes it. */
    char *in = malloc(1 << 20);
    size_t in_len = 0, in_cap = 1 << 20;
    unsigned got = 0, bad = 0;
    int eof = 0;
    long long deadline = hc_now_ms() + 20000;
    while (got < N && hc_now_ms() < deadline && !eof) {
        struct pollfd pfd = {c.fd, (short)(POLLIN | (off < n ? POLLOUT : 0)), 0};
        poll(&pfd, 1, 200);
        if (off < n && (pfd.revents & POLLOUT)) {
            ssize_t w = send(c.fd, q + off, n - off, MSG_NOSIGNAL);
            if (w > 0) off += (size_t)w;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (in_cap - in_len < 65536) { in_cap *= 2; in = realloc(in, in_cap); }
            ssize_t rr = recv(c.fd, in + in_len, in_cap - in_len, 0);
            if (rr == 0) eof = 1;
            else if (rr > 0) in_len += (size_t)rr;
            else if (errno != EAGAIN) { CHECK(0, "recv: %s", strerror(errno)); break; }
        }
        size_t pos = 0;
        for (;;) {
            struct hc_response resp;
            size_t used;
            const char *why = NULL;
            int p = hc_parse_response(in + pos, in_len - pos, 0, 0, &resp, &used, &why);
            if (p == 0) break;
            if (p < 0) { CHECK(0, "answer %u malformed: %s", got, why); deadline = 0; break; }
            pos += used;
            int want;
            load_req(got, &want);
            if (resp.status != want) bad++;
            got++;
            hc_response_free(&resp);
        }
        memmove(in, in + pos, in_len - pos);
        in_len -= pos;
    }
    long rss2 = hc_rss_kb(server->pid);
    CHECK(off == n, "wrote %zu of %zu request bytes", off, n);
    CHECK(got == N, "%u answers of %u (eof %d)", got, N, eof);
    CHECK(bad == 0, "%u answers with the wrong status (out of order?)", bad);
    CHECK(rss0 > 0 && rss1 - rss0 < 64 * 1024 && rss2 - rss0 < 64 * 1024,
          "server RSS %ld → %ld → %ld KiB: grew by more than 64 MiB", rss0, rss1, rss2);
    printf("\n    [backpressure %u: stalled=%d after %zu of %zu bytes; RSS %ld → %ld → %ld KiB] ",
           N, stalled, stalled_at, n, rss0, rss1, rss2);
    free(in);
    free(q);
    /* The connection is still good. */
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) & ~O_NONBLOCK);
    struct hc_response resp;
    int rc = hc_roundtrip(&c, GET_ROOT, &resp, 0);
    EXPECT_OK(rc, &resp);
    hc_response_free(&resp);
    hc_close(&c);
}

IOX_TEST(playground_raw, backpressure_20000_unread)
{
    backpressure_run(&srv, 20000);
}

/* 200000 answers (~22 MB) cannot hide in kernel socket buffers: the server
 * must stop reading while its write buffer is over IOX_WRITE_CAP. Its own
 * server: under ASan, freed memory sits in a quarantine (256 MiB by default)
 * and would count as RSS, so that server runs with a small one. */
IOX_TEST(playground_raw, backpressure_200000_unread)
{
    char asan[512];
    const char *inherited = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%squarantine_size_mb=4", inherited ? inherited : "",
             inherited && *inherited ? ":" : "");
    const char *const env[] = {"REACTORS=2", asan, NULL};
    struct hc_server s;
    if (hc_server_start(&s, env) != 0) { CU_FAIL("start a server"); return; }
    backpressure_run(&s, 200000);
    long ms;
    int st = hc_server_stop(&s, &ms);
    CHECK(st == 0, "the backpressure server exited with %d", st);
    if (st != 0) {
        char *err = hc_server_stderr(&s);
        fprintf(stderr, "%s\n", err);
        free(err);
    }
    hc_server_free(&s);
}

/* ------------------------------------------------------------ SIGTERM */

struct term_worker {
    pthread_t th;
    uint16_t port;
    volatile int *stop;
    unsigned long answers, truncated, malformed, timeouts, resets, eofs, reconnects;
    unsigned long bad_status;
    int last_rc;
};

static void *term_worker_main(void *arg)
{
    struct term_worker *w = arg;
    struct hc_conn c;
    int open = 0;
    char batch[8 * sizeof GET_ROOT];
    size_t bl = 0;
    for (int i = 0; i < 8; i++) { memcpy(batch + bl, GET_ROOT, sizeof GET_ROOT - 1); bl += sizeof GET_ROOT - 1; }
    while (!*w->stop) {
        if (!open) {
            if (hc_connect(&c, w->port, 1000) != 0) break;   /* refused: the server is gone */
            hc_set_timeout(&c, 6000);
            open = 1;
            w->reconnects++;
        }
        if (hc_send(&c, batch, bl) != 0) { w->resets++; hc_close(&c); open = 0; continue; }
        for (int i = 0; i < 8; i++) {
            struct hc_response r;
            int rc = hc_read_response(&c, &r, 0);
            w->last_rc = rc;
            if (rc == HC_OK) {
                w->answers++;
                if (r.status != 200 || r.body_len != 2 || memcmp(r.body, "ok", 2)) w->bad_status++;
                int cl = r.conn_close;
                hc_response_free(&r);
                if (cl) { hc_close(&c); open = 0; break; }
                continue;
            }
            /* A reset after part of an answer is a truncated answer too. */
            if (rc == HC_TRUNCATED || (rc == HC_IOERR && hc_pending(&c) > 0)) w->truncated++;
            else if (rc == HC_MALFORMED) w->malformed++;
            else if (rc == HC_TIMEOUT) w->timeouts++;
            else if (rc == HC_EOF) w->eofs++;
            else w->resets++;
            hc_close(&c);
            open = 0;
            break;
        }
    }
    if (open) hc_close(&c);
    return NULL;
}

IOX_TEST(playground_raw, sigterm_under_load)
{
    struct hc_server s;
    static const char *const env[] = {"REACTORS=2", NULL};
    if (hc_server_start(&s, env) != 0) { CU_FAIL("start a server"); return; }
    enum { W = 6 };
    struct term_worker ws[W];
    volatile int stop = 0;
    memset(ws, 0, sizeof ws);
    for (int i = 0; i < W; i++) {
        ws[i].port = s.port;
        ws[i].stop = &stop;
        pthread_create(&ws[i].th, NULL, term_worker_main, &ws[i]);
    }
    usleep(400 * 1000);
    unsigned long before = 0;
    for (int i = 0; i < W; i++) before += ws[i].answers;
    long ms = 0;
    int st = hc_server_stop(&s, &ms);
    stop = 1;
    for (int i = 0; i < W; i++) pthread_join(ws[i].th, NULL);
    CHECK(st == 0, "the server exited with %d after SIGTERM under load, want 0", st);
    CHECK(ms < 5000, "the server took %ld ms to exit after SIGTERM, want < 5000", ms);
    unsigned long answers = 0, trunc = 0, malf = 0, tmo = 0, bad = 0, resets = 0, eofs = 0;
    for (int i = 0; i < W; i++) {
        answers += ws[i].answers;
        trunc += ws[i].truncated;
        malf += ws[i].malformed;
        tmo += ws[i].timeouts;
        bad += ws[i].bad_status;
        resets += ws[i].resets;
        eofs += ws[i].eofs;
    }
    CHECK(before > 100, "only %lu answers before SIGTERM: no load", before);
    CHECK(trunc == 0 && malf == 0, "%lu truncated and %lu malformed answers around SIGTERM", trunc, malf);
    CHECK(tmo == 0, "%lu reads timed out around SIGTERM", tmo);
    CHECK(bad == 0, "%lu wrong answers", bad);
    printf("\n    [SIGTERM: exit %d after %ld ms; %lu answers, %lu at boundary EOF, %lu resets] ", st, ms,
           answers, eofs, resets);
    if (st != 0) {
        char *err = hc_server_stderr(&s);
        fprintf(stderr, "%s\n", err);
        free(err);
    }
    hc_server_free(&s);
}

/* SIGTERM while a client has a deep pipeline unread (answers pile up, the
 * server is throttled with input left in its socket):
 * every answer the server sent arrives complete and the stream ends with a
 * FIN — not a reset, which would discard answers still in the server's
 * socket buffer (RFC 9112 §9.6) — and the server exits 0 within 5 s. The
 * answers after SIGTERM say Connection: close; one already serialised
 * before it cannot, so that is not asserted. */
IOX_TEST(playground_raw, sigterm_with_unread_pipeline)
{
    struct hc_server s;
    static const char *const env[] = {"REACTORS=2", NULL};
    if (hc_server_start(&s, env) != 0) { CU_FAIL("start a server"); return; }
    enum { N = 100000 };
    size_t n = (size_t)N * (sizeof GET_ROOT - 1);
    char *q = malloc(n);
    for (unsigned k = 0; k < N; k++) memcpy(q + (size_t)k * (sizeof GET_ROOT - 1), GET_ROOT, sizeof GET_ROOT - 1);
    struct hc_conn c;
    CU_ASSERT_EQUAL_FATAL(hc_connect_ex(&c, s.port, 2000, 16384, 0), 0);
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(c.fd, q + off, n - off, MSG_NOSIGNAL);
        if (w > 0) { off += (size_t)w; continue; }
        if (w < 0 && errno != EAGAIN) break;
        struct pollfd pfd = {c.fd, POLLOUT, 0};
        if (poll(&pfd, 1, 300) == 0) break;
    }
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) & ~O_NONBLOCK);
    /* SIGTERM once the server is answering (the answers pile up unread):
     * requests it has not read yet it may drop with the connection. */
    struct pollfd pfd = {c.fd, POLLIN, 0};
    CU_ASSERT_EQUAL(poll(&pfd, 1, 3000), 1);
    usleep(50 * 1000);
    long long t0 = hc_now_ms();
    CU_ASSERT_EQUAL(kill(s.pid, SIGTERM), 0);
    unsigned got = 0, wrong = 0;
    int rc;
    struct hc_response r;
    while ((rc = hc_read_response(&c, &r, 0)) == HC_OK) {
        if (r.status != 200 || r.body_len != 2) wrong++;
        got++;
        hc_response_free(&r);
    }
    CHECK(rc == HC_EOF, "after %u answers: %s (%s), want a clean end of stream", got, hc_strerror(rc),
          rc == HC_IOERR ? strerror(c.err) : "");
    CHECK(got > 0 && got <= N, "%u answers", got);
    CHECK(wrong == 0, "%u wrong answers", wrong);
    hc_close(&c);
    int st = hc_server_wait_exit(&s, 5000);
    long long ms = hc_now_ms() - t0;
    CHECK(st == 0 && ms < 5000, "exit %d after %lld ms, want 0 within 5 s", st, ms);
    if (st == -ETIMEDOUT) hc_server_stop(&s, NULL);
    printf("\n    [SIGTERM with %zu of %zu bytes of pipeline written: %u answers, exit %d after %lld ms] ", off, n, got,
           st, ms);
    free(q);
    hc_server_free(&s);
}

/* ------------------------------------------------------------ startup failure */

IOX_TEST(playground_raw, startup_port_in_use)
{
    /* A plain listener (no SO_REUSEPORT) holds the port. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CU_ASSERT_EQUAL_FATAL(listen(fd, 16), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    uint16_t port = ntohs(sa.sin_port);
    struct hc_server s;
    static const char *const env[] = {"REACTORS=2", NULL};
    CU_ASSERT_EQUAL_FATAL(hc_server_spawn(&s, env, port), 0);
    int st = hc_server_wait_exit(&s, 2000);
    CHECK(st == 1, "the playground on a taken port: exit %d, want 1 within 2 s", st);
    char *err = hc_server_stderr(&s);
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    CHECK(strstr(err, "Address already in use") != NULL, "stderr lacks 'Address already in use': %s", err);
    CHECK(strstr(err, portstr) != NULL, "stderr does not name port %s: %s", portstr, err);
    /* the cause on one line, said once */
    const char *l1 = strstr(err, "Address already in use");
    CHECK(!l1 || !strstr(l1 + 1, "Address already in use"), "the cause is printed more than once: %s", err);
    free(err);
    hc_server_free(&s);
    close(fd);
}

/* ------------------------------------------------------------ churn ops */

/* The count of one opcode in the IOX_OP_COUNTS line ("name=N"), 0 if absent. */
static unsigned long long op_count(const char *line, const char *name)
{
    char key[32];
    snprintf(key, sizeof key, " %s=", name);
    const char *p = strstr(line, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/* One request per connection with the client's own Connection: close: the
 * server closes at once after the answer (no SHUT_WR, no wait for the
 * client's EOF), and a connection costs recv + send + cancel + close on the
 * ring (IOX_OP_COUNTS counts the SQEs). One connection with bytes after its
 * close request still lingers: exactly one shutdown. */
IOX_TEST(playground_raw, churn_ops_per_connection)
{
    enum { N = 100 };
    struct hc_server s;
    static const char *const env[] = {"REACTORS=1", "IOX_OP_COUNTS=1", NULL};
    if (hc_server_start(&s, env) != 0) { CU_FAIL("start a server with IOX_OP_COUNTS=1"); return; }
    for (int i = 0; i < N; i++) {
        struct hc_conn c;
        if (hc_connect(&c, s.port, 2000) != 0) { CU_FAIL("connect"); break; }
        struct hc_response r;
        int rc = hc_roundtrip(&c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r, 0);
        EXPECT_OK(rc, &r);
        hc_response_free(&r);
        CU_ASSERT_EQUAL(hc_wait_eof(&c, 3000), 1);   /* the server's close, before ours */
        hc_close(&c);
    }
    struct hc_conn c;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&c, s.port, 2000), 0);
    CU_ASSERT_EQUAL(hc_send_str(&c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /x HTTP/1.1\r\n"), 0);
    struct hc_response r;
    int rc = hc_read_response(&c, &r, 0);
    EXPECT_OK(rc, &r);
    hc_response_free(&r);
    CU_ASSERT_EQUAL(hc_wait_eof(&c, 3000), 1);   /* the half-close; our close ends the linger */
    hc_close(&c);
    long ms;
    int st = hc_server_stop(&s, &ms);
    CHECK(st == 0, "the server exited with %d", st);
    char *err = hc_server_stderr(&s);
    const char *line = strstr(err, "io_uring SQEs by opcode (IOX_OP_COUNTS): total=");
    CHECK(line != NULL, "no IOX_OP_COUNTS line in the server's log: %s", err);
    if (line) {
        const char *eol = strchr(line, '\n');
        char one[512];
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        if (n >= sizeof one) n = sizeof one - 1;
        memcpy(one, line, n);
        one[n] = 0;
        unsigned long long total = strtoull(strstr(one, "total=") + 6, NULL, 10);
        unsigned long long sh = op_count(one, "shutdown"), cl = op_count(one, "close");
        unsigned long long sd = op_count(one, "send"), rv = op_count(one, "recv");
        CHECK(sh == 1, "%llu shutdowns, want 1 (only the connection with bytes after its close lingers): %s", sh, one);
        /* hc_server_start's readiness probe is one more connection (recv, close; no send). */
        CHECK(sd == N + 1 && cl >= N + 1 && cl <= N + 2 && rv == cl,
              "send/close/recv %llu/%llu/%llu, want %d sends and as many closes as recvs (%d or %d): %s",
              sd, cl, rv, N + 1, N + 1, N + 2, one);
        /* recv, send, cancel, close per connection; the rest is the
         * listener's accept and the reactor tick. */
        CHECK(total <= 4ull * (N + 2) + 20, "%llu SQEs for %d connections, want at most 4 each (+20): %s",
              total, N + 2, one);
        printf("\n    [churn: %s] ", one + strlen("io_uring SQEs by opcode (IOX_OP_COUNTS): "));
    }
    free(err);
    hc_server_free(&s);
}

IOX_SUITE(playground_raw, suite_init, suite_clean);
