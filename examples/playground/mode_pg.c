/* mode_pg.c — GET / → 200 "db=42" from `SELECT 42` (a prepared statement)
 * on the reactor's own Postgres pool; database down → 503 saying why; the
 * query past query_timeout_ms (cancelled on the server, ioxide/pg.h) → 504; any
 * other path → 404; other methods and OPTIONS as playground_root_only
 * (405 / 200 with Allow). The pool is opened on every reactor in on_start and
 * keeps retrying when the database is down, so startup never fails on it.
 * Settings: the libpq environment (PGHOST PGPORT PGUSER PGPASSWORD
 * PGDATABASE ...; what is honoured, ignored or refused: pg_conninfo.h), and
 * PG_POOL_SIZE, PG_POOL_MIN, PG_POOL_DEPTH, PG_PIPELINE_MAX, PG_QUEUE_MAX. */
#include "playground.h"
#include <ioxide/http_conn.h>
#include <ioxide/log.h>
#include <ioxide/pg.h>
#include "pg_conninfo.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static struct iox_pg_stmt select42;
static struct iox_pg_pool_config pool_cfg;

/* The HTTP request travels with the query as its handle, by value
 * (iox_pg_query_v): the connection may be closed and its slot reused before
 * the answer comes, and then the handle derefs to NULL. */

static void unavailable(struct iox_conn *c, const char *why)
{
    char body[512];
    int n = snprintf(body, sizeof body, "database unavailable: %s\n", why && *why ? why : "no connection");
    if (n >= (int)sizeof body) n = sizeof body - 1;
    iox_resp_simple(c, 503, "text/plain", body, (size_t)n);
}

static void on_result(void *user, const struct iox_pg_res *res)
{
    struct iox_conn *c = iox_conn_deref(*(const struct iox_conn_ref *)user);
    if (!c) return;   /* the client went away meanwhile */
    if (res->status == IOX_PG_OK && res->nrows == 1 && res->ncols == 1 && iox_pg_cell(res, 0, 0)->len > 0) {
        const struct iox_pg_str *v = iox_pg_cell(res, 0, 0);
        char body[64];
        int n = snprintf(body, sizeof body, "db=%.*s", v->len > 40 ? 40 : (int)v->len, v->ptr);
        iox_resp_simple(c, 200, "text/plain", body, (size_t)n);
    } else if (res->status == IOX_PG_ERROR) {
        char body[400];
        int n = snprintf(body, sizeof body, "query failed: %s (SQLSTATE %s)\n", res->message, res->sqlstate);
        if (n >= (int)sizeof body) n = sizeof body - 1;
        iox_resp_simple(c, 500, "text/plain", body, (size_t)n);
    } else if (res->err == -ETIMEDOUT) {
        /* Past query_timeout_ms (the pool cancelled it on the server) or
         * waited too long for a session: a gateway timeout. */
        char body[400];
        int n = snprintf(body, sizeof body, "database timeout: %s\n", res->message);
        if (n >= (int)sizeof body) n = sizeof body - 1;
        iox_resp_simple(c, 504, "text/plain", body, (size_t)n);
    } else {
        unavailable(c, res->message);
    }
    iox_conn_async_done(c);
}

static int pg_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    if (playground_root_only(c, req)) return IOX_HANDLED;
    struct iox_pg_pool *p = iox_pg_pool_of(c->r);
    if (!p) { unavailable(c, "no pool on this reactor"); return IOX_HANDLED; }
    struct iox_conn_ref ref = iox_conn_ref(c);
    int rc = iox_pg_query_v(p, &select42, 0, NULL, on_result, &ref, sizeof ref);
    if (rc == 0) return IOX_ASYNC;
    if (rc == -EAGAIN) unavailable(c, "too many queries waiting (PG_QUEUE_MAX)");
    else if (rc == -ENOTCONN) unavailable(c, iox_pg_pool_last_error(p)[0] ? iox_pg_pool_last_error(p) : "not connected yet");
    else unavailable(c, strerror(-rc));
    return IOX_HANDLED;
}

static int pg_start(struct iox_reactor *r, void *ctx)
{
    (void)ctx;
    struct iox_pg_pool *p;
    char err[512] = "";
    int rc = iox_pg_pool_open(r, &pool_cfg, &p, err, sizeof err);
    if (rc < 0) {
        IOX_ERROR("pg: cannot open the pool: %s", err[0] ? err : strerror(-rc));
        return -1;
    }
    return 0;
}

static void pg_stop(struct iox_reactor *r, void *ctx)
{
    (void)ctx;
    iox_pg_pool_close(iox_pg_pool_of(r));
}

static const struct iox_http_app pg_app = { pg_request };

int playground_pg(struct iox_server_config *cfg, struct iox_http_config *http)
{
    char err[512];
    if (iox_pg_pool_config_from_env(&pool_cfg, err, sizeof err) < 0) {
        fprintf(stderr, "playground: %s\n", err);
        return -1;
    }
    /* Check the settings once here, before anything listens: a bad PGHOST,
     * or a PGSSLMODE=verify-full without its root certificate, is one clear line
     * on stderr and exit status 1. */
    struct iox_pg_conninfo ci;
    struct sockaddr_storage ss;
    socklen_t sl;
    int bad = iox_pg_conninfo_load(&ci, NULL, err, sizeof err) < 0;
    for (unsigned i = 0; !bad && i < ci.nhosts; i++)      /* every host of a PGHOST list */
        bad = iox_pg_conninfo_host_sockaddr(&ci, i, &ss, &sl, err, sizeof err) < 0;
    if (bad) {
        fprintf(stderr, "playground: pg mode: %s\n", err);
        return -1;
    }
    if (iox_pg_stmt_init(&select42, "SELECT 42", 0) < 0) {
        fprintf(stderr, "playground: too many prepared statements\n");
        return -1;
    }
    http->app = &pg_app;
    cfg->on_start = pg_start;
    cfg->on_stop = pg_stop;
    return 0;
}
