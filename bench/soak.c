/* soak.c — the load tool of `make soak` (bench/soak.sh drives it).
 *
 * One thread, one epoll, non-blocking sockets. Against up to three
 * playground processes (raw, pg, file; one mode each), it keeps CONNS
 * connections open over 127.0.0.0/8, bound to SOURCES source addresses
 * 127.0.0.2, 127.0.0.3, ... (IP_BIND_ADDRESS_NO_PORT: the port is chosen at
 * connect time per 4-tuple, so each source address has its own ephemeral
 * range), and checks every answer:
 *
 *   raw   GET /             → 200 "ok"
 *   pg    GET /             → 200 "db=42"; 503 "database unavailable..."
 *                             only while the injected restart runs (+grace)
 *   file  GET /1k.bin, /64k.bin, /1m.bin → 200, Content-Length and every
 *                             byte equal to the pattern --make-files wrote
 *
 * Injected faults (counted apart; they are expected, not errors):
 *   resets     a small fraction of requests is cut mid-request (half the
 *              request sent, or all of it before the answer) with
 *              SO_LINGER {1, 0} + close: the server sees a RST;
 *   slowloris  connections that send a request head one byte every
 *              SLOW_EVERY ms and never finish it: the server must close them
 *              after IDLE_TIMEOUT_MS (held longer than 2× that + 5 s: error);
 *   restart    at half time, --restart-cmd runs (pg_ctl restart -m fast):
 *              pg answers 503 meanwhile, and must answer 200 again after.
 *
 * Phases: (1) per server, IDLE_CONNS keep-alive connections each make one
 * request and stay idle: RSS with them open minus RSS before, ÷ count, is
 * the memory per idle connection; then they close and the server's open fds
 * must come back to the baseline. (2) the mixed soak for --seconds. (3) all
 * clients close; each server's fds must return to the baseline within 10 s.
 * VmRSS of every server is sampled each second (start, peak, end).
 *
 * Exit status 0 only when there were no errors, every server is alive and
 * every fd count returned to its baseline. --report FILE gets a Markdown
 * fragment with the figures.
 *
 *   soak --make-files DIR
 *   soak --raw PORT:PID --pg PORT:PID --file PORT:PID [--conns 10000]
 *        [--seconds 60] [--sources 8] [--idle-timeout-ms 5000]
 *        [--slowloris 60] [--reset-permille 5] [--restart-cmd CMD]
 *        [--idle-conns 10000] [--report FILE]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { M_RAW, M_PG, M_FILE, NMODES };
static const char *mode_name[NMODES] = {"raw", "pg", "file"};

static const struct { const char *path; size_t size; } files[] = {
    {"/1k.bin", 1024}, {"/64k.bin", 65536}, {"/1m.bin", 1048576},
};
#define NFILES 3

static inline uint8_t pattern(size_t size, size_t i)
{
    uint32_t x = (uint32_t)i * 2654435761u ^ (uint32_t)size;
    return (uint8_t)(x >> 13);
}

/* ---------------------------------------------------------------- config */
static struct server {
    int on;
    uint16_t port;
    pid_t pid;
    long fd_base, fd_after_idle, fd_end;
    long rss_start, rss_peak, rss_end;
    long rss_idle_before, rss_idle_open;
    int idle_n;
    int alive_end;
} srv[NMODES];

static int opt_conns = 10000, opt_seconds = 60, opt_sources = 8, opt_idle_timeout = 5000;
static int opt_slowloris = 60, opt_reset_permille = 5, opt_idle_conns = 10000, opt_slow_every = 2000;
static const char *opt_restart_cmd, *opt_report;

/* ---------------------------------------------------------------- time */
static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static long long T0;

/* ---------------------------------------------------------------- stats */
enum {
    E_CONNECT, E_STATUS, E_BODY, E_LENGTH, E_CLOSED, E_RESET, E_TIMEOUT, E_MALFORMED,
    E_EXTRA, E_SLOW_NOT_CLOSED, E_SLOW_ANSWERED, E_PG_NOT_RECOVERED, E_SEND, NERR
};
static const char *err_name[NERR] = {
    "connect failed", "unexpected status", "wrong body", "wrong length", "closed by server mid-request",
    "reset by server", "no answer within 20 s", "malformed response", "bytes after the response",
    "slowloris not closed in time", "slowloris answered other than 408", "pg did not recover after restart",
    "send failed",
};
static struct mstats {
    unsigned long long ok, bytes, inj_503, inj_reset, inj_slow_closed, ok_after_restart, idle_reqs;
    long long slow_min, slow_max;     /* how long slowloris clients were held */
    unsigned long long err[NERR];
} st[NMODES];
static int err_samples;

static void error_at(int mode, int e, const char *fmt, ...)
{
    st[mode].err[e]++;
    if (err_samples++ < 25) {
        char msg[300];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "soak: ERROR %s t=%.1fs: %s: %s\n", mode_name[mode], (now_ms() - T0) / 1000.0,
                err_name[e], msg);
    }
}

/* ---------------------------------------------------------------- /proc */
static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}
static long fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n;
}
static void sample_rss(void)
{
    for (int m = 0; m < NMODES; m++) {
        if (!srv[m].on) continue;
        long r = rss_kb(srv[m].pid);
        if (r > srv[m].rss_peak) srv[m].rss_peak = r;
    }
}

/* ---------------------------------------------------------------- conns */
enum { K_LOOP, K_SLOW, K_IDLE };
enum { S_FREE, S_CONNECTING, S_SENDING, S_READING, S_IDLE, S_SLOW };

struct conn {
    int fd;
    uint8_t mode, kind, st, reset_plan;
    uint8_t file, head_done, conn_close, pad;
    char req[96];
    uint16_t req_len, req_off;
    uint16_t head_len;
    int status;
    long long clen;
    size_t body_got;
    char body[128];
    long long deadline, t_open, last_done, slow_next;
    unsigned slow_sent;
    char head[2048];           /* last: conn_open clears everything before it */
};

static struct conn *conns;
static int nconns_max, epfd;
static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (unsigned)(rng % n);
}
static int open_count[NMODES][3], connecting;
static long long restart_t0 = -1, restart_t1 = -1;
static pid_t restart_pid;
static int restart_rc = -1;
static int stopping;      /* soak over: no new requests or connections */

#define RECOVER_MS 5000   /* 503 still allowed this long after the restart ends */
static long long first_ok_after = -1;
static int restart_window(long long t)
{
    return restart_t0 >= 0 && t >= restart_t0 && (restart_t1 < 0 || t <= restart_t1 + RECOVER_MS);
}

static void conn_free(struct conn *c, int reset)
{
    if (c->fd >= 0) {
        if (reset) {
            struct linger lg = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(c->fd);
    }
    if (c->st == S_CONNECTING) connecting--;
    open_count[c->mode][c->kind]--;
    c->fd = -1;
    c->st = S_FREE;
}

static void set_events(struct conn *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)(c - conns)};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
}

static int src_next;
static int conn_open(int mode, int kind)
{
    int slot = -1;
    static int hint;
    for (int i = 0; i < nconns_max; i++) {
        int j = (hint + i) % nconns_max;
        if (conns[j].st == S_FREE) { slot = j; break; }
    }
    if (slot < 0) return -1;
    hint = slot + 1;
    struct conn *c = &conns[slot];
    memset(c, 0, offsetof(struct conn, head));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { c->fd = -1; error_at(mode, E_CONNECT, "socket: %s", strerror(errno)); return -1; }
    int one = 1;
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(src_next++ % opt_sources));
    c->mode = (uint8_t)mode;
    c->kind = (uint8_t)kind;
    open_count[mode][kind]++;
    c->st = S_CONNECTING;
    connecting++;
    c->t_open = now_ms();
    c->deadline = c->t_open + 20000;
    if (bind(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        error_at(mode, E_CONNECT, "bind 127.0.0.%u: %s", 2 + (src_next - 1) % opt_sources, strerror(errno));
        conn_free(c, 0);
        return -1;
    }
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(srv[mode].port);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        error_at(mode, E_CONNECT, "connect: %s", strerror(errno));
        conn_free(c, 0);
        return -1;
    }
    struct epoll_event e = {.events = EPOLLOUT, .data.u32 = (uint32_t)slot};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e);
    return slot;
}

static void do_send(struct conn *c);

static void start_request(struct conn *c)
{
    const char *path = "/";
    if (c->mode == M_FILE) {
        c->file = (uint8_t)(c->kind == K_IDLE ? 0 : rnd(NFILES));
        path = files[c->file].path;
    }
    c->req_len = (uint16_t)snprintf(c->req, sizeof c->req, "GET %s HTTP/1.1\r\nHost: soak\r\n\r\n", path);
    c->req_off = 0;
    c->head_len = 0;
    c->head_done = 0;
    c->status = 0;
    c->clen = -1;
    c->body_got = 0;
    c->conn_close = 0;
    c->reset_plan = 0;
    if (c->kind == K_LOOP && opt_reset_permille && rnd(1000) < (unsigned)opt_reset_permille)
        c->reset_plan = (uint8_t)(1 + rnd(2));
    c->deadline = now_ms() + 20000;
    c->st = S_SENDING;
    do_send(c);
}

static void inject_reset(struct conn *c)
{
    st[c->mode].inj_reset++;
    conn_free(c, 1);
}

static void do_send(struct conn *c)
{
    unsigned want = c->req_len;
    if (c->reset_plan == 1) want = c->req_len / 2;
    while (c->req_off < want) {
        ssize_t n = send(c->fd, c->req + c->req_off, want - c->req_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) { set_events(c, EPOLLOUT); return; }
            error_at(c->mode, E_SEND, "send: %s", strerror(errno));
            conn_free(c, 0);
            return;
        }
        c->req_off = (uint16_t)(c->req_off + n);
    }
    if (c->reset_plan) { inject_reset(c); return; }
    c->st = S_READING;
    set_events(c, EPOLLIN);
}

static void slow_tick(struct conn *c, long long t)
{
    static const char head[] = "GET / HTTP/1.1\r\nHost: soak\r\nX-Slow: ";
    char b;
    if (c->slow_sent < sizeof head - 1) b = head[c->slow_sent];
    else b = 'a';
    ssize_t n = send(c->fd, &b, 1, MSG_NOSIGNAL);
    if (n == 1) c->slow_sent++;
    c->slow_next = t + opt_slow_every;
}

/* A complete response: validate, count, go on. */
static void response_done(struct conn *c)
{
    long long t = now_ms();
    int m = c->mode, good = 0;
    if (c->kind == K_IDLE) {
        if (c->status == 200) { st[m].idle_reqs++; good = 1; }
        else error_at(m, E_STATUS, "idle-phase request answered %d", c->status);
    } else if (m == M_RAW) {
        if (c->status != 200) error_at(m, E_STATUS, "%d", c->status);
        else if (c->body_got != 2 || memcmp(c->body, "ok", 2)) error_at(m, E_BODY, "'%.*s'", (int)c->body_got, c->body);
        else good = 1;
    } else if (m == M_PG) {
        if (c->status == 200 && c->body_got == 5 && !memcmp(c->body, "db=42", 5)) {
            good = 1;
            if (restart_t1 >= 0 && t > restart_t1) {
                if (first_ok_after < 0) first_ok_after = t;
                if (t > restart_t1 + RECOVER_MS) st[m].ok_after_restart++;
            }
        } else if (c->status == 503 && restart_window(t) && c->body_got >= 20 &&
                   !memcmp(c->body, "database unavailable", 20)) {
            st[m].inj_503++;
            good = 2;
        } else if (c->status == 200) {
            error_at(m, E_BODY, "'%.*s'", (int)(c->body_got > 100 ? 100 : c->body_got), c->body);
        } else {
            error_at(m, E_STATUS, "%d '%.*s'%s", c->status, (int)(c->body_got > 100 ? 100 : c->body_got), c->body,
                     restart_window(t) ? " (during the restart window)" : " (outside the restart window)");
        }
    } else {
        /* file: the body was checked byte by byte while it arrived */
        if (c->status != 200) error_at(m, E_STATUS, "%d for %s", c->status, files[c->file].path);
        else if (c->body_got != files[c->file].size)
            error_at(m, E_LENGTH, "%zu bytes for %s", c->body_got, files[c->file].path);
        else good = 1;
    }
    if (good == 1 && c->kind != K_IDLE) { st[m].ok++; st[m].bytes += c->body_got; }
    c->last_done = t;
    if (!good || c->conn_close) { conn_free(c, 0); return; }
    if (c->kind == K_IDLE) { c->st = S_IDLE; set_events(c, EPOLLIN); return; }
    if (stopping) { c->st = S_IDLE; set_events(c, EPOLLIN); return; }
    start_request(c);
}

/* Parses the head in c->head[0, head_len) ending with CRLFCRLF. */
static int parse_head(struct conn *c)
{
    char *h = c->head;
    if (c->head_len < 12 || memcmp(h, "HTTP/1.1 ", 9)) return -1;
    c->status = atoi(h + 9);
    char *p = strstr(h, "\r\n");
    while (p && p[2] != '\r') {
        char *line = p + 2;
        p = strstr(line, "\r\n");
        if (!strncasecmp(line, "Content-Length:", 15)) c->clen = strtoll(line + 15, NULL, 10);
        else if (!strncasecmp(line, "Connection:", 11) && strcasestr(line, "close") &&
                 (!p || strcasestr(line, "close") < p)) c->conn_close = 1;
    }
    if (c->clen < 0) return -1;
    return 0;
}

/* Consumes bytes of the answer. Returns 0, or -1 when c was freed. */
static int feed(struct conn *c, const char *p, size_t n)
{
    while (n) {
        if (c->st != S_READING) {
            error_at(c->mode, E_EXTRA, "%zu bytes while no request was outstanding", n);
            conn_free(c, 0);
            return -1;
        }
        if (!c->head_done) {
            size_t room = sizeof c->head - 1 - c->head_len;
            size_t take = n < room ? n : room;
            memcpy(c->head + c->head_len, p, take);
            size_t old = c->head_len;
            c->head_len = (uint16_t)(c->head_len + take);
            c->head[c->head_len] = 0;
            char *e = strstr(c->head + (old > 3 ? old - 3 : 0), "\r\n\r\n");
            if (!e) {
                if (c->head_len >= sizeof c->head - 1) {
                    error_at(c->mode, E_MALFORMED, "head over %zu bytes", sizeof c->head);
                    conn_free(c, 0);
                    return -1;
                }
                return 0;
            }
            size_t head_end = (size_t)(e - c->head) + 4;
            size_t used = head_end - old;
            c->head[head_end - 2] = 0;
            c->head_len = (uint16_t)head_end;
            c->head_done = 1;
            if (parse_head(c) < 0) {
                error_at(c->mode, E_MALFORMED, "'%.60s'", c->head);
                conn_free(c, 0);
                return -1;
            }
            p += used;
            n -= used;
        }
        size_t left = (size_t)c->clen - c->body_got;
        size_t take = n < left ? n : left;
        if (c->mode == M_FILE && c->kind == K_LOOP && c->status == 200) {
            size_t sz = files[c->file].size;
            for (size_t i = 0; i < take; i++)
                if ((uint8_t)p[i] != pattern(sz, c->body_got + i)) {
                    error_at(c->mode, E_BODY, "%s: byte %zu differs", files[c->file].path, c->body_got + i);
                    conn_free(c, 0);
                    return -1;
                }
        } else if (c->body_got < sizeof c->body) {
            size_t k = sizeof c->body - 1 - c->body_got;
            if (k > take) k = take;
            memcpy(c->body + c->body_got, p, k);
        }
        c->body_got += take;
        p += take;
        n -= take;
        if (c->body_got == (size_t)c->clen) {
            if (n) {
                error_at(c->mode, E_EXTRA, "%zu bytes after a response", n);
                conn_free(c, 0);
                return -1;
            }
            response_done(c);
            return c->st == S_FREE ? -1 : 0;
        }
    }
    return 0;
}

static char scratch[256 * 1024];

static void on_event(struct conn *c, uint32_t ev)
{
    if (c->st == S_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            error_at(c->mode, E_CONNECT, "%s", strerror(err));
            conn_free(c, 0);
            return;
        }
        connecting--;
        if (c->kind == K_SLOW) {
            c->st = S_SLOW;
            c->slow_next = 0;
            slow_tick(c, now_ms());
            set_events(c, EPOLLIN);
            return;
        }
        start_request(c);
        return;
    }
    if (c->st == S_SENDING) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) do_send(c);
        return;
    }
    for (int rounds = 0; rounds < 8; rounds++) {
        ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
        if (n > 0) {
            if (c->st == S_SLOW) {
                /* a slowloris may be told 408 before the close */
                if (n < 12 || memcmp(scratch, "HTTP/1.1 408", 12)) {
                    error_at(c->mode, E_SLOW_ANSWERED, "'%.40s'", scratch);
                    conn_free(c, 0);
                    return;
                }
                continue;
            }
            if (c->st == S_IDLE && c->kind == K_IDLE) {
                error_at(c->mode, E_EXTRA, "bytes on an idle connection");
                conn_free(c, 0);
                return;
            }
            if (feed(c, scratch, (size_t)n) < 0) return;
            if ((size_t)n < sizeof scratch) return;
            continue;
        }
        if (n < 0 && errno == EAGAIN) return;
        int e = n < 0 ? errno : 0;
        long long t = now_ms();
        if (c->st == S_SLOW) {
            long long held = t - c->t_open;
            if (held > 2LL * opt_idle_timeout + 5000)
                error_at(c->mode, E_SLOW_NOT_CLOSED, "closed only after %lld ms", held);
            else {
                st[c->mode].inj_slow_closed++;
                if (!st[c->mode].slow_min || held < st[c->mode].slow_min) st[c->mode].slow_min = held;
                if (held > st[c->mode].slow_max) st[c->mode].slow_max = held;
            }
        } else if (c->st == S_IDLE) {
            /* the server closing an idle keep-alive connection is its right
             * (IDLE_TIMEOUT_MS); during the soak, loops are never idle long */
            if (c->kind == K_IDLE)
                error_at(c->mode, E_CLOSED, "idle-phase connection closed after %lld ms idle", t - c->last_done);
        } else {
            error_at(c->mode, e ? E_RESET : E_CLOSED, "%s after %zu body bytes, status %d",
                     e ? strerror(e) : "EOF", c->body_got, c->status);
        }
        conn_free(c, 0);
        return;
    }
}

static void timers(long long t)
{
    for (int i = 0; i < nconns_max; i++) {
        struct conn *c = &conns[i];
        switch (c->st) {
        case S_SLOW:
            if (t - c->t_open > 2LL * opt_idle_timeout + 5000) {
                error_at(c->mode, E_SLOW_NOT_CLOSED, "still open after %lld ms (%u bytes sent)", t - c->t_open, c->slow_sent);
                conn_free(c, 0);
            } else if (t >= c->slow_next && !stopping) {
                slow_tick(c, t);
            }
            break;
        case S_CONNECTING: case S_SENDING: case S_READING:
            if (t > c->deadline) {
                error_at(c->mode, c->st == S_CONNECTING ? E_CONNECT : E_TIMEOUT, "state %d, %zu body bytes, status %d",
                         c->st, c->body_got, c->status);
                conn_free(c, 0);
            }
            break;
        case S_IDLE:
            /* idle-phase connections make a request now and then so the
             * server's idle timeout does not take them */
            if (c->kind == K_IDLE && !stopping && t - c->last_done > opt_idle_timeout / 2) start_request(c);
            break;
        }
    }
}

static void restart_poll(long long t)
{
    if (restart_pid > 0) {
        int status;
        if (waitpid(restart_pid, &status, WNOHANG) == restart_pid) {
            restart_t1 = t;
            restart_rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            restart_pid = 0;
            fprintf(stderr, "soak: t=%.1fs restart command finished (status %d) after %lld ms\n",
                    (t - T0) / 1000.0, restart_rc, restart_t1 - restart_t0);
        }
    }
}

static void run_loop(long long until, int (*done)(void))
{
    struct epoll_event evs[512];
    long long last_tick = 0, last_sample = 0;
    while (now_ms() < until) {
        int n = epoll_wait(epfd, evs, 512, 50);
        for (int i = 0; i < n; i++) {
            struct conn *c = &conns[evs[i].data.u32];
            if (c->st != S_FREE) on_event(c, evs[i].events);
        }
        long long t = now_ms();
        if (t - last_tick >= 100) { timers(t); restart_poll(t); last_tick = t; }
        if (t - last_sample >= 1000) { sample_rss(); last_sample = t; }
        if (done && done()) return;
    }
}

/* ---------------------------------------------------------------- phases */
static int idle_mode, idle_target;
static int idle_ready(void)
{
    int ready = 0;
    for (int i = 0; i < nconns_max; i++)
        if (conns[i].st == S_IDLE && conns[i].kind == K_IDLE) ready++;
    return ready >= idle_target;
}
static int idle_fill(void)
{
    while (open_count[idle_mode][K_IDLE] < idle_target && connecting < 512)
        if (conn_open(idle_mode, K_IDLE) < 0) break;
    return idle_ready();
}

static void close_all(void)
{
    for (int i = 0; i < nconns_max; i++)
        if (conns[i].st != S_FREE) conn_free(&conns[i], 0);
}

static int wait_fds(int m, long long ms)
{
    long long until = now_ms() + ms;
    long n;
    while ((n = fd_count(srv[m].pid)) != srv[m].fd_base && now_ms() < until) usleep(100000);
    return (int)n;
}

static void idle_phase(int m)
{
    srv[m].rss_idle_before = rss_kb(srv[m].pid);
    idle_mode = m;
    idle_target = opt_idle_conns;
    long long t0 = now_ms();
    run_loop(t0 + 30000, idle_fill);
    int ready = 0;
    for (int i = 0; i < nconns_max; i++)
        if (conns[i].st == S_IDLE && conns[i].kind == K_IDLE) ready++;
    long long t1 = now_ms();
    run_loop(t1 + 1000, NULL);  /* settle (still serving refreshes) */
    long a = rss_kb(srv[m].pid);
    run_loop(now_ms() + 500, NULL);
    long b = rss_kb(srv[m].pid);
    srv[m].rss_idle_open = a > b ? a : b;
    srv[m].idle_n = ready;
    sample_rss();
    fprintf(stderr, "soak: idle %s: %d connections open in %lld ms; RSS %ld → %ld KiB (%.2f KiB/conn)\n",
            mode_name[m], ready, t1 - t0, srv[m].rss_idle_before, srv[m].rss_idle_open,
            ready ? (double)(srv[m].rss_idle_open - srv[m].rss_idle_before) / ready : 0.0);
    close_all();
    srv[m].fd_after_idle = wait_fds(m, 10000);
}

static int target[NMODES];
static int soak_fill(void)
{
    if (stopping) return 0;
    for (int m = 0; m < NMODES; m++) {
        if (!srv[m].on) continue;
        int slow_per = opt_slowloris / (srv[M_RAW].on + srv[M_PG].on + srv[M_FILE].on);
        while (open_count[m][K_SLOW] < slow_per && connecting < 512)
            if (conn_open(m, K_SLOW) < 0) break;
        while (open_count[m][K_LOOP] < target[m] && connecting < 512)
            if (conn_open(m, K_LOOP) < 0) break;
    }
    return 0;
}

static void soak_phase(void)
{
    int loops = opt_conns - opt_slowloris;
    int weight[NMODES] = {40, 25, 35}, wsum = 0;
    for (int m = 0; m < NMODES; m++) if (srv[m].on) wsum += weight[m];
    for (int m = 0; m < NMODES; m++)
        if (srv[m].on) target[m] = loops * weight[m] / wsum;
    int sum = 0;
    for (int m = 0; m < NMODES; m++) sum += target[m];
    for (int m = NMODES - 1; m >= 0; m--) if (srv[m].on) { target[m] += loops - sum; break; }
    fprintf(stderr, "soak: soak phase %d s: raw %d, pg %d, file %d keep-alive loops + %d slowloris\n",
            opt_seconds, target[M_RAW], target[M_PG], target[M_FILE], opt_slowloris);
    long long t0 = now_ms(), end = t0 + (long long)opt_seconds * 1000;
    long long mid = t0 + (long long)opt_seconds * 500;
    long long next_report = t0 + 5000;
    int restarted = !opt_restart_cmd || !srv[M_PG].on;
    while (now_ms() < end) {
        long long step = now_ms() + 200;
        if (step > end) step = end;
        run_loop(step, soak_fill);
        soak_fill();
        long long t = now_ms();
        if (!restarted && t >= mid) {
            restarted = 1;
            restart_t0 = t;
            fprintf(stderr, "soak: t=%.1fs injecting: %s\n", (t - T0) / 1000.0, opt_restart_cmd);
            restart_pid = fork();
            if (restart_pid == 0) {
                execl("/bin/sh", "sh", "-c", opt_restart_cmd, (char *)NULL);
                _exit(127);
            }
        }
        if (t >= next_report) {
            next_report += 5000;
            int open = 0;
            for (int m = 0; m < NMODES; m++) open += open_count[m][K_LOOP] + open_count[m][K_SLOW];
            unsigned long long e = 0;
            for (int m = 0; m < NMODES; m++) for (int k = 0; k < NERR; k++) e += st[m].err[k];
            fprintf(stderr, "soak: t=%3.0fs open %5d  ok raw %llu pg %llu file %llu  503 %llu  resets %llu  slowloris closed %llu  errors %llu\n",
                    (t - T0) / 1000.0, open, st[M_RAW].ok, st[M_PG].ok, st[M_FILE].ok, st[M_PG].inj_503,
                    st[M_RAW].inj_reset + st[M_PG].inj_reset + st[M_FILE].inj_reset,
                    st[M_RAW].inj_slow_closed + st[M_PG].inj_slow_closed + st[M_FILE].inj_slow_closed, e);
        }
    }
    /* Stop: no new requests; give in-flight answers up to 20 s. */
    stopping = 1;
    long long until = now_ms() + 20000;
    for (;;) {
        int busy = 0;
        for (int i = 0; i < nconns_max; i++)
            if (conns[i].st == S_CONNECTING || conns[i].st == S_SENDING || conns[i].st == S_READING) busy++;
        if (!busy || now_ms() >= until) break;
        run_loop(now_ms() + 100, NULL);
    }
    while (restart_pid > 0) { restart_poll(now_ms()); usleep(50000); }
    if (srv[M_PG].on && opt_restart_cmd && st[M_PG].ok_after_restart == 0)
        error_at(M_PG, E_PG_NOT_RECOVERED, "no 200 later than 5 s after the restart finished");
}

/* ---------------------------------------------------------------- main */
static int make_files(const char *dir)
{
    static char buf[1 << 20];
    for (int f = 0; f < NFILES; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s%s", dir, files[f].path);
        for (size_t i = 0; i < files[f].size; i++) buf[i] = (char)pattern(files[f].size, i);
        FILE *fp = fopen(path, "we");
        if (!fp || fwrite(buf, 1, files[f].size, fp) != files[f].size || fclose(fp) != 0) {
            perror(path);
            return 1;
        }
    }
    return 0;
}

static int parse_target(const char *v, int m)
{
    unsigned port;
    int pid;
    if (sscanf(v, "%u:%d", &port, &pid) != 2 || !port || port > 65535 || pid <= 0) {
        fprintf(stderr, "soak: --%s wants PORT:PID, got '%s'\n", mode_name[m], v);
        return -1;
    }
    srv[m].on = 1;
    srv[m].port = (uint16_t)port;
    srv[m].pid = pid;
    return 0;
}

static void fmt_kib(char *out, size_t n, long kb)
{
    if (kb < 0) snprintf(out, n, "-");
    else snprintf(out, n, "%.1f MiB", kb / 1024.0);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && (i++, 1))
        if (OPT("--make-files")) return make_files(v);
        else if (OPT("--raw")) { if (parse_target(v, M_RAW)) return 2; }
        else if (OPT("--pg")) { if (parse_target(v, M_PG)) return 2; }
        else if (OPT("--file")) { if (parse_target(v, M_FILE)) return 2; }
        else if (OPT("--conns")) opt_conns = atoi(v);
        else if (OPT("--seconds")) opt_seconds = atoi(v);
        else if (OPT("--sources")) opt_sources = atoi(v);
        else if (OPT("--idle-timeout-ms")) opt_idle_timeout = atoi(v);
        else if (OPT("--slowloris")) opt_slowloris = atoi(v);
        else if (OPT("--slow-every-ms")) opt_slow_every = atoi(v);
        else if (OPT("--reset-permille")) opt_reset_permille = atoi(v);
        else if (OPT("--restart-cmd")) opt_restart_cmd = v;
        else if (OPT("--idle-conns")) opt_idle_conns = atoi(v);
        else if (OPT("--report")) opt_report = v;
        else { fprintf(stderr, "soak: unknown or incomplete option '%s' (see bench/soak.c)\n", a); return 2; }
    }
    if (opt_conns < 1 || opt_seconds < 1 || opt_sources < 1 || opt_sources > 250 ||
        opt_slowloris < 0 || opt_slowloris >= opt_conns || opt_idle_conns < 0) {
        fprintf(stderr, "soak: bad numbers\n");
        return 2;
    }
    if (!srv[M_RAW].on && !srv[M_PG].on && !srv[M_FILE].on) {
        fprintf(stderr, "soak: no server given (--raw/--pg/--file PORT:PID)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    nconns_max = (opt_conns > opt_idle_conns ? opt_conns : opt_idle_conns) + 64;
    struct rlimit rl = {(rlim_t)nconns_max + 1024, (rlim_t)nconns_max + 1024};
    struct rlimit cur;
    getrlimit(RLIMIT_NOFILE, &cur);
    if (cur.rlim_cur < rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fprintf(stderr, "soak: cannot raise RLIMIT_NOFILE to %lu: %s (run as root or raise the hard limit)\n",
                (unsigned long)rl.rlim_cur, strerror(errno));
        return 2;
    }
    conns = calloc((size_t)nconns_max, sizeof *conns);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || epfd < 0) { perror("soak"); return 2; }
    for (int i = 0; i < nconns_max; i++) conns[i].fd = -1;
    rng ^= (unsigned long long)getpid() << 20;
    T0 = now_ms();

    for (int m = 0; m < NMODES; m++) {
        if (!srv[m].on) continue;
        srv[m].fd_base = fd_count(srv[m].pid);
        srv[m].rss_start = srv[m].rss_peak = rss_kb(srv[m].pid);
        if (srv[m].fd_base < 0 || srv[m].rss_start < 0) {
            fprintf(stderr, "soak: cannot read /proc/%d (is the %s server running?)\n", (int)srv[m].pid, mode_name[m]);
            return 2;
        }
    }
    if (opt_idle_conns)
        for (int m = 0; m < NMODES; m++) if (srv[m].on) idle_phase(m);
    soak_phase();
    close_all();
    int bad = 0;
    for (int m = 0; m < NMODES; m++) {
        if (!srv[m].on) continue;
        srv[m].fd_end = wait_fds(m, 10000);
        srv[m].rss_end = rss_kb(srv[m].pid);
        srv[m].alive_end = kill(srv[m].pid, 0) == 0;
        sample_rss();
        if (srv[m].fd_end != srv[m].fd_base || (opt_idle_conns && srv[m].fd_after_idle != srv[m].fd_base)) bad = 1;
        if (!srv[m].alive_end) bad = 1;
    }
    unsigned long long errors = 0;
    for (int m = 0; m < NMODES; m++) for (int k = 0; k < NERR; k++) errors += st[m].err[k];
    if (errors) bad = 1;

    /* ---- report ---- */
    char *rep = NULL;
    size_t replen = 0;
    FILE *o = open_memstream(&rep, &replen);
    fprintf(o, "| mode | requests OK | req/s | MiB of bodies | injected: resets | injected: slowloris closed | injected: 503 during restart | errors |\n");
    fprintf(o, "|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int m = 0; m < NMODES; m++) {
        if (!srv[m].on) continue;
        unsigned long long e = 0;
        for (int k = 0; k < NERR; k++) e += st[m].err[k];
        char c503[32] = "-";
        if (m == M_PG) snprintf(c503, sizeof c503, "%llu", st[m].inj_503);
        fprintf(o, "| %s | %llu | %.0f | %.1f | %llu | %llu | %s | **%llu** |\n", mode_name[m], st[m].ok,
                (double)st[m].ok / opt_seconds, st[m].bytes / 1048576.0, st[m].inj_reset, st[m].inj_slow_closed,
                c503, e);
    }
    fclose(o);
    FILE *out = opt_report ? fopen(opt_report, "we") : NULL;
    FILE *dst[2] = {stdout, out};
    for (int d = 0; d < 2; d++) {
        FILE *f = dst[d];
        if (!f) continue;
        fprintf(f, "%s\n", rep);
        fprintf(f, "| server | RSS start | RSS peak | RSS end | open fds: baseline / after idle phase / at end | memory per idle keep-alive connection | alive at end |\n");
        fprintf(f, "|---|---:|---:|---:|---|---:|---|\n");
        for (int m = 0; m < NMODES; m++) {
            if (!srv[m].on) continue;
            char a[32], b[32], c[32];
            fmt_kib(a, sizeof a, srv[m].rss_start);
            fmt_kib(b, sizeof b, srv[m].rss_peak);
            fmt_kib(c, sizeof c, srv[m].rss_end);
            char per[96] = "-";
            if (srv[m].idle_n)
                snprintf(per, sizeof per, "%.2f KiB (%ld → %ld KiB with %d open)",
                         (double)(srv[m].rss_idle_open - srv[m].rss_idle_before) / srv[m].idle_n,
                         srv[m].rss_idle_before, srv[m].rss_idle_open, srv[m].idle_n);
            fprintf(f, "| %s | %s | %s | %s | %ld / %ld / %ld%s | %s | %s |\n", mode_name[m], a, b, c,
                    srv[m].fd_base, opt_idle_conns ? srv[m].fd_after_idle : -1, srv[m].fd_end,
                    (srv[m].fd_end == srv[m].fd_base && (!opt_idle_conns || srv[m].fd_after_idle == srv[m].fd_base))
                        ? " (back to baseline)" : " (**NOT back to baseline**)",
                    per, srv[m].alive_end ? "yes" : "**no**");
        }
        if (opt_restart_cmd && srv[M_PG].on)
            fprintf(f, "\nPostgreSQL restart (`pg_ctl restart -m fast`): started at %.1f s, took %lld ms (exit %d); "
                       "first pg 200 %lld ms after it finished; pg 200s later than %d ms after it: %llu.\n",
                    restart_t0 >= 0 ? (restart_t0 - T0) / 1000.0 : -1.0,
                    restart_t1 >= 0 ? restart_t1 - restart_t0 : -1, restart_rc,
                    first_ok_after >= 0 ? first_ok_after - restart_t1 : -1, RECOVER_MS, st[M_PG].ok_after_restart);
        fprintf(f, "\nSlowloris clients were closed by the servers after (min–max, from connect; IDLE_TIMEOUT_MS=%d):", opt_idle_timeout);
        for (int m = 0; m < NMODES; m++)
            if (srv[m].on) fprintf(f, " %s %lld–%lld ms%s", mode_name[m], st[m].slow_min, st[m].slow_max, m == M_FILE ? "." : ";");
        fprintf(f, "\n");
        if (errors) {
            fprintf(f, "\nErrors by kind:\n\n");
            for (int m = 0; m < NMODES; m++)
                for (int k = 0; k < NERR; k++)
                    if (st[m].err[k]) fprintf(f, "- %s: %s: %llu\n", mode_name[m], err_name[k], st[m].err[k]);
        }
        fprintf(f, "\nResult: **%s**\n", bad ? "FAIL" : "PASS (0 errors, fds back to baseline, servers alive)");
    }
    if (out) fclose(out);
    free(rep);
    return bad ? 1 : 0;
}
