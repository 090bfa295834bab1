/* runtime/http/http_parser.rl — Ragel host for spec/http11_request.rl.
 *
 * The grammar (what a request is) lives in spec/; this file holds what the
 * parser remembers while matching it (offsets, never pointers), the limits,
 * and which IOX_HTTP_E_* each failure means. `make regen` turns it into
 * generated/http_parser.c (ragel -G2: straight-line goto code, no tables).
 *
 * Error naming. A Ragel error action ($!e_*) runs when the machine fails in a
 * state of the section it is attached to and stores that section's code in
 * `err`. refine_error() then looks at the failing byte for the three causes
 * that cut across sections: a LF the grammar did not consume is always a
 * bare LF (the grammar only accepts LF right after CR); a failure right after
 * a CR is a bare CR; SP/HTAB at the start of a field line is obs-fold.
 * Actions that detect a semantic error (limits, conflicts) set `err` and
 * fbreak; the state is then not the error state and the code is final.
 */
#include <ioxide/http_parser.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum { PH_HEAD = 0, PH_LENGTH, PH_CHUNK_FRAME, PH_CHUNK_DATA };

/* hp->flags */
#define IOX__HF_CL         0x0001u  /* a Content-Length value was seen */
#define IOX__HF_TE         0x0002u  /* Transfer-Encoding was seen */
#define IOX__HF_TE_CHUNKED 0x0004u  /* "chunked" appeared (only once allowed) */
#define IOX__HF_TE_LAST    0x0008u  /* the last coding so far is "chunked" */
#define IOX__HF_HOST       0x0010u
#define IOX__HF_CLOSE      0x0020u  /* Connection: close */
#define IOX__HF_KEEP       0x0040u  /* Connection: keep-alive */
#define IOX__HF_EXPECT     0x0080u  /* Expect: 100-continue */
#define IOX__HF_TRAILERS   0x0100u  /* chunked: last-chunk seen */
#define IOX__HF_ODD        0x0200u  /* target not origin-form, or method CONNECT */
#define IOX__HF_PREV_CR    0x0400u  /* body: the byte before this call's buf is CR */
#define IOX__HF_EXPECT_X   0x0800u  /* Expect: something other than 100-continue */

/* Offset of the current byte from the request start (b). */
#define OFF ((uint32_t)(p - b))

/* First byte in [q, pe) that is a CTL (incl. HTAB, CR), or DEL: the field
 * value state loops on everything else. Sixteen bytes at a time with SSE2
 * (x86-64 baseline), then eight at a time (SWAR), then byte by byte; each
 * wide step finds the exact first such byte from its mask. This is the one
 * place the parser does not step the DFA byte by byte; it is what makes long
 * values (User-Agent, Cookie) cheap. Never reads at or past pe. */
static inline const unsigned char *skip_plain(const unsigned char *q, const unsigned char *pe)
{
#ifdef __SSE2__
    const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    while (pe - q >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
        /* byte >= 0x20 (unsigned) and != 0x7f */
        unsigned ge = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(x, sp), x));
        unsigned dl = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, del));
        unsigned stop = ~ge | dl;
        if (stop & 0xffffu) return q + __builtin_ctz(stop);
        q += 16;
    }
#endif
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (pe - q >= 8) {
        uint64_t x, y, m;
        memcpy(&x, q, 8);
        y = x ^ (0x7f * ones);
        /* "has a byte < 0x20" / "has a byte == 0x7f": the lowest flagged
         * byte is exact (a borrow only runs upward from a real match). */
        m = ((x - 0x20 * ones) & ~x & highs) | ((y - ones) & ~y & highs);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (m) return q + (__builtin_ctzll(m) >> 3);
#else
        if (m) break;
#endif
        q += 8;
    }
    while (q < pe && *q >= 0x20 && *q != 0x7f) q++;
    return q;
}

/* Byte classes for the table skips. They MUST equal the grammar's classes
 * (tests/test_http_parser.c: skip_tables_match_grammar checks all 256 bytes):
 *   C_TCHAR  tchar
 *   C_PATH   what loops in the path state: tgt_char | "/"  minus "%"
 *   C_QUERY  C_PATH | "?"
 *   C_HOST   what loops in the host-name state: unreserved | sub-delims
 *            (host_name of the grammar without pct-encoded and ip-literal) */
enum { C_TCHAR = 1, C_PATH = 2, C_QUERY = 4, C_HOST = 8 };
#define PQ (C_PATH | C_QUERY)
#define PQH (C_PATH | C_QUERY | C_HOST)
static const unsigned char cls[256] = {
    ['0' ... '9'] = C_TCHAR | PQH, ['A' ... 'Z'] = C_TCHAR | PQH, ['a' ... 'z'] = C_TCHAR | PQH,
    ['-'] = C_TCHAR | PQH, ['.'] = C_TCHAR | PQH, ['_'] = C_TCHAR | PQH, ['~'] = C_TCHAR | PQH,
    ['!'] = C_TCHAR | PQH, ['$'] = C_TCHAR | PQH, ['&'] = C_TCHAR | PQH, ['\''] = C_TCHAR | PQH,
    ['*'] = C_TCHAR | PQH, ['+'] = C_TCHAR | PQH, ['^'] = C_TCHAR | PQ, ['`'] = C_TCHAR | PQ,
    ['|'] = C_TCHAR | PQ, ['#'] = C_TCHAR, ['%'] = C_TCHAR,
    ['('] = PQH, [')'] = PQH, [','] = PQH, [';'] = PQH, ['='] = PQH, [':'] = PQ, ['@'] = PQ,
    ['"'] = PQ, ['<'] = PQ, ['>'] = PQ, ['['] = PQ, ['\\'] = PQ, [']'] = PQ, ['{'] = PQ,
    ['}'] = PQ, ['/'] = PQ, ['?'] = C_QUERY,
};
#undef PQ
#undef PQH

static inline const unsigned char *skip_class(const unsigned char *q, const unsigned char *pe,
                                              unsigned char c)
{
    /* Four bytes per bound check: names and paths are runs of many bytes. */
    while (pe - q >= 4) {
        if (!(cls[q[0]] & c)) return q;
        if (!(cls[q[1]] & c)) return q + 1;
        if (!(cls[q[2]] & c)) return q + 2;
        if (!(cls[q[3]] & c)) return q + 3;
        q += 4;
    }
    while (q < pe && (cls[*q] & c)) q++;
    return q;
}

/* Host values are mostly letters, digits, '.' and '-' (names, IPv4
 * addresses) and ports digits: skip_host_common() and skip_digits() jump
 * over a run of those 16 bytes at a time (SSE2) while 16 bytes remain
 * before pe, and return where the run ends or where fewer than 16 remain.
 * Both only skip bytes the byte loops after them (C_HOST, C_DIGIT) would
 * skip too, so the result is the same; they only make it cheaper. Never
 * read at or past pe. */
static inline const unsigned char *skip_host_common(const unsigned char *q, const unsigned char *pe)
{
#ifdef __SSE2__
    const __m128i c20 = _mm_set1_epi8(0x20), ca = _mm_set1_epi8('a'), c25 = _mm_set1_epi8(25),
                  c0 = _mm_set1_epi8('0'), c9 = _mm_set1_epi8(9), dot = _mm_set1_epi8('.'),
                  dash = _mm_set1_epi8('-');
    while (pe - q >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
        /* letter: (x | 0x20) - 'a' <= 25 unsigned; digit: x - '0' <= 9 */
        __m128i l = _mm_sub_epi8(_mm_or_si128(x, c20), ca), d = _mm_sub_epi8(x, c0);
        __m128i ok = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(l, c25), l),
                                  _mm_cmpeq_epi8(_mm_min_epu8(d, c9), d));
        ok = _mm_or_si128(ok, _mm_or_si128(_mm_cmpeq_epi8(x, dot), _mm_cmpeq_epi8(x, dash)));
        unsigned stop = ~(unsigned)_mm_movemask_epi8(ok) & 0xffffu;
        if (stop) return q + __builtin_ctz(stop);
        q += 16;
    }
#else
    (void)pe;
#endif
    return q;
}

static inline const unsigned char *skip_digits(const unsigned char *q, const unsigned char *pe)
{
#ifdef __SSE2__
    const __m128i c0 = _mm_set1_epi8('0'), c9 = _mm_set1_epi8(9);
    while (pe - q >= 16) {
        __m128i d = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(const void *)q), c0);
        unsigned stop = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, c9), d)) & 0xffffu;
        if (stop) return q + __builtin_ctz(stop);
        q += 16;
    }
#else
    (void)pe;
#endif
    return q;
}

/* The 10 bytes "HTTP/1.1" CR LF at q (the caller checked they are there). */
static inline int is_http11_crlf(const unsigned char *q)
{
    uint64_t a;
    uint16_t c;
    memcpy(&a, q, 8);
    memcpy(&c, q + 8, 2);
    return a == 0x312e312f50545448ull /* "HTTP/1.1" */ && c == 0x0a0d;
}

/* The rest of a Host line from its ":" at p, when it is the common
 * OWS reg-name [ ":" port ] OWS CRLF (no pct-encoding, no IP literal) and
 * lies whole before pe: returns its LF, the value's bounds in *hs, *he.
 * NULL for anything else (an empty host, "%", "[", a bad byte, a line cut
 * by the read), which the DFA then takes byte by byte. Only lines the DFA
 * accepts are taken (host_value in the spec), so the outcome is the same. */
/* Always inline: two call sites, and out of line its results went through
 * memory and the call cost more than the single OWS byte it usually skips. */
static inline __attribute__((always_inline)) const unsigned char *
host_line(const unsigned char *p, const unsigned char *pe, const unsigned char **hs,
          const unsigned char **he)
{
    const unsigned char *q = p + 1, *s;
    while (q < pe && (*q == ' ' || *q == '\t')) q++;
    s = q;
    q = skip_host_common(q, pe);
    while (q < pe && (cls[*q] & C_HOST)) q++;
    if (q == s) return NULL;
    if (q < pe && *q == ':') {
        q = skip_digits(q + 1, pe);
        while (q < pe && *q >= '0' && *q <= '9') q++;
    }
    *hs = s;
    *he = q;
    while (q < pe && (*q == ' ' || *q == '\t')) q++;
    if (pe - q >= 2 && q[0] == '\r' && q[1] == '\n') return q + 1;
    return NULL;
}

/* The 5 bytes /host/i ":" at q (the caller checked they are there): the
 * field name the grammar's n_host matches, and its colon. b | 0x20 is the
 * lower-case letter only for that letter's two cases. */
static inline int is_host_colon(const unsigned char *q)
{
    uint32_t w;
    memcpy(&w, q, 4);
    return (w | 0x20202020u) == 0x74736f68u /* "host" */ && q[4] == ':';
}

/* The head ends right after the field line whose LF is at q: CRLF follows
 * (and lies before pe). */
#define HEAD_ENDS_AFTER(q) (pe - (q) > 2 && (q)[1] == '\r' && (q)[2] == '\n')

/* ------------------------------------------------------------------ head */
%%{
machine iox_http_head;
alphtype unsigned char;

action start_method   { hp->start = OFF; }
# Each method byte after the first: past max_method the method is longer
# than any this server implements (501). Checked per byte, so the outcome
# does not depend on where the reads were cut, and before max_head is.
action method_byte {
    if (OFF - hp->start >= hp->lim.max_method) { err = IOX_HTTP_E_METHOD_TOO_LONG; fbreak; }
}
action end_method {
    hp->method_end = OFF;
    hp->method_id = method_id((const char *)b + hp->start, OFF - hp->start);
    if (hp->method_id == IOX_HTTP_CONNECT) hp->flags |= IOX__HF_ODD;
}
action start_target   { hp->target_start = OFF; }
action end_target {
    hp->target_end = OFF;
    if (hp->target_end - hp->target_start > hp->lim.max_target) {
        err = IOX_HTTP_E_TARGET_TOO_LONG; fbreak;
    }
    /* fpc is the SP after the target. If "HTTP/1.1" CRLF follows, do what
     * the DFA would do over those 10 bytes (version_minor, end_request_line)
     * and enter the field section after them. This must stay the last
     * action of the transition (it jumps): form_* actions, embedded deeper
     * in the grammar, run before it. */
    if (pe - p > 10 && is_http11_crlf(p + 1)) {
        hp->version_minor = 1;
        hp->headers_start = OFF + 11;
        p += 10;
        /* p is the request line's LF. A first field line "Host:" with a
         * common value (host_line): do what the DFA would do over the name
         * (n_host ":"), host_field (no Host is seen yet: it is the first
         * line) and host_rest; and when CRLF follows, end_head too. Else
         * the field section from its start, as before. */
        if (pe - p > 6 && is_host_colon(p + 1) && hp->lim.max_headers > 0) {
            const unsigned char *hs, *he, *q = host_line(p + 5, pe, &hs, &he);
            if (q) {
                hp->flags |= IOX__HF_HOST;
                hp->host_start = (uint32_t)(hs - b);
                hp->host_end = (uint32_t)(he - b);
                hp->header_count = 1;
                p = q;
                if (HEAD_ENDS_AFTER(p)) { p += 2; done = 1; fbreak; }
                fgoto fields;
            }
        }
        fgoto fields;
    }
}
action start_path     { hp->path_start = OFF; p = skip_class(p + 1, pe, C_PATH) - 1; }
# The path, if any, ends at this "?"; without a query it ends with the target.
action start_query    { hp->query_start = OFF + 1; p = skip_class(p + 1, pe, C_QUERY) - 1; }
action form_absolute  { hp->target_form = IOX_HTTP_ABSOLUTE_FORM; hp->flags |= IOX__HF_ODD; }
action form_authority { hp->target_form = IOX_HTTP_AUTHORITY_FORM; hp->flags |= IOX__HF_ODD; }
action form_asterisk  { hp->target_form = IOX_HTTP_ASTERISK_FORM; hp->flags |= IOX__HF_ODD; }
action version_minor  { hp->version_minor = fc != '0'; }
action version_unsupported { err = IOX_HTTP_E_VERSION_UNSUPPORTED; fbreak; }
action end_request_line { hp->headers_start = OFF + 1; }

action cl_start { hp->cl_current = 0; }
action cl_digit {
    uint64_t d = (uint64_t)(fc - '0');
    if (hp->cl_current > (UINT64_C(0x7fffffffffffffff) - d) / 10) {
        err = IOX_HTTP_E_CONTENT_LENGTH_OVERFLOW; fbreak;
    }
    hp->cl_current = hp->cl_current * 10 + d;
}
action cl_end {
    if ((hp->flags & IOX__HF_CL) && hp->cl_value != hp->cl_current) {
        err = IOX_HTTP_E_CONTENT_LENGTH_CONFLICT; fbreak;
    }
    hp->flags |= IOX__HF_CL;
    hp->cl_value = hp->cl_current;
}
action te_chunked {
    if (hp->flags & IOX__HF_TE_CHUNKED) { err = IOX_HTTP_E_BAD_TRANSFER_ENCODING; fbreak; }
    hp->flags |= IOX__HF_TE | IOX__HF_TE_CHUNKED | IOX__HF_TE_LAST;
}
action te_other {
    hp->flags = (uint16_t)((hp->flags | IOX__HF_TE) & ~IOX__HF_TE_LAST);
}
action conn_close { hp->flags |= IOX__HF_CLOSE; }
action conn_keep  { hp->flags |= IOX__HF_KEEP; }
action host_field {
    if (hp->flags & IOX__HF_HOST) { err = IOX_HTTP_E_HOST_DUPLICATE; fbreak; }
    hp->flags |= IOX__HF_HOST;
}
# fpc is the ":" after "Host". If the rest of the line is the common
# OWS reg-name [ ":" port ] OWS CRLF (no pct-encoding, no IP literal) and
# lies whole before pe, do what the DFA would do over it — start_host at the
# first name byte, end_host after the port, end_field at the LF — and enter
# the field section after the LF (the state a field line's LF leads to is
# the `fields` entry), or end the head when CRLF follows (end_head, as the
# DFA would on that CRLF). Anything else (an empty host, "%", "[", a bad byte,
# a line cut by the read, the header-count limit reached) is left to the
# DFA, byte by byte, as before: the fast path only ever takes lines the
# DFA accepts, so the outcome is the same (tests/data/http/headers.md, the
# host_fast_path tests). Must stay the last action of its transition.
action host_rest {
    const unsigned char *hs, *he, *q = host_line(p, pe, &hs, &he);
    if (q && hp->header_count < hp->lim.max_headers) {
        hp->host_start = (uint32_t)(hs - b);
        hp->host_end = (uint32_t)(he - b);
        hp->header_count++;
        p = q;
        /* CRLF next: the head ends here (end_head, as the DFA would). */
        if (HEAD_ENDS_AFTER(p)) { p += 2; done = 1; fbreak; }
        fgoto fields;
    }
}
action start_host { hp->host_start = OFF; }
action end_host   { hp->host_end = OFF; }
action expect_continue { hp->flags |= IOX__HF_EXPECT; }
action expect_other    { hp->flags |= IOX__HF_EXPECT_X; }
action end_field {
    if (++hp->header_count > hp->lim.max_headers) {
        err = IOX_HTTP_E_TOO_MANY_HEADERS; fbreak;
    }
}
action end_head { done = 1; fbreak; }
# fpc is the first byte of a field value, already accepted into the value
# loop state; every byte up to the next CTL/DEL/HTAB would loop there too.
# An empty value ("X:" CRLF) enters field_value on the CR itself, which
# belongs to CRLF, not to the value loop: skipping from there jumped over the
# bytes after a bare CR up to the next CTL, so "X:" CR " v" LF was accepted
# as a field line when the head lay in one buffer, and refused (E_BARE_LF)
# when it was cut after the CR (found by tests/fuzz/fuzz_http_parser).
action skip_value { if (fc != '\r') p = skip_plain(p + 1, pe) - 1; }
# Same idea for a name already known not to be special, and for the path and
# query loops (entered at their first byte): skip what loops in that state.
action skip_name { p = skip_class(p + 1, pe, C_TCHAR) - 1; }

action e_bare_cr            { err = IOX_HTTP_E_BARE_LF; }
action e_method             { err = IOX_HTTP_E_BAD_METHOD; }
action e_target             { err = IOX_HTTP_E_BAD_TARGET; }
action e_version            { err = IOX_HTTP_E_BAD_VERSION; }
action e_header_name        { err = IOX_HTTP_E_BAD_HEADER_NAME; }
action e_header_value       { err = IOX_HTTP_E_BAD_HEADER_VALUE; }
action e_content_length     { err = IOX_HTTP_E_BAD_CONTENT_LENGTH; }
action e_transfer_encoding  { err = IOX_HTTP_E_BAD_TRANSFER_ENCODING; }
action e_host               { err = IOX_HTTP_E_BAD_HOST; }

include http11_request "http11_request.rl";

# request_head as three machines (see request_start in the spec): the host
# enters `target` after a literal method it recognized (iox_http_parse_head)
# and `fields` after a literal "HTTP/1.1" CRLF (end_target).
main   := request_start @{ fgoto target; };
target := request_rest @{ fgoto fields; };
fields := field_section;
write data;
}%%

/* ------------------------------------------------------------- chunked body */
%%{
machine iox_http_chunked;
alphtype unsigned char;

action chunk_digit {
    if (hp->body_left >> 59) { err = IOX_HTTP_E_CHUNK_SIZE_OVERFLOW; fbreak; }
    hp->body_left = (hp->body_left << 4) | (uint64_t)((fc & 0xf) + (fc >> 6) * 9);
}
action end_chunk_line {
    if (hp->body_left == 0) {
        hp->flags |= IOX__HF_TRAILERS;
        fnext trailers;
    } else {
        if (hp->body_left > hp->lim.max_body - hp->body_total) {
            err = IOX_HTTP_E_BODY_TOO_LARGE; fbreak;
        }
        hp->body_total += hp->body_left;
        hp->phase = PH_CHUNK_DATA;
        fnext data_end;
        fbreak;
    }
}
action end_chunk_data { fnext main; }
action end_body { done = 1; fbreak; }

action e_bare_cr     { err = IOX_HTTP_E_BARE_LF; }
action e_chunk_size  { err = IOX_HTTP_E_BAD_CHUNK_SIZE; }
action e_chunk_ext   { err = IOX_HTTP_E_BAD_CHUNK_EXT; }
action e_chunk_data  { err = IOX_HTTP_E_BAD_CHUNK_DATA; }
action e_trailer     { err = IOX_HTTP_E_BAD_TRAILER; }

include http11_chunked "http11_request.rl";

main     := chunk_line;
data_end := chunk_data_crlf;
trailers := trailer_section;
write data;
}%%

/* -------------------------------------------------------------- helpers */

static const struct {
    int value, status;
    const char *name, *reason;
} result_table[] = {
#define IOX_HTTP_X_ROW(n, v, s, r) {v, s, "E_" #n, r},
    IOX_HTTP_ERRORS(IOX_HTTP_X_ROW)
#undef IOX_HTTP_X_ROW
};

int iox_http_error_status(int err)
{
    if (err < 0 && -err <= (int)(sizeof result_table / sizeof result_table[0]))
        return result_table[-err - 1].status;
    return 400;
}

const char *iox_http_result_name(int res)
{
    switch (res) {
    case IOX_HTTP_NEED_MORE: return "NEED_MORE";
    case IOX_HTTP_HEAD_DONE: return "HEAD_DONE";
    case IOX_HTTP_BODY_DATA: return "BODY_DATA";
    case IOX_HTTP_BODY_DONE: return "BODY_DONE";
    }
    if (res < 0 && -res <= (int)(sizeof result_table / sizeof result_table[0]))
        return result_table[-res - 1].name;
    return "UNKNOWN";
}

const char *iox_http_error_reason(int err)
{
    if (err < 0 && -err <= (int)(sizeof result_table / sizeof result_table[0]))
        return result_table[-err - 1].reason;
    return iox_http_result_name(err);
}

/* Forget the current request; keep the limits. Only the fields whose zero
 * means "not seen" are cleared (the others are always written before they
 * are read), and they sit in one block of the struct, target_start through
 * body_total: a few wide stores. A whole-struct memset here cost a third of
 * a minimal GET. */
static inline void reset_request(struct iox_http_parser *hp)
{
    hp->cs = iox_http_head_start;
    hp->pos = 0;
    memset(&hp->target_start, 0,
           offsetof(struct iox_http_parser, body_total) + sizeof hp->body_total -
               offsetof(struct iox_http_parser, target_start));
    _Static_assert(PH_HEAD == 0 && IOX_HTTP_ORIGIN_FORM == 0, "reset_request zeroes these");
}

void iox_http_parser_init(struct iox_http_parser *hp, const struct iox_http_limits *lim)
{
    memset(hp, 0, sizeof *hp);  /* also the fields reset_request() leaves */
    if (lim) hp->lim = *lim;
    if (!hp->lim.max_head)    hp->lim.max_head = IOX_HTTP_DEFAULT_MAX_HEAD;
    if (!hp->lim.max_headers) hp->lim.max_headers = IOX_HTTP_DEFAULT_MAX_HEADERS;
    if (!hp->lim.max_target)  hp->lim.max_target = IOX_HTTP_DEFAULT_MAX_TARGET;
    if (!hp->lim.max_body)    hp->lim.max_body = IOX_HTTP_DEFAULT_MAX_BODY;
    if (!hp->lim.max_method)  hp->lim.max_method = IOX_HTTP_DEFAULT_MAX_METHOD;
    reset_request(hp);
}

int iox_http_parser_mid_request(const struct iox_http_parser *hp)
{
    return hp->phase != PH_HEAD || hp->pos != 0;
}

/* method_id is cleared with the request (reset_request) and set by
 * end_method (or the "GET " shortcut), so during a head it is the method
 * once known; a refused head leaves it as it was. */
int iox_http_parser_method(const struct iox_http_parser *hp)
{
    return hp->phase == PH_HEAD ? hp->method_id : IOX_HTTP_OTHER;
}

/* The machine failed at *at (the byte it could not take). Name the failure:
 * see the comment at the top of this file. */
static int refine_error(int err, const unsigned char *b, const unsigned char *at,
                        int in_headers)
{
    if (*at == '\n') return IOX_HTTP_E_BARE_LF;
    if (at > b && at[-1] == '\r') return IOX_HTTP_E_BARE_LF;
    if (in_headers && (*at == ' ' || *at == '\t') && at > b && at[-1] == '\n')
        return IOX_HTTP_E_OBS_FOLD;
    return err ? err : IOX_HTTP_E_BAD_REQUEST_LINE;
}

static uint8_t method_id(const char *m, uint32_t n)
{
    switch (n) {
    case 3:
        if (!memcmp(m, "GET", 3)) return IOX_HTTP_GET;
        if (!memcmp(m, "PUT", 3)) return IOX_HTTP_PUT;
        break;
    case 4:
        if (!memcmp(m, "POST", 4)) return IOX_HTTP_POST;
        if (!memcmp(m, "HEAD", 4)) return IOX_HTTP_HEAD;
        break;
    case 5:
        if (!memcmp(m, "PATCH", 5)) return IOX_HTTP_PATCH;
        if (!memcmp(m, "TRACE", 5)) return IOX_HTTP_TRACE;
        break;
    case 6:
        if (!memcmp(m, "DELETE", 6)) return IOX_HTTP_DELETE;
        break;
    case 7:
        if (!memcmp(m, "OPTIONS", 7)) return IOX_HTTP_OPTIONS;
        if (!memcmp(m, "CONNECT", 7)) return IOX_HTTP_CONNECT;
        break;
    }
    return IOX_HTTP_OTHER;
}

/* The head is complete: apply the message-level rules (RFC 9112 §6.3,
 * RFC 9110 §7.2) and fill *req. The general case. */
static __attribute__((noinline)) int finish_head_slow(struct iox_http_parser *hp,
                                                      const char *buf, uint32_t head_len,
                                                      struct iox_http_request *req)
{
    uint16_t f = hp->flags;
    uint8_t mid = hp->method_id;

    if (hp->version_minor >= 1 && !(f & IOX__HF_HOST)) return IOX_HTTP_E_HOST_MISSING;
    if (f & IOX__HF_TE) {
        if (f & IOX__HF_CL) return IOX_HTTP_E_CL_AND_TE;
        if (hp->version_minor == 0) return IOX_HTTP_E_BAD_TRANSFER_ENCODING;
        if (!(f & IOX__HF_TE_LAST)) return IOX_HTTP_E_BAD_TRANSFER_ENCODING;
    }
    if ((hp->target_form == IOX_HTTP_AUTHORITY_FORM) != (mid == IOX_HTTP_CONNECT))
        return IOX_HTTP_E_BAD_TARGET;
    if (hp->target_form == IOX_HTTP_ASTERISK_FORM && mid != IOX_HTTP_OPTIONS)
        return IOX_HTTP_E_BAD_TARGET;
    if ((f & IOX__HF_CL) && hp->cl_value > hp->lim.max_body)
        return IOX_HTTP_E_BODY_TOO_LARGE;
    /* An expectation we cannot meet: 417 (RFC 9110 §10.1.1). A 1.0
     * request's Expect is ignored (it MUST be, ibid.). */
    if ((f & IOX__HF_EXPECT_X) && hp->version_minor >= 1) return IOX_HTTP_E_EXPECTATION;

    uint32_t path_end = hp->query_start ? hp->query_start - 1 : hp->target_end;
    req->method = buf + hp->start;
    req->method_len = hp->method_end - hp->start;
    req->target = buf + hp->target_start;
    req->target_len = hp->target_end - hp->target_start;
    if (hp->target_form == IOX_HTTP_ORIGIN_FORM || hp->target_form == IOX_HTTP_ABSOLUTE_FORM) {
        req->path = buf + (hp->path_start ? hp->path_start : hp->target_end);
        req->path_len = hp->path_start ? path_end - hp->path_start : 0;
    } else {
        req->path = req->target;
        req->path_len = req->target_len;
    }
    if (hp->query_start) {
        req->query = buf + hp->query_start;
        req->query_len = hp->target_end - hp->query_start;
    } else {
        req->query = buf + hp->target_end;
        req->query_len = 0;
    }
    req->headers = buf + hp->headers_start;
    req->headers_len = head_len - 2 - hp->headers_start;
    req->host = buf + hp->host_start;
    req->host_len = hp->host_end - hp->host_start;
    req->head_len = head_len;
    req->header_count = hp->header_count;
    req->method_id = mid;
    req->target_form = hp->target_form;
    req->version_minor = hp->version_minor;
    /* CONNECT is the connection's last request: what follows its head may
     * be the tunnel's bytes (RFC 9110 §9.3.6), never to be read as
     * requests, and nothing here tunnels. */
    req->keep_alive = mid == IOX_HTTP_CONNECT ? 0
                    : req->version_minor ? !(f & IOX__HF_CLOSE)
                                         : (f & IOX__HF_KEEP) && !(f & IOX__HF_CLOSE);
    req->expect_continue = (f & IOX__HF_EXPECT) != 0;
    req->content_length = 0;
    if (f & IOX__HF_TE) {
        req->body_kind = IOX_HTTP_BODY_CHUNKED;
        reset_request(hp);
        hp->phase = PH_CHUNK_FRAME;
        hp->cs = iox_http_chunked_start;
    } else if ((f & IOX__HF_CL) && hp->cl_value > 0) {
        req->body_kind = IOX_HTTP_BODY_LENGTH;
        req->content_length = hp->cl_value;
        reset_request(hp);
        hp->phase = PH_LENGTH;
        hp->body_left = req->content_length;
    } else {
        req->body_kind = IOX_HTTP_BODY_NONE;
        reset_request(hp);
    }
    return IOX_HTTP_HEAD_DONE;
}

/* The common case, decided by one test of the flags: Host present, no
 * Content-Length, no Transfer-Encoding, origin-form target, method not
 * CONNECT. Then none of the message-level rules can fail (Host is there,
 * there is no framing to check, origin-form is right for every method but
 * CONNECT), the path is there, and there is no body. Same result as
 * finish_head_slow() for these requests, with fewer branches. */
static inline int finish_head(struct iox_http_parser *hp, const char *buf, uint32_t head_len,
                              struct iox_http_request *req)
{
    uint16_t f = hp->flags;
    if ((f & (IOX__HF_HOST | IOX__HF_TE | IOX__HF_CL | IOX__HF_ODD | IOX__HF_EXPECT_X)) != IOX__HF_HOST)
        return finish_head_slow(hp, buf, head_len, req);
    uint32_t ts = hp->target_start, te = hp->target_end, qs = hp->query_start;
    uint32_t path_end = qs ? qs - 1 : te;
    req->method = buf + hp->start;
    req->method_len = hp->method_end - hp->start;
    req->target = buf + ts;
    req->target_len = te - ts;
    req->path = buf + hp->path_start;
    req->path_len = path_end - hp->path_start;
    req->query = buf + (qs ? qs : te);
    req->query_len = qs ? te - qs : 0;
    req->headers = buf + hp->headers_start;
    req->headers_len = head_len - 2 - hp->headers_start;
    req->host = buf + hp->host_start;
    req->host_len = hp->host_end - hp->host_start;
    req->head_len = head_len;
    req->header_count = hp->header_count;
    req->method_id = hp->method_id;
    req->target_form = IOX_HTTP_ORIGIN_FORM;
    req->version_minor = hp->version_minor;
    req->keep_alive = hp->version_minor ? !(f & IOX__HF_CLOSE)
                                        : (f & IOX__HF_KEEP) && !(f & IOX__HF_CLOSE);
    req->expect_continue = (f & IOX__HF_EXPECT) != 0;
    req->body_kind = IOX_HTTP_BODY_NONE;
    req->content_length = 0;
    reset_request(hp);
    return IOX_HTTP_HEAD_DONE;
}

int iox_http_parse_head(struct iox_http_parser *hp, const char *buf, size_t len,
                        struct iox_http_request *req)
{
    const unsigned char *b = (const unsigned char *)buf;
    const unsigned char *p = b + hp->pos;
    /* Never look past max_head: a huge header block is refused after
     * max_head bytes whatever the size of the reads. */
    size_t lim = len < hp->lim.max_head ? len : hp->lim.max_head;
    const unsigned char *pe = b + lim;
    const unsigned char *eof = NULL;
    int cs = hp->cs, err = 0, done = 0;

    if (hp->phase != PH_HEAD) return IOX_HTTP_E_BAD_REQUEST_LINE;
    (void)eof;
    /* A request that starts with "GET ": do what the DFA would do over those
     * four bytes (start_method, end_method) and enter the target machine.
     * Not under a max_method below 3, where the DFA refuses "GET" (else the
     * outcome would depend on whether "GET " arrived in one read: found by
     * tests/fuzz/fuzz_http_parser). */
    if (cs == iox_http_head_start && pe - p >= 4 && hp->lim.max_method >= 3) {
        uint32_t w;
        memcpy(&w, p, 4);
        if (w == 0x20544547u /* "GET " */) {
            hp->start = (uint32_t)(p - b);  /* not 0 after skipped empty lines */
            hp->method_end = hp->start + 3;
            hp->method_id = IOX_HTTP_GET;
            p += 4;
            cs = iox_http_head_en_target;
        }
    }
    %% machine iox_http_head;
    %% write exec;

    if (done) return finish_head(hp, buf, (uint32_t)(p - b), req);
    hp->cs = cs;
    hp->pos = (uint32_t)(p - b);
    if (cs == iox_http_head_error) {
        /* A bad byte inside a request-target already past its limit: the
         * limit wins, as it does when a read ends before that byte (the
         * NEED_MORE check below). Else the outcome would depend on where
         * the reads were cut (found by tests/fuzz/fuzz_http_parser). */
        if (hp->target_start && !hp->target_end &&
            (size_t)(p - b) - hp->target_start > hp->lim.max_target)
            return IOX_HTTP_E_TARGET_TOO_LONG;
        err = refine_error(err, b, p, hp->headers_start != 0);
        return err;
    }
    if (err) return err;
    /* A request-target still growing past its limit: refuse it now. */
    if (hp->target_start && !hp->target_end &&
        hp->pos - hp->target_start > hp->lim.max_target)
        return IOX_HTTP_E_TARGET_TOO_LONG;
    if (lim >= hp->lim.max_head) return IOX_HTTP_E_HEAD_TOO_LARGE;
    return IOX_HTTP_NEED_MORE;
}

static int parse_body_run(struct iox_http_parser *hp, const char *buf, size_t len,
                          size_t *consumed, const char **data, size_t *data_len)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t used = 0;

    *consumed = 0;
    for (;;) {
        switch (hp->phase) {
        case PH_LENGTH:
        case PH_CHUNK_DATA: {
            size_t n = len - used;
            if (hp->body_left == 0) {
                if (hp->phase == PH_LENGTH) {
                    reset_request(hp);
                    *consumed = used;
                    return IOX_HTTP_BODY_DONE;
                }
                hp->phase = PH_CHUNK_FRAME;
                hp->frame_used = 0;
                continue;
            }
            if (n == 0) { *consumed = used; return IOX_HTTP_NEED_MORE; }
            if (n > hp->body_left) n = (size_t)hp->body_left;
            *data = buf + used;
            *data_len = n;
            hp->body_left -= n;
            *consumed = used + n;
            return IOX_HTTP_BODY_DATA;
        }
        case PH_CHUNK_FRAME: {
            /* Framing between two chunk-data runs (CRLF, chunk-size line,
             * or last-chunk + trailers) is bounded by max_head. */
            const unsigned char *p = b + used;
            size_t room = hp->lim.max_head - hp->frame_used;
            const unsigned char *pe = len - used < room ? b + len : p + room;
            const unsigned char *eof = NULL;
            int cs = hp->cs, err = 0, done = 0;
            (void)eof;
            %% machine iox_http_chunked;
            %% write exec;
            hp->cs = cs;
            hp->frame_used += (uint32_t)(p - (b + used));
            used = (size_t)(p - b);
            *consumed = used;
            if (cs == iox_http_chunked_error) {
                /* The byte before p is in an earlier buffer: refine_error
                 * cannot see it, the flag remembers it. */
                if (p == b && (hp->flags & IOX__HF_PREV_CR)) return IOX_HTTP_E_BARE_LF;
                return refine_error(err, b, p, 0);
            }
            if (err) return err;
            if (done) {
                reset_request(hp);
                return IOX_HTTP_BODY_DONE;
            }
            if (hp->phase == PH_CHUNK_DATA) continue;
            if (hp->frame_used >= hp->lim.max_head) return IOX_HTTP_E_HEAD_TOO_LARGE;
            return IOX_HTTP_NEED_MORE;
        }
        default:
            return IOX_HTTP_E_BAD_REQUEST_LINE;
        }
    }
}

int iox_http_parse_body(struct iox_http_parser *hp, const char *buf, size_t len,
                        size_t *consumed, const char **data, size_t *data_len)
{
    int r = parse_body_run(hp, buf, len, consumed, data, data_len);
    /* A failure right after a CR is a bare CR (refine_error), also when the
     * CR ended the previous buffer: remember it, so the outcome does not
     * depend on where the reads were cut (found by fuzz_http_parser). */
    if (r >= 0 && r != IOX_HTTP_BODY_DONE && *consumed) {
        if (buf[*consumed - 1] == '\r') hp->flags |= IOX__HF_PREV_CR;
        else hp->flags &= (uint16_t)~IOX__HF_PREV_CR;
    }
    return r;
}

/* ------------------------------------------------------- header iteration */

int iox_http_header_next(const struct iox_http_request *req, uint32_t *it,
                         const char **name, uint32_t *name_len,
                         const char **value, uint32_t *value_len)
{
    const char *s, *e, *colon, *v, *ve;
    if (*it >= req->headers_len) return 0;
    s = req->headers + *it;
    e = req->headers + req->headers_len;
    colon = memchr(s, ':', (size_t)(e - s));
    if (!colon) return 0;  /* cannot happen on a validated block */
    ve = memchr(colon, '\r', (size_t)(e - colon));
    if (!ve) return 0;
    *it = (uint32_t)(ve + 2 - req->headers);
    v = colon + 1;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    *name = s;
    *name_len = (uint32_t)(colon - s);
    *value = v;
    *value_len = (uint32_t)(ve - v);
    return 1;
}

int iox_http_header_find(const struct iox_http_request *req, const char *name,
                         const char **value, uint32_t *value_len)
{
    uint32_t it = 0, nl, want = (uint32_t)strlen(name);
    const char *n;
    while (iox_http_header_next(req, &it, &n, &nl, value, value_len))
        if (nl == want && strncasecmp(n, name, want) == 0) return 1;
    return 0;
}
