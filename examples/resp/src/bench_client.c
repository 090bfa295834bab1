/* bench_client.c — ioxide-resp-bench-client: the RESP client library
 * (resp_client.h) driven from a reactor on the calling thread.
 *
 *   ioxide-resp-bench-client [-h HOST] [-p PORT] [-c CONNS] [-n N] [-P DEPTH] [-t set|get|ping]
 *       N requests (20000), DEPTH in flight (16), over CONNS pooled
 *       connections (2); prints the rate; exit 1 if any failed.
 *   ioxide-resp-bench-client --check [-h HOST] [-p PORT]
 *       SET/GET/INCR/DEL/MGET with the answers checked, and a pipeline of
 *       1000 SET+GET pairs in flight at once on one connection, each reply
 *       checked against its own request; "check ok", or what was wrong and
 *       exit 1. */
#include "resp_client.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct resp_client *cl;
static unsigned long want, issued, done, failed, depth;
static const char *mode = "set";
static int last_err;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void issue(void);

static void on_bench(void *arg, int status, const char *reply, size_t len)
{
    (void)arg;
    done++;
    if (status < 0 || (len && reply[0] == '-')) { failed++; last_err = status; }
    issue();
}

static void issue(void)
{
    while (issued < want && issued - done < depth) {
        char key[32];
        int kn = snprintf(key, sizeof key, "key:%06lu", issued % 10000);
        const char *set[] = {"SET", key, "xxx"}, *get[] = {"GET", key}, *ping[] = {"PING"};
        size_t setl[] = {3, (size_t)kn, 3}, getl[] = {3, (size_t)kn}, pingl[] = {4};
        int rc = !strcmp(mode, "get") ? resp_client_command(cl, 2, get, getl, on_bench, NULL)
                 : !strcmp(mode, "ping") ? resp_client_command(cl, 1, ping, pingl, on_bench, NULL)
                 : resp_client_command(cl, 3, set, setl, on_bench, NULL);
        if (rc == -EAGAIN) return;          /* the pool is full: the next reply issues more */
        if (rc < 0) { issued++; done++; failed++; last_err = rc; continue; }
        issued++;
    }
}

static int all_done(void *arg)
{
    (void)arg;
    return done >= want;
}

/* ---- --check -------------------------------------------------------------------- */

struct expect {
    const char *want;   /* the exact reply */
    int seen, ok;
};
static struct expect ex[2100];
static unsigned nex, nseen, nbad;

static void on_check(void *arg, int status, const char *reply, size_t len)
{
    struct expect *e = arg;
    e->seen = 1;
    nseen++;
    e->ok = status == 0 && strlen(e->want) == len && memcmp(reply, e->want, len) == 0;
    if (!e->ok) {
        nbad++;
        fprintf(stderr, "check: request %u: status %d, reply '%.*s', want '%s'\n", (unsigned)(e - ex), status,
                (int)(len > 60 ? 60 : len), reply ? reply : "", e->want);
    }
}

static int cmd(const char *w, unsigned argc, const char *const *argv)
{
    struct expect *e = &ex[nex++];
    e->want = w;
    int rc = resp_client_command(cl, argc, argv, NULL, on_check, e);
    if (rc < 0) { fprintf(stderr, "check: request %u refused: %s\n", nex - 1, strerror(-rc)); nbad++; e->seen = 1; nseen++; }
    return rc;
}

static int all_seen(void *arg)
{
    (void)arg;
    return nseen >= nex;
}

static int up(void *arg)
{
    return iox_client_pool_up(resp_client_pool(arg)) > 0;
}

static char vals[1000][16], keys[1000][16], wants[1000][32];

static int run_check(struct iox_reactor *r)
{
    if (iox_reactor_run_until(r, up, cl, 5000) != 0) {
        fprintf(stderr, "check: no connection: %s\n", iox_client_pool_last_error(resp_client_pool(cl)));
        return 1;
    }
    cmd("+OK\r\n", 3, (const char *[]){"SET", "chk:a", "hello"});
    cmd("$5\r\nhello\r\n", 2, (const char *[]){"GET", "chk:a"});
    cmd("$-1\r\n", 2, (const char *[]){"GET", "chk:nothing"});
    cmd(":1\r\n", 2, (const char *[]){"INCR", "chk:n"});
    cmd(":11\r\n", 3, (const char *[]){"INCRBY", "chk:n", "10"});
    cmd("*3\r\n$5\r\nhello\r\n$-1\r\n$2\r\n11\r\n", 4, (const char *[]){"MGET", "chk:a", "chk:x", "chk:n"});
    cmd(":2\r\n", 4, (const char *[]){"DEL", "chk:a", "chk:n", "chk:x"});
    cmd("-ERR wrong number of arguments for 'get' command\r\n", 1, (const char *[]){"GET"});
    /* 1000 SET + GET pairs, all in flight together. */
    for (int i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof keys[i], "chk:%d", i);
        snprintf(vals[i], sizeof vals[i], "v%d", i * 3);
        snprintf(wants[i], sizeof wants[i], "$%zu\r\n%s\r\n", strlen(vals[i]), vals[i]);
        cmd("+OK\r\n", 3, (const char *[]){"SET", keys[i], vals[i]});
        cmd(wants[i], 2, (const char *[]){"GET", keys[i]});
    }
    if (iox_reactor_run_until(r, all_seen, NULL, 10000) != 0) {
        fprintf(stderr, "check: %u of %u replies after 10 s\n", nseen, nex);
        return 1;
    }
    if (nbad) return 1;
    printf("check ok: %u replies\n", nseen);
    return 0;
}

int main(int argc, char **argv)
{
    struct resp_client_config cfg = {.port = 6379};
    int check = 0;
    cfg.max_inflight = 1024;
    want = 20000;
    depth = 16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--check")) { check = 1; continue; }
        if (!v) { fprintf(stderr, "usage: %s [--check] [-h HOST] [-p PORT] [-c CONNS] [-n N] [-P DEPTH] [-t set|get|ping]\n", argv[0]); return 2; }
        if (!strcmp(a, "-h")) cfg.host = v;
        else if (!strcmp(a, "-p")) cfg.port = (uint16_t)atoi(v);
        else if (!strcmp(a, "-c")) cfg.conns = (unsigned)atoi(v);
        else if (!strcmp(a, "-n")) want = strtoul(v, NULL, 10);
        else if (!strcmp(a, "-P")) depth = strtoul(v, NULL, 10);
        else if (!strcmp(a, "-t")) mode = v;
        else { fprintf(stderr, "%s: unknown option %s\n", argv[0], a); return 2; }
        i++;
    }
    if (!depth) depth = 1;
    /* The check sends dependent requests (SET then GET) without waiting:
     * only one connection keeps them in order. */
    if (check) cfg.conns = 1;
    struct iox_server_config scfg = {0};
    struct iox_reactor r;
    char why[256];
    if (iox_reactor_open_here(&r, &scfg, why, sizeof why) < 0) {
        fprintf(stderr, "ioxide-resp-bench-client: %s\n", why);
        return 1;
    }
    int rc = resp_client_open(&r, &cfg, &cl, why, sizeof why);
    if (rc < 0) {
        fprintf(stderr, "ioxide-resp-bench-client: %s\n", why);
        iox_reactor_close_here(&r);
        return 1;
    }
    int status;
    if (check) {
        status = run_check(&r);
    } else {
        long long t0 = now_ms();
        issue();
        int w = iox_reactor_run_until(&r, all_done, NULL, 600000);
        long long ms = now_ms() - t0;
        printf("%s: %lu requests, %lu failed, in %lld ms: %.0f requests/s\n", mode, done, failed, ms,
               ms ? done * 1000.0 / (double)ms : 0.0);
        if (failed) fprintf(stderr, "last failure: %s (%s)\n", last_err ? strerror(-last_err) : "an error reply",
                            iox_client_pool_last_error(resp_client_pool(cl)));
        status = w != 0 || failed ? 1 : 0;
    }
    resp_client_close(cl);
    iox_reactor_close_here(&r);
    return status;
}
