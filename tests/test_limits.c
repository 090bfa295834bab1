/* test_limits.c — every limit that protects the server is a knob, and each
 * is enforced with the right answer while the server keeps serving others:
 * IOX_MAX_CONNS (accept pauses, resumes when a slot frees), IOX_MAX_BODY_MB
 * (413), IOX_MAX_HEADERS and IOX_MAX_HEAD (431), IOX_MAX_TARGET (414),
 * IOX_NOTSENT_LOWAT (set on every accepted socket). The
 * write cap, idle timeout and pg queue have their own suites
 * (playground_raw, pg_ring). */
#include "iox_test.h"
#include "http_client.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char GET_ROOT[] = "GET / HTTP/1.1\r\nHost: l\r\n\r\n";

static int answered_ok(struct hc_conn *c)
{
    struct hc_response r;
    if (hc_roundtrip(c, GET_ROOT, &r, 0) != HC_OK) return 0;
    int ok = r.status == 200 && r.body_len == 2 && !memcmp(r.body, "ok", 2);
    hc_response_free(&r);
    return ok;
}

/* Expects `status` with Connection: close, then the server's close. */
static void expect_reject(struct hc_conn *c, int status)
{
    struct hc_response r;
    int rc = hc_read_response(c, &r, 0);
    CU_ASSERT_EQUAL(rc, HC_OK);
    if (rc != HC_OK) return;
    CU_ASSERT_EQUAL(r.status, status);
    if (r.status != status) fprintf(stderr, "\n  got %d, want %d\n", r.status, status);
    CU_ASSERT(r.conn_close);
    hc_response_free(&r);
    CU_ASSERT_EQUAL(hc_wait_eof(c, 4000), 1);
}

IOX_TEST(limits, max_conns_pauses_accept_and_resumes)
{
    const char *env[] = {"REACTORS=1", "IOX_MAX_CONNS=4", NULL};
    struct hc_server s;
    if (hc_server_start(&s, env) != 0) { CU_FAIL("start"); return; }
    /* hc_server_start's readiness probe used a slot; let it be released. */
    usleep(100 * 1000);
    struct hc_conn c[5];
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_FATAL(hc_connect(&c[i], s.port, 2000) == 0);
        CU_ASSERT(answered_ok(&c[i]));
    }
    /* The fifth is left in the kernel's backlog: connected, not served. */
    CU_ASSERT_FATAL(hc_connect(&c[4], s.port, 2000) == 0);
    CU_ASSERT_EQUAL(hc_send_str(&c[4], GET_ROOT), 0);
    hc_set_timeout(&c[4], 400);
    struct hc_response r;
    CU_ASSERT_NOT_EQUAL(hc_read_response(&c[4], &r, 0), HC_OK);
    /* The others are served meanwhile. */
    for (int i = 0; i < 4; i++) CU_ASSERT(answered_ok(&c[i]));
    /* A slot frees: the waiting connection is accepted and answered. */
    hc_close(&c[0]);
    hc_set_timeout(&c[4], 3000);
    int rc = hc_read_response(&c[4], &r, 0);
    CU_ASSERT_EQUAL(rc, HC_OK);
    if (rc == HC_OK) {
        CU_ASSERT_EQUAL(r.status, 200);
        hc_response_free(&r);
    }
    for (int i = 1; i < 5; i++) hc_close(&c[i]);
    long ms;
    CU_ASSERT_EQUAL(hc_server_stop(&s, &ms), 0);
    hc_server_free(&s);
}

/* utime+stime of a process, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) != 2) return -1;
    return ut + st;
}

/* Out of descriptors (EMFILE) the multishot accept ends; re-arming at once
 * would spin (LESSONS.md). The server must pause accepting for a tick —
 * little CPU while the backlog waits — keep serving the connections it has,
 * and accept the rest once descriptors free up. */
IOX_TEST(limits, emfile_pauses_accept_without_spinning)
{
    struct rlimit old, low;
    CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &old) == 0);
    low = old;
    low.rlim_cur = 48;   /* the child inherits it: ~40 connections fit */
    struct hc_server s;
    /* Out of real fds: accepted sockets must be fds (a direct descriptor
     * table cannot even be registered under this limit; its own "full" is
     * -ENFILE, which pauses the accept the same way). */
    const char *env[] = {"REACTORS=1", "IOX_DIRECT_FDS=off", NULL};
    uint16_t port = hc_free_port();
    CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &low) == 0);
    int sp = hc_server_spawn(&s, env, port);
    setrlimit(RLIMIT_NOFILE, &old);
    CU_ASSERT_FATAL(sp == 0);
    CU_ASSERT_FATAL(hc_server_wait_ready(&s, hc_slow(5000)) == 1);
    usleep(100 * 1000);
    enum { N = 70 };
    struct hc_conn c[N];
    for (int i = 0; i < N; i++) {
        CU_ASSERT_FATAL(hc_connect(&c[i], s.port, 2000) == 0);   /* the backlog takes them */
        CU_ASSERT_EQUAL(hc_send_str(&c[i], GET_ROOT), 0);
        hc_set_timeout(&c[i], 300);
    }
    usleep(300 * 1000);
    /* A second with descriptors exhausted and connections waiting. */
    long t0 = cpu_ticks(s.pid);
    usleep(1000 * 1000);
    long t1 = cpu_ticks(s.pid);
    long ticks = t1 - t0;
    CU_ASSERT(t0 >= 0 && ticks < 30);   /* a spin would be ~100 per second */
    if (ticks >= 30) fprintf(stderr, "\n  server used %ld ticks in 1 s with accept out of fds\n", ticks);
    /* Those accepted are served; the rest wait. */
    int served = 0;
    for (int i = 0; i < N; i++) {
        struct hc_response r;
        if (hc_read_response(&c[i], &r, 0) == HC_OK) {
            served += r.status == 200;
            hc_response_free(&r);
            c[i].eof = 1;      /* mark: answered (closed below) */
        }
    }
    /* Keep them open until all were tried, then free descriptors. */
    for (int i = 0; i < N; i++)
        if (c[i].eof) hc_close(&c[i]);
    CU_ASSERT(served > 10 && served < N);
    if (!(served > 10 && served < N)) fprintf(stderr, "\n  served %d of %d before descriptors freed\n", served, N);
    /* Descriptors are back: the rest are accepted and answered. */
    int late = 0;
    for (int i = 0; i < N; i++) {
        if (c[i].fd < 0) continue;
        hc_set_timeout(&c[i], 4000);
        struct hc_response r;
        if (hc_read_response(&c[i], &r, 0) == HC_OK) {
            late += r.status == 200;
            hc_response_free(&r);
        }
        hc_close(&c[i]);
    }
    CU_ASSERT_EQUAL(served + late, N);
    char *e = hc_server_stderr(&s);
    CU_ASSERT(strstr(e, "Too many open files") != NULL);
    free(e);
    long ms;
    CU_ASSERT_EQUAL(hc_server_stop(&s, &ms), 0);
    hc_server_free(&s);
}

static struct hc_server lim_server;
static int lim_up;

static int limits_init(void)
{
    const char *env[] = {"REACTORS=1", "IOX_MAX_BODY_MB=1", "IOX_MAX_HEADERS=10",
                         "IOX_MAX_TARGET=100", "IOX_MAX_HEAD=2048", NULL};
    lim_up = hc_server_start(&lim_server, env) == 0;
    return 0;
}

static int limits_clean(void)
{
    if (!lim_up) return 0;
    long ms;
    int st = hc_server_stop(&lim_server, &ms);
    hc_server_free(&lim_server);
    return st == 0 ? 0 : -1;
}

IOX_TEST(limits, body_over_cap_413_while_others_served)
{
    CU_ASSERT_FATAL(lim_up);
    struct hc_conn other, c;
    CU_ASSERT_FATAL(hc_connect(&other, lim_server.port, 2000) == 0);
    CU_ASSERT(answered_ok(&other));
    /* Content-Length over the cap: refused from the head alone. */
    CU_ASSERT_FATAL(hc_connect(&c, lim_server.port, 2000) == 0);
    hc_send_str(&c, "POST / HTTP/1.1\r\nHost: l\r\nContent-Length: 2097152\r\n\r\n");
    expect_reject(&c, 413);
    hc_close(&c);
    /* A chunked body that grows past the cap. */
    CU_ASSERT_FATAL(hc_connect(&c, lim_server.port, 2000) == 0);
    hc_send_str(&c, "POST / HTTP/1.1\r\nHost: l\r\nTransfer-Encoding: chunked\r\n\r\n");
    static char chunk[65536 + 16];
    int k = snprintf(chunk, sizeof chunk, "10000\r\n");
    memset(chunk + k, 'z', 65536);
    memcpy(chunk + k + 65536, "\r\n", 2);
    size_t clen = (size_t)k + 65536 + 2;
    for (int i = 0; i < 17; i++)
        if (hc_send(&c, chunk, clen) != 0) break;   /* the server may stop reading */
    expect_reject(&c, 413);
    hc_close(&c);
    /* Exactly at the cap is fine. */
    CU_ASSERT_FATAL(hc_connect(&c, lim_server.port, 2000) == 0);
    hc_send_str(&c, "POST / HTTP/1.1\r\nHost: l\r\nContent-Length: 1048576\r\n\r\n");
    static char body[1 << 20];
    memset(body, 'y', sizeof body);
    CU_ASSERT_EQUAL(hc_send(&c, body, sizeof body), 0);
    struct hc_response r;
    CU_ASSERT_EQUAL_FATAL(hc_read_response(&c, &r, 0), HC_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    hc_response_free(&r);
    hc_close(&c);
    CU_ASSERT(answered_ok(&other));
    hc_close(&other);
}

IOX_TEST(limits, header_count_and_block_caps_431)
{
    CU_ASSERT_FATAL(lim_up);
    struct hc_conn c;
    char req[4096];
    size_t n = (size_t)snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: l\r\n");
    for (int i = 0; i < 9; i++) n += (size_t)snprintf(req + n, sizeof req - n, "X-%d: v\r\n", i);
    /* 10 fields: allowed. */
    CU_ASSERT_FATAL(hc_connect(&c, lim_server.port, 2000) == 0);
    memcpy(req + n, "\r\n", 3);
    struct hc_response r;
    CU_ASSERT_EQUAL_FATAL(hc_roundtrip(&c, req, &r, 0), HC_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    hc_response_free(&r);
    hc_close(&c);
    /* 11 fields: 431. */
    CU_ASSERT_FATAL(hc_connect(&c, lim_server.port, 2000) == 0);
    n += (size_t)snprintf(req + n, sizeof req - n, "X-last: v\r\n\r\n");
    hc_send_str(&c, req);
    expect_reject(&c, 431);
    hc_close(&c);
    /* A block over IOX_MAX_HEAD (2048) with few fields: 431. */
    CU_ASSERT_FATAL(hc_connect(&c, lim_server.port, 2000) == 0);
    n = (size_t)snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: l\r\nX-big: ");
    memset(req + n, 'a', 2500);
    n += 2500;
    memcpy(req + n, "\r\n\r\n", 5);
    hc_send_str(&c, req);
    expect_reject(&c, 431);
    hc_close(&c);
}

IOX_TEST(limits, target_cap_414)
{
    CU_ASSERT_FATAL(lim_up);
    struct hc_conn c;
    char req[512];
    char target[128];
    memset(target, 'p', sizeof target);
    target[0] = '/';
    /* 100 bytes: allowed (404: not the root). */
    CU_ASSERT_FATAL(hc_connect(&c, lim_server.port, 2000) == 0);
    snprintf(req, sizeof req, "GET %.100s HTTP/1.1\r\nHost: l\r\n\r\n", target);
    struct hc_response r;
    CU_ASSERT_EQUAL_FATAL(hc_roundtrip(&c, req, &r, 0), HC_OK);
    CU_ASSERT_EQUAL(r.status, 404);
    hc_response_free(&r);
    hc_close(&c);
    /* 101 bytes: 414. */
    CU_ASSERT_FATAL(hc_connect(&c, lim_server.port, 2000) == 0);
    snprintf(req, sizeof req, "GET %.101s HTTP/1.1\r\nHost: l\r\n\r\n", target);
    hc_send_str(&c, req);
    expect_reject(&c, 414);
    hc_close(&c);
}

IOX_TEST(limits, malformed_knob_fails_startup_with_a_clear_line)
{
    const char *env[] = {"IOX_MAX_CONNS=lots", NULL};
    struct hc_server s;
    uint16_t port = hc_free_port();
    CU_ASSERT_FATAL(hc_server_spawn(&s, env, port) == 0);
    int st = hc_server_wait_exit(&s, 3000);
    CU_ASSERT_EQUAL(st, 2);
    char *e = hc_server_stderr(&s);
    CU_ASSERT(strstr(e, "IOX_MAX_CONNS=lots") != NULL);
    free(e);
    hc_server_free(&s);
}

/* The server's end of the connection `c`, borrowed with pidfd_getfd, and
 * its TCP_NOTSENT_LOWAT; -1 when it cannot be found. */
static int server_lowat(const struct hc_server *s, const struct hc_conn *c)
{
    struct sockaddr_in mine, peer;
    socklen_t ml = sizeof mine;
    if (getsockname(c->fd, (struct sockaddr *)&mine, &ml) < 0) return -1;
    int pfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
    if (pfd < 0) { fprintf(stderr, "\n  pidfd_open: %s\n", strerror(errno)); return -1; }
    int found = -1;
    for (int fd = 3; fd < 256 && found < 0; fd++) {
        int dup = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
        if (dup < 0) continue;
        socklen_t pl = sizeof peer;
        int v = 0;
        socklen_t vl = sizeof v;
        if (getpeername(dup, (struct sockaddr *)&peer, &pl) == 0 && peer.sin_port == mine.sin_port &&
            peer.sin_addr.s_addr == mine.sin_addr.s_addr &&
            getsockopt(dup, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, &vl) == 0)
            found = v;
        close(dup);
    }
    close(pfd);
    return found;
}

/* IOX_NOTSENT_LOWAT bounds what each connection parks unsent in the kernel
 * (docs/architecture.md: the soak's closes under TCP memory pressure). */
IOX_TEST(limits, notsent_lowat_on_accepted_sockets)
{
    static const struct { const char *env; int want; } cases[] = {
        {NULL, 131072}, {"IOX_NOTSENT_LOWAT=65536", 65536},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* The socket is borrowed from the server's fd table: real fds (the
         * option is the listener's, inherited the same way by a direct one). */
        const char *env[] = {"IOX_DIRECT_FDS=off", cases[i].env, NULL};
        struct hc_server s;
        CU_ASSERT_FATAL(hc_server_start(&s, env) == 0);
        struct hc_conn c;
        CU_ASSERT_FATAL(hc_connect(&c, s.port, 2000) == 0);
        CU_ASSERT(answered_ok(&c));            /* accepted and served */
        int v = server_lowat(&s, &c);
        CU_ASSERT_EQUAL(v, cases[i].want);
        if (v != cases[i].want) fprintf(stderr, "\n  %s: TCP_NOTSENT_LOWAT %d, want %d\n",
                                        cases[i].env ? cases[i].env : "default", v, cases[i].want);
        hc_close(&c);
        CU_ASSERT_EQUAL(hc_server_stop(&s, NULL), 0);
        hc_server_free(&s);
    }
}

IOX_SUITE(limits, limits_init, limits_clean);
