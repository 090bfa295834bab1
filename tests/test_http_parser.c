/* test_http_parser.c — the HTTP/1.1 request parser.
 *
 * Most cases are data: tests/data/http/NAME.md (llhttp style). Each case is a
 * "## heading", a sentence on why it exists, a ```http block (the input;
 * newlines in the block are ignored, escapes \r \n \t \0 \\ \xHH are decoded,
 * and a line "@repeat N text" stands for text repeated N times), an optional
 * ```limits block (max_head=, max_headers=, max_target=, max_body=,
 * max_method=) and a
 * ```log block: the expected outcome, one event per line:
 *   HEAD_DONE key=value ...   only the keys given are compared
 *   BODY <bytes>              the whole body of that request (escaped)
 *   E_<NAME> key=value        the parser refused the input; a refused head
 *                             also logs method_id= (the method known so far,
 *                             iox_http_parser_method; 0 before it ends)
 *   NEED_MORE                 input ended inside a request
 *
 * The runner replays every input at every chunk size from 1 to its length and
 * split in two at every point, and requires the event log to be identical to
 * the one-shot run; failures are reported as file.md:line. Every buffer handed
 * to the parser ends at an inaccessible guard page (picohttpparser's trick),
 * so a one-byte over-read crashes the test. Inputs larger than
 * BIG_INPUT bytes (the limit cases) are replayed at a sample of chunk sizes
 * and split points, with the guard page after the whole input only: copying a
 * 64 KiB carry at every byte would make the suite quadratic in time.
 */
#include "iox_test.h"
#include <ioxide/http_parser.h>

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define BIG_INPUT 2048

/* ------------------------------------------------------------ small buffers */

#include "sbuf.h"

/* ------------------------------------------------------------- guard pages */

struct arena { char *base; size_t size; char *guard; };

static void arena_init(struct arena *a, size_t n)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t body = (n + 1 + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
    a->size = body + (size_t)pg;
    a->base = mmap(NULL, a->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a->base == MAP_FAILED) abort();
    a->guard = a->base + body;
    if (mprotect(a->guard, (size_t)pg, PROT_NONE) != 0) abort();
}
static void arena_free(struct arena *a) { munmap(a->base, a->size); }
/* n bytes of src placed so that the byte after them is the guard page. */
static const char *at_guard(struct arena *a, const char *src, size_t n)
{
    char *dst = a->guard - n;
    memmove(dst, src, n);
    return dst;
}

/* ----------------------------------------------------------------- replay */

struct limits_spec { struct iox_http_limits lim; int set; };

static void log_head(struct sbuf *log, const struct iox_http_request *r)
{
    static const char *forms[] = {"ORIGIN", "ABSOLUTE", "AUTHORITY", "ASTERISK"};
    static const char *kinds[] = {"NONE", "LENGTH", "CHUNKED"};
    sb_put(log, "HEAD_DONE method=", 17);
    sb_escape(log, r->method, r->method_len);
    sb_put(log, " target=", 8);
    sb_escape(log, r->target, r->target_len);
    sb_put(log, " path=", 6);
    sb_escape(log, r->path, r->path_len);
    sb_put(log, " query=", 7);
    sb_escape(log, r->query, r->query_len);
    sb_put(log, " host=", 6);
    sb_escape(log, r->host, r->host_len);
    sb_printf(log, " version=1.%u keep_alive=%u body_kind=%s content_length=%llu"
                   " form=%s headers=%u expect_continue=%u method_id=%u head_len=%u",
              r->version_minor, r->keep_alive, kinds[r->body_kind % 3],
              (unsigned long long)r->content_length, forms[r->target_form % 4],
              r->header_count, r->expect_continue, r->method_id, r->head_len);
    /* The header block must walk to exactly header_count fields. */
    uint32_t it = 0, nl, vl, count = 0;
    const char *n, *v;
    while (iox_http_header_next(r, &it, &n, &nl, &v, &vl)) count++;
    if (count != r->header_count || it != r->headers_len)
        sb_printf(log, " BUG_header_walk=%u/%u", count, r->header_count);
    sb_put(log, "\n", 1);
}

/* Feed `in` cut at the sorted positions cuts[0..ncut) (each 0 < c < n). */
static void replay(const char *in, size_t n, const size_t *cuts, size_t ncut,
                   const struct limits_spec *ls, struct arena *ar, struct sbuf *log)
{
    struct iox_http_parser hp;
    struct iox_http_request req;
    struct sbuf body = {0};
    size_t recv_end = ncut ? cuts[0] : n, next_cut = 1;
    size_t req_start = 0, cur = 0;
    int in_body = 0, big = n > BIG_INPUT;
    const char *whole = big ? at_guard(ar, in, n) : NULL;

    iox_http_parser_init(&hp, ls->set ? &ls->lim : NULL);
    log->n = 0;
    if (log->s) log->s[0] = 0;
    for (int iter = 0; iter < 10000000; iter++) {
        int r;
        if (!in_body) {
            size_t L = recv_end - req_start;
            const char *bp = big ? whole + req_start : at_guard(ar, in + req_start, L);
            if (req_start == n) break;
            r = iox_http_parse_head(&hp, bp, L, &req);
            if (r == IOX_HTTP_HEAD_DONE) {
                log_head(log, &req);
                if (req.head_len > L) { sb_printf(log, "BUG head_len\n"); break; }
                req_start += req.head_len;
                if (req.body_kind != IOX_HTTP_BODY_NONE) {
                    in_body = 1;
                    cur = req_start;
                    body.n = 0;
                }
                continue;
            }
        } else {
            size_t L = recv_end - cur, used = 0, dl = 0;
            const char *bp = big ? whole + cur : at_guard(ar, in + cur, L), *d = NULL;
            r = iox_http_parse_body(&hp, bp, L, &used, &d, &dl);
            if (used > L) { sb_printf(log, "BUG consumed\n"); break; }
            cur += used;
            if (r == IOX_HTTP_BODY_DATA) {
                if (dl == 0 || d < bp || d + dl > bp + used) { sb_printf(log, "BUG data\n"); break; }
                sb_put(&body, d, dl);
                continue;
            }
            if (r == IOX_HTTP_BODY_DONE) {
                sb_put(log, "BODY ", 5);
                sb_escape(log, body.s ? body.s : "", body.n);
                sb_put(log, "\n", 1);
                in_body = 0;
                req_start = cur;
                continue;
            }
            if (r == IOX_HTTP_NEED_MORE && used != L) { sb_printf(log, "BUG need_more\n"); break; }
        }
        if (r == IOX_HTTP_NEED_MORE) {
            if (recv_end == n) { sb_put(log, "NEED_MORE\n", 10); break; }
            recv_end = next_cut < ncut ? cuts[next_cut] : n;
            next_cut++;
            continue;
        }
        /* A refused head: also the method the parser knew (answers to a
         * HEAD carry no content, whatever the refusal). */
        if (in_body) sb_printf(log, "%s\n", iox_http_result_name(r));
        else sb_printf(log, "%s method_id=%d\n", iox_http_result_name(r), iox_http_parser_method(&hp));
        break;
    }
    free(body.s);
}

/* --------------------------------------------------------------- corpus */

struct tcase {
    char file[320];
    int line;            /* line of the ## heading */
    char name[160];
    struct sbuf input, expect;
    struct limits_spec ls;
};

/* Compare the expected log (keys may be a subset) with the actual one. */
static int log_matches(const char *expect, const char *actual, char *why, size_t whylen)
{
    const char *e = expect, *a = actual;
    int lineno = 1;
    for (;;) {
        const char *ee = strchr(e, '\n'), *ae = strchr(a, '\n');
        if (!ee && !ae) return 1;
        if (!ee || !ae) {
            snprintf(why, whylen, "event %d: %s", lineno, ee ? "missing" : "unexpected");
            return 0;
        }
        size_t el = (size_t)(ee - e), al = (size_t)(ae - a);
        /* first words equal */
        size_t ew = strcspn(e, " \n"), aw = strcspn(a, " \n");
        if (ew != aw || memcmp(e, a, ew) != 0) {
            snprintf(why, whylen, "event %d: expected %.*s, got %.*s", lineno, (int)ew, e,
                     (int)aw, a);
            return 0;
        }
        if (ew == 4 && memcmp(e, "BODY", 4) == 0) {
            if (el != al || memcmp(e, a, el) != 0) {
                snprintf(why, whylen, "event %d: body differs", lineno);
                return 0;
            }
        } else {
            /* every key=value token of the expected line appears in the actual */
            const char *t = e + ew;
            while (t < ee) {
                while (t < ee && *t == ' ') t++;
                size_t tl = strcspn(t, " \n");
                if (!tl) break;
                int found = 0;
                const char *s = a + aw;
                while (s < ae) {
                    while (s < ae && *s == ' ') s++;
                    size_t sl = strcspn(s, " \n");
                    if (sl == tl && memcmp(s, t, tl) == 0) { found = 1; break; }
                    s += sl;
                }
                if (!found) {
                    snprintf(why, whylen, "event %d: %.*s not in: %.*s", lineno, (int)tl, t,
                             (int)(al > 300 ? 300 : al), a);
                    return 0;
                }
                t += tl;
            }
        }
        e = ee + 1;
        a = ae + 1;
        lineno++;
    }
}

static int run_case(struct tcase *tc)
{
    const char *in = tc->input.s ? tc->input.s : "";
    size_t n = tc->input.n;
    struct arena ar;
    struct sbuf ref = {0}, got = {0};
    char why[512];
    int ok = 1;
    size_t *cuts = malloc((n + 1) * sizeof *cuts);

    arena_init(&ar, n);
    replay(in, n, NULL, 0, &tc->ls, &ar, &ref);
    if (!log_matches(tc->expect.s ? tc->expect.s : "", ref.s ? ref.s : "", why, sizeof why)) {
        fprintf(stderr, "\n%s:%d: %s: %s\n  got:\n%s", tc->file, tc->line, tc->name, why,
                ref.s ? ref.s : "");
        ok = 0;
        goto out;
    }
    /* every chunk size */
    for (size_t k = 1; k < n && ok; k++) {
        if (n > BIG_INPUT && !(k <= 17 || k == 61 || k == 509 || k == 4096 || k == 8191 ||
                               k % 4999 == 0))
            continue;
        size_t nc = 0;
        for (size_t c = k; c < n; c += k) cuts[nc++] = c;
        replay(in, n, cuts, nc, &tc->ls, &ar, &got);
        if (strcmp(got.s ? got.s : "", ref.s ? ref.s : "") != 0) {
            fprintf(stderr, "\n%s:%d: %s: chunk size %zu differs from one-shot:\n%s--- one-shot:\n%s",
                    tc->file, tc->line, tc->name, k, got.s, ref.s);
            ok = 0;
        }
    }
    /* every single split point */
    for (size_t c = 1; c < n && ok; c++) {
        if (n > BIG_INPUT && !(c < 64 || n - c < 64 || c % 997 == 0)) continue;
        cuts[0] = c;
        replay(in, n, cuts, 1, &tc->ls, &ar, &got);
        if (strcmp(got.s ? got.s : "", ref.s ? ref.s : "") != 0) {
            fprintf(stderr, "\n%s:%d: %s: split at %zu differs from one-shot:\n%s--- one-shot:\n%s",
                    tc->file, tc->line, tc->name, c, got.s, ref.s);
            ok = 0;
        }
    }
out:
    arena_free(&ar);
    free(ref.s);
    free(got.s);
    free(cuts);
    return ok;
}

static void parse_limits(struct tcase *tc, const char *line)
{
    unsigned long long v;
    char key[32];
    if (sscanf(line, " %31[a-z_] = %llu", key, &v) != 2) return;
    tc->ls.set = 1;
    if (!strcmp(key, "max_head")) tc->ls.lim.max_head = (uint32_t)v;
    else if (!strcmp(key, "max_headers")) tc->ls.lim.max_headers = (uint32_t)v;
    else if (!strcmp(key, "max_target")) tc->ls.lim.max_target = (uint32_t)v;
    else if (!strcmp(key, "max_body")) tc->ls.lim.max_body = v;
    else if (!strcmp(key, "max_method")) tc->ls.lim.max_method = (uint32_t)v;
}

/* Run every case of one .md file; returns cases run, adds failures. */
static int run_file(const char *dir, const char *fname, int *failures)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); (*failures)++; return 0; }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, ncases = 0, block = 0; /* 0 none, 1 http, 2 log, 3 limits, 4 other */
    struct tcase tc;
    int have = 0;
    memset(&tc, 0, sizeof tc);
    for (;;) {
        len = getline(&line, &cap, f);
        if (len >= 0) {
            lineno++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        }
        if (len < 0 || (!block && strncmp(line, "## ", 3) == 0)) {
            if (have) {
                ncases++;
                if (!tc.expect.n) {
                    fprintf(stderr, "\n%s:%d: %s: no ```log block\n", tc.file, tc.line, tc.name);
                    (*failures)++;
                } else if (!run_case(&tc)) (*failures)++;
                free(tc.input.s);
                free(tc.expect.s);
            }
            if (len < 0) break;
            memset(&tc, 0, sizeof tc);
            have = 1;
            snprintf(tc.file, sizeof tc.file, "tests/data/http/%s", fname);
            tc.line = lineno;
            snprintf(tc.name, sizeof tc.name, "%s", line + 3);
            continue;
        }
        if (strncmp(line, "```", 3) == 0) {
            if (block) block = 0;
            else if (!strcmp(line + 3, "http")) block = 1;
            else if (!strcmp(line + 3, "log")) block = 2;
            else if (!strcmp(line + 3, "limits")) block = 3;
            else block = 4;
            continue;
        }
        if (!have) continue;
        if (block == 1) {
            if (strncmp(line, "@repeat ", 8) == 0) {
                char *rest;
                long times = strtol(line + 8, &rest, 10);
                if (*rest == ' ') rest++;
                struct sbuf one = {0};
                sb_unescape(&one, rest, strlen(rest));
                for (long i = 0; i < times; i++) sb_put(&tc.input, one.s ? one.s : "", one.n);
                free(one.s);
            } else {
                sb_unescape(&tc.input, line, (size_t)len);
            }
        } else if (block == 2) {
            if (len) { sb_put(&tc.expect, line, (size_t)len); sb_put(&tc.expect, "\n", 1); }
        } else if (block == 3) {
            parse_limits(&tc, line);
        }
    }
    free(line);
    fclose(f);
    return ncases;
}

IOX_TEST(http_parser, corpus)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/data/http", iox_test_src_dir());
    char *names[256];
    int failures = 0, cases = 0;
    int nn = corpus_md_files(dir, names, 256);
    CU_ASSERT_FATAL(nn >= 0);
    for (int i = 0; i < nn; i++) {
        cases += run_file(dir, names[i], &failures);
        free(names[i]);
    }
    if (getenv("IOX_TEST_VERBOSE")) printf("\n  http corpus: %d cases, %d failed\n", cases, failures);
    CU_ASSERT(cases >= 60);
    CU_ASSERT_EQUAL(failures, 0);
}

/* ------------------------------------------------------------ API tests */

static int head(struct iox_http_parser *hp, const char *s, struct iox_http_request *r)
{
    return iox_http_parse_head(hp, s, strlen(s), r);
}

IOX_TEST(http_parser, header_next_and_find)
{
    static const char in[] = "GET /a?b=1 HTTP/1.1\r\nHost: ex.com:80\r\n"
                             "X-Empty:\r\nX-Pad: \t spaced out \t\r\nCookie: a=b; c=d\r\n\r\n";
    struct iox_http_parser hp;
    struct iox_http_request r;
    iox_http_parser_init(&hp, NULL);
    CU_ASSERT_EQUAL_FATAL(head(&hp, in, &r), IOX_HTTP_HEAD_DONE);
    CU_ASSERT_EQUAL(r.header_count, 4);
    uint32_t it = 0, nl, vl;
    const char *n, *v;
    CU_ASSERT(iox_http_header_next(&r, &it, &n, &nl, &v, &vl));
    CU_ASSERT(nl == 4 && !memcmp(n, "Host", 4) && vl == 9 && !memcmp(v, "ex.com:80", 9));
    CU_ASSERT(iox_http_header_next(&r, &it, &n, &nl, &v, &vl));
    CU_ASSERT(nl == 7 && !memcmp(n, "X-Empty", 7) && vl == 0);
    CU_ASSERT(iox_http_header_next(&r, &it, &n, &nl, &v, &vl));
    CU_ASSERT(nl == 5 && vl == 10 && !memcmp(v, "spaced out", 10));
    CU_ASSERT(iox_http_header_next(&r, &it, &n, &nl, &v, &vl));
    CU_ASSERT(vl == 8 && !memcmp(v, "a=b; c=d", 8));
    CU_ASSERT_FALSE(iox_http_header_next(&r, &it, &n, &nl, &v, &vl));
    CU_ASSERT(iox_http_header_find(&r, "cookie", &v, &vl) && vl == 8);
    CU_ASSERT(iox_http_header_find(&r, "X-PAD", &v, &vl) && vl == 10);
    CU_ASSERT_FALSE(iox_http_header_find(&r, "X-Pa", &v, &vl));
    CU_ASSERT_FALSE(iox_http_header_find(&r, "Missing", &v, &vl));
    CU_ASSERT(r.host_len == 9 && !memcmp(r.host, "ex.com:80", 9));
    CU_ASSERT(r.path_len == 2 && !memcmp(r.path, "/a", 2));
    CU_ASSERT(r.query_len == 3 && !memcmp(r.query, "b=1", 3));
    CU_ASSERT_EQUAL(r.head_len, sizeof in - 1);
    CU_ASSERT_FALSE(iox_http_parser_mid_request(&hp));
}

IOX_TEST(http_parser, no_headers_walk)
{
    static const char in[] = "GET / HTTP/1.0\r\n\r\n";
    struct iox_http_parser hp;
    struct iox_http_request r;
    iox_http_parser_init(&hp, NULL);
    CU_ASSERT_EQUAL_FATAL(head(&hp, in, &r), IOX_HTTP_HEAD_DONE);
    uint32_t it = 0, nl, vl;
    const char *n, *v;
    CU_ASSERT_EQUAL(r.headers_len, 0);
    CU_ASSERT_FALSE(iox_http_header_next(&r, &it, &n, &nl, &v, &vl));
    CU_ASSERT_FALSE(iox_http_header_find(&r, "Host", &v, &vl));
    CU_ASSERT_EQUAL(r.keep_alive, 0);
}

IOX_TEST(http_parser, error_status_mapping)
{
    CU_ASSERT_EQUAL(iox_http_error_status(IOX_HTTP_E_BAD_METHOD), 400);
    CU_ASSERT_EQUAL(iox_http_error_status(IOX_HTTP_E_VERSION_UNSUPPORTED), 505);
    CU_ASSERT_EQUAL(iox_http_error_status(IOX_HTTP_E_HEAD_TOO_LARGE), 431);
    CU_ASSERT_EQUAL(iox_http_error_status(IOX_HTTP_E_TOO_MANY_HEADERS), 431);
    CU_ASSERT_EQUAL(iox_http_error_status(IOX_HTTP_E_TARGET_TOO_LONG), 414);
    CU_ASSERT_EQUAL(iox_http_error_status(IOX_HTTP_E_BODY_TOO_LARGE), 413);
    CU_ASSERT_EQUAL(iox_http_error_status(IOX_HTTP_E_CL_AND_TE), 400);
    CU_ASSERT_EQUAL(iox_http_error_status(IOX_HTTP_E_BAD_HOST), 400);
    CU_ASSERT_EQUAL(iox_http_error_status(IOX_HTTP_E_METHOD_TOO_LONG), 501);
    CU_ASSERT_STRING_EQUAL(iox_http_result_name(IOX_HTTP_E_CL_AND_TE), "E_CL_AND_TE");
    CU_ASSERT_STRING_EQUAL(iox_http_result_name(IOX_HTTP_E_BAD_HOST), "E_BAD_HOST");
    CU_ASSERT_STRING_EQUAL(iox_http_result_name(IOX_HTTP_HEAD_DONE), "HEAD_DONE");
    CU_ASSERT_STRING_EQUAL(iox_http_result_name(IOX_HTTP_NEED_MORE), "NEED_MORE");
    CU_ASSERT_STRING_EQUAL(iox_http_result_name(-999), "UNKNOWN");
    CU_ASSERT_STRING_EQUAL(iox_http_error_reason(IOX_HTTP_E_OBS_FOLD), "obsolete line folding");
    /* every code maps to its table row: name round trip, status in range */
#define CHECK_ROW(n, v, s, r)                                                  \
    CU_ASSERT_EQUAL(iox_http_error_status(v), s);                              \
    CU_ASSERT_STRING_EQUAL(iox_http_result_name(v), "E_" #n);                  \
    CU_ASSERT_STRING_EQUAL(iox_http_error_reason(v), r);
    IOX_HTTP_ERRORS(CHECK_ROW)
#undef CHECK_ROW
}

/* The carry model: the caller re-presents the same bytes at the same offsets
 * from a *different* buffer; views on HEAD_DONE point into the last one. */
IOX_TEST(http_parser, carry_moves_buffer)
{
    static const char in[] = "GET /moved HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n";
    char a[64], b[64];
    struct iox_http_parser hp;
    struct iox_http_request r;
    iox_http_parser_init(&hp, NULL);
    memcpy(a, in, 20);
    CU_ASSERT_EQUAL(iox_http_parse_head(&hp, a, 20, &r), IOX_HTTP_NEED_MORE);
    CU_ASSERT(iox_http_parser_mid_request(&hp));
    memset(a, 'Z', sizeof a);
    memcpy(b, in, sizeof in - 1);
    CU_ASSERT_EQUAL_FATAL(iox_http_parse_head(&hp, b, sizeof in - 1, &r), IOX_HTTP_HEAD_DONE);
    CU_ASSERT(r.target == b + 4 && r.target_len == 6);
    CU_ASSERT(r.host == b + 27 && r.host_len == 1);
}

IOX_TEST(http_parser, body_by_length_views)
{
    static const char in[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789GET";
    struct iox_http_parser hp;
    struct iox_http_request r;
    const char *d;
    size_t used, dl;
    iox_http_parser_init(&hp, NULL);
    CU_ASSERT_EQUAL_FATAL(head(&hp, in, &r), IOX_HTTP_HEAD_DONE);
    CU_ASSERT_EQUAL(r.content_length, 10);
    CU_ASSERT(iox_http_parser_mid_request(&hp));
    const char *bp = in + r.head_len;
    CU_ASSERT_EQUAL(iox_http_parse_body(&hp, bp, 4, &used, &d, &dl), IOX_HTTP_BODY_DATA);
    CU_ASSERT(used == 4 && d == bp && dl == 4);
    CU_ASSERT_EQUAL(iox_http_parse_body(&hp, bp + 4, 9, &used, &d, &dl), IOX_HTTP_BODY_DATA);
    CU_ASSERT(used == 6 && d == bp + 4 && dl == 6);
    CU_ASSERT_EQUAL(iox_http_parse_body(&hp, bp + 10, 3, &used, &d, &dl), IOX_HTTP_BODY_DONE);
    CU_ASSERT_EQUAL(used, 0);
    CU_ASSERT_FALSE(iox_http_parser_mid_request(&hp));
}

IOX_TEST(http_parser, limits_defaults_and_zero)
{
    struct iox_http_parser hp;
    struct iox_http_limits lim = {0, 0, 0, 0, 0};
    iox_http_parser_init(&hp, &lim);
    CU_ASSERT_EQUAL(hp.lim.max_method, IOX_HTTP_DEFAULT_MAX_METHOD);
    CU_ASSERT_EQUAL(hp.lim.max_head, IOX_HTTP_DEFAULT_MAX_HEAD);
    CU_ASSERT_EQUAL(hp.lim.max_headers, IOX_HTTP_DEFAULT_MAX_HEADERS);
    CU_ASSERT_EQUAL(hp.lim.max_target, IOX_HTTP_DEFAULT_MAX_TARGET);
    CU_ASSERT_EQUAL(hp.lim.max_body, IOX_HTTP_DEFAULT_MAX_BODY);
    /* a huge head fed at once is refused after max_head bytes, not buffered */
    size_t n = 70 * 1024;
    char *big = malloc(n);
    memcpy(big, "GET / HTTP/1.1\r\nHost: h\r\nX: ", 28);
    memset(big + 28, 'a', n - 28);
    struct iox_http_request r;
    CU_ASSERT_EQUAL(iox_http_parse_head(&hp, big, n, &r), IOX_HTTP_E_HEAD_TOO_LARGE);
    CU_ASSERT_EQUAL(hp.pos, IOX_HTTP_DEFAULT_MAX_HEAD);
    free(big);
}

IOX_SUITE(http_parser, NULL, NULL);

/* The host skips runs of bytes with tables (names, path, query, values)
 * instead of stepping the DFA. For every byte value, a request where the
 * byte is reached by a skip must get the same result as one where the DFA
 * itself steps over it (after %41 in the target, after an E in a name, in an
 * Expect value, which has no skip). */
static int parse_str(const char *s, size_t n)
{
    struct iox_http_parser hp;
    struct iox_http_request r;
    iox_http_parser_init(&hp, NULL);
    return iox_http_parse_head(&hp, s, n, &r);
}

IOX_TEST(http_parser_skip, skip_tables_match_grammar)
{
    static const char *pairs[][2] = {
        {"GET /x%cy HTTP/1.1\r\nHost: h\r\n\r\n", "GET /%%41%cy HTTP/1.1\r\nHost: h\r\n\r\n"},
        {"GET /x?q%cy HTTP/1.1\r\nHost: h\r\n\r\n", "GET /x?%%41%cy HTTP/1.1\r\nHost: h\r\n\r\n"},
        {"GET / HTTP/1.1\r\nHost: h\r\nQq%cz: v\r\n\r\n", "GET / HTTP/1.1\r\nHost: h\r\nEq%cz: v\r\n\r\n"},
        /* HTTP/1.0: an expectation other than 100-continue is ignored
         * there (417 in 1.1), so only the grammar's verdict differs. */
        {"GET / HTTP/1.0\r\nHost: h\r\nX: a%cb\r\n\r\n", "GET / HTTP/1.0\r\nHost: h\r\nExpect: a%cb\r\n\r\n"},
        {"GET / HTTP/1.0\r\nHost: h\r\nX: abcdefghijklm%cbcdefghijklmnopq\r\n\r\n",
         "GET / HTTP/1.0\r\nHost: h\r\nExpect: abcdefghijklm%cbcdefghijklmnopq\r\n\r\n"},
    };
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        for (int c = 0; c < 256; c++) {
            char a[128], b[128];
            int na = snprintf(a, sizeof a, pairs[k][0], c ? c : 1);
            int nb = snprintf(b, sizeof b, pairs[k][1], c ? c : 1);
            if (!c) { /* %c with 0 would end the string for snprintf's count only */
                for (int i = 0; i < na; i++) if (a[i] == 1) a[i] = 0;
                for (int i = 0; i < nb; i++) if (b[i] == 1) b[i] = 0;
            }
            int ra = parse_str(a, (size_t)na), rb = parse_str(b, (size_t)nb);
            if (ra != rb) {
                fprintf(stderr, "\nskip table mismatch: pair %zu byte 0x%02x: %s vs %s\n", k, c,
                        iox_http_result_name(ra), iox_http_result_name(rb));
                CU_FAIL("skip table differs from grammar");
            }
        }
    }
}

/* The value skip works 16, then 8 bytes at a time, then bytewise, and takes
 * the position of the first stop byte from a mask: put a byte at every
 * offset of a long value (so it lands in each lane of each step, and in the
 * tail) and compare with the same value under Expect, which has no skip. */
IOX_TEST(http_parser_skip, value_skip_every_offset)
{
    static const unsigned char bytes[] = {0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1f, 0x20,
                                          0x21, 0x7e, 0x7f, 0x80, 0xff};
    for (size_t vlen = 1; vlen <= 48; vlen++) {
        for (size_t k = 0; k < vlen; k++) {
            for (size_t i = 0; i < sizeof bytes; i++) {
                char v[64], a[160], b[160];
                memset(v, 'v', vlen);
                v[k] = (char)bytes[i];
                /* HTTP/1.0: the Expect value is then only checked, not acted on. */
                int na = snprintf(a, sizeof a, "GET / HTTP/1.0\r\nHost: h\r\nX: a");
                int nb = snprintf(b, sizeof b, "GET / HTTP/1.0\r\nHost: h\r\nExpect: a");
                memcpy(a + na, v, vlen);
                memcpy(b + nb, v, vlen);
                na += (int)vlen;
                nb += (int)vlen;
                memcpy(a + na, "\r\n\r\n", 4);
                memcpy(b + nb, "\r\n\r\n", 4);
                int ra = parse_str(a, (size_t)na + 4), rb = parse_str(b, (size_t)nb + 4);
                if (ra != rb) {
                    fprintf(stderr, "\nvalue skip mismatch: len %zu offset %zu byte 0x%02x: %s vs %s\n",
                            vlen, k, bytes[i], iox_http_result_name(ra), iox_http_result_name(rb));
                    CU_FAIL("value skip differs from grammar");
                    return;
                }
            }
        }
    }
}

IOX_SUITE(http_parser_skip, NULL, NULL);

/* One parse of s[0, n): in one call, or fed one byte more per call (the
 * whole buffer so far, as the carry does). A Host line in one call may be
 * taken by the host fast path (host_rest); byte by byte it never is. */
static int parse_host(const char *s, size_t n, int bytewise, char *host, size_t cap)
{
    struct iox_http_parser hp;
    struct iox_http_request r;
    int rc = IOX_HTTP_NEED_MORE;
    iox_http_parser_init(&hp, NULL);
    if (!bytewise) rc = iox_http_parse_head(&hp, s, n, &r);
    else
        for (size_t k = 1; k <= n && rc == IOX_HTTP_NEED_MORE; k++) rc = iox_http_parse_head(&hp, s, k, &r);
    host[0] = 0;
    if (rc == IOX_HTTP_HEAD_DONE) snprintf(host, cap, "%.*s|%u", (int)r.host_len, r.host, r.header_count);
    return rc;
}

/* The host fast path against the grammar: every byte at every place of a
 * common Host line (name, port, OWS, CRLF), parsed in one call and byte by
 * byte: the same verdict and the same host every time. */
IOX_TEST(http_parser_skip, host_fast_path_every_byte)
{
    static const char *tpl[] = {
        "Host: %cb:80\r\n", "Host: a%c:80\r\n", "Host: a:%c0\r\n", "Host: a:8%c\r\n",
        "Host: a:80%c\r\n", "Host:%ca\r\n", "Host: a %c\r\n", "Host: a\r%c", "Host: a:1 \r%c",
    };
    for (size_t t = 0; t < sizeof tpl / sizeof tpl[0]; t++) {
        for (int c = 0; c < 256; c++) {
            char line[64], a[160];
            int nl = snprintf(line, sizeof line, tpl[t], c ? c : 1);
            if (!c) for (int i = 0; i < nl; i++) if (line[i] == 1) line[i] = 0;
            int na = snprintf(a, sizeof a, "GET / HTTP/1.1\r\n");
            memcpy(a + na, line, (size_t)nl);
            na += nl;
            memcpy(a + na, "X: y\r\n\r\n", 8);
            na += 8;
            char h1[96], h2[96];
            int r1 = parse_host(a, (size_t)na, 0, h1, sizeof h1);
            int r2 = parse_host(a, (size_t)na, 1, h2, sizeof h2);
            if (r1 != r2 || strcmp(h1, h2) != 0) {
                fprintf(stderr, "\nhost fast path mismatch: \"%s\" byte 0x%02x: %s [%s] vs bytewise %s [%s]\n",
                        tpl[t], c, iox_http_result_name(r1), h1, iox_http_result_name(r2), h2);
                CU_FAIL("host fast path differs from the grammar");
                return;
            }
        }
    }
}

/* One parse as parse_host, the verdict and what the request says as text:
 * head length, host, header count, keep-alive, body kind. */
static int parse_summary(const char *s, size_t n, int bytewise, char *out, size_t cap)
{
    struct iox_http_parser hp;
    struct iox_http_request r;
    int rc = IOX_HTTP_NEED_MORE;
    iox_http_parser_init(&hp, NULL);
    if (!bytewise) rc = iox_http_parse_head(&hp, s, n, &r);
    else
        for (size_t k = 1; k <= n && rc == IOX_HTTP_NEED_MORE; k++) rc = iox_http_parse_head(&hp, s, k, &r);
    out[0] = 0;
    if (rc == IOX_HTTP_HEAD_DONE)
        snprintf(out, cap, "%u|%.*s|%u|%d|%d", r.head_len, (int)r.host_len, r.host, r.header_count,
                 r.keep_alive, r.body_kind);
    return rc;
}

/* The first-line Host shortcut (end_target: "Host:" right after the request
 * line) and the end of the head right after a Host line (host_rest): every
 * byte in place of each byte of the name, the colon and the CRLFs around,
 * with the head ending after the Host line or going on (another field, a
 * second Host), in one call and byte by byte (which never takes them). */
IOX_TEST(http_parser_skip, host_first_line_every_byte)
{
    static const char *tpl[] = {
        "%cost: a:80\r\n", "H%cst: a\r\n", "Ho%ct: a\r\n", "Hos%c: a\r\n", "Host%c a\r\n",
        "hOsT%ca\r\n", "Host: a\r%c", "Host: a:1\r\n%c", "Host: a\r\n\r%c",
    };
    static const char *after[] = {"\r\n", "X: y\r\n\r\n", "Host: b\r\n\r\n", ""};
    for (size_t t = 0; t < sizeof tpl / sizeof tpl[0]; t++) {
        for (size_t f = 0; f < sizeof after / sizeof after[0]; f++) {
            for (int c = 0; c < 256; c++) {
                char line[64], a[160];
                int nl = snprintf(line, sizeof line, tpl[t], c ? c : 1);
                if (!c) for (int i = 0; i < nl; i++) if (line[i] == 1) line[i] = 0;
                int na = snprintf(a, sizeof a, "GET / HTTP/1.1\r\n");
                memcpy(a + na, line, (size_t)nl);
                na += nl;
                size_t fl = strlen(after[f]);
                memcpy(a + na, after[f], fl);
                na += (int)fl;
                char s1[128], s2[128];
                int r1 = parse_summary(a, (size_t)na, 0, s1, sizeof s1);
                int r2 = parse_summary(a, (size_t)na, 1, s2, sizeof s2);
                if (r1 != r2 || strcmp(s1, s2) != 0) {
                    fprintf(stderr, "\nfirst-line host mismatch: \"%s\"+\"%s\" byte 0x%02x: %s [%s] vs bytewise %s [%s]\n",
                            tpl[t], after[f], c, iox_http_result_name(r1), s1, iox_http_result_name(r2), s2);
                    CU_FAIL("first-line host shortcut differs from the grammar");
                    return;
                }
            }
        }
    }
}

/* The host fast path's wide steps (16 bytes at a time over letters, digits,
 * '.' and '-', then over the port's digits): a stop byte at every offset of
 * hosts and ports up to 40 bytes (every lane of each step, and the byte
 * loop after it), in one read and byte by byte. */
IOX_TEST(http_parser_skip, host_fast_path_every_offset)
{
    static const unsigned char bytes[] = {0x00, 0x09, 0x0d, 0x20, '!', '%', '-', '.', '/', '0', '9', ':',
                                          '@', 'A', 'Z', '[', '`', 'a', 'z', '{', '_', '~', 0x7f, 0x80, 0xff};
    for (int part = 0; part < 2; part++) {
        for (size_t len = 1; len <= 40; len++) {
            for (size_t k = 0; k < len; k++) {
                for (size_t i = 0; i < sizeof bytes; i++) {
                    char v[48], a[200];
                    memset(v, part ? '7' : 'h', len);
                    v[k] = (char)bytes[i];
                    int na = snprintf(a, sizeof a, "GET / HTTP/1.1\r\nHost: %s", part ? "a.b:" : "");
                    memcpy(a + na, v, len);
                    na += (int)len;
                    static const char tail[] = "\r\nX-Pad: 0123456789abcdef\r\n\r\n";
                    memcpy(a + na, tail, sizeof tail - 1);
                    na += (int)sizeof tail - 1;
                    char h1[96], h2[96];
                    int r1 = parse_host(a, (size_t)na, 0, h1, sizeof h1);
                    int r2 = parse_host(a, (size_t)na, 1, h2, sizeof h2);
                    if (r1 != r2 || strcmp(h1, h2) != 0) {
                        fprintf(stderr, "\nhost fast path mismatch: %s len %zu offset %zu byte 0x%02x: %s [%s] vs bytewise %s [%s]\n",
                                part ? "port" : "name", len, k, bytes[i], iox_http_result_name(r1), h1,
                                iox_http_result_name(r2), h2);
                        CU_FAIL("host fast path differs from the grammar");
                        return;
                    }
                }
            }
        }
    }
}
