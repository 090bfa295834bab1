/* test_playground_pg.c — build/playground in pg mode (the binary next to the
 * test runner, so the ASan run tests the ASan server) against a throwaway
 * cluster: GET / → db=42, 200 concurrent requests, the database stopped →
 * 503 within 5 s, started again → 200 within 10 s, SIGTERM → exit 0.
 * A minimal blocking HTTP client lives here (prefix pgpg_) until the shared
 * tests/http_client is merged. */
#include "iox_test.h"
#include "pg_cluster.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PGBIN "/usr/lib/postgresql/15/bin"

static struct iox_pg_cluster cluster;
static pid_t server_pid = -1;
static uint16_t http_port;
static char server_log[256];

static uint64_t pgpg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void pgpg_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint16_t pgpg_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &l)) {
        if (fd >= 0) close(fd);
        return 0;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int pgpg_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(http_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) { int e = -errno; close(fd); return e; }
    return fd;
}

static int pgpg_send_get(int fd, const char *path)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    return send(fd, req, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -EIO;
}

/* Read one response: status and body (NUL-terminated, truncated to cap). */
static int pgpg_read_resp(int fd, int *status, char *body, size_t cap)
{
    char buf[8192];
    size_t len = 0;
    for (;;) {
        buf[len] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            if (sscanf(buf, "HTTP/1.1 %d", status) != 1) return -EPROTO;
            char *cl = strcasestr(buf, "Content-Length:");
            size_t clen = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
            size_t have = len - (size_t)(end + 4 - buf);
            while (have < clen) {
                if (len >= sizeof buf - 1) return -E2BIG;
                ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
                if (r <= 0) return -EIO;
                len += (size_t)r;
                have += (size_t)r;
            }
            size_t bl = clen < cap - 1 ? clen : cap - 1;
            memcpy(body, end + 4, bl);
            body[bl] = 0;
            return 0;
        }
        if (len >= sizeof buf - 1) return -E2BIG;
        ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (r <= 0) return -EIO;
        len += (size_t)r;
    }
}

static int pgpg_get(const char *path, int *status, char *body, size_t cap)
{
    int fd = pgpg_connect();
    if (fd < 0) return fd;
    int rc = pgpg_send_get(fd, path);
    if (!rc) rc = pgpg_read_resp(fd, status, body, cap);
    close(fd);
    return rc;
}

/* Poll GET / until it answers `want` (and body prefix), or ms pass.
 * Returns the elapsed ms, or -1. */
/* Until `want` is what every reactor answers: 16 in a row, each on a new
 * connection (SO_REUSEPORT spreads them over the 2 reactors; one answer
 * proved only one reactor's pool, and the next case's requests on the
 * other found it still connecting under load). Returns ms until the
 * first of the 16, or -1. */
static long pgpg_wait_status(int want, const char *body_prefix, unsigned ms)
{
    uint64_t t0 = pgpg_now_ms();
    long first = -1;
    unsigned run = 0;
    while (pgpg_now_ms() - t0 < ms) {
        int st = 0;
        char body[512];
        if (pgpg_get("/", &st, body, sizeof body) == 0 && st == want &&
            (!body_prefix || !strncmp(body, body_prefix, strlen(body_prefix)))) {
            if (!run++) first = (long)(pgpg_now_ms() - t0);
            if (run == 16) return first;
            continue;
        }
        run = 0;
        pgpg_sleep_ms(50);
    }
    return -1;
}

static int pgpg_pg_ctl(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s " PGBIN "/pg_ctl -D %s -l %s/server.log %s >/dev/null 2>&1",
             geteuid() == 0 ? "runuser -u postgres --" : "", cluster.data, cluster.dir, args);
    return system(cmd) == 0 ? 0 : -EIO;
}

static int suite_init(void)
{
    if (iox_pg_cluster_start(&cluster)) return -1;
    http_port = pgpg_free_port();
    snprintf(server_log, sizeof server_log, "%s/playground.log", cluster.dir);
    char bin[600], port[16], pgport[16];
    snprintf(bin, sizeof bin, "%s/playground", iox_test_bin_dir());
    snprintf(port, sizeof port, "%u", http_port);
    snprintf(pgport, sizeof pgport, "%u", cluster.port);
    /* query_timeout_ms (an ioxide keyword, no PG* variable) through a
     * service file, as a deployment would set it: slow_query_is_504. */
    char svc[300];
    snprintf(svc, sizeof svc, "%s/pg_service.conf", cluster.dir);
    FILE *sf = fopen(svc, "w");
    if (!sf) return -1;
    fprintf(sf, "[ioxide_test]\nquery_timeout_ms=1000\n");
    fclose(sf);
    server_pid = fork();
    if (server_pid < 0) return -1;
    if (server_pid == 0) {
        setenv("PGSERVICEFILE", svc, 1);
        setenv("PGSERVICE", "ioxide_test", 1);
        int fd = open(server_log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 2); dup2(fd, 1); close(fd); }
        setenv("PLAYGROUND_MODE", "pg", 1);
        setenv("PORT", port, 1);
        setenv("REACTORS", "2", 1);
        setenv("PGHOST", "127.0.0.1", 1);
        setenv("PGPORT", pgport, 1);
        setenv("PGUSER", "scram_user", 1);
        setenv("PGPASSWORD", IOX_PG_SCRAM_PW, 1);
        setenv("PGDATABASE", IOX_PG_DB, 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    return 0;
}

static int suite_clean(void)
{
    int rc = 0;
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    if (iox_pg_cluster_stop(&cluster)) rc = -1;
    return rc;
}

IOX_TEST(playground_pg, get_root_is_db_42)
{
    /* The pool connects asynchronously after startup: poll briefly. */
    long t = pgpg_wait_status(200, "db=42", 5000);
    CU_ASSERT_FATAL(t >= 0);
    int st = 0;
    char body[256];
    CU_ASSERT_EQUAL(pgpg_get("/", &st, body, sizeof body), 0);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_STRING_EQUAL(body, "db=42");
    CU_ASSERT_EQUAL(pgpg_get("/nope", &st, body, sizeof body), 0);
    CU_ASSERT_EQUAL(st, 404);
}

IOX_TEST(playground_pg, two_hundred_concurrent)
{
    enum { N = 200 };
    int fds[N], ok = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = pgpg_connect();
        if (fds[i] >= 0 && pgpg_send_get(fds[i], "/")) { close(fds[i]); fds[i] = -1; }
    }
    for (int i = 0; i < N; i++) {
        if (fds[i] < 0) continue;
        int st = 0;
        char body[256];
        if (pgpg_read_resp(fds[i], &st, body, sizeof body) == 0 && st == 200 && !strcmp(body, "db=42")) ok++;
        close(fds[i]);
    }
    CU_ASSERT_EQUAL(ok, N);
    /* and pipelined on one connection */
    int fd = pgpg_connect();
    CU_ASSERT_FATAL(fd >= 0);
    for (int i = 0; i < 32; i++) pgpg_send_get(fd, "/");
    /* The responses arrive back to back: count whole ones in the stream. */
    static char stream[32 * 256];
    size_t len = 0;
    int piped = 0;
    while (piped < 32 && len < sizeof stream - 1) {
        ssize_t r = recv(fd, stream + len, sizeof stream - 1 - len, 0);
        if (r <= 0) break;
        len += (size_t)r;
        stream[len] = 0;
        piped = 0;
        for (const char *q = stream; (q = strstr(q, "HTTP/1.1 200 OK\r\n")); q++) {
            const char *e = strstr(q, "\r\n\r\ndb=42");
            if (e) piped++;
        }
    }
    close(fd);
    CU_ASSERT_EQUAL(piped, 32);
}

/* Signal every backend of the playground's sessions (application_name
 * "ioxide"); returns how many. */
static int pgpg_signal_backends(int sig)
{
    char out[512] = "";
    if (iox_pg_cluster_psql(&cluster, "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity "
                            "WHERE application_name = 'ioxide'", out, sizeof out)) return -1;
    int n = 0;
    for (char *p = out, *end; *p; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p) break;
        if (pid > 0 && kill((pid_t)pid, sig) == 0) n++;
    }
    return n;
}

/* A query past query_timeout_ms (1000 ms here) answers 504: the backends
 * are stopped (SIGSTOP), so SELECT 42 cannot finish; once they run again
 * the pool serves 200s (the cancelled session recovered, or was replaced). */
IOX_TEST(playground_pg, slow_query_is_504)
{
    CU_ASSERT_FATAL(pgpg_wait_status(200, "db=42", 5000) >= 0);
    int n = pgpg_signal_backends(SIGSTOP);
    CU_ASSERT(n >= 1);
    int st = 0;
    char body[512] = "";
    CU_ASSERT_EQUAL(pgpg_get("/", &st, body, sizeof body), 0);
    CU_ASSERT_EQUAL(pgpg_signal_backends(SIGCONT), n);
    CU_ASSERT_EQUAL(st, 504);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "database timeout: query timed out after 1000 ms"));
    fprintf(stderr, "[504 body: %.*s] ", (int)strcspn(body, "\n"), body);
    CU_ASSERT(pgpg_wait_status(200, "db=42", 10000) >= 0);
}

IOX_TEST(playground_pg, database_down_503_then_recovers)
{
    CU_ASSERT_FATAL(pgpg_wait_status(200, "db=42", 5000) >= 0);
    uint64_t t0 = pgpg_now_ms();
    CU_ASSERT_EQUAL_FATAL(pgpg_pg_ctl("-m fast -w stop"), 0);
    long down = pgpg_wait_status(503, "database unavailable", 5000);
    fprintf(stderr, "[503 after %ld ms] ", down < 0 ? -1 : (long)(pgpg_now_ms() - t0));
    CU_ASSERT(down >= 0 && pgpg_now_ms() - t0 < 5000);
    int st = 0;
    char body[512];
    CU_ASSERT_EQUAL(pgpg_get("/", &st, body, sizeof body), 0);
    CU_ASSERT_EQUAL(st, 503);
    fprintf(stderr, "[503 body: %.*s] ", (int)strcspn(body, "\n"), body);
    t0 = pgpg_now_ms();
    CU_ASSERT_EQUAL_FATAL(pgpg_pg_ctl("-w -t 60 start"), 0);
    long up = pgpg_wait_status(200, "db=42", 10000);
    fprintf(stderr, "[200 again %ld ms after start] ", up < 0 ? -1 : (long)(pgpg_now_ms() - t0));
    CU_ASSERT(up >= 0);
}

IOX_TEST(playground_pg, sigterm_exits_zero)
{
    CU_ASSERT_FATAL(server_pid > 0);
    CU_ASSERT_EQUAL(kill(server_pid, SIGTERM), 0);
    uint64_t t0 = pgpg_now_ms();
    int status = -1;
    pid_t w = 0;
    while (pgpg_now_ms() - t0 < 5000 && (w = waitpid(server_pid, &status, WNOHANG)) == 0) pgpg_sleep_ms(20);
    CU_ASSERT_EQUAL(w, server_pid);
    if (w == server_pid) {
        server_pid = -1;
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status)) {
            char cmd[400];
            snprintf(cmd, sizeof cmd, "tail -40 %s >&2", server_log);
            if (system(cmd)) {}
        }
    }
}

IOX_SUITE(playground_pg, suite_init, suite_clean);
