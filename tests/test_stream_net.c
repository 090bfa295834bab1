/* test_stream_net.c — suite `stream_net`: the stream layer and the client
 * kit over real sockets on 127.0.0.1.
 *
 *  - examples/lineecho (a line protocol on iox_stream_protocol) served by
 *    iox_server_run in a child process: echo, the late SLOW answer in
 *    order, SIGTERM drains what is owed and exits 0;
 *  - the client kit (ioxide/stream_client.h) on a reactor of the test's
 *    thread against that server: 1000 pipelined requests matched FIFO,
 *    in-flight requests failed when the server dies, queued requests
 *    answered after it restarts (reconnect), fail-fast once down too long;
 *  - the client kit against a real redis-server started in a temp dir:
 *    a handshake (PING) checked by the hook, then PING → +PONG. */
#include "iox_test.h"
#include "lineecho.h"
#include <ioxide/log.h>
#include <ioxide/reactor.h>
#include <ioxide/stream_client.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
    if (fd >= 0) close(fd);
    return -1;
}

/* Wait (bounded) until something accepts on port. */
static int wait_listening(uint16_t port)
{
    for (int i = 0; i < 500; i++) {
        int fd = connect_to(port);
        if (fd >= 0) { close(fd); return 0; }
        usleep(10000);
    }
    return -1;
}

/* A killed server's listener outlives it for a moment (its ring's
 * teardown is asynchronous and the multishot accept holds the socket):
 * wait (bounded) until connecting is refused before starting another on
 * the same port. */
static int wait_closed(uint16_t port)
{
    for (int i = 0; i < 500; i++) {
        int fd = connect_to(port);
        if (fd < 0) return 0;
        close(fd);
        usleep(10000);
    }
    return -1;
}

static pid_t start_lineecho(uint16_t port)
{
    pid_t pid = fork();
    if (pid == 0) {
        iox_log_level = IOX_LOG_WARN;
        _exit(lineecho_serve("127.0.0.1", port, 1));
    }
    if (pid > 0 && wait_listening(port) < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

/* Read until `want` bytes or EOF (bounded by a 5 s poll per read). */
static size_t read_some(int fd, char *buf, size_t cap, size_t want)
{
    size_t n = 0;
    while (n < want && n < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0) break;
        ssize_t k = read(fd, buf + n, cap - n);
        if (k <= 0) break;
        n += (size_t)k;
    }
    return n;
}

IOX_TEST(stream_net, line_echo_over_real_sockets_and_sigterm_drains)
{
    uint16_t port = free_port();
    pid_t pid = start_lineecho(port);
    CU_ASSERT_FATAL(pid > 0);
    int fd = connect_to(port);
    CU_ASSERT_FATAL(fd >= 0);
    static const char in[] = "hello\nSLOW\nafter the slow one\n";
    CU_ASSERT(write(fd, in, sizeof in - 1) == (ssize_t)(sizeof in - 1));
    static const char want[] = "hello\nstarted\nSLOW!\nafter the slow one\n";
    char buf[256];
    size_t n = read_some(fd, buf, sizeof buf, sizeof want - 1);
    CU_ASSERT_EQUAL(n, sizeof want - 1);
    CU_ASSERT(n == sizeof want - 1 && !memcmp(buf, want, n));

    /* A SLOW answer owed when SIGTERM arrives: it is sent, then the stream
     * ends (EOF) and the server exits 0. */
    CU_ASSERT(write(fd, "SLOW\n", 5) == 5);
    n = read_some(fd, buf, sizeof buf, 8);
    CU_ASSERT(n == 8 && !memcmp(buf, "started\n", 8));
    CU_ASSERT_EQUAL(kill(pid, SIGTERM), 0);
    n = read_some(fd, buf, sizeof buf, sizeof buf);   /* up to EOF */
    CU_ASSERT(n == 6 && !memcmp(buf, "SLOW!\n", 6));
    if (n != 6) fprintf(stderr, "\n  after SIGTERM got [%.*s]\n", (int)n, buf);
    close(fd);
    int st = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- the client kit ---- */

/* Replies of the line protocol: up to and including '\n'. */
static long line_reply_len(const char *p, size_t n, void *ctx)
{
    (void)ctx;
    const char *nl = memchr(p, '\n', n);
    return nl ? (long)(nl - p + 1) : 0;
}
static const struct iox_client_proto line_proto = {.reply_len = line_reply_len};

struct call {
    char want[24];
    int status;        /* 1 = not called yet */
    int calls;
    int ok;
};

static unsigned ndone;

static void on_reply(void *arg, int status, const char *reply, size_t len)
{
    struct call *c = arg;
    c->calls++;
    c->status = status;
    c->ok = status == 0 && len == strlen(c->want) && !memcmp(reply, c->want, len);
    ndone++;
}

struct here {
    struct iox_reactor r;
    struct iox_server_config cfg;
    struct iox_client_pool *pool;
};

static int here_open(struct here *h, uint16_t port, unsigned conns, uint32_t down_fail_ms)
{
    memset(h, 0, sizeof *h);
    char why[256];
    if (iox_reactor_open_here(&h->r, &h->cfg, why, sizeof why) < 0) {
        fprintf(stderr, "\n  %s\n", why);
        return -1;
    }
    struct iox_client_config cc = {.host = "127.0.0.1", .port = port, .conns = conns, .max_inflight = 1024,
                                   .backoff_min_ms = 20, .backoff_max_ms = 100,
                                   .down_fail_ms = down_fail_ms, .proto = &line_proto};
    if (iox_client_pool_open(&h->r, &cc, &h->pool, why, sizeof why) < 0) {
        fprintf(stderr, "\n  %s\n", why);
        iox_reactor_close_here(&h->r);
        return -1;
    }
    return 0;
}

static void here_close(struct here *h)
{
    iox_client_pool_close(h->pool);
    iox_reactor_close_here(&h->r);
}

static struct here *cur;
static unsigned want_up, want_done;
static int up_enough(void *arg) { (void)arg; return iox_client_pool_up(cur->pool) == want_up; }
static int done_enough(void *arg) { (void)arg; return ndone >= want_done; }
static int all_sent(void *arg)
{
    (void)arg;
    struct iox_client_stats st;
    iox_client_pool_stats(cur->pool, &st);
    return st.bytes_out >= 27;   /* 5 × "HOLD\n" + "e\n" */
}

IOX_TEST(stream_net, client_kit_matches_1000_pipelined_replies_fifo)
{
    uint16_t port = free_port();
    pid_t pid = start_lineecho(port);
    CU_ASSERT_FATAL(pid > 0);
    struct here h;
    CU_ASSERT_FATAL(here_open(&h, port, 2, 1000) == 0);
    cur = &h;
    want_up = 2;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&h.r, up_enough, NULL, 5000), 0);
    static struct call calls[1000];
    ndone = 0;
    for (unsigned i = 0; i < 1000; i++) {
        char req[24];
        snprintf(calls[i].want, sizeof calls[i].want, "request %u\n", i);
        snprintf(req, sizeof req, "request %u\n", i);
        calls[i].status = 1;
        calls[i].calls = 0;
        CU_ASSERT_EQUAL_FATAL(iox_client_request(h.pool, req, strlen(req), on_reply, &calls[i]), 0);
    }
    CU_ASSERT_EQUAL(ndone, 0);   /* never from inside iox_client_request */
    want_done = 1000;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&h.r, done_enough, NULL, 10000), 0);
    unsigned ok = 0, once = 0;
    for (unsigned i = 0; i < 1000; i++) { ok += calls[i].ok; once += calls[i].calls == 1; }
    CU_ASSERT_EQUAL(ok, 1000);
    CU_ASSERT_EQUAL(once, 1000);
    struct iox_client_stats st;
    iox_client_pool_stats(h.pool, &st);
    CU_ASSERT_EQUAL(st.replies, 1000);
    CU_ASSERT_EQUAL(st.failures, 0);
    CU_ASSERT_EQUAL(st.inflight_now, 0);
    here_close(&h);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

IOX_TEST(stream_net, client_kit_fails_in_flight_on_loss_and_reconnects_after_restart)
{
    uint16_t port = free_port();
    pid_t pid = start_lineecho(port);
    CU_ASSERT_FATAL(pid > 0);
    struct here h;
    CU_ASSERT_FATAL(here_open(&h, port, 1, UINT32_MAX) == 0);   /* waits however long it is down */
    cur = &h;
    want_up = 1;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&h.r, up_enough, NULL, 5000), 0);

    /* Five requests the server never answers, and one it does. */
    static struct call held[5], echo;
    ndone = 0;
    for (unsigned i = 0; i < 5; i++) {
        held[i].status = 1;
        CU_ASSERT_EQUAL(iox_client_request(h.pool, "HOLD\n", 5, on_reply, &held[i]), 0);
    }
    snprintf(echo.want, sizeof echo.want, "e\n");
    CU_ASSERT_EQUAL(iox_client_request(h.pool, "e\n", 2, on_reply, &echo), 0);
    CU_ASSERT_EQUAL(iox_reactor_run_until(&h.r, all_sent, NULL, 5000), 0);
    CU_ASSERT_EQUAL(ndone, 0);   /* the echo waits behind the HOLDs (in order) */
    /* The server dies: every request in flight fails, once, with -ECONNRESET. */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    want_done = 6;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&h.r, done_enough, NULL, 5000), 0);
    for (unsigned i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(held[i].status, -ECONNRESET);
        CU_ASSERT_EQUAL(held[i].calls, 1);
    }
    CU_ASSERT_EQUAL(echo.status, -ECONNRESET);
    CU_ASSERT_EQUAL(iox_client_pool_up(h.pool), 0);
    CU_ASSERT(strstr(iox_client_pool_last_error(h.pool), "127.0.0.1") != NULL);

    /* Made while down (not for long): it waits, and is answered once the
     * server is back (the pool reconnects by itself). */
    static struct call later;
    snprintf(later.want, sizeof later.want, "back\n");
    later.status = 1;
    CU_ASSERT_EQUAL(iox_client_request(h.pool, "back\n", 5, on_reply, &later), 0);
    CU_ASSERT_EQUAL(wait_closed(port), 0);
    pid = start_lineecho(port);
    CU_ASSERT_FATAL(pid > 0);
    want_done = 7;
    int rr = iox_reactor_run_until(&h.r, done_enough, NULL, 5000);
    CU_ASSERT_EQUAL(rr, 0);
    if (rr) {
        struct iox_client_stats st2;
        iox_client_pool_stats(h.pool, &st2);
        fprintf(stderr, "\n  no reconnect: %s (up %u, connects %llu, failures %llu, ops %u)\n", iox_client_pool_last_error(h.pool),
                iox_client_pool_up(h.pool), (unsigned long long)st2.connects, (unsigned long long)st2.connect_failures, iox_client_pool_ops(h.pool));
    }
    CU_ASSERT_EQUAL(later.status, 0);
    CU_ASSERT(later.ok);
    struct iox_client_stats st;
    iox_client_pool_stats(h.pool, &st);
    CU_ASSERT(st.connects >= 2);
    CU_ASSERT_EQUAL(st.losses, 1);

    here_close(&h);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

IOX_TEST(stream_net, client_kit_fails_fast_once_down_too_long)
{
    uint16_t port = free_port();
    pid_t pid = start_lineecho(port);
    CU_ASSERT_FATAL(pid > 0);
    struct here h;
    CU_ASSERT_FATAL(here_open(&h, port, 1, 300) == 0);
    cur = &h;
    want_up = 1;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&h.r, up_enough, NULL, 5000), 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CU_ASSERT_EQUAL(wait_closed(port), 0);   /* no reconnect to the dying listener */
    want_up = 0;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&h.r, up_enough, NULL, 5000), 0);
    /* Made just after the loss it waits — until the pool has been down for
     * down_fail_ms (300), then it fails with -ENOTCONN (or, on a machine
     * slow enough to pass 300 ms in between, it is refused at once). */
    static struct call queued;
    queued.status = 1;
    queued.calls = 0;
    ndone = 0;
    int rc = iox_client_request(h.pool, "q\n", 2, on_reply, &queued);
    CU_ASSERT(rc == 0 || rc == -ENOTCONN);
    if (rc == 0) {
        want_done = 1;
        CU_ASSERT_EQUAL(iox_reactor_run_until(&h.r, done_enough, NULL, 5000), 0);
        CU_ASSERT_EQUAL(queued.status, -ENOTCONN);
        CU_ASSERT_EQUAL(queued.calls, 1);
    }
    /* From now on: refused at once, the callback never called. */
    CU_ASSERT_EQUAL(iox_client_request(h.pool, "q\n", 2, on_reply, &queued), -ENOTCONN);
    CU_ASSERT(queued.calls <= 1);
    here_close(&h);
}

/* ---- against a real redis-server ---- */

static long resp_simple_len(const char *p, size_t n, void *ctx)
{
    (void)ctx;
    if (!n) return 0;
    if (p[0] != '+' && p[0] != '-' && p[0] != ':') return -1;   /* enough for PING */
    const char *e = memmem(p, n, "\r\n", 2);
    return e ? (long)(e - p + 2) : 0;
}
static long ping_handshake(char *buf, size_t cap, unsigned *nreplies, void *ctx)
{
    (void)ctx;
    if (cap < 14) return -1;
    memcpy(buf, "*1\r\n$4\r\nPING\r\n", 14);
    *nreplies = 1;
    return 14;
}
static unsigned hs_checked;
static int ping_checked(const char *reply, size_t len, unsigned i, void *ctx)
{
    (void)ctx;
    hs_checked++;
    return i == 0 && len == 7 && !memcmp(reply, "+PONG\r\n", 7) ? 0 : -1;
}
static const struct iox_client_proto resp_proto = {
    .reply_len = resp_simple_len, .handshake = ping_handshake, .handshake_reply = ping_checked};

IOX_TEST(stream_net, client_kit_against_redis_server_ping_pong)
{
    if (access("/usr/bin/redis-server", X_OK) != 0) {
        fprintf(stderr, "\n  redis-server not installed (Debian redis-server): skipped\n");
        return;
    }
    char dir[] = "/tmp/iox-redis-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    uint16_t port = free_port();
    pid_t pid = fork();
    if (pid == 0) {
        char p[8];
        snprintf(p, sizeof p, "%u", port);
        if (chdir(dir) != 0 || !freopen("/dev/null", "w", stdout)) _exit(127);
        execl("/usr/bin/redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT_FATAL(wait_listening(port) == 0);
    struct here h;
    memset(&h, 0, sizeof h);
    char why[256];
    CU_ASSERT_FATAL(iox_reactor_open_here(&h.r, &h.cfg, why, sizeof why) == 0);
    struct iox_client_config cc = {.host = "localhost", .port = port, .conns = 2, .proto = &resp_proto};
    hs_checked = 0;
    CU_ASSERT_FATAL(iox_client_pool_open(&h.r, &cc, &h.pool, why, sizeof why) == 0);
    cur = &h;
    want_up = 2;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&h.r, up_enough, NULL, 5000), 0);
    CU_ASSERT_EQUAL(hs_checked, 2);
    static struct call c[3];
    ndone = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(c[i].want, sizeof c[i].want, "+PONG\r\n");
        CU_ASSERT_EQUAL(iox_client_request(h.pool, "*1\r\n$4\r\nPING\r\n", 14, on_reply, &c[i]), 0);
    }
    want_done = 3;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&h.r, done_enough, NULL, 5000), 0);
    for (int i = 0; i < 3; i++) CU_ASSERT(c[i].ok);
    here_close(&h);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

IOX_TEST(stream_net, client_kit_over_ipv6_loopback)
{
    uint16_t port = free_port();
    pid_t pid = fork();
    if (pid == 0) {
        iox_log_level = IOX_LOG_WARN;
        _exit(lineecho_serve("::1", port, 1));
    }
    CU_ASSERT_FATAL(pid > 0);
    struct here h;
    memset(&h, 0, sizeof h);
    char why[256];
    CU_ASSERT_FATAL(iox_reactor_open_here(&h.r, &h.cfg, why, sizeof why) == 0);
    struct iox_client_config cc = {.host = "[::1]", .port = port, .conns = 1, .backoff_min_ms = 10,
                                   .backoff_max_ms = 50, .down_fail_ms = UINT32_MAX, .proto = &line_proto};
    CU_ASSERT_FATAL(iox_client_pool_open(&h.r, &cc, &h.pool, why, sizeof why) == 0);
    cur = &h;
    static struct call c;
    snprintf(c.want, sizeof c.want, "over v6\n");
    ndone = 0;
    /* Sent as soon as the server listens (the pool retries until then). */
    CU_ASSERT_EQUAL(iox_client_request(h.pool, "over v6\n", 8, on_reply, &c), 0);
    want_done = 1;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&h.r, done_enough, NULL, 10000), 0);
    CU_ASSERT(c.ok);
    here_close(&h);
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

IOX_TEST(stream_net, max_conns_pauses_accept_until_a_stream_closes)
{
    uint16_t port = free_port();
    pid_t pid = fork();
    if (pid == 0) {
        iox_log_level = IOX_LOG_WARN;
        setenv("IOX_MAX_CONNS", "2", 1);
        _exit(lineecho_serve("127.0.0.1", port, 1));
    }
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT_FATAL(wait_listening(port) == 0);   /* its probe connection is gone again */
    /* One after the other, each answered before the next connects: the
     * multishot accept is cancelled when the table fills, and a socket the
     * kernel accepted before the cancel landed would be refused (closed). */
    char buf[16];
    int a = connect_to(port);
    CU_ASSERT_FATAL(a >= 0);
    CU_ASSERT(write(a, "a\n", 2) == 2);
    CU_ASSERT(read_some(a, buf, sizeof buf, 2) == 2);
    int b = connect_to(port);
    CU_ASSERT_FATAL(b >= 0);
    CU_ASSERT(write(b, "b\n", 2) == 2);
    CU_ASSERT(read_some(b, buf, sizeof buf, 2) == 2);
    /* The third waits in the backlog: connected by the kernel, not served. */
    int c = connect_to(port);
    CU_ASSERT_FATAL(c >= 0);
    CU_ASSERT(write(c, "c\n", 2) == 2);
    struct pollfd pf = {c, POLLIN, 0};
    CU_ASSERT_EQUAL(poll(&pf, 1, 300), 0);
    /* One stream closes: accept resumes and the third is answered. */
    close(a);
    CU_ASSERT(read_some(c, buf, sizeof buf, 2) == 2 && !memcmp(buf, "c\n", 2));
    close(b);
    close(c);
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A peer that does not read: the server's unsent output reaches write_cap,
 * it stops reading (so the peer's writes block), and once the peer reads
 * again everything is answered, in order, nothing lost. */
#define BP_LINE 70u                 /* "%08u " + 60 bytes + "\n" */
#define BP_LINES 120000u            /* 8.4 MB: more than every buffer on the way (the kernel takes ~4.5 MB here) */

static size_t bp_fill(char *buf, size_t cap, uint32_t *next)
{
    size_t n = 0;
    while (n + BP_LINE <= cap && *next < BP_LINES) {
        snprintf(buf + n, BP_LINE + 1, "%08u the quick brown fox jumps over the lazy dog, again and again", *next);
        buf[n + BP_LINE - 1] = '\n';
        n += BP_LINE;
        ++*next;
    }
    return n;
}

IOX_TEST(stream_net, backpressure_over_real_sockets)
{
    uint16_t port = free_port();
    pid_t pid = fork();
    if (pid == 0) {
        iox_log_level = IOX_LOG_WARN;
        setenv("IOX_WRITE_CAP", "65536", 1);
        _exit(lineecho_serve("127.0.0.1", port, 1));
    }
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT_FATAL(wait_listening(port) == 0);
    int fd = connect_to(port);
    CU_ASSERT_FATAL(fd >= 0);
    int rcv = 16384;
    CU_ASSERT(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) == 0);
    CU_ASSERT(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
    static char wbuf[BP_LINE * 1000], rbuf[65536];
    size_t wlen = 0, woff = 0;
    uint32_t next_out = 0, next_in = 0;
    size_t sent = 0, got = 0;
    const size_t total = (size_t)BP_LINE * BP_LINES;
    int blocked = 0, bad = 0;
    char acc[BP_LINE];
    size_t alen = 0;
    /* Phase 1: write without reading until the writes block. */
    for (;;) {
        if (woff == wlen) { wlen = bp_fill(wbuf, sizeof wbuf, &next_out); woff = 0; }
        if (!wlen) break;
        ssize_t w = write(fd, wbuf + woff, wlen - woff);
        if (w < 0) { blocked = errno == EAGAIN; break; }
        woff += (size_t)w;
        sent += (size_t)w;
    }
    CU_ASSERT(blocked && sent < total);
    /* ... and stays blocked: the server stopped reading (its output is
     * over the cap), it is not just slower than us. On a busy machine the
     * server may still be catching up when we first block, so write on
     * whenever the socket lets us until it stays quiet (three 100 ms polls
     * in a row); a server without backpressure would drain the socket and
     * take all 8.4 MB into its buffers. A bound on bytes, not on time. */
    int quiet = 0;
    for (int k = 0; k < 200 && quiet < 3 && sent < total; k++) {
        struct pollfd wp = {fd, POLLOUT, 0};
        if (poll(&wp, 1, 100) <= 0) { quiet++; continue; }
        quiet = 0;
        if (woff == wlen) { wlen = bp_fill(wbuf, sizeof wbuf, &next_out); woff = 0; }
        ssize_t w = write(fd, wbuf + woff, wlen - woff);
        if (w > 0) { woff += (size_t)w; sent += (size_t)w; }
    }
    CU_ASSERT(quiet == 3 && sent < total);
    if (quiet != 3 || sent >= total)
        fprintf(stderr, "\n  %zu of %zu bytes taken without the client reading: no backpressure\n", sent, total);
    /* Phase 2: read and write until everything is echoed. */
    while (got < total) {
        struct pollfd pf = {fd, (short)(POLLIN | (sent < total ? POLLOUT : 0)), 0};
        if (poll(&pf, 1, 10000) <= 0) break;
        if (pf.revents & POLLIN) {
            ssize_t r = read(fd, rbuf, sizeof rbuf);
            if (r <= 0) break;
            got += (size_t)r;
            for (ssize_t i = 0; i < r; i++) {
                if (alen < sizeof acc) acc[alen++] = rbuf[i];
                if (rbuf[i] != '\n') continue;
                if (alen != BP_LINE || strtoul(acc, NULL, 10) != next_in) bad++;
                next_in++;
                alen = 0;
            }
        }
        if ((pf.revents & POLLOUT) && sent < total) {
            if (woff == wlen) { wlen = bp_fill(wbuf, sizeof wbuf, &next_out); woff = 0; }
            ssize_t w = write(fd, wbuf + woff, wlen - woff);
            if (w > 0) { woff += (size_t)w; sent += (size_t)w; }
        }
    }
    CU_ASSERT_EQUAL(sent, total);
    CU_ASSERT_EQUAL(got, total);
    CU_ASSERT_EQUAL(next_in, BP_LINES);
    CU_ASSERT_EQUAL(bad, 0);
    close(fd);
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

IOX_SUITE(stream_net, NULL, NULL);
