/* test_pg_parser.c — backend-message parser: every message type, every split
 * of a mixed stream, and malformed frames. Inputs are placed right before an
 * inaccessible guard page so a one-byte over-read crashes the test. */
#include "iox_test.h"
#include <ioxide/pg_parser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- byte builders ------------------------------------------------------ */
struct bb { char b[4096]; size_t n; };
static void put(struct bb *b, const void *s, size_t n) { memcpy(b->b + b->n, s, n); b->n += n; }
static void put8(struct bb *b, int c) { b->b[b->n++] = (char)c; }
static void put16(struct bb *b, int v) { put8(b, (v >> 8) & 0xff); put8(b, v & 0xff); }
static void put32(struct bb *b, uint32_t v) { put16(b, (int)(v >> 16)); put16(b, (int)(v & 0xffff)); }
static void puts0(struct bb *b, const char *s) { put(b, s, strlen(s) + 1); }
/* Frame the body built in *body as message `type` appended to *out. */
static void frame(struct bb *out, char type, const struct bb *body)
{
    put8(out, type);
    put32(out, (uint32_t)body->n + 4);
    put(out, body->b, body->n);
}

/* ---- guard page ---------------------------------------------------------- */
static char *guard_base;
static size_t guard_page;
/* Copy s so that its last byte is the last readable byte. */
static const char *guarded(const char *s, size_t n)
{
    if (!guard_base) {
        guard_page = (size_t)sysconf(_SC_PAGESIZE);
        size_t total = guard_page * 64;  /* 63 usable pages + guard */
        guard_base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (guard_base == MAP_FAILED) abort();
        mprotect(guard_base + guard_page * 63, guard_page, PROT_NONE);
    }
    if (n > guard_page * 63) abort();
    char *dst = guard_base + guard_page * 63 - n;
    memcpy(dst, s, n);
    return dst;
}

static int parse1(const struct bb *b, struct iox_pg_msg *m, size_t *n)
{
    struct iox_pg_parser ps;
    iox_pg_parser_init(&ps, 0);
    return iox_pg_parse(&ps, guarded(b->b, b->n), b->n, m, n);
}

static int streq(struct iox_pg_str s, const char *want)
{
    return s.ptr && (size_t)s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0 && s.ptr[s.len] == 0;
}

/* ---- every message type -------------------------------------------------- */
IOX_TEST(pg_parser, authentication)
{
    struct bb b = {0}, body = {0};
    struct iox_pg_msg m; size_t n;
    int codes[] = {0, 3};
    for (int i = 0; i < 2; i++) {
        b.n = body.n = 0;
        put32(&body, (uint32_t)codes[i]); frame(&b, 'R', &body);
        CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
        CU_ASSERT_EQUAL(n, 9); CU_ASSERT_EQUAL(m.type, 'R'); CU_ASSERT_EQUAL(m.auth.code, codes[i]);
    }
    b.n = body.n = 0;
    put32(&body, 5); put(&body, "\x01\x02\xff\x04", 4); frame(&b, 'R', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT_EQUAL(m.auth.code, IOX_PG_AUTH_MD5);
    CU_ASSERT(m.auth.salt && memcmp(m.auth.salt, "\x01\x02\xff\x04", 4) == 0);

    b.n = body.n = 0;
    put32(&body, 10); puts0(&body, "SCRAM-SHA-256-PLUS"); puts0(&body, "SCRAM-SHA-256"); put8(&body, 0);
    frame(&b, 'R', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT_EQUAL(m.auth.code, IOX_PG_AUTH_SASL);
    CU_ASSERT(iox_pg_sasl_has_mech(&m, "SCRAM-SHA-256"));
    CU_ASSERT(iox_pg_sasl_has_mech(&m, "SCRAM-SHA-256-PLUS"));
    CU_ASSERT(!iox_pg_sasl_has_mech(&m, "SCRAM"));
    uint32_t it = 0; struct iox_pg_str s; int k = 0;
    while (iox_pg_sasl_mech_next(&m, &it, &s)) k++;
    CU_ASSERT_EQUAL(k, 2);

    for (int code = 11; code <= 12; code++) {
        b.n = body.n = 0;
        put32(&body, (uint32_t)code); put(&body, "r=abc,s=xyz,i=4096", 18); frame(&b, 'R', &body);
        CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
        CU_ASSERT_EQUAL(m.auth.code, code);
        CU_ASSERT_EQUAL(m.auth.data_len, 18);
        CU_ASSERT(memcmp(m.auth.data, "r=abc,s=xyz,i=4096", 18) == 0);
    }
    /* SASLFinal with empty data is legal */
    b.n = body.n = 0; put32(&body, 12); frame(&b, 'R', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT_EQUAL(m.auth.data_len, 0);
}

IOX_TEST(pg_parser, session_messages)
{
    struct bb b = {0}, body = {0};
    struct iox_pg_msg m; size_t n;
    puts0(&body, "server_version"); puts0(&body, "15.8"); frame(&b, 'S', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT(streq(m.param.name, "server_version")); CU_ASSERT(streq(m.param.value, "15.8"));

    b.n = body.n = 0; put32(&body, 1234); put32(&body, 0xdeadbeef); frame(&b, 'K', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT_EQUAL(m.key.pid, 1234); CU_ASSERT_EQUAL((uint32_t)m.key.secret, 0xdeadbeef);

    const char *st = "ITE";
    for (int i = 0; i < 3; i++) {
        b.n = body.n = 0; put8(&body, st[i]); frame(&b, 'Z', &body);
        CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
        CU_ASSERT_EQUAL(m.ready.status, st[i]);
    }
    b.n = body.n = 0; put32(&body, 77); puts0(&body, "chan"); puts0(&body, ""); frame(&b, 'A', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT_EQUAL(m.notify.pid, 77); CU_ASSERT(streq(m.notify.channel, "chan"));
    CU_ASSERT(streq(m.notify.payload, ""));
}

IOX_TEST(pg_parser, empty_messages)
{
    const char *types = "I123ns";
    for (const char *t = types; *t; t++) {
        struct bb b = {0}, body = {0};
        struct iox_pg_msg m; size_t n;
        frame(&b, *t, &body);
        CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
        CU_ASSERT_EQUAL(m.type, *t); CU_ASSERT_EQUAL(n, 5); CU_ASSERT_EQUAL(m.body_len, 0);
    }
}

IOX_TEST(pg_parser, query_results)
{
    struct bb b = {0}, body = {0};
    struct iox_pg_msg m; size_t n;
    /* RowDescription: two fields */
    put16(&body, 2);
    puts0(&body, "a"); put32(&body, 16384); put16(&body, 1); put32(&body, 23); put16(&body, 4); put32(&body, 0xffffffff); put16(&body, 0);
    puts0(&body, "bee"); put32(&body, 0); put16(&body, 0); put32(&body, 25); put16(&body, -1); put32(&body, 0xffffffff); put16(&body, 1);
    frame(&b, 'T', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT_EQUAL(m.list.count, 2);
    struct iox_pg_field_desc f; uint32_t it = 0;
    CU_ASSERT(iox_pg_rowdesc_next(&m, &it, &f));
    CU_ASSERT(streq(f.name, "a")); CU_ASSERT_EQUAL(f.table_oid, 16384); CU_ASSERT_EQUAL(f.attnum, 1);
    CU_ASSERT_EQUAL(f.type_oid, 23); CU_ASSERT_EQUAL(f.typlen, 4); CU_ASSERT_EQUAL(f.typmod, -1); CU_ASSERT_EQUAL(f.format, 0);
    CU_ASSERT(iox_pg_rowdesc_next(&m, &it, &f));
    CU_ASSERT(streq(f.name, "bee")); CU_ASSERT_EQUAL(f.type_oid, 25); CU_ASSERT_EQUAL(f.typlen, -1); CU_ASSERT_EQUAL(f.format, 1);
    CU_ASSERT(!iox_pg_rowdesc_next(&m, &it, &f));

    /* DataRow: "42", NULL, "" */
    b.n = body.n = 0;
    put16(&body, 3); put32(&body, 2); put(&body, "42", 2); put32(&body, 0xffffffff); put32(&body, 0);
    frame(&b, 'D', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT_EQUAL(m.list.count, 3);
    struct iox_pg_str cols[3];
    CU_ASSERT_EQUAL(iox_pg_datarow_columns(&m, cols, 3), 3);
    CU_ASSERT(cols[0].len == 2 && memcmp(cols[0].ptr, "42", 2) == 0);
    CU_ASSERT(cols[1].len == -1 && cols[1].ptr == NULL);
    CU_ASSERT(cols[2].len == 0 && cols[2].ptr != NULL);
    CU_ASSERT_EQUAL(iox_pg_datarow_columns(&m, cols, 2), -ENOSPC);
    /* DataRow with no columns */
    b.n = body.n = 0; put16(&body, 0); frame(&b, 'D', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT_EQUAL(iox_pg_datarow_columns(&m, cols, 0), 0);

    b.n = body.n = 0; puts0(&body, "SELECT 1"); frame(&b, 'C', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT(streq(m.complete.tag, "SELECT 1"));

    b.n = body.n = 0; put16(&body, 2); put32(&body, 23); put32(&body, 25); frame(&b, 't', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT_EQUAL(m.list.count, 2);
    CU_ASSERT_EQUAL(iox_pg_paramdesc_oid(&m, 0), 23); CU_ASSERT_EQUAL(iox_pg_paramdesc_oid(&m, 1), 25);
    b.n = body.n = 0; put16(&body, 0); frame(&b, 't', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT_EQUAL(m.list.count, 0);
}

IOX_TEST(pg_parser, error_and_notice_fields)
{
    const char *codes = IOX_PG_NOTICE_CODES;
    for (int t = 0; t < 2; t++) {
        struct bb b = {0}, body = {0};
        struct iox_pg_msg m; size_t n;
        char val[8];
        for (const char *c = codes; *c; c++) {
            put8(&body, *c); snprintf(val, sizeof val, "v%c", *c); puts0(&body, val);
        }
        put8(&body, 'Z'); puts0(&body, "unknown code ignored");
        put8(&body, 0);
        frame(&b, t ? 'N' : 'E', &body);
        CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
        for (const char *c = codes; *c; c++) {
            snprintf(val, sizeof val, "v%c", *c);
            const struct iox_pg_str *s = iox_pg_notice_field(&m, *c);
            CU_ASSERT(s && streq(*s, val));
        }
        CU_ASSERT_PTR_NULL(iox_pg_notice_field(&m, 'Z'));
    }
    /* only M, and an empty value */
    struct bb b = {0}, body = {0};
    struct iox_pg_msg m; size_t n;
    put8(&body, 'M'); puts0(&body, ""); put8(&body, 0); frame(&b, 'E', &body);
    CU_ASSERT_EQUAL(parse1(&b, &m, &n), IOX_PG_MSG);
    CU_ASSERT(iox_pg_notice_field(&m, 'M') && iox_pg_notice_field(&m, 'M')->len == 0);
    CU_ASSERT_PTR_NULL(iox_pg_notice_field(&m, 'S'));
}

/* ---- every split of a mixed stream --------------------------------------- */
static void build_stream(struct bb *s)
{
    struct bb body;
    s->n = 0;
#define B(t, stmts) do { body.n = 0; stmts; frame(s, t, &body); } while (0)
    B('R', put32(&body, 10); puts0(&body, "SCRAM-SHA-256"); put8(&body, 0));
    B('R', put32(&body, 11); put(&body, "r=nonce,s=c2FsdA==,i=4096", 25));
    B('R', put32(&body, 12); put(&body, "v=abc", 5));
    B('R', put32(&body, 0));
    B('S', puts0(&body, "client_encoding"); puts0(&body, "UTF8"));
    B('K', put32(&body, 42); put32(&body, 99));
    B('Z', put8(&body, 'I'));
    B('1', (void)0);
    B('2', (void)0);
    B('T', put16(&body, 1); puts0(&body, "x"); put32(&body, 0); put16(&body, 0); put32(&body, 23); put16(&body, 4); put32(&body, 0xffffffff); put16(&body, 0));
    B('D', put16(&body, 2); put32(&body, 3); put(&body, "abc", 3); put32(&body, 0xffffffff));
    B('D', put16(&body, 1); put32(&body, 300); for (int i = 0; i < 300; i++) put8(&body, 'a' + i % 26));
    B('C', puts0(&body, "SELECT 2"));
    B('N', put8(&body, 'S'); puts0(&body, "NOTICE"); put8(&body, 'M'); puts0(&body, "hello"); put8(&body, 0));
    B('E', put8(&body, 'S'); puts0(&body, "ERROR"); put8(&body, 'C'); puts0(&body, "42601"); put8(&body, 'M'); puts0(&body, "syntax error"); put8(&body, 0));
    B('I', (void)0);
    B('t', put16(&body, 1); put32(&body, 23));
    B('n', (void)0);
    B('s', (void)0);
    B('3', (void)0);
    B('A', put32(&body, 7); puts0(&body, "ch"); puts0(&body, "payload"));
    B('Z', put8(&body, 'T'));
#undef B
}

/* A canonical text log of one message, independent of where it lay. */
static void log_msg(char *out, size_t cap, size_t *used, const struct iox_pg_msg *m)
{
    char tmp[1024];
    int k = snprintf(tmp, sizeof tmp, "%c/%u:", m->type, m->size);
    switch (m->type) {
    case 'R': k += snprintf(tmp + k, sizeof tmp - k, "%d:%.*s", m->auth.code, (int)m->auth.data_len, m->auth.data ? m->auth.data : ""); break;
    case 'S': k += snprintf(tmp + k, sizeof tmp - k, "%s=%s", m->param.name.ptr, m->param.value.ptr); break;
    case 'K': k += snprintf(tmp + k, sizeof tmp - k, "%d,%d", m->key.pid, m->key.secret); break;
    case 'Z': k += snprintf(tmp + k, sizeof tmp - k, "%c", m->ready.status); break;
    case 'C': k += snprintf(tmp + k, sizeof tmp - k, "%s", m->complete.tag.ptr); break;
    case 'D': {
        uint32_t it = 0; struct iox_pg_str c;
        while (iox_pg_datarow_next(m, &it, &c))
            k += snprintf(tmp + k, sizeof tmp - k, "[%d:%.*s]", c.len, c.len > 0 ? (c.len > 20 ? 20 : c.len) : 0, c.ptr ? c.ptr : "");
        break;
    }
    case 'E': case 'N': {
        const struct iox_pg_str *s = iox_pg_notice_field(m, 'M');
        k += snprintf(tmp + k, sizeof tmp - k, "%s", s ? s->ptr : "-");
        break;
    }
    case 'A': k += snprintf(tmp + k, sizeof tmp - k, "%d %s %s", m->notify.pid, m->notify.channel.ptr, m->notify.payload.ptr); break;
    case 't': k += snprintf(tmp + k, sizeof tmp - k, "%u", iox_pg_paramdesc_oid(m, 0)); break;
    }
    k += snprintf(tmp + k, sizeof tmp - k, "\n");
    if (*used + (size_t)k < cap) { memcpy(out + *used, tmp, (size_t)k + 1); *used += (size_t)k; }
}

/* Feed `s` in chunks: first chunk `split` bytes (0: every chunk `step`
 * bytes). The caller model: a carry buffer; parse while messages come out;
 * NEED_MORE's count must never exceed what the stream still holds. */
static int feed(const struct bb *s, size_t split, size_t step, char *log, size_t cap)
{
    char carry[4096];
    size_t have = 0, off = 0, used = 0;
    struct iox_pg_parser ps;
    iox_pg_parser_init(&ps, 0);
    log[0] = 0;
    while (off < s->n || have) {
        size_t chunk = split ? (off == 0 ? split : s->n - off) : step;
        if (chunk > s->n - off) chunk = s->n - off;
        memcpy(carry + have, s->b + off, chunk);
        have += chunk; off += chunk;
        for (;;) {
            struct iox_pg_msg m; size_t n;
            const char *g = guarded(carry, have);
            int r = iox_pg_parse(&ps, g, have, &m, &n);
            if (r == IOX_PG_MSG) {
                log_msg(log, cap, &used, &m);
                memmove(carry, carry + n, have - n);
                have -= n;
                continue;
            }
            if (r != IOX_PG_NEED_MORE) return r;
            if (have == 0 && off == s->n) return 0;
            if (n == 0 || n > s->n - off) return -100;  /* wrong need */
            break;
        }
        if (chunk == 0) return -101;
    }
    return 0;
}

IOX_TEST(pg_parser, every_split_point)
{
    struct bb s;
    build_stream(&s);
    static char ref[16384], got[16384];
    CU_ASSERT_EQUAL_FATAL(feed(&s, s.n, 0, ref, sizeof ref), 0);
    CU_ASSERT(strstr(ref, "syntax error") != NULL);
    CU_ASSERT(strstr(ref, "payload") != NULL);
    int bad = 0;
    for (size_t k = 1; k < s.n; k++) {
        int r = feed(&s, k, 0, got, sizeof got);
        if (r != 0 || strcmp(got, ref) != 0) { bad++; if (bad < 3) fprintf(stderr, "split %zu: r=%d\n", k, r); }
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (size_t step = 1; step <= 7; step++) {
        CU_ASSERT_EQUAL(feed(&s, 0, step, got, sizeof got), 0);
        CU_ASSERT_STRING_EQUAL(got, ref);
    }
}

IOX_TEST(pg_parser, need_more_counts)
{
    struct bb b = {0}, body = {0};
    struct iox_pg_msg m; size_t n;
    struct iox_pg_parser ps;
    iox_pg_parser_init(&ps, 0);
    puts0(&body, "SELECT 1"); frame(&b, 'C', &body);
    CU_ASSERT_EQUAL(iox_pg_parse(&ps, guarded(b.b, 0), 0, &m, &n), IOX_PG_NEED_MORE);
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT_EQUAL(iox_pg_parse(&ps, guarded(b.b, 3), 3, &m, &n), IOX_PG_NEED_MORE);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(iox_pg_parse(&ps, guarded(b.b, 5), 5, &m, &n), IOX_PG_NEED_MORE);
    CU_ASSERT_EQUAL(n, 9);
    CU_ASSERT_EQUAL(iox_pg_parse(&ps, guarded(b.b, 13), 13, &m, &n), IOX_PG_NEED_MORE);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(iox_pg_parse(&ps, guarded(b.b, 14), 14, &m, &n), IOX_PG_MSG);
    CU_ASSERT_EQUAL(n, 14);
    /* zero-copy: views point into the buffer passed in */
    const char *g = guarded(b.b, b.n);
    CU_ASSERT_EQUAL(iox_pg_parse(&ps, g, b.n, &m, &n), IOX_PG_MSG);
    CU_ASSERT_PTR_EQUAL(m.complete.tag.ptr, g + 5);
}

/* ---- malformed frames ---------------------------------------------------- */
static int parse_raw(const char *s, size_t n, uint32_t cap)
{
    struct iox_pg_parser ps;
    struct iox_pg_msg m; size_t used;
    iox_pg_parser_init(&ps, cap);
    return iox_pg_parse(&ps, guarded(s, n), n, &m, &used);
}

IOX_TEST(pg_parser, malformed)
{
    /* short length */
    CU_ASSERT_EQUAL(parse_raw("Z\0\0\0\3I", 6, 0), IOX_PG_E_BAD_LENGTH);
    CU_ASSERT_EQUAL(parse_raw("Z\0\0\0\0", 5, 0), IOX_PG_E_BAD_LENGTH);
    /* huge length: rejected from the header alone */
    CU_ASSERT_EQUAL(parse_raw("D\x7f\xff\xff\xff", 5, 0), IOX_PG_E_TOO_LARGE);
    CU_ASSERT_EQUAL(parse_raw("D\xff\xff\xff\xff", 5, 0), IOX_PG_E_TOO_LARGE);
    CU_ASSERT_EQUAL(parse_raw("D\0\0\x10\0", 5, 1024), IOX_PG_E_TOO_LARGE);
    CU_ASSERT_EQUAL(parse_raw("D\0\0\x04\0", 5, 1024), IOX_PG_NEED_MORE);
    /* unknown type byte, detected from the first byte */
    CU_ASSERT_EQUAL(parse_raw("x", 1, 0), IOX_PG_E_UNKNOWN_TYPE);
    CU_ASSERT_EQUAL(parse_raw("d\0\0\0\4", 5, 0), IOX_PG_E_UNKNOWN_TYPE);
    CU_ASSERT_EQUAL(parse_raw("\0\0\0\0\4", 5, 0), IOX_PG_E_UNKNOWN_TYPE);
    /* truncated field: BackendKeyData with 4 of 8 content bytes */
    CU_ASSERT_EQUAL(parse_raw("K\0\0\0\x08\0\0\0\1", 9, 0), IOX_PG_E_TRUNCATED);
    /* truncated MD5 salt */
    CU_ASSERT_EQUAL(parse_raw("R\0\0\0\x0a\0\0\0\5ab", 11, 0), IOX_PG_E_TRUNCATED);
    /* missing NUL terminators */
    CU_ASSERT_EQUAL(parse_raw("C\0\0\0\x0cSELECT 1", 13, 0), IOX_PG_E_UNTERMINATED);
    CU_ASSERT_EQUAL(parse_raw("S\0\0\0\x08" "a\0bc", 9, 0), IOX_PG_E_UNTERMINATED);
    CU_ASSERT_EQUAL(parse_raw("E\0\0\0\x08" "Mabc", 9, 0), IOX_PG_E_UNTERMINATED);
    /* ErrorResponse without the final zero byte */
    CU_ASSERT_EQUAL(parse_raw("E\0\0\0\x09" "Mabc\0", 10, 0), IOX_PG_E_TRUNCATED);
    /* SASL mechanism list without its empty terminator */
    CU_ASSERT_EQUAL(parse_raw("R\0\0\0\x0b\0\0\0\x0a" "ab\0", 12, 0), IOX_PG_E_TRUNCATED);
    /* DataRow column count mismatch: 3 announced, 2 present */
    CU_ASSERT_EQUAL(parse_raw("D\0\0\0\x10\0\3\0\0\0\1a\0\0\0\1b", 17, 0), IOX_PG_E_TRUNCATED);
    /* ... 1 announced, 2 present */
    CU_ASSERT_EQUAL(parse_raw("D\0\0\0\x10\0\1\0\0\0\1a\0\0\0\1b", 17, 0), IOX_PG_E_TRAILING);
    /* column length past the message end */
    CU_ASSERT_EQUAL(parse_raw("D\0\0\0\x0b\0\1\0\0\0\x09" "a", 12, 0), IOX_PG_E_TRUNCATED);
    /* column length below -1, negative counts */
    CU_ASSERT_EQUAL(parse_raw("D\0\0\0\x0a\0\1\xff\xff\xff\xfe", 11, 0), IOX_PG_E_BAD_COLUMN_LEN);
    CU_ASSERT_EQUAL(parse_raw("D\0\0\0\x06\xff\xff", 7, 0), IOX_PG_E_BAD_COUNT);
    CU_ASSERT_EQUAL(parse_raw("T\0\0\0\x06\x80\0", 7, 0), IOX_PG_E_BAD_COUNT);
    CU_ASSERT_EQUAL(parse_raw("t\0\0\0\x06\xff\xfe", 7, 0), IOX_PG_E_BAD_COUNT);
    /* length inconsistent with contents */
    CU_ASSERT_EQUAL(parse_raw("1\0\0\0\x05x", 6, 0), IOX_PG_E_TRAILING);
    CU_ASSERT_EQUAL(parse_raw("Z\0\0\0\x06II", 7, 0), IOX_PG_E_TRAILING);
    CU_ASSERT_EQUAL(parse_raw("Z\0\0\0\x04", 5, 0), IOX_PG_E_TRUNCATED);
    CU_ASSERT_EQUAL(parse_raw("t\0\0\0\x0a\0\2\0\0\0\x17", 11, 0), IOX_PG_E_TRUNCATED);
    /* bad contents */
    CU_ASSERT_EQUAL(parse_raw("Z\0\0\0\x05X", 6, 0), IOX_PG_E_MALFORMED);
    CU_ASSERT_EQUAL(parse_raw("R\0\0\0\x08\0\0\0\4", 9, 0), IOX_PG_E_MALFORMED);
    CU_ASSERT_EQUAL(parse_raw("R\0\0\0\x08\1\0\0\0", 9, 0), IOX_PG_E_MALFORMED);
    /* names and reasons */
    CU_ASSERT_STRING_EQUAL(iox_pg_result_name(IOX_PG_E_TRUNCATED), "E_TRUNCATED");
    CU_ASSERT_STRING_EQUAL(iox_pg_error_reason(IOX_PG_E_BAD_LENGTH), "message length below 4");
}

/* Every truncation of every valid message of the stream, declared complete
 * by its length, must give an error and never read past the end. */
IOX_TEST(pg_parser, shortened_contents_never_crash)
{
    struct bb s;
    build_stream(&s);
    struct iox_pg_parser ps;
    iox_pg_parser_init(&ps, 0);
    size_t off = 0;
    while (off < s.n) {
        struct iox_pg_msg m; size_t n;
        CU_ASSERT_EQUAL_FATAL(iox_pg_parse(&ps, s.b + off, s.n - off, &m, &n), IOX_PG_MSG);
        for (size_t cut = 1; cut <= m.body_len; cut++) {
            char tmp[512];
            if (n > sizeof tmp) break;
            memcpy(tmp, s.b + off, n - cut);
            uint32_t l = (uint32_t)(n - 1 - cut);
            tmp[1] = (char)(l >> 24); tmp[2] = (char)(l >> 16); tmp[3] = (char)(l >> 8); tmp[4] = (char)l;
            struct iox_pg_msg m2; size_t n2;
            int r = iox_pg_parse(&ps, guarded(tmp, n - cut), n - cut, &m2, &n2);
            /* a shorter SASL data / empty-body-compatible message may be valid */
            CU_ASSERT(r < 0 || (r == IOX_PG_MSG && m.type == 'R'));
        }
        off += n;
    }
}

IOX_SUITE(pg_parser, NULL, NULL);
