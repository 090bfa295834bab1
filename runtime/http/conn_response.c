/* conn_response.c — writing HTTP responses into a connection's write buffer. */
#include "access_log.h"
#include "conn_buffers.h"
#include "conn_internal.h"
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Every status code of RFC 9110 §15 with its reason phrase, and the other
 * codes of the IANA registry that a server may send (RFC 6585, 7725, 8297,
 * 4918, 8470, 2295, 2774, 5842). 306 and 418 are "(Unused)" in RFC 9110 and
 * get no phrase, like any code not listed: the status line then ends in
 * "NNN " (the reason-phrase is optional, RFC 9112 §4); a phrase from another
 * code, or from the class, would misstate what the code means. */
#define IOX_HTTP_STATUSES(X) \
    X(100, "Continue") \
    X(101, "Switching Protocols") \
    X(102, "Processing") \
    X(103, "Early Hints") \
    X(200, "OK") \
    X(201, "Created") \
    X(202, "Accepted") \
    X(203, "Non-Authoritative Information") \
    X(204, "No Content") \
    X(205, "Reset Content") \
    X(206, "Partial Content") \
    X(207, "Multi-Status") \
    X(208, "Already Reported") \
    X(226, "IM Used") \
    X(300, "Multiple Choices") \
    X(301, "Moved Permanently") \
    X(302, "Found") \
    X(303, "See Other") \
    X(304, "Not Modified") \
    X(305, "Use Proxy") \
    X(307, "Temporary Redirect") \
    X(308, "Permanent Redirect") \
    X(400, "Bad Request") \
    X(401, "Unauthorized") \
    X(402, "Payment Required") \
    X(403, "Forbidden") \
    X(404, "Not Found") \
    X(405, "Method Not Allowed") \
    X(406, "Not Acceptable") \
    X(407, "Proxy Authentication Required") \
    X(408, "Request Timeout") \
    X(409, "Conflict") \
    X(410, "Gone") \
    X(411, "Length Required") \
    X(412, "Precondition Failed") \
    X(413, "Content Too Large") \
    X(414, "URI Too Long") \
    X(415, "Unsupported Media Type") \
    X(416, "Range Not Satisfiable") \
    X(417, "Expectation Failed") \
    X(421, "Misdirected Request") \
    X(422, "Unprocessable Content") \
    X(423, "Locked") \
    X(424, "Failed Dependency") \
    X(425, "Too Early") \
    X(426, "Upgrade Required") \
    X(428, "Precondition Required") \
    X(429, "Too Many Requests") \
    X(431, "Request Header Fields Too Large") \
    X(451, "Unavailable For Legal Reasons") \
    X(500, "Internal Server Error") \
    X(501, "Not Implemented") \
    X(502, "Bad Gateway") \
    X(503, "Service Unavailable") \
    X(504, "Gateway Timeout") \
    X(505, "HTTP Version Not Supported") \
    X(506, "Variant Also Negotiates") \
    X(507, "Insufficient Storage") \
    X(508, "Loop Detected") \
    X(510, "Not Extended") \
    X(511, "Network Authentication Required")

const char *iox_http_reason(int status)
{
    switch (status) {
#define IOX_REASON_CASE(code, reason) case code: return reason;
    IOX_HTTP_STATUSES(IOX_REASON_CASE)
#undef IOX_REASON_CASE
    default:  return "";
    }
}

/* The status line and the Server line of every listed code, built by the
 * compiler: a head starts with one copy of a constant size (IOX_SL_COPY
 * bytes, whatever the line's length; the bytes past `len` are overwritten
 * by what follows or lie beyond what is counted) instead of formatting the
 * code and measuring the phrase per response. */
#define IOX_SL_COPY 63
struct iox_status_line {
    uint8_t len;
    char s[IOX_SL_COPY];
};
#define IOX_SL_TEXT(code, reason) "HTTP/1.1 " #code " " reason "\r\nServer: ioxide\r\n"

static const struct iox_status_line *status_line(int status)
{
    switch (status) {
#define IOX_SL_CASE(code, reason)                                                        \
    case code: {                                                                         \
        _Static_assert(sizeof IOX_SL_TEXT(code, reason) <= IOX_SL_COPY, "status line");  \
        static const struct iox_status_line l = {                                        \
            sizeof IOX_SL_TEXT(code, reason) - 1, IOX_SL_TEXT(code, reason) };           \
        return &l;                                                                       \
    }
    IOX_HTTP_STATUSES(IOX_SL_CASE)
#undef IOX_SL_CASE
    default: return NULL;
    }
}

/* 1xx, 204 and 304 never carry content (RFC 9110 §15.2, §15.3.5, §15.4.5;
 * RFC 9112 §6.3 rule 1): no Content-Length is written and no body. */
static int bodiless(int status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/* Most a response may owe the peer: the backpressure cap plus room for one
 * large response (file mode bakes up to its threshold per response). */
static size_t out_max(struct iox_conn *c)
{
    return (size_t)c->hs->cfg.write_cap + (8u << 20);
}

/* Where the target request's response goes: straight into the write buffer
 * for the oldest open request (the fast path), else its side buffer. */
static inline __attribute__((always_inline)) char *room(struct iox_conn *c, size_t n)
{
    if (c->tgt == c->rq_head) return iox_out_reserve(c, n, out_max(c));
    return iox_side_reserve(c, iox_conn_slot(c, c->tgt), n, out_max(c));
}

static inline __attribute__((always_inline)) void count(struct iox_conn *c, size_t n)
{
    if (c->hs->alog) iox_alog_count(c, n);
    if (c->tgt == c->rq_head) { c->sk.wlen += (uint32_t)n; return; }
    iox_conn_slot(c, c->tgt)->len += (uint32_t)n;
    c->side_len += (uint32_t)n;
}

static char *put(char *p, const char *s, size_t n) { memcpy(p, s, n); return p + n; }
#define PUTS(p, lit) put(p, lit, sizeof(lit) - 1)

static inline char *put_u64(char *p, uint64_t v)
{
    if (v < 10) { *p++ = (char)('0' + v); return p; }   /* "ok", "0": most bodies here */
    char tmp[24];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

/* Room a head may need: status + Server line (copied IOX_SL_COPY bytes at
 * a time), Date, Content-Type with its value, Content-Length or
 * Transfer-Encoding, Connection, the final CRLF, and the extra lines. */
static size_t head_bound(size_t ctype_len, const char *extra)
{
    return 128 + IOX_SL_COPY + IOX_HTTP_DATE_LINE_LEN + ctype_len + 16 + (extra ? strlen(extra) : 0);
}

/* How a head frames its body: Content-Length, chunked, or neither
 * (close-delimited: Connection: close). */
enum { FRAME_LENGTH, FRAME_CHUNKED, FRAME_CLOSE, FRAME_NONE /* HEAD of a close-delimited answer */ };

/* What the slot's answer does with later body bytes (rslot.framing): as
 * written (RF_RAW, RF_LENGTH, RF_CLOSE), chunk-encoded, or dropped (a head
 * for HEAD or a 1xx/204/304 status: no content whatever is written). */
enum { RF_RAW = 0, RF_LENGTH, RF_CHUNKED, RF_CLOSE, RF_EMPTY };

/* Writes the head at p (room for head_bound(ctype_len, extra) bytes);
 * returns the end pointer. ctype_len is strlen(ctype), measured once by
 * the caller (it sized the room with it). Inlined into its three callers:
 * the call and its eight arguments cost more than the copies it makes. */
static inline __attribute__((always_inline)) char *
write_head_framed(struct iox_conn *c, char *p, int status, const char *ctype,
                  size_t ctype_len, uint64_t content_length, const char *extra, int frame)
{
    char *start = p;
    /* Our version, not the request's (RFC 9110 §6.2): 1.0 clients accept it. */
    const struct iox_status_line *sl = status_line(status);
    if (sl) {
        memcpy(p, sl->s, IOX_SL_COPY);
        p += sl->len;
    } else {
        /* A code with no phrase: "NNN " and an empty reason (see above). */
        p = PUTS(p, "HTTP/1.1 ");
        p = put_u64(p, (uint64_t)status);
        p = PUTS(p, " \r\nServer: ioxide\r\n");
    }
    if (status >= 100 && status < 600) c->hs->n_status[status / 100]++;
    /* The Date line has a fixed length (IOX_HTTP_DATE_LINE_LEN); it is
     * empty only on a simulated seam whose test did not set one. */
    if (c->hs->date[0]) p = put(p, c->hs->date, IOX_HTTP_DATE_LINE_LEN);
    if (ctype) {
        p = PUTS(p, "Content-Type: ");
        p = put(p, ctype, ctype_len);
        p = PUTS(p, "\r\n");
    }
    if (!bodiless(status)) {
        if (frame == FRAME_LENGTH) {
            p = PUTS(p, "Content-Length: ");
            p = put_u64(p, content_length);
            p = PUTS(p, "\r\n");
        } else if (frame == FRAME_CHUNKED) {
            p = PUTS(p, "Transfer-Encoding: chunked\r\n");
        }
    }
    if (extra) p = put(p, extra, strlen(extra));
    /* The connection closes after the last dispatched request's answer. */
    if (!c->req_keep_alive || frame == FRAME_CLOSE ||
        (c->close_after && c->tgt == (uint16_t)(c->rq_tail - 1)))
        p = PUTS(p, "Connection: close\r\n");
    else if (c->req_minor == 0) p = PUTS(p, "Connection: keep-alive\r\n");
    p = PUTS(p, "\r\n");
    if (c->hs->alog) iox_alog_head(c, status, (size_t)(p - start));
    return p;
}

static struct iox_rslot *tslot(struct iox_conn *c)
{
    return iox_conn_slot(c, c->tgt);
}

int iox_resp_head(struct iox_conn *c, int status, const char *ctype,
                  uint64_t content_length, const char *extra_headers)
{
    size_t cl = ctype ? strlen(ctype) : 0;
    char *p = room(c, head_bound(cl, extra_headers));
    if (!p) return -ENOBUFS;
    char *e = write_head_framed(c, p, status, ctype, cl, content_length, extra_headers, FRAME_LENGTH);
    count(c, (size_t)(e - p));
    tslot(c)->framing = c->req_head || bodiless(status) ? RF_EMPTY : RF_RAW;
    return 0;
}

int iox_resp_simple_ex(struct iox_conn *c, int status, const char *ctype,
                       const char *extra_headers, const void *body, size_t len)
{
    /* HEAD: the head a GET would get, Content-Length included, no content
     * (RFC 9110 §9.3.2). */
    size_t blen = c->req_head || bodiless(status) ? 0 : len;
    size_t cl = ctype ? strlen(ctype) : 0;
    char *p = room(c, head_bound(cl, extra_headers) + blen);
    if (!p) return -ENOBUFS;
    char *e = write_head_framed(c, p, status, ctype, cl, len, extra_headers, FRAME_LENGTH);
    if (blen) e = put(e, body, blen);
    count(c, (size_t)(e - p));
    return 0;
}

int iox_resp_simple(struct iox_conn *c, int status, const char *ctype,
                    const void *body, size_t len)
{
    return iox_resp_simple_ex(c, status, ctype, NULL, body, len);
}

/* ---- prepared answers ----
 *
 * A prepared answer is constant, so the bytes iox_resp_simple would write
 * for it depend only on what write_head_framed reads besides the pieces:
 * whether the request is a HEAD, the Connection line (conn_line), and the
 * Date line. Each server (one per reactor) caches the last one it built
 * (hs->memo) with that key: the id, the variant (HEAD, Connection line)
 * and the Date line itself, compared by content (tests set it by hand, so
 * a second counter would not see every change). With the access log on
 * the head is always built: the log is told about each head. */

/* Ids start at 1 (0 is "nothing cached") and are never reused: a prepared
 * answer refilled in place gets a new one, so no reactor keeps stale bytes. */
static atomic_uint next_prepared_id;

int iox_resp_prepare(struct iox_resp_prepared *p, int status, const char *ctype,
                     const void *body, size_t len)
{
    if (status < 100 || status > 599 || !ctype || len > IOX_RESP_PREPARED_BODY || (len && !body))
        return -EINVAL;
    size_t cl = strlen(ctype);
    if (cl >= IOX_RESP_PREPARED_CTYPE) return -EINVAL;
    memset(p, 0, sizeof *p);
    p->status = (uint16_t)status;
    p->ctype_len = (uint8_t)cl;
    p->body_len = (uint8_t)len;
    memcpy(p->ctype, ctype, cl + 1);
    if (len) memcpy(p->body, body, len);
    unsigned id;
    do id = atomic_fetch_add(&next_prepared_id, 1) + 1; while (id == 0);   /* skip 0 on wrap */
    p->id = id;
    return 0;
}

enum { CL_NONE, CL_KEEP_ALIVE, CL_CLOSE };

/* The Connection line write_head_framed writes for a FRAME_LENGTH head. */
static inline int conn_line(const struct iox_conn *c)
{
    if (!c->req_keep_alive || (c->close_after && c->tgt == (uint16_t)(c->rq_tail - 1)))
        return CL_CLOSE;
    return c->req_minor == 0 ? CL_KEEP_ALIVE : CL_NONE;
}

/* Equality of two Date lines, IOX_HTTP_DATE_LINE_LEN (37) bytes: two
 * 16-byte compares and an 8-byte one overlapping them (SSE2 where there is). */
static inline int same_date(const char *a, const char *b)
{
    _Static_assert(IOX_HTTP_DATE_LINE_LEN == 37, "same_date compares 37 bytes");
    uint64_t x, y;
    memcpy(&x, a + 29, 8);
    memcpy(&y, b + 29, 8);
#ifdef __SSE2__
    __m128i e = _mm_and_si128(
        _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)a),
                       _mm_loadu_si128((const __m128i *)(const void *)b)),
        _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(a + 16)),
                       _mm_loadu_si128((const __m128i *)(const void *)(b + 16))));
    return _mm_movemask_epi8(e) == 0xffff && x == y;
#else
    return memcmp(a, b, 29) == 0 && x == y;
#endif
}

int iox_resp_send_prepared(struct iox_conn *c, const struct iox_resp_prepared *p)
{
    struct iox_http_server *hs = c->hs;
    if (hs->alog) return iox_resp_simple(c, p->status, p->ctype, p->body, p->body_len);
    struct iox_resp_memo *m = &hs->memo;
    int variant = c->req_head | conn_line(c) << 1;
    if (m->id == p->id && m->variant == variant &&
        (hs->date[0] ? m->date_off && same_date(m->s + m->date_off, hs->date) : !m->date_off)) {
        char *d = room(c, m->len);
        if (!d) return -ENOBUFS;
        memcpy(d, m->s, m->len);
        hs->n_status[p->status / 100]++;   /* what write_head_framed counts */
        count(c, m->len);
        return 0;
    }
    size_t blen = c->req_head || bodiless(p->status) ? 0 : p->body_len;
    char *d = room(c, head_bound(p->ctype_len, NULL) + blen);
    if (!d) return -ENOBUFS;
    char *e = write_head_framed(c, d, p->status, p->ctype, p->ctype_len, p->body_len, NULL, FRAME_LENGTH);
    if (blen) e = put(e, p->body, blen);
    size_t n = (size_t)(e - d);
    /* Cache it; the Date line follows the status and Server lines. */
    const struct iox_status_line *sl = status_line(p->status);
    m->id = 0;
    if (n <= IOX_RESP_MEMO_MAX && sl) {
        memcpy(m->s, d, n);
        m->len = (uint16_t)n;
        m->variant = (uint8_t)variant;
        m->date_off = hs->date[0] ? sl->len : 0;
        m->id = p->id;
    }
    count(c, n);
    return 0;
}

int iox_resp_write(struct iox_conn *c, const void *data, size_t len)
{
    if (tslot(c)->framing == RF_EMPTY) return 0;
    char *p = room(c, len);
    if (!p) return -ENOBUFS;
    memcpy(p, data, len);
    count(c, len);
    return 0;
}

char *iox_resp_reserve(struct iox_conn *c, size_t n)
{
    return room(c, n);
}

void iox_resp_commit_bytes(struct iox_conn *c, size_t n)
{
    if (tslot(c)->framing == RF_EMPTY) return;
    count(c, n);
}

int iox_resp_start(struct iox_conn *c, int status, const char *ctype, const char *extra_headers,
                   int64_t content_length)
{
    int empty = c->req_head || bodiless(status);
    int frame = content_length >= 0 ? FRAME_LENGTH : c->req_minor >= 1 ? FRAME_CHUNKED : FRAME_CLOSE;
    /* HEAD keeps the framing a GET would get, but never closes for it. */
    if (empty && frame == FRAME_CLOSE) frame = FRAME_NONE;
    size_t cl = ctype ? strlen(ctype) : 0;
    char *p = room(c, head_bound(cl, extra_headers) + 32);
    if (!p) return -ENOBUFS;
    if (frame == FRAME_CLOSE) c->close_after = 1;   /* the end of the stream ends this answer */
    char *e = write_head_framed(c, p, status, ctype, cl,
                                content_length >= 0 ? (uint64_t)content_length : 0, extra_headers, frame);
    count(c, (size_t)(e - p));
    tslot(c)->framing = empty ? RF_EMPTY
                      : frame == FRAME_LENGTH ? RF_LENGTH
                      : frame == FRAME_CHUNKED ? RF_CHUNKED : RF_CLOSE;
    return 0;
}

int iox_resp_chunk(struct iox_conn *c, const void *data, size_t len)
{
    int f = tslot(c)->framing;
    if (f == RF_EMPTY || len == 0) return 0;   /* a 0-size chunk would end the body */
    if (f != RF_CHUNKED) return iox_resp_write(c, data, len);
    char *p = room(c, len + 24);
    if (!p) return -ENOBUFS;
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    for (size_t v = len; v; v >>= 4) tmp[n++] = hex[v & 15];
    char *e = p;
    while (n) *e++ = tmp[--n];
    e = PUTS(e, "\r\n");
    e = put(e, data, len);
    e = PUTS(e, "\r\n");
    count(c, (size_t)(e - p));
    return 0;
}

int iox_resp_end(struct iox_conn *c, const char *trailers)
{
    if (tslot(c)->framing != RF_CHUNKED) return 0;
    size_t tl = trailers ? strlen(trailers) : 0;
    char *p = room(c, tl + 8);
    if (!p) return -ENOBUFS;
    char *e = PUTS(p, "0\r\n");
    if (tl) e = put(e, trailers, tl);
    e = PUTS(e, "\r\n");
    count(c, (size_t)(e - p));
    tslot(c)->framing = RF_RAW;
    return 0;
}

/* The interim answer to Expect: 100-continue, ahead of the final one and
 * sendable at once in request order: now for the oldest open request, else
 * as soon as every earlier answer is committed (its flushed part). */
void iox_resp_interim_continue(struct iox_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    char *p = room(c, sizeof cont - 1);
    if (!p) return;   /* over the output limit: the client sends after its own wait */
    memcpy(p, cont, sizeof cont - 1);
    count(c, sizeof cont - 1);
    if (c->hs->alog) iox_alog_head(c, 0, sizeof cont - 1);
    if (c->tgt == c->rq_head) {
        c->sk.wcommit = c->sk.wlen;
        iox_conn_mark_dirty(c);
    } else {
        struct iox_rslot *s = tslot(c);
        s->flushed = s->len;
    }
}

void iox_resp_sent_direct(struct iox_conn *c, uint64_t n)
{
    c->hs->n_bytes_out += n;
    if (c->hs->alog) iox_alog_count(c, (size_t)n);
}

int iox_conn_writable(const struct iox_conn *c)
{
    return !iox_conn_over_cap(c);
}
