/* ioxide/http_parser.h — incremental, zero-copy HTTP/1.1 request parser.
 *
 * The grammar is spec/http11_request.rl (RFC 9112 / RFC 9110); the host file
 * runtime/http/http_parser.rl holds the actions, and Ragel turns both into
 * generated/http_parser.c. This header is the whole API.
 *
 * Model
 *  - A request is a head (request line + header fields + empty line) and an
 *    optional body (Content-Length or chunked).
 *  - iox_http_parse_head() is fed the bytes of the *current request* starting
 *    at its first byte. It keeps its place (p->pos) between calls, so a head
 *    split over several reads is scanned once: when it returns NEED_MORE the
 *    caller keeps those bytes (in the connection's carry) and calls again with
 *    the same bytes plus the new ones at the same offsets. Nothing already
 *    scanned is scanned again.
 *  - On HEAD_DONE the request's views (method, target, header block) point
 *    into the buffer passed to that call: the ring buffer itself when the head
 *    lay in one buffer (zero-copy), else the carry. They stay valid as long as
 *    that buffer does. Headers are not copied into an array: the parser keeps
 *    what HTTP semantics need (Content-Length, Transfer-Encoding, Connection,
 *    Host, Expect) and iox_http_header_next() walks the already-validated
 *    header block on demand, so a handler that never reads a header pays
 *    nothing for it.
 *  - iox_http_parse_body() then consumes the body from any split of buffers
 *    and hands out body bytes as views (no copy, no carry). When the body is
 *    complete (or there is none) the parser is ready for the next request.
 *
 * Policy (documented in docs/http.md):
 *  - Line endings: CRLF only; a bare LF anywhere in the head or chunk framing
 *    is IOX_HTTP_E_BARE_LF (400). Bare CR likewise.
 *  - obs-fold (a header line starting with SP/HTAB) is rejected (400).
 *  - Whitespace between field name and colon is rejected (400).
 *  - Content-Length: 1*DIGIT only; overflow past 2^63-1 rejected; repeated
 *    fields (or a comma list) must all carry the same value, else 400.
 *  - Transfer-Encoding: the final coding must be "chunked" and chunked may
 *    appear once; anything else → 400. Content-Length with Transfer-Encoding
 *    → 400. Transfer-Encoding in an HTTP/1.0 request → 400.
 *  - HTTP/1.1 without Host, or with more than one Host, or a Host with an
 *    empty host (any version) → 400.
 *  - HTTP/1.x with x > 1 is treated as 1.1; any other major version → 505.
 *  - A method token longer than max_method (32) → 501, at its first byte
 *    over the limit (not 431 once the whole head is too large).
 *  - Expect: only 100-continue; any other expectation in an HTTP/1.1
 *    request → 417 (IOX_HTTP_E_EXPECTATION); ignored in HTTP/1.0.
 *  - Keep-alive: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
 *    "Connection: keep-alive"; never after CONNECT (no tunnels: the bytes
 *    after its head are not requests).
 *
 * Error convention: functions return an enum iox_http_result; errors are
 * negative, stable, and mapped to a status by iox_http_error_status().
 */
#ifndef IOX_HTTP_PARSER_H
#define IOX_HTTP_PARSER_H
#include <stddef.h>
#include <stdint.h>

/* Append-only list of outcomes: X(name, value, status, reason). */
#define IOX_HTTP_ERRORS(X)                                                     \
    X(BAD_METHOD,        -1, 400, "invalid method token")                      \
    X(BAD_TARGET,        -2, 400, "invalid request-target")                    \
    X(BAD_VERSION,       -3, 400, "invalid HTTP-version")                      \
    X(VERSION_UNSUPPORTED, -4, 505, "HTTP major version not supported")        \
    X(BAD_REQUEST_LINE,  -5, 400, "malformed request line")                    \
    X(BAD_HEADER_NAME,   -6, 400, "invalid header field name")                 \
    X(BAD_HEADER_VALUE,  -7, 400, "invalid header field value")                \
    X(OBS_FOLD,          -8, 400, "obsolete line folding")                     \
    X(BARE_LF,           -9, 400, "bare LF or CR: lines must end in CRLF")     \
    X(BAD_CONTENT_LENGTH, -10, 400, "invalid Content-Length")                  \
    X(CONTENT_LENGTH_CONFLICT, -11, 400, "conflicting Content-Length values")  \
    X(CONTENT_LENGTH_OVERFLOW, -12, 400, "Content-Length too large")           \
    X(BAD_TRANSFER_ENCODING, -13, 400, "unsupported Transfer-Encoding")        \
    X(CL_AND_TE,         -14, 400, "Content-Length with Transfer-Encoding")    \
    X(HOST_MISSING,      -15, 400, "HTTP/1.1 request without Host")            \
    X(HOST_DUPLICATE,    -16, 400, "more than one Host field")                 \
    X(HEAD_TOO_LARGE,    -17, 431, "request header block too large")           \
    X(TOO_MANY_HEADERS,  -18, 431, "too many header fields")                   \
    X(TARGET_TOO_LONG,   -19, 414, "request-target too long")                  \
    X(BAD_CHUNK_SIZE,    -20, 400, "invalid chunk size")                       \
    X(CHUNK_SIZE_OVERFLOW, -21, 400, "chunk size too large")                   \
    X(BAD_CHUNK_EXT,     -22, 400, "invalid chunk extension")                  \
    X(BAD_CHUNK_DATA,    -23, 400, "chunk data not followed by CRLF")          \
    X(BAD_TRAILER,       -24, 400, "invalid trailer field")                    \
    X(BODY_TOO_LARGE,    -25, 413, "request body too large")                   \
    X(BAD_HOST,          -26, 400, "invalid Host field value")             \
    X(METHOD_TOO_LONG,   -27, 501, "method longer than any implemented")  \
    X(EXPECTATION,       -28, 417, "unsupported expectation")

enum iox_http_result {
    IOX_HTTP_NEED_MORE = 0,  /* all input consumed, call again with more */
    IOX_HTTP_HEAD_DONE = 1,  /* parse_head: *req is filled */
    IOX_HTTP_BODY_DATA = 2,  /* parse_body: *data, *data_len: body bytes */
    IOX_HTTP_BODY_DONE = 3,  /* parse_body: message complete */
#define IOX_HTTP_X_ENUM(n, v, s, r) IOX_HTTP_E_##n = v,
    IOX_HTTP_ERRORS(IOX_HTTP_X_ENUM)
#undef IOX_HTTP_X_ENUM
};

enum iox_http_method {
    IOX_HTTP_OTHER = 0, IOX_HTTP_GET, IOX_HTTP_HEAD, IOX_HTTP_POST, IOX_HTTP_PUT,
    IOX_HTTP_DELETE, IOX_HTTP_OPTIONS, IOX_HTTP_PATCH, IOX_HTTP_CONNECT,
    IOX_HTTP_TRACE,
};

enum iox_http_target_form {
    IOX_HTTP_ORIGIN_FORM = 0,   /* /path?query */
    IOX_HTTP_ABSOLUTE_FORM,     /* http://host/path */
    IOX_HTTP_AUTHORITY_FORM,    /* host:port (CONNECT only) */
    IOX_HTTP_ASTERISK_FORM,     /* * (OPTIONS only) */
};

enum iox_http_body_kind {
    IOX_HTTP_BODY_NONE = 0, IOX_HTTP_BODY_LENGTH, IOX_HTTP_BODY_CHUNKED,
};

/* Limits live with the grammar; 0 in a field means the default. */
struct iox_http_limits {
    uint32_t max_head;      /* bytes of request line + headers (65536) → 431 */
    uint32_t max_headers;   /* header field lines (100) → 431 */
    uint32_t max_target;    /* request-target bytes (8192) → 414 */
    uint64_t max_body;      /* body bytes, CL or decoded chunked (1 GiB) → 413 */
    uint32_t max_method;    /* method token bytes (32) → 501 */
};
#define IOX_HTTP_DEFAULT_MAX_HEAD    65536u
#define IOX_HTTP_DEFAULT_MAX_HEADERS 100u
#define IOX_HTTP_DEFAULT_MAX_TARGET  8192u
#define IOX_HTTP_DEFAULT_MAX_BODY    (1ull << 30)
/* Longer than any registered method (the longest in the IANA registry,
 * UPDATEREDIRECTREF, has 17 bytes): a server receiving a method longer than
 * any it implements SHOULD answer 501 (RFC 9112 §3). */
#define IOX_HTTP_DEFAULT_MAX_METHOD  32u

struct iox_http_request {
    const char *method;  uint32_t method_len;
    const char *target;  uint32_t target_len;
    const char *path;    uint32_t path_len;    /* target up to '?' (origin-form) */
    const char *query;   uint32_t query_len;   /* after '?', without it; len 0 if none */
    const char *headers; uint32_t headers_len; /* the header block: field lines with CRLFs */
    const char *host;    uint32_t host_len;    /* Host value (trimmed), len 0 if absent */
    uint32_t head_len;        /* bytes of the head including the final CRLF CRLF */
    uint16_t header_count;
    uint8_t  method_id;       /* enum iox_http_method */
    uint8_t  target_form;     /* enum iox_http_target_form */
    uint8_t  version_minor;   /* 0 or 1 */
    uint8_t  keep_alive;      /* 1: connection persists after this response */
    uint8_t  body_kind;       /* enum iox_http_body_kind */
    uint8_t  expect_continue; /* "Expect: 100-continue" present */
    uint64_t content_length;  /* when body_kind == IOX_HTTP_BODY_LENGTH */
};

/* Opaque-by-convention parser state; small (no per-header storage) so one
 * lives in every connection. Fields are internal: every position is an
 * OFFSET from the first byte of the current request, never a pointer, so the
 * state survives the caller moving the bytes (ring buffer -> carry). */
struct iox_http_parser {
    int cs;                 /* Ragel state (head machine or chunked machine) */
    uint32_t pos;           /* head: offset where scanning resumes */
    /* Per request, cleared between requests (0 = not seen): one block, so
     * the reset is a few wide stores. */
    uint32_t target_start, target_end;
    uint32_t path_start;    /* 0: no path (absolute-form without one) */
    uint32_t query_start;   /* offset after the '?'; 0: no query */
    uint32_t headers_start, host_start, host_end;
    uint32_t frame_used;    /* chunked: framing bytes since the last chunk data */
    uint16_t header_count;
    uint16_t flags;         /* internal bit set (IOX__HF_* in http_parser.rl) */
    uint8_t  phase;         /* head, body by length, chunk framing, chunk data */
    uint8_t  target_form, version_minor, method_id;
    uint64_t body_left;     /* Content-Length left, or bytes left in the current chunk */
    uint64_t body_total;    /* decoded body bytes so far (for max_body) */
    /* Per request, always written before they are read. */
    uint32_t start;         /* offset of the method (after skipped empty lines) */
    uint32_t method_end;
    uint64_t cl_value, cl_current;
    struct iox_http_limits lim;
};

/* Set up (or fully reset) a parser. lim may be NULL for the defaults. */
void iox_http_parser_init(struct iox_http_parser *p, const struct iox_http_limits *lim);

/* Scan the head of the current request. buf points at the request's first
 * byte, len bytes are available; bytes [0, p->pos) must be the same bytes
 * passed before. Returns:
 *   IOX_HTTP_HEAD_DONE  *req filled, views into buf; req->head_len bytes used.
 *                       Then call iox_http_parse_body() unless
 *                       req->body_kind == IOX_HTTP_BODY_NONE (the parser is
 *                       then already reset for the next request).
 *   IOX_HTTP_NEED_MORE  no complete head in [0, len): keep the bytes.
 *   IOX_HTTP_E_*        the request is malformed; respond with
 *                       iox_http_error_status() and close the connection.
 * Empty lines before a request line (RFC 9112 §2.2) are skipped and counted
 * in head_len. */
int iox_http_parse_head(struct iox_http_parser *p, const char *buf, size_t len,
                        struct iox_http_request *req);

/* Consume body bytes after HEAD_DONE. buf/len is the input from its current
 * position (no carry needed: framing state is kept in the parser).
 * *consumed is set to the bytes of buf this call used (always set). Returns:
 *   IOX_HTTP_BODY_DATA  *data, *data_len: body bytes (a view into buf).
 *   IOX_HTTP_BODY_DONE  message complete (trailers consumed); the parser is
 *                       reset for the next request, whose bytes start at
 *                       buf + *consumed.
 *   IOX_HTTP_NEED_MORE  all of buf used, no body bytes in it (framing only).
 *   IOX_HTTP_E_*        bad chunk framing / body too large; 4xx and close. */
int iox_http_parse_body(struct iox_http_parser *p, const char *buf, size_t len,
                        size_t *consumed, const char **data, size_t *data_len);

/* 1 while a head is partly scanned or a body is in progress (a connection
 * closed now would cut a request), 0 between requests. */
int iox_http_parser_mid_request(const struct iox_http_parser *p);

/* The method (enum iox_http_method) of the request whose head is being
 * scanned, known as soon as its method token has ended; IOX_HTTP_OTHER
 * before that and while a body is read. It stays set when
 * iox_http_parse_head() refuses the head, so the refusal can be answered
 * as that method requires (no content for HEAD, RFC 9110 §9.3.2). */
int iox_http_parser_method(const struct iox_http_parser *p);

/* Header iteration over req->headers. *it starts at 0. Returns 1 and fills
 * name/value (value trimmed of OWS) or 0 at the end. */
int iox_http_header_next(const struct iox_http_request *req, uint32_t *it,
                         const char **name, uint32_t *name_len,
                         const char **value, uint32_t *value_len);
/* First header whose name equals `name` (ASCII case-insensitive); 1 if found. */
int iox_http_header_find(const struct iox_http_request *req, const char *name,
                         const char **value, uint32_t *value_len);

/* Status code for an IOX_HTTP_E_* value (400, 413, 414, 417, 431, 501, 505). */
int iox_http_error_status(int err);
/* Stable name ("E_HEAD_TOO_LARGE") and human reason for any result value. */
const char *iox_http_result_name(int res);
const char *iox_http_error_reason(int err);

#endif
