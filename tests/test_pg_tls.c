/* test_pg_tls.c — TLS on the ring against a real PostgreSQL with ssl=on and
 * certificates the suite makes with the openssl command: a CA, a server
 * certificate for localhost / 127.0.0.1, one for wrong.example (same CA),
 * and a second CA nobody signed with. Each case sets the server's TLS
 * configuration it needs (ALTER SYSTEM + restart) and opens a pool with a
 * sslmode; a TLS session is checked on the server side (pg_stat_ssl). */
#include "iox_test.h"
#include <ioxide/pg.h>
#include <ioxide/reactor.h>
#include "pg_cluster.h"
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct iox_pg_cluster cluster;
static char tlsdir[200];
static int server_tls = -1;    /* 0 off, 1 localhost cert, 2 wrong-host cert, 3 expired cert */

static int sh(const char *fmt, const char *arg)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, arg, arg, arg, arg, arg, arg, arg, arg, arg, arg, arg, arg);
    int st = system(cmd);
    if (st != 0) fprintf(stderr, "pg_tls: failed (%d): %s\n", st, cmd);
    return st == 0 ? 0 : -1;
}

static int suite_init(void)
{
    if (iox_pg_cluster_start(&cluster)) return -1;
    snprintf(tlsdir, sizeof tlsdir, "%s/tls", cluster.dir);
    /* cert_user logs in with a client certificate only (hba "cert"), read
     * before the catch-all scram line. */
    char hba[300];
    snprintf(hba, sizeof hba, "%s/pg_hba.conf", cluster.data);
    /* tls_user is refused without TLS, plain_user with it (sslmode allow
     * and prefer retry the other way). */
    if (sh("set -e; f=%s; { echo 'hostssl all cert_user 127.0.0.1/32 cert';"
           "echo 'hostnossl all tls_user 127.0.0.1/32 reject'; echo 'hostssl all plain_user 127.0.0.1/32 reject';"
           "cat $f; } > $f.new; mv $f.new $f;"
           "if [ $(id -u) = 0 ]; then chown postgres $f; fi", hba) ||
        iox_pg_cluster_psql(&cluster, "CREATE ROLE cert_user LOGIN; SET password_encryption = 'scram-sha-256';"
                            "CREATE ROLE tls_user LOGIN PASSWORD '" IOX_PG_SCRAM_PW "';"
                            "CREATE ROLE plain_user LOGIN PASSWORD '" IOX_PG_SCRAM_PW "';", NULL, 0))
        return -1;
    /* EC keys: fast to make. */
    return sh("set -e; mkdir -p %s; cd %s; exec >openssl.log 2>&1;"
              "K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';"
              "openssl req -x509 $K -keyout ca.key -out ca.crt -days 30 -subj /CN=ioxide-test-ca;"
              "openssl req -x509 $K -keyout ca2.key -out ca2.crt -days 30 -subj /CN=ioxide-other-ca;"
              "openssl req $K -keyout server.key -out server.csr -subj /CN=localhost;"
              "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > good.ext;"
              "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 30 "
              "-extfile good.ext;"
              "openssl req $K -keyout wrong.key -out wrong.csr -subj /CN=wrong.example;"
              "printf 'subjectAltName=DNS:wrong.example\\n' > wrong.ext;"
              "openssl x509 -req -in wrong.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out wrong.crt -days 30 "
              "-extfile wrong.ext;"
              "openssl req $K -keyout expired.key -out expired.csr -subj /CN=localhost;"
              "openssl x509 -req -in expired.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out expired.crt -days -1 "
              "-extfile good.ext;"
              "openssl req $K -keyout client.key -out client.csr -subj /CN=cert_user;"
              "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 30;"
              "cp client.key client-open.key; chmod 644 client-open.key;"
              "chmod 600 client.key server.key wrong.key expired.key ca.key ca2.key; if [ $(id -u) = 0 ]; then chown -R postgres %s; fi", tlsdir);
}
static int suite_clean(void) { return iox_pg_cluster_stop(&cluster) ? -1 : 0; }

/* The server's TLS: 0 off, 1 the localhost certificate, 2 the wrong.example one. */
static int server_set(int mode)
{
    if (server_tls == mode) return 0;
    char sql[1024];
    const char *name = mode == 2 ? "wrong" : mode == 3 ? "expired" : "server";
    snprintf(sql, sizeof sql, "ALTER SYSTEM SET ssl = %s; ALTER SYSTEM SET ssl_cert_file = '%s/%s.crt';"
             "ALTER SYSTEM SET ssl_key_file = '%s/%s.key'; ALTER SYSTEM SET ssl_ca_file = '%s/ca.crt';",
             mode ? "on" : "off", tlsdir, name, tlsdir, name, tlsdir);
    if (iox_pg_cluster_psql(&cluster, sql, NULL, 0) || iox_pg_cluster_restart(&cluster)) return -1;
    server_tls = mode;
    return 0;
}

struct rig {
    struct iox_reactor r;
    struct iox_server_config cfg;
    struct iox_pg_pool *pool;
};

static struct rig *rig_open(const char *conninfo, char *err, size_t errlen)
{
    struct rig *g = calloc(1, sizeof *g);
    g->cfg.ring.sq_entries = 256;
    g->cfg.ring.buf_count = 16;
    g->cfg.ring.buf_size = 4096;
    g->cfg.shutdown_grace_ms = 1000;
    char why[512] = "";
    if (iox_reactor_open_here(&g->r, &g->cfg, why, sizeof why) < 0) {
        fprintf(stderr, "reactor: %s\n", why);
        free(g);
        return NULL;
    }
    struct iox_pg_pool_config pc = {.conninfo = conninfo, .size = 1, .min_size = 1};
    if (iox_pg_pool_open(&g->r, &pc, &g->pool, err, errlen) < 0) {
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

static int pred_up(void *arg) { return iox_pg_pool_up(((struct rig *)arg)->pool) >= 1; }

struct want_err { struct rig *g; const char *needle; };
static int pred_err(void *arg)
{
    struct want_err *w = arg;
    return strstr(iox_pg_pool_last_error(w->g->pool), w->needle) != NULL;
}

struct outcome { int done, status; char v0[64]; };
static void on_outcome(void *user, const struct iox_pg_res *res)
{
    struct outcome *o = user;
    o->done = 1;
    o->status = res->status;
    o->v0[0] = 0;
    if (res->nrows && res->ncols) {
        const struct iox_pg_str *s = iox_pg_cell(res, 0, 0);
        if (s->len >= 0) snprintf(o->v0, sizeof o->v0, "%.*s", s->len > 63 ? 63 : s->len, s->ptr);
    }
}
static int pred_done(void *arg) { return ((struct outcome *)arg)->done; }

/* The session's TLS as the server sees it: "t" or "f" ("" on failure). */
static const char *session_ssl(struct rig *g, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    if (iox_pg_query_simple(g->pool, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", on_outcome, o))
        return "";
    if (iox_reactor_run_until(&g->r, pred_done, o, 5000) || o->status != IOX_PG_OK) return "";
    return o->v0;
}

/* Open a pool with conninfo (user scram_user over TCP), wait for a session
 * and return what the server says about its TLS ("t"/"f"), or NULL when no
 * session came: then *g stays open for the caller to look at. */
static const char *connect_as(struct rig **gp, const char *host, const char *user, const char *extra)
{
    char ci[1024], err[512] = "";
    snprintf(ci, sizeof ci, "host=%s port=%u user=%s password=%s dbname=%s %s", host, cluster.port, user,
             IOX_PG_SCRAM_PW, IOX_PG_DB, extra);
    struct rig *g = *gp = rig_open(ci, err, sizeof err);
    if (!g) { fprintf(stderr, "pool: %s\n", err); return NULL; }
    if (iox_reactor_run_until(&g->r, pred_up, g, 5000)) return NULL;
    static struct outcome o;
    return session_ssl(g, &o);
}

static const char *connect_with(struct rig **gp, const char *host, const char *extra)
{
    return connect_as(gp, host, "scram_user", extra);
}

IOX_TEST(pg_tls, require_refuses_a_server_without_tls_prefer_falls_back)
{
    CU_ASSERT_FATAL(server_set(0) == 0);
    struct rig *g = NULL;
    const char *s = connect_with(&g, "127.0.0.1", "sslmode=require");
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    struct want_err w = {g, "server does not support SSL, but SSL was required (sslmode=require)"};
    CU_ASSERT_EQUAL(iox_reactor_run_until(&g->r, pred_err, &w, 5000), 0);
    struct outcome o = {0};
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT 1", on_outcome, &o), -ENOTCONN);    /* → 503 */
    rig_close(g);
    s = connect_with(&g, "127.0.0.1", "sslmode=prefer");
    CU_ASSERT_PTR_NOT_NULL(s);
    if (s) CU_ASSERT_STRING_EQUAL(s, "f");
    rig_close(g);
}

IOX_TEST(pg_tls, require_and_prefer_use_tls_without_verification)
{
    CU_ASSERT_FATAL(server_set(1) == 0);
    char extra[512];
    struct rig *g = NULL;
    /* no root certificate: require encrypts but verifies nothing, as libpq */
    snprintf(extra, sizeof extra, "sslmode=require sslrootcert=%s/absent.crt", tlsdir);
    const char *s = connect_with(&g, "127.0.0.1", extra);
    if (!s && g) fprintf(stderr, "require: %s\n", iox_pg_pool_last_error(g->pool));
    CU_ASSERT_PTR_NOT_NULL(s);
    if (s) CU_ASSERT_STRING_EQUAL(s, "t");
    rig_close(g);
    s = connect_with(&g, "127.0.0.1", "sslmode=prefer");
    CU_ASSERT_PTR_NOT_NULL(s);
    if (s) CU_ASSERT_STRING_EQUAL(s, "t");
    rig_close(g);
    s = connect_with(&g, "127.0.0.1", "sslmode=disable");
    CU_ASSERT_PTR_NOT_NULL(s);
    if (s) CU_ASSERT_STRING_EQUAL(s, "f");
    rig_close(g);
}

IOX_TEST(pg_tls, verify_full_with_the_right_ca_and_host)
{
    CU_ASSERT_FATAL(server_set(1) == 0);
    char extra[512];
    struct rig *g = NULL;
    snprintf(extra, sizeof extra, "sslmode=verify-full sslrootcert=%s/ca.crt", tlsdir);
    const char *hosts[] = {"localhost", "127.0.0.1"};     /* the DNS and the IP SAN */
    for (int i = 0; i < 2; i++) {
        const char *s = connect_with(&g, hosts[i], extra);
        if (!s && g) fprintf(stderr, "verify-full %s: %s\n", hosts[i], iox_pg_pool_last_error(g->pool));
        CU_ASSERT_PTR_NOT_NULL(s);
        if (s) CU_ASSERT_STRING_EQUAL(s, "t");
        rig_close(g);
    }
}

IOX_TEST(pg_tls, verify_full_refuses_the_wrong_host_verify_ca_does_not_check_it)
{
    CU_ASSERT_FATAL(server_set(2) == 0);
    char extra[512];
    struct rig *g = NULL;
    snprintf(extra, sizeof extra, "sslmode=verify-full sslrootcert=%s/ca.crt", tlsdir);
    CU_ASSERT_PTR_NULL(connect_with(&g, "localhost", extra));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    struct want_err w = {g, "TLS: server certificate for \"wrong.example\" does not match host name \"localhost\""};
    int rc = iox_reactor_run_until(&g->r, pred_err, &w, 5000);
    if (rc) fprintf(stderr, "wrong host: %s\n", iox_pg_pool_last_error(g->pool));
    CU_ASSERT_EQUAL(rc, 0);
    struct outcome o = {0};
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT 1", on_outcome, &o), -ENOTCONN);    /* → 503 */
    rig_close(g);
    snprintf(extra, sizeof extra, "sslmode=verify-ca sslrootcert=%s/ca.crt", tlsdir);
    const char *s = connect_with(&g, "localhost", extra);
    if (!s && g) fprintf(stderr, "verify-ca: %s\n", iox_pg_pool_last_error(g->pool));
    CU_ASSERT_PTR_NOT_NULL(s);
    if (s) CU_ASSERT_STRING_EQUAL(s, "t");
    rig_close(g);
}

IOX_TEST(pg_tls, verify_ca_refuses_an_unknown_ca)
{
    CU_ASSERT_FATAL(server_set(1) == 0);
    char extra[512];
    struct rig *g = NULL;
    snprintf(extra, sizeof extra, "sslmode=verify-ca sslrootcert=%s/ca2.crt", tlsdir);
    CU_ASSERT_PTR_NULL(connect_with(&g, "localhost", extra));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    struct want_err w = {g, "TLS: the server's certificate is not accepted (sslmode=verify-ca)"};
    int rc = iox_reactor_run_until(&g->r, pred_err, &w, 5000);
    if (rc) fprintf(stderr, "unknown CA: %s\n", iox_pg_pool_last_error(g->pool));
    CU_ASSERT_EQUAL(rc, 0);
    rig_close(g);
    /* a root certificate that does not exist: verify-* refuse to start, as libpq */
    char ci[1024], err[512] = "";
    snprintf(ci, sizeof ci, "host=localhost port=%u sslmode=verify-ca sslrootcert=%s/absent.crt", cluster.port, tlsdir);
    CU_ASSERT_PTR_NULL(rig_open(ci, err, sizeof err));
    CU_ASSERT(strstr(err, "root certificate file") != NULL && strstr(err, "does not exist") != NULL);
}

IOX_TEST(pg_tls, verify_ca_refuses_an_expired_certificate)
{
    CU_ASSERT_FATAL(server_set(3) == 0);
    char extra[512];
    struct rig *g = NULL;
    snprintf(extra, sizeof extra, "sslmode=verify-ca sslrootcert=%s/ca.crt", tlsdir);
    CU_ASSERT_PTR_NULL(connect_with(&g, "localhost", extra));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    struct want_err w = {g, "TLS: the server's certificate is not accepted (sslmode=verify-ca): certificate has expired"};
    int rc = iox_reactor_run_until(&g->r, pred_err, &w, 5000);
    if (rc) fprintf(stderr, "expired: %s\n", iox_pg_pool_last_error(g->pool));
    CU_ASSERT_EQUAL(rc, 0);
    rig_close(g);
}

/* Many pipelined queries and results much larger than a TLS record (and
 * than the read buffer) go through the BIOs intact and in order. */
struct bulk { int done, bad; size_t want; };
static void on_bulk(void *user, const struct iox_pg_res *res)
{
    struct bulk *b = user;
    b->done++;
    if (res->status != IOX_PG_OK || res->nrows != 1 || iox_pg_cell(res, 0, 0)->len != (int32_t)b->want) b->bad++;
}
static int pred_bulk(void *arg) { return ((struct bulk *)arg)->done >= 300; }

IOX_TEST(pg_tls, pipelined_and_wide_results_over_tls)
{
    CU_ASSERT_FATAL(server_set(1) == 0);
    char extra[512];
    struct rig *g = NULL;
    snprintf(extra, sizeof extra, "sslmode=verify-full sslrootcert=%s/ca.crt", tlsdir);
    const char *s = connect_with(&g, "localhost", extra);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "t");
    /* 300 queries in one turn (the pool queues what does not fit the pipeline) */
    struct bulk small = {.want = 1000};
    for (int i = 0; i < 300; i++)
        CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT repeat('x', 1000)", on_bulk, &small), 0);
    CU_ASSERT_EQUAL(iox_reactor_run_until(&g->r, pred_bulk, &small, 10000), 0);
    CU_ASSERT_EQUAL(small.bad, 0);
    /* one 3 MB cell */
    struct bulk wide = {.want = 3000000};
    struct outcome o = {0};
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT repeat('y', 3000000)", on_bulk, &wide), 0);
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT 42", on_outcome, &o), 0);
    CU_ASSERT_EQUAL(iox_reactor_run_until(&g->r, pred_done, &o, 10000), 0);
    CU_ASSERT_EQUAL(wide.done, 1);
    CU_ASSERT_EQUAL(wide.bad, 0);
    CU_ASSERT_STRING_EQUAL(o.v0, "42");
    rig_close(g);
}

/* A TLS session's overdue query is cancelled too: the CancelRequest goes
 * in plaintext on its own connection, as libpq before 17 sends it (the
 * postmaster reads it before any SSL negotiation; pg_hba does not apply),
 * and the same TLS session answers the next query. */
IOX_TEST(pg_tls, cancel_of_a_tls_session)
{
    CU_ASSERT_FATAL(server_set(1) == 0);
    char extra[512];
    struct rig *g = NULL;
    snprintf(extra, sizeof extra, "sslmode=verify-full sslrootcert=%s/ca.crt query_timeout_ms=300", tlsdir);
    const char *s = connect_with(&g, "localhost", extra);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "t");
    struct outcome slow = {0}, next = {0};
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT pg_sleep(5)", on_outcome, &slow), 0);
    CU_ASSERT_EQUAL(iox_pg_query_simple(g->pool, "SELECT 7", on_outcome, &next), 0);
    CU_ASSERT_EQUAL(iox_reactor_run_until(&g->r, pred_done, &slow, 1000), 0);
    CU_ASSERT_EQUAL(slow.status, IOX_PG_FAILED);
    CU_ASSERT_EQUAL(iox_reactor_run_until(&g->r, pred_done, &next, 2000), 0);
    CU_ASSERT_EQUAL(next.status, IOX_PG_OK);
    CU_ASSERT_STRING_EQUAL(next.v0, "7");
    CU_ASSERT_EQUAL(iox_pg_pool_sessions(g->pool), 1);     /* the same session */
    struct outcome o;
    CU_ASSERT_STRING_EQUAL(session_ssl(g, &o), "t");
    rig_close(g);
}

/* sslcert / sslkey: the client certificate logs cert_user in (hba "cert",
 * no password); without it the server refuses; a key others may read
 * refuses to start, as libpq. */
IOX_TEST(pg_tls, client_certificate_authenticates)
{
    CU_ASSERT_FATAL(server_set(1) == 0);
    char ci[1024], err[512] = "";
    snprintf(ci, sizeof ci, "host=localhost port=%u user=cert_user dbname=postgres sslmode=verify-full "
             "sslrootcert=%s/ca.crt sslcert=%s/client.crt sslkey=%s/client.key", cluster.port, tlsdir, tlsdir, tlsdir);
    struct rig *g = rig_open(ci, err, sizeof err);
    if (!g) fprintf(stderr, "client cert: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int rc = iox_reactor_run_until(&g->r, pred_up, g, 5000);
    if (rc) fprintf(stderr, "client cert: %s\n", iox_pg_pool_last_error(g->pool));
    CU_ASSERT_EQUAL(rc, 0);
    struct outcome o;
    CU_ASSERT_STRING_EQUAL(session_ssl(g, &o), "t");
    rig_close(g);
    /* no client certificate: the server refuses cert_user */
    snprintf(ci, sizeof ci, "host=localhost port=%u user=cert_user dbname=postgres sslmode=verify-full "
             "sslrootcert=%s/ca.crt sslcert=%s/absent.crt", cluster.port, tlsdir, tlsdir);
    g = rig_open(ci, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    struct want_err w = {g, "cert_user"};
    /* A bound, not a timing goal: under a loaded full run the first
     * attempt can be slow; the error names the refused user. */
    rc = iox_reactor_run_until(&g->r, pred_err, &w, 15000);
    if (rc) fprintf(stderr, "no client cert: last error: %s\n", iox_pg_pool_last_error(g->pool));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(iox_pg_pool_up(g->pool), 0);
    rig_close(g);
    /* a private key others may read */
    snprintf(ci, sizeof ci, "host=localhost port=%u user=cert_user dbname=postgres sslmode=verify-full "
             "sslrootcert=%s/ca.crt sslcert=%s/client.crt sslkey=%s/client-open.key", cluster.port, tlsdir, tlsdir,
             tlsdir);
    CU_ASSERT_PTR_NULL(rig_open(ci, err, sizeof err));
    CU_ASSERT(strstr(err, "has group or world access") != NULL);
}

/* SCRAM-SHA-256-PLUS: the server checks the binding (the certificate hash
 * we send) and refuses a wrong one, so a session under require proves it. */
IOX_TEST(pg_tls, channel_binding_require_binds_over_tls)
{
    CU_ASSERT_FATAL(server_set(1) == 0);
    char extra[512];
    struct rig *g = NULL;
    snprintf(extra, sizeof extra, "sslmode=verify-full sslrootcert=%s/ca.crt channel_binding=require", tlsdir);
    const char *s = connect_with(&g, "localhost", extra);
    if (!s && g) fprintf(stderr, "channel_binding=require: %s\n", iox_pg_pool_last_error(g->pool));
    CU_ASSERT_PTR_NOT_NULL(s);
    if (s) CU_ASSERT_STRING_EQUAL(s, "t");
    rig_close(g);
    /* prefer (the default) and disable connect too: -PLUS, and "y"/"n" SCRAM */
    const char *modes[] = {"channel_binding=prefer", "channel_binding=disable", ""};
    for (int i = 0; i < 3; i++) {
        s = connect_with(&g, "127.0.0.1", modes[i]);
        if (!s && g) fprintf(stderr, "%s: %s\n", modes[i], iox_pg_pool_last_error(g->pool));
        CU_ASSERT_PTR_NOT_NULL(s);
        rig_close(g);
    }
}

IOX_TEST(pg_tls, channel_binding_require_refuses_what_cannot_bind)
{
    char ci[1024], err[512] = "";
    /* sslmode=disable can never bind: one line at startup */
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%u user=scram_user password=%s dbname=%s sslmode=disable "
             "channel_binding=require", cluster.port, IOX_PG_SCRAM_PW, IOX_PG_DB);
    CU_ASSERT_PTR_NULL(rig_open(ci, err, sizeof err));
    CU_ASSERT(strstr(err, "needs TLS") && strstr(err, "sslmode=disable never negotiates it"));
    /* a server without TLS: the session fails, with the reason */
    CU_ASSERT_FATAL(server_set(0) == 0);
    struct rig *g = NULL;
    CU_ASSERT_PTR_NULL(connect_with(&g, "127.0.0.1", "sslmode=prefer channel_binding=require"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    struct want_err w = {g, "offers no SCRAM-SHA-256-PLUS (the session has no TLS)"};
    CU_ASSERT_EQUAL(iox_reactor_run_until(&g->r, pred_err, &w, 5000), 0);
    rig_close(g);
    /* TLS, but a method that cannot bind: MD5, and a client certificate */
    CU_ASSERT_FATAL(server_set(1) == 0);
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%u user=md5_user password=%s dbname=%s sslmode=require "
             "channel_binding=require", cluster.port, IOX_PG_MD5_PW, IOX_PG_DB);
    g = rig_open(ci, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    struct want_err w2 = {g, "channel_binding=require, but the server asks for a MD5 password"};
    CU_ASSERT_EQUAL(iox_reactor_run_until(&g->r, pred_err, &w2, 5000), 0);
    CU_ASSERT_EQUAL(iox_pg_pool_up(g->pool), 0);
    rig_close(g);
    snprintf(ci, sizeof ci, "host=localhost port=%u user=cert_user dbname=postgres sslmode=verify-full "
             "sslrootcert=%s/ca.crt sslcert=%s/client.crt sslkey=%s/client.key channel_binding=require", cluster.port,
             tlsdir, tlsdir, tlsdir);
    g = rig_open(ci, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    struct want_err w3 = {g, "authenticated the session without channel binding"};
    CU_ASSERT_EQUAL(iox_reactor_run_until(&g->r, pred_err, &w3, 5000), 0);
    CU_ASSERT_EQUAL(iox_pg_pool_up(g->pool), 0);
    rig_close(g);
}


/* sslmode allow and prefer retry the host the other way, once, as libpq:
 * allow starts without TLS and retries with it when the server refuses the
 * plaintext session; prefer starts with TLS and retries without it when
 * the server refuses the TLS session or the handshake itself fails.
 * disable and require never retry. */
IOX_TEST(pg_tls, allow_and_prefer_retry_the_other_way)
{
    CU_ASSERT_FATAL(server_set(1) == 0);
    static const struct { const char *user, *extra, *want; } cases[] = {
        {"scram_user", "sslmode=allow", "f"},                  /* plaintext first */
        {"tls_user", "sslmode=allow", "t"},                    /* refused in plaintext: TLS */
        {"plain_user", "sslmode=prefer", "f"},                 /* refused over TLS: plaintext */
        {"scram_user", "sslmode=prefer ssl_min_protocol_version=TLSv1 ssl_max_protocol_version=TLSv1.1", "f"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rig *g = NULL;
        const char *s = connect_as(&g, "127.0.0.1", cases[i].user, cases[i].extra);
        int ok = s && !strcmp(s, cases[i].want);
        if (!ok) fprintf(stderr, "\n  %s %s: got %s (%s)", cases[i].user, cases[i].extra, s ? s : "no session",
                         g ? iox_pg_pool_last_error(g->pool) : "");
        CU_ASSERT(ok);
        rig_close(g);
    }
    /* No retry: the one failure is the reason, and no session comes. */
    static const struct { const char *user, *extra, *why; } refused[] = {
        {"scram_user", "sslmode=require ssl_min_protocol_version=TLSv1 ssl_max_protocol_version=TLSv1.1", "TLS"},
        {"tls_user", "sslmode=disable", "no encryption"},
        {"plain_user", "sslmode=require", "SSL encryption"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char ci[1024], err[512] = "";
        snprintf(ci, sizeof ci, "host=127.0.0.1 port=%u user=%s password=%s dbname=%s %s", cluster.port,
                 refused[i].user, IOX_PG_SCRAM_PW, IOX_PG_DB, refused[i].extra);
        struct rig *g = rig_open(ci, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(g);
        struct want_err w = {g, refused[i].why};
        int rc = iox_reactor_run_until(&g->r, pred_err, &w, 5000);
        if (rc) fprintf(stderr, "\n  %s %s: \"%s\"", refused[i].user, refused[i].extra, iox_pg_pool_last_error(g->pool));
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(iox_pg_pool_up(g->pool), 0);
        rig_close(g);
    }
}

IOX_SUITE(pg_tls, suite_init, suite_clean);
