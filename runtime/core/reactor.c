/* reactor.c — the per-core loop's own parts: listeners and accept, the
 * tick, messages, dispatch to the registered kinds, stop. It knows no
 * protocol (a test checks): connections belong to the listeners' protocols,
 * which register as kinds. See ioxide/reactor.h. */
#include "core_internal.h"
#include <ioxide/log.h>
#include <ioxide/reactor.h>
#include <ioxide/ud.h>
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

static int reactor_alloc(struct iox_reactor *r, const struct iox_server_config *cfg)
{
    r->cfg = cfg;
    r->nlisteners = cfg->nlisteners;
    if (r->nlisteners) {
        r->listeners = calloc(r->nlisteners, sizeof *r->listeners);
        if (!r->listeners) return -ENOMEM;
        for (unsigned i = 0; i < r->nlisteners; i++) {
            r->listeners[i].fd = -1;
            r->listeners[i].proto = cfg->listeners[i].proto;
        }
    }
    r->now_ms = mono_ms();
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

int iox_reactor_open_protocols(struct iox_reactor *r, char *why, size_t why_len)
{
    for (unsigned i = 0; i < r->nlisteners; i++) {
        struct iox_listener_rt *l = &r->listeners[i];
        int rc = l->proto->open(r, r->cfg->listeners[i].proto_cfg, i, &l->ctx, why, why_len);
        if (rc < 0) return rc;
    }
    return 0;
}

void iox_reactor_close_protocols(struct iox_reactor *r)
{
    for (unsigned i = 0; i < r->nlisteners; i++) {
        struct iox_listener_rt *l = &r->listeners[i];
        if (l->ctx && l->proto->close) l->proto->close(r, l->ctx);
        l->ctx = NULL;
    }
}

void iox_reactor_fini(struct iox_reactor *r)
{
    iox_reactor_close_protocols(r);
    for (unsigned i = 0; i < r->nlisteners; i++)
        if (r->listeners[i].fd >= 0) close(r->listeners[i].fd);
    free(r->listeners);
    r->listeners = NULL;
    r->nlisteners = 0;
    iox_reactor_kinds_free(r);
}

/* ---- accept ----
 * user_data of a listener's accept: owner REACTOR, slot = listener index
 * (generation 1 tells it from the tick, which has slot 0 and generation 0). */

static uint64_t accept_ud(unsigned i) { return iox_ud(IOX_OP_ACCEPT, IOX_OWN_REACTOR, 1, i); }
static uint64_t ctl_cancel_ud(void) { return iox_ud(IOX_OP_CANCEL, IOX_OWN_REACTOR, 0, 0); }

static void accept_pause(struct iox_reactor *r, unsigned i, int why)
{
    struct iox_listener_rt *l = &r->listeners[i];
    if (l->paused) return;
    l->paused = (uint8_t)why;
    r->n_accept_pauses++;
    if (l->armed && iox_seam_cancel(r->seam, accept_ud(i), ctl_cancel_ud()) < 0)
        IOX_WARN("cannot cancel accept while paused");
}

void iox_reactor_accept_pause(struct iox_reactor *r, unsigned listener)
{
    if (listener < r->nlisteners && !r->stopping) accept_pause(r, listener, 1);
}

void iox_reactor_accept_resume(struct iox_reactor *r, unsigned listener)
{
    if (listener < r->nlisteners && r->listeners[listener].paused == 1) r->listeners[listener].paused = 0;
}

static void on_accept(struct iox_reactor *r, const struct iox_cqe *cqe)
{
    unsigned i = iox_ud_idx(cqe->ud);
    if (i >= r->nlisteners) {
        if (cqe->res >= 0) close(cqe->res);
        return;
    }
    struct iox_listener_rt *l = &r->listeners[i];
    if (!(cqe->flags & IOX_CQE_F_MORE)) l->armed = 0;
    if (cqe->res >= 0) {
        r->n_accepted++;
        if (r->stopping || !l->ctx || l->proto->on_accept(r, l->ctx, cqe->res) < 0) {
            /* Full (or stopping): refuse this one and stop accepting until
             * the protocol has room again, so the backlog holds the rest. */
            close(cqe->res);
            if (!r->stopping) accept_pause(r, i, 1);
        }
        return;
    }
    if (cqe->res == -ECANCELED || r->stopping) return;
    if (cqe->res == -EMFILE || cqe->res == -ENFILE || cqe->res == -ENOBUFS || cqe->res == -ENOMEM) {
        /* Out of descriptors/memory: re-arming now would spin. Wait a tick. */
        if (l->paused != 2) IOX_WARN("accept: %s — pausing accept for a tick; raise `ulimit -n` or lower IOX_MAX_CONNS", strerror(-cqe->res));
        l->paused = 0;
        accept_pause(r, i, 2);
        return;
    }
    IOX_WARN("accept: %s", strerror(-cqe->res));
}

/* ---- the tick ---- */

static void arm_tick(struct iox_reactor *r)
{
    if (r->tick_armed || !r->uring) return;
    if (iox_seam_timeout(r->seam, (uint64_t)r->tick_ms * 1000000ull,
                         iox_ud(IOX_OP_TICK, IOX_OWN_REACTOR, 0, 0)) == 0)
        r->tick_armed = 1;
}

void iox_reactor_want_tick(struct iox_reactor *r, uint32_t ms)
{
    if (ms < 10) ms = 10;
    if (ms > 250) ms = 250;
    if (!r->tick_ms || ms < r->tick_ms) r->tick_ms = ms;
}

void iox_reactor_advance_clock(struct iox_reactor *r, uint64_t now_ms)
{
    r->now_ms = now_ms;
    IOX_KINDS_CALL(r, on_tick);
}

static void on_tick(struct iox_reactor *r)
{
    r->tick_armed = 0;
    for (unsigned i = 0; i < r->nlisteners; i++)
        if (r->listeners[i].paused == 2) r->listeners[i].paused = 0;
    iox_reactor_advance_clock(r, mono_ms());
}

/* ---- stop ---- */

void iox_reactor_begin_stop(struct iox_reactor *r)
{
    if (r->stopping) return;
    r->stopping = 1;
    r->stop_deadline_ms = r->now_ms + (r->cfg->shutdown_grace_ms == UINT32_MAX ? 0 : r->cfg->shutdown_grace_ms);
    IOX_DEBUG("stopping: %u ops/connections open", iox_reactor_kinds_busy(r));
    for (unsigned i = 0; i < r->nlisteners; i++) {
        struct iox_listener_rt *l = &r->listeners[i];
        if (l->armed) iox_seam_cancel(r->seam, accept_ud(i), ctl_cancel_ud());
        if (l->fd >= 0) { close(l->fd); l->fd = -1; }
    }
    IOX_KINDS_CALL(r, on_stop);
}

int iox_reactor_accepting(const struct iox_reactor *r)
{
    for (unsigned i = 0; i < r->nlisteners; i++)
        if (r->listeners[i].armed) return 1;
    return 0;
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
    r->n_enters++;
    unsigned n;
    while ((n = iox_seam_uring_reap(r->uring, cqes, 256)) > 0) {
        r->n_cqes += n;
        for (unsigned i = 0; i < n; i++) iox_reactor_dispatch(r, &cqes[i]);
    }
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
    for (unsigned i = 0; !r->stopping && i < r->nlisteners; i++) {
        struct iox_listener_rt *l = &r->listeners[i];
        if (l->armed || l->paused || l->fd < 0 || !l->ctx) continue;
        if (iox_seam_accept_multishot(r->seam, l->fd, accept_ud(i)) == 0) l->armed = 1;
    }
    arm_tick(r);
}
