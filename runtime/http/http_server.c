/* http_server.c — the HTTP server as a protocol of the reactor: per
 * reactor its connection table, response rings, timers and buffers, its
 * kind's hooks (completions, end-of-turn flush, tick, stop, busy) and the
 * accept of its listener. Connections themselves: conn*.c. */
#include "access_log.h"
#include "conn_buffers.h"
#include "conn_internal.h"
#include "http_conn_machine.h"
#include <ioxide/http_server.h>
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void update_date(struct iox_http_server *hs)
{
    time_t now = time(NULL);
    if ((uint64_t)now == hs->date_sec) return;
    hs->date_sec = (uint64_t)now;
    struct tm tm;
    gmtime_r(&now, &tm);
    /* Always IOX_HTTP_DATE_LINE_LEN bytes for years 1000..9999; the head
     * writer copies exactly that many, so anything else is no Date at all. */
    if (strftime(hs->date, sizeof hs->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm) !=
        IOX_HTTP_DATE_LINE_LEN)
        hs->date[0] = 0;
}

/* ---- configuration ---- */

static void apply_defaults(struct iox_http_config *cfg)
{
    if (!cfg->idle_timeout_ms) cfg->idle_timeout_ms = 30000;
    if (!cfg->linger_ms) cfg->linger_ms = 2000;
    if (!cfg->max_conns) cfg->max_conns = 16384;
    if (!cfg->write_cap) cfg->write_cap = 256 * 1024;
    if (!cfg->max_async) cfg->max_async = IOX_MAX_ASYNC_DEFAULT;
    if (cfg->max_async > IOX_MAX_ASYNC_LIMIT) cfg->max_async = IOX_MAX_ASYNC_LIMIT;
}

int iox_http_config_from_env(struct iox_http_config *cfg, char *why, size_t why_len)
{
    int rc = 0;
    rc |= iox_env_u32("IDLE_TIMEOUT_MS", &cfg->idle_timeout_ms, 1, 86400000, why, why_len);
    rc |= iox_env_u32("IOX_LINGER_MS", &cfg->linger_ms, 1, 60000, why, why_len);
    rc |= iox_env_u32("IOX_MAX_CONNS", &cfg->max_conns, 1, 1u << 20, why, why_len);
    rc |= iox_env_u32("IOX_WRITE_CAP", &cfg->write_cap, 1024, 1u << 30, why, why_len);
    rc |= iox_env_u32("IOX_MAX_ASYNC", &cfg->max_async, 1, IOX_MAX_ASYNC_LIMIT, why, why_len);
    rc |= iox_env_u32("IOX_MAX_HEAD", &cfg->limits.max_head, 256, 1u << 24, why, why_len);
    rc |= iox_env_u32("IOX_MAX_HEADERS", &cfg->limits.max_headers, 1, 65535, why, why_len);
    rc |= iox_env_u32("IOX_MAX_TARGET", &cfg->limits.max_target, 16, 1u << 24, why, why_len);
    uint32_t max_body_mb = 0;
    rc |= iox_env_u32("IOX_MAX_BODY_MB", &max_body_mb, 1, 1u << 20, why, why_len);
    if (max_body_mb) cfg->limits.max_body = (uint64_t)max_body_mb << 20;
    const char *sp = getenv("IOX_STATS_PATH");
    if (sp && *sp) {
        if (sp[0] != '/') {
            snprintf(why, why_len, "IOX_STATS_PATH=%s must be a path starting with '/'", sp);
            return -EINVAL;
        }
        cfg->stats_path = sp;
    }
    const char *al = getenv("IOX_ACCESS_LOG");
    if (al && *al) cfg->access_log = al;
    return rc ? -EINVAL : 0;
}

/* No application: every request gets 404 (a zeroed configuration answers). */
static int no_app(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)req; (void)ctx;
    static const char msg[] = "no handler\n";
    iox_resp_simple(c, 404, "text/plain", msg, sizeof msg - 1);
    return IOX_HANDLED;
}
static const struct iox_http_app no_app_app = {no_app};

/* ---- the kind ---- */

static void http_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    struct iox_http_server *hs = ctx;
    unsigned op = iox_ud_op(cqe->ud);
    if (op == IOX_OP_PEERNAME) { iox_alog_peer_cqe(hs, cqe); return; }   /* not a connection op */
    uint32_t idx = iox_ud_idx(cqe->ud);
    struct iox_conn *c = idx < hs->max_conns ? &hs->conns[idx] : NULL;
    if (!c || !iox_conn_in_use(c) || c->sk.gen != iox_ud_gen(cqe->ud)) {
        /* A late completion for a closed slot: only a recv buffer needs
         * handing back. */
        hs->n_stale_cqes++;
        r->n_stale_cqes++;
        if (op == IOX_OP_RECV && cqe->res > 0 && (cqe->flags & IOX_CQE_F_BUFFER))
            iox_seam_buf_return(r->seam, cqe->flags >> IOX_CQE_BUFFER_SHIFT);
        return;
    }
    iox_conn_on_cqe(c, op, cqe);
}

/* Re-arm parked recvs first (every buffer of this turn is back), then start
 * the sends of connections with output. */
static void http_flush(struct iox_reactor *r, void *ctx)
{
    (void)r;
    struct iox_http_server *hs = ctx;
    struct iox_sock *s = iox_sock_take_parked(&hs->sh);
    while (s) {
        struct iox_sock *next = s->parked_next;
        s->parked_linked = 0;
        struct iox_conn *c = iox_conn_of_sock(s);
        if (s->parked && iox_conn_in_use(c)) iox_conn_rearm(c);
        s = next;
    }
    s = iox_sock_take_dirty(&hs->sh);
    while (s) {
        struct iox_sock *next = s->dirty_next;
        s->dirty_linked = 0;
        struct iox_conn *c = iox_conn_of_sock(s);
        if (s->dirty && iox_conn_in_use(c)) iox_conn_start_send(c);
        s = next;
    }
}

static void fire_due(struct iox_reactor *r, struct iox_sock_list *l)
{
    while (l->head && l->head->deadline_ms <= r->now_ms)
        iox_conn_on_timer(iox_conn_of_sock(l->head));
}

static void http_tick(struct iox_reactor *r, void *ctx)
{
    struct iox_http_server *hs = ctx;
    if (r->uring) update_date(hs);   /* tests fix the Date on the simulated seam */
    fire_due(r, &hs->sh.idle);
    fire_due(r, &hs->sh.linger);
    if (r->stopping && r->now_ms >= r->stop_deadline_ms) {
        /* Grace is over: whatever is still open is closed now. */
        for (uint32_t i = 0; i < hs->max_conns; i++) {
            struct iox_conn *c = &hs->conns[i];
            if (iox_conn_in_use(c)) iox_conn_fire(c, HTTP_CONN_EV_FAIL, NULL);   /* closing ignores it */
        }
    }
}

static void http_stop(struct iox_reactor *r, void *ctx)
{
    (void)r;
    struct iox_http_server *hs = ctx;
    IOX_DEBUG("http: stopping with %u connections open", hs->nconns);
    for (uint32_t i = 0; i < hs->max_conns; i++)
        if (iox_conn_in_use(&hs->conns[i])) iox_conn_on_shutdown(&hs->conns[i]);
}

static unsigned http_busy(struct iox_reactor *r, void *ctx)
{
    (void)r;
    return ((struct iox_http_server *)ctx)->nconns;
}

static const struct iox_kind http_kind = {
    .name = "http", .on_cqe = http_cqe, .on_flush = http_flush, .on_tick = http_tick,
    .on_stop = http_stop, .busy = http_busy,
};

/* ---- open, adopt, close ---- */

static int server_open(struct iox_reactor *r, const struct iox_http_config *cfg, unsigned listener,
                       struct iox_http_server **out, char *why, size_t why_len)
{
    struct iox_http_server *hs = calloc(1, sizeof *hs);
    if (!hs) return -ENOMEM;
    hs->r = r;
    if (cfg) hs->cfg = *cfg;
    apply_defaults(&hs->cfg);
    if (!hs->cfg.app) hs->cfg.app = &no_app_app;
    hs->listener = listener;
    hs->max_conns = hs->cfg.max_conns;
    hs->conns = calloc(hs->max_conns, sizeof *hs->conns);
    hs->free_slots = calloc(hs->max_conns, sizeof *hs->free_slots);
    /* Response rings: a power of two above the async limit, so sync answers
     * behind outstanding async ones have room too. Touched only as used. */
    hs->max_async = hs->cfg.max_async;
    uint32_t nslot = 2;
    while (nslot < hs->max_async + 1) nslot *= 2;
    hs->rslot_mask = nslot - 1;
    hs->rslots = calloc((size_t)hs->max_conns * nslot, sizeof *hs->rslots);
    hs->owner = -1;
    if (!hs->conns || !hs->free_slots || !hs->rslots) goto nomem;
    for (uint32_t i = 0; i < hs->max_conns; i++) {
        iox_conn_init_slot(hs, &hs->conns[i], i);
        hs->free_slots[i] = hs->max_conns - 1 - i;   /* pop order: slot 0 first */
    }
    hs->nfree = hs->max_conns;
    hs->owner = iox_reactor_register_kind(r, &http_kind, hs);
    if (hs->owner < 0) goto nomem;
    hs->sh.r = r;
    hs->sh.owner = hs->owner;
    hs->sh.name = "conn";
    hs->sh.idle_ms = hs->cfg.idle_timeout_ms;
    hs->sh.linger_ms = hs->cfg.linger_ms;
    if (iox_http_stats_enable(hs) < 0) {
        iox_reactor_unregister_kind(r, hs->owner);
        hs->owner = -1;
        goto nomem;
    }
    if (hs->cfg.access_log && *hs->cfg.access_log) {
        int rc = iox_alog_open(hs, why, why_len);
        if (rc < 0) {
            iox_http_server_close(hs);
            return rc;
        }
    }
    iox_reactor_want_tick(r, hs->cfg.idle_timeout_ms / 4);
    update_date(hs);
    *out = hs;
    return 0;
nomem:
    snprintf(why, why_len, "reactor %u: out of memory for the HTTP connection table (IOX_MAX_CONNS)", r->id);
    free(hs->conns);
    free(hs->free_slots);
    free(hs->rslots);
    free(hs);
    return -ENOMEM;
}

int iox_http_server_open(struct iox_reactor *r, const struct iox_http_config *cfg, unsigned listener,
                         struct iox_http_server **out)
{
    char why[512];
    int rc = server_open(r, cfg, listener, out, why, sizeof why);
    if (rc < 0) IOX_ERROR("%s", why);
    return rc;
}

void iox_http_server_close(struct iox_http_server *hs)
{
    if (!hs) return;
    struct iox_reactor *r = hs->r;
    IOX_DEBUG("http stopped: %llu accepted, %llu requests, %llu stale CQEs, %llu ENOBUFS",
              (unsigned long long)hs->n_accepted, (unsigned long long)hs->n_requests,
              (unsigned long long)hs->n_stale_cqes, (unsigned long long)hs->n_enobufs);
    for (uint32_t i = 0; i < hs->max_conns; i++) {
        struct iox_conn *c = &hs->conns[i];
        if (iox_conn_in_use(c) && c->sk.fd >= 0 && !r->uring) c->sk.fd = -1;  /* simulated fds */
        if (iox_conn_in_use(c) && c->sk.fd >= 0) iox_seam_close_sync(r->seam, c->sk.fd);   /* a direct one too */
        iox_body_detach(c);   /* no ceremony: the handler is not called */
        iox_slots_release(c);
        iox_sock_buffers_drop(&hs->sh, &c->sk);
    }
    while (hs->free_body) {   /* request-body states (conn_body.c): a free list */
        void *b = hs->free_body;
        hs->free_body = *(void **)b;
        free(b);
    }
    iox_sock_host_free(&hs->sh);
    iox_alog_close(hs);   /* after the slots: unanswered requests are logged */
    if (hs->owner >= 0) iox_reactor_unregister_kind(r, hs->owner);
    free(hs->conns);
    free(hs->free_slots);
    free(hs->rslots);
    free(hs);
}

struct iox_conn *iox_http_adopt(struct iox_http_server *hs, int fd)
{
    if (!hs->nfree) return NULL;
    uint32_t idx = hs->free_slots[--hs->nfree];
    struct iox_conn *c = &hs->conns[idx];
    hs->nconns++;
    hs->n_accepted++;
    iox_conn_open(c, fd);
    if (hs->alog) iox_alog_conn_open(c);
    /* The table is full now: stop accepting before the next socket has to
     * be refused (the backlog holds it). */
    if (!hs->nfree) iox_reactor_accept_pause(hs->r, hs->listener);
    return c;
}

/* A slot came free (conn.c, iox_conn_release). */
void iox_http_slot_freed(struct iox_http_server *hs)
{
    iox_reactor_accept_resume(hs->r, hs->listener);
}

/* ---- the protocol ---- */

static int proto_open(struct iox_reactor *r, const void *proto_cfg, unsigned listener, void **ctx,
                      char *why, size_t why_len)
{
    struct iox_http_server *hs;
    int rc = server_open(r, proto_cfg, listener, &hs, why, why_len);
    if (rc < 0) return rc;
    iox_reactor_want_conns(r, hs->max_conns);   /* the ring's direct descriptor table */
    *ctx = hs;
    return 0;
}

static int proto_accept(struct iox_reactor *r, void *ctx, int fd)
{
    (void)r;
    return iox_http_adopt(ctx, fd) ? 0 : -ENOSPC;
}

static void proto_close(struct iox_reactor *r, void *ctx)
{
    (void)r;
    iox_http_server_close(ctx);
}

const struct iox_protocol iox_http_protocol = {
    .name = "http", .open = proto_open, .on_accept = proto_accept, .close = proto_close,
};

struct iox_http_server *iox_http_server_of(struct iox_reactor *r, unsigned listener)
{
    if (listener >= r->nlisteners || r->listeners[listener].proto != &iox_http_protocol) return NULL;
    return r->listeners[listener].ctx;
}

int iox_http_single_from_env(struct iox_http_single *s, char *why, size_t why_len)
{
    if (iox_server_config_from_env(&s->server, why, why_len) < 0 ||
        iox_listener_config_from_env(&s->listener, why, why_len) < 0 ||
        iox_http_config_from_env(&s->http, why, why_len) < 0)
        return -EINVAL;
    iox_server_config_defaults(&s->server);
    s->listener.proto = &iox_http_protocol;
    s->listener.proto_cfg = &s->http;
    s->server.listeners = &s->listener;
    s->server.nlisteners = 1;
    return 0;
}

int iox_http_serve(const struct iox_http_app *app, void *app_ctx)
{
    static struct iox_http_single s;
    char why[256];
    if (iox_http_single_from_env(&s, why, sizeof why) < 0) {
        fprintf(stderr, "ioxide: %s\n", why);
        return 2;
    }
    s.http.app = app;
    s.http.app_ctx = app_ctx;
    return iox_server_run(&s.server);
}
