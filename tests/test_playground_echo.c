/* test_playground_echo.c — raw mode's POST /echo over real sockets
 * (ARCHITECTURE.md §5): the answer's body is exactly the request body, for
 * Content-Length and chunked bodies of 0 B to 10 MiB, with 100-continue
 * (the 100 only once the handler takes the body), 417 for other
 * expectations, pipelined behind and ahead of other requests, a client that
 * does not read its echo (the server's memory stays bounded), 413 for a
 * body over the limit, and real clients (curl, python3 http.client) when
 * installed. The suite starts one server (REACTORS=2). */
#include "http_client.h"
#include "iox_test.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct hc_server srv;
static int srv_up;

static int suite_init(void)
{
    static const char *const env[] = {"PLAYGROUND_MODE=raw", "REACTORS=2", "IOX_MAX_BODY_MB=16", NULL};
    if (hc_server_start(&srv, env) != 0) return -1;
    srv_up = 1;
    return 0;
}

static int suite_clean(void)
{
    if (!srv_up) return 0;
    int st = hc_server_stop(&srv, NULL);
    if (st != 0) {
        char *err = hc_server_stderr(&srv);
        fprintf(stderr, "\nplayground_echo: server exited with %d; stderr:\n%s\n", st, err);
        free(err);
    }
    hc_server_free(&srv);
    srv_up = 0;
    return st == 0 ? 0 : -1;
}

static char *pattern(size_t n, unsigned seed)
{
    char *p = malloc(n ? n : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; p[i] = (char)x; }
    return p;
}

/* Chunked framing of body, cut in pieces of `piece` bytes, with a chunk
 * extension on each and a trailer at the end. */
static char *chunked(const char *body, size_t n, size_t piece, size_t *out_len)
{
    size_t cap = n + (n / piece + 2) * 40 + 64;
    char *o = malloc(cap);
    size_t k = 0;
    for (size_t off = 0; off < n; off += piece) {
        size_t m = n - off < piece ? n - off : piece;
        k += (size_t)sprintf(o + k, "%zx;piece=%zu\r\n", m, off / piece);
        memcpy(o + k, body + off, m);
        k += m;
        memcpy(o + k, "\r\n", 2);
        k += 2;
    }
    k += (size_t)sprintf(o + k, "0\r\nX-Trailer: done\r\n\r\n");
    *out_len = k;
    return o;
}

/* Send `out` while reading what comes back (a client that reads as it
 * sends), until `nresp` responses are complete or the peer closes. Returns
 * the bytes received (malloc'd) and their count. read_after: do not read
 * before this many bytes are sent (0: read at once). */
static char *exchange(int fd, const char *out, size_t n, unsigned nresp, const int *heads, size_t *got)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    size_t cap = 1 << 16, len = 0, sent = 0, parsed = 0, tried = 0;
    unsigned done = 0;
    char *in = malloc(cap);
    int eof = 0, idle_ms = 0;
    while (!eof && done < nresp) {
        struct pollfd p = {fd, (short)(POLLIN | (sent < n ? POLLOUT : 0)), 0};
        int pr = poll(&p, 1, 100);
        if (pr < 0) break;
        int try_parse = 0;
        if (pr == 0) {
            /* Quiet: parse what came (if anything new), else count the
             * silence; a stuck server fails the caller's checks. */
            if (len > tried) try_parse = 1;
            else if ((idle_ms += 100) > hc_slow(10000)) break;
        } else {
            idle_ms = 0;
        }
        if ((p.revents & POLLOUT) && sent < n) {
            ssize_t k = send(fd, out + sent, n - sent > 65536 ? 65536 : n - sent, MSG_NOSIGNAL);
            if (k > 0) sent += (size_t)k;
            else if (k < 0 && errno != EAGAIN) break;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (len == cap) { cap *= 2; in = realloc(in, cap); }
            ssize_t k = recv(fd, in + len, cap - len, 0);
            if (k == 0) eof = 1;
            else if (k > 0) len += (size_t)k;
            else if (errno != EAGAIN) break;
            /* Parsing the incomplete answer again after every read would
             * be quadratic in its size (minutes for 10 MiB under ASan, the
             * server's idle timer meanwhile): only when it has doubled,
             * when the line goes quiet, or at the end. */
            if (eof || len - parsed >= 2 * (tried - parsed) + 65536) try_parse = 1;
        }
        while (try_parse) {
            tried = len;
            struct hc_response r;
            size_t used;
            int rc = hc_parse_response(in + parsed, len - parsed, heads ? heads[done] : 0, eof, &r, &used, NULL);
            if (rc != 1) break;
            int interim = r.status >= 100 && r.status < 200;
            hc_response_free(&r);
            parsed += used;
            if (!interim) done++;
            if (done == nresp) break;
        }
    }
    fcntl(fd, F_SETFL, fl);
    *got = len;
    return in;
}

static void echo_case(const char *body, size_t n, int use_chunked, const char *extra, int line)
{
    struct hc_conn c;
    if (hc_connect(&c, srv.port, 2000) != 0) { CU_FAIL("connect"); return; }
    char head[256];
    size_t blen = n;
    char *framed = NULL;
    if (use_chunked) {
        framed = chunked(body, n, 100000, &blen);
        snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: t\r\n%sTransfer-Encoding: chunked\r\n\r\n", extra);
    } else {
        snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: t\r\n%sContent-Length: %zu\r\n\r\n", extra, n);
    }
    size_t hl = strlen(head);
    char *msg = malloc(hl + blen + 32);
    memcpy(msg, head, hl);
    memcpy(msg + hl, framed ? framed : body, blen);
    static const char get[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";   /* pipelined behind it */
    memcpy(msg + hl + blen, get, sizeof get - 1);
    size_t got;
    char *in = exchange(c.fd, msg, hl + blen + sizeof get - 1, 2, NULL, &got);
    struct hc_response r;
    size_t used = 0, off = 0;
    int rc = hc_parse_response(in, got, 0, 0, &r, &used, NULL);
    if (rc == 1 && r.status == 100 && extra[0]) {   /* the interim answer first */
        hc_response_free(&r);
        off = used;
        rc = hc_parse_response(in + off, got - off, 0, 0, &r, &used, NULL);
        used += off;
    }
    char what[128];
    snprintf(what, sizeof what, "line %d: echo of %zu bytes (%s)", line, n, use_chunked ? "chunked" : "length");
    CU_ASSERT_EQUAL(rc, 1);
    if (rc == 1) {
        CU_ASSERT_EQUAL(r.status, 200);
        int ok = r.body_len == n && !memcmp(r.body, body, n);
        CU_ASSERT(ok);
        if (!ok) fprintf(stderr, "\n  %s: got %zu body bytes\n", what, r.body_len);
        CU_ASSERT(use_chunked ? r.chunked : r.content_length == (long long)n);
        off = used;
        hc_response_free(&r);
        rc = hc_parse_response(in + off, got - off, 0, 0, &r, &used, NULL);
        CU_ASSERT(rc == 1 && r.status == 200 && r.body_len == 2 && !memcmp(r.body, "ok", 2));
        if (rc == 1) hc_response_free(&r);
    } else {
        fprintf(stderr, "\n  %s: no answer (%zu bytes)\n", what, got);
    }
    free(in);
    free(msg);
    free(framed);
    hc_close(&c);
}

IOX_TEST(playground_echo, content_length_0_1_64k_1m_10m)
{
    static const size_t sizes[] = {0, 1, 65536, 1u << 20, 10u << 20};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *b = pattern(sizes[i], i + 1);
        echo_case(b, sizes[i], 0, "", __LINE__);
        free(b);
    }
}

IOX_TEST(playground_echo, chunked_0_1_64k_1m_10m_with_extensions_and_trailers)
{
    static const size_t sizes[] = {0, 1, 65536, 1u << 20, 10u << 20};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *b = pattern(sizes[i], i + 11);
        echo_case(b, sizes[i], 1, "", __LINE__);
        free(b);
    }
}

/* The client sends Expect and the whole body at once (as a client that
 * does not wait): the 100 comes ahead of the echo, the bytes are exact. */
IOX_TEST(playground_echo, expect_100_with_body_already_sent)
{
    char *b = pattern(200000, 5);
    echo_case(b, 200000, 0, "Expect: 100-continue\r\n", __LINE__);
    echo_case(b, 200000, 1, "Expect: 100-continue\r\n", __LINE__);
    free(b);
}

/* A client that waits for the 100 before sending (what curl does for
 * bodies over 1 KiB): the 100 arrives with nothing sent yet. */
IOX_TEST(playground_echo, expect_100_then_body)
{
    struct hc_conn c;
    if (hc_connect(&c, srv.port, 2000) != 0) { CU_FAIL("connect"); return; }
    CU_ASSERT(hc_send_str(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n") == 0);
    struct hc_response r;
    int rc = hc_read_response(&c, &r, 0);
    CU_ASSERT_EQUAL(rc, HC_OK);
    if (rc == HC_OK) { CU_ASSERT_EQUAL(r.status, 100); hc_response_free(&r); }
    char *b = pattern(5000, 9);
    CU_ASSERT(hc_send(&c, b, 5000) == 0);
    rc = hc_read_response(&c, &r, 0);
    CU_ASSERT_EQUAL(rc, HC_OK);
    if (rc == HC_OK) {
        CU_ASSERT(r.status == 200 && r.body_len == 5000 && !memcmp(r.body, b, 5000));
        CU_ASSERT(!r.conn_close);
        hc_response_free(&r);
    }
    /* Not asked for by the handler (POST /): the answer, no 100, close. */
    CU_ASSERT(hc_send_str(&c, "POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n") == 0);
    rc = hc_read_response(&c, &r, 0);
    CU_ASSERT_EQUAL(rc, HC_OK);
    if (rc == HC_OK) {
        CU_ASSERT(r.status == 200 && r.conn_close);
        hc_response_free(&r);
    }
    CU_ASSERT_EQUAL(hc_wait_eof(&c, hc_slow(3000)), 1);
    free(b);
    hc_close(&c);
}

IOX_TEST(playground_echo, unknown_expectation_417)
{
    struct hc_conn c;
    if (hc_connect(&c, srv.port, 2000) != 0) { CU_FAIL("connect"); return; }
    struct hc_response r;
    int rc = hc_roundtrip(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: foo\r\nContent-Length: 3\r\n\r\nabc", &r, 0);
    CU_ASSERT_EQUAL(rc, HC_OK);
    if (rc == HC_OK) {
        CU_ASSERT(r.status == 417 && !strcmp(r.reason, "Expectation Failed") && r.conn_close);
        hc_response_free(&r);
    }
    hc_close(&c);
}

IOX_TEST(playground_echo, pipelined_get_post_get_in_one_write)
{
    struct hc_conn c;
    if (hc_connect(&c, srv.port, 2000) != 0) { CU_FAIL("connect"); return; }
    CU_ASSERT(hc_send_str(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                              "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nabcdef"
                              "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
                              "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct hc_response r;
    static const int want_status[] = {200, 200, 200, 404};
    static const char *const want_body[] = {"ok", "abcdef", "xy", NULL};
    for (int i = 0; i < 4; i++) {
        int rc = hc_read_response(&c, &r, 0);
        CU_ASSERT_EQUAL(rc, HC_OK);
        if (rc != HC_OK) break;
        CU_ASSERT_EQUAL(r.status, want_status[i]);
        if (want_body[i]) CU_ASSERT(r.body_len == strlen(want_body[i]) && !memcmp(r.body, want_body[i], r.body_len));
        hc_response_free(&r);
    }
    hc_close(&c);
}

IOX_TEST(playground_echo, method_other_than_post_405)
{
    struct hc_conn c;
    if (hc_connect(&c, srv.port, 2000) != 0) { CU_FAIL("connect"); return; }
    struct hc_response r;
    int rc = hc_roundtrip(&c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", &r, 0);
    CU_ASSERT_EQUAL(rc, HC_OK);
    if (rc == HC_OK) {
        CU_ASSERT_EQUAL(r.status, 405);
        const char *allow = hc_header(&r, "Allow");
        CU_ASSERT(allow && strstr(allow, "POST"));
        hc_response_free(&r);
    }
    hc_close(&c);
}

/* A client sends 10 MiB and does not read: the server stops reading once
 * its write cap is reached (its memory stays bounded), and when the
 * client then reads, every byte comes back. */
IOX_TEST(playground_echo, slow_reader_10m_bounded)
{
    if (hc_under_valgrind()) return;
    struct hc_conn c;
    if (hc_connect_ex(&c, srv.port, 2000, 65536, 65536) != 0) { CU_FAIL("connect"); return; }
    long rss0 = hc_rss_kb(srv.pid);
    const size_t n = 10u << 20;
    char *b = pattern(n, 77);
    char head[128];
    int hl = snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
    CU_ASSERT(hc_send(&c, head, (size_t)hl) == 0);
    int fl = fcntl(c.fd, F_GETFL);
    fcntl(c.fd, F_SETFL, fl | O_NONBLOCK);
    size_t sent = 0;
    /* Send without reading until the server stops taking bytes. */
    for (;;) {
        struct pollfd p = {c.fd, POLLOUT, 0};
        if (poll(&p, 1, hc_slow(500)) <= 0) break;
        ssize_t k = send(c.fd, b + sent, n - sent > 65536 ? 65536 : n - sent, MSG_NOSIGNAL);
        if (k <= 0) break;
        sent += (size_t)k;
        if (sent == n) break;
    }
    CU_ASSERT(sent < n);   /* backpressure reached the client */
    long rss1 = hc_rss_kb(srv.pid);
    /* The body so far is not held by the server: its growth is the write
     * cap and a carry, not the megabytes sent. */
    CU_ASSERT(rss0 > 0 && rss1 - rss0 < 8 * 1024);
    if (rss1 - rss0 >= 8 * 1024) fprintf(stderr, "\n  server RSS grew %ld KiB with %zu bytes sent\n", rss1 - rss0, sent);
    fcntl(c.fd, F_SETFL, fl);
    size_t got;
    char *in = exchange(c.fd, b + sent, n - sent, 1, NULL, &got);
    struct hc_response r;
    size_t used;
    int rc = hc_parse_response(in, got, 0, 0, &r, &used, NULL);
    CU_ASSERT_EQUAL(rc, 1);
    if (rc == 1) {
        CU_ASSERT(r.status == 200 && r.body_len == n && !memcmp(r.body, b, n));
        hc_response_free(&r);
    }
    long rss2 = hc_rss_kb(srv.pid);
    CU_ASSERT(rss2 - rss0 < 16 * 1024);
    free(in);
    free(b);
    hc_close(&c);
}

IOX_TEST(playground_echo, body_over_the_limit_413_and_close)
{
    struct hc_conn c;
    if (hc_connect(&c, srv.port, 2000) != 0) { CU_FAIL("connect"); return; }
    struct hc_response r;
    int rc = hc_roundtrip(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 17000000\r\n\r\n", &r, 0);
    CU_ASSERT_EQUAL(rc, HC_OK);
    if (rc == HC_OK) {
        CU_ASSERT(r.status == 413 && r.conn_close);
        hc_response_free(&r);
    }
    CU_ASSERT_EQUAL(hc_wait_eof(&c, hc_slow(3000)), 1);
    hc_close(&c);
}

/* Real clients, when installed: curl (it sends Expect: 100-continue for
 * bodies over 1 KiB and waits for the 100) and python3's http.client
 * (chunked request body, read back). */
static int have(const char *cmd)
{
    char q[128];
    snprintf(q, sizeof q, "command -v %s >/dev/null 2>&1", cmd);
    return system(q) == 0;
}

IOX_TEST(playground_echo, curl_and_python_clients)
{
    char dir[] = "/tmp/iox-echo-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    char in[64], out[80], cmd[512];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    char *b = pattern(3u << 20, 3);
    FILE *f = fopen(in, "wb");
    CU_ASSERT_FATAL(f != NULL);
    fwrite(b, 1, 3u << 20, f);
    fclose(f);
    if (have("curl")) {
        snprintf(cmd, sizeof cmd, "curl -sS --max-time 20 --data-binary @%s -o %s http://127.0.0.1:%u/echo && cmp -s %s %s",
                 in, out, srv.port, in, out);
        CU_ASSERT_EQUAL(system(cmd), 0);
        snprintf(cmd, sizeof cmd, "curl -sS --max-time 20 -H 'Transfer-Encoding: chunked' --data-binary @%s -o %s "
                 "http://127.0.0.1:%u/echo && cmp -s %s %s", in, out, srv.port, in, out);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
    if (have("python3")) {
        snprintf(cmd, sizeof cmd,
                 "python3 -c 'import http.client,sys\n"
                 "d=open(\"%s\",\"rb\").read()\n"
                 "c=http.client.HTTPConnection(\"127.0.0.1\",%u,timeout=20)\n"
                 "c.request(\"POST\",\"/echo\",body=iter([d[:1000],d[1000:]]),encode_chunked=True)\n"
                 "r=c.getresponse()\n"
                 "b=r.read()\n"
                 "sys.exit(0 if r.status==200 and b==d and r.getheader(\"Transfer-Encoding\")==\"chunked\" else 1)'",
                 in, srv.port);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
    unlink(in);
    unlink(out);
    rmdir(dir);
    free(b);
}

IOX_SUITE(playground_echo, suite_init, suite_clean);
