/* test_resp_client.c — suite `resp_client`: the RESP client library of
 * examples/resp (resp_client.c, #included: it is the example's own code,
 * not the library's) on a reactor on this thread, against a real
 * redis-server started in a temp dir on a free port:
 *
 *  - commands and their replies, a pipeline of 2 000 requests in flight;
 *  - the server stopped: requests in flight fail (-ECONNRESET), new ones
 *    fail fast once the pool has been down past down_fail_ms (-ENOTCONN);
 *    the server started again on the same port: the pool reconnects by
 *    itself and requests succeed;
 *  - the example program ioxide-resp-bench-client --check and a bench run,
 *    against redis-server and against ioxide-resp. */
#include "iox_test.h"
#include "resp_util.h"
#include "../examples/resp/src/resp_client.c"
/* rbuf.c (the reply framing it uses) comes with test_resp_sim.c, which
 * #includes the whole example. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

static struct ru_proc redis;
static int up;

static int client_init(void)
{
    if (ru_start_redis(&redis, NULL) < 0) return -1;
    up = 1;
    return 0;
}

static int client_clean(void)
{
    if (up) ru_stop(&redis);
    up = 0;
    return 0;
}

struct got {
    int n, status[4096];
    char reply[4096][24];
};
static struct got got;

static void on_reply(void *arg, int status, const char *reply, size_t len)
{
    int i = (int)(intptr_t)arg;
    got.status[i] = status;
    snprintf(got.reply[i], sizeof got.reply[i], "%.*s", (int)len, reply ? reply : "");
    got.n++;
}

static int want_n;
static int have_all(void *arg) { (void)arg; return got.n >= want_n; }
static int pool_up(void *arg) { return iox_client_pool_up(resp_client_pool(arg)) > 0; }
static int pool_down(void *arg) { return iox_client_pool_up(resp_client_pool(arg)) == 0; }

static int open_here(struct iox_reactor *r, struct resp_client **c, unsigned conns, uint32_t down_fail_ms)
{
    struct iox_server_config cfg = {0};
    char why[256];
    if (iox_reactor_open_here(r, &cfg, why, sizeof why) < 0) { fprintf(stderr, "\n  %s\n", why); return -1; }
    struct resp_client_config cc = {.port = redis.port, .conns = conns, .max_inflight = 2048, .down_fail_ms = down_fail_ms};
    if (resp_client_open(r, &cc, c, why, sizeof why) < 0) {
        fprintf(stderr, "\n  %s\n", why);
        iox_reactor_close_here(r);
        return -1;
    }
    return 0;
}

static void send_cmd(struct resp_client *c, int i, unsigned argc, const char *const *argv)
{
    int rc = resp_client_command(c, argc, argv, NULL, on_reply, (void *)(intptr_t)i);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc) { got.status[i] = rc; got.n++; }
}

IOX_TEST(resp_client, commands_and_a_deep_pipeline)
{
    struct iox_reactor r;
    struct resp_client *c;
    /* One connection: requests sent without waiting run in the order sent
     * (across a pool's connections they may not: see resp_client.h). */
    CU_ASSERT_EQUAL_FATAL(open_here(&r, &c, 1, 0), 0);
    CU_ASSERT_EQUAL(iox_reactor_run_until(&r, pool_up, c, 5000), 0);
    memset(&got, 0, sizeof got);
    send_cmd(c, 0, 3, (const char *[]){"SET", "cl:a", "one"});
    send_cmd(c, 1, 2, (const char *[]){"GET", "cl:a"});
    send_cmd(c, 2, 2, (const char *[]){"INCR", "cl:n"});
    send_cmd(c, 3, 1, (const char *[]){"NOSUCH"});
    want_n = 4;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&r, have_all, NULL, 5000), 0);
    CU_ASSERT_STRING_EQUAL(got.reply[0], "+OK\r\n");
    CU_ASSERT_STRING_EQUAL(got.reply[1], "$3\r\none\r\n");
    CU_ASSERT_STRING_EQUAL(got.reply[2], ":1\r\n");
    CU_ASSERT(strncmp(got.reply[3], "-ERR unknown command", 20) == 0);
    /* 2 000 in flight: each reply is its own request's (FIFO per connection). */
    memset(&got, 0, sizeof got);
    char keys[1000][16], vals[1000][16];
    int accepted = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof keys[i], "cl:%d", i);
        snprintf(vals[i], sizeof vals[i], "%d", i * i);
        const char *set[] = {"SET", keys[i], vals[i]}, *get[] = {"GET", keys[i]};
        accepted += resp_client_command(c, 3, set, NULL, on_reply, (void *)(intptr_t)(2 * i)) == 0;
        accepted += resp_client_command(c, 2, get, NULL, on_reply, (void *)(intptr_t)(2 * i + 1)) == 0;
    }
    CU_ASSERT_EQUAL(accepted, 2000);   /* max_inflight 2048 */
    want_n = accepted;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&r, have_all, NULL, 10000), 0);
    int bad = 0;
    for (int i = 0; i < 1000; i++) {
        char w[40];
        snprintf(w, sizeof w, "$%zu\r\n%s\r\n", strlen(vals[i]), vals[i]);
        bad += got.status[2 * i] != 0 || strcmp(got.reply[2 * i], "+OK\r\n") != 0;
        bad += got.status[2 * i + 1] != 0 || strcmp(got.reply[2 * i + 1], w) != 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    struct iox_client_stats st;
    iox_client_pool_stats(resp_client_pool(c), &st);
    CU_ASSERT(st.replies >= 2004);
    /* Two connections, independent keys: every reply is its request's. */
    resp_client_close(c);
    iox_reactor_close_here(&r);
    CU_ASSERT_EQUAL_FATAL(open_here(&r, &c, 2, 0), 0);
    CU_ASSERT_EQUAL(iox_reactor_run_until(&r, pool_up, c, 5000), 0);
    memset(&got, 0, sizeof got);
    for (int i = 0; i < 1000; i++) {
        const char *get[] = {"GET", keys[i]};
        CU_ASSERT_EQUAL(resp_client_command(c, 2, get, NULL, on_reply, (void *)(intptr_t)i), 0);
    }
    want_n = 1000;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&r, have_all, NULL, 10000), 0);
    bad = 0;
    for (int i = 0; i < 1000; i++) {
        char w[40];
        snprintf(w, sizeof w, "$%zu\r\n%s\r\n", strlen(vals[i]), vals[i]);
        bad += got.status[i] != 0 || strcmp(got.reply[i], w) != 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    resp_client_close(c);
    iox_reactor_close_here(&r);
}

IOX_TEST(resp_client, reconnects_after_the_server_restarts)
{
    struct iox_reactor r;
    struct resp_client *c;
    CU_ASSERT_EQUAL_FATAL(open_here(&r, &c, 2, 300), 0);
    CU_ASSERT_EQUAL_FATAL(iox_reactor_run_until(&r, pool_up, c, 5000), 0);
    uint16_t port = redis.port;
    /* Down: the connections are lost; once down past 300 ms, requests
     * fail at once with -ENOTCONN. */
    ru_stop(&redis);
    up = 0;
    CU_ASSERT_EQUAL(iox_reactor_run_until(&r, pool_down, c, 5000), 0);
    int rc = 0;
    for (int i = 0; i < 200; i++) {
        memset(&got, 0, sizeof got);
        rc = resp_client_command(c, 1, (const char *[]){"PING"}, NULL, on_reply, (void *)0);
        if (rc == 0) {
            want_n = 1;
            iox_reactor_run_until(&r, have_all, NULL, 5000);
            if (got.status[0] == -ENOTCONN) { rc = -ENOTCONN; break; }
        }
        if (rc == -ENOTCONN) break;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        iox_reactor_run_until(&r, pool_up, c, 20);
    }
    CU_ASSERT_EQUAL(rc, -ENOTCONN);
    /* Back on the same port: the pool reconnects by itself. */
    memset(&redis, 0, sizeof redis);
    {
        /* ru_start_redis picks a free port; here it must be the old one. */
        char cmd[512], dir[64];
        snprintf(dir, sizeof dir, "/tmp/iox-resp-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
        snprintf(cmd, sizeof cmd,
                 "redis-server --port %u --bind 127.0.0.1 --save '' --appendonly no --dir %s --daemonize yes "
                 "--pidfile %s/pid --logfile %s/log",
                 port, dir, dir, dir);
        CU_ASSERT_EQUAL_FATAL(ru_sh(NULL, "%s", cmd), 0);
        CU_ASSERT_EQUAL(iox_reactor_run_until(&r, pool_up, c, 10000), 0);
        memset(&got, 0, sizeof got);
        send_cmd(c, 0, 1, (const char *[]){"PING"});
        want_n = 1;
        CU_ASSERT_EQUAL(iox_reactor_run_until(&r, have_all, NULL, 5000), 0);
        CU_ASSERT_EQUAL(got.status[0], 0);
        CU_ASSERT_STRING_EQUAL(got.reply[0], "+PONG\r\n");
        struct iox_client_stats st;
        iox_client_pool_stats(resp_client_pool(c), &st);
        CU_ASSERT(st.connects >= 3);   /* the first two, then at least one again */
        CU_ASSERT(st.losses >= 1);
        resp_client_close(c);
        iox_reactor_close_here(&r);
        ru_sh(NULL, "kill $(cat %s/pid); for i in $(seq 100); do [ -e %s/pid ] || break; sleep 0.05; done; rm -rf %s",
              dir, dir, dir);
    }
    /* The suite's server again, for the cases after this one. */
    if (ru_start_redis(&redis, NULL) == 0) up = 1;
}

IOX_TEST(resp_client, example_program_against_redis_and_ioxide_resp)
{
    CU_ASSERT_FATAL(up);
    char *out = NULL;
    int rc = ru_sh(&out, "%s/ioxide-resp-bench-client --check -p %u 2>&1", iox_test_bin_dir(), redis.port);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(out && strstr(out, "check ok"));
    if (rc) fprintf(stderr, "\n  bench-client --check vs redis-server: %s\n", out ? out : "");
    free(out);
    rc = ru_sh(&out, "%s/ioxide-resp-bench-client -p %u -n 20000 -P 16 -t set 2>&1", iox_test_bin_dir(), redis.port);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(out && strstr(out, "20000 requests, 0 failed"));
    free(out);
    struct ru_proc ours;
    const char *env[] = {"REACTORS=2", NULL};
    CU_ASSERT_EQUAL_FATAL(ru_start_resp(&ours, env), 0);
    rc = ru_sh(&out, "%s/ioxide-resp-bench-client --check -p %u 2>&1", iox_test_bin_dir(), ours.port);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(out && strstr(out, "check ok"));
    if (rc) fprintf(stderr, "\n  bench-client --check vs ioxide-resp: %s\n", out ? out : "");
    free(out);
    rc = ru_sh(&out, "%s/ioxide-resp-bench-client -p %u -n 20000 -P 16 -t get 2>&1", iox_test_bin_dir(), ours.port);
    CU_ASSERT_EQUAL(rc, 0);
    free(out);
    CU_ASSERT_EQUAL(ru_stop(&ours), 0);
}

IOX_SUITE(resp_client, client_init, client_clean);
