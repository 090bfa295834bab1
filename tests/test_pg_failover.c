/* test_pg_failover.c — several hosts against real servers: a primary
 * (tests/pg_cluster.c) and a streaming standby made from it with
 * pg_basebackup -R, both logging every statement (log_statement = all, set
 * with ALTER SYSTEM on the primary before the copy), so the test sees on
 * which server each query ran: the playground's pg mode runs the fixed
 * prepared `SELECT 42`, whose answer does not say where it came from.
 *
 *  - target_session_attrs standby / read-only / prefer-standby with the
 *    primary listed first: every query runs on the standby;
 *  - read-write with the standby listed FIRST: every query runs on the
 *    primary, none on the standby; then the primary crashes (pg_ctl -m
 *    immediate): pg mode answers 503 — and only 503, while the standby is
 *    still read-only — and after `pg_ctl promote` 200 again within 10 s,
 *    from the promoted server. The playground logs the host change once.
 *
 * The playground runs with REACTORS=1 (one pool, so the counts are exact). */
#include "iox_test.h"
#include "http_client.h"
#include "pg_cluster.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct iox_pg_cluster primary, standby;
static int have_standby;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Statements `SELECT 42` the server logged (log_statement = all). */
static unsigned selects_on(const struct iox_pg_cluster *c)
{
    char path[256];
    snprintf(path, sizeof path, "%s/server.log", c->dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[2048];
    unsigned n = 0;
    while (fgets(line, sizeof line, f)) n += strstr(line, "SELECT 42") != NULL;
    fclose(f);
    return n;
}

/* GET / on a new connection: the status (0 when there was no answer). */
static int get_root(uint16_t port, char *body, size_t cap)
{
    struct hc_conn c;
    struct hc_response r;
    if (hc_connect(&c, port, 2000)) return 0;
    int st = 0;
    if (hc_roundtrip(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", &r, 0) == HC_OK) {
        st = r.status;
        if (body) snprintf(body, cap, "%s", r.body ? r.body : "");
        hc_response_free(&r);
    }
    hc_close(&c);
    return st;
}

/* Until GET / answers `want` `run` times in a row, or ms pass. Returns the
 * ms to the first of them, or -1. */
static long wait_status(uint16_t port, int want, unsigned run, unsigned ms)
{
    uint64_t t0 = now_ms();
    unsigned in_a_row = 0;
    long first = -1;
    while (now_ms() - t0 < ms) {
        if (get_root(port, NULL, 0) == want) {
            if (!in_a_row++) first = (long)(now_ms() - t0);
            if (in_a_row == run) return first;
            continue;
        }
        in_a_row = 0;
        sleep_ms(20);
    }
    return -1;
}

/* The playground in pg mode on PGHOST=127.0.0.1,127.0.0.1 PGPORT=p1,p2. */
static int start_playground(struct hc_server *s, uint16_t p1, uint16_t p2, const char *attrs)
{
    char ports[64], tsa[96];
    snprintf(ports, sizeof ports, "PGPORT=%u,%u", p1, p2);
    snprintf(tsa, sizeof tsa, "PGTARGETSESSIONATTRS=%s", attrs);
    const char *env[] = {"PLAYGROUND_MODE=pg", "REACTORS=1", "PGHOST=127.0.0.1,127.0.0.1", ports, tsa,
                         "PGUSER=scram_user", "PGPASSWORD=" IOX_PG_SCRAM_PW, "PGDATABASE=" IOX_PG_DB,
                         "PGCONNECT_TIMEOUT=2", NULL};
    return hc_server_start(s, env);
}

static int suite_init(void)
{
    if (iox_pg_cluster_start(&primary)) return -1;
    if (iox_pg_cluster_psql(&primary, "ALTER SYSTEM SET log_statement = 'all'; SELECT pg_reload_conf();", NULL, 0) ||
        iox_pg_cluster_standby(&primary, &standby)) {
        iox_pg_cluster_stop(&primary);
        return -1;
    }
    have_standby = 1;
    /* The standby is a standby. */
    char out[64] = "";
    if (iox_pg_cluster_psql(&standby, "SELECT pg_is_in_recovery()", out, sizeof out) || strcmp(out, "t")) {
        fprintf(stderr, "pg_failover: the standby is not in recovery (%s)\n", out);
        return -1;
    }
    return 0;
}

static int suite_clean(void)
{
    int rc = 0;
    if (have_standby && iox_pg_cluster_stop(&standby)) rc = -1;
    if (iox_pg_cluster_stop(&primary)) rc = -1;
    have_standby = 0;
    return rc;
}

/* standby, read-only, prefer-standby: with the primary listed first, every
 * query still runs on the standby. */
IOX_TEST(pg_failover, standby_attrs_skip_the_primary)
{
    static const char *const attrs[] = {"standby", "read-only", "prefer-standby"};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        struct hc_server s;
        CU_ASSERT_FATAL(start_playground(&s, primary.port, standby.port, attrs[i]) == 0);
        unsigned on_primary = selects_on(&primary), on_standby = selects_on(&standby);
        long t = wait_status(s.port, 200, 20, hc_slow(10000));
        if (t < 0) {
            char *e = hc_server_stderr(&s);
            fprintf(stderr, "\n  %s: no 200s; playground said:\n%s", attrs[i], e ? e : "");
            free(e);
        }
        CU_ASSERT(t >= 0);
        sleep_ms(200);      /* the server writes its log asynchronously */
        unsigned dp = selects_on(&primary) - on_primary, ds = selects_on(&standby) - on_standby;
        if (dp || ds < 20) fprintf(stderr, "\n  %s: %u queries on the primary, %u on the standby", attrs[i], dp, ds);
        CU_ASSERT_EQUAL(dp, 0);
        CU_ASSERT(ds >= 20);
        CU_ASSERT_EQUAL(hc_server_stop(&s, NULL), 0);
        hc_server_free(&s);
    }
}

/* read-write with the standby first: the primary serves everything; it
 * crashes: 503s only, while the standby is read-only; promoted: 200s again
 * within 10 s, from it. */
IOX_TEST(pg_failover, read_write_follows_the_promotion)
{
    struct hc_server s;
    CU_ASSERT_FATAL(start_playground(&s, standby.port, primary.port, "read-write") == 0);
    unsigned on_primary = selects_on(&primary), on_standby = selects_on(&standby);
    CU_ASSERT_FATAL(wait_status(s.port, 200, 30, hc_slow(10000)) >= 0);
    sleep_ms(200);
    unsigned dp = selects_on(&primary) - on_primary, ds = selects_on(&standby) - on_standby;
    CU_ASSERT(dp >= 30);
    CU_ASSERT_EQUAL(ds, 0);

    /* The primary crashes. */
    uint64_t t0 = now_ms();
    CU_ASSERT_EQUAL_FATAL(iox_pg_cluster_kill(&primary), 0);
    long down = wait_status(s.port, 503, 3, hc_slow(5000));
    CU_ASSERT(down >= 0);
    fprintf(stderr, "[503 after %ld ms] ", (long)(now_ms() - t0));
    /* Only the read-only standby is left: nothing may be served. */
    unsigned not_503 = 0;
    char body[512] = "";
    for (int i = 0; i < 20; i++) {
        int st = get_root(s.port, body, sizeof body);
        if (st != 503) not_503++;
        sleep_ms(25);
    }
    CU_ASSERT_EQUAL(not_503, 0);
    fprintf(stderr, "[503 body: %.*s] ", (int)strcspn(body, "\n"), body);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "session is read-only (target_session_attrs=read-write)"));   /* host by host */
    sleep_ms(200);
    CU_ASSERT_EQUAL(selects_on(&standby) - on_standby, 0);

    /* Promoted: 200s again within 10 s, from the new primary. */
    t0 = now_ms();
    CU_ASSERT_EQUAL_FATAL(iox_pg_cluster_promote(&standby), 0);
    long up = wait_status(s.port, 200, 20, 10000);
    fprintf(stderr, "[200 again %ld ms after promote] ", up < 0 ? -1 : (long)(now_ms() - t0));
    CU_ASSERT(up >= 0);
    sleep_ms(200);
    CU_ASSERT(selects_on(&standby) - on_standby >= 20);

    /* One line per host change: on the primary first, then on the promoted one. */
    char *e = hc_server_stderr(&s);
    char want[96];
    snprintf(want, sizeof want, "sessions on 127.0.0.1 port %u (host 2 of 2", primary.port);
    CU_ASSERT_PTR_NOT_NULL(e && strstr(e, want));
    snprintf(want, sizeof want, "sessions on 127.0.0.1 port %u (host 1 of 2", standby.port);
    const char *at = e ? strstr(e, want) : NULL;
    CU_ASSERT_PTR_NOT_NULL(at);
    if (at) CU_ASSERT_PTR_NULL(strstr(at + 1, want));      /* once */
    if (!at) fprintf(stderr, "\n  playground said:\n%s", e ? e : "");
    free(e);
    CU_ASSERT_EQUAL(hc_server_stop(&s, NULL), 0);
    hc_server_free(&s);
}

IOX_SUITE(pg_failover, suite_init, suite_clean);
