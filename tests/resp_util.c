/* resp_util.c — see resp_util.h. */
#include "resp_util.h"
#include "http_client.h"
#include "iox_test.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

/* The RESP2 reply framing, for counting replies (a copy of the example's
 * rbuf.c resp_reply_len: tests do not link the example's objects). */
static long reply_len(const char *p, size_t n)
{
    if (!n) return 0;
    const char *cr = memchr(p, '\r', n);
    if (!cr || (size_t)(cr - p) + 1 >= n) return 0;
    long l = (long)(cr - p) + 2;
    long long v = 0;
    switch (p[0]) {
    case '+': case '-': case ':': return l;
    case '$': case '*':
        v = strtoll(p + 1, NULL, 10);
        if (p[0] == '$') {
            if (v < 0) return l;
            return (unsigned long long)n < (unsigned long long)l + (unsigned long long)v + 2 ? 0 : l + (long)v + 2;
        } else {
            size_t off = (size_t)l;
            for (long long i = 0; i < v; i++) {
                long e = reply_len(p + off, n - off);
                if (e <= 0) return e;
                off += (size_t)e;
            }
            return (long)off;
        }
    default: return -1;
    }
}

static int spawn(struct ru_proc *p, const char *bin, char *const argv[], const char *const *env)
{
    char log[128];
    snprintf(log, sizeof log, "%s/log", p->dir);
    int efd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (efd < 0) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) { close(efd); return -1; }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) dup2(nul, 0);
        dup2(efd, 1);
        dup2(efd, 2);
        for (const char *const *e = env; e && *e; e++) putenv((char *)*e);
        execvp(bin, argv);
        dprintf(2, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(efd);
    p->pid = pid;
    return 0;
}

static int wait_ready(struct ru_proc *p)
{
    for (int i = 0; i < hc_slow(100); i++) {
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) { p->pid = 0; return -1; }
        int fd = ru_connect(p->port);
        if (fd >= 0) { close(fd); return 0; }
        usleep(50 * 1000);
    }
    return -1;
}

static int mkdir_tmp(struct ru_proc *p)
{
    snprintf(p->dir, sizeof p->dir, "/tmp/iox-resp-XXXXXX");
    return mkdtemp(p->dir) ? 0 : -1;
}

int ru_start_resp(struct ru_proc *p, const char *const *env)
{
    memset(p, 0, sizeof *p);
    if (mkdir_tmp(p) < 0) return -1;
    for (int attempt = 0; attempt < 3; attempt++) {
        p->port = hc_free_port();
        char bin[512], port[32];
        snprintf(bin, sizeof bin, "%s/ioxide-resp", iox_test_bin_dir());
        snprintf(port, sizeof port, "PORT=%u", p->port);
        const char *full[32];
        size_t k = 0;
        full[k++] = port;   /* the child copies it before exec */
        full[k++] = "HOST=127.0.0.1";
        full[k++] = "IOX_PIN=0";
        for (const char *const *e = env; e && *e && k < 31; e++) full[k++] = *e;
        full[k] = NULL;
        char *argv[] = {bin, NULL};
        if (spawn(p, bin, argv, full) < 0) return -1;
        if (wait_ready(p) == 0) return 0;
        ru_dump_log(p);
        if (p->pid) { kill(p->pid, SIGKILL); waitpid(p->pid, NULL, 0); p->pid = 0; }
    }
    return -1;
}

int ru_start_redis(struct ru_proc *p, const char *const *args)
{
    memset(p, 0, sizeof *p);
    if (mkdir_tmp(p) < 0) return -1;
    for (int attempt = 0; attempt < 3; attempt++) {
        p->port = hc_free_port();
        char port[16];
        snprintf(port, sizeof port, "%u", p->port);
        char *argv[40] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", p->dir, "--daemonize", "no"};
        size_t k = 13;
        for (const char *const *a = args; a && *a && k < 39; a++) argv[k++] = (char *)*a;
        argv[k] = NULL;
        if (spawn(p, "redis-server", argv, NULL) < 0) return -1;
        if (wait_ready(p) == 0) return 0;
        ru_dump_log(p);
        if (p->pid) { kill(p->pid, SIGKILL); waitpid(p->pid, NULL, 0); p->pid = 0; }
    }
    return -1;
}

void ru_dump_log(const struct ru_proc *p)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "tail -40 '%s/log' >&2", p->dir);
    if (system(cmd) != 0) fprintf(stderr, "(no log in %s)\n", p->dir);
}

int ru_stop(struct ru_proc *p)
{
    int rc = -1;
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        int st = 0;
        for (int i = 0; i < hc_slow(200); i++) {
            pid_t r = waitpid(p->pid, &st, WNOHANG);
            if (r == p->pid) {
                rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                break;
            }
            usleep(50 * 1000);
        }
        if (rc < 0) { kill(p->pid, SIGKILL); waitpid(p->pid, NULL, 0); }
        p->pid = 0;
    }
    if (rc != 0) ru_dump_log(p);
    if (p->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", p->dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", p->dir);
        p->dir[0] = 0;
    }
    return rc;
}

int ru_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { int e = errno; close(fd); return -e; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = hc_slow(10000) / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static int append(char **out, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1) c *= 2;
        char *b = realloc(*out, c);
        if (!b) return -1;
        *out = b;
        *cap = c;
    }
    memcpy(*out + *len, p, n);
    *len += n;
    (*out)[*len] = 0;
    return 0;
}

int ru_exchange(uint16_t port, const void *data, size_t n, char **out, size_t *outlen, int *closed)
{
    *out = NULL;
    *outlen = 0;
    *closed = 0;
    size_t cap = 0;
    int fd = ru_connect(port);
    if (fd < 0) return fd;
    if (append(out, outlen, &cap, "", 0) < 0) { close(fd); return -ENOMEM; }
    /* Send while reading, so a big script cannot deadlock on full buffers. */
    size_t sent = 0;
    for (;;) {
        struct pollfd pf = {fd, POLLIN | (sent < n ? POLLOUT : 0), 0};
        int pr = poll(&pf, 1, hc_slow(10000));
        if (pr <= 0) { close(fd); return -ETIMEDOUT; }
        if (pf.revents & POLLOUT) {
            ssize_t w = send(fd, (const char *)data + sent, n - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN) { sent = n; }   /* closed on us: read what came */
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            char b[65536];
            ssize_t r = recv(fd, b, sizeof b, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno == ECONNRESET)) { *closed = 1; break; }
            if (r < 0 && errno != EAGAIN) { int e = errno; close(fd); return -e; }
            if (r > 0 && append(out, outlen, &cap, b, (size_t)r) < 0) { close(fd); return -ENOMEM; }
        }
    }
    close(fd);
    return 0;
}

int ru_read_replies(int fd, unsigned want, char **out, size_t *outlen)
{
    size_t cap = *out ? *outlen + 1 : 0, start = *outlen, off = start;
    unsigned got = 0;
    if (!*out && append(out, outlen, &cap, "", 0) < 0) return -1;
    while (got < want) {
        long l;
        while (got < want && (l = reply_len(*out + off, *outlen - off)) > 0) { off += (size_t)l; got++; }
        if (got == want) break;
        if (l < 0) return -1;
        char b[65536];
        ssize_t r = recv(fd, b, sizeof b, 0);
        if (r <= 0) return -1;
        if (append(out, outlen, &cap, b, (size_t)r) < 0) return -1;
    }
    return 0;
}

int ru_sh(char **out, const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0) { va_end(ap); return -1; }
    va_end(ap);
    int st;
    if (!out) {
        st = system(cmd);
    } else {
        FILE *f = popen(cmd, "r");
        if (!f) { free(cmd); return -1; }
        size_t len = 0, cap = 0;
        *out = NULL;
        append(out, &len, &cap, "", 0);
        char b[4096];
        size_t r;
        while ((r = fread(b, 1, sizeof b, f)) > 0) append(out, &len, &cap, b, r);
        st = pclose(f);
    }
    free(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *ru_unescape(const char *s, size_t n, size_t *outlen)
{
    char *o = malloc(n + 1);
    size_t k = 0;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[++i];
            if (c == 'r') o[k++] = '\r';
            else if (c == 'n') o[k++] = '\n';
            else if (c == 't') o[k++] = '\t';
            else if (c == '0') o[k++] = '\0';
            else if (c == 'x' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
                o[k++] = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
                i += 2;
            } else o[k++] = c;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = 0;
    *outlen = k;
    return o;
}

const char *ru_show(const char *p, size_t n)
{
    static char b[2048];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 8 < sizeof b; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r') { b[k++] = '\\'; b[k++] = 'r'; }
        else if (c == '\n') { b[k++] = '\\'; b[k++] = 'n'; }
        else if (c < 32 || c > 126) k += (size_t)snprintf(b + k, sizeof b - k, "\\x%02x", c);
        else b[k++] = (char)c;
    }
    b[k] = 0;
    return b;
}
