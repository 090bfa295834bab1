/* http_oracle.h — an HTTP/1.1 response model written apart from the
 * runtime's response writer, for the simulations (issue 15 §3).
 *
 * Given the bytes a client sent and the bytes it received, the oracle splits
 * the requests itself (request line, headers, Content-Length or chunked
 * bodies), parses the responses strictly (status line with the RFC 9110
 * reason phrase, header syntax, Date, framing by Content-Length, chunked or
 * close, no content for HEAD/1xx/204/304, Connection: close honoured and
 * last) and pairs them with the requests in order, asking the test what each
 * request should get. It shares no code with runtime/http: a wrong
 * Content-Length, a body on HEAD, a missing Date or a reordered answer is
 * caught even when the server agrees with itself at every split point. */
#ifndef IOX_HTTP_ORACLE_H
#define IOX_HTTP_ORACLE_H
#include <stddef.h>

/* One request as the oracle read it. */
struct oracle_req {
    unsigned index;          /* 0-based position in the stream */
    char method[16];
    char target[256];
    int minor;               /* HTTP/1.<minor> */
    int keep_alive;          /* the client allows another request after it */
    int malformed;           /* the oracle could not read it: expect 400 and close */
    const char *body;        /* its body, de-chunked into the oracle's scratch */
    size_t body_len;
};

/* What a request should get: status, and the body unless body_any. */
struct oracle_expect {
    int status;
    const char *body;
    size_t body_len;
    int body_any;            /* any body (the test does not know it) */
};

/* Fill *out for rq; return 0, or -1 when any answer is acceptable (skip). */
typedef int (*oracle_expect_fn)(const struct oracle_req *rq, struct oracle_expect *out, void *arg);

enum {
    /* The exchange may have ended early (reset, timeout, shutdown, a send
     * error): fewer answers than requests, and a cut last answer, are fine;
     * what did arrive must still be right. */
    ORACLE_PARTIAL = 1,
};

/* Check resp (what the client received) against req (what it sent).
 * Returns the number of complete answers checked (≥ 0), or -1 with the
 * first violation in why ("answer 3 (GET /x): ..."). expect may be NULL
 * (framing and order only). */
int http_oracle_check(const char *req, size_t req_len, const char *resp, size_t resp_len,
                      oracle_expect_fn expect, void *arg, unsigned flags, char *why, size_t why_len);

/* The RFC 9110 §15 reason phrase of a registered status, or NULL. The
 * oracle's own table, typed from the RFC, not from the runtime. */
const char *oracle_reason(int status);
#endif
