/* bench/loadgen.c — the bench's own load generator for what wrk cannot do
 * (issue 14 §5, §6; Debian bookworm has no wrk2). One thread, epoll,
 * non-blocking sockets to 127.0.0.1:PORT, `GET PATH HTTP/1.1`. Three modes:
 *
 *   loadgen rate  PORT PATH CONNS RATE SECONDS
 *       Constant offered rate, free of coordinated omission (wrk2's method):
 *       each connection has its own schedule, one request every CONNS/RATE
 *       seconds, at most one in flight; a request's latency is measured from
 *       the time it was SCHEDULED to be sent, so a server that stalls is
 *       charged for the requests that queued behind the stall. Latencies go
 *       into a log-linear histogram (64 sub-buckets per power of two of ns:
 *       about 1.6% resolution, HDR-like); prints p50/p99/p99.9/max.
 *   loadgen churn PORT PATH CONNS SECONDS
 *       One request per TCP connection (`Connection: close`): CONNS
 *       connections at a time, each connect → request → response → the
 *       server closes → close → connect again. Prints connections/s.
 *   loadgen idle  PORT PATH CONNS
 *       Opens CONNS keep-alive connections, one request on each (so each is
 *       a fully set-up connection that has served a request), then holds
 *       them idle; prints "ready N" on stdout once every answer came, and
 *       exits (closing them) when stdin reaches end of file or on SIGTERM.
 *
 * A response is complete at the end of its head plus Content-Length bytes
 * (or at EOF for churn). Any error, a non-200 status or a connection the
 * server closes unasked counts in `errors`; the result line says so and the
 * exit status is 0 (the bench decides whether to discard the run). The last
 * line of every mode is one `key=value` line the bench parses. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF 65536

struct lconn {
    int fd;
    int busy;            /* a request is in flight */
    int connecting;
    uint64_t sched_ns;   /* rate: when the request in flight (or the next one) was due */
    uint32_t got;        /* bytes of the current response so far */
    int64_t want;        /* head + body length once the head is parsed, else -1 */
};

static struct sockaddr_in dst;
static char req[512];
static size_t req_len;
static int ep;
static volatile sig_atomic_t stop;
static uint64_t n_done, n_err;
static char rbuf[RBUF];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* ---- histogram: value v (ns) → 64 linear sub-buckets per power of two ---- */
#define HSUB 64
#define HBUCKETS (64 * HSUB)
static uint64_t hist[HBUCKETS];
static uint64_t hist_n, hist_max;

static unsigned hidx(uint64_t v)
{
    if (v < HSUB) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);   /* >= 6 */
    unsigned shift = msb - 5;                            /* keep 6 bits: 32..63 */
    return (shift + 1) * (HSUB / 2) + (unsigned)((v >> shift) - HSUB / 2);
}
static uint64_t hval(unsigned i)   /* the bucket's upper bound */
{
    if (i < HSUB) return i;
    unsigned shift = i / (HSUB / 2) - 1;
    uint64_t sub = i % (HSUB / 2) + HSUB / 2;
    return ((sub + 1) << shift) - 1;
}
static void hrecord(uint64_t v)
{
    unsigned i = hidx(v);
    if (i >= HBUCKETS) i = HBUCKETS - 1;
    hist[i]++;
    hist_n++;
    if (v > hist_max) hist_max = v;
}
static double hpct(double p)
{
    if (!hist_n) return 0;
    uint64_t want = (uint64_t)ceil(p / 100.0 * (double)hist_n), seen = 0;
    if (want < 1) want = 1;
    for (unsigned i = 0; i < HBUCKETS; i++) {
        seen += hist[i];
        if (seen >= want) return (double)hval(i) / 1000.0;
    }
    return (double)hist_max / 1000.0;
}

/* ---- connections ---- */

static int open_conn(struct lconn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket (raise ulimit -n?)");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->connecting = 1;
    c->busy = 0;
    c->got = 0;
    c->want = -1;
    if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl ADD");
    return 0;
}

static void close_conn(struct lconn *c)
{
    if (c->fd >= 0) close(c->fd);   /* close removes it from epoll */
    c->fd = -1;
    c->busy = 0;
}

static int send_req(struct lconn *c)
{
    ssize_t n = send(c->fd, req, req_len, MSG_NOSIGNAL);
    if (n != (ssize_t)req_len) return -1;   /* a 60-byte request into an empty socket: all or error */
    c->busy = 1;
    c->got = 0;
    c->want = -1;
    return 0;
}

/* Parse what arrived; 1 when the response is complete, 0 when more is
 * needed, -1 on a bad or non-200 answer. Bodies are not kept. */
static int take(struct lconn *c, const char *p, size_t n)
{
    if (c->want < 0) {
        /* The head arrives in the first segment for these small answers;
         * a head split across reads is handled by rereading rbuf's prefix. */
        if (c->got == 0 && (n < 12 || memcmp(p, "HTTP/1.1 200", 12) != 0)) return -1;
        const char *e = memmem(p, n, "\r\n\r\n", 4);
        if (!e) return c->got + n > 8192 ? -1 : (c->got += (uint32_t)n, 0);
        const char *cl = memmem(p, (size_t)(e - p), "Content-Length:", 15);
        if (!cl) cl = memmem(p, (size_t)(e - p), "content-length:", 15);
        if (!cl) return -1;
        c->want = (int64_t)c->got + (e + 4 - p) + strtoll(cl + 15, NULL, 10);
    }
    c->got += (uint32_t)n;
    if ((int64_t)c->got > c->want) return -1;   /* pipelined extra: never asked */
    return (int64_t)c->got == c->want;
}

static void on_sig(int s) { (void)s; stop = 1; }

static void usage(void)
{
    fprintf(stderr, "usage: loadgen rate PORT PATH CONNS RATE SECONDS\n"
                    "       loadgen churn PORT PATH CONNS SECONDS\n"
                    "       loadgen idle PORT PATH CONNS\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 5) usage();
    const char *mode = argv[1];
    int port = atoi(argv[2]);
    const char *path = argv[3];
    int nconn = atoi(argv[4]);
    if (port <= 0 || nconn <= 0) usage();
    int churn = !strcmp(mode, "churn"), rate_mode = !strcmp(mode, "rate"), idle = !strcmp(mode, "idle");
    if (!churn && !rate_mode && !idle) usage();
    double rate = 0, secs = 0;
    if (rate_mode) { if (argc != 7) usage(); rate = atof(argv[5]); secs = atof(argv[6]); }
    if (churn) { if (argc != 6) usage(); secs = atof(argv[5]); }
    if (idle && argc != 5) usage();
    if (rate_mode && rate <= 0) usage();

    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    req_len = (size_t)snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n", path, port,
                               churn ? "Connection: close\r\n" : "");
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");

    struct lconn *cs = calloc((size_t)nconn, sizeof *cs);
    if (!cs) die("calloc");
    uint64_t t0 = now_ns();
    uint64_t interval = rate_mode ? (uint64_t)((double)nconn * 1e9 / rate) : 0;
    uint64_t t_end = t0 + (uint64_t)(secs * 1e9);
    for (int i = 0; i < nconn; i++) {
        if (open_conn(&cs[i]) < 0) die("connect");
        /* Stagger the schedules so the offered load is smooth. */
        cs[i].sched_ns = t0 + interval * (uint64_t)i / (uint64_t)nconn;
    }
    uint64_t n_conns_done = 0, ready_said = 0, idle_ok = 0;
    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = now_ns();
        if (stop) break;
        if ((rate_mode || churn) && now >= t_end) break;
        /* rate: send every request that is due on an idle connection */
        uint64_t next = UINT64_MAX;
        if (rate_mode) {
            for (int i = 0; i < nconn; i++) {
                struct lconn *c = &cs[i];
                if (c->fd < 0 || c->connecting || c->busy) continue;
                if (c->sched_ns <= now) {
                    if (send_req(c) < 0) { n_err++; close_conn(c); continue; }
                } else if (c->sched_ns < next) {
                    next = c->sched_ns;
                }
            }
        }
        if (idle && !ready_said && idle_ok + n_err == (uint64_t)nconn && n_err) break;   /* some failed: say so, exit */
        if (idle && !ready_said && idle_ok == (uint64_t)nconn) {
            printf("ready %d\n", nconn);
            fflush(stdout);
            ready_said = 1;
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
            epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);   /* stdin: EOF ends the hold */
        }
        struct timespec to, *top = NULL;
        if (rate_mode || churn) {
            uint64_t until = next < t_end ? next : t_end;
            uint64_t d = until > now ? until - now : 0;
            to.tv_sec = (time_t)(d / 1000000000u);
            to.tv_nsec = (long)(d % 1000000000u);
            top = &to;
        }
        int n = epoll_pwait2(ep, evs, 256, top, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_pwait2");
        }
        now = now_ns();
        for (int k = 0; k < n; k++) {
            struct lconn *c = evs[k].data.ptr;
            if (!c) {   /* stdin */
                ssize_t r = read(0, rbuf, sizeof rbuf);
                if (r <= 0) stop = 1;
                continue;
            }
            if (c->fd < 0) continue;
            if (idle && ready_said && (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                n_err++;   /* the server closed (or wrote to) an idle connection */
                close_conn(c);
                continue;
            }
            if (c->connecting) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) { n_err++; close_conn(c); if (churn) open_conn(c); continue; }
                c->connecting = 0;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                if (churn || idle) {
                    if (send_req(c) < 0) { n_err++; close_conn(c); if (churn) open_conn(c); continue; }
                    c->sched_ns = now;
                }
                continue;   /* rate: the schedule sends */
            }
            for (;;) {
                ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                if (r <= 0) {   /* EOF or error */
                    int complete = churn && c->busy && c->want >= 0 && (int64_t)c->got == c->want;
                    if (churn && !c->busy && r == 0) complete = 1;   /* answered, then closed */
                    if (complete) n_conns_done++; else n_err++;
                    close_conn(c);
                    if (churn && !stop) open_conn(c);
                    break;
                }
                int t = take(c, rbuf, (size_t)r);
                if (t < 0) { n_err++; close_conn(c); if (churn) open_conn(c); break; }
                if (t == 1) {
                    n_done++;
                    if (rate_mode) {
                        hrecord(now - c->sched_ns);
                        c->sched_ns += interval;
                        c->busy = 0;
                        if (c->sched_ns <= now && send_req(c) < 0) { n_err++; close_conn(c); break; }
                    } else if (churn) {
                        c->busy = 0;   /* wait for the server's close */
                    } else {
                        c->busy = 0;
                        idle_ok++;
                    }
                }
            }
        }
    }
    double el = (double)(now_ns() - t0) / 1e9;
    if (rate_mode) {
        printf("mode=rate conns=%d offered=%.0f achieved=%.0f requests=%llu errors=%llu "
               "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n",
               nconn, rate, (double)n_done / el, (unsigned long long)n_done, (unsigned long long)n_err,
               hpct(50), hpct(90), hpct(99), hpct(99.9), (double)hist_max / 1000.0);
    } else if (churn) {
        printf("mode=churn conns=%d connections=%llu conn_per_s=%.0f errors=%llu\n", nconn,
               (unsigned long long)n_conns_done, (double)n_conns_done / el, (unsigned long long)n_err);
    } else {
        printf("mode=idle conns=%d answered=%llu errors=%llu\n", nconn, (unsigned long long)idle_ok,
               (unsigned long long)n_err);   /* errors after ready: closed while held */
    }
    return 0;
}
