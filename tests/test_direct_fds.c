/* test_direct_fds.c — accepted sockets as direct descriptors (issue 14
 * target 2, IOX_DIRECT_FDS; runtime/seam/seam_uring.c), over real sockets.
 *
 * Every case runs the real playground twice, IOX_DIRECT_FDS=off (real fds)
 * and =on (multishot accept into the ring's registered file table, every
 * op with IOSQE_FIXED_FILE, close_direct), and checks the server's startup
 * line says which: keep-alive, pipelined and Connection: close; the idle
 * timeout; a slow reader whose deadline the SIOCOUTQ ring command renews
 * while the kernel's send queue drains, and a stalled one it closes; a
 * 1 MiB and a 2 MiB file through splice (socket = the splice's fixed
 * fd_out); refused-when-full and accepting again; SIGTERM with open
 * connections. Then what direct descriptors change: 100 open connections
 * add 100 real fds to /proc/PID/fd with off and none with on; and
 * IOX_DIRECT_FDS=on with a table over RLIMIT_NOFILE stops startup with the
 * line that names the fix (auto starts, says "no" and why).
 *
 * The other network suites (playground_*, stream_net, responses, ...) run
 * in the mode of the environment: `IOX_DIRECT_FDS=off build/tests NAME`
 * (make test-direct-modes runs the main ones both ways). */
#include "iox_test.h"
#include "big_files.h"
#include "http_client.h"
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"


static const char *const modes[2] = {"IOX_DIRECT_FDS=off", "IOX_DIRECT_FDS=on"};
static const char *const mode_lines[2] = {"direct descriptors no (IOX_DIRECT_FDS=off)", "direct descriptors yes (table "};

#define DF_1M (1u << 20)
#define DF_2M (2u << 20)
#define DF_256K (256u << 10)
static char df_tmp[64], df_root[96], df_root_env[128];
static unsigned char *df_data1m, *df_data2m;

static int df_init(void)
{
    snprintf(df_tmp, sizeof df_tmp, "/tmp/iox-direct-XXXXXX");
    if (!mkdtemp(df_tmp)) return -1;
    snprintf(df_root, sizeof df_root, "%s/www", df_tmp);
    if (mkdir(df_root, 0755) < 0) return -1;
    snprintf(df_root_env, sizeof df_root_env, "FILE_ROOT=%s", df_root);
    df_data1m = malloc(DF_1M);
    df_data2m = malloc(DF_2M);
    if (!df_data1m || !df_data2m) return -1;
    bf_fill(df_data1m, DF_1M, 5);
    bf_fill(df_data2m, DF_2M, 9);
    return bf_write(df_root, "1m.bin", df_data1m, DF_1M) || bf_write(df_root, "2m.bin", df_data2m, DF_2M) ||
                   bf_write(df_root, "256k.bin", df_data2m, DF_256K)
               ? -1
               : 0;
}

static int df_clean(void)
{
    free(df_data1m);
    free(df_data2m);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", df_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* env: the mode first, then up to 8 more (NULL-terminated). */
static int df_start(struct hc_server *s, int m, const char *const *more)
{
    const char *env[12] = {modes[m], "REACTORS=1"};
    unsigned n = 2;
    for (; more && *more && n < 11; more++) env[n++] = *more;
    env[n] = NULL;
    return hc_server_start(s, env);
}

/* Stop the server; it exited 0 and its startup line named the mode. The
 * log is returned (free it) when want_log. */
static char *df_stop(struct hc_server *s, int m, int want_log)
{
    int st = hc_server_stop(s, NULL);
    CHECK(st == 0, "[%s] the server exited with %d", modes[m], st);
    char *log = hc_server_stderr(s);
    CHECK(log && strstr(log, mode_lines[m]), "[%s] no '%s' in the server's log: %.600s", modes[m], mode_lines[m],
          log ? log : "");
    hc_server_free(s);
    if (want_log) return log;
    free(log);
    return NULL;
}

static int get_ok(struct hc_conn *c, const char *req)
{
    struct hc_response r;
    int rc = hc_roundtrip(c, req, &r, 0);
    int ok = rc == HC_OK && r.status == 200;
    if (rc == HC_OK) hc_response_free(&r);
    return ok;
}

#define GET_ROOT "GET / HTTP/1.1\r\nHost: t\r\n\r\n"

IOX_TEST(direct_fds, keep_alive_pipelined_and_close)
{
    for (int m = 0; m < 2; m++) {
        struct hc_server s;
        if (df_start(&s, m, NULL) != 0) { CU_FAIL("start"); continue; }
        struct hc_conn c;
        CU_ASSERT_FATAL(hc_connect(&c, s.port, 2000) == 0);
        for (int i = 0; i < 5; i++) CU_ASSERT(get_ok(&c, GET_ROOT));
        /* 8 in one send, 8 answers in order */
        char pipe8[8 * sizeof GET_ROOT];
        size_t n = 0;
        for (int i = 0; i < 8; i++) { memcpy(pipe8 + n, GET_ROOT, sizeof GET_ROOT - 1); n += sizeof GET_ROOT - 1; }
        CU_ASSERT_EQUAL(hc_send(&c, pipe8, n), 0);
        for (int i = 0; i < 8; i++) {
            struct hc_response r;
            int rc = hc_read_response(&c, &r, 0);
            CU_ASSERT_EQUAL(rc, HC_OK);
            if (rc != HC_OK) break;
            CU_ASSERT_EQUAL(r.status, 200);
            hc_response_free(&r);
        }
        CU_ASSERT(get_ok(&c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
        CU_ASSERT_EQUAL(hc_wait_eof(&c, 3000), 1);   /* the server's close */
        hc_close(&c);
        df_stop(&s, m, 0);
    }
}

IOX_TEST(direct_fds, idle_timeout_closes)
{
    static const char *const more[] = {"IDLE_TIMEOUT_MS=200", NULL};
    for (int m = 0; m < 2; m++) {
        struct hc_server s;
        if (df_start(&s, m, more) != 0) { CU_FAIL("start"); continue; }
        struct hc_conn idle, used;
        CU_ASSERT_FATAL(hc_connect(&idle, s.port, 2000) == 0);
        CU_ASSERT_FATAL(hc_connect(&used, s.port, 2000) == 0);
        CU_ASSERT(get_ok(&used, GET_ROOT));
        CHECK(hc_wait_eof(&idle, hc_slow(3000)) == 1, "[%s] a connection that never sent was not closed", modes[m]);
        CHECK(hc_wait_eof(&used, hc_slow(3000)) == 1, "[%s] an idle keep-alive connection was not closed", modes[m]);
        hc_close(&idle);
        hc_close(&used);
        df_stop(&s, m, 0);
    }
}

/* Read the whole answer to GET path from c's socket `chunk` bytes at a
 * time with `pause_ms` between reads, stopping after `stop_after` body
 * bytes (0: never). Returns the body bytes read; *ended: EOF or reset. */
static size_t slow_read(struct hc_conn *c, size_t chunk, int pause_ms, size_t want, const unsigned char *data,
                        size_t stop_after, int *bad)
{
    static char buf[1 << 16];
    char head[4096];
    size_t hlen = 0, body = 0;
    int in_body = 0;
    *bad = 0;
    long long t0 = hc_now_ms();
    while (body < want && hc_now_ms() - t0 < hc_slow(20000)) {
        if (stop_after && body >= stop_after) break;
        ssize_t r = recv(c->fd, buf, chunk < sizeof buf ? chunk : sizeof buf, 0);
        if (r <= 0) break;
        size_t off = 0;
        if (!in_body) {
            size_t take = (size_t)r < sizeof head - 1 - hlen ? (size_t)r : sizeof head - 1 - hlen;
            memcpy(head + hlen, buf, take);
            hlen += take;
            head[hlen] = 0;
            char *e = strstr(head, "\r\n\r\n");
            if (!e) continue;
            in_body = 1;
            size_t hl = (size_t)(e + 4 - head);
            off = (size_t)r - (hlen - hl);
            if (strncmp(head, "HTTP/1.1 200", 12) != 0) *bad = 1;
        }
        size_t got = (size_t)r - off;
        if (body + got > want) got = want - body;
        if (memcmp(buf + off, data + body, got) != 0) *bad = 1;
        body += got;
        if (pause_ms) usleep((useconds_t)pause_ms * 1000);
    }
    return body;
}

static unsigned long long op_count(const char *log, const char *name)
{
    const char *line = log ? strstr(log, "io_uring SQEs by opcode (IOX_OP_COUNTS): total=") : NULL;
    if (!line) return 0;
    char key[32];
    snprintf(key, sizeof key, " %s=", name);
    const char *eol = strchr(line, '\n');
    const char *p = strstr(line, key);
    if (!p || (eol && p > eol)) return 0;
    return strtoull(p + strlen(key), NULL, 10);
}

/* The answer sits in the server's send queue (a client with a 16 KiB
 * receive buffer): the server has nothing owed, so only SIOCOUTQ — on the
 * ring, in both modes — tells a reader that drains it from one that does
 * not. The slow reader outlives many 200 ms deadlines; the stalled one is
 * cut off. */
IOX_TEST(direct_fds, slow_reader_renewed_by_siocoutq)
{
    /* 400 ms (longer under sanitizers, hc_slow): the slow reader must be
     * seen to drain between two checks, so a deadline shorter than a
     * loaded machine's scheduling stall of the client made this flaky
     * (100 ms failed a fresh-clone CI run). */
    char idle_env[48];
    snprintf(idle_env, sizeof idle_env, "IDLE_TIMEOUT_MS=%d", hc_slow(400));
    const char *const more[] = {"PLAYGROUND_MODE=file", df_root_env, idle_env, "IOX_OP_COUNTS=1", "IOX_LOG=debug",
                                "FILE_BAKE_MAX=65536", "FILE_SPLICE_MIN=65536", NULL};
    for (int m = 0; m < 2; m++) {
        struct hc_server s;
        if (df_start(&s, m, more) != 0) { CU_FAIL("start"); continue; }
        struct hc_conn slow, stalled;
        CU_ASSERT_FATAL(hc_connect_ex(&slow, s.port, 2000, 16384, 0) == 0);
        CU_ASSERT_EQUAL(hc_send_str(&slow, "GET /256k.bin HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
        int bad;
        long long t0 = hc_now_ms();
        size_t got = slow_read(&slow, 4096, 25, DF_256K, df_data2m, 0, &bad);   /* ~1.6 s: four deadlines */
        long long took = hc_now_ms() - t0;
        CHECK(got == DF_256K && !bad, "[%s] slow reader: %zu of %u body bytes (bad %d) in %lld ms", modes[m], got,
              DF_256K, bad, took);
        hc_close(&slow);
        /* The server's debug lines so far: no idle timeout (renewed). */
        char *early = hc_server_stderr(&s);
        CHECK(early && !strstr(early, ": timeout in "), "[%s] the slow reader timed out: %.300s", modes[m],
              early && strstr(early, ": timeout in ") ? strstr(early, ": timeout in ") : "");
        free(early);
            /* Stalled: reads a little, then nothing for well over a deadline
         * while the kernel holds the rest; then it drains what the server
         * had queued before its close (a graceful close delivers it). */
        CU_ASSERT_FATAL(hc_connect_ex(&stalled, s.port, 2000, 16384, 0) == 0);
        CU_ASSERT_EQUAL(hc_send_str(&stalled, "GET /1m.bin HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
        size_t part = slow_read(&stalled, 16384, 0, DF_1M, df_data1m, 65536, &bad);
        usleep((useconds_t)hc_slow(1500) * 1000);
        hc_set_timeout(&stalled, hc_slow(5000));
        static char sink[1 << 16];
        ssize_t r;
        while ((r = recv(stalled.fd, sink, sizeof sink, 0)) > 0) part += (size_t)r;
        CHECK(r == 0, "[%s] the stalled reader: no EOF after %zu bytes (%s)", modes[m], part, strerror(errno));
        hc_close(&stalled);
        /* Now the stalled reader's timeout, and the SIOCOUTQ checks on the
         * ring (the slow reader's renewals, the stall's). */
        char *log = df_stop(&s, m, 1);
        CHECK(log && strstr(log, ": timeout in "), "[%s] the stalled reader never timed out", modes[m]);
        unsigned long long cmds = op_count(log, "uring_cmd");
        CHECK(cmds >= 2, "[%s] %llu SIOCOUTQ ring commands, want the slow reader's renewals and the stall's check",
              modes[m], cmds);
        free(log);
    }
}

IOX_TEST(direct_fds, one_mib_through_splice)
{
    static const char *const more[] = {"PLAYGROUND_MODE=file", df_root_env, "FILE_BAKE_MAX=65536",
                                       "FILE_SPLICE_MIN=65536", NULL};
    for (int m = 0; m < 2; m++) {
        struct hc_server s;
        if (df_start(&s, m, more) != 0) { CU_FAIL("start"); continue; }
        struct hc_conn c;
        CU_ASSERT_FATAL(hc_connect(&c, s.port, 2000) == 0);
        hc_set_timeout(&c, hc_slow(10000));
        for (int i = 0; i < 2; i++) {
            struct hc_response r;
            int rc = hc_roundtrip(&c, "GET /1m.bin HTTP/1.1\r\nHost: t\r\n\r\n", &r, 0);
            CU_ASSERT_EQUAL_FATAL(rc, HC_OK);
            CU_ASSERT_EQUAL(r.status, 200);
            CU_ASSERT(r.body_len == DF_1M && memcmp(r.body, df_data1m, DF_1M) == 0);
            hc_response_free(&r);
        }
        hc_close(&c);
        char *log = df_stop(&s, m, 1);
        const char *p = log ? strstr(log, "file mode: streams: ") : NULL;
        unsigned long long started = 0, spliced = 0;
        CHECK(p && sscanf(p, "file mode: streams: %llu started (%llu spliced", &started, &spliced) == 2 &&
                  started == 2 && spliced == 2,
              "[%s] want 2 streams, both spliced: %.300s", modes[m], p ? p : "(no stop line)");
        free(log);
    }
}

/* IOX_MAX_CONNS=2 and six connections at once: the accepts beyond the
 * table are refused (closed at once: a slot through the file table, never
 * close(2) of its number) or wait in the backlog; the server goes on
 * serving, accepts again once a slot frees, and stops cleanly. */
IOX_TEST(direct_fds, refused_when_full_then_accepts_again)
{
    static const char *const more[] = {"IOX_MAX_CONNS=2", NULL};
    for (int m = 0; m < 2; m++) {
        struct hc_server s;
        if (df_start(&s, m, more) != 0) { CU_FAIL("start"); continue; }
        usleep(100 * 1000);   /* the readiness probe's slot is released */
        struct hc_conn c[6];
        int ok[6] = {0};
        for (int i = 0; i < 6; i++) ok[i] = hc_connect(&c[i], s.port, 2000) == 0;
        for (int i = 0; i < 2; i++) CU_ASSERT(ok[i] && get_ok(&c[i], GET_ROOT));
        for (int i = 0; i < 6; i++)
            if (ok[i]) hc_close(&c[i]);
        /* Served again, many times over: nothing but the refused sockets was closed. */
        for (int i = 0; i < 10; i++) {
            struct hc_conn d;
            if (hc_connect(&d, s.port, 2000) != 0) { CU_FAIL("connect after the refusals"); break; }
            hc_set_timeout(&d, hc_slow(3000));
            CHECK(get_ok(&d, GET_ROOT), "[%s] connection %d after the refusals not served", modes[m], i);
            hc_close(&d);
        }
        df_stop(&s, m, 0);
    }
}

IOX_TEST(direct_fds, sigterm_with_open_connections)
{
    for (int m = 0; m < 2; m++) {
        struct hc_server s;
        if (df_start(&s, m, NULL) != 0) { CU_FAIL("start"); continue; }
        struct hc_conn idle, used;
        CU_ASSERT_FATAL(hc_connect(&idle, s.port, 2000) == 0);
        CU_ASSERT_FATAL(hc_connect(&used, s.port, 2000) == 0);
        CU_ASSERT(get_ok(&used, GET_ROOT));
        kill(s.pid, SIGTERM);
        CU_ASSERT_EQUAL(hc_wait_eof(&idle, hc_slow(5000)), 1);
        CU_ASSERT_EQUAL(hc_wait_eof(&used, hc_slow(5000)), 1);
        hc_close(&idle);
        hc_close(&used);
        df_stop(&s, m, 0);
    }
}

/* What direct descriptors are for: an accepted connection installs no fd
 * in the process's table (no fd_install, no fd table lookups per op). */
IOX_TEST(direct_fds, open_connections_are_no_real_fds)
{
    enum { N = 100 };
    for (int m = 0; m < 2; m++) {
        struct hc_server s;
        if (df_start(&s, m, NULL) != 0) { CU_FAIL("start"); continue; }
        int fds0 = bf_settled_fds(s.pid);
        static struct hc_conn c[N];
        int n = 0;
        for (; n < N; n++) {
            if (hc_connect(&c[n], s.port, 2000) != 0) break;
            if (!get_ok(&c[n], GET_ROOT)) { hc_close(&c[n]); break; }   /* accepted and served: open now */
        }
        CU_ASSERT_EQUAL(n, N);
        int fds1 = bf_count_fds(s.pid);
        if (m == 0)
            CHECK(fds1 >= fds0 + N, "[%s] %d fds with %d connections open, %d before: want each one a real fd",
                  modes[m], fds1, n, fds0);
        else
            CHECK(fds1 < fds0 + 5, "[%s] %d fds with %d connections open, %d before: want none of them a real fd",
                  modes[m], fds1, n, fds0);
        for (int i = 0; i < n; i++) hc_close(&c[i]);
        df_stop(&s, m, 0);
    }
}

/* The kernel refuses a file table larger than RLIMIT_NOFILE: with the
 * limit at 4096 and the default 16384 connections, `on` must stop at
 * startup with the line naming the limit and the fix; `auto` serves with
 * real fds and says why not. */
IOX_TEST(direct_fds, on_with_a_table_over_rlimit_nofile_fails_startup)
{
    struct rlimit old, low;
    CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &old) == 0);
    low = old;
    low.rlim_cur = 4096;   /* inherited by the server we spawn; ours again below */
    CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &low) == 0);
    struct hc_server s;
    static const char *const env_on[] = {"IOX_DIRECT_FDS=on", "REACTORS=1", NULL};
    int sp = hc_server_spawn(&s, env_on, hc_free_port());
    static const char *const env_auto[] = {"IOX_DIRECT_FDS=auto", "REACTORS=1", NULL};
    struct hc_server a;
    int sa = hc_server_start(&a, env_auto);
    setrlimit(RLIMIT_NOFILE, &old);
    CU_ASSERT_FATAL(sp == 0);
    int st = hc_server_wait_exit(&s, hc_slow(5000));
    CHECK(st != 0 && st != -1, "IOX_DIRECT_FDS=on with a table over RLIMIT_NOFILE: exit status %d, want a failed startup",
          st);
    char *e = hc_server_stderr(&s);
    CHECK(e && strstr(e, "IOX_DIRECT_FDS=on") && strstr(e, "RLIMIT_NOFILE 4096") && strstr(e, "ulimit -n"),
          "no clear startup line: %.600s", e ? e : "");
    CU_ASSERT(e && strstr(e, "listening on") == NULL);
    free(e);
    hc_server_free(&s);
    CU_ASSERT_FATAL(sa == 0);
    struct hc_conn c;
    CU_ASSERT_FATAL(hc_connect(&c, a.port, 2000) == 0);
    CU_ASSERT(get_ok(&c, GET_ROOT));
    hc_close(&c);
    CU_ASSERT_EQUAL(hc_server_stop(&a, NULL), 0);
    e = hc_server_stderr(&a);
    CHECK(e && strstr(e, "direct descriptors no (a table of") && strstr(e, "RLIMIT_NOFILE 4096"),
          "auto: no 'no (why)' in the startup line: %.600s", e ? e : "");
    free(e);
    hc_server_free(&a);
}

IOX_SUITE(direct_fds, df_init, df_clean);
