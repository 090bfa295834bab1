/* server.c — one reactor's RESP server: made in on_start, freed in
 * on_stop; the active expiry sweep on the reactor's tick. */
#include "server.h"
#include <ioxide/log.h>
#include <stdlib.h>
#include <string.h>

struct resp_config resp_cfg;

static const struct iox_service_key resp_key = {"resp server"};

struct resp_server *resp_server_of(struct iox_reactor *r)
{
    return iox_reactor_service(r, &resp_key);
}

/* Active expiry: every tick, look at a quarter of the buckets (at least
 * 256, at most 16384: the work per tick is bounded) for keys past their
 * deadline, so a table is swept about every 400 ms up to 64k buckets; the
 * lazy check on access catches the rest. */
#define SWEEP_MIN 256u
#define SWEEP_MAX 16384u
#define SWEEP_TICK_MS 100

static void sweep_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    (void)r; (void)ctx; (void)cqe;   /* the sweep owns no op */
}

static void sweep_tick(struct iox_reactor *r, void *ctx)
{
    (void)r;
    struct resp_server *rs = ctx;
    size_t n = (rs->db.ks.mask + 1) / 4;
    ks_sweep(&rs->db.ks, ks_now_ms(), n < SWEEP_MIN ? SWEEP_MIN : n > SWEEP_MAX ? SWEEP_MAX : n);
}

static const struct iox_kind sweep_kind = {.name = "resp expiry", .on_cqe = sweep_cqe, .on_tick = sweep_tick};

static void server_free(struct resp_server *rs)
{
    resp_shard_stop(rs);
    ks_fini(&rs->db.ks);
    resp_parser_fini(&rs->ps);
    rb_free(&rs->out);
    struct resp_conn *c = rs->free_conns;
    while (c) { struct resp_conn *n = c->free_next; free(c); c = n; }
    free(rs);
}

int resp_server_start(struct iox_reactor *r, void *app_ctx)
{
    (void)app_ctx;
    struct resp_server *rs = calloc(1, sizeof *rs);
    if (!rs) return -1;
    rs->r = r;
    rs->db.reactor = r->id;
    rs->db.nreactors = r->nreactors ? r->nreactors : 1;
    if (rs->db.nreactors > 256) { IOX_ERROR("resp: at most 256 reactors"); free(rs); return -1; }
    if (ks_init(&rs->db.ks) < 0 || resp_parser_init(&rs->ps, resp_cfg.max_bulk, resp_cfg.max_args) < 0 ||
        resp_shard_start(rs) < 0 || iox_reactor_set_service(r, &resp_key, rs) < 0) {
        IOX_ERROR("resp: reactor %u: out of memory at startup", r->id);
        server_free(rs);
        return -1;
    }
    rs->sweep_owner = iox_reactor_register_kind(r, &sweep_kind, rs);
    if (rs->sweep_owner < 0) {
        IOX_ERROR("resp: reactor %u: cannot register the expiry sweep: %d", r->id, rs->sweep_owner);
        iox_reactor_set_service(r, &resp_key, NULL);
        server_free(rs);
        return -1;
    }
    iox_reactor_want_tick(r, SWEEP_TICK_MS);
    return 0;
}

void resp_server_stop(struct iox_reactor *r, void *app_ctx)
{
    (void)app_ctx;
    struct resp_server *rs = resp_server_of(r);
    if (!rs) return;
    iox_reactor_unregister_kind(r, rs->sweep_owner);
    iox_reactor_set_service(r, &resp_key, NULL);
    server_free(rs);
}
