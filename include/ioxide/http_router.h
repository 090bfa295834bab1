/* http_router.h — query strings and a small router for HTTP applications.
 *
 * Query strings (RFC 3986 §3.4, the application/x-www-form-urlencoded
 * convention for '+'): iterate `key=value` pairs as raw views into the
 * request, and percent-decode a view into a buffer of the caller's.
 *
 * The router: a table of routes (method, pattern, handler) built once at
 * startup (iox_router_build: patterns checked, segments precomputed) and
 * then only read by every reactor, so it needs no lock. Patterns:
 *   "/items"          exact path
 *   "/items/:id"      ":name" captures one non-empty path segment
 *   "/static/" "*"    a last segment that is "*" captures the rest of the
 *                     path, possibly empty (the pattern is the two strings
 *                     joined: a slash and a star cannot be written together here)
 * A request path matches segment by segment; when several routes match,
 * the most specific wins (a literal segment beats a capture, a capture
 * beats "*", earlier in the table breaks ties). A matching path with no
 * route for the method answers 405 with Allow (HEAD is served by a GET
 * route; OPTIONS is answered 200 with Allow unless a route takes it); no
 * matching path answers 404 (or calls the fallback). */
#ifndef IOX_HTTP_ROUTER_H
#define IOX_HTTP_ROUTER_H
#include <ioxide/http_conn.h>
#include <stddef.h>
#include <stdint.h>

/* ---- query strings ---- */

struct iox_str { const char *ptr; uint32_t len; };

/* The next `key=value` pair of q[0, len) from *pos (start at 0): views into
 * q, still percent-encoded; a pair without '=' has an empty value. Empty
 * pairs ("a=1&&b=2") are skipped. 1 and the pair, or 0 at the end. */
int iox_http_query_next(const char *q, size_t len, size_t *pos, struct iox_str *key, struct iox_str *val);

/* Percent-decode in[0, n) into out (cap bytes; no NUL written); '+'
 * becomes a space when plus_is_space (form encoding). Returns the decoded
 * length, -EINVAL for a malformed escape ("%4", "%zz") or a decoded NUL
 * byte (never a valid part of a name or value here), -ENOSPC when out is
 * too small. out may equal in (decoding only shrinks). */
long iox_http_pct_decode(const char *in, size_t n, char *out, size_t cap, int plus_is_space);

/* The first value of key in the query, decoded into out (see above):
 * its length, -ENOENT when absent, or a negative error from decoding. */
long iox_http_query_get(const struct iox_http_request *req, const char *key, char *out, size_t cap);

/* ---- the router ---- */

#define IOX_ROUTE_MAX_CAPTURES 8

struct iox_route_match {
    unsigned ncaps;
    struct { struct iox_str name, value; } cap[IOX_ROUTE_MAX_CAPTURES];
    struct iox_str rest;           /* what "*" captured (len 0 without one) */
};

/* A handler: as iox_http_app.on_request (IOX_HANDLED or IOX_ASYNC), with
 * the captures (views into the request: valid during the call). */
typedef int (*iox_route_fn)(struct iox_conn *c, const struct iox_http_request *req,
                            const struct iox_route_match *m, void *ctx);

struct iox_route {
    const char *method;            /* "GET", "POST", ...; NULL: any method */
    const char *pattern;
    iox_route_fn fn;
    void *ctx;
};

struct iox_router;

/* Build a router from n routes (copied; the strings must outlive it).
 * fallback (may be NULL) answers paths no route matches (instead of 404).
 * 0 and *out, or -EINVAL with one line in why naming the route and what is
 * wrong (pattern not starting with '/', empty capture name, '*' not last,
 * too many captures, no handler), or -ENOMEM. Call at startup. */
int iox_router_build(const struct iox_route *routes, size_t n, iox_route_fn fallback, void *fallback_ctx,
                     struct iox_router **out, char *why, size_t why_len);
void iox_router_free(struct iox_router *rt);

/* What a request resolves to, without answering (for tests and logs). */
enum { IOX_ROUTE_FOUND = 0, IOX_ROUTE_NOT_FOUND = 404, IOX_ROUTE_METHOD = 405, IOX_ROUTE_OPTIONS = 200 };
/* Resolve method (enum iox_http_method; method_name for others) + path.
 * FOUND: *route and *m are set. METHOD / OPTIONS: allow (cap bytes) gets
 * the "GET, HEAD, ..." list of the path's methods. NOT_FOUND otherwise. */
int iox_router_resolve(const struct iox_router *rt, int method_id, const char *method_name, uint32_t method_len,
                       const char *path, uint32_t path_len, const struct iox_route **route,
                       struct iox_route_match *m, char *allow, size_t cap);

/* Answer a request: the route's handler, or 404 / 405 with Allow /
 * 200 to OPTIONS with Allow. Returns what the handler returned
 * (IOX_HANDLED for the router's own answers). */
int iox_router_dispatch(const struct iox_router *rt, struct iox_conn *c, const struct iox_http_request *req);

/* An iox_http_app whose on_request is iox_router_dispatch; pass the
 * router as app_ctx. */
extern const struct iox_http_app iox_router_app;

#endif
