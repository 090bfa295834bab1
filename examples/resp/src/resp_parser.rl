/* resp_parser.rl — host of spec/resp_request.rl: the action bodies and the
 * entry points (src/resp_parser.h). `ioxide-gen ragel -I spec` turns it into
 * resp_parser.c in the build directory.
 *
 * Actions see ps (the parser), buf (the request's first byte), p/pe. The
 * error texts are redis-server 7's, byte for byte (networking.c). */
#include "resp_parser.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PH_COUNT, PH_DOLLAR, PH_BULKLEN };

static int push_arg(struct resp_parser *ps, const char *p, size_t len)
{
    if (ps->argc == ps->cap) {          /* cold: grows to the largest request seen */
        uint32_t cap = ps->cap ? ps->cap * 2 : 16;
        struct resp_arg *a = realloc(ps->argv, (size_t)cap * sizeof *a);
        if (!a) return -1;
        ps->argv = a;
        ps->cap = cap;
    }
    ps->argv[ps->argc].p = p;
    ps->argv[ps->argc].len = len;
    ps->argc++;
    return 0;
}

static void perr(struct resp_parser *ps, const char *what)
{
    snprintf(ps->err, sizeof ps->err, "Protocol error: %s", what);
}

%%{
  machine resp_multibulk;

  action num_start { ps->acc = 0; ps->neg = 0; ps->ovf = 0; ps->ndig = 0; }
  action num_digit {
      if (++ps->ndig > 20) ps->ovf = 1;
      if (fc == '-') ps->neg = 1;
      else if (!ps->ovf) {
          unsigned d = (unsigned)(fc - '0');
          uint64_t lim = ps->neg ? (uint64_t)LLONG_MAX + 1 : (uint64_t)LLONG_MAX;
          if (ps->acc > (lim - d) / 10) ps->ovf = 1;
          else ps->acc = ps->acc * 10 + d;
      }
  }
  action count_done {
      /* redis-server: ll > INT_MAX is refused; ll <= 0 is an empty request. */
      if (ps->ovf || (!ps->neg && ps->acc > ps->max_args)) {
          perr(ps, "invalid multibulk length"); ps->done = 2; fbreak;
      }
      if (p + 1 >= pe) { ps->more = 1; fbreak; }
      p++;                                    /* the byte after '\r' */
      if (ps->neg || ps->acc == 0) { ps->done = 1; fbreak; }
      ps->left = (int64_t)ps->acc;
      ps->phase = PH_DOLLAR;
  }
  action dollar { ps->phase = PH_BULKLEN; }
  action bulk_done {
      if (ps->ovf || ps->neg || ps->acc > ps->max_bulk) {
          perr(ps, "invalid bulk length"); ps->done = 2; fbreak;
      }
      /* The byte after '\r', the data, and two bytes after it. */
      if ((uint64_t)(pe - p - 1) < ps->acc + 3) { ps->more = 1; fbreak; }
      if (push_arg(ps, p + 2, (size_t)ps->acc) < 0) {
          perr(ps, "out of memory"); ps->done = 2; fbreak;
      }
      p += ps->acc + 3;
      ps->phase = PH_DOLLAR;
      if (--ps->left == 0) { ps->done = 1; fbreak; }
  }
  action proto_error {
      if (ps->phase == PH_DOLLAR) {
          snprintf(ps->err, sizeof ps->err, "Protocol error: expected '$', got '%c'", fc);
      } else {
          perr(ps, ps->phase == PH_COUNT ? "invalid multibulk length" : "invalid bulk length");
      }
      ps->done = 2;
      fbreak;
  }

  include resp_multibulk "resp_request.rl";
  write data noerror nofinal noentry;
}%%

%%{
  machine resp_inline;

  action uq_char { ps->ibuf[ps->ilen++] = fc; }
  action sq_char {
      if (fc == '\\' && p + 1 < pe && p[1] == '\'') { ps->ibuf[ps->ilen++] = '\''; p++; }
      else ps->ibuf[ps->ilen++] = fc;
  }
  action dq_char {
      if (fc == '\\' && p + 3 < pe && p[1] == 'x' && hexv(p[2]) >= 0 && hexv(p[3]) >= 0) {
          ps->ibuf[ps->ilen++] = (char)(hexv(p[2]) * 16 + hexv(p[3]));
          p += 3;
      } else if (fc == '\\' && p + 1 < pe) {
          char c = p[1];
          switch (c) {
          case 'n': c = '\n'; break;
          case 'r': c = '\r'; break;
          case 't': c = '\t'; break;
          case 'b': c = '\b'; break;
          case 'a': c = '\a'; break;
          default: break;
          }
          ps->ibuf[ps->ilen++] = c;
          p++;
      } else {
          ps->ibuf[ps->ilen++] = fc;
      }
  }
  action tok_end {
      if (push_arg(ps, ps->ibuf + ps->imark, ps->ilen - ps->imark) < 0) { ps->done = 2; fbreak; }
      ps->imark = ps->ilen;
  }

  include resp_inline "resp_request.rl";
  write data noerror noentry;
}%%

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int resp_parser_init(struct resp_parser *ps, uint64_t max_bulk, uint32_t max_args)
{
    memset(ps, 0, sizeof *ps);
    ps->max_bulk = max_bulk;
    ps->max_args = max_args;
    ps->ibuf = malloc(RESP_INLINE_MAX);
    return ps->ibuf ? 0 : -1;
}

void resp_parser_fini(struct resp_parser *ps)
{
    free(ps->argv);
    free(ps->ibuf);
    ps->argv = NULL;
    ps->ibuf = NULL;
}

static enum resp_parse_result parse_multibulk(struct resp_parser *ps, const char *buf, size_t n, size_t *used)
{
    const char *p = buf, *pe = buf + n, *eof = NULL;
    int cs;
    ps->phase = PH_COUNT;
    ps->done = ps->more = 0;
    ps->acc = 0; ps->neg = ps->ovf = ps->ndig = 0;
    %%{
      machine resp_multibulk;
      write init;
      write exec;
    }%%
    if (ps->done == 2) return RESP_P_ERROR;
    if (ps->done == 1) {
        *used = (size_t)(p - buf);
        return ps->argc ? RESP_P_REQUEST : RESP_P_EMPTY;
    }
    /* Not whole yet. redis-server refuses a count line, or a bulk length
     * line, longer than 64 KiB without its '\r'. */
    if (!ps->more && n > RESP_INLINE_MAX) {
        perr(ps, ps->phase == PH_COUNT ? "too big mbulk count string" : "too big bulk count string");
        return RESP_P_ERROR;
    }
    return RESP_P_MORE;
}

static enum resp_parse_result parse_inline(struct resp_parser *ps, const char *buf, size_t n, size_t *used)
{
    const char *nl = memchr(buf, '\n', n);
    if (!nl) {
        if (n > RESP_INLINE_MAX) { perr(ps, "too big inline request"); return RESP_P_ERROR; }
        return RESP_P_MORE;
    }
    *used = (size_t)(nl - buf) + 1;
    const char *end = nl;
    if (end > buf && end[-1] == '\r') end--;
    /* sdssplitargs reads a C string: a NUL ends the line. */
    const char *z = memchr(buf, '\0', (size_t)(end - buf));
    if (z) end = z;
    if ((size_t)(end - buf) > RESP_INLINE_MAX) { perr(ps, "too big inline request"); return RESP_P_ERROR; }
    const char *p = buf, *pe = end, *eof = end;
    int cs;
    ps->ilen = ps->imark = 0;
    ps->done = 0;
    %%{
      machine resp_inline;
      write init;
      write exec;
    }%%
    if (ps->done == 2) { perr(ps, "out of memory"); return RESP_P_ERROR; }
    if (cs < resp_inline_first_final) { perr(ps, "unbalanced quotes in request"); return RESP_P_ERROR; }
    if (ps->argc > ps->max_args) { perr(ps, "invalid multibulk length"); return RESP_P_ERROR; }
    return ps->argc ? RESP_P_REQUEST : RESP_P_EMPTY;
}

enum resp_parse_result resp_parse(struct resp_parser *ps, const char *p, size_t n, size_t *used)
{
    ps->argc = 0;
    ps->err[0] = 0;
    *used = 0;
    return p[0] == '*' ? parse_multibulk(ps, p, n, used) : parse_inline(ps, p, n, used);
}

int resp_str2ll(const char *s, size_t len, long long *out)
{
    if (len == 0 || len >= 21) return 0;
    if (len == 1 && s[0] == '0') { *out = 0; return 1; }
    size_t i = 0;
    int neg = 0;
    if (s[0] == '-') { neg = 1; i = 1; if (len == 1) return 0; }
    if (s[i] < '1' || s[i] > '9') return 0;
    uint64_t v = 0, lim = neg ? (uint64_t)LLONG_MAX + 1 : (uint64_t)LLONG_MAX;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 1;
}
