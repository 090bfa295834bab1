/* client_pool.c — the client kit's pool (ioxide/stream_client.h): open and
 * close, requests and the wait queue, the kind's hooks (completions,
 * end-of-turn flush, tick, busy). The connections' decisions are the
 * generated machine stream_client (client_conn.c holds its actions). */
#include "client_internal.h"
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* user_data index of the close's bounded-wait timeout (not a connection). */
#define GUARD_IDX 0xfffffffeu

uint64_t iox_client_ud(const struct iox_client_conn *c, unsigned op)
{
    return iox_dial_ud(&c->dl, op);
}

void iox_client_set_error(struct iox_client_pool *p, int err, const char *what)
{
    int n = snprintf(p->last_error, sizeof p->last_error, "%.80s: %.120s", p->peer, what);
    if (err && n > 0 && (size_t)n < sizeof p->last_error)
        snprintf(p->last_error + n, sizeof p->last_error - (size_t)n, ": %.60s", strerror(-err));
}

uint32_t iox_client_inflight(const struct iox_client_conn *c)
{
    return c->tail - c->head;
}

void iox_client_mark_dirty(struct iox_client_conn *c)
{
    c->dirty = 1;
}

/* The machine's entry, with the same re-entrancy rule as a stream's
 * (stream_conn.c): an event raised inside a chain (a callback issuing a
 * request that fails the connection, a stop inside a reply) waits for it;
 * it carries no payload by construction, and each kind is queued once. */
void iox_client_fire(struct iox_client_conn *c, int event, const struct iox_client_event *ev)
{
    if (c->firing) {
        if (ev && (ev->data || ev->len || ev->res || ev->flags)) {
            IOX_ERROR("client %u: %s with a payload raised inside the machine — a runtime bug; aborting",
                      c->idx, stream_client_event_names[event]);
            abort();
        }
        for (unsigned i = 0; i < c->nqueued; i++)
            if (c->queued[i] == event) return;
        c->queued[c->nqueued++] = (uint8_t)event;
        return;
    }
    static const struct iox_client_event none = {0, 0, NULL, 0};
    c->firing = 1;
    stream_client_fire(c, &c->state, event, ev ? ev : &none);
    while (c->nqueued) {
        int e = c->queued[0];
        c->nqueued--;
        memmove(c->queued, c->queued + 1, c->nqueued);
        stream_client_fire(c, &c->state, e, &none);
    }
    c->firing = 0;
}

/* ---- choosing a connection, the wait queue ---- */

static struct iox_client_conn *least_loaded(struct iox_client_pool *p)
{
    struct iox_client_conn *best = NULL;
    for (unsigned i = 0; i < p->cfg.conns; i++) {
        struct iox_client_conn *c = &p->conns[i];
        if (c->state != STREAM_CLIENT_S_UP) continue;
        uint32_t n = iox_client_inflight(c);
        if (n >= p->cfg.max_inflight) continue;
        if (!best || n < iox_client_inflight(best)) best = c;
    }
    return best;
}

static int put_on(struct iox_client_conn *c, const void *bytes, size_t len, iox_client_cb cb, void *arg)
{
    if (iox_sbuf_append(&c->out, bytes, len) < 0) return -ENOMEM;
    struct iox_client_req *q = &c->fifo[c->tail % c->pool->cfg.max_inflight];
    q->cb = cb;
    q->arg = arg;
    q->len = (uint32_t)len;
    c->tail++;
    iox_client_mark_dirty(c);
    return 0;
}

static uint32_t nwaiting(const struct iox_client_pool *p) { return p->wtail - p->whead; }

static void wait_reset_if_empty(struct iox_client_pool *p)
{
    if (p->whead != p->wtail) return;
    p->wbuf.len = 0;
    p->wbuf_off = 0;
    iox_sbuf_trim(&p->wbuf);
}

void iox_client_pump(struct iox_client_pool *p)
{
    while (p->whead != p->wtail) {
        struct iox_client_conn *c = least_loaded(p);
        if (!c) break;
        struct iox_client_req q = p->wait[p->whead % p->cfg.max_queued];
        if (put_on(c, p->wbuf.p + p->wbuf_off, q.len, q.cb, q.arg) < 0) break;   /* retried later */
        p->wbuf_off += q.len;
        p->whead++;
    }
    wait_reset_if_empty(p);
}

static void fail_waiting(struct iox_client_pool *p, int status)
{
    while (p->whead != p->wtail) {
        struct iox_client_req q = p->wait[p->whead % p->cfg.max_queued];
        p->whead++;
        p->wbuf_off += q.len;
        p->st.failures++;
        q.cb(q.arg, status, NULL, 0);   /* may queue new requests: they are failed too, or wait */
    }
    wait_reset_if_empty(p);
}

static int down_too_long(const struct iox_client_pool *p)
{
    return p->nup == 0 && p->cfg.down_fail_ms != UINT32_MAX &&
           p->r->now_ms - p->down_since_ms > p->cfg.down_fail_ms;
}

int iox_client_request(struct iox_client_pool *p, const void *bytes, size_t len, iox_client_cb cb, void *arg)
{
    if (p->stopping) return -ESHUTDOWN;
    if (!len || !cb || len > UINT32_MAX / 4) return -EINVAL;
    struct iox_client_conn *c = p->whead == p->wtail ? least_loaded(p) : NULL;
    if (c) {
        int rc = put_on(c, bytes, len, cb, arg);
        if (rc) return rc;
        p->st.requests++;
        return 0;
    }
    if (down_too_long(p)) return -ENOTCONN;
    if (nwaiting(p) >= p->cfg.max_queued) return -EAGAIN;
    if (iox_sbuf_append(&p->wbuf, bytes, len) < 0) return -ENOMEM;
    struct iox_client_req *q = &p->wait[p->wtail % p->cfg.max_queued];
    q->cb = cb;
    q->arg = arg;
    q->len = (uint32_t)len;
    p->wtail++;
    p->st.requests++;
    iox_client_pump(p);
    return 0;
}

/* ---- the kind ---- */

static void client_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    struct iox_client_pool *p = ctx;
    unsigned op = iox_ud_op(cqe->ud);
    uint32_t idx = iox_ud_idx(cqe->ud);
    int more = op == IOX_OP_RECV && (cqe->flags & IOX_CQE_F_MORE);
    int has_buf = op == IOX_OP_RECV && cqe->res > 0 && (cqe->flags & IOX_CQE_F_BUFFER);
    unsigned bid = cqe->flags >> IOX_CQE_BUFFER_SHIFT;
    if (idx == GUARD_IDX) { p->guard_fired = 1; return; }
    if (!more) p->ops--;
    struct iox_client_conn *c = idx < p->cfg.conns ? &p->conns[idx] : NULL;
    if (!iox_dial_take(c ? &c->dl : NULL, r, cqe)) {
        /* Stale: cannot happen while the close waits for every op; kept as a guard. */
        if (has_buf) iox_seam_buf_return(r->seam, bid);
        return;
    }
    struct iox_client_event ev = {cqe->res, cqe->flags, NULL, 0};
    if (op == IOX_OP_CLOSE) {
        if (cqe->res < 0) IOX_WARN("client %s: close of connection %u: %s", p->peer, c->idx, strerror(-cqe->res));
        iox_client_fire(c, STREAM_CLIENT_EV_CLOSED, NULL);
        return;
    }
    if (c->state == STREAM_CLIENT_S_CLOSING || c->state == STREAM_CLIENT_S_CLOSING_SOCKET) {
        if (has_buf) iox_seam_buf_return(r->seam, bid);
        iox_client_fire(c, STREAM_CLIENT_EV_OP_DONE, NULL);
        return;
    }
    int res = cqe->res;
    char why[64];
    switch (op) {
    case IOX_OP_SOCKET:
        if (res >= 0) { iox_client_fire(c, STREAM_CLIENT_EV_SOCKET_OK, &ev); return; }
        iox_client_set_error(p, res, "socket");
        break;
    case IOX_OP_CONNECT:
        if (res == 0) { iox_client_fire(c, STREAM_CLIENT_EV_CONNECT_OK, NULL); return; }
        iox_client_set_error(p, res, "connect");
        break;
    case IOX_OP_RECV:
        if (res > 0) {
            if (!has_buf) { iox_client_set_error(p, -EPROTO, "recv without a buffer"); break; }
            ev.data = iox_seam_buf(r->seam, bid);
            ev.len = (uint32_t)res;
            iox_client_fire(c, STREAM_CLIENT_EV_RECV, &ev);
            iox_seam_buf_return(r->seam, bid);   /* replies were framed where they lie, or carried */
            if (!more) iox_client_fire(c, STREAM_CLIENT_EV_RECV_ENDED, NULL);
            return;
        }
        if (res == -ENOBUFS || (res == -ECANCELED && !more)) {
            iox_client_fire(c, STREAM_CLIENT_EV_RECV_ENDED, NULL);
            return;
        }
        if (res == 0) iox_client_set_error(p, 0, "the peer closed the connection");
        else iox_client_set_error(p, res, "recv");
        break;
    case IOX_OP_SEND:
        if (res > 0) { iox_client_fire(c, STREAM_CLIENT_EV_SENT, &ev); return; }
        iox_client_set_error(p, res ? res : -EPIPE, "send");
        break;
    case IOX_OP_CANCEL:
        return;
    default:
        snprintf(why, sizeof why, "unexpected completion (op %u)", op);
        iox_client_set_error(p, 0, why);
        break;
    }
    IOX_DEBUG("%s", p->last_error);
    iox_client_fire(c, STREAM_CLIENT_EV_IO_ERROR, NULL);
}

static void client_flush(struct iox_reactor *r, void *ctx)
{
    (void)r;
    struct iox_client_pool *p = ctx;
    for (unsigned i = 0; i < p->cfg.conns; i++) {
        struct iox_client_conn *c = &p->conns[i];
        if (c->dirty && !c->dl.send_busy) iox_client_fire(c, STREAM_CLIENT_EV_FLUSH, NULL);
    }
}

static void client_tick(struct iox_reactor *r, void *ctx)
{
    struct iox_client_pool *p = ctx;
    uint64_t now = r->now_ms;
    if (r->stopping && now >= r->stop_deadline_ms && !p->stopping) {
        /* The reactor's grace is over: what is still in flight will not be
         * waited for (busy() would hold the loop forever). */
        iox_client_pool_stop(p);
        return;
    }
    if (p->stopping) return;
    for (unsigned i = 0; i < p->cfg.conns; i++) {
        struct iox_client_conn *c = &p->conns[i];
        if (c->state == STREAM_CLIENT_S_DOWN) {
            if (now >= c->dl.retry_at_ms) iox_client_fire(c, STREAM_CLIENT_EV_OPEN, NULL);
        } else if (iox_dial_overdue(&c->dl, now) &&
                   (c->state == STREAM_CLIENT_S_SOCKETING || c->state == STREAM_CLIENT_S_CONNECTING ||
                    c->state == STREAM_CLIENT_S_HANDSHAKING)) {
            char why[80];
            snprintf(why, sizeof why, "not connected within %u ms (connect_timeout_ms)", p->cfg.connect_timeout_ms);
            iox_client_set_error(p, 0, why);
            iox_client_fire(c, STREAM_CLIENT_EV_TIMEOUT, NULL);
        }
    }
    if (down_too_long(p)) fail_waiting(p, -ENOTCONN);
}

static unsigned client_busy(struct iox_reactor *r, void *ctx)
{
    (void)r;
    struct iox_client_pool *p = ctx;
    unsigned n = nwaiting(p);
    for (unsigned i = 0; i < p->cfg.conns; i++) n += iox_client_inflight(&p->conns[i]);
    return n;
}

static unsigned client_counters(struct iox_reactor *r, void *ctx, struct iox_counter *out, unsigned max)
{
    (void)r;
    struct iox_client_stats st;
    iox_client_pool_stats(ctx, &st);
    const struct iox_counter c[] = {
        {"ioxide_client_requests_total", "Requests the client pools took.", 0, st.requests},
        {"ioxide_client_replies_total", "Replies matched to their requests.", 0, st.replies},
        {"ioxide_client_failures_total", "Requests that failed (connection lost, refused, down too long).", 0, st.failures},
        {"ioxide_client_connects_total", "Outbound connections that came up.", 0, st.connects},
        {"ioxide_client_connect_failures_total", "Outbound connection attempts that failed.", 0, st.connect_failures},
        {"ioxide_client_connections_up", "Outbound connections up now.", 1, st.up_now},
        {"ioxide_client_inflight", "Requests in flight now.", 1, st.inflight_now},
    };
    unsigned n = 0;
    for (; n < sizeof c / sizeof c[0] && n < max; n++) out[n] = c[n];
    return n;
}

static const struct iox_kind client_kind = {
    .name = "stream_client", .on_cqe = client_cqe, .on_flush = client_flush, .on_tick = client_tick,
    .busy = client_busy, .counters = client_counters,
};

/* ---- open, stop, close ---- */

static int resolve(struct iox_client_pool *p, char *why, size_t why_len)
{
    char host[256];
    const char *h = p->cfg.host;
    size_t n = strlen(h);
    if (n >= sizeof host) { snprintf(why, why_len, "client: host name too long"); return -EINVAL; }
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') { memcpy(host, h + 1, n - 2); host[n - 2] = 0; }
    else memcpy(host, h, n + 1);
    snprintf(p->peer, sizeof p->peer, "%s:%u", h, p->cfg.port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char port[8];
    snprintf(port, sizeof port, "%u", p->cfg.port);
    /* Once, at open (startup): never on the hot path. */
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(why, why_len, "client: cannot resolve %s: %s (use an IPv4/IPv6 literal or a resolvable name)",
                 h, rc ? gai_strerror(rc) : "no address");
        return -EINVAL;
    }
    memcpy(&p->sa, res->ai_addr, res->ai_addrlen);
    p->salen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int iox_client_pool_open(struct iox_reactor *r, const struct iox_client_config *cfg,
                         struct iox_client_pool **out, char *why, size_t why_len)
{
    if (!cfg || !cfg->proto || !cfg->proto->reply_len || !cfg->port) {
        snprintf(why, why_len, "client: a port and a protocol with reply_len are required");
        return -EINVAL;
    }
    struct iox_client_pool *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->r = r;
    p->cfg = *cfg;
    if (!p->cfg.host || !*p->cfg.host) p->cfg.host = "127.0.0.1";
    if (!p->cfg.conns) p->cfg.conns = 2;
    if (!p->cfg.max_inflight) p->cfg.max_inflight = 128;
    if (!p->cfg.max_queued) p->cfg.max_queued = 1024;
    if (!p->cfg.connect_timeout_ms) p->cfg.connect_timeout_ms = 2000;
    if (!p->cfg.backoff_min_ms) p->cfg.backoff_min_ms = 50;
    if (!p->cfg.backoff_max_ms) p->cfg.backoff_max_ms = 2000;
    if (p->cfg.backoff_max_ms < p->cfg.backoff_min_ms) p->cfg.backoff_max_ms = p->cfg.backoff_min_ms;
    if (!p->cfg.down_fail_ms) p->cfg.down_fail_ms = 1000;
    p->owner = -1;
    int rc = resolve(p, why, why_len);
    if (rc) { free(p); return rc; }
    p->conns = calloc(p->cfg.conns, sizeof *p->conns);
    p->wait = calloc(p->cfg.max_queued, sizeof *p->wait);
    if (!p->conns || !p->wait) goto nomem;
    for (unsigned i = 0; i < p->cfg.conns; i++) {
        struct iox_client_conn *c = &p->conns[i];
        c->pool = p;
        c->idx = i;
        iox_dial_init(&c->dl, r, 0, i, &p->ops);   /* owner set below, once registered */
        stream_client_init(&c->state);
        c->fifo = calloc(p->cfg.max_inflight, sizeof *c->fifo);
        if (!c->fifo) goto nomem;
    }
    p->owner = iox_reactor_register_kind(r, &client_kind, p);
    if (p->owner < 0) goto nomem;
    for (unsigned i = 0; i < p->cfg.conns; i++) p->conns[i].dl.owner = (uint8_t)p->owner;
    uint32_t tick = p->cfg.backoff_min_ms < p->cfg.connect_timeout_ms ? p->cfg.backoff_min_ms : p->cfg.connect_timeout_ms;
    iox_reactor_want_tick(r, tick / 2 < 10 ? 10 : tick / 2);
    p->down_since_ms = r->now_ms;
    for (unsigned i = 0; i < p->cfg.conns; i++) iox_client_fire(&p->conns[i], STREAM_CLIENT_EV_OPEN, NULL);
    *out = p;
    return 0;
nomem:
    for (unsigned i = 0; p->conns && i < p->cfg.conns; i++) free(p->conns[i].fifo);
    free(p->conns);
    free(p->wait);
    free(p);
    snprintf(why, why_len, "client: out of memory for the pool");
    return -ENOMEM;
}

void iox_client_pool_stop(struct iox_client_pool *p)
{
    if (!p || p->stopping) return;
    p->stopping = 1;
    iox_client_set_error(p, -ECANCELED, "the pool is stopping");
    fail_waiting(p, -ECANCELED);
    for (unsigned i = 0; i < p->cfg.conns; i++) iox_client_fire(&p->conns[i], STREAM_CLIENT_EV_STOP, NULL);
}

void iox_client_pool_close(struct iox_client_pool *p)
{
    if (!p) return;
    struct iox_reactor *r = p->r;
    iox_client_pool_stop(p);
    /* Wait (bounded) for every op of ours to leave the ring, so no recv
     * lands in a freed buffer. Only on the real ring. */
    if (iox_dial_drain(r, (unsigned)p->owner, GUARD_IDX, &p->ops, &p->guard_fired))
        IOX_WARN("client %s: %u ops still in the ring at close", p->peer, p->ops);
    for (unsigned i = 0; i < p->cfg.conns; i++) {
        struct iox_client_conn *c = &p->conns[i];
        iox_dial_forget(&c->dl);
        iox_client_fire(c, STREAM_CLIENT_EV_ABANDON, NULL);
        iox_sbuf_free(&c->out);
        iox_sbuf_free(&c->sending);
        iox_sbuf_free(&c->carry);
        free(c->fifo);
    }
    iox_sbuf_free(&p->wbuf);
    iox_reactor_unregister_kind(r, p->owner);
    free(p->conns);
    free(p->wait);
    free(p);
}

unsigned iox_client_pool_ops(const struct iox_client_pool *p) { return p->ops; }
unsigned iox_client_pool_up(const struct iox_client_pool *p) { return p->nup; }
const char *iox_client_pool_last_error(const struct iox_client_pool *p) { return p->last_error; }
struct iox_reactor *iox_client_pool_reactor(const struct iox_client_pool *p) { return p->r; }

void iox_client_pool_stats(const struct iox_client_pool *p, struct iox_client_stats *out)
{
    *out = p->st;
    out->up_now = p->nup;
    out->queued_now = nwaiting(p);
    uint32_t n = 0;
    for (unsigned i = 0; i < p->cfg.conns; i++) n += iox_client_inflight(&p->conns[i]);
    out->inflight_now = n;
}
