/* http_client.c — blocking HTTP/1.1 test client and playground process
 * helper. See http_client.h. */
#include "http_client.h"
#include "iox_test.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int hc_under_valgrind(void)
{
    const char *v = getenv("IOX_UNDER_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

int hc_slow(int ms)
{
    static int scale;
    if (!scale) {
        const char *v = getenv("IOX_TIMEOUT_SCALE");
        scale = v && atoi(v) > 0 ? atoi(v) : hc_under_valgrind() ? 20 : 1;
    }
    return ms * scale;
}

long long hc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *hc_strerror(int rc)
{
    switch (rc) {
    case HC_OK: return "ok";
    case HC_EOF: return "connection closed before a response";
    case HC_TRUNCATED: return "connection closed in the middle of a response";
    case HC_TIMEOUT: return "timed out waiting for a response";
    case HC_MALFORMED: return "malformed response";
    case HC_IOERR: return "socket error";
    default: return "?";
    }
}

/* ---------------------------------------------------------------- parser */

#define HC_MAX_HEAD (64 * 1024)

/* Finds the CRLF ending the line at p; returns its offset, -1 when absent,
 * -2 when a bare LF ends the line. */
static long line_end(const char *p, size_t len)
{
    const char *lf = memchr(p, '\n', len);
    if (!lf) return -1;
    if (lf == p || lf[-1] != '\r') return -2;
    return (long)(lf - p - 1);
}

static int is_tchar(unsigned char ch)
{
    return isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Does the comma-separated list v contain token tok (case-insensitive)? */
static int has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *s = p;
        while (*p && *p != ',') p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, tok, tl) == 0) return 1;
    }
    return 0;
}

void hc_response_free(struct hc_response *r)
{
    if (!r) return;
    for (unsigned i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->body);
    memset(r, 0, sizeof *r);
}

const char *hc_header(const struct hc_response *r, const char *name)
{
    for (unsigned i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

unsigned hc_header_count(const struct hc_response *r, const char *name)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) n++;
    return n;
}

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

#define BAD(msg) do { if (why) *why = (msg); hc_response_free(out); return HC_MALFORMED; } while (0)
#define MORE() do { hc_response_free(out); return 0; } while (0)

/* Decodes a chunked body starting at p. Returns 1 (complete: *used, body
 * filled), 0 (need more), HC_MALFORMED. */
static int parse_chunked(const char *p, size_t len, char **body, size_t *blen, size_t *used,
                         const char **why)
{
    size_t off = 0, cap = 256, n = 0;
    char *b = malloc(cap);
    if (!b) abort();
    for (;;) {
        long le = line_end(p + off, len - off);
        if (le == -2) { free(b); if (why) *why = "bare LF in chunk size line"; return HC_MALFORMED; }
        if (le == -1) {
            free(b);
            if (len - off > 4096) { if (why) *why = "chunk size line too long"; return HC_MALFORMED; }
            return 0;
        }
        const char *s = p + off;
        unsigned long long sz = 0;
        size_t i = 0;
        for (; i < (size_t)le && isxdigit((unsigned char)s[i]); i++) {
            if (sz > (1ull << 40)) { free(b); if (why) *why = "chunk too large"; return HC_MALFORMED; }
            sz = sz * 16 + (unsigned)(isdigit((unsigned char)s[i]) ? s[i] - '0' : (tolower((unsigned char)s[i]) - 'a' + 10));
        }
        if (i == 0 || (i < (size_t)le && s[i] != ';' && s[i] != ' ' && s[i] != '\t')) {
            free(b); if (why) *why = "bad chunk size"; return HC_MALFORMED;
        }
        off += (size_t)le + 2;
        if (sz == 0) {
            /* trailers until an empty line */
            for (;;) {
                long te = line_end(p + off, len - off);
                if (te == -2) { free(b); if (why) *why = "bare LF in trailer"; return HC_MALFORMED; }
                if (te == -1) { free(b); return 0; }
                off += (size_t)te + 2;
                if (te == 0) break;
            }
            b[n] = 0;
            *body = b;
            *blen = n;
            *used = off;
            return 1;
        }
        if (len - off < sz + 2) { free(b); return 0; }
        if (p[off + sz] != '\r' || p[off + sz + 1] != '\n') {
            free(b); if (why) *why = "chunk data not followed by CRLF"; return HC_MALFORMED;
        }
        while (n + sz + 1 > cap) cap *= 2;
        b = realloc(b, cap);
        if (!b) abort();
        memcpy(b + n, p + off, sz);
        n += sz;
        off += sz + 2;
    }
}

int hc_parse_response(const char *buf, size_t len, int head, int eof,
                      struct hc_response *out, size_t *consumed, const char **why)
{
    memset(out, 0, sizeof *out);
    out->content_length = -1;
    if (why) *why = NULL;
    size_t off = 0;
    /* status line */
    long le = line_end(buf, len);
    if (le == -2) BAD("bare LF after the status line");
    if (le == -1) {
        if (len > HC_MAX_HEAD) BAD("status line too long");
        if (len >= 5 && memcmp(buf, "HTTP/", 5) != 0) BAD("does not start with HTTP/");
        MORE();
    }
    if (le < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)buf[7]) || buf[8] != ' ' ||
        !isdigit((unsigned char)buf[9]) || !isdigit((unsigned char)buf[10]) ||
        !isdigit((unsigned char)buf[11]) || (le > 12 && buf[12] != ' '))
        BAD("bad status line");
    out->minor = buf[7] - '0';
    out->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (le > 13) {
        size_t rl = (size_t)le - 13;
        if (rl >= sizeof out->reason) rl = sizeof out->reason - 1;
        memcpy(out->reason, buf + 13, rl);
        out->reason[rl] = 0;
    }
    off = (size_t)le + 2;
    /* header fields */
    for (;;) {
        le = line_end(buf + off, len - off);
        if (le == -2) BAD("bare LF in the header block");
        if (le == -1) {
            if (len > HC_MAX_HEAD) BAD("header block too long");
            MORE();
        }
        const char *s = buf + off;
        off += (size_t)le + 2;
        if (le == 0) break;
        if (s[0] == ' ' || s[0] == '\t') BAD("obsolete line folding");
        const char *colon = memchr(s, ':', (size_t)le);
        if (!colon || colon == s) BAD("header line without a name");
        for (const char *q = s; q < colon; q++)
            if (!is_tchar((unsigned char)*q)) BAD("bad character in a header name");
        const char *v = colon + 1, *ve = s + le;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        if (out->nheaders == HC_MAX_HEADERS) BAD("too many header fields");
        struct hc_header *h = &out->headers[out->nheaders++];
        h->name = dupn(s, (size_t)(colon - s));
        h->value = dupn(v, (size_t)(ve - v));
        if (strcasecmp(h->name, "Content-Length") == 0) {
            char *end;
            errno = 0;
            long long cl = strtoll(h->value, &end, 10);
            if (errno || *end || !h->value[0] || cl < 0 || !isdigit((unsigned char)h->value[0]))
                BAD("bad Content-Length");
            if (out->content_length >= 0 && out->content_length != cl) BAD("conflicting Content-Length");
            out->content_length = cl;
        } else if (strcasecmp(h->name, "Transfer-Encoding") == 0) {
            if (has_token(h->value, "chunked")) out->chunked = 1;
        } else if (strcasecmp(h->name, "Connection") == 0) {
            if (has_token(h->value, "close")) out->conn_close = 1;
            if (has_token(h->value, "keep-alive")) out->conn_keep_alive = 1;
        }
    }
    if (out->chunked && out->content_length >= 0) BAD("Content-Length with Transfer-Encoding");
    /* body */
    int bodyless = head || (out->status >= 100 && out->status < 200) || out->status == 204 ||
                   out->status == 304;
    if (bodyless) {
        out->body = dupn("", 0);
    } else if (out->chunked) {
        size_t used = 0;
        int r = parse_chunked(buf + off, len - off, &out->body, &out->body_len, &used, why);
        if (r < 0) { hc_response_free(out); return r; }
        if (r == 0) MORE();
        off += used;
    } else if (out->content_length >= 0) {
        if (len - off < (unsigned long long)out->content_length) MORE();
        out->body = dupn(buf + off, (size_t)out->content_length);
        out->body_len = (size_t)out->content_length;
        off += (size_t)out->content_length;
    } else {
        if (!eof) MORE();
        out->until_close = 1;
        out->body = dupn(buf + off, len - off);
        out->body_len = len - off;
        off = len;
    }
    out->wire_len = off;
    if (consumed) *consumed = off;
    return 1;
}

/* ------------------------------------------------------------ connections */

void hc_set_timeout(struct hc_conn *c, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int hc_connect(struct hc_conn *c, uint16_t port, int timeout_ms)
{
    return hc_connect_ex(c, port, timeout_ms, 0, 0);
}

int hc_connect_ex(struct hc_conn *c, uint16_t port, int timeout_ms, int rcvbuf, int sndbuf)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (sndbuf) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (errno != EINPROGRESS) { int e = errno; close(fd); return -e; }
        struct pollfd pfd = {fd, POLLOUT, 0};
        int r = poll(&pfd, 1, timeout_ms);
        if (r <= 0) { close(fd); return r == 0 ? -ETIMEDOUT : -errno; }
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) { close(fd); return -err; }
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    hc_set_timeout(c, hc_slow(HC_DEFAULT_TIMEOUT_MS));
    return 0;
}

int hc_send(struct hc_conn *c, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            c->err = errno;
            return -errno;   /* EAGAIN/EWOULDBLOCK: SO_SNDTIMEO expired */
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int hc_send_str(struct hc_conn *c, const char *s) { return hc_send(c, s, strlen(s)); }

/* Reads more bytes into the buffer. 1 data, 0 EOF, HC_TIMEOUT/HC_IOERR. */
static int fill(struct hc_conn *c)
{
    if (c->off && c->off == c->len) c->off = c->len = 0;
    if (c->off > c->cap / 2) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->cap - c->len < 16384) {
        c->cap = c->cap ? c->cap * 2 : 65536;
        c->buf = realloc(c->buf, c->cap);
        if (!c->buf) abort();
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n > 0) { c->len += (size_t)n; return 1; }
        if (n == 0) { c->eof = 1; return 0; }
        if (errno == EINTR) continue;
        c->err = errno;
        return errno == EAGAIN || errno == EWOULDBLOCK ? HC_TIMEOUT : HC_IOERR;
    }
}

int hc_read_response(struct hc_conn *c, struct hc_response *out, int head)
{
    memset(out, 0, sizeof *out);
    for (;;) {
        size_t used = 0;
        int r = hc_parse_response(c->buf ? c->buf + c->off : "", c->len - c->off, head, c->eof, out,
                                  &used, &c->why);
        if (r == 1) { c->off += used; return HC_OK; }
        if (r < 0) return r;
        if (c->eof) return c->len == c->off ? HC_EOF : HC_TRUNCATED;
        int f = fill(c);
        if (f < 0) return f;
    }
}

int hc_wait_eof(struct hc_conn *c, int timeout_ms)
{
    if (c->len > c->off) return 2;
    if (c->eof) return 1;
    long long deadline = hc_now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - hc_now_ms();
        if (left <= 0) return 0;
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) return 0;
        char b[256];
        ssize_t n = recv(c->fd, b, sizeof b, MSG_DONTWAIT);
        if (n == 0) { c->eof = 1; return 1; }
        if (n > 0) {
            if (c->cap - c->len < (size_t)n) {
                c->cap = c->cap ? c->cap * 2 : 65536;
                c->buf = realloc(c->buf, c->cap);
                if (!c->buf) abort();
            }
            memcpy(c->buf + c->len, b, (size_t)n);
            c->len += (size_t)n;
            return 2;
        }
        if (errno == EINTR || errno == EAGAIN) continue;
        c->err = errno;
        return -errno;
    }
}

void hc_close(struct hc_conn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->off = c->len = c->cap = 0;
}

void hc_reset(struct hc_conn *c)
{
    if (c->fd >= 0) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    hc_close(c);
}

int hc_roundtrip(struct hc_conn *c, const char *req, struct hc_response *out, int head)
{
    memset(out, 0, sizeof *out);
    int r = hc_send_str(c, req);
    if (r < 0) return HC_IOERR;
    return hc_read_response(c, out, head);
}

/* ---------------------------------------------------------------- servers */

uint16_t hc_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

const char *hc_playground_path(void)
{
    static char path[PATH_MAX];
    if (!path[0]) snprintf(path, sizeof path, "%s/playground", iox_test_bin_dir());
    return path;
}

static int env_has(const char *const *env, const char *key)
{
    size_t kl = strlen(key);
    for (const char *const *e = env; e && *e; e++)
        if (strncmp(*e, key, kl) == 0 && (*e)[kl] == '=') return 1;
    return 0;
}

int hc_server_spawn(struct hc_server *s, const char *const *env, uint16_t port)
{
    memset(s, 0, sizeof *s);
    s->port = port;
    snprintf(s->stderr_path, sizeof s->stderr_path, "/tmp/ioxide-itest-XXXXXX");
    int efd = mkostemp(s->stderr_path, O_CLOEXEC);
    if (efd < 0) { s->stderr_path[0] = 0; return -errno; }
    const char *bin = hc_playground_path();
    if (access(bin, X_OK) != 0) {
        int e = errno;
        fprintf(stderr, "hc_server_spawn: %s: %s\n", bin, strerror(e));
        close(efd);
        return -e;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) { int e = errno; close(efd); return -e; }
    if (pid == 0) {
        /* A test runner that dies must not leave servers behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) { dup2(nul, 0); dup2(nul, 1); }
        dup2(efd, 2);
        char pbuf[16];
        snprintf(pbuf, sizeof pbuf, "%u", (unsigned)port);
        setenv("PORT", pbuf, 1);
        if (!env_has(env, "HOST")) setenv("HOST", "127.0.0.1", 1);
        if (!env_has(env, "IOX_PIN")) setenv("IOX_PIN", "0", 1);
        for (const char *const *e = env; e && *e; e++) putenv((char *)*e);
        /* IOX_PLAYGROUND_WRAPPER (opt-in, e.g. "valgrind --error-exitcode=99
         * ..."): the server runs as `$WRAPPER <playground>` through /bin/sh;
         * `exec` keeps the pid ours, so signals and waitpid still reach the
         * server itself. */
        const char *wrap = getenv("IOX_PLAYGROUND_WRAPPER");
        if (wrap && *wrap) {
            char cmd[4096];
            snprintf(cmd, sizeof cmd, "exec %s \"$0\"", wrap);
            execl("/bin/sh", "sh", "-c", cmd, bin, (char *)NULL);
            dprintf(2, "exec /bin/sh: %s\n", strerror(errno));
            _exit(127);
        }
        execl(bin, bin, (char *)NULL);
        dprintf(2, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(efd);
    s->pid = pid;
    return 0;
}

static int reap(struct hc_server *s, int flags)
{
    if (s->exited) return 1;
    if (s->pid <= 0) return -ECHILD;
    int st;
    pid_t r;
    do r = waitpid(s->pid, &st, flags); while (r < 0 && errno == EINTR);
    if (r == s->pid) { s->exited = 1; s->wstatus = st; return 1; }
    if (r < 0) return -errno;
    return 0;
}

static int exit_code(const struct hc_server *s)
{
    if (WIFEXITED(s->wstatus)) return WEXITSTATUS(s->wstatus);
    if (WIFSIGNALED(s->wstatus)) return 128 + WTERMSIG(s->wstatus);
    return 255;
}

int hc_server_wait_ready(struct hc_server *s, int timeout_ms)
{
    long long deadline = hc_now_ms() + timeout_ms;
    while (hc_now_ms() < deadline) {
        if (reap(s, WNOHANG) != 0) return 0;
        struct hc_conn c;
        if (hc_connect(&c, s->port, 200) == 0) { hc_close(&c); return 1; }
        usleep(10000);
    }
    return -ETIMEDOUT;
}

int hc_server_wait_exit(struct hc_server *s, int timeout_ms)
{
    long long deadline = hc_now_ms() + timeout_ms;
    for (;;) {
        int r = reap(s, WNOHANG);
        if (r == 1) return exit_code(s);
        if (r < 0) return r;
        if (hc_now_ms() >= deadline) return -ETIMEDOUT;
        usleep(5000);
    }
}

int hc_server_start(struct hc_server *s, const char *const *env)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        uint16_t port = hc_free_port();
        if (!port) return -1;
        int r = hc_server_spawn(s, env, port);
        if (r < 0) {
            fprintf(stderr, "hc_server_start: spawn: %s\n", strerror(-r));
            return -1;
        }
        r = hc_server_wait_ready(s, hc_slow(5000));
        if (r == 1) return 0;
        char *err = hc_server_stderr(s);
        if (r == 0 && strstr(err, "in use")) {   /* the port was taken meanwhile */
            free(err);
            hc_server_free(s);
            continue;
        }
        fprintf(stderr, "hc_server_start: playground on port %u %s; its stderr:\n%s\n", port,
                r == 0 ? "exited" : "did not accept in time", err);
        free(err);
        hc_server_free(s);
        return -1;
    }
    return -1;
}

int hc_server_stop(struct hc_server *s, long *elapsed_ms)
{
    long long t0 = hc_now_ms();
    if (!s->exited && s->pid > 0) kill(s->pid, SIGTERM);
    int r = hc_server_wait_exit(s, hc_slow(6000));
    if (elapsed_ms) *elapsed_ms = (long)(hc_now_ms() - t0);
    if (r == -ETIMEDOUT) {
        kill(s->pid, SIGKILL);
        reap(s, 0);
        return -ETIMEDOUT;
    }
    return r;
}

char *hc_server_stderr(const struct hc_server *s)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    FILE *f = s->stderr_path[0] ? fopen(s->stderr_path, "re") : NULL;
    if (f) {
        char tmp[4096];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
            if (len + n + 1 > cap) {
                cap = (len + n + 1) * 2;
                buf = realloc(buf, cap);
                if (!buf) abort();
            }
            memcpy(buf + len, tmp, n);
            len += n;
        }
        fclose(f);
    }
    if (!buf) buf = calloc(1, 1);
    else buf[len] = 0;
    return buf;
}

void hc_server_free(struct hc_server *s)
{
    if (s->pid > 0 && !s->exited) {
        kill(s->pid, SIGKILL);
        reap(s, 0);
    }
    if (s->stderr_path[0]) unlink(s->stderr_path);
    s->stderr_path[0] = 0;
    s->pid = 0;
}

long hc_rss_kb(pid_t pid)
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

long hc_raise_nofile(long n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if ((long)rl.rlim_cur < n) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || (long)rl.rlim_max > n ? (rlim_t)n : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}
