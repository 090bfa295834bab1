/* rbuf.c — see rbuf.h. */
#include "rbuf.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *rb_room(struct rbuf *b, size_t n)
{
    if (b->oom) return NULL;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return NULL; }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

void rb_raw(struct rbuf *b, const void *p, size_t n)
{
    char *d = rb_room(b, n);
    if (!d) return;
    memcpy(d, p, n);
    b->len += n;
}

void rb_free(struct rbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void rb_simple(struct rbuf *b, const char *s)
{
    size_t n = strlen(s);
    char *d = rb_room(b, n + 3);
    if (!d) return;
    d[0] = '+';
    memcpy(d + 1, s, n);
    memcpy(d + 1 + n, "\r\n", 2);
    b->len += n + 3;
}

void rb_error(struct rbuf *b, const char *s)
{
    size_t n = strlen(s);
    char *d = rb_room(b, n + 3);
    if (!d) return;
    d[0] = '-';
    memcpy(d + 1, s, n);
    memcpy(d + 1 + n, "\r\n", 2);
    b->len += n + 3;
}

void rb_errorf(struct rbuf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    for (int i = 0; i < n; i++)
        if (line[i] == '\r' || line[i] == '\n') line[i] = ' ';
    line[n] = 0;
    rb_error(b, line);
}

/* Decimal digits of n into d (at least 21 bytes); returns the count. */
static size_t fmt_ll(char *d, long long v)
{
    char t[24];
    size_t i = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do { t[i++] = (char)('0' + u % 10); u /= 10; } while (u);
    size_t n = 0;
    if (v < 0) d[n++] = '-';
    while (i) d[n++] = t[--i];
    return n;
}

static void prefixed(struct rbuf *b, char c, long long v)
{
    char *d = rb_room(b, 24);
    if (!d) return;
    d[0] = c;
    size_t n = 1 + fmt_ll(d + 1, v);
    d[n++] = '\r';
    d[n++] = '\n';
    b->len += n;
}

void rb_int(struct rbuf *b, long long n) { prefixed(b, ':', n); }
void rb_array(struct rbuf *b, long long n) { prefixed(b, '*', n); }
void rb_nil(struct rbuf *b) { rb_raw(b, "$-1\r\n", 5); }

void rb_bulk(struct rbuf *b, const void *p, size_t n)
{
    char *d = rb_room(b, n + 26);
    if (!d) return;
    d[0] = '$';
    size_t h = 1 + fmt_ll(d + 1, (long long)n);
    d[h++] = '\r';
    d[h++] = '\n';
    memcpy(d + h, p, n);
    memcpy(d + h + n, "\r\n", 2);
    b->len += h + n + 2;
}

void rb_bulk_str(struct rbuf *b, const char *s) { rb_bulk(b, s, strlen(s)); }

/* A line "<type><text>\r\n" starting at p: its length with CRLF, 0 if
 * incomplete. */
static long line_len(const char *p, size_t n)
{
    const char *cr = memchr(p, '\r', n);
    if (!cr || (size_t)(cr - p) + 1 >= n) return 0;
    return (long)(cr - p) + 2;
}

static long parse_num(const char *p, long len, long long *v)
{
    /* p[1 .. len-2) is the number */
    long long x = 0;
    int neg = 0;
    long i = 1;
    if (i < len - 2 && p[i] == '-') { neg = 1; i++; }
    if (i >= len - 2) return -1;
    for (; i < len - 2; i++) {
        if (p[i] < '0' || p[i] > '9' || x > (1ll << 58)) return -1;
        x = x * 10 + (p[i] - '0');
    }
    *v = neg ? -x : x;
    return 0;
}

long resp_reply_len(const char *p, size_t n)
{
    if (n == 0) return 0;
    long l = line_len(p, n);
    if (l == 0) return 0;
    long long v;
    switch (p[0]) {
    case '+': case '-': case ':':
        return l;
    case '$':
        if (parse_num(p, l, &v) < 0) return -1;
        if (v < 0) return l;
        if ((unsigned long long)n < (unsigned long long)l + (unsigned long long)v + 2) return 0;
        return l + (long)v + 2;
    case '*': {
        if (parse_num(p, l, &v) < 0) return -1;
        size_t off = (size_t)l;
        for (long long i = 0; i < v; i++) {
            long e = resp_reply_len(p + off, n - off);
            if (e <= 0) return e;
            off += (size_t)e;
        }
        return (long)off;
    }
    default:
        return -1;
    }
}
