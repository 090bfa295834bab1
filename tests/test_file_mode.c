/* test_file_mode.c — file mode of the playground over real sockets.
 *
 * The suite builds a temp tree: <tmp>/secret.txt holds a marker OUTSIDE the
 * root, <tmp>/www is FILE_ROOT (files of 0, 1, threshold-1, threshold,
 * threshold+1 bytes and 16 MiB, an index, a subdirectory, symlinks pointing
 * out). It starts <bindir>/playground (the ASan one under build/asan) with
 * FILE_BAKE_MAX=65536 and checks bytes, heads, conditionals, ranges, the
 * traversal corpus, 200 slow readers with bounded server memory, SIGHUP, and
 * a clean SIGTERM exit. The small blocking client below (fmc_*) is local. */
#include "iox_test.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FM_T 65536u                    /* FILE_BAKE_MAX */
#define FM_BIG (16u << 20)
#define FM_MARKER "IOX-SECRET-MARKER-7f3a9c"

static char fm_tmp[256], fm_root[300];
static pid_t fm_pid = -1;
static int fm_port;

/* ---- files ---- */

static void fm_fill(unsigned char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; p[i] = (unsigned char)x; }
}

static int fm_write(const char *rel, const void *data, size_t n)
{
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/%s", fm_root, rel);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    if (n && fwrite(data, 1, n, f) != n) { fclose(f); return -1; }
    if (fclose(f) != 0) return -1;
    return rename(tmp, path);   /* a server fd on the old inode keeps the old bytes */
}

static unsigned char *fm_read_file(const char *rel, size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fm_root, rel);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)sz + 1);
    if (sz && fread(p, 1, (size_t)sz, f) != (size_t)sz) { free(p); fclose(f); return NULL; }
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static void fm_sha_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int l = 0;
    EVP_Digest(p, n, md, &l, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", md[i]);
}

/* ---- a small blocking HTTP/1.1 client ---- */

struct fmc_conn { int fd; char buf[1 << 16]; size_t len; };
struct fmc_resp { int status; char head[8192]; size_t head_len; unsigned char *body; size_t body_len; };

static int fmc_connect(struct fmc_conn *c, int rcvbuf)
{
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    if (rcvbuf) setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = {20, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fm_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) { close(c->fd); c->fd = -1; return -1; }
    return 0;
}

static int fmc_send(struct fmc_conn *c, const char *s)
{
    size_t n = strlen(s), off = 0;
    while (off < n) {
        ssize_t k = send(c->fd, s + off, n - off, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        off += (size_t)k;
    }
    return 0;
}

static int fmc_fill(struct fmc_conn *c)
{
    if (c->len == sizeof c->buf) return -1;
    ssize_t k = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (k <= 0) return -1;
    c->len += (size_t)k;
    return 0;
}

static void fmc_take(struct fmc_conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static int fmc_header(const struct fmc_resp *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = strstr(r->head, "\r\n");
    while (p && p[2] != '\r') {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *e = strstr(v, "\r\n");
            while (*v == ' ') v++;
            snprintf(out, cap, "%.*s", (int)(e - v), v);
            return 1;
        }
        p = strstr(p, "\r\n");
    }
    return 0;
}

/* Read one response; the body only when the head announces one (not for
 * HEAD, 304, 1xx, 204). Bytes after it stay in c->buf. */
static int fmc_read(struct fmc_conn *c, int is_head, struct fmc_resp *r)
{
    memset(r, 0, sizeof *r);
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (fmc_fill(c) < 0) return -1;
    r->head_len = (size_t)(end - c->buf) + 4;
    if (r->head_len >= sizeof r->head) return -1;
    memcpy(r->head, c->buf, r->head_len);
    r->head[r->head_len] = 0;
    fmc_take(c, r->head_len);
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1) return -1;
    char v[64];
    size_t cl = 0;
    if (fmc_header(r, "Content-Length", v, sizeof v)) cl = strtoull(v, NULL, 10);
    if (is_head || r->status == 304 || r->status == 204 || r->status < 200) cl = 0;
    r->body = malloc(cl + 1);
    while (r->body_len < cl) {
        if (!c->len && fmc_fill(c) < 0) return -1;
        size_t k = c->len < cl - r->body_len ? c->len : cl - r->body_len;
        memcpy(r->body + r->body_len, c->buf, k);
        r->body_len += k;
        fmc_take(c, k);
    }
    r->body[r->body_len] = 0;
    return 0;
}

/* One request on a fresh connection. extra: header lines with CRLFs or "". */
static int fmc_get(const char *method, const char *target, const char *extra, struct fmc_resp *r)
{
    static struct fmc_conn c;
    if (fmc_connect(&c, 0) < 0) return -1;
    char req[9000];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n", method, target, extra);
    int rc = fmc_send(&c, req) < 0 ? -1 : fmc_read(&c, strcmp(method, "HEAD") == 0, r);
    close(c.fd);
    return rc;
}

static void fmc_free(struct fmc_resp *r) { free(r->body); r->body = NULL; }

/* ---- the server ---- */

static int fm_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || getsockname(fd, (struct sockaddr *)&sa, &l) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static long fm_rss_kib(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)fm_pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

static int fm_count_fds(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)fm_pid);
    DIR *d = opendir(path);
    int n = 0;
    while (d && readdir(d)) n++;
    if (d) closedir(d);
    return n;
}

static int fm_init(void)
{
    snprintf(fm_tmp, sizeof fm_tmp, "/tmp/iox-file-XXXXXX");
    if (!mkdtemp(fm_tmp)) { perror("mkdtemp"); return -1; }
    snprintf(fm_root, sizeof fm_root, "%s/www", fm_tmp);
    char p[600];
    mkdir(fm_root, 0755);
    snprintf(p, sizeof p, "%s/sub", fm_root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/secret.txt", fm_tmp);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    fputs(FM_MARKER "\n", f);
    fclose(f);
    unsigned char *buf = malloc(FM_BIG);
    static const struct { const char *name; size_t size; } files[] = {
        {"empty.bin", 0}, {"one.bin", 1}, {"tm1.bin", FM_T - 1}, {"t.bin", FM_T},
        {"tp1.bin", FM_T + 1}, {"big.bin", FM_BIG}, {"hupbig.bin", 8u << 20},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        fm_fill(buf, files[i].size, (uint32_t)i + 1);
        if (fm_write(files[i].name, buf, files[i].size) < 0) { perror(files[i].name); free(buf); return -1; }
    }
    free(buf);
    fm_write("index.html", "<h1>root</h1>\n", 14);
    fm_write("sub/index.html", "<h1>sub</h1>\n", 13);
    fm_write("a.css", "b{}\n", 4);
    fm_write("hup.txt", "version-1\n", 10);
    fm_write(".hidden", "hidden\n", 7);
    snprintf(p, sizeof p, "%s/link.txt", fm_root);
    if (symlink("../secret.txt", p) < 0) return -1;
    snprintf(p, sizeof p, "%s/up", fm_root);
    if (symlink("..", p) < 0) return -1;
    snprintf(p, sizeof p, "%s/abs.txt", fm_root);
    if (symlink("/etc/passwd", p) < 0) return -1;

    fm_port = fm_free_port();
    char bin[512], log[300], asan[512];
    snprintf(bin, sizeof bin, "%s/playground", iox_test_bin_dir());
    snprintf(log, sizeof log, "%s/server.log", fm_tmp);
    const char *ao = getenv("ASAN_OPTIONS");
    /* ASan's quarantine would otherwise count in the RSS bound. */
    snprintf(asan, sizeof asan, "%s%squarantine_size_mb=8", ao ? ao : "", ao && *ao ? ":" : "");
    fm_pid = fork();
    if (fm_pid == 0) {
        char port[16];
        snprintf(port, sizeof port, "%d", fm_port);
        setenv("PLAYGROUND_MODE", "file", 1);
        setenv("PORT", port, 1);
        setenv("HOST", "127.0.0.1", 1);
        setenv("REACTORS", "2", 1);
        setenv("FILE_ROOT", fm_root, 1);
        setenv("FILE_BAKE_MAX", "65536", 1);
        setenv("ASAN_OPTIONS", asan, 1);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 2); dup2(fd, 1); }
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        struct fmc_conn c;
        if (fmc_connect(&c, 0) == 0) { close(c.fd); return 0; }
        int st;
        if (waitpid(fm_pid, &st, WNOHANG) == fm_pid) { fm_pid = -1; break; }
        usleep(50000);
    }
    fprintf(stderr, "file mode server did not start; see %s\n", log);
    return -1;
}

static int fm_clean(void)
{
    if (fm_pid > 0) { kill(fm_pid, SIGKILL); waitpid(fm_pid, NULL, 0); }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fm_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests ---- */

static void fm_check_file(const char *name, const char *ctype)
{
    size_t n;
    unsigned char *want = fm_read_file(name, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    char path[300], v[128], h1[65], h2[65];
    snprintf(path, sizeof path, "/%s", name);
    struct fmc_resp r;
    CU_ASSERT_EQUAL_FATAL(fmc_get("GET", path, "", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_len, n);
    CU_ASSERT(r.body_len == n && memcmp(r.body, want, n) == 0);
    fm_sha_hex(r.body, r.body_len, h1);
    fm_sha_hex(want, n, h2);
    CU_ASSERT_STRING_EQUAL(h1, h2);
    CU_ASSERT(fmc_header(&r, "Content-Type", v, sizeof v) && strcmp(v, ctype) == 0);
    CU_ASSERT(fmc_header(&r, "ETag", v, sizeof v) && v[0] == '"');
    CU_ASSERT(fmc_header(&r, "Last-Modified", v, sizeof v) && strlen(v) == 29);
    fmc_free(&r);
    free(want);
}

IOX_TEST(file_mode, exact_bytes)
{
    const char *bin = "application/octet-stream";
    fm_check_file("empty.bin", bin);
    fm_check_file("one.bin", bin);
    fm_check_file("tm1.bin", bin);
    fm_check_file("t.bin", bin);
    fm_check_file("tp1.bin", bin);
    fm_check_file("big.bin", bin);
    fm_check_file("index.html", "text/html; charset=utf-8");
    fm_check_file("a.css", "text/css; charset=utf-8");
}

IOX_TEST(file_mode, directories_and_missing)
{
    struct fmc_resp r;
    char v[128];
    CU_ASSERT_EQUAL_FATAL(fmc_get("GET", "/", "", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL((char *)r.body, "<h1>root</h1>\n");
    fmc_free(&r);
    CU_ASSERT_EQUAL_FATAL(fmc_get("GET", "/sub/?q=1", "", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL((char *)r.body, "<h1>sub</h1>\n");
    fmc_free(&r);
    CU_ASSERT_EQUAL_FATAL(fmc_get("GET", "/sub", "", &r), 0);
    CU_ASSERT_EQUAL(r.status, 301);
    CU_ASSERT(fmc_header(&r, "Location", v, sizeof v) && strcmp(v, "/sub/") == 0);
    fmc_free(&r);
    static const char *missing[] = {"/nope", "/sub/nope.txt", "/.hidden", "/link.txt", "/abs.txt",
                                    "/up/secret.txt", "/up/www/index.html", "/one.bin/", "/a.css/x"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(fmc_get("GET", missing[i], "", &r), 0);
        if (r.status != 404) fprintf(stderr, "\n  %s → %d\n", missing[i], r.status);
        CU_ASSERT_EQUAL(r.status, 404);
        fmc_free(&r);
    }
    CU_ASSERT_EQUAL_FATAL(fmc_get("POST", "/index.html", "Content-Length: 0\r\n", &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    CU_ASSERT(fmc_header(&r, "Allow", v, sizeof v) && strcmp(v, "GET, HEAD, OPTIONS") == 0);
    fmc_free(&r);
    CU_ASSERT_EQUAL_FATAL(fmc_get("DELETE", "/big.bin", "", &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    fmc_free(&r);
}

/* HEAD answers the GET's headers without a body: the next response on the
 * same connection must start right after the head. */
IOX_TEST(file_mode, head)
{
    static const char *names[] = {"/big.bin", "/t.bin", "/empty.bin", "/index.html"};
    for (size_t i = 0; i < 4; i++) {
        struct fmc_conn *c = malloc(sizeof *c);
        CU_ASSERT_EQUAL_FATAL(fmc_connect(c, 0), 0);
        char req[512];
        snprintf(req, sizeof req, "HEAD %s HTTP/1.1\r\nHost: t\r\n\r\nGET /one.bin HTTP/1.1\r\nHost: t\r\n\r\n", names[i]);
        CU_ASSERT_EQUAL(fmc_send(c, req), 0);
        struct fmc_resp h, g;
        CU_ASSERT_EQUAL_FATAL(fmc_read(c, 1, &h), 0);
        CU_ASSERT_EQUAL(h.status, 200);
        char v[64];
        size_t n;
        unsigned char *want = fm_read_file(names[i] + 1, &n);
        CU_ASSERT(fmc_header(&h, "Content-Length", v, sizeof v) && strtoull(v, NULL, 10) == n);
        CU_ASSERT_EQUAL_FATAL(fmc_read(c, 0, &g), 0);
        CU_ASSERT_EQUAL(g.status, 200);
        CU_ASSERT_EQUAL(g.body_len, 1);
        fmc_free(&h);
        fmc_free(&g);
        free(want);
        close(c->fd);
        free(c);
    }
}

IOX_TEST(file_mode, not_modified)
{
    struct fmc_resp r;
    char etag[128], lm[64], hdr[512];
    const char *paths[] = {"/index.html", "/big.bin"};
    for (int k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL_FATAL(fmc_get("HEAD", paths[k], "", &r), 0);
        CU_ASSERT_FATAL(fmc_header(&r, "ETag", etag, sizeof etag));
        CU_ASSERT_FATAL(fmc_header(&r, "Last-Modified", lm, sizeof lm));
        fmc_free(&r);
        struct { const char *fmt; int status; } cases[] = {
            {"If-None-Match: %s\r\n", 304},
            {"If-None-Match: W/%s\r\n", 304},
            {"If-None-Match: \"nope\", %s\r\n", 304},
            {"If-None-Match: \"nope\" , W/%s , \"x\"\r\n", 304},
            {"If-None-Match: *\r\n%.0s", 304},
            {"If-None-Match: \"nope\"\r\n%.0s", 200},
            {"If-Modified-Since: %s\r\n", 304},                       /* with lm */
            {"If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT\r\n%.0s", 200},
            {"If-Modified-Since: garbage\r\n%.0s", 200},
            {"If-None-Match: \"nope\"\r\nIf-Modified-Since: %s\r\n", 200},   /* INM wins */
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            snprintf(hdr, sizeof hdr, cases[i].fmt, strstr(cases[i].fmt, "Modified") && strstr(cases[i].fmt, "%s") ? lm : etag);
            CU_ASSERT_EQUAL_FATAL(fmc_get("GET", paths[k], hdr, &r), 0);
            if (r.status != cases[i].status) fprintf(stderr, "\n  %s %s→ %d\n", paths[k], hdr, r.status);
            CU_ASSERT_EQUAL(r.status, cases[i].status);
            if (r.status == 304) {
                char v[128];
                CU_ASSERT_EQUAL(r.body_len, 0);
                CU_ASSERT(fmc_header(&r, "ETag", v, sizeof v) && strcmp(v, etag) == 0);
                CU_ASSERT_FALSE(fmc_header(&r, "Content-Length", v, sizeof v));
            }
            fmc_free(&r);
        }
    }
}

static void fm_range(const char *name, const char *range, int status, uint64_t first, uint64_t last)
{
    size_t n;
    unsigned char *want = fm_read_file(name, &n);
    char path[300], hdr[300], v[128], cr[128];
    snprintf(path, sizeof path, "/%s", name);
    snprintf(hdr, sizeof hdr, "Range: %s\r\n", range);
    struct fmc_resp r;
    CU_ASSERT_EQUAL_FATAL(fmc_get("GET", path, hdr, &r), 0);
    if (r.status != status) fprintf(stderr, "\n  %s %s → %d, want %d\n", name, range, r.status, status);
    CU_ASSERT_EQUAL(r.status, status);
    if (status == 206) {
        snprintf(cr, sizeof cr, "bytes %llu-%llu/%zu", (unsigned long long)first, (unsigned long long)last, n);
        CU_ASSERT(fmc_header(&r, "Content-Range", v, sizeof v) && strcmp(v, cr) == 0);
        CU_ASSERT_EQUAL(r.body_len, last - first + 1);
        CU_ASSERT(r.body_len == last - first + 1 && memcmp(r.body, want + first, r.body_len) == 0);
    } else if (status == 416) {
        snprintf(cr, sizeof cr, "bytes */%zu", n);
        CU_ASSERT(fmc_header(&r, "Content-Range", v, sizeof v) && strcmp(v, cr) == 0);
    } else {
        CU_ASSERT_EQUAL(r.body_len, n);
        CU_ASSERT(r.body_len == n && memcmp(r.body, want, n) == 0);
    }
    fmc_free(&r);
    free(want);
}

IOX_TEST(file_mode, ranges)
{
    const char *names[] = {"t.bin", "big.bin"};
    for (int k = 0; k < 2; k++) {
        const char *f = names[k];
        uint64_t S = k ? FM_BIG : FM_T;
        char rg[64];
        fm_range(f, "bytes=0-0", 206, 0, 0);
        snprintf(rg, sizeof rg, "bytes=%llu-%llu", (unsigned long long)S - 1, (unsigned long long)S - 1);
        fm_range(f, rg, 206, S - 1, S - 1);
        fm_range(f, "bytes=-1", 206, S - 1, S - 1);
        fm_range(f, "bytes=-100", 206, S - 100, S - 1);
        fm_range(f, "bytes=-99999999", 206, 0, S - 1);
        fm_range(f, "bytes=100-", 206, 100, S - 1);
        fm_range(f, "bytes=100-99999999", 206, 100, S - 1);
        snprintf(rg, sizeof rg, "bytes=%llu-", (unsigned long long)S);
        fm_range(f, rg, 416, 0, 0);
        fm_range(f, "bytes=99999999999999999999999-", 416, 0, 0);
        fm_range(f, "bytes=-0", 416, 0, 0);
        fm_range(f, "bytes=0-1,5-6", 200, 0, 0);   /* several ranges: 200, whole */
        fm_range(f, "bytes=5-1", 200, 0, 0);       /* invalid: ignored */
        fm_range(f, "items=0-1", 200, 0, 0);
        fm_range(f, "bytes=x-1", 200, 0, 0);
    }
    /* Across chunk boundaries of a streamed file (64 KiB chunks). */
    fm_range("big.bin", "bytes=65530-196620", 206, 65530, 196620);
    fm_range("big.bin", "bytes=1000-16777214", 206, 1000, FM_BIG - 2);
    fm_range("big.bin", "bytes=-70000", 206, FM_BIG - 70000, FM_BIG - 1);
    fm_range("tp1.bin", "bytes=65535-65536", 206, 65535, 65536);
    fm_range("empty.bin", "bytes=0-0", 416, 0, 0);
    fm_range("empty.bin", "bytes=-5", 416, 0, 0);
    /* If-Range with a different validator: the whole file. */
    struct fmc_resp r;
    CU_ASSERT_EQUAL_FATAL(fmc_get("GET", "/t.bin", "Range: bytes=0-0\r\nIf-Range: \"other\"\r\n", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_len, FM_T);
    fmc_free(&r);
}

/* Pipelined requests mixing baked, streamed and missing files come back in
 * order with the right bytes. */
IOX_TEST(file_mode, pipelined)
{
    struct fmc_conn *c = malloc(sizeof *c);
    CU_ASSERT_EQUAL_FATAL(fmc_connect(c, 0), 0);
    const char *seq[] = {"/one.bin", "/tp1.bin", "/nope", "/big.bin", "/t.bin", "/tp1.bin", "/empty.bin"};
    int codes[] = {200, 200, 404, 200, 200, 200, 200};
    char req[4096] = "";
    for (int i = 0; i < 7; i++) {
        char one[128];
        snprintf(one, sizeof one, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", seq[i]);
        strcat(req, one);
    }
    CU_ASSERT_EQUAL(fmc_send(c, req), 0);
    for (int i = 0; i < 7; i++) {
        struct fmc_resp r;
        CU_ASSERT_EQUAL_FATAL(fmc_read(c, 0, &r), 0);
        CU_ASSERT_EQUAL(r.status, codes[i]);
        if (codes[i] == 200) {
            size_t n;
            unsigned char *want = fm_read_file(seq[i] + 1, &n);
            CU_ASSERT(r.body_len == n && memcmp(r.body, want, n) == 0);
            free(want);
        }
        fmc_free(&r);
    }
    close(c->fd);
    free(c);
}

/* Raw targets sent as-is: every answer is 400 or 404 and no byte of the
 * marker outside the root ever comes back. */
IOX_TEST(file_mode, traversal_corpus)
{
    static const char *targets[] = {
        "/../secret.txt", "/..", "/../", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt", "/%2fsecret.txt", "//secret.txt", "//etc/passwd", "/..\\secret.txt",
        "/%c0%ae%c0%ae/secret.txt", "/%c0%ae%c0%ae%c0%afsecret.txt", "/secret.txt%00.html",
        "/index.html%00", "/a/b/../../../secret.txt", "/./../secret.txt", "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt", "/.%2e/secret.txt", "/%252e%252e/secret.txt",
        "/up/secret.txt", "/link.txt", "/abs.txt", "/sub/..%5c..%5csecret.txt", "/%", "/%zz",
        "/...", "/..../secret.txt", "/sub/./../../www/../secret.txt", "http://t/../secret.txt",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/....//....//secret.txt",
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        struct fmc_conn c;
        CU_ASSERT_EQUAL_FATAL(fmc_connect(&c, 0), 0);
        char req[600];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", targets[i]);
        fmc_send(&c, req);
        /* Everything until EOF: a status line and never the marker. */
        while (fmc_fill(&c) == 0) {}
        c.buf[c.len < sizeof c.buf ? c.len : sizeof c.buf - 1] = 0;
        int status = 0;
        sscanf(c.buf, "HTTP/1.1 %d", &status);
        if (status != 400 && status != 404) fprintf(stderr, "\n  %s → %d\n", targets[i], status);
        CU_ASSERT(status == 400 || status == 404);
        CU_ASSERT_PTR_NULL(memmem(c.buf, c.len, FM_MARKER, strlen(FM_MARKER)));
        CU_ASSERT_PTR_NULL(memmem(c.buf, c.len, "root:", 5));
        close(c.fd);
    }
    /* A very long path: 414 from the parser or 400/404 from us, never 200. */
    char *req = malloc(20000);
    strcpy(req, "GET ");
    for (int i = 0; i < 2000; i++) strcat(req, "/..");
    strcat(req, " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    struct fmc_conn c;
    CU_ASSERT_EQUAL_FATAL(fmc_connect(&c, 0), 0);
    fmc_send(&c, req);
    while (fmc_fill(&c) == 0) {}
    int status = 0;
    sscanf(c.buf, "HTTP/1.1 %d", &status);
    CU_ASSERT(status == 400 || status == 404 || status == 414);
    close(c.fd);
    free(req);
}

/* 200 readers of the 16 MiB file with tiny receive buffers read slowly for
 * a while: the server's memory stays bounded (one chunk per connection, not
 * the file), then all finish with the right bytes. */
#define FM_NSLOW 200
struct fm_slow { int fd; int head_done; size_t hlen; char head[1024]; uint64_t got; EVP_MD_CTX *md; };

static int fm_slow_feed(struct fm_slow *s, const char *p, size_t n)
{
    if (!s->head_done) {
        size_t k = n < sizeof s->head - 1 - s->hlen ? n : sizeof s->head - 1 - s->hlen;
        memcpy(s->head + s->hlen, p, k);
        s->hlen += k;
        s->head[s->hlen] = 0;
        char *e = strstr(s->head, "\r\n\r\n");
        if (!e) return k == n ? 0 : -1;
        size_t hl = (size_t)(e - s->head) + 4;
        size_t body_in_head = s->hlen - hl;
        s->head_done = 1;
        size_t consumed_of_p = k - body_in_head;
        p += consumed_of_p;
        n -= consumed_of_p;
    }
    EVP_DigestUpdate(s->md, p, n);
    s->got += n;
    return 0;
}

IOX_TEST(file_mode, slow_readers_bounded_memory)
{
    size_t n;
    unsigned char *want = fm_read_file("big.bin", &n);
    char hwant[65];
    fm_sha_hex(want, n, hwant);
    free(want);
    struct fm_slow *s = calloc(FM_NSLOW, sizeof *s);
    long rss0 = fm_rss_kib();
    for (int i = 0; i < FM_NSLOW; i++) {
        struct fmc_conn c;
        CU_ASSERT_EQUAL_FATAL(fmc_connect(&c, 2048), 0);
        s[i].fd = c.fd;
        s[i].md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(s[i].md, EVP_sha256(), NULL);
        CU_ASSERT_EQUAL(fmc_send(&c, "GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"), 0);
    }
    char buf[1 << 16];
    long peak = 0;
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < FM_NSLOW; i++) {
            ssize_t k = recv(s[i].fd, buf, 1024, MSG_DONTWAIT);
            if (k > 0) fm_slow_feed(&s[i], buf, (size_t)k);
        }
        usleep(250000);
        long rss = fm_rss_kib();
        if (rss > peak) peak = rss;
    }
    fprintf(stderr, "\n  server VmRSS: %ld KiB before, peak %ld KiB with %d slow readers of 16 MiB\n",
            rss0, peak, FM_NSLOW);
    CU_ASSERT(peak > 0 && peak < 200 * 1024);
    /* Now read everything. */
    int left = FM_NSLOW;
    struct pollfd *pf = calloc(FM_NSLOW, sizeof *pf);
    time_t start = time(NULL);
    while (left > 0 && time(NULL) - start < 120) {
        for (int i = 0; i < FM_NSLOW; i++) { pf[i].fd = s[i].fd; pf[i].events = POLLIN; pf[i].revents = 0; }
        if (poll(pf, FM_NSLOW, 1000) <= 0) continue;
        for (int i = 0; i < FM_NSLOW; i++) {
            if (s[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t k = recv(s[i].fd, buf, sizeof buf, MSG_DONTWAIT);
            if (k > 0) { fm_slow_feed(&s[i], buf, (size_t)k); continue; }
            if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            close(s[i].fd);
            s[i].fd = -1;
            left--;
        }
        long rss = fm_rss_kib();
        if (rss > peak) peak = rss;
    }
    CU_ASSERT_EQUAL(left, 0);
    CU_ASSERT(peak < 200 * 1024);
    int ok = 0;
    for (int i = 0; i < FM_NSLOW; i++) {
        unsigned char md[32];
        unsigned int l;
        char hex[65];
        EVP_DigestFinal_ex(s[i].md, md, &l);
        EVP_MD_CTX_free(s[i].md);
        for (int j = 0; j < 32; j++) sprintf(hex + 2 * j, "%02x", md[j]);
        if (s[i].head_done && strncmp(s[i].head, "HTTP/1.1 200", 12) == 0 && s[i].got == FM_BIG &&
            strcmp(hex, hwant) == 0)
            ok++;
        if (s[i].fd >= 0) close(s[i].fd);
    }
    fprintf(stderr, "  %d/%d complete with the right sha256; peak VmRSS %ld KiB\n", ok, FM_NSLOW, peak);
    CU_ASSERT_EQUAL(ok, FM_NSLOW);
    free(pf);
    free(s);
}

/* SIGHUP: a stream started before finishes with the old bytes; new requests
 * see the new files soon after; the old snapshot (and its fds) goes away
 * once the stream is done. */
IOX_TEST(file_mode, sighup_resnapshot)
{
    size_t n;
    unsigned char *old = fm_read_file("hupbig.bin", &n);
    char hold[65], hnew[65];
    fm_sha_hex(old, n, hold);
    free(old);
    int fds0 = fm_count_fds();

    struct fmc_conn *c = malloc(sizeof *c);
    CU_ASSERT_EQUAL_FATAL(fmc_connect(c, 2048), 0);
    CU_ASSERT_EQUAL(fmc_send(c, "GET /hupbig.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"), 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    struct fmc_resp r;
    /* Only the head and what is buffered: the stream is mid-file. */
    while (!memmem(c->buf, c->len, "\r\n\r\n", 4)) CU_ASSERT_FATAL(fmc_fill(c) == 0);
    char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
    CU_ASSERT_FATAL(strncmp(c->buf, "HTTP/1.1 200", 12) == 0);
    size_t hl = (size_t)(e - c->buf) + 4;
    uint64_t got = c->len - hl;
    EVP_DigestUpdate(md, c->buf + hl, got);
    c->len = 0;

    /* Change the files (new inodes: the server's open fd keeps the old). */
    unsigned char *nb = malloc(8u << 20);
    fm_fill(nb, 8u << 20, 99);
    fm_sha_hex(nb, 8u << 20, hnew);
    CU_ASSERT_EQUAL(fm_write("hupbig.bin", nb, 8u << 20), 0);
    free(nb);
    CU_ASSERT_EQUAL(fm_write("hup.txt", "version-2, longer\n", 18), 0);
    CU_ASSERT_EQUAL(fm_write("added.txt", "added\n", 6), 0);
    CU_ASSERT_EQUAL(kill(fm_pid, SIGHUP), 0);
    int seen = 0;
    for (int i = 0; i < 100 && !seen; i++) {
        CU_ASSERT_EQUAL_FATAL(fmc_get("GET", "/hup.txt", "", &r), 0);
        seen = r.status == 200 && strcmp((char *)r.body, "version-2, longer\n") == 0;
        fmc_free(&r);
        if (!seen) usleep(50000);
    }
    CU_ASSERT(seen);
    /* Every reactor serves the new snapshot (several connections spread
     * over both reactors by SO_REUSEPORT). */
    for (int i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL_FATAL(fmc_get("GET", "/added.txt", "", &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        fmc_free(&r);
    }
    CU_ASSERT_EQUAL_FATAL(fmc_get("GET", "/hupbig.bin", "", &r), 0);
    char h[65];
    fm_sha_hex(r.body, r.body_len, h);
    CU_ASSERT_STRING_EQUAL(h, hnew);
    fmc_free(&r);

    /* The old stream completes with the old bytes. */
    char buf[1 << 16];
    ssize_t k;
    while ((k = recv(c->fd, buf, sizeof buf, 0)) > 0) { EVP_DigestUpdate(md, buf, (size_t)k); got += (uint64_t)k; }
    unsigned char d[32];
    unsigned int l;
    EVP_DigestFinal_ex(md, d, &l);
    EVP_MD_CTX_free(md);
    for (int j = 0; j < 32; j++) sprintf(h + 2 * j, "%02x", d[j]);
    CU_ASSERT_EQUAL(got, 8u << 20);
    CU_ASSERT_STRING_EQUAL(h, hold);
    close(c->fd);
    free(c);
    /* Old snapshot freed: the process is back to its descriptor count. */
    int fds = 0;
    for (int i = 0; i < 40; i++) {
        fds = fm_count_fds();
        if (fds <= fds0) break;
        usleep(50000);
    }
    if (fds > fds0) fprintf(stderr, "\n  fds: %d before SIGHUP, %d after the old stream ended\n", fds0, fds);
    CU_ASSERT(fds <= fds0);
}

IOX_TEST(file_mode, sigterm_exits_cleanly)
{
    CU_ASSERT_EQUAL_FATAL(kill(fm_pid, SIGTERM), 0);
    int st = 0;
    for (int i = 0; i < 100; i++) {
        if (waitpid(fm_pid, &st, WNOHANG) == fm_pid) { fm_pid = -1; break; }
        usleep(100000);
    }
    CU_ASSERT_EQUAL(fm_pid, -1);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "tail -30 '%s/server.log' >&2", fm_tmp);
        if (system(cmd)) {}
    }
}

IOX_SUITE(file_mode, fm_init, fm_clean);
