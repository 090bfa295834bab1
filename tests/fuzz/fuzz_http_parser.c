/* fuzz_http_parser.c — libFuzzer target for the HTTP/1.1 request parser.
 *
 * Input layout (HDR bytes, then the stream):
 *   [0]      limits: low 2 bits pick defaults / small / input-derived / huge
 *            max_body; the other bits scale the derived limits
 *   [1..8]   four split points (big-endian 16-bit each, mod the stream length)
 *   [9]      chunk size for the chunked replay
 *   [10..]   the byte stream, parsed as pipelined requests (head, body, next
 *            head ...) until it ends or the parser refuses it
 *
 * Each stream is replayed three ways: in one piece, cut at the split points,
 * and in fixed-size chunks. Every call gets its bytes in an exact-size
 * malloc'ed copy (ASan catches a one-byte over-read), the way the connection
 * hands the parser a ring buffer or its carry. The three event logs must be
 * identical (the parser's outcome cannot depend on how bytes arrived), and
 * every view the parser returns must lie inside the buffer of that call.
 * Any difference is an abort() with both logs printed. */
#include "fuzz_common.h"
#include <ioxide/http_parser.h>

#define HDR 10

static void limits_from(uint8_t b, struct iox_http_limits *lim, const struct iox_http_limits **use)
{
    memset(lim, 0, sizeof *lim);
    *use = lim;
    switch (b & 3) {
    case 0: *use = NULL; break;
    case 1:
        lim->max_head = 128; lim->max_headers = 4; lim->max_target = 32; lim->max_body = 64;
        break;
    case 2:
        lim->max_head = 16u + (b >> 2);
        lim->max_headers = 1u + (b >> 5);
        lim->max_target = 1u + (b >> 3);
        lim->max_body = (uint64_t)(b >> 2);
        lim->max_method = 1u + (b >> 4);
        break;
    case 3:
        lim->max_body = UINT64_MAX;   /* overflow arithmetic in body accounting */
        break;
    }
}

static void log_head(struct fz_log *log, const struct iox_http_request *r, const char *buf, size_t len)
{
    FUZZ_CHECK(r->head_len > 0 && r->head_len <= len, "head_len %u of %zu", r->head_len, len);
    FUZZ_CHECK(fz_inside(r->method, r->method_len, buf, r->head_len));
    FUZZ_CHECK(fz_inside(r->target, r->target_len, buf, r->head_len));
    FUZZ_CHECK(fz_inside(r->path, r->path_len, buf, r->head_len));
    FUZZ_CHECK(fz_inside(r->query, r->query_len, buf, r->head_len));
    FUZZ_CHECK(fz_inside(r->headers, r->headers_len, buf, r->head_len));
    FUZZ_CHECK(fz_inside(r->host, r->host_len, buf, r->head_len));
    FUZZ_CHECK(r->method_len > 0 && r->target_len > 0);
    FUZZ_CHECK(r->body_kind <= IOX_HTTP_BODY_CHUNKED && r->target_form <= IOX_HTTP_ASTERISK_FORM);
    FUZZ_CHECK(r->version_minor <= 1 && r->keep_alive <= 1);
    fz_put(log, "HEAD ", 5);
    fz_escape(log, r->method, r->method_len);
    fz_put(log, " ", 1);
    fz_escape(log, r->target, r->target_len);
    fz_put(log, " path=", 6);
    fz_escape(log, r->path, r->path_len);
    fz_put(log, " query=", 7);
    fz_escape(log, r->query, r->query_len);
    fz_put(log, " host=", 6);
    fz_escape(log, r->host, r->host_len);
    fz_printf(log, " v=1.%u ka=%u body=%u cl=%llu form=%u hdrs=%u expect=%u mid=%u head_len=%u\n",
              r->version_minor, r->keep_alive, r->body_kind,
              (unsigned long long)r->content_length, r->target_form, r->header_count,
              r->expect_continue, r->method_id, r->head_len);
    /* The header block walks to exactly header_count fields, every view
     * inside the block; a lookup agrees with the walk. */
    uint32_t it = 0, nl, vl, count = 0;
    const char *n, *v;
    while (iox_http_header_next(r, &it, &n, &nl, &v, &vl)) {
        FUZZ_CHECK(nl > 0 && fz_inside(n, nl, r->headers, r->headers_len));
        FUZZ_CHECK(fz_inside(v, vl, r->headers, r->headers_len));
        FUZZ_CHECK(count < 65535);
        fz_put(log, "  ", 2);
        fz_escape(log, n, nl);
        fz_put(log, ": ", 2);
        fz_escape(log, v, vl);
        fz_put(log, "\n", 1);
        count++;
    }
    FUZZ_CHECK(count == r->header_count && it == r->headers_len,
               "walk %u/%u fields, %u/%u bytes", count, r->header_count, it, r->headers_len);
    if (r->host_len) {
        const char *hv;
        uint32_t hl;
        FUZZ_CHECK(iox_http_header_find(r, "host", &hv, &hl) == 1);
    }
}

/* Feed stream[0, n) with the receive boundaries cuts[0..ncut) (sorted, each
 * in (0, n)); the log records every outcome. */
static void replay(const char *in, size_t n, const size_t *cuts, size_t ncut,
                   const struct iox_http_limits *lim, struct fz_log *log)
{
    struct iox_http_parser hp;
    struct iox_http_request req;
    struct fz_log body = {0};
    size_t recv_end = ncut ? cuts[0] : n, next_cut = 1;
    size_t req_start = 0, cur = 0;
    int in_body = 0;

    iox_http_parser_init(&hp, lim);
    log->n = 0;
    for (unsigned iter = 0;; iter++) {
        FUZZ_CHECK(iter < 4 * n + 64, "no progress");
        int r;
        if (!in_body) {
            if (req_start == n) break;
            size_t L = recv_end - req_start;
            char *bp = fz_dup(in + req_start, L);
            memset(&req, 0xa5, sizeof req);
            r = iox_http_parse_head(&hp, bp, L, &req);
            if (r == IOX_HTTP_HEAD_DONE) {
                log_head(log, &req, bp, L);
                req_start += req.head_len;
                FUZZ_CHECK(iox_http_parser_mid_request(&hp) == (req.body_kind != IOX_HTTP_BODY_NONE));
                if (req.body_kind != IOX_HTTP_BODY_NONE) {
                    in_body = 1;
                    cur = req_start;
                    body.n = 0;
                }
                free(bp);
                continue;
            }
            free(bp);
        } else {
            size_t L = recv_end - cur, used = (size_t)-1, dl = 0;
            const char *d = NULL;
            char *bp = fz_dup(in + cur, L);
            r = iox_http_parse_body(&hp, bp, L, &used, &d, &dl);
            FUZZ_CHECK(used <= L, "consumed %zu of %zu", used, L);
            cur += used;
            if (r == IOX_HTTP_BODY_DATA) {
                FUZZ_CHECK(dl > 0 && fz_inside(d, dl, bp, used), "data view outside the bytes used");
                fz_put(&body, d, dl);
                free(bp);
                continue;
            }
            free(bp);
            if (r == IOX_HTTP_BODY_DONE) {
                fz_printf(log, "BODY %zu ", body.n);
                fz_escape(log, body.s ? body.s : "", body.n);
                fz_put(log, "\n", 1);
                FUZZ_CHECK(!iox_http_parser_mid_request(&hp));
                in_body = 0;
                req_start = cur;
                continue;
            }
            if (r == IOX_HTTP_NEED_MORE) FUZZ_CHECK(used == L, "NEED_MORE left %zu bytes", L - used);
        }
        if (r == IOX_HTTP_NEED_MORE) {
            if (recv_end == n) { fz_put(log, "NEED_MORE\n", 10); break; }
            recv_end = next_cut < ncut ? cuts[next_cut] : n;
            next_cut++;
            continue;
        }
        FUZZ_CHECK(r < 0, "unexpected result %d", r);
        int st = iox_http_error_status(r);
        FUZZ_CHECK(st == 400 || st == 413 || st == 414 || st == 417 || st == 431 || st == 501 || st == 505, "status %d", st);
        FUZZ_CHECK(iox_http_result_name(r) && iox_http_error_reason(r));
        /* The method a refused head had (its answer has no content for
         * HEAD) must not depend on the cuts either. */
        int mid = iox_http_parser_method(&hp);
        FUZZ_CHECK(mid >= IOX_HTTP_OTHER && mid <= IOX_HTTP_TRACE, "method %d", mid);
        if (in_body) FUZZ_CHECK(mid == IOX_HTTP_OTHER, "method %d while reading a body", mid);
        fz_printf(log, "%s method=%d\n", iox_http_result_name(r), mid);
        break;
    }
    fz_log_free(&body);
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
    struct iox_http_limits lb;
    const struct iox_http_limits *lim;
    limits_from(data[0], &lb, &lim);
    const char *in = (const char *)data + HDR;
    size_t n = size - HDR;

    struct fz_log one = {0}, split = {0};
    replay(in, n, NULL, 0, lim, &one);

    size_t cuts[8];
    size_t ncut = fz_cuts(data + 1, 8, n, cuts, 4);
    if (ncut) {
        replay(in, n, cuts, ncut, lim, &split);
        same(&one, &split, "split at the seeded points");
    }

    /* Fixed chunks; large enough that the carry copies stay linear-ish. */
    size_t chunk = 1 + data[9] % 64;
    if (chunk < n / 128) chunk = n / 128;
    if (chunk < n) {
        size_t nc = (n - 1) / chunk;
        size_t *cc = malloc(nc * sizeof *cc);
        if (!cc) abort();
        for (size_t i = 0; i < nc; i++) cc[i] = (i + 1) * chunk;
        replay(in, n, cc, nc, lim, &split);
        free(cc);
        same(&one, &split, "fixed-size chunks");
    }
    fz_log_free(&one);
    fz_log_free(&split);
    return 0;
}
