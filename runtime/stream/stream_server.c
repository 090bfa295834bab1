/* stream_server.c — the stream layer as a protocol of the reactor: per
 * reactor and listener its table of streams, its timers, its kind's hooks
 * (completions, end-of-turn flush, tick, stop, busy), and the stream API
 * that is not about bytes (stream.h: control, refs, accessors). */
#include "stream_internal.h"
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- configuration ---- */

void iox_stream_config_defaults(struct iox_stream_config *cfg)
{
    if (!cfg->idle_timeout_ms) cfg->idle_timeout_ms = 30000;
    if (!cfg->linger_ms) cfg->linger_ms = 2000;
    if (!cfg->max_conns) cfg->max_conns = 16384;
    if (!cfg->write_cap) cfg->write_cap = 256 * 1024;
    if (!cfg->max_carry) cfg->max_carry = 64 * 1024;
    if (!cfg->max_replies) cfg->max_replies = 16;
}

int iox_stream_config_from_env(struct iox_stream_config *cfg, char *why, size_t why_len)
{
    int rc = 0;
    rc |= iox_env_u32("IDLE_TIMEOUT_MS", &cfg->idle_timeout_ms, 1, 86400000, why, why_len);
    rc |= iox_env_u32("IOX_LINGER_MS", &cfg->linger_ms, 1, 60000, why, why_len);
    rc |= iox_env_u32("IOX_MAX_CONNS", &cfg->max_conns, 1, 1u << 20, why, why_len);
    rc |= iox_env_u32("IOX_WRITE_CAP", &cfg->write_cap, 1024, 1u << 30, why, why_len);
    rc |= iox_env_u32("IOX_MAX_CARRY", &cfg->max_carry, 64, 1u << 30, why, why_len);
    rc |= iox_env_u32("IOX_MAX_REPLIES", &cfg->max_replies, 1, IOX_STREAM_MAX_REPLIES, why, why_len);
    return rc ? -EINVAL : 0;
}

const char *iox_stream_cause_name(enum iox_stream_cause cause)
{
    static const char *const names[] = {"closed", "aborted", "peer_eof", "error",
                                        "timeout", "too_big", "protocol", "shutdown"};
    return (unsigned)cause < sizeof names / sizeof *names ? names[cause] : "unknown";
}

/* ---- the kind ---- */

static void stream_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    struct iox_stream_server *srv = ctx;
    unsigned op = iox_ud_op(cqe->ud);
    uint32_t idx = iox_ud_idx(cqe->ud);
    struct iox_stream *s = idx < srv->max_conns ? &srv->s[idx] : NULL;
    if (!s || !iox_stream_in_use(s) || s->sk.gen != iox_ud_gen(cqe->ud)) {
        /* A late completion for a closed slot: only a recv buffer needs
         * handing back. */
        srv->st.stale_cqes++;
        r->n_stale_cqes++;
        if (op == IOX_OP_RECV && cqe->res > 0 && (cqe->flags & IOX_CQE_F_BUFFER))
            iox_seam_buf_return(r->seam, cqe->flags >> IOX_CQE_BUFFER_SHIFT);
        return;
    }
    iox_stream_on_cqe(s, op, cqe);
}

/* End of the turn: offer what resume / a freed reply slot let go (this
 * may write), re-arm parked recvs (every buffer of this turn is back), then
 * one send per stream with output. */
static void stream_flush(struct iox_reactor *r, void *ctx)
{
    (void)r;
    struct iox_stream_server *srv = ctx;
    struct iox_stream *s;
    while ((s = srv->kicked) != NULL) {
        srv->kicked = s->kick_next;
        s->kick_linked = 0;
        if (s->kicked && iox_stream_in_use(s)) {
            s->kicked = 0;
            iox_stream_fire(s, STREAM_CONN_EV_KICK, NULL);
        }
    }
    struct iox_sock *k = iox_sock_take_parked(&srv->sh);
    while (k) {
        struct iox_sock *next = k->parked_next;
        k->parked_linked = 0;
        s = iox_stream_of_sock(k);
        if (k->parked && iox_stream_in_use(s)) iox_stream_rearm(s);
        k = next;
    }
    k = iox_sock_take_dirty(&srv->sh);
    while (k) {
        struct iox_sock *next = k->dirty_next;
        k->dirty_linked = 0;
        s = iox_stream_of_sock(k);
        if (k->dirty && iox_stream_in_use(s)) {
            k->dirty = 0;
            iox_stream_fire(s, STREAM_CONN_EV_FLUSH, NULL);
        }
        k = next;
    }
}

static void fire_due(struct iox_reactor *r, struct iox_sock_list *l)
{
    while (l->head && l->head->deadline_ms <= r->now_ms) iox_stream_on_timer(iox_stream_of_sock(l->head));
}

static void stream_tick(struct iox_reactor *r, void *ctx)
{
    struct iox_stream_server *srv = ctx;
    fire_due(r, &srv->sh.idle);
    fire_due(r, &srv->sh.linger);
    if (r->stopping && r->now_ms >= r->stop_deadline_ms) {
        /* The grace is over: whatever is still open is closed now. */
        for (uint32_t i = 0; i < srv->max_conns; i++) {
            struct iox_stream *s = &srv->s[i];
            if (!iox_stream_in_use(s)) continue;
            iox_stream_set_cause(s, IOX_STREAM_SHUTDOWN);
            iox_stream_fire(s, STREAM_CONN_EV_ABORT, NULL);   /* closing ignores it */
        }
    }
}

static void stream_stop(struct iox_reactor *r, void *ctx)
{
    (void)r;
    struct iox_stream_server *srv = ctx;
    srv->stopping = 1;
    IOX_DEBUG("stream: stopping with %u streams open", srv->nconns);
    for (uint32_t i = 0; i < srv->max_conns; i++) {
        struct iox_stream *s = &srv->s[i];
        if (!iox_stream_in_use(s)) continue;
        if (!srv->cfg.on_shutdown) iox_stream_set_cause(s, IOX_STREAM_SHUTDOWN);
        iox_stream_fire(s, STREAM_CONN_EV_SHUTDOWN, NULL);
    }
}

static unsigned stream_busy(struct iox_reactor *r, void *ctx)
{
    (void)r;
    return ((struct iox_stream_server *)ctx)->nconns;
}

static unsigned stream_counters(struct iox_reactor *r, void *ctx, struct iox_counter *out, unsigned max)
{
    (void)r;
    struct iox_stream_stats st;
    iox_stream_server_stats(ctx, &st);
    const struct iox_counter c[] = {
        {"ioxide_stream_accepted_total", "Stream connections opened.", 0, st.accepted},
        {"ioxide_stream_closed_total", "Stream connections closed.", 0, st.closed},
        {"ioxide_stream_connections_open", "Stream connections open now.", 1, st.open},
        {"ioxide_stream_received_bytes_total", "Bytes received on stream connections.", 0, st.bytes_in},
        {"ioxide_stream_sent_bytes_total", "Bytes sent on stream connections.", 0, st.bytes_out},
        {"ioxide_stream_timeouts_total", "Stream connections closed by the idle timeout.", 0, st.timeouts},
        {"ioxide_stream_enobufs_total", "Receive re-arms after the provided buffer ring ran dry.", 0, st.enobufs},
    };
    unsigned n = 0;
    for (; n < sizeof c / sizeof c[0] && n < max; n++) out[n] = c[n];
    return n;
}

static const struct iox_kind stream_kind = {
    .name = "stream", .on_cqe = stream_cqe, .on_flush = stream_flush, .on_tick = stream_tick,
    .on_stop = stream_stop, .busy = stream_busy, .counters = stream_counters,
};

/* ---- open, adopt, close ---- */

int iox_stream_server_open(struct iox_reactor *r, const struct iox_stream_config *cfg,
                           unsigned listener, struct iox_stream_server **out)
{
    if (!cfg || !cfg->on_data || cfg->max_replies > IOX_STREAM_MAX_REPLIES) return -EINVAL;
    struct iox_stream_server *srv = calloc(1, sizeof *srv);
    if (!srv) return -ENOMEM;
    srv->r = r;
    srv->cfg = *cfg;
    iox_stream_config_defaults(&srv->cfg);
    srv->listener = listener;
    srv->max_conns = srv->cfg.max_conns;
    /* Reply rings: 2 × max_replies entries (a plain write behind open
     * replies takes an entry after each), a power of two. */
    uint32_t n = 2;
    while (n < 2 * srv->cfg.max_replies) n *= 2;
    srv->rmask = (uint16_t)(n - 1);
    srv->s = calloc(srv->max_conns, sizeof *srv->s);
    srv->free_slots = calloc(srv->max_conns, sizeof *srv->free_slots);
    srv->owner = -1;
    if (!srv->s || !srv->free_slots) goto nomem;
    for (uint32_t i = 0; i < srv->max_conns; i++) {
        iox_stream_init_slot(srv, &srv->s[i], i);
        srv->free_slots[i] = srv->max_conns - 1 - i;   /* pop order: slot 0 first */
    }
    srv->nfree = srv->max_conns;
    srv->owner = iox_reactor_register_kind(r, &stream_kind, srv);
    if (srv->owner < 0) goto nomem;
    srv->sh.r = r;
    srv->sh.owner = srv->owner;
    srv->sh.name = "stream";
    srv->sh.idle_ms = srv->cfg.idle_timeout_ms;
    srv->sh.linger_ms = srv->cfg.linger_ms;
    uint32_t tick = srv->cfg.idle_timeout_ms / 4;
    if (srv->cfg.linger_ms / 4 < tick) tick = srv->cfg.linger_ms / 4;
    iox_reactor_want_tick(r, tick);
    *out = srv;
    return 0;
nomem:
    free(srv->s);
    free(srv->free_slots);
    free(srv);
    return -ENOMEM;
}

void iox_stream_server_close(struct iox_stream_server *srv)
{
    if (!srv) return;
    struct iox_reactor *r = srv->r;
    IOX_DEBUG("stream server closed: %llu accepted, %llu stale CQEs, %llu ENOBUFS",
              (unsigned long long)srv->st.accepted, (unsigned long long)srv->st.stale_cqes,
              (unsigned long long)srv->st.enobufs);
    for (uint32_t i = 0; i < srv->max_conns; i++) {
        struct iox_stream *s = &srv->s[i];
        if (iox_stream_in_use(s)) {
            if (s->sk.fd >= 0 && r->uring) iox_seam_close_sync(r->seam, s->sk.fd);   /* simulated fds are not ours */
            s->sk.fd = -1;
            s->writes_off = 1;
            s->input_off = 1;
            /* Whatever it was doing, it did not finish: aborted. */
            if (srv->cfg.on_close) srv->cfg.on_close(s, IOX_STREAM_ABORTED, srv->cfg.ctx);
            srv->st.closed++;
        }
        iox_sock_buffers_drop(&srv->sh, &s->sk);
        if (s->rs)
            for (uint32_t k = 0; k <= srv->rmask; k++) iox_sbuf_free(&s->rs[k].side);
        free(s->rs);
    }
    iox_sock_host_free(&srv->sh);
    if (srv->owner >= 0) iox_reactor_unregister_kind(r, srv->owner);
    free(srv->s);
    free(srv->free_slots);
    free(srv);
}

struct iox_stream *iox_stream_adopt(struct iox_stream_server *srv, int fd)
{
    if (!srv->nfree || srv->stopping) return NULL;
    uint32_t idx = srv->free_slots[--srv->nfree];
    struct iox_stream *s = &srv->s[idx];
    srv->nconns++;
    srv->st.accepted++;
    /* The table is full now: stop accepting before the next socket has to
     * be refused (the backlog holds it). */
    if (!srv->nfree) iox_reactor_accept_pause(srv->r, srv->listener);
    iox_stream_open_slot(s, fd);
    return s;
}

void iox_stream_server_stats(const struct iox_stream_server *srv, struct iox_stream_stats *out)
{
    *out = srv->st;
    out->open = srv->nconns;
}

/* ---- the protocol ---- */

static int proto_open(struct iox_reactor *r, const void *proto_cfg, unsigned listener, void **ctx,
                      char *why, size_t why_len)
{
    const struct iox_stream_config *cfg = proto_cfg;
    if (!cfg || !cfg->on_data) {
        snprintf(why, why_len, "listener %u: iox_stream_protocol needs a struct iox_stream_config with on_data as proto_cfg",
                 listener);
        return -EINVAL;
    }
    if (cfg->max_replies > IOX_STREAM_MAX_REPLIES) {
        snprintf(why, why_len, "listener %u: max_replies %u is over %u (IOX_STREAM_MAX_REPLIES)", listener,
                 cfg->max_replies, IOX_STREAM_MAX_REPLIES);
        return -EINVAL;
    }
    struct iox_stream_server *srv;
    int rc = iox_stream_server_open(r, cfg, listener, &srv);
    if (rc < 0) {
        snprintf(why, why_len, "reactor %u: out of memory for the stream table (IOX_MAX_CONNS)", r->id);
        return rc;
    }
    iox_reactor_want_conns(r, srv->max_conns);   /* the ring's direct descriptor table */
    *ctx = srv;
    return 0;
}

static int proto_accept(struct iox_reactor *r, void *ctx, int fd)
{
    (void)r;
    return iox_stream_adopt(ctx, fd) ? 0 : -ENOSPC;
}

static void proto_close(struct iox_reactor *r, void *ctx)
{
    (void)r;
    iox_stream_server_close(ctx);
}

const struct iox_protocol iox_stream_protocol = {
    .name = "stream", .open = proto_open, .on_accept = proto_accept, .close = proto_close,
};

struct iox_stream_server *iox_stream_server_of(struct iox_reactor *r, unsigned listener)
{
    if (listener >= r->nlisteners || r->listeners[listener].proto != &iox_stream_protocol) return NULL;
    return r->listeners[listener].ctx;
}

/* ---- a stream: accessors, control, refs ---- */

struct iox_stream_server *iox_stream_server_of_stream(const struct iox_stream *s) { return s->srv; }
struct iox_reactor *iox_stream_reactor(const struct iox_stream *s) { return s->srv->r; }
int iox_stream_fd(const struct iox_stream *s) { return s->sk.fd; }
void *iox_stream_user(const struct iox_stream *s) { return s->user; }
void iox_stream_set_user(struct iox_stream *s, void *user) { s->user = user; }
int iox_stream_error(const struct iox_stream *s) { return s->err; }

int iox_stream_want_drain(struct iox_stream *s)
{
    if (!iox_stream_writable(s)) return -EPIPE;
    s->want_drain = 1;
    iox_stream_mark_dirty(s);   /* the flush calls it at once when nothing is unsent */
    return 0;
}

void iox_stream_pause(struct iox_stream *s)
{
    if (!iox_stream_in_use(s) || s->paused) return;
    s->paused = 1;
    iox_stream_mark_kick(s);   /* the machine stops reading at the end of the turn (guard held) */
}

void iox_stream_resume(struct iox_stream *s)
{
    if (!iox_stream_in_use(s) || !s->paused) return;
    s->paused = 0;
    iox_stream_mark_kick(s);
}

void iox_stream_close(struct iox_stream *s)
{
    if (!iox_stream_in_use(s) || s->writes_off) return;
    s->writes_off = 1;
    s->input_off = 1;
    iox_stream_set_cause(s, IOX_STREAM_CLOSED);
    iox_stream_fire(s, STREAM_CONN_EV_CLOSE, NULL);
}

void iox_stream_abort(struct iox_stream *s)
{
    if (!iox_stream_in_use(s)) return;
    s->writes_off = 1;
    s->input_off = 1;
    iox_stream_set_cause(s, IOX_STREAM_ABORTED);
    iox_stream_fire(s, STREAM_CONN_EV_ABORT, NULL);
}

struct iox_stream_ref iox_stream_ref(const struct iox_stream *s)
{
    struct iox_stream_ref ref = {s->srv->r, s->srv, s->sk.idx, s->sk.gen};
    return ref;
}

struct iox_stream *iox_stream_deref(struct iox_stream_ref ref)
{
    if (!ref.srv || ref.idx >= ref.srv->max_conns) return NULL;
    struct iox_stream *s = &ref.srv->s[ref.idx];
    if (s->sk.gen != ref.gen || !iox_stream_in_use(s)) return NULL;
    if (s->state == STREAM_CONN_S_CLOSING || s->state == STREAM_CONN_S_LINGERING) return NULL;
    return s;
}
