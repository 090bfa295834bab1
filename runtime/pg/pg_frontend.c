/* pg_frontend.c — frontend message builders (see pg_frontend.h).
 *
 * Each builder opens a message (type byte, length placeholder), appends its
 * fields through put_*() which record the first failure instead of
 * returning it, and closes the message: on failure the buffer is rolled
 * back to where it was, on success the length is patched in. */
#include "pg_frontend.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void iox_pg_wbuf_init_fixed(struct iox_pg_wbuf *w, char *mem, size_t cap)
{
    w->buf = mem; w->len = 0; w->cap = cap; w->max = 0;
}

void iox_pg_wbuf_init_growable(struct iox_pg_wbuf *w, size_t max)
{
    w->buf = NULL; w->len = 0; w->cap = 0; w->max = max;
}

void iox_pg_wbuf_free(struct iox_pg_wbuf *w)
{
    if (w->max) { free(w->buf); w->buf = NULL; w->cap = 0; }
    w->len = 0;
}

struct mb {                 /* one message being built */
    struct iox_pg_wbuf *w;
    size_t start;           /* rollback point */
    size_t len_at;          /* offset of the length field */
    int err;
};

static int reserve(struct mb *m, size_t n)
{
    struct iox_pg_wbuf *w = m->w;
    if (m->err) return -1;
    if (n <= w->cap - w->len) return 0;
    size_t need = w->len + n;
    if (need < w->len || !w->max || need > w->max) { m->err = -ENOSPC; return -1; }
    size_t cap = w->cap ? w->cap : 256;
    while (cap < need) cap = cap > w->max / 2 ? w->max : cap * 2;
    char *nb = realloc(w->buf, cap);
    if (!nb) { m->err = -ENOMEM; return -1; }
    w->buf = nb; w->cap = cap;
    return 0;
}

static void put(struct mb *m, const void *s, size_t n)
{
    if (reserve(m, n)) return;
    if (n) memcpy(m->w->buf + m->w->len, s, n);
    m->w->len += n;
}
static void put8(struct mb *m, uint8_t v) { put(m, &v, 1); }
static void put16(struct mb *m, uint16_t v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    put(m, b, 2);
}
static void put32(struct mb *m, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put(m, b, 4);
}
static void putstr(struct mb *m, const char *s) { put(m, s ? s : "", strlen(s ? s : "") + 1); }

int iox_pg_wbuf_append(struct iox_pg_wbuf *w, const void *data, size_t n)
{
    struct mb m = {w, w->len, w->len, 0};
    put(&m, data, n);
    return m.err;
}

/* type 0: no type byte (StartupMessage, CancelRequest). */
static struct mb begin(struct iox_pg_wbuf *w, char type)
{
    struct mb m = {w, w->len, w->len, 0};
    if (type) { put8(&m, (uint8_t)type); m.len_at = w->len; }
    put32(&m, 0);
    return m;
}

static int end(struct mb *m)
{
    struct iox_pg_wbuf *w = m->w;
    size_t n = w->len - m->len_at;
    if (!m->err && n > 0x7fffffffu) m->err = -ENOSPC;
    if (m->err) { w->len = m->start; return m->err; }
    unsigned char *b = (unsigned char *)w->buf + m->len_at;
    b[0] = (unsigned char)(n >> 24); b[1] = (unsigned char)(n >> 16);
    b[2] = (unsigned char)(n >> 8); b[3] = (unsigned char)n;
    return 0;
}

int iox_pg_build_startup(struct iox_pg_wbuf *w, const char *user, const char *database,
                         const char *application_name, const char *const *extra)
{
    if (!user || !*user) return -EINVAL;
    struct mb m = begin(w, 0);
    put32(&m, IOX_PG_PROTOCOL_3_0);
    putstr(&m, "user"); putstr(&m, user);
    if (database && *database) { putstr(&m, "database"); putstr(&m, database); }
    if (application_name && *application_name) {
        putstr(&m, "application_name"); putstr(&m, application_name);
    }
    for (; extra && extra[0]; extra += 2) {
        if (!extra[1]) { m.err = -EINVAL; break; }
        putstr(&m, extra[0]); putstr(&m, extra[1]);
    }
    put8(&m, 0);
    return end(&m);
}

int iox_pg_build_cancel(struct iox_pg_wbuf *w, int32_t pid, int32_t secret)
{
    struct mb m = begin(w, 0);
    put32(&m, 80877102u);     /* (1234 << 16) | 5678 */
    put32(&m, (uint32_t)pid);
    put32(&m, (uint32_t)secret);
    return end(&m);
}

int iox_pg_build_password(struct iox_pg_wbuf *w, const char *password)
{
    if (!password) return -EINVAL;
    struct mb m = begin(w, 'p');
    putstr(&m, password);
    return end(&m);
}

int iox_pg_build_sasl_initial(struct iox_pg_wbuf *w, const char *mechanism,
                              const char *data, size_t len)
{
    if (!mechanism || !*mechanism || len > 0x7fffffffu) return -EINVAL;
    struct mb m = begin(w, 'p');
    putstr(&m, mechanism);
    if (data) { put32(&m, (uint32_t)len); put(&m, data, len); }
    else put32(&m, 0xffffffffu);
    return end(&m);
}

int iox_pg_build_sasl_response(struct iox_pg_wbuf *w, const char *data, size_t len)
{
    if (!data && len) return -EINVAL;
    struct mb m = begin(w, 'p');
    put(&m, data, len);
    return end(&m);
}

int iox_pg_build_query(struct iox_pg_wbuf *w, const char *sql)
{
    if (!sql) return -EINVAL;
    struct mb m = begin(w, 'Q');
    putstr(&m, sql);
    return end(&m);
}

int iox_pg_build_parse(struct iox_pg_wbuf *w, const char *stmt, const char *sql,
                       uint16_t nparams, const uint32_t *oids)
{
    if (!sql || nparams > 32767) return -EINVAL;
    struct mb m = begin(w, 'P');
    putstr(&m, stmt);
    putstr(&m, sql);
    put16(&m, nparams);
    for (uint16_t i = 0; i < nparams; i++) put32(&m, oids ? oids[i] : 0);
    return end(&m);
}

int iox_pg_build_bind(struct iox_pg_wbuf *w, const char *portal, const char *stmt,
                      uint16_t nparams, const char *const *values,
                      const int32_t *lengths, int16_t result_format)
{
    if (nparams > 32767 || (nparams && !values) || (result_format != 0 && result_format != 1))
        return -EINVAL;
    struct mb m = begin(w, 'B');
    putstr(&m, portal);
    putstr(&m, stmt);
    put16(&m, 0);                      /* no format codes: all params text */
    put16(&m, nparams);
    for (uint16_t i = 0; i < nparams; i++) {
        if (!values[i]) { put32(&m, 0xffffffffu); continue; }
        size_t l = lengths ? (size_t)lengths[i] : strlen(values[i]);
        if ((lengths && lengths[i] < 0) || l > 0x7fffffffu) { m.err = -EINVAL; break; }
        put32(&m, (uint32_t)l);
        put(&m, values[i], l);
    }
    put16(&m, 1);                      /* one result format for all columns */
    put16(&m, (uint16_t)result_format);
    return end(&m);
}

static int kind_name(struct iox_pg_wbuf *w, char type, char kind, const char *name)
{
    if (kind != 'S' && kind != 'P') return -EINVAL;
    struct mb m = begin(w, type);
    put8(&m, (uint8_t)kind);
    putstr(&m, name);
    return end(&m);
}
int iox_pg_build_describe(struct iox_pg_wbuf *w, char kind, const char *name)
{ return kind_name(w, 'D', kind, name); }
int iox_pg_build_close(struct iox_pg_wbuf *w, char kind, const char *name)
{ return kind_name(w, 'C', kind, name); }

int iox_pg_build_execute(struct iox_pg_wbuf *w, const char *portal, uint32_t max_rows)
{
    if (max_rows > 0x7fffffffu) return -EINVAL;
    struct mb m = begin(w, 'E');
    putstr(&m, portal);
    put32(&m, max_rows);
    return end(&m);
}

static int empty_msg(struct iox_pg_wbuf *w, char type)
{
    struct mb m = begin(w, type);
    return end(&m);
}
int iox_pg_build_sync(struct iox_pg_wbuf *w) { return empty_msg(w, 'S'); }
int iox_pg_build_flush(struct iox_pg_wbuf *w) { return empty_msg(w, 'H'); }
int iox_pg_build_terminate(struct iox_pg_wbuf *w) { return empty_msg(w, 'X'); }
