/* pg_parser.rl — host file for spec/pg_backend.rl: the action bodies and
 * the C entry points. `make regen` turns it into generated/pg_parser.c.
 *
 * Actions see: ps (parser), msg (output), buf (message start), p/pe (Ragel).
 * A hook that finds an error sets ps->err and stops with fbreak; the entry
 * point turns the stop reason into a result. */
#include <ioxide/pg_parser.h>
#include <errno.h>
#include <string.h>

%%{
  machine pg_parser;

  action int_start { ps->acc = 0; }
  action int_byte  { ps->acc = (ps->acc << 8) | (uint8_t)fc; }
  action str_start { ps->mark = fpc; ps->in_str = 1; }
  action str_end   {
      ps->str.ptr = ps->mark;
      ps->str.len = (int32_t)(fpc - ps->mark);
      ps->in_str = 0;
  }

  action frame {
      uint32_t n = ps->acc;
      msg->type = buf[0];
      if (n < 4) { ps->err = IOX_PG_E_BAD_LENGTH; fbreak; }
      if (n > ps->max_len) { ps->err = IOX_PG_E_TOO_LARGE; fbreak; }
      size_t total = (size_t)n + 1;
      size_t have = (size_t)(pe - buf);
      if (total > have) { ps->need = total - have; fbreak; }
      ps->framed = 1;
      pe = buf + total;               /* contents may not run past this */
      msg->size = (uint32_t)total;
      msg->body = fpc + 1;
      msg->body_len = n - 4;
  }
  action done { ps->done = 1; fbreak; }
  # The rest of the message is opaque data; skip to its last byte.
  action rest {
      msg->auth.data = fpc + 1;
      msg->auth.data_len = (uint32_t)(pe - fpc - 1);
      p = pe - 1;
  }

  action auth_ok            { msg->auth.code = IOX_PG_AUTH_OK; }
  action auth_cleartext     { msg->auth.code = IOX_PG_AUTH_CLEARTEXT; }
  action auth_md5           { msg->auth.code = IOX_PG_AUTH_MD5; }
  action auth_sasl          { msg->auth.code = IOX_PG_AUTH_SASL; }
  action auth_sasl_continue { msg->auth.code = IOX_PG_AUTH_SASL_CONTINUE; }
  action auth_sasl_final    { msg->auth.code = IOX_PG_AUTH_SASL_FINAL; }
  action auth_unsupported   { msg->auth.code = (int32_t)(uint8_t)fc; }
  action salt               { msg->auth.salt = fpc; }
  action mechs_start        { msg->auth.data = fpc; }
  action mechs_end          { msg->auth.data_len = (uint32_t)(fpc + 1 - msg->auth.data); }

  action ps_name    { msg->param.name = ps->str; }
  action ps_value   { msg->param.value = ps->str; }
  action key_pid    { msg->key.pid = (int32_t)ps->acc; }
  action key_secret { msg->key.secret = (int32_t)ps->acc; }
  action rfq_status { msg->ready.status = fc; }
  action cc_tag     { msg->complete.tag = ps->str; }

  action field_code {
      const char *c = strchr(IOX_PG_NOTICE_CODES, fc);
      ps->field = c ? (int8_t)(c - IOX_PG_NOTICE_CODES) : -1;
  }
  action field_value { if (ps->field >= 0) msg->notice.f[ps->field] = ps->str; }

  action nf_pid     { msg->notify.pid = (int32_t)ps->acc; }
  action nf_channel { msg->notify.channel = ps->str; }
  action nf_payload { msg->notify.payload = ps->str; }

  # Counted parts: the count hook enters the loop machine or completes an
  # empty list; the item hook completes the message after the last item.
  action rd_count {
      int16_t c = (int16_t)(uint16_t)ps->acc;
      if (c < 0) { ps->err = IOX_PG_E_BAD_COUNT; fbreak; }
      msg->list.count = (uint16_t)c; msg->list.items = fpc + 1;
      ps->left = (uint32_t)c;
      if (c == 0) { ps->done = 1; fbreak; }
      fgoto row_desc_loop;
  }
  action rd_field { if (--ps->left == 0) { ps->done = 1; fbreak; } }

  action dr_count {
      int16_t c = (int16_t)(uint16_t)ps->acc;
      if (c < 0) { ps->err = IOX_PG_E_BAD_COUNT; fbreak; }
      msg->list.count = (uint16_t)c; msg->list.items = fpc + 1;
      ps->left = (uint32_t)c;
      if (c == 0) { ps->done = 1; fbreak; }
      fgoto data_row_loop;
  }
  action dr_column {
      int32_t n = (int32_t)ps->acc;
      if (n < -1) { ps->err = IOX_PG_E_BAD_COLUMN_LEN; fbreak; }
      if (n > 0) {
          if ((size_t)(pe - fpc - 1) < (size_t)n) { ps->err = IOX_PG_E_TRUNCATED; fbreak; }
          p += n;                     /* skip the value: the iterator reads it */
      }
      if (--ps->left == 0) { ps->done = 1; fbreak; }
  }

  action pd_count {
      int16_t c = (int16_t)(uint16_t)ps->acc;
      if (c < 0) { ps->err = IOX_PG_E_BAD_COUNT; fbreak; }
      msg->list.count = (uint16_t)c; msg->list.items = fpc + 1;
      ps->left = (uint32_t)c;
      if (c == 0) { ps->done = 1; fbreak; }
      fgoto param_desc_loop;
  }
  action pd_oid { if (--ps->left == 0) { ps->done = 1; fbreak; } }

  include pg_backend "pg_backend.rl";

  write data nofinal;
}%%

void iox_pg_parser_init(struct iox_pg_parser *ps, uint32_t max_len)
{
    memset(ps, 0, sizeof *ps);
    ps->max_len = max_len ? max_len : IOX_PG_DEFAULT_MAX_LEN;
}

int iox_pg_parse(struct iox_pg_parser *ps, const char *buf, size_t len,
                 struct iox_pg_msg *msg, size_t *n)
{
    const char *p = buf, *pe = buf + len;
    int cs;

    memset(msg, 0, sizeof *msg);
    ps->acc = ps->left = 0;
    ps->in_str = ps->framed = ps->done = 0;
    ps->err = 0;
    ps->need = 0;
    ps->field = -1;
    *n = 0;

    %% write init;
    %% write exec;

    int res;
    if (ps->err) res = ps->err;
    else if (ps->need) { *n = ps->need; return IOX_PG_NEED_MORE; }
    else if (ps->done) {
        if (p == pe) { *n = msg->size; return IOX_PG_MSG; }
        res = IOX_PG_E_TRAILING;
    } else if (cs == pg_parser_error)
        res = p == buf ? IOX_PG_E_UNKNOWN_TYPE : IOX_PG_E_MALFORMED;
    else if (!ps->framed) { *n = 5 - len; return IOX_PG_NEED_MORE; }
    else res = ps->in_str ? IOX_PG_E_UNTERMINATED : IOX_PG_E_TRUNCATED;
    ps->err_type = len ? buf[0] : 0;
    ps->err_off = (size_t)(p - buf);
    return res;
}

static uint32_t rd32(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}
static uint16_t rd16(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    return (uint16_t)(u[0] << 8 | u[1]);
}

/* Iterators: *it counts items done in its low 16 bits and the byte offset
 * from list.items in the high bits would overflow for wide rows, so *it is
 * the byte offset and the item index is not needed: the walk ends at the
 * end of the message body, which the parse proved matches the count. */
static const char *body_end(const struct iox_pg_msg *m) { return m->body + m->body_len; }

int iox_pg_datarow_next(const struct iox_pg_msg *m, uint32_t *it, struct iox_pg_str *col)
{
    const char *q = m->list.items + *it;
    if (m->type != IOX_PG_DATA_ROW || m->list.count == 0 || q >= body_end(m)) return 0;
    int32_t l = (int32_t)rd32(q);
    col->ptr = l >= 0 ? q + 4 : NULL;
    col->len = l;
    *it += 4 + (l > 0 ? (uint32_t)l : 0);
    return 1;
}

int iox_pg_datarow_columns(const struct iox_pg_msg *m, struct iox_pg_str *cols, size_t cap)
{
    uint32_t it = 0;
    size_t i = 0;
    struct iox_pg_str c;
    while (i < cap && iox_pg_datarow_next(m, &it, &c)) cols[i++] = c;
    if (i < m->list.count) return -ENOSPC;
    return (int)i;
}

int iox_pg_rowdesc_next(const struct iox_pg_msg *m, uint32_t *it, struct iox_pg_field_desc *f)
{
    const char *q = m->list.items + *it;
    if (m->type != IOX_PG_ROW_DESCRIPTION || m->list.count == 0 || q >= body_end(m)) return 0;
    size_t nl = strlen(q);            /* the parse proved the NUL is there */
    f->name.ptr = q;
    f->name.len = (int32_t)nl;
    q += nl + 1;
    f->table_oid = rd32(q);
    f->attnum = (int16_t)rd16(q + 4);
    f->type_oid = rd32(q + 6);
    f->typlen = (int16_t)rd16(q + 10);
    f->typmod = (int32_t)rd32(q + 12);
    f->format = (int16_t)rd16(q + 16);
    q += 18;
    *it = (uint32_t)(q - m->list.items);
    return 1;
}

uint32_t iox_pg_paramdesc_oid(const struct iox_pg_msg *m, uint16_t i)
{
    if (m->type != IOX_PG_PARAM_DESCRIPTION || i >= m->list.count) return 0;
    return rd32(m->list.items + 4u * i);
}

int iox_pg_sasl_mech_next(const struct iox_pg_msg *m, uint32_t *it, struct iox_pg_str *mech)
{
    if (m->type != IOX_PG_AUTHENTICATION || m->auth.code != IOX_PG_AUTH_SASL ||
        *it >= m->auth.data_len)
        return 0;
    const char *q = m->auth.data + *it;
    if (!*q) return 0;                /* the empty terminator */
    size_t l = strlen(q);
    mech->ptr = q;
    mech->len = (int32_t)l;
    *it += (uint32_t)l + 1;
    return 1;
}

int iox_pg_sasl_has_mech(const struct iox_pg_msg *m, const char *name)
{
    uint32_t it = 0;
    struct iox_pg_str s;
    size_t nl = strlen(name);
    while (iox_pg_sasl_mech_next(m, &it, &s))
        if ((size_t)s.len == nl && memcmp(s.ptr, name, nl) == 0) return 1;
    return 0;
}

const struct iox_pg_str *iox_pg_notice_field(const struct iox_pg_msg *m, char code)
{
    if ((m->type != IOX_PG_ERROR_RESPONSE && m->type != IOX_PG_NOTICE_RESPONSE) || !code)
        return NULL;
    const char *c = strchr(IOX_PG_NOTICE_CODES, code);
    if (!c) return NULL;
    const struct iox_pg_str *s = &m->notice.f[c - IOX_PG_NOTICE_CODES];
    return s->ptr ? s : NULL;
}

const char *iox_pg_result_name(int res)
{
    switch (res) {
    case IOX_PG_NEED_MORE: return "NEED_MORE";
    case IOX_PG_MSG: return "MSG";
#define IOX_PG_X_NAME(n, v, r) case v: return "E_" #n;
    IOX_PG_ERRORS(IOX_PG_X_NAME)
#undef IOX_PG_X_NAME
    }
    return "UNKNOWN";
}

const char *iox_pg_error_reason(int err)
{
    switch (err) {
#define IOX_PG_X_REASON(n, v, r) case v: return r;
    IOX_PG_ERRORS(IOX_PG_X_REASON)
#undef IOX_PG_X_REASON
    }
    return err >= 0 ? "no error" : "unknown error";
}
