/* test_responses.c — the response corpus: tests/data/responses/NAME.md,
 * replayed against the real playground over 127.0.0.1, in every mode a case
 * names. What the parser corpus (tests/data/http) is for requests, this is
 * for answers: status lines, the fields RFC 9110 requires or forbids, and
 * the exact content on the wire.
 *
 * A case is a "## heading", a sentence on why it exists (with its RFC), and:
 *   ```modes     optional: the playground modes to run it in, out of
 *                raw hop pg file (default: all four)
 *   ```http      the bytes sent, in one write (newlines in the block are
 *                ignored; escapes \r \n \t \0 \\ \xHH and "@repeat N text"
 *                as in tests/data/http)
 *   ```response  one block per answer expected, in order; one expectation
 *                a line:
 *       status 405 Method Not Allowed  the status line is exactly
 *                                      "HTTP/1.1 405 Method Not Allowed"
 *       header Allow: GET, HEAD        that field, once, with this value
 *       header Allow                   that field, once, any value
 *       no-header Content-Range        no such field
 *       head                           the request was HEAD: no content is
 *                                      framed, whatever Content-Length says
 *       body-length 10                 10 content bytes framed
 *       body ok                        exactly these content bytes (escapes)
 *       closed                         the server closes after this answer
 *                                      on its own (last block only)
 * After the last answer nothing more may come: the runner waits for the
 * server's close (closed), or else half-closes its side and reads to the
 * end; any byte left over — content sent for a HEAD or a 204, an answer too
 * many — fails the case. Failures are reported as file.md:line (of the
 * expectation, the block or the heading) with the mode.
 *
 * The servers: one per mode, started when a case first needs it
 * (REACTORS=1), stopped at the end, and each must exit 0. pg mode points at
 * a port where no database listens: its GET / is a 503, and nothing the
 * corpus checks needs the database. file mode serves a temp root with
 * /index.html ("<h1>responses</h1>\n", 19 bytes), /ten.txt ("0123456789")
 * and /sub/index.html ("sub\n"). */
#include "http_client.h"
#include "iox_test.h"
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ small buffers */

#include "sbuf.h"

/* Bytes as text for a failure message: printable kept, the rest escaped. */
static void show(char *out, size_t cap, const char *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r') o += (size_t)snprintf(out + o, cap - o, "\\r");
        else if (c == '\n') o += (size_t)snprintf(out + o, cap - o, "\\n");
        else if (c < 0x20 || c >= 0x7f) o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    if (o < cap) out[o] = 0;
    if (n && o + 8 >= cap && cap > 4) memcpy(out + cap - 4, "...", 4);
}

/* ------------------------------------------------------------------ modes */

enum { M_RAW, M_HOP, M_PG, M_FILE, NMODES };
static const char *const mode_names[NMODES] = {"raw", "hop", "pg", "file"};

static struct hc_server servers[NMODES];
static int server_up[NMODES], server_failed[NMODES];
static char file_root[64];

static int write_file(const char *rel, const char *data)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", file_root, rel);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(data, f);
    return fclose(f);
}

static int make_file_root(void)
{
    if (file_root[0]) return 0;
    snprintf(file_root, sizeof file_root, "/tmp/iox-responses-XXXXXX");
    if (!mkdtemp(file_root)) { file_root[0] = 0; return -1; }
    char sub[128];
    snprintf(sub, sizeof sub, "%s/sub", file_root);
    if (mkdir(sub, 0755) < 0) return -1;
    if (write_file("index.html", "<h1>responses</h1>\n") < 0 || write_file("ten.txt", "0123456789") < 0 ||
        write_file("sub/index.html", "sub\n") < 0)
        return -1;
    return 0;
}

/* The server of a mode, started on first use; NULL when it cannot start. */
static struct hc_server *server(int m)
{
    if (server_up[m]) return &servers[m];
    if (server_failed[m]) return NULL;
    char mode[64], root[128], pgport[32];
    snprintf(mode, sizeof mode, "PLAYGROUND_MODE=%s", mode_names[m]);
    const char *env[12] = {mode, "REACTORS=1", NULL};
    int k = 2;
    if (m == M_PG) {
        /* No database: the pool keeps retrying, never in the way of what
         * is checked here. */
        snprintf(pgport, sizeof pgport, "PGPORT=%u", (unsigned)hc_free_port());
        env[k++] = "PGHOST=127.0.0.1";
        env[k++] = pgport;
        env[k++] = "PGUSER=iox";
        env[k++] = "PGDATABASE=iox";
    } else if (m == M_FILE) {
        if (make_file_root() < 0) { server_failed[m] = 1; return NULL; }
        snprintf(root, sizeof root, "FILE_ROOT=%s", file_root);
        env[k++] = root;
    }
    env[k] = NULL;
    if (hc_server_start(&servers[m], env) != 0) { server_failed[m] = 1; return NULL; }
    server_up[m] = 1;
    return &servers[m];
}

static int stop_servers(void)
{
    int bad = 0;
    for (int m = 0; m < NMODES; m++) {
        if (!server_up[m]) continue;
        long ms = 0;
        int st = hc_server_stop(&servers[m], &ms);
        if (st != 0) {
            char *err = hc_server_stderr(&servers[m]);
            fprintf(stderr, "\nresponses: the %s server exited with %d after %ld ms (want 0); stderr:\n%s\n",
                    mode_names[m], st, ms, err);
            free(err);
            bad = 1;
        }
        hc_server_free(&servers[m]);
        server_up[m] = 0;
    }
    if (file_root[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", file_root);
        if (system(cmd) != 0) bad = 1;
        file_root[0] = 0;
    }
    return bad;
}

/* ------------------------------------------------------------------ cases */

enum { X_STATUS, X_HEADER, X_NO_HEADER, X_HEAD, X_BODY_LENGTH, X_BODY, X_CLOSED };

struct expect {
    int line, kind;
    char arg[256];          /* status line tail / field name / decoded body */
    char value[256];        /* X_HEADER: the value ("" with any_value) */
    int any_value;
    size_t n;               /* X_BODY_LENGTH: the length; X_BODY: bytes in arg */
};

#define MAX_RESP 8
#define MAX_EXPECT 24

struct resp_block { int line, nx; struct expect x[MAX_EXPECT]; };

struct rcase {
    char file[320];
    int line;
    char name[160];
    unsigned modes;          /* bit per mode; 0: all */
    struct sbuf input;
    int nresp;
    struct resp_block resp[MAX_RESP];
    int syntax_errors;
};

static int failures, checked;

static void fail(const struct rcase *tc, int line, int mode, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s:%d: %s [%s]: %s\n", tc->file, line, tc->name, mode >= 0 ? mode_names[mode] : "-", msg);
    failures++;
}

/* One expectation line of a ```response block. */
static int parse_expect(struct rcase *tc, struct resp_block *rb, const char *line, int lineno)
{
    if (rb->nx == MAX_EXPECT) return -1;
    struct expect *x = &rb->x[rb->nx];
    memset(x, 0, sizeof *x);
    x->line = lineno;
    const char *a;
    if (!strncmp(line, "status ", 7)) {
        x->kind = X_STATUS;
        snprintf(x->arg, sizeof x->arg, "%s", line + 7);
    } else if (!strncmp(line, "header ", 7)) {
        x->kind = X_HEADER;
        a = line + 7;
        const char *colon = strchr(a, ':');
        if (!colon) {
            x->any_value = 1;
            snprintf(x->arg, sizeof x->arg, "%s", a);
        } else {
            snprintf(x->arg, sizeof x->arg, "%.*s", (int)(colon - a), a);
            const char *v = colon + 1;
            while (*v == ' ') v++;
            snprintf(x->value, sizeof x->value, "%s", v);
        }
    } else if (!strncmp(line, "no-header ", 10)) {
        x->kind = X_NO_HEADER;
        snprintf(x->arg, sizeof x->arg, "%s", line + 10);
    } else if (!strcmp(line, "head")) {
        x->kind = X_HEAD;
    } else if (!strncmp(line, "body-length ", 12)) {
        x->kind = X_BODY_LENGTH;
        char *end;
        x->n = strtoul(line + 12, &end, 10);
        if (*end) return -1;
    } else if (!strncmp(line, "body ", 5) || !strcmp(line, "body")) {
        x->kind = X_BODY;
        struct sbuf b = {0};
        if (line[4]) sb_unescape(&b, line + 5, strlen(line + 5));
        if (b.n >= sizeof x->arg) { free(b.s); return -1; }
        if (b.n) memcpy(x->arg, b.s, b.n);
        x->n = b.n;
        free(b.s);
    } else if (!strcmp(line, "closed")) {
        x->kind = X_CLOSED;
    } else {
        (void)tc;
        return -1;
    }
    rb->nx++;
    return 0;
}

/* Reads until the peer closes (or timeout_ms): 1 at EOF, 0 on timeout, -1 on
 * an error (a reset). Bytes go to c's buffer. */
static int read_to_eof(struct hc_conn *c, int timeout_ms)
{
    long long deadline = hc_now_ms() + timeout_ms;
    while (!c->eof) {
        long long left = deadline - hc_now_ms();
        if (left <= 0) return 0;
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r == 0 ? 0 : -1;
        if (c->cap - c->len < 16384) {
            c->cap = c->cap ? c->cap * 2 : 65536;
            c->buf = realloc(c->buf, c->cap);
            if (!c->buf) abort();
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (n == 0) { c->eof = 1; break; }
        if (n > 0) { c->len += (size_t)n; continue; }
        if (errno == EINTR || errno == EAGAIN) continue;
        c->err = errno;
        return -1;
    }
    return 1;
}

static int has_kind(const struct resp_block *rb, int kind)
{
    for (int i = 0; i < rb->nx; i++)
        if (rb->x[i].kind == kind) return 1;
    return 0;
}

/* One case against one mode. */
static void run_case_mode(struct rcase *tc, int m)
{
    struct hc_server *s = server(m);
    if (!s) { fail(tc, tc->line, m, "the %s playground did not start", mode_names[m]); return; }
    checked++;
    struct hc_conn c;
    int r = hc_connect(&c, s->port, 2000);
    if (r) { fail(tc, tc->line, m, "connect: %s", strerror(-r)); return; }
    hc_set_timeout(&c, hc_slow(3000));
    /* An early answer and close (a rejection) may cut the send. */
    r = hc_send(&c, tc->input.s ? tc->input.s : "", tc->input.n);
    if (r && r != -EPIPE && r != -ECONNRESET) { fail(tc, tc->line, m, "send: %s", strerror(-r)); hc_close(&c); return; }
    int want_closed = 0;
    for (int i = 0; i < tc->nresp; i++) {
        const struct resp_block *rb = &tc->resp[i];
        int head = has_kind(rb, X_HEAD);
        struct hc_response resp;
        int rc = hc_read_response(&c, &resp, head);
        if (rc != HC_OK) {
            char tail[200] = "";
            show(tail, sizeof tail, c.buf ? c.buf + c.off : "", c.len - c.off);
            fail(tc, rb->line, m, "answer %d: %s%s%s (bytes: \"%s\")", i + 1, hc_strerror(rc),
                 c.why ? ": " : "", c.why ? c.why : "", tail);
            hc_close(&c);
            return;
        }
        const char *raw = c.buf + c.off - resp.wire_len;
        const char *eol = memchr(raw, '\r', resp.wire_len);
        size_t sl = eol ? (size_t)(eol - raw) : 0;
        size_t content = resp.body_len;
        for (int k = 0; k < rb->nx; k++) {
            const struct expect *x = &rb->x[k];
            switch (x->kind) {
            case X_STATUS: {
                char want[300], got[300];
                snprintf(want, sizeof want, "HTTP/1.1 %s", x->arg);
                show(got, sizeof got, raw, sl);
                if (sl != strlen(want) || memcmp(raw, want, sl))
                    fail(tc, x->line, m, "status line \"%s\", want \"%s\"", got, want);
                break;
            }
            case X_HEADER: {
                unsigned nh = hc_header_count(&resp, x->arg);
                const char *v = hc_header(&resp, x->arg);
                if (nh != 1)
                    fail(tc, x->line, m, "%u %s fields, want one", nh, x->arg);
                else if (!x->any_value && strcmp(v, x->value))
                    fail(tc, x->line, m, "%s: \"%s\", want \"%s\"", x->arg, v, x->value);
                break;
            }
            case X_NO_HEADER:
                if (hc_header(&resp, x->arg))
                    fail(tc, x->line, m, "%s: \"%s\" present, want none", x->arg, hc_header(&resp, x->arg));
                break;
            case X_BODY_LENGTH:
                if (content != x->n) fail(tc, x->line, m, "%zu content bytes, want %zu", content, x->n);
                break;
            case X_BODY:
                if (content != x->n || memcmp(resp.body, x->arg, x->n)) {
                    char got[200], want[200];
                    show(got, sizeof got, resp.body, content);
                    show(want, sizeof want, x->arg, x->n);
                    fail(tc, x->line, m, "content \"%s\" (%zu bytes), want \"%s\" (%zu)", got, content,
                         want, x->n);
                }
                break;
            case X_CLOSED:
                if (i != tc->nresp - 1) fail(tc, x->line, m, "closed: only in the last block");
                want_closed = 1;
                break;
            default:
                break;
            }
        }
        hc_response_free(&resp);
    }
    /* Nothing after the last answer. */
    if (!want_closed) shutdown(c.fd, SHUT_WR);
    int e = read_to_eof(&c, hc_slow(3000));
    int last_line = tc->nresp ? tc->resp[tc->nresp - 1].line : tc->line;
    if (e == 0)
        fail(tc, last_line, m, want_closed ? "the server did not close after the answer"
                                           : "the server did not close after our half-close");
    else if (e < 0 && !(c.err == ECONNRESET && c.len == c.off))
        fail(tc, last_line, m, "reading to the end: %s", strerror(c.err));
    if (c.len > c.off) {
        char extra[200];
        show(extra, sizeof extra, c.buf + c.off, c.len - c.off);
        fail(tc, last_line, m, "%zu bytes after the last answer expected: \"%s\"", c.len - c.off, extra);
    }
    hc_close(&c);
}

static void run_case(struct rcase *tc)
{
    if (tc->syntax_errors) return;
    if (!tc->nresp) { fail(tc, tc->line, -1, "no ```response block"); return; }
    for (int m = 0; m < NMODES; m++)
        if (!tc->modes || (tc->modes & (1u << m))) run_case_mode(tc, m);
}

static int run_file(const char *dir, const char *fname)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); failures++; return 0; }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, ncases = 0, block = 0; /* 0 none, 1 http, 2 response, 3 modes, 4 other */
    struct rcase *tc = calloc(1, sizeof *tc);
    int have = 0;
    for (;;) {
        len = getline(&line, &cap, f);
        if (len >= 0) {
            lineno++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        }
        if (len < 0 || (!block && strncmp(line, "## ", 3) == 0)) {
            if (have) {
                ncases++;
                run_case(tc);
                free(tc->input.s);
            }
            if (len < 0) break;
            memset(tc, 0, sizeof *tc);
            have = 1;
            snprintf(tc->file, sizeof tc->file, "tests/data/responses/%s", fname);
            tc->line = lineno;
            snprintf(tc->name, sizeof tc->name, "%s", line + 3);
            continue;
        }
        if (strncmp(line, "```", 3) == 0) {
            if (block) { block = 0; continue; }
            if (!strcmp(line + 3, "http")) block = 1;
            else if (!strcmp(line + 3, "response")) {
                block = 2;
                if (have && tc->nresp == MAX_RESP) {
                    fail(tc, lineno, -1, "more than %d response blocks", MAX_RESP);
                    tc->syntax_errors++;
                } else if (have) {
                    tc->resp[tc->nresp].line = lineno;
                    tc->resp[tc->nresp++].nx = 0;
                }
            } else if (!strcmp(line + 3, "modes")) block = 3;
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
                for (long i = 0; i < times; i++) sb_put(&tc->input, one.s ? one.s : "", one.n);
                free(one.s);
            } else {
                sb_unescape(&tc->input, line, (size_t)len);
            }
        } else if (block == 2 && len && tc->nresp) {
            if (parse_expect(tc, &tc->resp[tc->nresp - 1], line, lineno) < 0) {
                fail(tc, lineno, -1, "cannot read this expectation: %s", line);
                tc->syntax_errors++;
            }
        } else if (block == 3) {
            for (char *w = strtok(line, " ,"); w; w = strtok(NULL, " ,")) {
                int found = 0;
                for (int m = 0; m < NMODES; m++)
                    if (!strcmp(w, mode_names[m])) { tc->modes |= 1u << m; found = 1; }
                if (!found) { fail(tc, lineno, -1, "unknown mode %s", w); tc->syntax_errors++; }
            }
        }
    }
    free(tc);
    free(line);
    fclose(f);
    return ncases;
}

IOX_TEST(responses, corpus)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/data/responses", iox_test_src_dir());
    char *names[64];
    int cases = 0;
    int nn = corpus_md_files(dir, names, 64);
    CU_ASSERT_FATAL(nn >= 0);
    failures = checked = 0;
    for (int i = 0; i < nn; i++) {
        cases += run_file(dir, names[i]);
        free(names[i]);
    }
    int stop_bad = stop_servers();
    if (getenv("IOX_TEST_VERBOSE"))
        printf("\n  response corpus: %d cases, %d runs, %d failed\n", cases, checked, failures);
    CU_ASSERT(cases >= 10);
    CU_ASSERT_EQUAL(failures, 0);
    CU_ASSERT_EQUAL(stop_bad, 0);
}

/* A case that stopped the test early (a FATAL assertion) leaves servers. */
static int suite_clean(void) { return stop_servers(); }

IOX_SUITE(responses, NULL, suite_clean);
