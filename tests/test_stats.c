/* test_stats.c — suite `stats`: IOX_STATS_PATH on the real playground
 * (../shared/ARCHITECTURE.md §5): every reactor's counters in Prometheus
 * text format, gathered through ring messages; GET and HEAD only. */
#include "iox_test.h"
#include "http_client.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sum of a metric's samples (lines "name{...} value"), and how many. */
static unsigned long long metric_sum(const char *text, const char *name, const char *label, unsigned *samples)
{
    unsigned long long sum = 0;
    unsigned n = 0;
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, nl) || p[nl] != '{') continue;
        const char *end = strchr(p, '}');
        if (!end) continue;
        if (label && !memmem(p, (size_t)(end - p), label, strlen(label))) continue;
        sum += strtoull(end + 1, NULL, 10);
        n++;
    }
    if (samples) *samples = n;
    return sum;
}

IOX_TEST(stats, counters_from_every_reactor)
{
    const char *env[] = {"REACTORS=2", "IOX_STATS_PATH=/metrics", NULL};
    struct hc_server s;
    CU_ASSERT_FATAL(hc_server_start(&s, env) == 0);
    /* 30 requests over fresh connections (spread over both reactors), and
     * one 404. */
    for (int i = 0; i < 30; i++) {
        struct hc_conn c;
        CU_ASSERT_FATAL(hc_connect(&c, s.port, 2000) == 0);
        struct hc_response r;
        CU_ASSERT_EQUAL(hc_roundtrip(&c, "GET / HTTP/1.1\r\nHost: s\r\n\r\n", &r, 0), HC_OK);
        hc_response_free(&r);
        hc_close(&c);
    }
    struct hc_conn c;
    CU_ASSERT_FATAL(hc_connect(&c, s.port, 2000) == 0);
    struct hc_response r;
    CU_ASSERT_EQUAL(hc_roundtrip(&c, "GET /nope HTTP/1.1\r\nHost: s\r\n\r\n", &r, 0), HC_OK);
    CU_ASSERT_EQUAL(r.status, 404);
    hc_response_free(&r);
    CU_ASSERT_EQUAL_FATAL(hc_roundtrip(&c, "GET /metrics HTTP/1.1\r\nHost: s\r\n\r\n", &r, 0), HC_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(hc_header(&r, "Content-Type") ? hc_header(&r, "Content-Type") : "", "text/plain"));
    const char *t = r.body ? r.body : "";
    unsigned n;
    CU_ASSERT_EQUAL(metric_sum(t, "ioxide_reactor_up", NULL, &n), 2);
    CU_ASSERT_EQUAL(n, 2);                          /* both reactors answered */
    CU_ASSERT(metric_sum(t, "ioxide_http_requests_total", NULL, &n) >= 31);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT(metric_sum(t, "ioxide_http_responses_total", "class=\"2xx\"", NULL) >= 30);
    CU_ASSERT(metric_sum(t, "ioxide_http_responses_total", "class=\"4xx\"", NULL) >= 1);
    CU_ASSERT(metric_sum(t, "ioxide_http_accepted_total", NULL, NULL) >= 31);
    CU_ASSERT(metric_sum(t, "ioxide_http_connections_open", NULL, NULL) >= 1);   /* this one */
    CU_ASSERT(metric_sum(t, "ioxide_http_sent_bytes_total", NULL, NULL) > 30 * 50);
    CU_ASSERT(metric_sum(t, "ioxide_reactor_enters_total", NULL, NULL) > 0);
    uint64_t msgs = metric_sum(t, "ioxide_reactor_msgs_sent_total", NULL, &n);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT(metric_sum(t, "ioxide_reactor_msg_rings_total", NULL, &n) <= msgs);   /* batched: never more rings than messages */
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "# TYPE ioxide_http_requests_total counter\n"));
    hc_response_free(&r);
    /* HEAD: the head only; other methods: 405 with Allow. */
    CU_ASSERT_EQUAL(hc_roundtrip(&c, "HEAD /metrics HTTP/1.1\r\nHost: s\r\n\r\n", &r, 1), HC_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_len, 0);
    hc_response_free(&r);
    CU_ASSERT_EQUAL(hc_roundtrip(&c, "DELETE /metrics HTTP/1.1\r\nHost: s\r\n\r\n", &r, 0), HC_OK);
    CU_ASSERT_EQUAL(r.status, 405);
    CU_ASSERT_PTR_NOT_NULL(hc_header(&r, "Allow"));
    hc_response_free(&r);
    /* The application still answers everything else. */
    CU_ASSERT_EQUAL(hc_roundtrip(&c, "GET / HTTP/1.1\r\nHost: s\r\n\r\n", &r, 0), HC_OK);
    CU_ASSERT(r.status == 200 && r.body_len == 2);
    hc_response_free(&r);
    hc_close(&c);
    CU_ASSERT_EQUAL(hc_server_stop(&s, NULL), 0);
    hc_server_free(&s);
}

/* Kinds other than HTTP report through the registry (struct
 * iox_kind.counters): pg mode against a port where no database listens
 * answers 503, and the scrape shows each reactor's pool refusing. */
IOX_TEST(stats, pg_pool_counters_through_the_registry)
{
    const char *env[] = {"PLAYGROUND_MODE=pg", "REACTORS=2", "IOX_STATS_PATH=/metrics", "PGHOST=127.0.0.1",
                         "PGPORT=1", "PGUSER=nobody", "PGDATABASE=nothing", "PGSSLMODE=disable", NULL};
    struct hc_server s;
    CU_ASSERT_FATAL(hc_server_start(&s, env) == 0);
    for (int i = 0; i < 6; i++) {
        struct hc_conn c;
        CU_ASSERT_FATAL(hc_connect(&c, s.port, 2000) == 0);
        struct hc_response r;
        CU_ASSERT_EQUAL(hc_roundtrip(&c, "GET / HTTP/1.1\r\nHost: s\r\n\r\n", &r, 0), HC_OK);
        CU_ASSERT_EQUAL(r.status, 503);
        hc_response_free(&r);
        hc_close(&c);
    }
    struct hc_conn c;
    CU_ASSERT_FATAL(hc_connect(&c, s.port, 2000) == 0);
    struct hc_response r;
    CU_ASSERT_EQUAL_FATAL(hc_roundtrip(&c, "GET /metrics HTTP/1.1\r\nHost: s\r\n\r\n", &r, 0), HC_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    const char *t = r.body ? r.body : "";
    unsigned n;
    CU_ASSERT(metric_sum(t, "ioxide_pg_refused_total", NULL, &n) >= 6);
    CU_ASSERT_EQUAL(n, 2);                          /* one pool per reactor */
    CU_ASSERT_EQUAL(metric_sum(t, "ioxide_pg_sessions_up", NULL, &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(metric_sum(t, "ioxide_pg_queries_total", NULL, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "# TYPE ioxide_pg_sessions_up gauge\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "# TYPE ioxide_pg_refused_total counter\n"));
    /* One HELP/TYPE per metric, its samples together. */
    const char *h = strstr(t, "# TYPE ioxide_pg_refused_total");
    CU_ASSERT(h && !strstr(h + 1, "# TYPE ioxide_pg_refused_total"));
    hc_response_free(&r);
    hc_close(&c);
    CU_ASSERT_EQUAL(hc_server_stop(&s, NULL), 0);
    hc_server_free(&s);
}

IOX_TEST(stats, off_unless_set_and_path_checked)
{
    struct hc_server s;
    CU_ASSERT_FATAL(hc_server_start(&s, NULL) == 0);
    struct hc_conn c;
    CU_ASSERT_FATAL(hc_connect(&c, s.port, 2000) == 0);
    struct hc_response r;
    CU_ASSERT_EQUAL(hc_roundtrip(&c, "GET /metrics HTTP/1.1\r\nHost: s\r\n\r\n", &r, 0), HC_OK);
    CU_ASSERT_EQUAL(r.status, 404);                 /* raw mode's own answer */
    hc_response_free(&r);
    hc_close(&c);
    CU_ASSERT_EQUAL(hc_server_stop(&s, NULL), 0);
    hc_server_free(&s);
    /* A path that is not one: one line, exit 2. */
    const char *env[] = {"IOX_STATS_PATH=metrics", NULL};
    CU_ASSERT_FATAL(hc_server_spawn(&s, env, hc_free_port()) == 0);
    CU_ASSERT_EQUAL(hc_server_wait_exit(&s, 3000), 2);
    char *e = hc_server_stderr(&s);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "IOX_STATS_PATH=metrics must be a path"));
    free(e);
    hc_server_free(&s);
}

IOX_SUITE(stats, NULL, NULL);
