/* test_pg_wire.c — the PostgreSQL protocol pieces (parser, builders, auth,
 * conninfo) against a real server over a plain BLOCKING socket. This only
 * validates the pieces; the io_uring client comes later. The suite starts a
 * throwaway cluster (tests/pg_cluster.c) in its init and removes it after. */
#include "iox_test.h"
#include <ioxide/pg_parser.h>
#include "pg_auth.h"
#include "pg_cluster.h"
#include "pg_conninfo.h"
#include "pg_frontend.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct iox_pg_cluster cluster;

static int suite_init(void) { return iox_pg_cluster_start(&cluster) ? -1 : 0; }
static int suite_clean(void) { return iox_pg_cluster_stop(&cluster) ? -1 : 0; }

/* ---- a blocking client ---------------------------------------------------- */
#define RECV_CHUNK 4096   /* small reads, so wide rows span several */

struct wconn {
    int fd;
    char *rb; size_t rlen, roff, rcap;   /* read buffer: [roff, rlen) unparsed */
    struct iox_pg_parser ps;
    struct iox_pg_wbuf w;
    int reads;                           /* recv calls */
    int auth_seen;                       /* last auth request code before Ok */
    char err[512];                       /* server error text, if any */
};

static int wsend(struct wconn *c)
{
    size_t off = 0;
    while (off < c->w.len) {
        ssize_t n = send(c->fd, c->w.buf + off, c->w.len - off, MSG_NOSIGNAL);
        if (n < 0) { if (errno == EINTR) continue; return -errno; }
        off += (size_t)n;
    }
    c->w.len = 0;
    return 0;
}

/* Next message; views stay valid until the next call. */
static int wread(struct wconn *c, struct iox_pg_msg *m)
{
    for (;;) {
        size_t n;
        int r = iox_pg_parse(&c->ps, c->rb + c->roff, c->rlen - c->roff, m, &n);
        if (r == IOX_PG_MSG) { c->roff += n; return 0; }
        if (r < 0) {
            fprintf(stderr, "wire: %s (%s)\n", iox_pg_result_name(r), iox_pg_error_reason(r));
            return r;
        }
        /* NEED_MORE: compact, make room for n more, read. */
        memmove(c->rb, c->rb + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff; c->roff = 0;
        if (c->rcap - c->rlen < n || c->rcap - c->rlen < RECV_CHUNK) {
            size_t cap = c->rcap ? c->rcap : RECV_CHUNK;
            while (cap - c->rlen < n || cap - c->rlen < RECV_CHUNK) cap *= 2;
            char *nb = realloc(c->rb, cap);
            if (!nb) return -ENOMEM;
            c->rb = nb; c->rcap = cap;
        }
        ssize_t got = recv(c->fd, c->rb + c->rlen, RECV_CHUNK, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return got == 0 ? -ECONNRESET : -errno;
        c->reads++;
        c->rlen += (size_t)got;
    }
}

static void keep_error(struct wconn *c, const struct iox_pg_msg *m)
{
    const struct iox_pg_str *s = iox_pg_notice_field(m, 'M');
    snprintf(c->err, sizeof c->err, "%.*s", s ? (int)s->len : 0, s ? s->ptr : "");
}

static void wclose(struct wconn *c)
{
    if (c->fd >= 0) {
        c->w.len = 0;
        if (iox_pg_build_terminate(&c->w) == 0) wsend(c);
        close(c->fd);
    }
    c->fd = -1;
    free(c->rb); c->rb = NULL;
    iox_pg_wbuf_free(&c->w);
}

/* Connect per conninfo string and authenticate. Returns 0 when
 * ReadyForQuery arrived; -EACCES with c->err set when the server refused;
 * other negatives on local/protocol failures. */
static int wconnect(struct wconn *c, const char *conninfo)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->auth_seen = -1;
    iox_pg_parser_init(&c->ps, 0);
    iox_pg_wbuf_init_growable(&c->w, 1 << 22);
    c->rcap = RECV_CHUNK;
    if (!(c->rb = malloc(c->rcap))) return -ENOMEM;
    struct iox_pg_conninfo ci;
    char err[256];
    int r = iox_pg_conninfo_load(&ci, conninfo, err, sizeof err);
    if (r) { fprintf(stderr, "conninfo: %s\n", err); return r; }
    struct sockaddr_storage ss; socklen_t sl;
    if ((r = iox_pg_conninfo_sockaddr(&ci, &ss, &sl, err, sizeof err))) { fprintf(stderr, "%s\n", err); return r; }
    c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -errno;
    struct timeval tv = {10, 0};    /* a hung server fails the test, not the run */
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(c->fd, (struct sockaddr *)&ss, sl)) return -errno;
    if ((r = iox_pg_build_startup(&c->w, ci.user, ci.dbname, "ioxide-test", NULL)) || (r = wsend(c)))
        return r;
    struct iox_pg_scram scram;
    int sasl = 0;
    for (;;) {
        struct iox_pg_msg m;
        if ((r = wread(c, &m))) goto out;
        if (m.type == IOX_PG_ERROR_RESPONSE) { keep_error(c, &m); r = -EACCES; goto out; }
        if (m.type == IOX_PG_READY_FOR_QUERY) { r = 0; goto out; }
        if (m.type != IOX_PG_AUTHENTICATION) continue;   /* S, K, N */
        char out[512]; size_t on;
        switch (m.auth.code) {
        case IOX_PG_AUTH_OK: break;
        case IOX_PG_AUTH_CLEARTEXT:
            c->auth_seen = m.auth.code;
            r = iox_pg_build_password(&c->w, ci.password);
            break;
        case IOX_PG_AUTH_MD5: {
            char md5[36];
            c->auth_seen = m.auth.code;
            r = iox_pg_md5_password(md5, ci.user, ci.password, (const unsigned char *)m.auth.salt);
            if (!r) r = iox_pg_build_password(&c->w, md5);
            break;
        }
        case IOX_PG_AUTH_SASL:
            c->auth_seen = m.auth.code;
            if (!iox_pg_sasl_has_mech(&m, "SCRAM-SHA-256")) { r = -EPROTO; goto out; }
            if ((r = iox_pg_scram_init(&scram, NULL, ci.password, NULL))) goto out;
            sasl = 1;
            if (!(r = iox_pg_scram_client_first(&scram, out, sizeof out, &on)))
                r = iox_pg_build_sasl_initial(&c->w, "SCRAM-SHA-256", out, on);
            break;
        case IOX_PG_AUTH_SASL_CONTINUE:
            if (!sasl) { r = -EPROTO; goto out; }
            if (!(r = iox_pg_scram_client_final(&scram, m.auth.data, m.auth.data_len, out, sizeof out, &on)))
                r = iox_pg_build_sasl_response(&c->w, out, on);
            break;
        case IOX_PG_AUTH_SASL_FINAL:
            if (!sasl) { r = -EPROTO; goto out; }
            r = iox_pg_scram_verify_final(&scram, m.auth.data, m.auth.data_len);
            break;
        default: r = -EPROTONOSUPPORT; break;
        }
        if (r || (r = wsend(c))) goto out;
    }
out:
    if (sasl) iox_pg_scram_clear(&scram);
    return r;
}

static char *ci_tcp(char *buf, size_t n, const char *user, const char *pw)
{
    snprintf(buf, n, "host=127.0.0.1 port=%u user=%s password='%s' dbname=%s",
             cluster.port, user, pw, IOX_PG_DB);
    return buf;
}

/* Read to ReadyForQuery; collect the first column of every DataRow as
 * text lines into out, errors as "ERR:<code>" lines. */
static int collect(struct wconn *c, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = 0;
    for (;;) {
        struct iox_pg_msg m;
        int r = wread(c, &m);
        if (r) return r;
        char line[64] = "";
        if (m.type == IOX_PG_DATA_ROW) {
            struct iox_pg_str col[4];
            int nc = iox_pg_datarow_columns(&m, col, 4);
            if (nc < 1) return -EPROTO;
            if (col[0].len < 0) snprintf(line, sizeof line, "NULL\n");
            else snprintf(line, sizeof line, "%.*s\n", col[0].len > 40 ? 40 : col[0].len, col[0].ptr);
        } else if (m.type == IOX_PG_ERROR_RESPONSE) {
            const struct iox_pg_str *code = iox_pg_notice_field(&m, 'C');
            snprintf(line, sizeof line, "ERR:%.*s\n", code ? code->len : 0, code ? code->ptr : "");
        } else if (m.type == IOX_PG_READY_FOR_QUERY) {
            return 0;
        }
        size_t l = strlen(line);
        if (used + l < cap) { memcpy(out + used, line, l + 1); used += l; }
    }
}

/* ---- authentication ------------------------------------------------------ */
IOX_TEST(pg_wire, trust_unix_socket_simple_query)
{
    struct wconn c;
    char ci[256];
    snprintf(ci, sizeof ci, "host=%s port=%u user=postgres dbname=postgres", cluster.dir, cluster.port);
    CU_ASSERT_EQUAL_FATAL(wconnect(&c, ci), 0);
    CU_ASSERT_EQUAL(c.auth_seen, -1);            /* trust: straight to AuthenticationOk */
    CU_ASSERT_EQUAL(iox_pg_build_query(&c.w, "SELECT 42"), 0);
    CU_ASSERT_EQUAL(wsend(&c), 0);
    struct iox_pg_msg m;
    CU_ASSERT_EQUAL(wread(&c, &m), 0);
    CU_ASSERT_EQUAL(m.type, IOX_PG_ROW_DESCRIPTION);
    struct iox_pg_field_desc f; uint32_t it = 0;
    CU_ASSERT(iox_pg_rowdesc_next(&m, &it, &f));
    CU_ASSERT_EQUAL(f.type_oid, 23);
    CU_ASSERT_EQUAL(wread(&c, &m), 0);
    CU_ASSERT_EQUAL(m.type, IOX_PG_DATA_ROW);
    struct iox_pg_str col;
    it = 0;
    CU_ASSERT(iox_pg_datarow_next(&m, &it, &col) && col.len == 2 && memcmp(col.ptr, "42", 2) == 0);
    CU_ASSERT_EQUAL(wread(&c, &m), 0);
    CU_ASSERT_EQUAL(m.type, IOX_PG_COMMAND_COMPLETE);
    CU_ASSERT(m.complete.tag.ptr && strcmp(m.complete.tag.ptr, "SELECT 1") == 0);
    CU_ASSERT_EQUAL(wread(&c, &m), 0);
    CU_ASSERT_EQUAL(m.type, IOX_PG_READY_FOR_QUERY);
    CU_ASSERT_EQUAL(m.ready.status, 'I');
    wclose(&c);
}

IOX_TEST(pg_wire, md5_scram_cleartext)
{
    struct wconn c;
    char ci[256];
    CU_ASSERT_EQUAL(wconnect(&c, ci_tcp(ci, sizeof ci, "md5_user", IOX_PG_MD5_PW)), 0);
    CU_ASSERT_EQUAL(c.auth_seen, IOX_PG_AUTH_MD5);
    wclose(&c);
    CU_ASSERT_EQUAL(wconnect(&c, ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW)), 0);
    CU_ASSERT_EQUAL(c.auth_seen, IOX_PG_AUTH_SASL);
    wclose(&c);
    CU_ASSERT_EQUAL(wconnect(&c, ci_tcp(ci, sizeof ci, "clear_user", IOX_PG_CLEAR_PW)), 0);
    CU_ASSERT_EQUAL(c.auth_seen, IOX_PG_AUTH_CLEARTEXT);
    wclose(&c);
    /* libpq-style "localhost" maps to 127.0.0.1 */
    snprintf(ci, sizeof ci, "host=localhost port=%u user=scram_user password=%s dbname=%s",
             cluster.port, IOX_PG_SCRAM_PW, IOX_PG_DB);
    CU_ASSERT_EQUAL(wconnect(&c, ci), 0);
    wclose(&c);
}

IOX_TEST(pg_wire, wrong_password_surfaces_server_error)
{
    const char *users[] = {"scram_user", "md5_user", "clear_user"};
    for (int i = 0; i < 3; i++) {
        struct wconn c;
        char ci[256];
        CU_ASSERT_EQUAL(wconnect(&c, ci_tcp(ci, sizeof ci, users[i], "wrong")), -EACCES);
        CU_ASSERT(strstr(c.err, "password authentication failed") != NULL);
        if (!strstr(c.err, "password authentication failed")) fprintf(stderr, "got: %s\n", c.err);
        wclose(&c);
    }
}

/* ---- extended query ------------------------------------------------------ */
static int prepare_s1(struct wconn *c)
{
    char out[256];
    if (iox_pg_build_parse(&c->w, "s1", "SELECT $1::int + 1", 1, NULL) || iox_pg_build_sync(&c->w) ||
        wsend(c) || collect(c, out, sizeof out))
        return -1;
    return out[0] ? -1 : 0;
}

IOX_TEST(pg_wire, parse_bind_execute_sync)
{
    struct wconn c;
    char ci[256], out[256];
    CU_ASSERT_EQUAL_FATAL(wconnect(&c, ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW)), 0);
    CU_ASSERT_EQUAL_FATAL(prepare_s1(&c), 0);
    /* Describe statement: ParameterDescription (int4) + RowDescription */
    iox_pg_build_describe(&c.w, 'S', "s1");
    iox_pg_build_sync(&c.w);
    CU_ASSERT_EQUAL(wsend(&c), 0);
    struct iox_pg_msg m;
    CU_ASSERT_EQUAL(wread(&c, &m), 0);
    CU_ASSERT_EQUAL(m.type, IOX_PG_PARAM_DESCRIPTION);
    CU_ASSERT_EQUAL(m.list.count, 1);
    CU_ASSERT_EQUAL(iox_pg_paramdesc_oid(&m, 0), 23);
    CU_ASSERT_EQUAL(wread(&c, &m), 0);
    CU_ASSERT_EQUAL(m.type, IOX_PG_ROW_DESCRIPTION);
    CU_ASSERT_EQUAL(collect(&c, out, sizeof out), 0);

    const char *v41[] = {"41"};
    iox_pg_build_bind(&c.w, "", "s1", 1, v41, NULL, 0);
    iox_pg_build_execute(&c.w, "", 0);
    iox_pg_build_sync(&c.w);
    CU_ASSERT_EQUAL(wsend(&c), 0);
    const char want[] = {IOX_PG_BIND_COMPLETE, IOX_PG_DATA_ROW, IOX_PG_COMMAND_COMPLETE, IOX_PG_READY_FOR_QUERY};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(wread(&c, &m), 0);
        CU_ASSERT_EQUAL(m.type, want[i]);
        if (m.type == IOX_PG_DATA_ROW) {
            struct iox_pg_str col[1];
            CU_ASSERT_EQUAL(iox_pg_datarow_columns(&m, col, 1), 1);
            CU_ASSERT(col[0].len == 2 && memcmp(col[0].ptr, "42", 2) == 0);
        }
    }
    /* NULL parameter → NULL result */
    const char *vnull[] = {NULL};
    iox_pg_build_bind(&c.w, "", "s1", 1, vnull, NULL, 0);
    iox_pg_build_execute(&c.w, "", 0);
    iox_pg_build_sync(&c.w);
    CU_ASSERT_EQUAL(wsend(&c), 0);
    CU_ASSERT_EQUAL(collect(&c, out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "NULL\n");
    /* binary result format: int4 42 as 4 big-endian bytes */
    iox_pg_build_bind(&c.w, "", "s1", 1, v41, NULL, 1);
    iox_pg_build_execute(&c.w, "", 0);
    iox_pg_build_sync(&c.w);
    CU_ASSERT_EQUAL(wsend(&c), 0);
    CU_ASSERT_EQUAL(wread(&c, &m), 0);
    CU_ASSERT_EQUAL(m.type, IOX_PG_BIND_COMPLETE);
    CU_ASSERT_EQUAL(wread(&c, &m), 0);
    CU_ASSERT_EQUAL_FATAL(m.type, IOX_PG_DATA_ROW);
    struct iox_pg_str bcol[1];
    CU_ASSERT_EQUAL(iox_pg_datarow_columns(&m, bcol, 1), 1);
    CU_ASSERT(bcol[0].len == 4 && memcmp(bcol[0].ptr, "\0\0\0\x2a", 4) == 0);
    CU_ASSERT_EQUAL(collect(&c, out, sizeof out), 0);
    /* Close statement */
    iox_pg_build_close(&c.w, 'S', "s1");
    iox_pg_build_sync(&c.w);
    CU_ASSERT_EQUAL(wsend(&c), 0);
    CU_ASSERT_EQUAL(wread(&c, &m), 0);
    CU_ASSERT_EQUAL(m.type, IOX_PG_CLOSE_COMPLETE);
    CU_ASSERT_EQUAL(collect(&c, out, sizeof out), 0);
    wclose(&c);
}

IOX_TEST(pg_wire, null_and_wide_row)
{
    struct wconn c;
    char ci[256];
    CU_ASSERT_EQUAL_FATAL(wconnect(&c, ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW)), 0);
    iox_pg_build_query(&c.w, "SELECT NULL::text, repeat('x', 100000), ''");
    CU_ASSERT_EQUAL(wsend(&c), 0);
    int reads_before = c.reads;
    struct iox_pg_msg m;
    CU_ASSERT_EQUAL(wread(&c, &m), 0);
    CU_ASSERT_EQUAL(m.type, IOX_PG_ROW_DESCRIPTION);
    CU_ASSERT_EQUAL(m.list.count, 3);
    CU_ASSERT_EQUAL(wread(&c, &m), 0);
    CU_ASSERT_EQUAL_FATAL(m.type, IOX_PG_DATA_ROW);
    struct iox_pg_str col[3];
    CU_ASSERT_EQUAL(iox_pg_datarow_columns(&m, col, 3), 3);
    CU_ASSERT_EQUAL(col[0].len, -1);
    CU_ASSERT_PTR_NULL(col[0].ptr);
    CU_ASSERT_EQUAL(col[1].len, 100000);
    int allx = 1;
    for (int i = 0; i < col[1].len; i++) if (col[1].ptr[i] != 'x') { allx = 0; break; }
    CU_ASSERT(allx);
    CU_ASSERT_EQUAL(col[2].len, 0);
    CU_ASSERT(c.reads - reads_before >= 100000 / RECV_CHUNK);   /* spanned many reads */
    char out[64];
    CU_ASSERT_EQUAL(collect(&c, out, sizeof out), 0);
    wclose(&c);
}

IOX_TEST(pg_wire, error_mid_pipeline)
{
    struct wconn c;
    char ci[256], out[256];
    CU_ASSERT_EQUAL_FATAL(wconnect(&c, ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW)), 0);
    const char *qs[] = {"SELECT 1", "SELEC 2", "SELECT 3", "SELECT 1/0", "SELECT 5"};
    for (int i = 0; i < 5; i++) {
        iox_pg_build_parse(&c.w, "", qs[i], 0, NULL);
        iox_pg_build_bind(&c.w, "", "", 0, NULL, NULL, 0);
        iox_pg_build_execute(&c.w, "", 0);
        iox_pg_build_sync(&c.w);
    }
    CU_ASSERT_EQUAL(wsend(&c), 0);
    const char *want[] = {"1\n", "ERR:42601\n", "3\n", "ERR:22012\n", "5\n"};
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(collect(&c, out, sizeof out), 0);
        CU_ASSERT_STRING_EQUAL(out, want[i]);
    }
    /* simple-query form: the error ends that Query message; the next runs */
    iox_pg_build_query(&c.w, "SELECT 6; SELEC 7; SELECT 8");
    iox_pg_build_query(&c.w, "SELECT 9");
    CU_ASSERT_EQUAL(wsend(&c), 0);
    CU_ASSERT_EQUAL(collect(&c, out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "ERR:42601\n");   /* parse error: nothing of it runs */
    CU_ASSERT_EQUAL(collect(&c, out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "9\n");
    wclose(&c);
}

IOX_TEST(pg_wire, thousand_pipelined_queries)
{
    struct wconn c;
    char ci[256];
    CU_ASSERT_EQUAL_FATAL(wconnect(&c, ci_tcp(ci, sizeof ci, "md5_user", IOX_PG_MD5_PW)), 0);
    CU_ASSERT_EQUAL_FATAL(prepare_s1(&c), 0);
    for (int i = 0; i < 1000; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        const char *vals[] = {v};
        CU_ASSERT_EQUAL_FATAL(iox_pg_build_bind(&c.w, "", "s1", 1, vals, NULL, 0), 0);
        iox_pg_build_execute(&c.w, "", 0);
        iox_pg_build_sync(&c.w);
    }
    CU_ASSERT_EQUAL(wsend(&c), 0);
    int ok = 0;
    for (int i = 0; i < 1000; i++) {
        char out[64], want[16];
        if (collect(&c, out, sizeof out)) break;
        snprintf(want, sizeof want, "%d\n", i + 1);
        ok += strcmp(out, want) == 0;
    }
    CU_ASSERT_EQUAL(ok, 1000);
    wclose(&c);
}

/* The server kills our backend: the client sees an ErrorResponse (FATAL,
 * 57P01) or a closed socket, never a parser error. */
IOX_TEST(pg_wire, terminated_backend)
{
    struct wconn c;
    char ci[256], out[128];
    CU_ASSERT_EQUAL_FATAL(wconnect(&c, ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW)), 0);
    CU_ASSERT_EQUAL(iox_pg_cluster_psql(&cluster,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'scram_user'",
        out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "1");
    struct iox_pg_msg m;
    int r = wread(&c, &m);
    CU_ASSERT(r == -ECONNRESET || (r == 0 && m.type == IOX_PG_ERROR_RESPONSE));
    if (r == 0) {
        const struct iox_pg_str *code = iox_pg_notice_field(&m, 'C');
        CU_ASSERT(code && strcmp(code->ptr, "57P01") == 0);
        CU_ASSERT_EQUAL(wread(&c, &m), -ECONNRESET);
    }
    wclose(&c);
}

IOX_SUITE(pg_wire, suite_init, suite_clean);
