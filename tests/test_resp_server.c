/* test_resp_server.c — suite `resp`: build/ioxide-resp driven by the real
 * Redis tools and by raw pipelines.
 *
 *  - redis-cli: commands one by one, and --pipe with a generated stream;
 *  - redis-benchmark -t set,get -n 20000 -P 16 -q completes;
 *  - keys across reactors (REACTORS=2): each reactor owns some of them,
 *    and multi-key commands split and gather;
 *  - expiry: PX 50 then a wait (lazily on access, and by the active sweep
 *    without access), TTL values;
 *  - a deep pipeline on one connection mixing keys of both reactors:
 *    answers in request order;
 *  - SIGTERM: exit 0. */
#include "iox_test.h"
#include "resp_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct ru_proc srv;
static int up;

static int resp_init(void)
{
    const char *env[] = {"REACTORS=2", NULL};
    if (ru_start_resp(&srv, env) < 0) return -1;
    up = 1;
    return 0;
}

static int resp_clean(void)
{
    if (!up) return 0;
    up = 0;
    return ru_stop(&srv) == 0 ? 0 : -1;
}

/* redis-cli's output for one command (trailing newline removed). */
static char *cli(const char *args)
{
    char *out = NULL;
    int rc = ru_sh(&out, "redis-cli -p %u %s 2>&1", srv.port, args);
    if (rc != 0) fprintf(stderr, "\n  redis-cli %s: exit %d: %s\n", args, rc, out ? out : "");
    size_t n = out ? strlen(out) : 0;
    while (n && out[n - 1] == '\n') out[--n] = 0;
    return out;
}

static void cli_is(const char *args, const char *want)
{
    char *got = cli(args);
    int ok = got && strcmp(got, want) == 0;
    CU_ASSERT(ok);
    if (!ok) fprintf(stderr, "\n  redis-cli %s: got '%s', want '%s'\n", args, got ? got : "(null)", want);
    free(got);
}

IOX_TEST(resp, redis_cli_commands)
{
    cli_is("PING", "PONG");
    cli_is("SET greeting hello", "OK");
    cli_is("GET greeting", "hello");
    cli_is("GET nothing", "");
    cli_is("INCR visits", "1");
    cli_is("INCRBY visits 41", "42");
    cli_is("DECR visits", "41");
    cli_is("MSET a 1 b 2 c 3", "OK");
    cli_is("MGET a b nothing c", "1\n2\n\n3");
    cli_is("EXISTS a b nothing", "2");
    cli_is("DEL a b nothing", "2");
    cli_is("SET t v EX 100", "OK");
    cli_is("TTL t", "100");
    cli_is("TTL nothing", "-2");
    cli_is("ECHO 'hi there'", "hi there");
    cli_is("SELECT 0", "OK");
    cli_is("GET", "ERR wrong number of arguments for 'get' command");
    cli_is("NOSUCH x", "ERR unknown command 'NOSUCH', with args beginning with: 'x' ");
    /* HELLO 3: RESP3 is not spoken. */
    cli_is("HELLO 3", "NOPROTO unsupported protocol version");
    char *info = cli("INFO");
    CU_ASSERT_PTR_NOT_NULL(info);
    if (info) CU_ASSERT_PTR_NOT_NULL(strstr(info, "redis_version:"));
    free(info);
    cli_is("FLUSHALL", "OK");
    cli_is("DBSIZE", "0");
}

/* redis-cli --pipe: a generated stream of 10 000 SETs, then the count. */
IOX_TEST(resp, redis_cli_pipe)
{
    char *out = NULL;
    int rc = ru_sh(&out,
                   "for i in $(seq 1 10000); do printf '*3\\r\\n$3\\r\\nSET\\r\\n$%%d\\r\\npipe:%%d\\r\\n$1\\r\\nv\\r\\n' "
                   "$((5 + ${#i})) $i; done | redis-cli -p %u --pipe 2>&1",
                   srv.port);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(out && strstr(out, "errors: 0, replies: 10000"));
    if (!out || !strstr(out, "errors: 0, replies: 10000")) fprintf(stderr, "\n  --pipe said: %s\n", out ? out : "");
    free(out);
    cli_is("EXISTS pipe:1 pipe:5000 pipe:10000 pipe:10001", "3");
    char *n = cli("DBSIZE");
    CU_ASSERT(n && atoi(n) >= 10000);
    free(n);
}

IOX_TEST(resp, redis_benchmark_completes)
{
    char *out = NULL;
    int rc = ru_sh(&out, "timeout 120 redis-benchmark -p %u -t set,get -n 20000 -P 16 -q 2>&1", srv.port);
    CU_ASSERT_EQUAL(rc, 0);
    int ok = out && strstr(out, "SET: ") && strstr(out, "GET: ");
    CU_ASSERT(ok);
    if (!ok || rc) fprintf(stderr, "\n  redis-benchmark said: %s\n", out ? out : "");
    free(out);
}

/* Keys land on both reactors: INFO names 2 reactors, and one connection
 * reads back what it wrote across them, single and multi-key. */
IOX_TEST(resp, keys_across_reactors)
{
    char *info = cli("INFO");
    CU_ASSERT(info && strstr(info, "reactors:2"));
    free(info);
    char cmd[4096];
    size_t n = (size_t)snprintf(cmd, sizeof cmd, "MSET");
    for (int i = 0; i < 40; i++) n += (size_t)snprintf(cmd + n, sizeof cmd - n, " x%d %d", i, i * 7);
    cli_is(cmd, "OK");
    for (int i = 0; i < 40; i += 7) {
        char a[32], w[32];
        snprintf(a, sizeof a, "GET x%d", i);
        snprintf(w, sizeof w, "%d", i * 7);
        cli_is(a, w);
    }
    cli_is("MGET x0 x1 x2 x3 x4 x5", "0\n7\n14\n21\n28\n35");
    cli_is("EXISTS x0 x1 x2 x3 x4 x5 x6 x7 x8 x9", "10");
    cli_is("DEL x0 x1 x2 x3 x4 x5 x6 x7 x8 x9 nope", "10");
    char *sz = cli("DBSIZE");
    long before = sz ? atol(sz) : -1;
    free(sz);
    CU_ASSERT(before >= 30);
    cli_is("FLUSHALL", "OK");
    cli_is("DBSIZE", "0");
}

IOX_TEST(resp, expiry_lazy_active_and_ttl)
{
    cli_is("SET e1 v PX 50", "OK");
    cli_is("SET e2 v EX 1000", "OK");
    cli_is("TTL e2", "1000");
    char *pt = cli("PTTL e2");
    long ms = pt ? atol(pt) : -1;
    CU_ASSERT(ms > 990000 && ms <= 1000000);
    free(pt);
    cli_is("SET e3 v", "OK");
    cli_is("TTL e3", "-1");
    cli_is("PEXPIRE e3 50", "1");
    /* Many keys with a short deadline, never read again: only the
     * sweep can remove them. */
    char cmd[256];
    for (int i = 0; i < 50; i++) {
        snprintf(cmd, sizeof cmd, "SET sweep%d v PX 50", i);
        cli_is(cmd, "OK");
    }
    /* Wait (up to 10 s: not a timing assertion) until only e2 is left:
     * the sweep removes the others without anyone reading them. */
    char *sz = NULL;
    for (int i = 0; i < 100; i++) {
        free(sz);
        sz = cli("DBSIZE");
        if (sz && strcmp(sz, "1") == 0) break;
        usleep(100 * 1000);
    }
    CU_ASSERT(sz && strcmp(sz, "1") == 0);
    if (!sz || strcmp(sz, "1")) fprintf(stderr, "\n  DBSIZE stayed %s: the sweep did not remove expired keys\n", sz ? sz : "?");
    free(sz);
    cli_is("GET e1", "");
    cli_is("TTL e1", "-2");
    cli_is("EXISTS e3", "0");
    cli_is("FLUSHALL", "OK");
}

/* One connection, one write of 3 000 requests whose keys live on both
 * reactors: every answer is the one for its request, in order. */
IOX_TEST(resp, pipeline_in_order_across_reactors)
{
    enum { N = 1000 };
    size_t cap = N * 200, n = 0;
    char *req = malloc(cap), *want = malloc(cap * 2);
    size_t wn = 0;
    for (int i = 0; i < N; i++) {
        n += (size_t)snprintf(req + n, cap - n, "SET p%d %d\r\nINCR p%d\r\nMGET p%d p%d\r\n", i, i, i, i, i / 2);
        char v[32], v2[32];
        snprintf(v, sizeof v, "%d", i + 1);
        /* p(i/2) was set and incremented earlier in the pipeline (or is p(i) itself for i == 0). */
        snprintf(v2, sizeof v2, "%d", i / 2 + 1);
        wn += (size_t)snprintf(want + wn, cap * 2 - wn, "+OK\r\n:%d\r\n*2\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", i + 1,
                               strlen(v), v, strlen(v2), v2);
    }
    int fd = ru_connect(srv.port);
    CU_ASSERT_FATAL(fd >= 0);
    char *out = NULL;
    size_t len = 0;
    /* Send in a thread-free way: the replies are small, the socket buffers
     * hold them while we write. */
    size_t sent = 0;
    while (sent < n) {
        ssize_t w = send(fd, req + sent, n - sent, MSG_NOSIGNAL);
        if (w <= 0) break;
        sent += (size_t)w;
    }
    CU_ASSERT_EQUAL(sent, n);
    CU_ASSERT_EQUAL(ru_read_replies(fd, 3 * N, &out, &len), 0);
    int same = out && len == wn && memcmp(out, want, wn) == 0;
    CU_ASSERT(same);
    if (!same && out) {
        size_t i = 0;
        while (i < len && i < wn && out[i] == want[i]) i++;
        fprintf(stderr, "\n  differs at %zu: got %s\n", i, ru_show(out + i, len - i > 80 ? 80 : len - i));
    }
    free(out);
    free(req);
    free(want);
    close(fd);
    cli_is("FLUSHALL", "OK");
}

/* Values of 1 MiB on keys of both reactors: each GET's answer (a hop
 * for half of them) arrives whole, alone and pipelined. */
IOX_TEST(resp, big_values_across_reactors)
{
    enum { SZ = 1 << 20, KEYS = 8 };
    char *val = malloc(SZ);
    for (int i = 0; i < SZ; i++) val[i] = (char)('a' + i % 26);
    char hdr[64];
    for (int k = 0; k < KEYS; k++) {
        int fd = ru_connect(srv.port);
        CU_ASSERT_FATAL(fd >= 0);
        int n = snprintf(hdr, sizeof hdr, "*3\r\n$3\r\nSET\r\n$4\r\nbig%d\r\n$%d\r\n", k, SZ);
        CU_ASSERT_EQUAL(send(fd, hdr, (size_t)n, MSG_NOSIGNAL), n);
        size_t sent = 0;
        while (sent < SZ) {
            ssize_t w = send(fd, val + sent, SZ - sent, MSG_NOSIGNAL);
            if (w <= 0) break;
            sent += (size_t)w;
        }
        CU_ASSERT_EQUAL(send(fd, "\r\n", 2, MSG_NOSIGNAL), 2);
        char *out = NULL;
        size_t len = 0;
        CU_ASSERT_EQUAL(ru_read_replies(fd, 1, &out, &len), 0);
        CU_ASSERT(out && len == 5 && memcmp(out, "+OK\r\n", 5) == 0);
        free(out);
        close(fd);
    }
    /* Each alone, on a new connection (accepted on either reactor), then
     * all in one pipeline. */
    for (int round = 0; round < 2; round++) {
        int fd = ru_connect(srv.port);
        CU_ASSERT_FATAL(fd >= 0);
        int want = round ? KEYS : 1;
        for (int k = 0; k < KEYS; k += (round ? KEYS : 1)) {
            char req[256];
            size_t rn = 0;
            for (int j = 0; j < want; j++) rn += (size_t)snprintf(req + rn, sizeof req - rn, "GET big%d\r\n", k + j);
            CU_ASSERT_EQUAL(send(fd, req, rn, MSG_NOSIGNAL), (ssize_t)rn);
            char *out = NULL;
            size_t len = 0;
            int rc = ru_read_replies(fd, (unsigned)want, &out, &len);
            CU_ASSERT_EQUAL(rc, 0);
            size_t one = (size_t)snprintf(hdr, sizeof hdr, "$%d\r\n", SZ) + SZ + 2;
            CU_ASSERT_EQUAL(len, one * (size_t)want);
            int whole = rc == 0 && len == one * (size_t)want;
            for (int j = 0; whole && j < want; j++) CU_ASSERT_EQUAL(memcmp(out + j * one + one - 2 - SZ, val, SZ), 0);
            if (!whole) fprintf(stderr, "\n  GET big%d (x%d): %s after %zu bytes\n", k, want, rc ? "no complete answer" : "wrong length", len);
            free(out);
            if (!round) { close(fd); fd = ru_connect(srv.port); CU_ASSERT_FATAL(fd >= 0); }
        }
        close(fd);
    }
    free(val);
    cli_is("FLUSHALL", "OK");
}

IOX_SUITE(resp, resp_init, resp_clean);
