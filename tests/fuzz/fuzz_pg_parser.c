/* fuzz_pg_parser.c — libFuzzer target for the PostgreSQL backend-message
 * parser.
 *
 * Input layout (HDR bytes, then the stream):
 *   [0]      max_len: low 2 bits pick default / 64 / 5 + (b >> 2) / 4
 *   [1..8]   four split points (big-endian 16-bit each, mod the stream length)
 *   [9]      chunk size for the chunked replay
 *   [10..]   a stream of backend messages, parsed until it ends or breaks
 *
 * Replayed in one piece, cut at the split points and in fixed chunks, each
 * call on an exact-size malloc'ed copy of the bytes from the message start
 * (the connection's read buffer), so ASan sees any over-read. For each
 * message every counted part is walked (RowDescription fields, DataRow
 * columns both ways, ParameterDescription OIDs, SASL mechanisms, every
 * notice field code): every view must lie inside the message, String views
 * must end at their NUL, and the walk must find exactly the announced count.
 * NEED_MORE's count must be a true minimum. The three logs must match. */
#include "fuzz_common.h"
#include <ioxide/pg_parser.h>
#include <errno.h>

#define HDR 10

static uint32_t max_len_from(uint8_t b)
{
    switch (b & 3) {
    case 0: return 0;
    case 1: return 64;
    case 2: return 5u + (b >> 2);
    default: return 4;
    }
}

/* A String view: inside the message, NUL right after it, none before. */
static void str_ok(struct iox_pg_str s, const char *buf, size_t size, const char *what)
{
    if (!s.ptr) { FUZZ_CHECK(s.len == 0, "%s: NULL view with len %d", what, s.len); return; }
    FUZZ_CHECK(s.len >= 0 && fz_inside(s.ptr, (size_t)s.len + 1, buf, size), "%s: view outside the message", what);
    FUZZ_CHECK(s.ptr[s.len] == 0 && !memchr(s.ptr, 0, (size_t)s.len), "%s: not a C string of len %d", what, s.len);
}

static void log_str(struct fz_log *log, const char *key, struct iox_pg_str s)
{
    fz_printf(log, " %s=", key);
    if (!s.ptr) fz_put(log, "(null)", 6);
    else fz_escape(log, s.ptr, (size_t)s.len);
}

static void log_msg(struct fz_log *log, const struct iox_pg_msg *m, const char *buf, size_t have)
{
    FUZZ_CHECK(m->size >= 5 && m->size <= have, "size %u of %zu", m->size, have);
    FUZZ_CHECK(m->body == buf + 5 && m->body_len == m->size - 5, "body view");
    fz_printf(log, "MSG %c size=%u", m->type, m->size);
    switch (m->type) {
    case IOX_PG_AUTHENTICATION:
        fz_printf(log, " code=%d", m->auth.code);
        if (m->auth.code == IOX_PG_AUTH_MD5) {
            FUZZ_CHECK(fz_inside(m->auth.salt, 4, buf, m->size));
            fz_put(log, " salt=", 6);
            fz_escape(log, m->auth.salt, 4);
        }
        if (m->auth.data) {
            FUZZ_CHECK(fz_inside(m->auth.data, m->auth.data_len, buf, m->size));
            fz_put(log, " data=", 6);
            fz_escape(log, m->auth.data, m->auth.data_len);
        }
        if (m->auth.code == IOX_PG_AUTH_SASL) {
            uint32_t it = 0;
            struct iox_pg_str mech;
            unsigned k = 0;
            while (iox_pg_sasl_mech_next(m, &it, &mech)) {
                FUZZ_CHECK(++k <= m->size, "mechanism walk does not end");
                str_ok(mech, buf, m->size, "sasl mechanism");
                FUZZ_CHECK(mech.len > 0, "empty mechanism name");
                log_str(log, "mech", mech);
            }
            fz_printf(log, " scram=%d", iox_pg_sasl_has_mech(m, "SCRAM-SHA-256"));
        }
        break;
    case IOX_PG_PARAMETER_STATUS:
        str_ok(m->param.name, buf, m->size, "param name");
        str_ok(m->param.value, buf, m->size, "param value");
        log_str(log, "name", m->param.name);
        log_str(log, "value", m->param.value);
        break;
    case IOX_PG_BACKEND_KEY_DATA:
        fz_printf(log, " pid=%d secret=%d", m->key.pid, m->key.secret);
        break;
    case IOX_PG_READY_FOR_QUERY:
        FUZZ_CHECK(m->ready.status == 'I' || m->ready.status == 'T' || m->ready.status == 'E',
                   "ready status %d", m->ready.status);
        fz_printf(log, " status=%c", m->ready.status);
        break;
    case IOX_PG_COMMAND_COMPLETE:
        str_ok(m->complete.tag, buf, m->size, "command tag");
        log_str(log, "tag", m->complete.tag);
        break;
    case IOX_PG_ROW_DESCRIPTION: {
        uint32_t it = 0;
        struct iox_pg_field_desc f;
        unsigned k = 0;
        fz_printf(log, " count=%u", m->list.count);
        while (iox_pg_rowdesc_next(m, &it, &f)) {
            FUZZ_CHECK(++k <= m->list.count, "more fields than announced");
            str_ok(f.name, buf, m->size, "field name");
            log_str(log, "field", f.name);
            fz_printf(log, "/%u/%d/%u/%d/%d/%d", f.table_oid, f.attnum, f.type_oid, f.typlen,
                      f.typmod, f.format);
        }
        FUZZ_CHECK(k == m->list.count, "walked %u of %u fields", k, m->list.count);
        break;
    }
    case IOX_PG_DATA_ROW: {
        uint32_t it = 0;
        struct iox_pg_str col;
        unsigned k = 0;
        fz_printf(log, " count=%u", m->list.count);
        struct iox_pg_str *cols = malloc(((size_t)m->list.count + 1) * sizeof *cols);
        if (!cols) abort();
        while (iox_pg_datarow_next(m, &it, &col)) {
            FUZZ_CHECK(k < m->list.count, "more columns than announced");
            if (col.len == -1) {
                FUZZ_CHECK(col.ptr == NULL, "NULL column with a pointer");
                fz_put(log, " NULL", 5);
            } else {
                FUZZ_CHECK(col.len >= 0 && fz_inside(col.ptr, (size_t)col.len, buf, m->size),
                           "column %u outside the message", k);
                log_str(log, "col", col);
            }
            cols[k++] = col;
        }
        FUZZ_CHECK(k == m->list.count, "walked %u of %u columns", k, m->list.count);
        /* The array form agrees with the walk, and refuses a short array. */
        struct iox_pg_str *again = malloc(((size_t)m->list.count + 1) * sizeof *again);
        if (!again) abort();
        FUZZ_CHECK(iox_pg_datarow_columns(m, again, m->list.count) == (int)m->list.count);
        for (unsigned j = 0; j < k; j++)
            FUZZ_CHECK(again[j].ptr == cols[j].ptr && again[j].len == cols[j].len, "column %u differs", j);
        if (m->list.count)
            FUZZ_CHECK(iox_pg_datarow_columns(m, again, m->list.count - 1u) == -ENOSPC);
        free(again);
        free(cols);
        break;
    }
    case IOX_PG_PARAM_DESCRIPTION:
        fz_printf(log, " count=%u", m->list.count);
        FUZZ_CHECK(fz_inside(m->list.items, (size_t)m->list.count * 4, buf, m->size));
        for (uint16_t j = 0; j < m->list.count; j++) fz_printf(log, " %u", iox_pg_paramdesc_oid(m, j));
        break;
    case IOX_PG_ERROR_RESPONSE:
    case IOX_PG_NOTICE_RESPONSE:
        for (const char *c = IOX_PG_NOTICE_CODES; *c; c++) {
            const struct iox_pg_str *f = iox_pg_notice_field(m, *c);
            const struct iox_pg_str *g = &m->notice.f[c - IOX_PG_NOTICE_CODES];
            FUZZ_CHECK(f == NULL ? g->ptr == NULL : f == g, "notice field %c lookup", *c);
            if (!f) continue;
            str_ok(*f, buf, m->size, "notice field");
            char key[2] = {*c, 0};
            log_str(log, key, *f);
        }
        FUZZ_CHECK(iox_pg_notice_field(m, 'Z') == NULL && iox_pg_notice_field(m, 0) == NULL);
        break;
    case IOX_PG_NOTIFICATION:
        str_ok(m->notify.channel, buf, m->size, "channel");
        str_ok(m->notify.payload, buf, m->size, "payload");
        fz_printf(log, " pid=%d", m->notify.pid);
        log_str(log, "channel", m->notify.channel);
        log_str(log, "payload", m->notify.payload);
        break;
    case IOX_PG_EMPTY_QUERY: case IOX_PG_PARSE_COMPLETE: case IOX_PG_BIND_COMPLETE:
    case IOX_PG_CLOSE_COMPLETE: case IOX_PG_NO_DATA: case IOX_PG_PORTAL_SUSPENDED:
        break;
    default:
        FUZZ_CHECK(0, "accepted unknown type byte 0x%02x", (unsigned char)m->type);
    }
    fz_put(log, "\n", 1);
}

static void replay(const char *in, size_t n, const size_t *cuts, size_t ncut, uint32_t max_len,
                   struct fz_log *log)
{
    struct iox_pg_parser ps;
    size_t recv_end = ncut ? cuts[0] : n, next_cut = 1, start = 0, min_total = 0;
    iox_pg_parser_init(&ps, max_len);
    log->n = 0;
    for (unsigned iter = 0;; iter++) {
        FUZZ_CHECK(iter < 2 * n + 2 * ncut + 16, "no progress");
        size_t have = recv_end - start, used = (size_t)-1;
        char *bp = fz_dup(in + start, have);
        struct iox_pg_msg m;
        memset(&m, 0xa5, sizeof m);
        int r = iox_pg_parse(&ps, bp, have, &m, &used);
        if (r == IOX_PG_MSG) {
            FUZZ_CHECK(used == m.size, "n %zu for a message of %u", used, m.size);
            FUZZ_CHECK(m.size >= min_total, "NEED_MORE asked for %zu bytes, message has %u", min_total, m.size);
            log_msg(log, &m, bp, have);
            free(bp);
            start += used;
            min_total = 0;
            if (start == n) break;
            continue;
        }
        free(bp);
        if (r == IOX_PG_NEED_MORE) {
            FUZZ_CHECK(used > 0, "NEED_MORE for 0 bytes");
            if (have < 5) FUZZ_CHECK(used == 5 - have, "header incomplete: need %zu with %zu", used, have);
            FUZZ_CHECK(have + used >= min_total, "need went down");
            min_total = have + used;
            if (recv_end == n) { fz_printf(log, "NEED_MORE %zu\n", used); break; }
            recv_end = next_cut < ncut ? cuts[next_cut] : n;
            next_cut++;
            continue;
        }
        FUZZ_CHECK(r < 0 && r >= IOX_PG_E_MALFORMED, "unknown result %d", r);
        FUZZ_CHECK(used == 0, "error with n %zu", used);
        FUZZ_CHECK(iox_pg_result_name(r) && iox_pg_error_reason(r));
        fz_printf(log, "%s type=0x%02x off=%zu\n", iox_pg_result_name(r), (unsigned char)ps.err_type, ps.err_off);
        break;
    }
}

static void same(const struct fz_log *a, const struct fz_log *b, const char *how)
{
    if (a->n == b->n && !memcmp(a->s, b->s, a->n)) return;
    fprintf(stderr, "\nFUZZ DIFFERENTIAL: %s differs from one piece\n--- one piece:\n%s--- %s:\n%s",
            how, a->s ? a->s : "", how, b->s ? b->s : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HDR) return 0;
    uint32_t max_len = max_len_from(data[0]);
    const char *in = (const char *)data + HDR;
    size_t n = size - HDR;
    struct fz_log one = {0}, split = {0};
    replay(in, n, NULL, 0, max_len, &one);

    size_t cuts[8];
    size_t ncut = fz_cuts(data + 1, 8, n, cuts, 4);
    if (ncut) {
        replay(in, n, cuts, ncut, max_len, &split);
        same(&one, &split, "split at the seeded points");
    }
    size_t chunk = 1 + data[9] % 64;
    if (chunk < n / 128) chunk = n / 128;
    if (chunk < n) {
        size_t nc = (n - 1) / chunk;
        size_t *cc = malloc(nc * sizeof *cc);
        if (!cc) abort();
        for (size_t i = 0; i < nc; i++) cc[i] = (i + 1) * chunk;
        replay(in, n, cc, nc, max_len, &split);
        free(cc);
        same(&one, &split, "fixed-size chunks");
    }
    fz_log_free(&one);
    fz_log_free(&split);
    return 0;
}
