/* resp_parser.h — RESP2 request parser (multibulk and inline), generated
 * by Ragel from spec/resp_request.rl with its host src/resp_parser.rl.
 *
 * Restartable, not incremental: resp_parse() is given the bytes from the
 * start of a request (the stream layer carries a cut request and offers it
 * again, whole, in front of the next bytes) and either finds one whole
 * request or says how it stopped. A bulk's data is stepped over, never
 * scanned, so offering a large value again as it arrives costs a few
 * bytes of header per call. */
#ifndef RESP_PARSER_H
#define RESP_PARSER_H
#include <stddef.h>
#include <stdint.h>

struct resp_arg { const char *p; size_t len; };

/* Scratch of one reactor: what one request parses into. Arguments point
 * into the bytes given to resp_parse (multibulk) or into ibuf (inline, which
 * is unescaped), valid until the next resp_parse on this parser. */
struct resp_parser {
    uint64_t max_bulk;          /* largest bulk length ($N) accepted */
    uint32_t max_args;          /* largest argument count accepted */
    struct resp_arg *argv;      /* grows (cold) up to max_args */
    uint32_t argc, cap;
    char *ibuf;                 /* RESP_INLINE_MAX bytes: inline arguments */
    size_t ilen, imark;
    char err[160];              /* RESP_P_ERROR: the error line, without "-" and CRLF */
    /* Ragel and the number hooks. */
    int cs, phase, neg, ovf, ndig;
    uint64_t acc;
    int64_t left;
    uint8_t done, more;
};

/* Longest inline request line, and longest count line (redis-server's
 * PROTO_INLINE_MAX_SIZE). */
#define RESP_INLINE_MAX (64u * 1024u)

enum resp_parse_result {
    RESP_P_REQUEST = 0,   /* one request in argv[0..argc) (argc >= 1); *used bytes */
    RESP_P_EMPTY,         /* *used bytes held no command (*0, *-1, a blank line) */
    RESP_P_MORE,          /* the request is not whole yet: offer it again with more */
    RESP_P_ERROR,         /* malformed: err holds "Protocol error: ..." */
};

/* 0, or -1 (out of memory). */
int resp_parser_init(struct resp_parser *ps, uint64_t max_bulk, uint32_t max_args);
void resp_parser_fini(struct resp_parser *ps);
/* Parse one request from the start of p[0..n), n > 0. */
enum resp_parse_result resp_parse(struct resp_parser *ps, const char *p, size_t n, size_t *used);

/* redis-server's string2ll: 1 and *out when s[0..len) is exactly a decimal
 * long long ("0", or '-'? [1-9][0-9]*, no blank, no '+'), else 0. */
int resp_str2ll(const char *s, size_t len, long long *out);

#endif
