/* soak.c — the load tool of `make soak` (bench/soak.sh drives it).
 *
 * THREADS worker threads (--threads, default 4), each with its own epoll and
 * its own share of the connections, non-blocking sockets; the main thread
 * only coordinates the phases, samples RSS and runs the restart. (One thread
 * driving 10 000 connections fell more than IDLE_TIMEOUT_MS behind under
 * load, so the server's idle and stuck-reader timers closed connections the
 * client itself had left alone: see "client-caused closes" below.) Against
 * up to three
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
 * Client-caused closes. The servers close a connection that made no
 * progress for IDLE_TIMEOUT_MS: no request between answers (idle timer), or
 * an answer the peer does not take (stuck-reader timer). A client that falls
 * behind causes both itself. So each read measures the client's own lag: how
 * long the bytes it reads waited in the socket (the kernel's arrival time,
 * SO_TIMESTAMPNS, against the read's time; or, when the previous read filled
 * the buffer, the time since that read). Each connection keeps the largest
 * lag over the current answer and the previous one (the idle timer of a
 * keep-alive connection runs while the last bytes of the previous answer
 * wait to be read, or in the server's send queue while the client's window
 * stays closed). Time spent waiting for the server never counts. A close
 * or reset by the server after a lag of at least IDLE_TIMEOUT_MS is
 * "client-caused": counted and reported apart, and the
 * soak fails when they exceed 1 per 1000 answers of a mode (the client was
 * too slow to judge the server). Any other close with an answer owed is an
 * error. Each thread also reports its longest loop turn (the upper bound of
 * how long a ready socket waited to be served).
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
#include <pthread.h>
#include <stdatomic.h>
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
/* The expected bytes of each file, built once: the body check is a memcmp
 * (the per-byte pattern() in the loop cost the client more than the server
 * spent sending, and a slow client is what made it cause its own timeouts). */
static uint8_t *expect[NFILES];

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
static int opt_threads = 4;
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
    E_EXTRA, E_SLOW_NOT_CLOSED, E_SLOW_ANSWERED, E_PG_NOT_RECOVERED, E_SEND, E_CLIENT_CAUSED, NERR
};
/* E_CLIENT_CAUSED is counted in err[] but is not an error (see the top). */
static const char *err_name[NERR] = {
    "connect failed", "unexpected status", "wrong body", "wrong length", "closed by server mid-request",
    "reset by server", "no answer within 20 s", "malformed response", "bytes after the response",
    "slowloris not closed in time", "slowloris answered other than 408", "pg did not recover after restart",
    "send failed", "client-caused close (the client left the connection idle >= IDLE_TIMEOUT_MS)",
};
struct mstats {
    unsigned long long ok, bytes, inj_503, inj_reset, inj_slow_closed, ok_after_restart, idle_reqs;
    long long slow_min, slow_max;     /* how long slowloris clients were held */
    long long gap_ok_max;             /* largest client gap on a request answered OK */
    unsigned long long err[NERR];
};
/* Per thread: each worker counts into its own; main sums them (tsum). */
static __thread struct mstats st[NMODES];
static struct mstats *thread_st[64];
static atomic_int err_samples, client_samples;
static __thread long long turn_max, turns_over_1s, turns;   /* this thread's loop turns */
static long long thread_turn_max[64], thread_turns_over_1s[64], thread_turns[64];

static void error_at(int mode, int e, const char *fmt, ...)
{
    st[mode].err[e]++;
    if (e == E_CLIENT_CAUSED ? atomic_fetch_add(&client_samples, 1) < 10 : atomic_fetch_add(&err_samples, 1) < 25) {
        char msg[300];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "soak: %s %s t=%.1fs: %s: %s\n", e == E_CLIENT_CAUSED ? "note" : "ERROR", mode_name[mode], (now_ms() - T0) / 1000.0,
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
    long long last_act, gap_max, gap_prev;   /* the client's own lag: this answer's, the previous one's */
    uint8_t pending;                          /* the last recv filled the buffer: more waits */
    unsigned slow_sent;
    char head[2048];           /* last: conn_open clears everything before it */
};

static __thread struct conn *conns;
static __thread int nconns_max, epfd;
static __thread unsigned long long rng = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (unsigned)(rng % n);
}
static __thread int open_count[NMODES][3], connecting;
/* Written by main (the restart runs there), read by the workers. */
static _Atomic long long restart_t0 = -1, restart_t1 = -1;
static pid_t restart_pid;
static int restart_rc = -1;
static __thread int stopping;      /* soak over: no new requests or connections */

#define RECOVER_MS 5000   /* 503 still allowed this long after the restart ends */
static __thread long long first_ok_after = -1;
static long long thread_first_ok_after[64];
static int restart_window(long long t)
{
    long long t0 = restart_t0, t1 = restart_t1;
    return t0 >= 0 && t >= t0 && (t1 < 0 || t <= t1 + RECOVER_MS);
}

static long long real_ms(const struct timespec *ts)
{
    return (long long)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

/* The client read n bytes from c at t (monotonic) / now_rt (realtime); rx
 * is the kernel's arrival time of the newest packet in them (SO_TIMESTAMPNS,
 * realtime), 0 when unknown. The client's lag: how long those bytes waited
 * in the socket for it. On loopback the server's send progress is the
 * arrival of its packets, so while bytes wait unread (the window closed) or
 * the last bytes of an answer wait (the idle timer runs), the server sees
 * no progress for exactly that long. */
static void client_read(struct conn *c, long long t, long long now_rt, long long rx, size_t n, size_t cap)
{
    long long g = rx ? now_rt - rx : 0;
    if (c->pending && t - c->last_act > g) g = t - c->last_act;   /* bytes were waiting since the last read */
    if (g < 0) g = 0;
    if (g > c->gap_max) c->gap_max = g;
    c->last_act = t;
    c->pending = n == cap;
}
/* The largest client lag that could have let the server's timer run out. */
static long long client_gap(struct conn *c, long long t)
{
    long long g = c->pending ? t - c->last_act : 0;
    if (c->gap_prev > g) g = c->gap_prev;
    return g > c->gap_max ? g : c->gap_max;
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

static __thread int src_next;
static int conn_open(int mode, int kind)
{
    int slot = -1;
    static __thread int hint;
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
    /* arrival times of what the client reads: its own lag (see the top) */
    setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(src_next++ % opt_sources));
    c->mode = (uint8_t)mode;
    c->kind = (uint8_t)kind;
    open_count[mode][kind]++;
    c->st = S_CONNECTING;
    connecting++;
    c->t_open = now_ms();
    c->last_act = c->t_open;
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
    /* the previous answer's lag still counts: while the client was slow to
     * read it, its last bytes waited in the server's send queue (window
     * closed) after the server's last send completed and its idle timer
     * started */
    c->gap_prev = c->gap_max;
    c->gap_max = 0;
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
    if (good == 1 && c->kind != K_IDLE) {
        st[m].ok++;
        st[m].bytes += c->body_got;
        if (c->gap_max > st[m].gap_ok_max) st[m].gap_ok_max = c->gap_max;
    }
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
            if (memcmp(p, expect[c->file] + c->body_got, take)) {
                size_t i = 0;
                while ((uint8_t)p[i] == expect[c->file][c->body_got + i]) i++;
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

/* One recv of at most this much per ready event: with level-triggered
 * epoll an unfinished socket is reported again in a later turn, so a turn's
 * length stays bounded and every ready connection is served in turn (eight
 * 256 KiB reads per event made a turn over 512 events take seconds). */
static __thread char scratch[64 * 1024];

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
    for (int rounds = 0; rounds < 1; rounds++) {
        union { char buf[CMSG_SPACE(sizeof(struct timespec))]; struct cmsghdr align; } cm;
        struct iovec iov = {scratch, sizeof scratch};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
        ssize_t n = recvmsg(c->fd, &mh, 0);
        if (n > 0) {
            long long rx = 0;
            for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h))
                if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(h), sizeof ts);
                    rx = real_ms(&ts);
                }
            struct timespec rt;
            clock_gettime(CLOCK_REALTIME, &rt);
            client_read(c, now_ms(), real_ms(&rt), rx, (size_t)n, sizeof scratch);
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
        long long gap = client_gap(c, t);
        /* a close the client invited by leaving the connection alone for the
         * server's whole idle timeout: reported apart, not an error */
        int client_caused = gap >= opt_idle_timeout;
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
                error_at(c->mode, client_caused ? E_CLIENT_CAUSED : E_CLOSED,
                         "idle-phase connection closed after %lld ms idle (client gap %lld ms)", t - c->last_done, gap);
        } else {
            error_at(c->mode, client_caused ? E_CLIENT_CAUSED : e ? E_RESET : E_CLOSED,
                     "%s after %zu body bytes, status %d, state %d (client gap %lld ms, %lld ms since its last activity)",
                     e ? strerror(e) : "EOF", c->body_got, c->status, c->st, gap, t - c->last_act);
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
    struct epoll_event evs[256];
    long long last_tick = 0;
    while (now_ms() < until) {
        int n = epoll_wait(epfd, evs, 256, 50);
        long long ts = now_ms();
        for (int i = 0; i < n; i++) {
            struct conn *c = &conns[evs[i].data.u32];
            if (c->st != S_FREE) on_event(c, evs[i].events);
        }
        long long t = now_ms();
        if (t - last_tick >= 100) { timers(t); last_tick = t; t = now_ms(); }
        /* a socket that became ready just after epoll_wait returned waited
         * this long (plus the next wait) to be served */
        if (n > 0) {
            turns++;
            if (t - ts > turn_max) turn_max = t - ts;
            if (t - ts >= 1000) turns_over_1s++;
        }
        if (done && done()) return;
    }
}

/* ---------------------------------------------------------------- threads
 * Each worker runs the same phases over its share of the connections; the
 * phases meet at barriers with main, which measures between them. */
static pthread_barrier_t bar;
static atomic_int go_on;          /* main → workers: the present wait is over */
static atomic_int idle_ready_total;
static long long soak_t0, soak_end;
struct worker { int id, conns, idle_conns, slowloris; pthread_t th; };
static struct worker workers[64];
static void meet(void) { pthread_barrier_wait(&bar); }
static int go(void) { return atomic_load(&go_on); }
static __thread int connect_cap;  /* connects in flight per thread */

/* ---------------------------------------------------------------- phases */
static __thread int idle_mode, idle_target;
static int idle_count(void)
{
    int ready = 0;
    for (int i = 0; i < nconns_max; i++)
        if (conns[i].st == S_IDLE && conns[i].kind == K_IDLE) ready++;
    return ready;
}
static int idle_fill(void)
{
    while (open_count[idle_mode][K_IDLE] < idle_target && connecting < connect_cap)
        if (conn_open(idle_mode, K_IDLE) < 0) break;
    return idle_count() >= idle_target;
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

static void sleep_sampling(long long ms)
{
    long long until = now_ms() + ms;
    while (now_ms() < until) { usleep(100000); sample_rss(); }
}

/* main's side of one server's idle phase; the workers' is worker_idle */
static void idle_phase(int m)
{
    srv[m].rss_idle_before = rss_kb(srv[m].pid);
    atomic_store(&idle_ready_total, 0);
    long long t0 = now_ms();
    meet();                       /* A: workers fill */
    meet();                       /* B: all filled (or 30 s passed) */
    long long t1 = now_ms();
    int ready = atomic_load(&idle_ready_total);
    sleep_sampling(1000);         /* settle (the workers still serve refreshes) */
    long a = rss_kb(srv[m].pid);
    sleep_sampling(500);
    long b = rss_kb(srv[m].pid);
    srv[m].rss_idle_open = a > b ? a : b;
    srv[m].idle_n = ready;
    sample_rss();
    fprintf(stderr, "soak: idle %s: %d connections open in %lld ms; RSS %ld → %ld KiB (%.2f KiB/conn)\n",
            mode_name[m], ready, t1 - t0, srv[m].rss_idle_before, srv[m].rss_idle_open,
            ready ? (double)(srv[m].rss_idle_open - srv[m].rss_idle_before) / ready : 0.0);
    atomic_store(&go_on, 1);
    meet();                       /* C: workers stop serving */
    atomic_store(&go_on, 0);
    meet();                       /* D: workers closed theirs */
    srv[m].fd_after_idle = wait_fds(m, 10000);
}

static void worker_idle(struct worker *w, int m)
{
    meet();                       /* A */
    idle_mode = m;
    idle_target = w->idle_conns;
    run_loop(now_ms() + 30000, idle_fill);
    atomic_fetch_add(&idle_ready_total, idle_count());
    meet();                       /* B */
    run_loop(now_ms() + 600000, go);
    meet();                       /* C */
    close_all();
    meet();                       /* D */
}

static __thread int target[NMODES], slow_per;
static int soak_fill(void)
{
    if (stopping) return 0;
    for (int m = 0; m < NMODES; m++) {
        if (!srv[m].on) continue;
        while (open_count[m][K_SLOW] < slow_per && connecting < connect_cap)
            if (conn_open(m, K_SLOW) < 0) break;
        while (open_count[m][K_LOOP] < target[m] && connecting < connect_cap)
            if (conn_open(m, K_LOOP) < 0) break;
    }
    return 0;
}

static int modes_on(void) { return srv[M_RAW].on + srv[M_PG].on + srv[M_FILE].on; }

/* Splits n keep-alive loops over the modes 40/25/35 (raw/pg/file). */
static void split_loops(int n, int out[NMODES])
{
    int weight[NMODES] = {40, 25, 35}, wsum = 0, sum = 0;
    for (int m = 0; m < NMODES; m++) if (srv[m].on) wsum += weight[m];
    for (int m = 0; m < NMODES; m++) out[m] = srv[m].on ? n * weight[m] / wsum : 0;
    for (int m = 0; m < NMODES; m++) sum += out[m];
    for (int m = NMODES - 1; m >= 0; m--) if (srv[m].on) { out[m] += n - sum; break; }
}

static void worker_soak(struct worker *w)
{
    split_loops(w->conns - w->slowloris, target);
    slow_per = w->slowloris / modes_on();
    meet();                       /* S: soak_end is set */
    while (now_ms() < soak_end) {
        long long step = now_ms() + 200;
        if (step > soak_end) step = soak_end;
        run_loop(step, soak_fill);
        soak_fill();
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
    meet();                       /* E: drained */
    close_all();
    meet();                       /* F: all closed */
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    nconns_max = (w->conns > w->idle_conns ? w->conns : w->idle_conns) + 64;
    conns = calloc((size_t)nconns_max, sizeof *conns);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || epfd < 0) { perror("soak: worker"); exit(2); }
    for (int i = 0; i < nconns_max; i++) conns[i].fd = -1;
    rng ^= ((unsigned long long)getpid() << 20) ^ ((unsigned long long)(w->id + 1) * 0x9e3779b97f4a7c15ull);
    connect_cap = 512 / opt_threads > 32 ? 512 / opt_threads : 32;
    src_next = w->id;
    thread_st[w->id] = st;
    if (opt_idle_conns)
        for (int m = 0; m < NMODES; m++) if (srv[m].on) worker_idle(w, m);
    worker_soak(w);
    thread_turn_max[w->id] = turn_max;
    thread_turns_over_1s[w->id] = turns_over_1s;
    thread_turns[w->id] = turns;
    thread_first_ok_after[w->id] = first_ok_after;
    return NULL;
}

/* The workers' counters summed (read while they run: progress only). */
static struct mstats tot[NMODES];
static void tsum(void)
{
    memset(tot, 0, sizeof tot);
    for (int i = 0; i < opt_threads; i++)
        for (int m = 0; m < NMODES; m++) {
            const struct mstats *s = &thread_st[i][m];
            struct mstats *d = &tot[m];
            d->ok += s->ok; d->bytes += s->bytes; d->inj_503 += s->inj_503; d->inj_reset += s->inj_reset;
            d->inj_slow_closed += s->inj_slow_closed; d->ok_after_restart += s->ok_after_restart;
            d->idle_reqs += s->idle_reqs;
            if (s->slow_min && (!d->slow_min || s->slow_min < d->slow_min)) d->slow_min = s->slow_min;
            if (s->slow_max > d->slow_max) d->slow_max = s->slow_max;
            if (s->gap_ok_max > d->gap_ok_max) d->gap_ok_max = s->gap_ok_max;
            for (int k = 0; k < NERR; k++) d->err[k] += s->err[k];
        }
}
static unsigned long long mode_errors(int m)
{
    unsigned long long e = 0;
    for (int k = 0; k < NERR; k++) if (k != E_CLIENT_CAUSED) e += tot[m].err[k];
    return e;
}

/* main's side of the soak: the restart, progress, RSS */
static void soak_phase(void)
{
    int tg[NMODES];
    split_loops(opt_conns - opt_slowloris, tg);
    fprintf(stderr, "soak: soak phase %d s over %d client threads: raw %d, pg %d, file %d keep-alive loops + %d slowloris\n",
            opt_seconds, opt_threads, tg[M_RAW], tg[M_PG], tg[M_FILE], opt_slowloris);
    soak_t0 = now_ms();
    soak_end = soak_t0 + (long long)opt_seconds * 1000;
    long long mid = soak_t0 + (long long)opt_seconds * 500;
    long long next_report = soak_t0 + 5000;
    int restarted = !opt_restart_cmd || !srv[M_PG].on;
    meet();                       /* S */
    while (now_ms() < soak_end) {
        usleep(100000);
        long long t = now_ms();
        sample_rss();
        restart_poll(t);
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
            tsum();
            unsigned long long e = 0, cc = 0;
            for (int m = 0; m < NMODES; m++) { e += mode_errors(m); cc += tot[m].err[E_CLIENT_CAUSED]; }
            fprintf(stderr, "soak: t=%3.0fs ok raw %llu pg %llu file %llu  503 %llu  resets %llu  slowloris closed %llu  errors %llu  client-caused %llu\n",
                    (t - T0) / 1000.0, tot[M_RAW].ok, tot[M_PG].ok, tot[M_FILE].ok, tot[M_PG].inj_503,
                    tot[M_RAW].inj_reset + tot[M_PG].inj_reset + tot[M_FILE].inj_reset,
                    tot[M_RAW].inj_slow_closed + tot[M_PG].inj_slow_closed + tot[M_FILE].inj_slow_closed, e, cc);
        }
    }
    while (restart_pid > 0) { restart_poll(now_ms()); usleep(50000); }
    meet();                       /* E */
    meet();                       /* F */
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
        else if (OPT("--threads")) opt_threads = atoi(v);
        else { fprintf(stderr, "soak: unknown or incomplete option '%s' (see bench/soak.c)\n", a); return 2; }
    }
    if (opt_conns < 1 || opt_seconds < 1 || opt_sources < 1 || opt_sources > 250 ||
        opt_slowloris < 0 || opt_slowloris >= opt_conns || opt_idle_conns < 0 ||
        opt_threads < 1 || opt_threads > 64 || opt_conns < 2 * opt_threads) {
        fprintf(stderr, "soak: bad numbers\n");
        return 2;
    }
    if (!srv[M_RAW].on && !srv[M_PG].on && !srv[M_FILE].on) {
        fprintf(stderr, "soak: no server given (--raw/--pg/--file PORT:PID)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int nmax = (opt_conns > opt_idle_conns ? opt_conns : opt_idle_conns) + 64 * opt_threads;
    struct rlimit rl = {(rlim_t)nmax + 1024, (rlim_t)nmax + 1024};
    struct rlimit cur;
    getrlimit(RLIMIT_NOFILE, &cur);
    if (cur.rlim_cur < rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fprintf(stderr, "soak: cannot raise RLIMIT_NOFILE to %lu: %s (run as root or raise the hard limit)\n",
                (unsigned long)rl.rlim_cur, strerror(errno));
        return 2;
    }
    for (int f = 0; f < NFILES; f++) {
        expect[f] = malloc(files[f].size);
        if (!expect[f]) { perror("soak"); return 2; }
        for (size_t i = 0; i < files[f].size; i++) expect[f][i] = pattern(files[f].size, i);
    }
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
    pthread_barrier_init(&bar, NULL, (unsigned)opt_threads + 1);
    for (int i = 0; i < opt_threads; i++) {
        struct worker *w = &workers[i];
        w->id = i;
        /* shares: the first threads take the remainders */
        w->conns = opt_conns / opt_threads + (i < opt_conns % opt_threads);
        w->slowloris = opt_slowloris / opt_threads + (i < opt_slowloris % opt_threads);
        w->idle_conns = opt_idle_conns / opt_threads + (i < opt_idle_conns % opt_threads);
        int rc = pthread_create(&w->th, NULL, worker_main, w);
        if (rc) { fprintf(stderr, "soak: pthread_create: %s\n", strerror(rc)); return 2; }
    }
    /* thread_st[] is set by each worker before its first barrier */
    if (opt_idle_conns)
        for (int m = 0; m < NMODES; m++) if (srv[m].on) idle_phase(m);
    soak_phase();
    for (int i = 0; i < opt_threads; i++) pthread_join(workers[i].th, NULL);
    tsum();
    for (int i = 0; i < opt_threads; i++)
        if (thread_first_ok_after[i] >= 0 && (first_ok_after < 0 || thread_first_ok_after[i] < first_ok_after))
            first_ok_after = thread_first_ok_after[i];
    memcpy(st, tot, sizeof st);   /* main's own st[] is unused until here: the totals */
    if (srv[M_PG].on && opt_restart_cmd && st[M_PG].ok_after_restart == 0)
        error_at(M_PG, E_PG_NOT_RECOVERED, "no 200 later than 5 s after the restart finished");
    long long tmax = 0, tover = 0, tturns = 0;
    for (int i = 0; i < opt_threads; i++) {
        if (thread_turn_max[i] > tmax) tmax = thread_turn_max[i];
        tover += thread_turns_over_1s[i];
        tturns += thread_turns[i];
    }
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
    memcpy(tot, st, sizeof tot);
    unsigned long long errors = 0;
    for (int m = 0; m < NMODES; m++) errors += mode_errors(m);
    if (errors) bad = 1;
    /* too many client-caused closes: the client could not judge the server */
    int too_slow = 0;
    for (int m = 0; m < NMODES; m++)
        if (srv[m].on && st[m].err[E_CLIENT_CAUSED] * 1000 > st[m].ok + st[m].idle_reqs) too_slow = bad = 1;

    /* ---- report ---- */
    char *rep = NULL;
    size_t replen = 0;
    FILE *o = open_memstream(&rep, &replen);
    fprintf(o, "| mode | requests OK | req/s | MiB of bodies | injected: resets | injected: slowloris closed | injected: 503 during restart | client-caused closes (not errors) | largest client lag on an OK answer | errors |\n");
    fprintf(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int m = 0; m < NMODES; m++) {
        if (!srv[m].on) continue;
        unsigned long long e = mode_errors(m);
        char c503[32] = "-";
        if (m == M_PG) snprintf(c503, sizeof c503, "%llu", st[m].inj_503);
        fprintf(o, "| %s | %llu | %.0f | %.1f | %llu | %llu | %s | %llu | %lld ms | **%llu** |\n", mode_name[m], st[m].ok,
                (double)st[m].ok / opt_seconds, st[m].bytes / 1048576.0, st[m].inj_reset, st[m].inj_slow_closed,
                c503, st[m].err[E_CLIENT_CAUSED], st[m].gap_ok_max, e);
    }
    fprintf(o, "\nClient: %d threads; longest loop turn %lld ms, turns of 1 s or more %lld of %lld. "
               "A close by the server after the client itself left the connection idle >= IDLE_TIMEOUT_MS is "
               "client-caused (reported above, not an error; more than 1 per 1000 answers of a mode fails the soak)%s.\n",
            opt_threads, tmax, tover, tturns, too_slow ? ": **too many: the client was too slow to judge the servers**" : "");
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
                    if (st[m].err[k] && k != E_CLIENT_CAUSED) fprintf(f, "- %s: %s: %llu\n", mode_name[m], err_name[k], st[m].err[k]);
        }
        fprintf(f, "\nResult: **%s**\n", bad ? "FAIL" : "PASS (0 errors, fds back to baseline, servers alive)");
    }
    if (out) fclose(out);
    free(rep);
    return bad ? 1 : 0;
}
