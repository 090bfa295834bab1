/* test_router.c — suite `router`: query strings and the router
 * (include/ioxide/http_router.h): decoding, matching, specificity, 405
 * with Allow, OPTIONS, HEAD on GET routes, build-time errors, and the
 * router answering real requests through the simulated ring. */
#include "iox_test.h"
#include <ioxide/http_router.h>
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- query strings ---- */

IOX_TEST(router, query_pairs_and_decoding)
{
    const char *q = "a=1&&b=x%20y+z&flag&c=%E2%82%AC&=v";
    size_t pos = 0;
    struct iox_str k, v;
    const char *want[][2] = {{"a", "1"}, {"b", "x%20y+z"}, {"flag", ""}, {"c", "%E2%82%AC"}, {"", "v"}};
    for (unsigned i = 0; i < 5; i++) {
        CU_ASSERT_FATAL(iox_http_query_next(q, strlen(q), &pos, &k, &v) == 1);
        CU_ASSERT(k.len == strlen(want[i][0]) && !memcmp(k.ptr, want[i][0], k.len));
        CU_ASSERT(v.len == strlen(want[i][1]) && !memcmp(v.ptr, want[i][1], v.len));
    }
    CU_ASSERT_EQUAL(iox_http_query_next(q, strlen(q), &pos, &k, &v), 0);

    char out[32];
    CU_ASSERT_EQUAL(iox_http_pct_decode("x%20y+z", 7, out, sizeof out, 1), 5);
    CU_ASSERT(!memcmp(out, "x y z", 5));
    CU_ASSERT_EQUAL(iox_http_pct_decode("x%20y+z", 7, out, sizeof out, 0), 5);
    CU_ASSERT(!memcmp(out, "x y+z", 5));
    CU_ASSERT_EQUAL(iox_http_pct_decode("%E2%82%AC", 9, out, sizeof out, 1), 3);
    CU_ASSERT(!memcmp(out, "\xE2\x82\xAC", 3));
    CU_ASSERT_EQUAL(iox_http_pct_decode("%4", 2, out, sizeof out, 1), -EINVAL);
    CU_ASSERT_EQUAL(iox_http_pct_decode("%", 1, out, sizeof out, 1), -EINVAL);
    CU_ASSERT_EQUAL(iox_http_pct_decode("%zz", 3, out, sizeof out, 1), -EINVAL);
    CU_ASSERT_EQUAL(iox_http_pct_decode("a%00b", 5, out, sizeof out, 1), -EINVAL);
    CU_ASSERT_EQUAL(iox_http_pct_decode("abcdef", 6, out, 3, 1), -ENOSPC);
    char inplace[] = "a%41b";
    CU_ASSERT_EQUAL(iox_http_pct_decode(inplace, 5, inplace, 5, 1), 3);
    CU_ASSERT(!memcmp(inplace, "aAb", 3));

    struct iox_http_request req;
    memset(&req, 0, sizeof req);
    req.query = "x=1&name=J%C3%B6rg+B&name=second";
    req.query_len = (uint32_t)strlen(req.query);
    long n = iox_http_query_get(&req, "name", out, sizeof out);
    CU_ASSERT_EQUAL(n, 7);
    CU_ASSERT(n == 7 && !memcmp(out, "J\xC3\xB6rg B", 7));
    CU_ASSERT_EQUAL(iox_http_query_get(&req, "nope", out, sizeof out), -ENOENT);
}

/* ---- the router ---- */

static int h(struct iox_conn *c, const struct iox_http_request *req, const struct iox_route_match *m, void *ctx)
{
    (void)c; (void)req; (void)m; (void)ctx;
    return IOX_HANDLED;
}
static int tag_a, tag_b, tag_c, tag_d, tag_e, tag_f;

static const struct iox_route table[] = {
    {"GET", "/items", h, &tag_a},
    {"POST", "/items", h, &tag_b},
    {"GET", "/items/:id", h, &tag_c},
    {"GET", "/items/new", h, &tag_d},           /* literal beats :id */
    {"DELETE", "/items/:id", h, &tag_e},
    {NULL, "/static/*", h, &tag_f},              /* any method */
};

static int resolve(const struct iox_router *rt, int method, const char *path, const struct iox_route **r,
                   struct iox_route_match *m, char *allow)
{
    return iox_router_resolve(rt, method, NULL, 0, path, (uint32_t)strlen(path), r, m, allow, 128);
}

IOX_TEST(router, matching_and_answers)
{
    struct iox_router *rt;
    char why[256] = "", allow[128];
    CU_ASSERT_FATAL(iox_router_build(table, sizeof table / sizeof *table, NULL, NULL, &rt, why, sizeof why) == 0);
    const struct iox_route *r;
    struct iox_route_match m;

    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_GET, "/items", &r, &m, allow), IOX_ROUTE_FOUND);
    CU_ASSERT_PTR_EQUAL(r->ctx, &tag_a);
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_POST, "/items", &r, &m, allow), IOX_ROUTE_FOUND);
    CU_ASSERT_PTR_EQUAL(r->ctx, &tag_b);
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_GET, "/items/42", &r, &m, allow), IOX_ROUTE_FOUND);
    CU_ASSERT_PTR_EQUAL(r->ctx, &tag_c);
    CU_ASSERT_EQUAL(m.ncaps, 1);
    CU_ASSERT(m.cap[0].name.len == 2 && !memcmp(m.cap[0].name.ptr, "id", 2));
    CU_ASSERT(m.cap[0].value.len == 2 && !memcmp(m.cap[0].value.ptr, "42", 2));
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_GET, "/items/new", &r, &m, allow), IOX_ROUTE_FOUND);
    CU_ASSERT_PTR_EQUAL(r->ctx, &tag_d);
    /* HEAD is served by the GET route. */
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_HEAD, "/items/7", &r, &m, allow), IOX_ROUTE_FOUND);
    CU_ASSERT_PTR_EQUAL(r->ctx, &tag_c);
    /* A path with routes but not for this method: 405 and what is allowed. */
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_PUT, "/items", &r, &m, allow), IOX_ROUTE_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "GET, HEAD, POST, OPTIONS");
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_POST, "/items/9", &r, &m, allow), IOX_ROUTE_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "GET, HEAD, DELETE, OPTIONS");
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_OPTIONS, "/items", &r, &m, allow), IOX_ROUTE_OPTIONS);
    CU_ASSERT_STRING_EQUAL(allow, "GET, HEAD, POST, OPTIONS");
    /* Captures need a non-empty segment; exact paths end where they end. */
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_GET, "/items/", &r, &m, allow), IOX_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_GET, "/items/1/x", &r, &m, allow), IOX_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_GET, "/itemsx", &r, &m, allow), IOX_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_GET, "/", &r, &m, allow), IOX_ROUTE_NOT_FOUND);
    /* The rest, any method, empty rest allowed. */
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_PATCH, "/static/css/site.css", &r, &m, allow), IOX_ROUTE_FOUND);
    CU_ASSERT_PTR_EQUAL(r->ctx, &tag_f);
    CU_ASSERT(m.rest.len == 12 && !memcmp(m.rest.ptr, "css/site.css", 12));
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_GET, "/static/", &r, &m, allow), IOX_ROUTE_FOUND);
    CU_ASSERT_EQUAL(m.rest.len, 0);
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_GET, "/static", &r, &m, allow), IOX_ROUTE_FOUND);
    CU_ASSERT_EQUAL(m.rest.len, 0);
    iox_router_free(rt);
}

/* A method that is a substring of one already listed is still listed
 * (and the check reads nothing before the list). */
IOX_TEST(router, allow_lists_each_method_once)
{
    static const struct iox_route routes[] = {
        {"PUT", "/x", h, NULL}, {"UT", "/x", h, NULL}, {"PUT", "/x", h, NULL}, {"GET", "/x", h, NULL},
    };
    struct iox_router *rt;
    char why[128], allow[128];
    CU_ASSERT_FATAL(iox_router_build(routes, 4, NULL, NULL, &rt, why, sizeof why) == 0);
    const struct iox_route *r;
    struct iox_route_match m;
    CU_ASSERT_EQUAL(resolve(rt, IOX_HTTP_DELETE, "/x", &r, &m, allow), IOX_ROUTE_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "PUT, UT, GET, HEAD, OPTIONS");
    iox_router_free(rt);
}

IOX_TEST(router, build_errors_name_the_route)
{
    static const struct { struct iox_route r; const char *msg; } bad[] = {
        {{"GET", "items", h, NULL}, "route 0 (items): the pattern must start with '/'"},
        {{"GET", "/a/*/b", h, NULL}, "route 0 (/a/*/b): '*' must be the last segment"},
        {{"GET", "/a/:", h, NULL}, "route 0 (/a/:): a ':' capture needs a name"},
        {{"GET", "/a", NULL, NULL}, "route 0 (/a): no handler"},
        {{"GET", "/a:b", h, NULL}, "route 0 (/a:b): '*' and ':' only begin a segment of their own"},
        {{"GET", "/:a/:b/:c/:d/:e/:f/:g/:h/:i", h, NULL}, "more than 8 captures"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct iox_router *rt = NULL;
        char why[256] = "";
        CU_ASSERT_EQUAL(iox_router_build(&bad[i].r, 1, NULL, NULL, &rt, why, sizeof why), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, bad[i].msg));
        if (!strstr(why, bad[i].msg)) fprintf(stderr, "\n  got '%s', want '%s'", why, bad[i].msg);
    }
}

/* ---- through a connection on the simulated ring ---- */

static int get_item(struct iox_conn *c, const struct iox_http_request *req, const struct iox_route_match *m, void *ctx)
{
    (void)req; (void)ctx;
    char body[64];
    int n = snprintf(body, sizeof body, "item %.*s", (int)m->cap[0].value.len, m->cap[0].value.ptr);
    iox_resp_simple(c, 200, "text/plain", body, (size_t)n);
    return IOX_HANDLED;
}

static void sink(void *ctx, const struct iox_cqe *cqe) { iox_reactor_dispatch(ctx, cqe); }

IOX_TEST(router, answers_requests)
{
    static const struct iox_route routes[] = {{"GET", "/items/:id", get_item, NULL}};
    struct iox_router *rt;
    char why[128];
    CU_ASSERT_FATAL(iox_router_build(routes, 1, NULL, NULL, &rt, why, sizeof why) == 0);
    struct iox_server_config cfg = {.shutdown_grace_ms = 100};
    struct iox_http_config hcfg = {.max_conns = 2, .app = &iox_router_app, .app_ctx = rt};
    struct iox_reactor r;
    struct iox_seam_sim *sim = iox_sim_create(8, 4096);
    CU_ASSERT_FATAL(sim && iox_reactor_init_sim(&r, iox_sim_seam(sim), &cfg) == 0);
    struct iox_http_server *hs;
    CU_ASSERT_FATAL(iox_http_server_open(&r, &hcfg, 0, &hs) == 0);
    iox_sim_set_sink(sim, sink, &r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(iox_http_adopt(hs, 9));
    iox_sim_publish(sim);
    iox_reactor_flush(&r);
    static const char req[] = "GET /items/42 HTTP/1.1\r\nHost: a\r\n\r\n"
                              "PUT /items/42 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
                              "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n";
    CU_ASSERT_EQUAL(iox_sim_recv(sim, 9, req, sizeof req - 1, 0), (long)(sizeof req - 1));
    for (int i = 0; i < 10; i++) {
        iox_sim_publish(sim);
        iox_reactor_flush(&r);
        iox_sim_pump(sim);
        if (iox_sim_has_op(sim, IOX_OP_SEND, 9)) iox_sim_send(sim, 9, 0);
    }
    size_t n;
    const char *out = iox_sim_peer_bytes(sim, 9, &n);
    CU_ASSERT_PTR_NOT_NULL(memmem(out, n, "HTTP/1.1 200 OK", 15));
    CU_ASSERT_PTR_NOT_NULL(memmem(out, n, "item 42", 7));
    CU_ASSERT_PTR_NOT_NULL(memmem(out, n, "HTTP/1.1 405 Method Not Allowed", 31));
    CU_ASSERT_PTR_NOT_NULL(memmem(out, n, "Allow: GET, HEAD, OPTIONS\r\n", 27));
    CU_ASSERT_PTR_NOT_NULL(memmem(out, n, "HTTP/1.1 404 Not Found", 22));
    iox_http_server_close(hs);
    iox_reactor_fini(&r);
    iox_sim_destroy(sim);
    iox_router_free(rt);
}

IOX_SUITE(router, NULL, NULL);
