/* reactor.c — the per-core loop: accept, dispatch, flush, timers, stop.
 * See iox_reactor.h for the model. */
#include "conn_buffers.h"
#include "conn_internal.h"
#include "core_internal.h"
#include "http_conn_machine.h"
#include "iox_log.h"
#include "iox_reactor.h"
#include "iox_ud.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ms(void)
{
    struct timespec ts;
    /* vDSO: no syscall. Coarse is enough for timeouts of tens of ms. */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void update_date(struct iox_reactor *r)
{
    time_t now = time(NULL);
    if ((uint64_t)now == r->date_sec) return;
    r->date_sec = (uint64_t)now;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(r->date, sizeof r->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

static const struct iox_kind http_kind;

static int reactor_alloc(struct iox_reactor *r, const struct iox_server_config *cfg)
{
    r->cfg = cfg;
    r->max_conns = cfg->max_conns;
    r->listen_fd = -1;
    r->conns = calloc(r->max_conns, sizeof *r->conns);
    r->free_slots = calloc(r->max_conns, sizeof *r->free_slots);
    /* Response rings: a power of two above the async limit, so sync answers
     * behind outstanding async ones have room too. Touched only as used. */
    r->max_async = cfg->max_async ? cfg->max_async : IOX_MAX_ASYNC_DEFAULT;
    if (r->max_async > IOX_MAX_ASYNC_LIMIT) r->max_async = IOX_MAX_ASYNC_LIMIT;
    uint32_t nslot = 2;
    while (nslot < r->max_async + 1) nslot *= 2;
    r->rslot_mask = nslot - 1;
    r->rslots = calloc((size_t)r->max_conns * nslot, sizeof *r->rslots);
    if (!r->conns || !r->free_slots || !r->rslots) return -ENOMEM;
    for (uint32_t i = 0; i < r->max_conns; i++) {
        iox_conn_init_slot(r, &r->conns[i], i);
        r->free_slots[i] = r->max_conns - 1 - i;   /* pop order: slot 0 first */
    }
    r->nfree = r->max_conns;
    r->http_owner = iox_reactor_register_kind(r, &http_kind, r);
    if (r->http_owner < 0) return r->http_owner;
    r->now_ms = mono_ms();
    update_date(r);
    return 0;
}

int reactor_alloc_public(struct iox_reactor *r, const struct iox_server_config *cfg)
{
    return reactor_alloc(r, cfg);
}

int iox_reactor_init_sim(struct iox_reactor *r, struct iox_seam *seam,
                         const struct iox_server_config *cfg)
{
    memset(r, 0, sizeof *r);
    r->seam = seam;
    r->nreactors = 1;
    return reactor_alloc(r, cfg);
}

void iox_reactor_fini(struct iox_reactor *r)
{
    for (uint32_t i = 0; r->conns && i < r->max_conns; i++) {
        struct iox_conn *c = &r->conns[i];
        if (c->in_use && c->fd >= 0 && !r->uring) c->fd = -1;  /* simulated fds */
        if (c->in_use && c->fd >= 0) close(c->fd);
        c->in_len = 0;
        iox_carry_release(c);
        c->send_inflight = 0;
        c->wsent = c->wlen;
        iox_slots_release(c);
        iox_out_release(c);
    }
    iox_block_list_free(&r->free_carry);
    iox_block_list_free(&r->free_wbuf);
    for (unsigned k = 0; k < sizeof r->free_wbuf_big / sizeof r->free_wbuf_big[0]; k++)
        iox_block_list_free(&r->free_wbuf_big[k]);
    free(r->conns);
    free(r->free_slots);
    free(r->rslots);
    r->conns = NULL;
    r->free_slots = NULL;
    iox_reactor_kinds_free(r);
}

/* ---- accept ---- */

static uint64_t accept_ud(void) { return iox_ud(IOX_OP_ACCEPT, IOX_OWN_REACTOR, 0, 0); }

static void accept_pause(struct iox_reactor *r, int why)
{
    if (r->accept_paused) return;
    r->accept_paused = (uint8_t)why;
    r->n_accept_pauses++;
    if (r->accept_armed && iox_seam_cancel(r->seam, accept_ud(), iox_ud(IOX_OP_CANCEL, IOX_OWN_REACTOR, 0, 0)) < 0)
        IOX_WARN("cannot cancel accept while paused");
}

struct iox_conn *iox_reactor_adopt(struct iox_reactor *r, int fd)
{
    if (!r->nfree) return NULL;
    uint32_t idx = r->free_slots[--r->nfree];
    struct iox_conn *c = &r->conns[idx];
    r->nconns++;
    r->n_accepted++;
    iox_conn_open(c, fd);
    return c;
}

void iox_reactor_slot_freed(struct iox_reactor *r)
{
    if (r->accept_paused == 1) r->accept_paused = 0;   /* full table: room again */
}

static void on_accept(struct iox_reactor *r, const struct iox_cqe *cqe)
{
    if (!(cqe->flags & IOX_CQE_F_MORE)) r->accept_armed = 0;
    if (cqe->res >= 0) {
        if (r->stopping || !iox_reactor_adopt(r, cqe->res)) {
            /* Table full (or stopping): refuse this one and stop accepting
             * until a slot frees, so the backlog holds the rest. */
            close(cqe->res);
            if (!r->stopping) accept_pause(r, 1);
        }
        if (r->nfree == 0 && !r->stopping) accept_pause(r, 1);
        return;
    }
    if (cqe->res == -ECANCELED || r->stopping) return;
    if (cqe->res == -EMFILE || cqe->res == -ENFILE || cqe->res == -ENOBUFS || cqe->res == -ENOMEM) {
        /* Out of descriptors/memory: re-arming now would spin. Wait a tick. */
        if (r->accept_paused != 2) IOX_WARN("accept: %s — pausing accept for a tick; raise `ulimit -n` or lower IOX_MAX_CONNS", strerror(-cqe->res));
        r->accept_paused = 0;
        accept_pause(r, 2);
        return;
    }
    IOX_WARN("accept: %s", strerror(-cqe->res));
}

/* ---- timers ---- */

static void arm_tick(struct iox_reactor *r)
{
    if (r->tick_armed || !r->uring) return;
    if (iox_seam_timeout(r->seam, (uint64_t)r->tick_ms * 1000000ull,
                         iox_ud(IOX_OP_TICK, IOX_OWN_REACTOR, 0, 0)) == 0)
        r->tick_armed = 1;
}

static void fire_due(struct iox_reactor *r, struct iox_conn_list *l)
{
    while (l->head && l->head->deadline_ms <= r->now_ms)
        iox_conn_on_timer(l->head);
}

static void http_tick(struct iox_reactor *r, void *ctx)
{
    (void)ctx;
    fire_due(r, &r->idle);
    fire_due(r, &r->linger);
    if (r->stopping && r->now_ms >= r->stop_deadline_ms) {
        /* Grace is over: whatever is still open is closed now. */
        for (uint32_t i = 0; i < r->max_conns; i++) {
            struct iox_conn *c = &r->conns[i];
            if (c->in_use && c->state != HTTP_CONN_S_CLOSING && c->state != HTTP_CONN_S_CLOSED)
                iox_conn_fire(c, HTTP_CONN_EV_FAIL, NULL);
        }
    }
}

void iox_reactor_advance_clock(struct iox_reactor *r, uint64_t now_ms)
{
    r->now_ms = now_ms;
    IOX_KINDS_CALL(r, on_tick);
}

static void on_tick(struct iox_reactor *r)
{
    r->tick_armed = 0;
    if (r->accept_paused == 2) r->accept_paused = 0;
    update_date(r);
    iox_reactor_advance_clock(r, mono_ms());
}

/* ---- stop ---- */

void iox_reactor_begin_stop(struct iox_reactor *r)
{
    if (r->stopping) return;
    r->stopping = 1;
    r->stop_deadline_ms = r->now_ms + r->cfg->shutdown_grace_ms;
    IOX_DEBUG("stopping: %u connections open", r->nconns);
    if (r->accept_armed)
        iox_seam_cancel(r->seam, accept_ud(), iox_ud(IOX_OP_CANCEL, IOX_OWN_REACTOR, 0, 0));
    if (r->listen_fd >= 0) { close(r->listen_fd); r->listen_fd = -1; }
    IOX_KINDS_CALL(r, on_stop);
}

static void http_stop(struct iox_reactor *r, void *ctx)
{
    (void)ctx;
    for (uint32_t i = 0; i < r->max_conns; i++)
        if (r->conns[i].in_use) iox_conn_on_shutdown(&r->conns[i]);
}

static unsigned http_busy(struct iox_reactor *r, void *ctx)
{
    (void)ctx;
    return r->nconns;
}

/* ---- messages ---- */

int iox_reactor_send_msg(struct iox_reactor *r, unsigned to, struct iox_msg *m)
{
    if (to >= r->nreactors) return -EINVAL;
    m->from = (uint16_t)r->id;
    m->to = (uint16_t)to;
    m->status = 0;
    int rc = iox_seam_msg_ring(r->seam, r->peer_ring_fds[to], m->kind,
                               iox_ud_ptr(IOX_OP_MSG, m), iox_ud_ptr(IOX_OP_MSG_SENT, m));
    if (rc < 0) {
        /* No SQE now: retry next turn. The message stays ours until sent. */
        m->next = r->msg_retry;
        r->msg_retry = m;
    }
    return 0;
}

static void on_msg_cqe(struct iox_reactor *r, const struct iox_cqe *cqe)
{
    struct iox_msg *m = iox_ud_to_ptr(cqe->ud);
    if (iox_ud_op(cqe->ud) == IOX_OP_MSG_SENT) {
        if (cqe->res >= 0 || !m) return;
        if (cqe->res == -EOVERFLOW || cqe->res == -EAGAIN || cqe->res == -EBUSY) {
            /* Target CQ full or busy: still ours; send it again next turn. */
            m->next = r->msg_retry;
            r->msg_retry = m;
            return;
        }
        /* The target cannot take it: bounce it to its kind's handler here. */
        IOX_WARN("msg_ring to reactor %u: %s — message bounced to its sender", m->to, strerror(-cqe->res));
        m->status = cqe->res;
        iox_msg_handler h = iox_reactor_msg_handler(r, m->kind);
        if (h) h(r, m);
        return;
    }
    uint32_t kind = (uint32_t)cqe->res;
    if (!m) {
        /* From the main thread: no payload. */
        if (kind == IOX_MSG_SHUTDOWN) iox_reactor_begin_stop(r);
        else if (iox_reactor_msg_handler(r, kind)) iox_reactor_msg_handler(r, kind)(r, NULL);
        return;
    }
    iox_msg_handler h = iox_reactor_msg_handler(r, kind);
    if (h) h(r, m);
    else IOX_ERROR("message of unknown kind %u dropped", kind);
}

/* ---- dispatch and flush ---- */

static void http_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    (void)ctx;
    unsigned op = iox_ud_op(cqe->ud);
    uint32_t idx = iox_ud_idx(cqe->ud);
    struct iox_conn *c = idx < r->max_conns ? &r->conns[idx] : NULL;
    if (!c || !c->in_use || c->gen != iox_ud_gen(cqe->ud)) {
        /* A late completion for a closed slot: only a recv buffer needs
         * handing back. */
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
    (void)ctx;
    struct iox_conn *c = r->parked;
    r->parked = NULL;
    while (c) {
        struct iox_conn *next = c->parked_next;
        c->parked_linked = 0;
        if (c->parked && c->in_use) iox_conn_rearm(c);
        c = next;
    }
    c = r->dirty;
    r->dirty = NULL;
    while (c) {
        struct iox_conn *next = c->dirty_next;
        c->dirty_linked = 0;
        if (c->dirty && c->in_use) iox_conn_start_send(c);
        c = next;
    }
}

static const struct iox_kind http_kind = {
    .name = "http", .on_cqe = http_cqe, .on_flush = http_flush, .on_tick = http_tick,
    .on_stop = http_stop, .busy = http_busy,
};

void iox_reactor_dispatch(struct iox_reactor *r, const struct iox_cqe *cqe)
{
    unsigned owner = iox_ud_owner(cqe->ud), op = iox_ud_op(cqe->ud);
    if (owner == IOX_OWN_REACTOR) {
        if (op == IOX_OP_ACCEPT) on_accept(r, cqe);
        else if (op == IOX_OP_TICK) on_tick(r);
        return;
    }
    if (owner == IOX_OWN_MSG) { on_msg_cqe(r, cqe); return; }
    const struct iox_kind *k = owner < r->nkinds ? r->kinds[owner].kind : NULL;
    if (k) { k->on_cqe(r, r->kinds[owner].ctx, cqe); return; }
    /* An unregistered owner (a kind gone, late completions): nothing to
     * resume, but a recv buffer must go back to the ring. */
    r->n_stale_cqes++;
    if (cqe->res > 0 && (cqe->flags & IOX_CQE_F_BUFFER))
        iox_seam_buf_return(r->seam, cqe->flags >> IOX_CQE_BUFFER_SHIFT);
}

int iox_reactor_turn(struct iox_reactor *r)
{
    struct iox_cqe cqes[256];
    int rc = iox_seam_uring_submit_and_wait(r->uring, 1);
    if (rc < 0) return rc;
    unsigned n;
    while ((n = iox_seam_uring_reap(r->uring, cqes, 256)) > 0)
        for (unsigned i = 0; i < n; i++) iox_reactor_dispatch(r, &cqes[i]);
    return 0;
}

void iox_reactor_flush(struct iox_reactor *r)
{
    IOX_KINDS_CALL(r, on_flush);
    struct iox_msg *m = r->msg_retry;
    r->msg_retry = NULL;
    while (m) {
        struct iox_msg *next = m->next;
        iox_reactor_send_msg(r, m->to, m);
        m = next;
    }
    if (!r->stopping && !r->accept_armed && !r->accept_paused && r->listen_fd >= 0 && r->nfree) {
        if (iox_seam_accept_multishot(r->seam, r->listen_fd, accept_ud()) == 0) r->accept_armed = 1;
    }
    arm_tick(r);
}
