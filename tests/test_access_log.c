/* test_access_log.c — the opt-in access log (iox_http_config.access_log,
 * IOX_ACCESS_LOG) and the log file under it (ioxide/logfile.h).
 *
 * Black-box over real sockets: the raw playground writes the combined log
 * format, one file per reactor, escapes what a client sends, survives a
 * full disk (/dev/full) without stalling a request, reopens on SIGHUP and
 * refuses to start on a path it cannot open. On the simulated ring: the
 * writer's one write per turn, short writes, a refused write and a full SQ. */
#include "access_log.h"
#include "http_client.h"
#include "iox_test.h"
#include <ioxide/logfile.h>
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"


static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return NULL; }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static unsigned count_lines(const char *s)
{
    unsigned n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

/* Line k (0-based) of s into out, without its newline; 0 when absent. */
static int nth_line(const char *s, unsigned k, char *out, size_t cap)
{
    for (unsigned i = 0; s && *s; i++) {
        const char *e = strchr(s, '\n');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (i == k) {
            if (l >= cap) l = cap - 1;
            memcpy(out, s, l);
            out[l] = 0;
            return 1;
        }
        if (!e) break;
        s = e + 1;
    }
    return 0;
}

/* "HOST - - [dd/Mon/yyyy:hh:mm:ss +hhmm] REST": REST into rest, and whether
 * the time stamp has the combined format's shape. */
static int split_line(const char *line, const char *host, char *rest, size_t cap)
{
    size_t hl = strlen(host);
    if (strncmp(line, host, hl) != 0 || strncmp(line + hl, " - - [", 6) != 0) return 0;
    const char *t = line + hl + 6;
    int d, y, hh, mm, ss, used = 0;
    char mon[4], zone[6];
    if (sscanf(t, "%2d/%3[A-Za-z]/%4d:%2d:%2d:%2d %5[-+0-9]]%n", &d, mon, &y, &hh, &mm, &ss, zone, &used) != 7)
        return 0;
    if (strlen(mon) != 3 || strlen(zone) != 5 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) return 0;
    if (!used || t[used] != ' ') return 0;
    snprintf(rest, cap, "%s", t + used + 1);
    return 1;
}

static int mk_tmpdir(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/ioxide-alog.XXXXXX");
    return mkdtemp(dir) ? 0 : -errno;
}

static void rm_tree(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static int start(struct hc_server *s, const char *log_env, const char *reactors, const char *extra)
{
    const char *env[] = {"PLAYGROUND_MODE=raw", reactors, log_env, extra, NULL};
    return hc_server_start(s, env);
}

/* One request on a fresh connection; returns the status or -1. */
static int one(uint16_t port, const char *req, int head)
{
    struct hc_conn c;
    if (hc_connect(&c, port, 2000) != 0) return -1;
    struct hc_response r;
    int st = hc_roundtrip(&c, req, &r, head) == HC_OK ? r.status : -1;
    if (st >= 0) hc_response_free(&r);
    hc_close(&c);
    return st;
}

/* ---------------------------------------------------------------- format */

IOX_TEST(access_log, combined_format_and_escaping)
{
    char dir[64], log_env[256], path[128];
    CU_ASSERT_FATAL(mk_tmpdir(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/access.log", dir);
    snprintf(log_env, sizeof log_env, "IOX_ACCESS_LOG=%s", path);
    struct hc_server s;
    CU_ASSERT_FATAL(start(&s, log_env, "REACTORS=1", NULL) == 0);

    CHECK(one(s.port, "GET /?q=%22a%22 HTTP/1.1\r\nHost: t\r\nReferer: http://r.example/p\"q\r\n"
                      "User-Agent: t\xc3\xa9st \\ ua\r\n\r\n", 0) == 200, "GET /");
    CHECK(one(s.port, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n", 1) == 200, "HEAD /");
    CHECK(one(s.port, "GET /nope HTTP/1.0\r\n\r\n", 0) == 404, "GET /nope");
    CHECK(one(s.port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", 0) == 200, "POST /echo");
    /* Pipelined: three lines, in request order, the malformed one last. */
    struct hc_conn c;
    CU_ASSERT_FATAL(hc_connect(&c, s.port, 2000) == 0);
    CU_ASSERT(hc_send_str(&c, "GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\nBAD\r\n\r\n") == 0);
    struct hc_response r;
    int want[] = {404, 200, 400};
    for (int k = 0; k < 3; k++) {
        int rc = hc_read_response(&c, &r, 0);
        CHECK(rc == HC_OK && r.status == want[k], "pipelined answer %d: rc %d status %d", k, rc, rc == HC_OK ? r.status : 0);
        if (rc == HC_OK) hc_response_free(&r);
    }
    hc_close(&c);
    CHECK(hc_server_stop(&s, NULL) == 0, "the server exits 0 after SIGTERM");
    hc_server_free(&s);

    char *log = slurp(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    if (!log) /* not reached: the fatal assert jumps; gcc cannot tell */
        return;
    static const char *const expect[] = {
        "\"GET /?q=%22a%22 HTTP/1.1\" 200 2 \"http://r.example/p\\\"q\" \"t\\xc3\\xa9st \\\\ ua\"",
        "\"HEAD / HTTP/1.1\" 200 - \"-\" \"-\"",
        "\"GET /nope HTTP/1.0\" 404 10 \"-\" \"-\"",
        "\"POST /echo HTTP/1.1\" 200 5 \"-\" \"-\"",
        "\"GET /a HTTP/1.1\" 404 10 \"-\" \"-\"",
        "\"GET / HTTP/1.1\" 200 2 \"-\" \"-\"",
        "\"-\" 400 20 \"-\" \"-\"",
    };
    unsigned n = (unsigned)(sizeof expect / sizeof expect[0]);
    CHECK(count_lines(log) == n, "%u lines, want %u:\n%s", count_lines(log), n, log);
    for (unsigned k = 0; k < n; k++) {
        char line[2048], rest[2048];
        if (!nth_line(log, k, line, sizeof line)) { CHECK(0, "line %u missing", k); continue; }
        CHECK(split_line(line, "127.0.0.1", rest, sizeof rest), "line %u: host and time stamp: %s", k, line);
        CHECK(strcmp(rest, expect[k]) == 0, "line %u:\n  got  %s\n  want %s", k, rest, expect[k]);
    }
    free(log);
    rm_tree(dir);
}

IOX_TEST(access_log, one_file_per_reactor)
{
    char dir[64], log_env[128];
    CU_ASSERT_FATAL(mk_tmpdir(dir, sizeof dir) == 0);
    snprintf(log_env, sizeof log_env, "IOX_ACCESS_LOG=%s/a.log", dir);
    struct hc_server s;
    CU_ASSERT_FATAL(start(&s, log_env, "REACTORS=2", NULL) == 0);
    int ok = 0;
    for (int i = 0; i < 40; i++) ok += one(s.port, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 0) == 200;
    CHECK(ok == 40, "%d of 40 answered", ok);
    CHECK(hc_server_stop(&s, NULL) == 0, "clean exit");
    hc_server_free(&s);
    unsigned total = 0;
    for (int k = 0; k < 2; k++) {
        char p[128];
        snprintf(p, sizeof p, "%s/a.log.%d", dir, k);
        char *log = slurp(p, NULL);
        CHECK(log != NULL, "%s exists", p);
        total += count_lines(log);
        free(log);
    }
    CHECK(total == 40, "%u lines over both reactors' files, want 40", total);
    rm_tree(dir);
}

IOX_TEST(access_log, unanswered_request_is_logged)
{
    /* The client sends half a body and goes away: the line still comes,
     * with what was answered so far (or nginx's 499 when nothing was). */
    char dir[64], log_env[256], path[128];
    CU_ASSERT_FATAL(mk_tmpdir(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/x.log", dir);
    snprintf(log_env, sizeof log_env, "IOX_ACCESS_LOG=%s", path);
    struct hc_server s;
    CU_ASSERT_FATAL(start(&s, log_env, "REACTORS=1", NULL) == 0);
    struct hc_conn c;
    CU_ASSERT_FATAL(hc_connect(&c, s.port, 2000) == 0);
    CU_ASSERT(hc_send_str(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789") == 0);
    usleep(200 * 1000);
    hc_reset(&c);
    usleep(200 * 1000);
    CHECK(one(s.port, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 0) == 200, "the server goes on");
    CHECK(hc_server_stop(&s, NULL) == 0, "clean exit");
    hc_server_free(&s);
    char *log = slurp(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    if (!log) /* not reached: the fatal assert jumps; gcc cannot tell */
        return;
    CHECK(count_lines(log) == 2, "2 lines:\n%s", log);
    CHECK(strstr(log, "\"POST /echo HTTP/1.1\" 200 ") || strstr(log, "\"POST /echo HTTP/1.1\" 499 "),
          "the abandoned POST has its line:\n%s", log);
    free(log);
    rm_tree(dir);
}

/* ------------------------------------------------------------- failures */

IOX_TEST(access_log, full_disk_drops_lines_never_requests)
{
    struct hc_server s;
    CU_ASSERT_FATAL(start(&s, "IOX_ACCESS_LOG=/dev/full", "REACTORS=1", "IOX_STATS_PATH=/stats") == 0);
    int ok = 0;
    for (int i = 0; i < 20; i++) ok += one(s.port, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 0) == 200;
    CHECK(ok == 20, "%d of 20 answered with the log on a full disk", ok);
    /* The writes to /dev/full fail on the kernel's worker threads, a
     * moment after the answers: scrape until every line is accounted for. */
    char *body = NULL;
    for (int tries = 0; tries < 100; tries++) {
        free(body);
        body = NULL;
        struct hc_conn c;
        CU_ASSERT_FATAL(hc_connect(&c, s.port, 2000) == 0);
        struct hc_response r;
        int rc = hc_roundtrip(&c, "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n", &r, 0);
        CU_ASSERT_FATAL(rc == HC_OK);
        body = strndup(r.body, r.body_len);
        hc_response_free(&r);
        hc_close(&c);
        const char *d = strstr(body, "ioxide_log_dropped_total{reactor=\"0\"} ");
        if (d && atoi(d + strlen("ioxide_log_dropped_total{reactor=\"0\"} ")) >= 20) break;
        usleep(20 * 1000);
    }
    const char *d = strstr(body, "ioxide_log_dropped_total{reactor=\"0\"} ");
    const char *e = strstr(body, "ioxide_log_write_errors_total{reactor=\"0\"} ");
    const char *l = strstr(body, "ioxide_log_lines_total{reactor=\"0\"} ");
    CHECK(d && atoi(d + strlen("ioxide_log_dropped_total{reactor=\"0\"} ")) >= 20, "dropped counted:\n%s", body);
    CHECK(e && atoi(e + strlen("ioxide_log_write_errors_total{reactor=\"0\"} ")) >= 1, "write errors counted");
    CHECK(l && atoi(l + strlen("ioxide_log_lines_total{reactor=\"0\"} ")) == 0, "no line written");
    free(body);
    CHECK(hc_server_stop(&s, NULL) == 0, "clean exit despite the log");
    char *err = hc_server_stderr(&s);
    const char *first = strstr(err, "write failed: No space left on device");
    CHECK(first != NULL, "one clear line:\n%s", err);
    CHECK(first && !strstr(first + 1, "write failed"), "said once, not per write:\n%s", err);
    free(err);
    hc_server_free(&s);
}

IOX_TEST(access_log, sighup_reopens_after_rotation)
{
    char dir[64], log_env[256], path[128], moved[128];
    CU_ASSERT_FATAL(mk_tmpdir(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/access.log", dir);
    snprintf(moved, sizeof moved, "%s/access.log.1", dir);
    snprintf(log_env, sizeof log_env, "IOX_ACCESS_LOG=%s", path);
    struct hc_server s;
    CU_ASSERT_FATAL(start(&s, log_env, "REACTORS=1", NULL) == 0);
    CHECK(one(s.port, "GET /before HTTP/1.1\r\nHost: t\r\n\r\n", 0) == 404, "before");
    usleep(100 * 1000);   /* the write is done by the next turn */
    CU_ASSERT(rename(path, moved) == 0);
    CU_ASSERT(kill(s.pid, SIGHUP) == 0);
    int reopened = 0;
    for (int i = 0; i < 50 && !reopened; i++) {   /* the reactor reopens at its next turn */
        struct stat st;
        reopened = stat(path, &st) == 0;
        if (!reopened) usleep(20 * 1000);
    }
    CHECK(reopened, "the file is created again after SIGHUP");
    CHECK(one(s.port, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n", 0) == 404, "after");
    CHECK(hc_server_stop(&s, NULL) == 0, "clean exit");
    hc_server_free(&s);
    char *old = slurp(moved, NULL), *now = slurp(path, NULL);
    CHECK(old && strstr(old, "/before") && !strstr(old, "/after"), "the rotated file: %s", old ? old : "(none)");
    CHECK(now && strstr(now, "/after") && !strstr(now, "/before"), "the new file: %s", now ? now : "(none)");
    free(old);
    free(now);
    rm_tree(dir);
}

IOX_TEST(access_log, unopenable_path_stops_startup)
{
    struct hc_server s;
    const char *env[] = {"PLAYGROUND_MODE=raw", "REACTORS=1", "IOX_ACCESS_LOG=/nonexistent-dir/a.log", NULL};
    CU_ASSERT_FATAL(hc_server_spawn(&s, env, hc_free_port()) == 0);
    int st = hc_server_wait_exit(&s, hc_slow(5000));
    CHECK(st > 0 && st < 128, "exits with an error status (%d), no signal", st);
    char *err = hc_server_stderr(&s);
    CHECK(strstr(err, "/nonexistent-dir/a.log: cannot open for appending: No such file or directory") != NULL,
          "one clear line naming the file and the cause:\n%s", err);
    free(err);
    hc_server_free(&s);
}

/* ------------------------------------------------------------ the paths */

IOX_TEST(access_log, path_per_reactor)
{
    char out[64];
    CU_ASSERT(iox_alog_path("/l/a.log", 0, 1, out, sizeof out) == 0);
    CU_ASSERT_STRING_EQUAL(out, "/l/a.log");
    CU_ASSERT(iox_alog_path("/l/a.log", 1, 2, out, sizeof out) == 0);
    CU_ASSERT_STRING_EQUAL(out, "/l/a.log.1");
    CU_ASSERT(iox_alog_path("/l/a-%r.log", 3, 4, out, sizeof out) == 0);
    CU_ASSERT_STRING_EQUAL(out, "/l/a-3.log");
    CU_ASSERT(iox_alog_path("/l/a-%r.log", 0, 1, out, sizeof out) == 0);
    CU_ASSERT_STRING_EQUAL(out, "/l/a-0.log");
    CU_ASSERT(iox_alog_path("/a/very/long/path/that/does/not/fit/in/the/buffer/given.log", 0, 1, out, 16) == -ENAMETOOLONG);
}

/* ------------------------------------------- the writer, simulated ring */

struct lw {
    struct iox_seam_sim *sim;
    struct iox_reactor r;
    struct iox_server_config cfg;
    struct iox_logfile *lf;
    char path[96];
};

static void lw_sink(void *ctx, const struct iox_cqe *cqe) { iox_reactor_dispatch(ctx, cqe); }

static void lw_init(struct lw *w)
{
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "/tmp/ioxide-lw.%d.log", (int)getpid());
    unlink(w->path);
    w->sim = iox_sim_create(4, 256);
    CU_ASSERT_FATAL(w->sim != NULL);
    CU_ASSERT_FATAL(iox_reactor_init_sim(&w->r, iox_sim_seam(w->sim), &w->cfg) == 0);
    iox_sim_set_sink(w->sim, lw_sink, &w->r);
    char why[256];
    CU_ASSERT_FATAL(iox_logfile_open(&w->r, w->path, 64, &w->lf, why, sizeof why) == 0);
}

static void lw_fini(struct lw *w)
{
    iox_logfile_close(w->lf);
    iox_reactor_fini(&w->r);
    iox_sim_destroy(w->sim);
    unlink(w->path);
}

static void lw_line(struct lw *w, const char *s)
{
    char *p = iox_logfile_reserve(w->lf, strlen(s));
    if (!p) return;
    memcpy(p, s, strlen(s));
    iox_logfile_commit(w->lf, strlen(s));
}


IOX_TEST(access_log, writer_one_write_per_turn_and_short_writes)
{
    struct lw w;
    lw_init(&w);
    lw_line(&w, "one\n");
    lw_line(&w, "two\n");
    CU_ASSERT_EQUAL(iox_sim_complete_all(w.sim, IOX_OP_WRITE, 8), 0);   /* nothing before the turn ends */
    iox_reactor_flush(&w.r);
    /* One write of both lines; a line meanwhile waits in the other buffer. */
    lw_line(&w, "three\n");
    iox_reactor_flush(&w.r);
    struct iox_logfile_stats st = iox_logfile_stats(w.lf);
    CU_ASSERT_EQUAL(st.lines, 0);
    /* The disk takes 3 of 8 bytes, then 4: the rest goes at once each
     * time, still one op at a time. */
    CU_ASSERT_EQUAL_FATAL(iox_sim_complete_all(w.sim, IOX_OP_WRITE, 3), 1);
    CU_ASSERT_EQUAL(iox_logfile_stats(w.lf).lines, 0);
    CU_ASSERT_EQUAL_FATAL(iox_sim_complete_all(w.sim, IOX_OP_WRITE, 4), 1);
    CU_ASSERT_EQUAL(iox_logfile_stats(w.lf).lines, 0);
    CU_ASSERT_EQUAL_FATAL(iox_sim_complete_all(w.sim, IOX_OP_WRITE, 100), 1);
    st = iox_logfile_stats(w.lf);
    CU_ASSERT_EQUAL(st.lines, 2);
    CU_ASSERT_EQUAL(st.bytes, 8);
    /* The next turn writes the line that waited. */
    iox_reactor_flush(&w.r);
    CU_ASSERT_EQUAL_FATAL(iox_sim_complete_all(w.sim, IOX_OP_WRITE, 100), 1);
    st = iox_logfile_stats(w.lf);
    CU_ASSERT_EQUAL(st.lines, 3);
    CU_ASSERT_EQUAL(st.dropped, 0);
    iox_reactor_flush(&w.r);   /* nothing left: no write */
    CU_ASSERT_EQUAL(iox_sim_complete_all(w.sim, IOX_OP_WRITE, 1), 0);
    char *file = slurp(w.path, NULL);
    CU_ASSERT(file && strcmp(file, "one\ntwo\nthree\n") == 0);
    free(file);
    lw_fini(&w);
}

IOX_TEST(access_log, writer_drops_on_errors_and_full_buffers)
{
    struct lw w;
    lw_init(&w);
    lw_line(&w, "aaaa\n");
    iox_reactor_flush(&w.r);
    CU_ASSERT_EQUAL_FATAL(iox_sim_complete_all(w.sim, IOX_OP_WRITE, -ENOSPC), 1);
    struct iox_logfile_stats st = iox_logfile_stats(w.lf);
    CU_ASSERT_EQUAL(st.dropped, 1);
    CU_ASSERT_EQUAL(st.write_errors, 1);
    /* Buffers of 64 bytes: twelve lines of 5 fit, the 13th is dropped. */
    for (int i = 0; i < 12; i++) lw_line(&w, "bbbb\n");
    CU_ASSERT_EQUAL(iox_logfile_stats(w.lf).dropped, 1);
    lw_line(&w, "cccc\n");
    CU_ASSERT_EQUAL(iox_logfile_stats(w.lf).dropped, 2);
    /* A full SQ: the turn submits nothing, loses nothing, the next one writes. */
    iox_sim_fail_submit(w.sim, IOX_OP_WRITE, 1, -EBUSY);
    iox_reactor_flush(&w.r);
    CU_ASSERT_EQUAL(iox_sim_complete_all(w.sim, IOX_OP_WRITE, 65), 0);
    iox_reactor_flush(&w.r);
    CU_ASSERT_EQUAL_FATAL(iox_sim_complete_all(w.sim, IOX_OP_WRITE, 100), 1);
    st = iox_logfile_stats(w.lf);
    CU_ASSERT_EQUAL(st.lines, 12);
    CU_ASSERT_EQUAL(st.dropped, 2);
    char *file = slurp(w.path, NULL);
    CU_ASSERT(file && strlen(file) == 60 && !strstr(file, "a") && !strstr(file, "c"));
    free(file);
    lw_fini(&w);
}

IOX_TEST(access_log, writer_close_writes_what_is_buffered)
{
    struct lw w;
    lw_init(&w);
    lw_line(&w, "kept\n");
    iox_logfile_close(w.lf);
    w.lf = NULL;
    char *s = slurp(w.path, NULL);
    CU_ASSERT(s && strcmp(s, "kept\n") == 0);
    free(s);
    lw_fini(&w);
}

IOX_SUITE(access_log, NULL, NULL);
