/* test_pg_ring.c — the io_uring PostgreSQL client (ioxide/pg.h) against a real
 * server: a reactor on a REAL ring runs on the test thread
 * (iox_reactor_open_here / iox_reactor_run_until), a pool is opened on it,
 * and the cases drive it until their predicate holds. The suite starts a
 * throwaway cluster (tests/pg_cluster.c) in its init. */
#include "iox_test.h"
#include <ioxide/pg.h>
#include <ioxide/reactor.h>
#include "pg_cluster.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static struct iox_pg_cluster cluster;

static int suite_init(void) { return iox_pg_cluster_start(&cluster) ? -1 : 0; }
static int suite_clean(void) { return iox_pg_cluster_stop(&cluster) ? -1 : 0; }

/* ---- rig: a reactor on this thread + one pool ---- */
struct rig {
    struct iox_reactor r;
    struct iox_server_config cfg;
    struct iox_pg_pool *pool;
};

static struct rig *rig_open(const char *conninfo, unsigned size, unsigned pipeline, unsigned queue)
{
    struct rig *g = calloc(1, sizeof *g);
    g->cfg.ring.sq_entries = 512;
    g->cfg.ring.buf_count = 16;
    g->cfg.ring.buf_size = 4096;
    g->cfg.shutdown_grace_ms = 1000;
    char why[512] = "";
    if (iox_reactor_open_here(&g->r, &g->cfg, why, sizeof why) < 0) {
        fprintf(stderr, "reactor: %s\n", why);
        free(g);
        return NULL;
    }
    /* min_size = size: these cases count on every session (sizing by load
     * has its own case in pg_sim). */
    struct iox_pg_pool_config pc = {.conninfo = conninfo, .size = size, .min_size = size, .pipeline_max = pipeline,
                                    .queue_max = queue};
    char err[256] = "";
    if (iox_pg_pool_open(&g->r, &pc, &g->pool, err, sizeof err) < 0) {
        fprintf(stderr, "pool: %s\n", err);
        iox_reactor_close_here(&g->r);
        free(g);
        return NULL;
    }
    return g;
}

static void rig_close(struct rig *g)
{
    if (!g) return;
    iox_pg_pool_close(g->pool);
    iox_reactor_close_here(&g->r);
    free(g);
}

struct want_up { struct rig *g; unsigned n; };
static int pred_up(void *arg)
{
    struct want_up *w = arg;
    return iox_pg_pool_up(w->g->pool) >= w->n;
}
static int wait_up(struct rig *g, unsigned n, uint32_t ms)
{
    struct want_up w = {g, n};
    return iox_reactor_run_until(&g->r, pred_up, &w, ms);
}

static char *ci_tcp(char *buf, size_t n, const char *user, const char *pw)
{
    snprintf(buf, n, "host=127.0.0.1 port=%u user=%s password='%s' dbname=%s application_name=ioxide-ring-test",
             cluster.port, user, pw, IOX_PG_DB);
    return buf;
}

/* ---- result collection ---- */
struct outcome {
    int done, status, err, nrows, ncols;
    char sqlstate[6];
    char message[256];
    char v0[64], v1[64];      /* first row, first two cells (truncated), "NULL" for NULL */
    int len0, len1;
    int seq;                  /* order in which callbacks ran */
};
static int seq_counter;

static void copy_cell(char *dst, int *len, const struct iox_pg_res *res, uint32_t col)
{
    if (res->nrows == 0 || col >= res->ncols) { dst[0] = 0; *len = -2; return; }
    const struct iox_pg_str *s = iox_pg_cell(res, 0, col);
    *len = s->len;
    if (s->len < 0) { strcpy(dst, "NULL"); return; }
    snprintf(dst, 64, "%.*s", s->len > 63 ? 63 : s->len, s->ptr);
}

static void on_outcome(void *user, const struct iox_pg_res *res)
{
    struct outcome *o = user;
    o->done++;
    o->status = res->status;
    o->err = res->err;
    o->nrows = (int)res->nrows;
    o->ncols = (int)res->ncols;
    snprintf(o->sqlstate, sizeof o->sqlstate, "%s", res->sqlstate);
    snprintf(o->message, sizeof o->message, "%s", res->message);
    copy_cell(o->v0, &o->len0, res, 0);
    copy_cell(o->v1, &o->len1, res, 1);
    o->seq = seq_counter++;
}

struct all_done { struct outcome *o; int n; };
static int pred_done(void *arg)
{
    struct all_done *a = arg;
    for (int i = 0; i < a->n; i++) if (!a->o[i].done) return 0;
    return 1;
}
static int wait_done(struct rig *g, struct outcome *o, int n, uint32_t ms)
{
    struct all_done a = {o, n};
    return iox_reactor_run_until(&g->r, pred_done, &a, ms);
}

static int simple_42(struct rig *g)
{
    struct outcome o = {0};
    if (iox_pg_query_simple(g->pool, "SELECT 42", on_outcome, &o)) return -1;
    if (wait_done(g, &o, 1, 5000)) return -2;
    return o.status == IOX_PG_OK && !strcmp(o.v0, "42") ? 0 : -3;
}

/* ---- authentication ---- */
IOX_TEST(pg_ring, auth_methods_connect)
{
    char ci[400];
    const char *cis[4];
    char a[400], b[400], c[400];
    snprintf(ci, sizeof ci, "host=%s port=%u user=postgres dbname=postgres", cluster.dir, cluster.port);
    cis[0] = ci;                                                   /* trust, Unix socket */
    cis[1] = ci_tcp(a, sizeof a, "md5_user", IOX_PG_MD5_PW);       /* md5 */
    cis[2] = ci_tcp(b, sizeof b, "scram_user", IOX_PG_SCRAM_PW);   /* scram-sha-256 */
    cis[3] = ci_tcp(c, sizeof c, "clear_user", IOX_PG_CLEAR_PW);   /* password */
    for (int i = 0; i < 4; i++) {
        struct rig *g = rig_open(cis[i], 2, 8, 16);
        CU_ASSERT_PTR_NOT_NULL_FATAL(g);
        int up = wait_up(g, 2, 5000);
        if (up) fprintf(stderr, "auth case %d: %s\n", i, iox_pg_pool_last_error(g->pool));
        CU_ASSERT_EQUAL(up, 0);
        CU_ASSERT_EQUAL(simple_42(g), 0);
        rig_close(g);
    }
}

/* options, client_encoding and the PGDATESTYLE/PGTZ/PGGEQO environment go
 * in the StartupMessage (as libpq sends them): the session has them. */
IOX_TEST(pg_ring, startup_parameters_reach_the_server)
{
    char ci[600], base[400];
    snprintf(ci, sizeof ci, "%s options='-c search_path=ioxide_sp -c statement_timeout=4321' client_encoding=LATIN1",
             ci_tcp(base, sizeof base, "scram_user", IOX_PG_SCRAM_PW));
    setenv("PGDATESTYLE", "SQL, DMY", 1);
    setenv("PGTZ", "Asia/Tokyo", 1);
    setenv("PGGEQO", "off", 1);
    struct rig *g = rig_open(ci, 1, 8, 16);     /* the pool reads the environment here */
    unsetenv("PGDATESTYLE");
    unsetenv("PGTZ");
    unsetenv("PGGEQO");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(wait_up(g, 1, 5000), 0);
    struct outcome o[2] = {{0}};
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT current_setting('search_path'), "
                                        "current_setting('statement_timeout')", on_outcome, &o[0]), 0);
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT concat_ws('|', current_setting('client_encoding'), "
                                        "current_setting('DateStyle'), current_setting('geqo')), "
                                        "current_setting('TimeZone')", on_outcome, &o[1]), 0);
    CU_ASSERT_EQUAL_FATAL(wait_done(g, o, 2, 5000), 0);
    CU_ASSERT_STRING_EQUAL(o[0].v0, "ioxide_sp");
    CU_ASSERT_STRING_EQUAL(o[0].v1, "4321ms");
    CU_ASSERT_STRING_EQUAL(o[1].v0, "LATIN1|SQL, DMY|off");
    CU_ASSERT_STRING_EQUAL(o[1].v1, "Asia/Tokyo");
    rig_close(g);
}

IOX_TEST(pg_ring, wrong_password_is_a_clear_error)
{
    char ci[400];
    struct rig *g = rig_open(ci_tcp(ci, sizeof ci, "scram_user", "not-the-password"), 1, 8, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(iox_reactor_run_until(&g->r, NULL, NULL, 500), -ETIMEDOUT);
    CU_ASSERT_EQUAL(iox_pg_pool_up(g->pool), 0);
    const char *e = iox_pg_pool_last_error(g->pool);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "authentication failed for user \"scram_user\": password authentication failed for user \"scram_user\""));
    struct outcome o = {0};
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT 1", on_outcome, &o), -ENOTCONN);
    rig_close(g);
    /* md5 too */
    g = rig_open(ci_tcp(ci, sizeof ci, "md5_user", "nope"), 1, 8, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    iox_reactor_run_until(&g->r, NULL, NULL, 300);
    CU_ASSERT_PTR_NOT_NULL(strstr(iox_pg_pool_last_error(g->pool), "authentication failed for user \"md5_user\""));
    rig_close(g);
}

struct want_err { struct rig *g; const char *needle; };
static int pred_err(void *arg)
{
    struct want_err *w = arg;
    return strstr(iox_pg_pool_last_error(w->g->pool), w->needle) != NULL;
}

/* No password in the conninfo: it comes from the password file (libpq's
 * format, passfile=), for md5 and scram-sha-256 roles alike; the same file
 * readable by others is ignored, as libpq does, and the server refuses. */
IOX_TEST(pg_ring, password_from_pgpass_authenticates)
{
    char path[200], ci[600];
    snprintf(path, sizeof path, "%s/test.pgpass", cluster.dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "# test file\n127.0.0.1:%u:%s:md5_user:%s\n127.0.0.1:*:*:scram_user:%s\n*:*:*:other:x\n",
            cluster.port, IOX_PG_DB, IOX_PG_MD5_PW, IOX_PG_SCRAM_PW);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(chmod(path, 0600), 0);
    const char *users[] = {"md5_user", "scram_user"};
    for (int i = 0; i < 2; i++) {
        snprintf(ci, sizeof ci, "host=127.0.0.1 port=%u user=%s dbname=%s passfile=%s", cluster.port, users[i],
                 IOX_PG_DB, path);
        struct rig *g = rig_open(ci, 1, 8, 16);
        CU_ASSERT_PTR_NOT_NULL_FATAL(g);
        int up = wait_up(g, 1, 5000);
        if (up) fprintf(stderr, "pgpass %s: %s\n", users[i], iox_pg_pool_last_error(g->pool));
        CU_ASSERT_EQUAL(up, 0);
        CU_ASSERT_EQUAL(simple_42(g), 0);
        rig_close(g);
    }
    /* group-readable: ignored (a warning is logged), so no password is sent */
    CU_ASSERT_EQUAL_FATAL(chmod(path, 0640), 0);
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%u user=scram_user dbname=%s passfile=%s", cluster.port,
             IOX_PG_DB, path);
    struct rig *g = rig_open(ci, 1, 8, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    iox_reactor_run_until(&g->r, NULL, NULL, 500);
    CU_ASSERT_EQUAL(iox_pg_pool_up(g->pool), 0);
    const char *e = iox_pg_pool_last_error(g->pool);
    if (!strstr(e, "scram_user")) fprintf(stderr, "pgpass 0640: %s\n", e);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "scram_user"));
    rig_close(g);
    /* a wrong password from the file: the error says where it came from, as libpq's does */
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("*:*:*:scram_user:not-the-password\n", f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(chmod(path, 0600), 0);
    g = rig_open(ci, 1, 8, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    struct want_err w = {g, "(the password was retrieved from the password file)"};
    CU_ASSERT_EQUAL(iox_reactor_run_until(&g->r, pred_err, &w, 5000), 0);
    CU_ASSERT_EQUAL(iox_pg_pool_up(g->pool), 0);
    rig_close(g);
    unlink(path);
}

/* connect_timeout (libpq's whole seconds) bounds connect + authentication
 * on the ring: a server that accepts the TCP connection (the kernel does,
 * from the listen backlog) but never answers the StartupMessage fails the
 * attempt with a clear reason, and the slot keeps retrying. */
IOX_TEST(pg_ring, connect_timeout_bounds_a_silent_server)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 16) == 0 &&
                    getsockname(lfd, (struct sockaddr *)&a, &al) == 0);
    char ci[300];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%u user=u dbname=d password=p connect_timeout=1",
             ntohs(a.sin_port));
    struct rig *g = rig_open(ci, 1, 8, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    struct want_err w = {g, "no session within 1000 ms (connect_timeout)"};
    int rc = iox_reactor_run_until(&g->r, pred_err, &w, 10000);
    if (rc) fprintf(stderr, "silent server: last error \"%s\"\n", iox_pg_pool_last_error(g->pool));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(iox_pg_pool_up(g->pool), 0);
    rig_close(g);
    close(lfd);
}

/* ---- queries ---- */
IOX_TEST(pg_ring, prepared_statement_with_parameters)
{
    static struct iox_pg_stmt add, nul, div;
    static int init;
    if (!init) {
        CU_ASSERT_EQUAL_FATAL(iox_pg_stmt_init(&add, "SELECT $1::int + $2::int, $3::text", 3), 0);
        CU_ASSERT_EQUAL_FATAL(iox_pg_stmt_init(&nul, "SELECT $1::text IS NULL, $1::text", 1), 0);
        CU_ASSERT_EQUAL_FATAL(iox_pg_stmt_init(&div, "SELECT 10 / $1::int", 1), 0);
        init = 1;
    }
    char ci[400];
    struct rig *g = rig_open(ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW), 1, 64, 64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(wait_up(g, 1, 5000), 0);
    struct outcome o[6];
    memset(o, 0, sizeof o);
    const char *v1[] = {"2", "3", "abc"}, *v2[] = {"40", "2", "it's \"quoted\""};
    const char *vn[] = {NULL}, *vz[] = {"0"}, *vo[] = {"5"};
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &add, 3, v1, on_outcome, &o[0]), 0);
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &add, 3, v2, on_outcome, &o[1]), 0);   /* Parse not repeated */
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &nul, 1, vn, on_outcome, &o[2]), 0);
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &div, 1, vz, on_outcome, &o[3]), 0);   /* execution error */
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &div, 1, vo, on_outcome, &o[4]), 0);   /* statement still there */
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &add, 2, v1, on_outcome, &o[5]), -EINVAL);
    o[5].done = 1;
    CU_ASSERT_EQUAL_FATAL(wait_done(g, o, 6, 5000), 0);
    CU_ASSERT(o[0].status == IOX_PG_OK && !strcmp(o[0].v0, "5") && !strcmp(o[0].v1, "abc"));
    CU_ASSERT(o[1].status == IOX_PG_OK && !strcmp(o[1].v0, "42") && !strcmp(o[1].v1, "it's \"quoted\""));
    CU_ASSERT(o[2].status == IOX_PG_OK && !strcmp(o[2].v0, "t") && o[2].len1 == -1);
    CU_ASSERT_EQUAL(o[3].status, IOX_PG_ERROR);
    CU_ASSERT_STRING_EQUAL(o[3].sqlstate, "22012");
    CU_ASSERT_STRING_EQUAL(o[3].message, "division by zero");
    CU_ASSERT(o[4].status == IOX_PG_OK && !strcmp(o[4].v0, "2"));
    CU_ASSERT_EQUAL(iox_pg_pool_sessions(g->pool), 1);
    rig_close(g);
}

IOX_TEST(pg_ring, thousand_pipelined_in_order)
{
    static struct iox_pg_stmt echo;
    static int init;
    if (!init) { CU_ASSERT_EQUAL_FATAL(iox_pg_stmt_init(&echo, "SELECT $1::int", 1), 0); init = 1; }
    char ci[400];
    enum { N = 1000 };
    struct rig *g = rig_open(ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW), 1, N, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(wait_up(g, 1, 5000), 0);
    struct outcome *o = calloc(N, sizeof *o);
    seq_counter = 0;
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        const char *vals[] = {v};
        CU_ASSERT_EQUAL_FATAL(iox_pg_query(g->pool, &echo, 1, vals, on_outcome, &o[i]), 0);
    }
    CU_ASSERT_EQUAL_FATAL(wait_done(g, o, N, 10000), 0);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        if (o[i].status != IOX_PG_OK || strcmp(o[i].v0, v) || o[i].seq != i) bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(iox_pg_pool_sessions(g->pool), 1);
    free(o);
    rig_close(g);
}

IOX_TEST(pg_ring, error_mid_pipeline_fails_only_its_query)
{
    static struct iox_pg_stmt bad, good;
    static int init;
    if (!init) {
        CU_ASSERT_EQUAL_FATAL(iox_pg_stmt_init(&bad, "SELEC 1", 0), 0);
        CU_ASSERT_EQUAL_FATAL(iox_pg_stmt_init(&good, "SELECT 7", 0), 0);
        init = 1;
    }
    char ci[400];
    struct rig *g = rig_open(ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW), 1, 64, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(wait_up(g, 1, 5000), 0);
    struct outcome o[7];
    memset(o, 0, sizeof o);
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &good, 0, NULL, on_outcome, &o[0]), 0);
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &bad, 0, NULL, on_outcome, &o[1]), 0);
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &good, 0, NULL, on_outcome, &o[2]), 0);
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT 1; SELEC 2", on_outcome, &o[3]), 0);
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT 'after'", on_outcome, &o[4]), 0);
    CU_ASSERT_EQUAL_FATAL(wait_done(g, o, 5, 5000), 0);
    CU_ASSERT(o[0].status == IOX_PG_OK && !strcmp(o[0].v0, "7"));
    CU_ASSERT_EQUAL(o[1].status, IOX_PG_ERROR);
    CU_ASSERT_STRING_EQUAL(o[1].sqlstate, "42601");
    CU_ASSERT_PTR_NOT_NULL(strstr(o[1].message, "syntax error"));
    CU_ASSERT(o[2].status == IOX_PG_OK && !strcmp(o[2].v0, "7"));
    CU_ASSERT_EQUAL(o[3].status, IOX_PG_ERROR);
    CU_ASSERT(o[4].status == IOX_PG_OK && !strcmp(o[4].v0, "after"));
    /* The failed statement is parsed again next time (and fails again). */
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &bad, 0, NULL, on_outcome, &o[5]), 0);
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &good, 0, NULL, on_outcome, &o[6]), 0);
    CU_ASSERT_EQUAL_FATAL(wait_done(g, o, 7, 5000), 0);
    CU_ASSERT_STRING_EQUAL(o[5].sqlstate, "42601");
    CU_ASSERT(o[6].status == IOX_PG_OK && !strcmp(o[6].v0, "7"));
    CU_ASSERT_EQUAL(iox_pg_pool_sessions(g->pool), 1);
    rig_close(g);
}

struct wide { int done, status, nrows, ncols, nulls, xs_ok, z_ok; };
static void on_wide(void *user, const struct iox_pg_res *res)
{
    struct wide *w = user;
    w->done = 1;
    w->status = res->status;
    w->nrows = (int)res->nrows;
    w->ncols = (int)res->ncols;
    for (uint32_t r = 0; r < res->nrows; r++)
        for (uint32_t c = 0; c < res->ncols; c++) {
            const struct iox_pg_str *s = iox_pg_cell(res, r, c);
            if (s->len < 0) { w->nulls++; continue; }
            int all = 1;
            for (int i = 0; i < s->len; i++) if (s->ptr[i] != 'x' && s->ptr[i] != 'z') { all = 0; break; }
            if (all && s->len == 100000) w->xs_ok++;
            if (all && s->len == 5000) w->z_ok++;
        }
}
static int pred_wide(void *arg)
{
    struct wide *w = arg;
    for (int i = 0; i < 3; i++) if (!w[i].done) return 0;
    return 1;
}

IOX_TEST(pg_ring, nulls_and_wide_rows)
{
    static struct iox_pg_stmt widest;
    static int init;
    if (!init) { CU_ASSERT_EQUAL_FATAL(iox_pg_stmt_init(&widest, "SELECT NULL::text, repeat('x', $1::int), 'y'", 1), 0); init = 1; }
    char ci[400];
    struct rig *g = rig_open(ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW), 1, 64, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(wait_up(g, 1, 5000), 0);
    struct wide w[3];
    memset(w, 0, sizeof w);
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &widest, 1, (const char *const[]){"100000"}, on_wide, &w[0]), 0);
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool,
        "SELECT g, CASE WHEN g % 2 = 0 THEN NULL ELSE repeat('z', 5000) END FROM generate_series(1, 50) g",
        on_wide, &w[1]), 0);
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT repeat('x', 100000), NULL", on_wide, &w[2]), 0);
    CU_ASSERT_EQUAL_FATAL(iox_reactor_run_until(&g->r, pred_wide, w, 5000), 0);
    CU_ASSERT(w[0].status == IOX_PG_OK && w[0].nrows == 1 && w[0].ncols == 3 && w[0].nulls == 1 && w[0].xs_ok == 1);
    CU_ASSERT(w[1].status == IOX_PG_OK && w[1].nrows == 50 && w[1].ncols == 2 && w[1].nulls == 25 && w[1].z_ok == 25);
    CU_ASSERT(w[2].status == IOX_PG_OK && w[2].nrows == 1 && w[2].nulls == 1 && w[2].xs_ok == 1);
    rig_close(g);
}

/* ---- losing connections ---- */
IOX_TEST(pg_ring, terminate_backend_fails_inflight_then_reconnects)
{
    char ci[400];
    struct rig *g = rig_open(ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW), 2, 64, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(wait_up(g, 2, 5000), 0);
    struct outcome o[4];
    memset(o, 0, sizeof o);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT pg_sleep(5)", on_outcome, &o[i]), 0);
    iox_reactor_run_until(&g->r, NULL, NULL, 200);     /* the queries are on the server */
    char out[64];
    CU_ASSERT_EQUAL(iox_pg_cluster_psql(&cluster,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'ioxide-ring-test'",
        out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "2");
    CU_ASSERT_EQUAL_FATAL(wait_done(g, o, 4, 3000), 0);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(o[i].status, IOX_PG_FAILED);
        CU_ASSERT_PTR_NOT_NULL(strstr(o[i].message, "terminating connection due to administrator command"));
    }
    CU_ASSERT_EQUAL(wait_up(g, 2, 3000), 0);
    CU_ASSERT_EQUAL(iox_pg_pool_sessions(g->pool), 4);
    CU_ASSERT_EQUAL(simple_42(g), 0);
    rig_close(g);
}

struct load {
    struct rig *g;
    int inflight, ok, failed, rejected, ok_after;
    volatile int restarted;     /* set by the restart thread */
    int restart_rc;
};
static void on_load(void *user, const struct iox_pg_res *res)
{
    struct load *l = user;
    l->inflight--;
    if (res->status == IOX_PG_OK) { l->ok++; if (__atomic_load_n(&l->restarted, __ATOMIC_ACQUIRE)) l->ok_after++; }
    else l->failed++;
}
static int pred_load(void *arg)
{
    struct load *l = arg;
    static struct iox_pg_stmt s;
    static int init;
    if (!init) { iox_pg_stmt_init(&s, "SELECT 1", 0); init = 1; }
    while (l->inflight < 20) {
        int rc = iox_pg_query(l->g->pool, &s, 0, NULL, on_load, l);
        if (rc) { l->rejected++; break; }
        l->inflight++;
    }
    /* Done when queries succeed again AND every pool connection is back
     * (one may still be in its reconnect backoff when the first is up). */
    return __atomic_load_n(&l->restarted, __ATOMIC_ACQUIRE) && l->ok_after >= 200 &&
           iox_pg_pool_up(l->g->pool) == 2;
}
static void *restart_thread(void *arg)
{
    struct load *l = arg;
    struct timespec ts = {0, 300 * 1000000};
    nanosleep(&ts, NULL);
    l->restart_rc = iox_pg_cluster_restart(&cluster);
    __atomic_store_n(&l->restarted, 1, __ATOMIC_RELEASE);
    return NULL;
}

IOX_TEST(pg_ring, restart_under_load_recovers)
{
    char ci[400];
    struct rig *g = rig_open(ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW), 2, 64, 64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(wait_up(g, 2, 5000), 0);
    struct load l = {.g = g};
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, restart_thread, &l), 0);
    int rc = iox_reactor_run_until(&g->r, pred_load, &l, 20000);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(l.restart_rc, 0);
    CU_ASSERT_EQUAL(rc, 0);
    fprintf(stderr, "[restart: ok %d failed %d rejected %d ok_after %d sessions %llu] ", l.ok, l.failed, l.rejected,
            l.ok_after, (unsigned long long)iox_pg_pool_sessions(g->pool));
    CU_ASSERT(l.failed + l.rejected > 0);
    CU_ASSERT(l.ok_after >= 200);
    CU_ASSERT(iox_pg_pool_sessions(g->pool) >= 4);
    /* drain what is still in flight before closing */
    rig_close(g);
}

IOX_TEST(pg_ring, database_absent_fails_fast_and_closes)
{
    /* Nothing listens there: the pool opens anyway, keeps retrying, and
     * queries are refused at once. */
    struct rig *g = rig_open("host=127.0.0.1 port=1 user=x password=y dbname=z", 2, 8, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(iox_reactor_run_until(&g->r, NULL, NULL, 400), -ETIMEDOUT);
    CU_ASSERT_EQUAL(iox_pg_pool_up(g->pool), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(iox_pg_pool_last_error(g->pool), "Connection refused"));
    struct outcome o = {0};
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT 1", on_outcome, &o), -ENOTCONN);
    rig_close(g);
}

static uint64_t ring_counter(struct rig *g, const char *name)
{
    struct iox_counter c[64];
    unsigned n = iox_reactor_counters(&g->r, c, 64);
    for (unsigned i = 0; i < n; i++)
        if (!strcmp(c[i].name, name)) return c[i].value;
    return ~0ull;
}

static int backend_pid(struct rig *g)
{
    struct outcome o = {0};
    if (iox_pg_query_simple(g->pool, "SELECT pg_backend_pid()", on_outcome, &o)) return -1;
    if (wait_done(g, &o, 1, 5000) || o.status != IOX_PG_OK) return -2;
    return atoi(o.v0);
}

/* A query past query_timeout_ms is answered -ETIMEDOUT at once and
 * cancelled with a CancelRequest on a fresh connection (issue 16 part 3):
 * the SAME backend then answers the queries pipelined behind it and the
 * next ones, and the server is no longer sleeping. */
static void cancel_case(const char *ci)
{
    struct rig *g = rig_open(ci, 1, 8, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(wait_up(g, 1, 5000), 0);
    int pid = backend_pid(g);
    CU_ASSERT(pid > 0);
    static struct iox_pg_stmt three;
    static int three_init;
    if (!three_init) { CU_ASSERT_EQUAL_FATAL(iox_pg_stmt_init(&three, "SELECT $1::int + 1", 1), 0); three_init = 1; }
    struct outcome o[3];
    memset(o, 0, sizeof o);
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT pg_sleep(5)", on_outcome, &o[0]), 0);
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT 2", on_outcome, &o[1]), 0);   /* behind it */
    CU_ASSERT_EQUAL(iox_pg_query(g->pool, &three, 1, (const char *const[]){"2"}, on_outcome, &o[2]), 0);
    /* pg_sleep(5) is answered as timed out well before its 5 s. */
    CU_ASSERT_EQUAL_FATAL(wait_done(g, o, 1, 1000), 0);
    CU_ASSERT(o[0].status == IOX_PG_FAILED && o[0].err == -ETIMEDOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(o[0].message, "query timed out after 300 ms"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o[0].message, "cancelled"));
    CU_ASSERT_EQUAL_FATAL(wait_done(g, o, 3, 2000), 0);
    CU_ASSERT(o[1].status == IOX_PG_OK && !strcmp(o[1].v0, "2"));
    CU_ASSERT(o[2].status == IOX_PG_OK && !strcmp(o[2].v0, "3"));
    CU_ASSERT_EQUAL(backend_pid(g), pid);                 /* the same session */
    CU_ASSERT_EQUAL(iox_pg_pool_sessions(g->pool), 1);
    CU_ASSERT_EQUAL(ring_counter(g, "ioxide_pg_cancels_total"), 1);
    CU_ASSERT_EQUAL(ring_counter(g, "ioxide_pg_cancel_failures_total"), 0);
    char sql[200], out[64];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND query LIKE '%%pg_sleep%%' "
             "AND state = 'active'", pid);
    CU_ASSERT_EQUAL(iox_pg_cluster_psql(&cluster, sql, out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "0");                     /* the sleep is gone */
    rig_close(g);
}

IOX_TEST(pg_ring, query_timeout_cancels_and_the_session_survives)
{
    char ci[400], ci2[460];
    snprintf(ci2, sizeof ci2, "%s query_timeout_ms=300", ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW));
    cancel_case(ci2);
}

/* The same over the Unix socket: the cancel connection goes there too. */
IOX_TEST(pg_ring, query_timeout_cancels_over_the_unix_socket)
{
    char ci[400];
    snprintf(ci, sizeof ci, "host=%s port=%u user=postgres dbname=postgres application_name=ioxide-ring-test "
             "query_timeout_ms=300", cluster.dir, cluster.port);
    cancel_case(ci);
}

/* NOTIFY from another session (psql) and from the pool's own session
 * reach the notification callback; a RAISE NOTICE reaches the notice
 * callback (issue 16 part 5). */
struct async_log {
    int notifies, notices;
    char channel[64], payload[64];
    int32_t pid[4];
    char severity[16], sqlstate[6], message[64];
};
static void on_notify_cb(void *arg, const struct iox_pg_notification *n)
{
    struct async_log *l = arg;
    if (l->notifies < 4) l->pid[l->notifies] = n->pid;
    l->notifies++;
    snprintf(l->channel, sizeof l->channel, "%s", n->channel);
    snprintf(l->payload, sizeof l->payload, "%s", n->payload);
}
static void on_notice_cb(void *arg, const struct iox_pg_notice *n)
{
    struct async_log *l = arg;
    l->notices++;
    snprintf(l->severity, sizeof l->severity, "%s", n->severity);
    snprintf(l->sqlstate, sizeof l->sqlstate, "%s", n->sqlstate);
    snprintf(l->message, sizeof l->message, "%s", n->message);
}
static int pred_notifies(void *arg) { return ((struct async_log *)arg)->notifies >= 1; }
struct notify_wait { struct async_log *l; int before; };
static int pred_notifies_more(void *arg)
{
    struct notify_wait *w = arg;
    return w->l->notifies > w->before;
}
struct want_sessions { struct rig *g; uint64_t n; };
static int pred_sessions(void *arg)
{
    struct want_sessions *w = arg;
    return iox_pg_pool_sessions(w->g->pool) >= w->n && iox_pg_pool_up(w->g->pool) == 2;
}

IOX_TEST(pg_ring, notifications_and_notices_reach_their_callbacks)
{
    char ci[400];
    struct rig *g = rig_open(ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW), 1, 8, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(wait_up(g, 1, 5000), 0);
    struct async_log l;
    memset(&l, 0, sizeof l);
    iox_pg_on_notify(g->pool, on_notify_cb, &l);
    iox_pg_on_notice(g->pool, on_notice_cb, &l);
    int pid = backend_pid(g);
    struct outcome o = {0};
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "LISTEN ioxide_ch", on_outcome, &o), 0);
    CU_ASSERT_EQUAL_FATAL(wait_done(g, &o, 1, 5000), 0);
    CU_ASSERT_EQUAL(o.status, IOX_PG_OK);
    /* From another client: arrives while the session is idle. */
    CU_ASSERT_EQUAL(iox_pg_cluster_psql(&cluster, "\\c " IOX_PG_DB "\nNOTIFY ioxide_ch, 'hello'", NULL, 0), 0);
    CU_ASSERT_EQUAL(iox_reactor_run_until(&g->r, pred_notifies, &l, 5000), 0);
    CU_ASSERT_EQUAL(l.notifies, 1);
    CU_ASSERT_STRING_EQUAL(l.channel, "ioxide_ch");
    CU_ASSERT_STRING_EQUAL(l.payload, "hello");
    CU_ASSERT(l.pid[0] > 0 && l.pid[0] != pid);           /* psql's backend */
    /* From the pool's own session: delivered with that query's answer. */
    memset(&o, 0, sizeof o);
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT pg_notify('ioxide_ch', 'self')", on_outcome, &o), 0);
    CU_ASSERT_EQUAL_FATAL(wait_done(g, &o, 1, 5000), 0);
    CU_ASSERT_EQUAL(l.notifies, 2);
    CU_ASSERT_STRING_EQUAL(l.payload, "self");
    CU_ASSERT_EQUAL(l.pid[1], pid);
    /* A notice. */
    memset(&o, 0, sizeof o);
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "DO $$ BEGIN RAISE NOTICE 'x'; END $$", on_outcome, &o), 0);
    CU_ASSERT_EQUAL_FATAL(wait_done(g, &o, 1, 5000), 0);
    CU_ASSERT_EQUAL(o.status, IOX_PG_OK);
    CU_ASSERT_EQUAL(l.notices, 1);
    CU_ASSERT_STRING_EQUAL(l.severity, "NOTICE");
    CU_ASSERT_STRING_EQUAL(l.sqlstate, "00000");
    CU_ASSERT_STRING_EQUAL(l.message, "x");
    rig_close(g);
}

/* iox_pg_listen: the pool LISTENs on one of its sessions, and again on the
 * new session after a server restart (as libpq users re-LISTEN after
 * PQreset). A NOTIFY from psql reaches the callback once per notification
 * (a pool of 2: only one session listens), before and after the restart. */
static int notify_until_heard(struct rig *g, struct async_log *l, const char *payload)
{
    char sql[200];
    snprintf(sql, sizeof sql, "\\c " IOX_PG_DB "\nNOTIFY ioxide_listen, '%s'", payload);
    int before = l->notifies;
    /* The re-LISTEN after a restart races the first NOTIFY: notify again
     * until one is heard (each psql is its own session). */
    for (int tries = 0; tries < 50 && l->notifies == before; tries++) {
        if (iox_pg_cluster_psql(&cluster, sql, NULL, 0)) return -1;
        iox_reactor_run_until(&g->r, pred_notifies_more, &(struct notify_wait){l, before}, 200);
    }
    return l->notifies > before ? 0 : -1;
}

IOX_TEST(pg_ring, listen_is_reissued_after_a_restart)
{
    char ci[400];
    struct rig *g = rig_open(ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW), 2, 8, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    struct async_log l;
    memset(&l, 0, sizeof l);
    iox_pg_on_notify(g->pool, on_notify_cb, &l);
    CU_ASSERT_EQUAL(iox_pg_listen(g->pool, "ioxide_listen"), 0);   /* before any session is up */
    CU_ASSERT_EQUAL(iox_pg_listen(g->pool, "ioxide_listen"), -EEXIST);
    CU_ASSERT_EQUAL(iox_pg_listen(g->pool, ""), -EINVAL);
    CU_ASSERT_EQUAL_FATAL(wait_up(g, 2, 5000), 0);
    CU_ASSERT_EQUAL(notify_until_heard(g, &l, "before"), 0);
    CU_ASSERT_STRING_EQUAL(l.payload, "before");
    iox_reactor_run_until(&g->r, NULL, NULL, 200);
    CU_ASSERT_EQUAL(l.notifies, 1);                                  /* once: one session listens */
    CU_ASSERT_EQUAL_FATAL(iox_pg_cluster_restart(&cluster), 0);
    struct want_sessions ws = {g, 4};
    CU_ASSERT_EQUAL_FATAL(iox_reactor_run_until(&g->r, pred_sessions, &ws, 10000), 0);
    CU_ASSERT_EQUAL(notify_until_heard(g, &l, "after"), 0);
    CU_ASSERT_STRING_EQUAL(l.payload, "after");
    iox_reactor_run_until(&g->r, NULL, NULL, 200);
    CU_ASSERT_EQUAL(l.notifies, 2);
    char out[64];
    CU_ASSERT_EQUAL(iox_pg_cluster_psql(&cluster, "SELECT count(*) FROM pg_stat_activity WHERE "
                                        "application_name = 'ioxide-ring-test' AND query LIKE 'LISTEN%'", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "1");                                /* one listening session */
    rig_close(g);
}

IOX_TEST(pg_ring, full_queue_is_eagain)
{
    char ci[400];
    struct rig *g = rig_open(ci_tcp(ci, sizeof ci, "scram_user", IOX_PG_SCRAM_PW), 1, 2, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(wait_up(g, 1, 5000), 0);
    struct outcome o[5];
    memset(o, 0, sizeof o);
    for (int i = 0; i < 4; i++)   /* 2 in flight + 2 waiting */
        CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT 1", on_outcome, &o[i]), 0);
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT 1", on_outcome, &o[4]), -EAGAIN);
    CU_ASSERT_EQUAL(wait_done(g, o, 4, 5000), 0);
    for (int i = 0; i < 4; i++) CU_ASSERT_EQUAL(o[i].status, IOX_PG_OK);
    rig_close(g);
}

IOX_SUITE(pg_ring, suite_init, suite_clean);
