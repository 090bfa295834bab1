/* test_resp_diff.c — suite `resp_diff`: the differential test. Every
 * script in tests/data/resp/ (*.txt) (format: tests/data/resp/README.md) is
 * sent whole, pipelined on one connection, to a real redis-server and to
 * build/ioxide-resp (REACTORS=2: keys on both reactors); the replies must
 * be equal byte for byte — errors, protocol errors and the close
 * included. A mismatch prints both answers from the first differing byte. */
#include "iox_test.h"
#include "resp_util.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct ru_proc redis, ours;
static int up;

static int diff_init(void)
{
    const char *rargs[] = {"--proto-max-bulk-len", "1mb", NULL};
    const char *env[] = {"REACTORS=2", "RESP_MAX_BULK=1048576", NULL};
    if (ru_start_redis(&redis, rargs) < 0) return -1;
    if (ru_start_resp(&ours, env) < 0) { ru_stop(&redis); return -1; }
    up = 1;
    return 0;
}

static int diff_clean(void)
{
    if (!up) return 0;
    int a = ru_stop(&ours), b = ru_stop(&redis);
    up = 0;
    /* ioxide-resp must exit 0 on SIGTERM (and clean under ASan). */
    return a == 0 && b == 0 ? 0 : -1;
}

/* The bytes a script sends. */
static char *load_script(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *out = NULL;
    size_t len = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t r;
    while ((r = getline(&line, &cap, f)) >= 0) {
        while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r')) line[--r] = 0;
        if (r == 0 || line[0] == '#') continue;
        int raw = strncmp(line, "raw:", 4) == 0;
        size_t ul;
        char *u = ru_unescape(line + (raw ? 4 : 0), (size_t)r - (raw ? 4 : 0), &ul);
        out = realloc(out, len + ul + 3);
        memcpy(out + len, u, ul);
        len += ul;
        if (!raw) { memcpy(out + len, "\r\n", 2); len += 2; }
        free(u);
    }
    free(line);
    fclose(f);
    *n = len;
    return out;
}

static int run_script(const char *path)
{
    size_t n;
    char *req = load_script(path, &n);
    if (!req) { fprintf(stderr, "\n  %s: cannot read\n", path); return -1; }
    char *a, *b;
    size_t al, bl;
    int ac, bc;
    int ra = ru_exchange(redis.port, req, n, &a, &al, &ac);
    int rb = ru_exchange(ours.port, req, n, &b, &bl, &bc);
    free(req);
    int bad = 0;
    if (ra < 0 || rb < 0) {
        fprintf(stderr, "\n  %s: exchange failed (redis %d, ioxide-resp %d)\n", path, ra, rb);
        bad = 1;
    } else if (al != bl || memcmp(a, b, al) != 0 || ac != bc) {
        size_t i = 0;
        while (i < al && i < bl && a[i] == b[i]) i++;
        size_t from = i > 60 ? i - 60 : 0;
        fprintf(stderr, "\n  %s: answers differ at byte %zu (closed: redis %d, ioxide-resp %d)\n", path, i, ac, bc);
        fprintf(stderr, "    redis-server: ...%s\n", ru_show(a + from, al - from > 300 ? 300 : al - from));
        fprintf(stderr, "    ioxide-resp:  ...%s\n", ru_show(b + from, bl - from > 300 ? 300 : bl - from));
        bad = 1;
    } else if (!ac) {
        fprintf(stderr, "\n  %s: neither server closed: the script must end with QUIT or an error\n", path);
        bad = 1;
    }
    free(a);
    free(b);
    return bad ? -1 : 0;
}

IOX_TEST(resp_diff, scripts_answer_like_redis_server)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tests/data/resp", iox_test_src_dir());
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    char *names[128];
    unsigned k = 0;
    struct dirent *e;
    while ((e = readdir(d)) && k < 128) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".txt") == 0) names[k++] = strdup(e->d_name);
    }
    closedir(d);
    CU_ASSERT(k >= 5);
    unsigned failed = 0;
    for (unsigned i = 0; i < k; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (run_script(p) < 0) failed++;
        free(names[i]);
    }
    CU_ASSERT_EQUAL(failed, 0);
}

/* Lines over redis-server's 64 KiB limits, made here rather than kept in a
 * script: an inline request, a multibulk count and a bulk length that never
 * end. */
IOX_TEST(resp_diff, overlong_lines_answer_like_redis_server)
{
    static const char *const heads[] = {"", "*", "*1\r\n$"};
    for (unsigned i = 0; i < 3; i++) {
        size_t n = 70000, h = strlen(heads[i]);
        char *req = malloc(h + n);
        memcpy(req, heads[i], h);
        memset(req + h, i ? '7' : 'a', n);
        char *a, *b;
        size_t al, bl;
        int ac, bc;
        CU_ASSERT_EQUAL(ru_exchange(redis.port, req, h + n, &a, &al, &ac), 0);
        CU_ASSERT_EQUAL(ru_exchange(ours.port, req, h + n, &b, &bl, &bc), 0);
        int same = a && b && al == bl && memcmp(a, b, al) == 0 && ac == bc && ac;
        CU_ASSERT(same);
        if (!same) fprintf(stderr, "\n  '%s' + 70000 bytes: redis-server %s (closed %d), ioxide-resp %s (closed %d)\n", heads[i],
                           a ? ru_show(a, al) : "?", ac, b ? ru_show(b, bl) : "?", bc);
        free(a);
        free(b);
        free(req);
    }
}

/* A request cut at every byte arrives whole: sent one byte per send, the
 * command script answers the same as sent at once. */
IOX_TEST(resp_diff, one_byte_at_a_time)
{
    static const char req[] = "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$5\r\nhello\r\nGET x\r\nECHO \"a\\x41\"\r\n"
                              "*2\r\n$4\r\nECHO\r\n$0\r\n\r\nQUIT\r\n";
    static const char want[] = "+OK\r\n$5\r\nhello\r\n$2\r\naA\r\n$0\r\n\r\n+OK\r\n";
    int fd = ru_connect(ours.port);
    CU_ASSERT_FATAL(fd >= 0);
    for (size_t i = 0; i < sizeof req - 1; i++) {
        CU_ASSERT_EQUAL_FATAL(send(fd, req + i, 1, MSG_NOSIGNAL), 1);
        usleep(200);
    }
    char *out = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(ru_read_replies(fd, 5, &out, &len), 0);
    CU_ASSERT_EQUAL(len, sizeof want - 1);
    int same = out && len == sizeof want - 1 && memcmp(out, want, len) == 0;
    CU_ASSERT(same);
    if (!same) fprintf(stderr, "\n  got %s\n", out ? ru_show(out, len) : "(nothing)");
    free(out);
    close(fd);
}

IOX_SUITE(resp_diff, diff_init, diff_clean);
