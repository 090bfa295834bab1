/* http_oracle.c — see http_oracle.h. Written from RFC 9110 / 9112, not from
 * runtime/http: nothing here is shared with the response writer. */
#include "http_oracle.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *oracle_reason(int status)
{
    switch (status) {       /* RFC 9110 §15, in its order */
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return NULL;
    }
}

/* ---- helpers ---- */

static const char *find_crlf(const char *p, const char *e)
{
    for (; p + 1 < e; p++)
        if (p[0] == '\r' && p[1] == '\n') return p;
    return NULL;
}

static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e - s == tl && !strncasecmp(v + s, tok, tl)) return 1;
    }
    return 0;
}

static int tchar(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* ---- requests ---- */

/* One request from [p, e): 1 and *used, 0 when incomplete, -1 when it is
 * not a request the oracle can read (the server should refuse it too). The
 * de-chunked body goes to *scratch (grown with realloc). */
static int read_request(const char *p, const char *e, struct oracle_req *rq, size_t *used,
                        char **scratch, size_t *scap)
{
    const char *s = p;
    const char *le = find_crlf(p, e);
    if (!le) return 0;
    memset(rq, 0, sizeof *rq);
    const char *sp1 = memchr(p, ' ', (size_t)(le - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(le - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp1 == p || (size_t)(sp1 - p) >= sizeof rq->method ||
        (size_t)(sp2 - sp1 - 1) >= sizeof rq->target || sp2 + 1 == le)
        return -1;
    memcpy(rq->method, p, (size_t)(sp1 - p));
    memcpy(rq->target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    if (le - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) || !isdigit((unsigned char)sp2[8])) return -1;
    rq->minor = sp2[8] - '0';
    if (rq->minor > 1) return -1;
    for (const char *m = p; m < sp1; m++)
        if (!tchar((unsigned char)*m)) return -1;
    int ka_tok = 0, close_tok = 0, chunked = 0;
    long long cl = -1;
    p = le + 2;
    for (;;) {
        le = find_crlf(p, e);
        if (!le) return 0;
        if (le == p) { p += 2; break; }
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (!colon || colon == p) return -1;
        const char *v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t')) v++;
        size_t nl = (size_t)(colon - p), vl = (size_t)(le - v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
        if (nl == 10 && !strncasecmp(p, "connection", 10)) {
            ka_tok |= has_token(v, vl, "keep-alive");
            close_tok |= has_token(v, vl, "close");
        } else if (nl == 14 && !strncasecmp(p, "content-length", 14)) {
            if (!vl) return -1;
            long long x = 0;
            for (size_t i = 0; i < vl; i++) {
                if (!isdigit((unsigned char)v[i]) || x > (1ll << 40)) return -1;
                x = x * 10 + (v[i] - '0');
            }
            if (cl >= 0 && cl != x) return -1;
            cl = x;
        } else if (nl == 17 && !strncasecmp(p, "transfer-encoding", 17)) {
            if (!has_token(v, vl, "chunked")) return -1;
            chunked = 1;
        }
        p = le + 2;
    }
    if (chunked && cl >= 0) return -1;
    rq->keep_alive = rq->minor == 1 ? !close_tok : (ka_tok && !close_tok);
    size_t blen = 0;
    if (cl > 0) {
        if (e - p < cl) return 0;
        if ((size_t)cl > *scap) { *scap = (size_t)cl; *scratch = realloc(*scratch, *scap); }
        memcpy(*scratch, p, (size_t)cl);
        blen = (size_t)cl;
        p += cl;
    } else if (chunked) {
        for (;;) {
            le = find_crlf(p, e);
            if (!le) return 0;
            size_t sz = 0;
            const char *h = p;
            if (h == le || !isxdigit((unsigned char)*h)) return -1;
            while (h < le && isxdigit((unsigned char)*h)) {
                if (sz > (1u << 30)) return -1;
                sz = sz * 16 + (size_t)(isdigit((unsigned char)*h) ? *h - '0' : (tolower((unsigned char)*h) - 'a' + 10));
                h++;
            }
            if (h < le && *h != ';') return -1;
            p = le + 2;
            if (sz == 0) {
                for (;;) {                     /* trailers, then the empty line */
                    le = find_crlf(p, e);
                    if (!le) return 0;
                    int empty = le == p;
                    p = le + 2;
                    if (empty) break;
                }
                break;
            }
            if ((size_t)(e - p) < sz + 2) return 0;
            if (blen + sz > *scap) { *scap = (blen + sz) * 2; *scratch = realloc(*scratch, *scap); }
            memcpy(*scratch + blen, p, sz);
            blen += sz;
            p += sz;
            if (p[0] != '\r' || p[1] != '\n') return -1;
            p += 2;
        }
    }
    rq->body = *scratch;
    rq->body_len = blen;
    *used = (size_t)(p - s);
    return 1;
}

/* ---- responses ---- */

struct resp {
    int status;
    int conn_close, conn_keep_alive;
    int framing;             /* 0 none (bodiless), 1 Content-Length, 2 chunked, 3 close-delimited */
    const char *body;        /* Content-Length / close-delimited: where it lies */
    size_t body_len;
    char *chunked_body;      /* chunked: de-chunked copy (malloc) */
};

static int date_ok(const char *v, size_t n)
{
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7). */
    static const char *const days = "Mon,Tue,Wed,Thu,Fri,Sat,Sun,";
    static const char *const months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec ";
    if (n != 29) return 0;
    char d[5] = {v[0], v[1], v[2], v[3], 0};
    if (!strstr(days, d) || v[4] != ' ') return 0;
    if (!isdigit((unsigned char)v[5]) || !isdigit((unsigned char)v[6]) || v[7] != ' ') return 0;
    char m[5] = {v[8], v[9], v[10], ' ', 0};
    if (!strstr(months, m) || v[11] != ' ') return 0;
    for (int i = 12; i < 16; i++) if (!isdigit((unsigned char)v[i])) return 0;
    if (v[16] != ' ' || v[19] != ':' || v[22] != ':' || v[25] != ' ' || memcmp(v + 26, "GMT", 3)) return 0;
    for (int i = 17; i < 25; i += 3)
        if (!isdigit((unsigned char)v[i]) || !isdigit((unsigned char)v[i + 1])) return 0;
    return 1;
}

#define FAIL(...) do { snprintf(why, wl, __VA_ARGS__); return -1; } while (0)

/* One response from [p, e) to a request (head: it was HEAD). 1 and *used,
 * 0 when cut short, -1 with why. */
static int read_response(const char *p, const char *e, int head, struct resp *r, size_t *used,
                         char *why, size_t wl)
{
    const char *s = p;
    memset(r, 0, sizeof *r);
    const char *le = find_crlf(p, e);
    if (!le) return 0;
    if (le - p < 13 || memcmp(p, "HTTP/1.1 ", 9) || !isdigit((unsigned char)p[9]) ||
        !isdigit((unsigned char)p[10]) || !isdigit((unsigned char)p[11]) || p[12] != ' ')
        FAIL("malformed status line \"%.*s\"", (int)(le - p > 60 ? 60 : le - p), p);
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const char *want = oracle_reason(r->status);
    size_t rl = (size_t)(le - p - 13);
    if (want && (rl != strlen(want) || memcmp(p + 13, want, rl)))
        FAIL("status %d with reason \"%.*s\", RFC 9110 says \"%s\"", r->status, (int)rl, p + 13, want);
    long long cl = -1;
    int chunked = 0, date = 0;
    p = le + 2;
    for (;;) {
        le = find_crlf(p, e);
        if (!le) return 0;
        if (le == p) { p += 2; break; }
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (!colon || colon == p) FAIL("header line without a name: \"%.*s\"", (int)(le - p), p);
        for (const char *c = p; c < colon; c++)
            if (!tchar((unsigned char)*c)) FAIL("header name \"%.*s\" is not a token", (int)(colon - p), p);
        for (const char *c = colon; c < le; c++)
            if (*c == '\r' || *c == '\n' || *c == 0) FAIL("CR, LF or NUL inside header \"%.*s\"", (int)(colon - p), p);
        const char *v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t')) v++;
        size_t nl = (size_t)(colon - p), vl = (size_t)(le - v);
        if (nl == 14 && !strncasecmp(p, "content-length", 14)) {
            if (cl >= 0) FAIL("two Content-Length headers");
            if (!vl) FAIL("empty Content-Length");
            cl = 0;
            for (size_t i = 0; i < vl; i++) {
                if (!isdigit((unsigned char)v[i])) FAIL("Content-Length \"%.*s\" is not a number", (int)vl, v);
                cl = cl * 10 + (v[i] - '0');
            }
        } else if (nl == 17 && !strncasecmp(p, "transfer-encoding", 17)) {
            if (!has_token(v, vl, "chunked")) FAIL("Transfer-Encoding \"%.*s\" without chunked", (int)vl, v);
            chunked = 1;
        } else if (nl == 10 && !strncasecmp(p, "connection", 10)) {
            r->conn_close |= has_token(v, vl, "close");
            r->conn_keep_alive |= has_token(v, vl, "keep-alive");
        } else if (nl == 4 && !strncasecmp(p, "date", 4)) {
            if (date) FAIL("two Date headers");
            if (!date_ok(v, vl)) FAIL("Date \"%.*s\" is not an IMF-fixdate", (int)vl, v);
            date = 1;
        }
        p = le + 2;
    }
    int st = r->status;
    if (chunked && cl >= 0) FAIL("both Content-Length and Transfer-Encoding (RFC 9112 §6.1)");
    if (st >= 200 && !date) FAIL("status %d without Date (RFC 9110 §6.6.1)", st);
    int bodiless = (st >= 100 && st < 200) || st == 204 || st == 304;
    if ((st < 200 || st == 204) && (cl >= 0 || chunked))
        FAIL("status %d with %s (RFC 9110 §8.6 / RFC 9112 §6.1)", st, chunked ? "Transfer-Encoding" : "Content-Length");
    if (st == 304 && chunked) FAIL("304 with Transfer-Encoding");
    if (bodiless || head) {
        r->framing = 0;
    } else if (chunked) {
        r->framing = 2;
        size_t cap = 256, n = 0;
        r->chunked_body = malloc(cap);
        for (;;) {
            le = find_crlf(p, e);
            if (!le) { free(r->chunked_body); r->chunked_body = NULL; return 0; }
            size_t sz = 0;
            const char *h = p;
            if (h == le || !isxdigit((unsigned char)*h)) { free(r->chunked_body); r->chunked_body = NULL; FAIL("bad chunk size line"); }
            while (h < le && isxdigit((unsigned char)*h)) {
                sz = sz * 16 + (size_t)(isdigit((unsigned char)*h) ? *h - '0' : (tolower((unsigned char)*h) - 'a' + 10));
                h++;
            }
            p = le + 2;
            if (sz == 0) {
                for (;;) {
                    le = find_crlf(p, e);
                    if (!le) { free(r->chunked_body); r->chunked_body = NULL; return 0; }
                    int empty = le == p;
                    p = le + 2;
                    if (empty) break;
                }
                break;
            }
            if ((size_t)(e - p) < sz + 2) { free(r->chunked_body); r->chunked_body = NULL; return 0; }
            if (n + sz > cap) { cap = (n + sz) * 2; r->chunked_body = realloc(r->chunked_body, cap); }
            memcpy(r->chunked_body + n, p, sz);
            n += sz;
            p += sz;
            if (p[0] != '\r' || p[1] != '\n') { free(r->chunked_body); r->chunked_body = NULL; FAIL("chunk data not followed by CRLF"); }
            p += 2;
        }
        r->body = r->chunked_body;
        r->body_len = n;
    } else if (cl >= 0) {
        r->framing = 1;
        if (e - p < cl) return 0;
        r->body = p;
        r->body_len = (size_t)cl;
        p += cl;
    } else {
        r->framing = 3;            /* close-delimited: everything that is left */
        r->body = p;
        r->body_len = (size_t)(e - p);
        p = e;
    }
    *used = (size_t)(p - s);
    return 1;
}

#undef FAIL

int http_oracle_check(const char *req, size_t req_len, const char *resp, size_t resp_len,
                      oracle_expect_fn expect, void *arg, unsigned flags, char *why, size_t why_len)
{
    const char *rp = req, *re = req + req_len;
    const char *op = resp, *oe = resp + resp_len;
    char *scratch = NULL;
    size_t scap = 0;
    int answered = 0;
    char w[200];
    int result = -1;
    why[0] = 0;
#define BAD(...) do { snprintf(w, sizeof w, __VA_ARGS__); \
        snprintf(why, why_len, "answer %u (%s %s): %s", rq.index, rq.method, rq.target, w); goto out; } while (0)
    for (unsigned idx = 0;; idx++) {
        struct oracle_req rq;
        size_t used = 0;
        int rc = read_request(rp, re, &rq, &used, &scratch, &scap);
        if (rc == 0) {
            if (op < oe) {
                snprintf(why, why_len, "%zu bytes after answer %u, which answered the last complete request: \"%.40s\"",
                         (size_t)(oe - op), idx, op);
                goto out;
            }
            break;
        }
        if (rc < 0) {
            memset(&rq, 0, sizeof rq);
            snprintf(rq.method, sizeof rq.method, "?");
            snprintf(rq.target, sizeof rq.target, "(malformed)");
            rq.malformed = 1;
        }
        rq.index = idx;
        if (rc > 0) rp += used;
        struct resp r;
        size_t rused = 0;
        int head = !strcmp(rq.method, "HEAD");
        for (;;) {
            int k = read_response(op, oe, head, &r, &rused, w, sizeof w);
            if (k < 0) { snprintf(why, why_len, "answer %u (%s %s): %s", idx, rq.method, rq.target, w); goto out; }
            if (k == 0) {
                if (flags & ORACLE_PARTIAL) { result = answered; goto out; }
                if (op == oe) BAD("no answer (the stream ended after %d answers)", answered);
                BAD("answer cut short after %zu bytes", (size_t)(oe - op));
            }
            op += rused;
            if (r.status >= 200) break;
            if (r.status == 101) BAD("101 Switching Protocols without an Upgrade request");
        }
        if (rq.malformed && r.status != 400 && r.status != 431 && r.status != 413 && r.status != 501 && r.status != 505)
            BAD("a request the oracle cannot read got %d, not a 4xx refusal", r.status);
        struct oracle_expect ex = {0, NULL, 0, 1};
        if (!rq.malformed && expect && expect(&rq, &ex, arg) == 0) {
            if (ex.status && r.status != ex.status) { free(r.chunked_body); BAD("status %d, expected %d", r.status, ex.status); }
            int has_content = !head && !((r.status >= 100 && r.status < 200) || r.status == 204 || r.status == 304);
            if (has_content && !ex.body_any &&
                (r.body_len != ex.body_len || (ex.body_len && memcmp(r.body, ex.body, ex.body_len)))) {
                size_t bl = r.body_len;
                free(r.chunked_body);
                BAD("body of %zu bytes \"%.*s\", expected %zu bytes \"%.*s\"", bl, (int)(bl > 24 ? 24 : bl),
                    r.body ? r.body : "", ex.body_len, (int)(ex.body_len > 24 ? 24 : ex.body_len), ex.body ? ex.body : "");
            }
        }
        free(r.chunked_body);
        answered++;
        int closes = r.conn_close || !rq.keep_alive || rq.malformed || r.framing == 3 || r.status == 400;
        if (!rq.keep_alive && rq.minor == 1 && !r.conn_close)
            BAD("the client asked to close, the answer does not say Connection: close");
        if (r.framing == 3 && !r.conn_close && rq.minor == 1)
            BAD("a close-delimited body without Connection: close");
        if (rq.malformed && !r.conn_close) BAD("a refusal that closes the connection must say Connection: close");
        if (closes) {
            if (op < oe) BAD("%zu bytes after an answer that closes the connection", (size_t)(oe - op));
            break;
        }
        if (rq.minor == 0 && !r.conn_keep_alive) BAD("an HTTP/1.0 connection kept open without Connection: keep-alive");
        if (rc < 0) break;
    }
    result = answered;
out:
    free(scratch);
    return result;
#undef BAD
}
