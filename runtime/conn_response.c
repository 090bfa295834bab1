/* conn_response.c — writing HTTP responses into a connection's write buffer. */
#include "conn_buffers.h"
#include "conn_internal.h"
#include <errno.h>
#include <string.h>

const char *iox_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:  return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

/* Most a response may owe the peer: the backpressure cap plus room for one
 * large response (file mode bakes up to its threshold per response). */
static size_t out_max(struct iox_conn *c)
{
    return (size_t)c->r->cfg->write_cap + (8u << 20);
}

/* Where the target request's response goes: straight into the write buffer
 * for the oldest open request (the fast path), else its side buffer. */
static char *room(struct iox_conn *c, size_t n)
{
    if (c->tgt == c->rq_head) return iox_out_reserve(c, n, out_max(c));
    return iox_side_reserve(c, iox_conn_slot(c, c->tgt), n, out_max(c));
}

static void count(struct iox_conn *c, size_t n)
{
    if (c->tgt == c->rq_head) { c->wlen += (uint32_t)n; return; }
    iox_conn_slot(c, c->tgt)->len += (uint32_t)n;
    c->side_len += (uint32_t)n;
}

static char *put(char *p, const char *s, size_t n) { memcpy(p, s, n); return p + n; }
#define PUTS(p, lit) put(p, lit, sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static size_t head_bound(const char *ctype, const char *extra)
{
    return 128 + sizeof ((struct iox_reactor *)0)->date + (ctype ? strlen(ctype) + 16 : 0) +
           (extra ? strlen(extra) : 0);
}

/* Writes the head; returns the end pointer. */
static char *write_head(struct iox_conn *c, char *p, int status, const char *ctype,
                        uint64_t content_length, const char *extra)
{
    /* Our version, not the request's (RFC 9110 §6.2): 1.0 clients accept it. */
    p = PUTS(p, "HTTP/1.1 ");
    p = put_u64(p, (uint64_t)status);
    *p++ = ' ';
    const char *reason = iox_http_reason(status);
    p = put(p, reason, strlen(reason));
    p = PUTS(p, "\r\nServer: ioxide\r\n");
    p = put(p, c->r->date, strlen(c->r->date));
    if (ctype) {
        p = PUTS(p, "Content-Type: ");
        p = put(p, ctype, strlen(ctype));
        p = PUTS(p, "\r\n");
    }
    if (status != 304 && status != 204 && !(status >= 100 && status < 200)) {
        p = PUTS(p, "Content-Length: ");
        p = put_u64(p, content_length);
        p = PUTS(p, "\r\n");
    }
    if (extra) p = put(p, extra, strlen(extra));
    /* The connection closes after the last dispatched request's answer. */
    if (!c->req_keep_alive || (c->close_after && c->tgt == (uint16_t)(c->rq_tail - 1)))
        p = PUTS(p, "Connection: close\r\n");
    else if (c->req_minor == 0) p = PUTS(p, "Connection: keep-alive\r\n");
    return PUTS(p, "\r\n");
}

int iox_resp_head(struct iox_conn *c, int status, const char *ctype,
                  uint64_t content_length, const char *extra_headers)
{
    char *p = room(c, head_bound(ctype, extra_headers));
    if (!p) return -ENOBUFS;
    char *e = write_head(c, p, status, ctype, content_length, extra_headers);
    count(c, (size_t)(e - p));
    return 0;
}

int iox_resp_simple(struct iox_conn *c, int status, const char *ctype,
                    const void *body, size_t len)
{
    size_t blen = c->req_head ? 0 : len;
    char *p = room(c, head_bound(ctype, NULL) + blen);
    if (!p) return -ENOBUFS;
    char *e = write_head(c, p, status, ctype, len, NULL);
    if (blen) e = put(e, body, blen);
    count(c, (size_t)(e - p));
    return 0;
}

int iox_resp_write(struct iox_conn *c, const void *data, size_t len)
{
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
    count(c, n);
}
