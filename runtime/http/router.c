/* router.c — query-string helpers and the router (ioxide/http_router.h).
 * The router is built once (malloc at startup) and only read afterwards:
 * resolving a request walks the precomputed segments of each route,
 * allocation-free. */
#include <ioxide/http_router.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- query strings ---- */

int iox_http_query_next(const char *q, size_t len, size_t *pos, struct iox_str *key, struct iox_str *val)
{
    size_t i = *pos;
    while (i < len && q[i] == '&') i++;
    if (i >= len) { *pos = len; return 0; }
    size_t k = i;
    while (i < len && q[i] != '&' && q[i] != '=') i++;
    key->ptr = q + k;
    key->len = (uint32_t)(i - k);
    if (i < len && q[i] == '=') {
        size_t v = ++i;
        while (i < len && q[i] != '&') i++;
        val->ptr = q + v;
        val->len = (uint32_t)(i - v);
    } else {
        val->ptr = q + i;
        val->len = 0;
    }
    *pos = i;
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long iox_http_pct_decode(const char *in, size_t n, char *out, size_t cap, int plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= n) return -EINVAL;   /* "%" or "%4" at the end */
            int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
            if (h < 0 || l < 0) return -EINVAL;
            c = (char)(h << 4 | l);
            if (c == 0) return -EINVAL;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (o >= cap) return -ENOSPC;
        out[o++] = c;
    }
    return (long)o;
}

long iox_http_query_get(const struct iox_http_request *req, const char *key, char *out, size_t cap)
{
    size_t pos = 0, klen = strlen(key);
    struct iox_str k, v;
    char kbuf[256];
    while (iox_http_query_next(req->query, req->query_len, &pos, &k, &v)) {
        long kl = iox_http_pct_decode(k.ptr, k.len, kbuf, sizeof kbuf, 1);
        if (kl < 0 || (size_t)kl != klen || memcmp(kbuf, key, klen)) continue;
        return iox_http_pct_decode(v.ptr, v.len, out, cap, 1);
    }
    return -ENOENT;
}

/* ---- the router ---- */

enum { SEG_LIT, SEG_CAP, SEG_REST };

struct seg { uint8_t kind; const char *s; uint32_t len; };

struct rroute {
    struct iox_route r;
    int method_id;                  /* -1: any; IOX_HTTP_OTHER: compare the name */
    struct seg *segs;
    unsigned nsegs;
    unsigned score;                 /* specificity, for ties between matches */
};

struct iox_router {
    struct rroute *routes;
    size_t n;
    iox_route_fn fallback;
    void *fallback_ctx;
};

static const char *const method_names[] = {
    [IOX_HTTP_GET] = "GET", [IOX_HTTP_HEAD] = "HEAD", [IOX_HTTP_POST] = "POST", [IOX_HTTP_PUT] = "PUT",
    [IOX_HTTP_DELETE] = "DELETE", [IOX_HTTP_OPTIONS] = "OPTIONS", [IOX_HTTP_PATCH] = "PATCH",
    [IOX_HTTP_CONNECT] = "CONNECT", [IOX_HTTP_TRACE] = "TRACE",
};
#define NMETHODS (sizeof method_names / sizeof *method_names)

static int method_of(const char *m)
{
    for (unsigned i = 1; i < NMETHODS; i++)
        if (method_names[i] && !strcmp(method_names[i], m)) return (int)i;
    return IOX_HTTP_OTHER;
}

void iox_router_free(struct iox_router *rt)
{
    if (!rt) return;
    for (size_t i = 0; i < rt->n; i++) free(rt->routes[i].segs);
    free(rt->routes);
    free(rt);
}

static int compile(struct rroute *rr, char *why, size_t why_len, size_t idx)
{
    const char *p = rr->r.pattern;
    if (!p || p[0] != '/') {
        snprintf(why, why_len, "route %zu (%s): the pattern must start with '/'", idx, p ? p : "(null)");
        return -EINVAL;
    }
    if (!rr->r.fn) {
        snprintf(why, why_len, "route %zu (%s): no handler", idx, p);
        return -EINVAL;
    }
    unsigned n = 0, caps = 0;
    for (const char *q = p; *q; q++) n += *q == '/';
    rr->segs = calloc(n + 1, sizeof *rr->segs);
    if (!rr->segs) return -ENOMEM;
    rr->nsegs = 0;
    rr->score = 0;
    const char *q = p + 1;
    for (;;) {
        const char *e = strchr(q, '/');
        size_t len = e ? (size_t)(e - q) : strlen(q);
        struct seg *s = &rr->segs[rr->nsegs];
        if (len == 1 && q[0] == '*') {
            if (e) { snprintf(why, why_len, "route %zu (%s): '*' must be the last segment", idx, p); return -EINVAL; }
            s->kind = SEG_REST;
        } else if (len && q[0] == ':') {
            if (len == 1) { snprintf(why, why_len, "route %zu (%s): a ':' capture needs a name", idx, p); return -EINVAL; }
            if (++caps > IOX_ROUTE_MAX_CAPTURES) {
                snprintf(why, why_len, "route %zu (%s): more than %d captures", idx, p, IOX_ROUTE_MAX_CAPTURES);
                return -EINVAL;
            }
            s->kind = SEG_CAP;
            s->s = q + 1;
            s->len = (uint32_t)len - 1;
            rr->score += 1;
        } else {
            if (memchr(q, '*', len) || memchr(q, ':', len)) {
                snprintf(why, why_len, "route %zu (%s): '*' and ':' only begin a segment of their own", idx, p);
                return -EINVAL;
            }
            s->kind = SEG_LIT;
            s->s = q;
            s->len = (uint32_t)len;
            rr->score += 2;
        }
        rr->nsegs++;
        if (!e) break;
        q = e + 1;
    }
    rr->method_id = rr->r.method ? method_of(rr->r.method) : -1;
    return 0;
}

int iox_router_build(const struct iox_route *routes, size_t n, iox_route_fn fallback, void *fallback_ctx,
                     struct iox_router **out, char *why, size_t why_len)
{
    struct iox_router *rt = calloc(1, sizeof *rt);
    if (!rt) return -ENOMEM;
    rt->routes = calloc(n ? n : 1, sizeof *rt->routes);
    if (!rt->routes) { free(rt); return -ENOMEM; }
    rt->n = n;
    rt->fallback = fallback;
    rt->fallback_ctx = fallback_ctx;
    for (size_t i = 0; i < n; i++) {
        rt->routes[i].r = routes[i];
        int rc = compile(&rt->routes[i], why, why_len, i);
        if (rc < 0) { iox_router_free(rt); return rc; }
    }
    *out = rt;
    return 0;
}

/* Does path match rr? Fills m (captures are views into path). */
static int match(const struct rroute *rr, const char *path, uint32_t plen, struct iox_route_match *m)
{
    if (!plen || path[0] != '/') return 0;
    m->ncaps = 0;
    m->rest.ptr = path + plen;
    m->rest.len = 0;
    uint32_t i = 1;
    for (unsigned k = 0; k < rr->nsegs; k++) {
        const struct seg *s = &rr->segs[k];
        if (s->kind == SEG_REST) {
            m->rest.ptr = path + i;
            m->rest.len = plen - i;
            return 1;
        }
        uint32_t j = i;
        while (j < plen && path[j] != '/') j++;
        if (i > plen) return 0;
        uint32_t len = j - i;
        if (s->kind == SEG_LIT) {
            if (len != s->len || memcmp(path + i, s->s, len)) return 0;
        } else {
            if (!len) return 0;
            m->cap[m->ncaps].name.ptr = s->s;
            m->cap[m->ncaps].name.len = s->len;
            m->cap[m->ncaps].value.ptr = path + i;
            m->cap[m->ncaps].value.len = len;
            m->ncaps++;
        }
        if (k + 1 == rr->nsegs) return j == plen;   /* the path must end here too */
        if (j >= plen) {
            /* "/a" against a pattern "/a/" + "*": the rest is empty. */
            return k + 2 == rr->nsegs && rr->segs[k + 1].kind == SEG_REST ? (m->rest.ptr = path + plen, 1) : 0;
        }
        i = j + 1;
    }
    return 0;
}

static int method_ok(const struct rroute *rr, int method_id, const char *name, uint32_t nlen)
{
    if (rr->method_id < 0) return 1;
    if (rr->method_id == IOX_HTTP_OTHER)
        return name && strlen(rr->r.method) == nlen && !memcmp(rr->r.method, name, nlen);
    return rr->method_id == method_id;
}

static void allow_add(char *allow, size_t cap, const char *m)
{
    size_t l = strlen(allow);
    /* Once each. */
    for (const char *p = allow; (p = strstr(p, m)) != NULL; p++) {
        size_t ml = strlen(m);
        if ((p == allow || (p >= allow + 2 && p[-2] == ',' && p[-1] == ' ')) && (p[ml] == ',' || p[ml] == 0)) return;
    }
    snprintf(allow + l, cap > l ? cap - l : 0, "%s%s", l ? ", " : "", m);
}

int iox_router_resolve(const struct iox_router *rt, int method_id, const char *method_name, uint32_t method_len,
                       const char *path, uint32_t path_len, const struct iox_route **route,
                       struct iox_route_match *m, char *allow, size_t cap)
{
    const struct rroute *best = NULL, *best_get = NULL;
    struct iox_route_match tmp, best_m, get_m;
    int any_path = 0;
    if (cap) allow[0] = 0;
    for (size_t i = 0; i < rt->n; i++) {
        const struct rroute *rr = &rt->routes[i];
        if (!match(rr, path, path_len, &tmp)) continue;
        any_path = 1;
        if (cap) {
            if (rr->method_id < 0) allow_add(allow, cap, "GET"), allow_add(allow, cap, "HEAD"), allow_add(allow, cap, "POST"),
                                   allow_add(allow, cap, "PUT"), allow_add(allow, cap, "DELETE"), allow_add(allow, cap, "PATCH");
            else {
                allow_add(allow, cap, rr->r.method);
                if (rr->method_id == IOX_HTTP_GET) allow_add(allow, cap, "HEAD");
            }
        }
        if (method_ok(rr, method_id, method_name, method_len)) {
            if (!best || rr->score > best->score) { best = rr; best_m = tmp; }
        } else if (method_id == IOX_HTTP_HEAD && rr->method_id == IOX_HTTP_GET) {
            if (!best_get || rr->score > best_get->score) { best_get = rr; get_m = tmp; }
        }
    }
    if (!best && best_get) { best = best_get; best_m = get_m; }
    if (best) {
        *route = &best->r;
        *m = best_m;
        return IOX_ROUTE_FOUND;
    }
    if (!any_path) return IOX_ROUTE_NOT_FOUND;
    if (cap) allow_add(allow, cap, "OPTIONS");
    return method_id == IOX_HTTP_OPTIONS ? IOX_ROUTE_OPTIONS : IOX_ROUTE_METHOD;
}

int iox_router_dispatch(const struct iox_router *rt, struct iox_conn *c, const struct iox_http_request *req)
{
    const struct iox_route *route;
    struct iox_route_match m;
    char allow[128], hdr[160];
    int r = iox_router_resolve(rt, req->method_id, req->method, req->method_len, req->path, req->path_len,
                               &route, &m, allow, sizeof allow);
    switch (r) {
    case IOX_ROUTE_FOUND:
        return route->fn(c, req, &m, route->ctx);
    case IOX_ROUTE_OPTIONS:
        snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
        iox_resp_head(c, 200, NULL, 0, hdr);
        return IOX_HANDLED;
    case IOX_ROUTE_METHOD:
        snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
        iox_resp_simple_ex(c, 405, "text/plain", hdr, "method not allowed\n", 19);
        return IOX_HANDLED;
    default:
        if (rt->fallback) {
            memset(&m, 0, sizeof m);
            return rt->fallback(c, req, &m, rt->fallback_ctx);
        }
        iox_resp_simple(c, 404, "text/plain", "not found\n", 10);
        return IOX_HANDLED;
    }
}

static int router_on_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    return iox_router_dispatch(ctx, c, req);
}

const struct iox_http_app iox_router_app = {router_on_request};
