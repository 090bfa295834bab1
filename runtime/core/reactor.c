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
    free(r->msg_out);
    r->msg_out = NULL;
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

/* Cold: a connection accepted and refused at once (synchronous close). */
static void refuse(struct iox_reactor *r, int fd)
{
    int rc = iox_seam_close_sync(r->seam, fd);
    if (rc < 0) IOX_WARN("closing a refused connection: %s", strerror(-rc));
}

static void on_accept(struct iox_reactor *r, const struct iox_cqe *cqe)
{
    unsigned i = iox_ud_idx(cqe->ud);
    /* With direct descriptors res is a slot of the ring's file table, not
     * an fd: it becomes the encoded descriptor here, and a refused one is
     * closed through the seam (close(2) of a slot number would close an
     * unrelated real fd). */
    int fd = cqe->res >= 0 ? iox_seam_accepted_fd(r->seam, cqe->res) : -1;
    if (i >= r->nlisteners) {
        if (fd >= 0) refuse(r, fd);
        return;
    }
    struct iox_listener_rt *l = &r->listeners[i];
    if (!(cqe->flags & IOX_CQE_F_MORE)) l->armed = 0;
    if (cqe->res >= 0) {
        r->n_accepted++;
        if (r->stopping || !l->ctx || l->proto->on_accept(r, l->ctx, fd) < 0) {
            /* Full (or stopping): refuse this one and stop accepting until
             * the protocol has room again, so the backlog holds the rest. */
            refuse(r, fd);
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

/* After this many tick timeouts in a row fail at once (not -ETIME), the
 * tick is no longer re-armed: re-arming a timeout the kernel keeps
 * refusing would spin the loop. Said once; deadlines then only move with
 * other completions. */
#define TICK_MAX_ERRORS 8

static void arm_tick(struct iox_reactor *r)
{
    if (r->tick_armed || !r->uring || r->tick_errors >= TICK_MAX_ERRORS) return;
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

static void on_tick(struct iox_reactor *r, int res)
{
    r->tick_armed = 0;
    if (res == -ETIME || res >= 0) {
        r->tick_errors = 0;
    } else if (++r->tick_errors == TICK_MAX_ERRORS) {
        IOX_ERROR("reactor %u: the tick timer failed %d times in a row: %s — it is not re-armed; timeouts "
                  "now fire only when other completions arrive (restart the server)",
                  r->id, TICK_MAX_ERRORS, strerror(-res));
    }
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

/* ---- messages ----
 * Batched per destination per loop turn. iox_reactor_send_msg links the
 * message onto its destination's queue (through m->next: no memory of its
 * own); the end of the turn (iox_reactor_flush) sends each non-empty queue
 * as ONE IORING_OP_MSG_RING whose payload is the first message — the rest
 * follow through ->next — and whose res is how many. The receiver walks the
 * chain, reading ->next before each handler (which may reuse the message:
 * a hop's reply is the request sent back). Nothing is shared but the chain
 * handed over, and once delivered only the receiver touches it.
 *
 * One batch per destination is in flight at a time. Its source completion
 * (MSG_SENT) names the destination, not the messages: once delivered they
 * belong to the receiver, which may already have answered (with one
 * reactor the target CQE can come first). A batch the kernel refused
 * (-EOVERFLOW: target CQ full) is still ours and goes back to the head of
 * its queue, so messages to one reactor arrive in the order sent, and
 * all of them; one the target cannot take at all is bounced, message by
 * message in order, to each kind's handler here (status < 0). */

struct iox_msg_out {
    struct iox_msg *head, *tail;      /* queued this turn (or refused), not sent */
    struct iox_msg *fly, *fly_tail;   /* the batch in flight: ours until MSG_SENT says delivered */
    uint32_t n, fly_n;
};

int iox_reactor_msgs_init(struct iox_reactor *r)
{
    if (r->msg_out || !r->nreactors) return 0;
    /* Once per reactor (server start; a test's first send), never per message. */
    r->msg_out = calloc(r->nreactors, sizeof *r->msg_out);
    return r->msg_out ? 0 : -ENOMEM;
}

int iox_reactor_send_msg(struct iox_reactor *r, unsigned to, struct iox_msg *m)
{
    if (to >= r->nreactors || !m) return -EINVAL;
    if (!r->msg_out && iox_reactor_msgs_init(r) < 0) return -ENOMEM;
    m->from = (uint16_t)r->id;
    m->to = (uint16_t)to;
    m->status = 0;
    m->next = NULL;
    struct iox_msg_out *o = &r->msg_out[to];
    if (o->tail) o->tail->next = m; else o->head = m;
    o->tail = m;
    o->n++;
    r->n_msgs_sent++;
    return 0;
}

unsigned iox_reactor_msgs_outstanding(const struct iox_reactor *r)
{
    unsigned n = 0;
    for (unsigned i = 0; r->msg_out && i < r->nreactors; i++) n += r->msg_out[i].n + r->msg_out[i].fly_n;
    return n;
}

/* The end of the turn: one MSG_RING per destination with messages queued
 * and none in flight. No SQE: the queue stays, next turn tries again. */
static void msgs_flush(struct iox_reactor *r)
{
    for (unsigned to = 0; r->msg_out && to < r->nreactors; to++) {
        struct iox_msg_out *o = &r->msg_out[to];
        if (!o->head || o->fly) continue;
        if (iox_seam_msg_ring(r->seam, r->peer_ring_fds[to], o->n, iox_ud_ptr(IOX_OP_MSG, o->head),
                              iox_ud(IOX_OP_MSG_SENT, IOX_OWN_MSG, 0, to)) < 0)
            continue;
        o->fly = o->head; o->fly_tail = o->tail; o->fly_n = o->n;
        o->head = o->tail = NULL; o->n = 0;
        r->n_msg_batches++;
    }
}

static void on_msg_sent(struct iox_reactor *r, const struct iox_cqe *cqe)
{
    unsigned to = iox_ud_idx(cqe->ud);
    if (!r->msg_out || to >= r->nreactors) return;
    struct iox_msg_out *o = &r->msg_out[to];
    struct iox_msg *b = o->fly, *bt = o->fly_tail;
    uint32_t bn = o->fly_n;
    o->fly = o->fly_tail = NULL;
    o->fly_n = 0;
    if (cqe->res >= 0 || !b) return;   /* delivered: the receiver's now, not to be touched */
    if (cqe->res == -EOVERFLOW || cqe->res == -EAGAIN || cqe->res == -EBUSY) {
        /* Target CQ full or busy: still ours, first in line next turn. */
        bt->next = o->head;
        o->head = b;
        if (!o->tail) o->tail = bt;
        o->n += bn;
        return;
    }
    /* The target cannot take messages: every one bounces to its kind's
     * handler here, in order. */
    IOX_WARN("msg_ring to reactor %u: %s — %u message%s bounced to the sender", to, strerror(-cqe->res), bn,
             bn == 1 ? "" : "s");
    for (struct iox_msg *m = b, *next; m; m = next) {
        next = m->next;
        m->status = cqe->res;
        iox_msg_handler h = iox_reactor_msg_handler(r, m->kind);
        if (h) h(r, m);
    }
}

static void on_msg_cqe(struct iox_reactor *r, const struct iox_cqe *cqe)
{
    if (iox_ud_op(cqe->ud) == IOX_OP_MSG_SENT) { on_msg_sent(r, cqe); return; }
    struct iox_msg *m = iox_ud_to_ptr(cqe->ud);
    if (!m) {
        /* From the main thread: no payload, the kind in res. */
        uint32_t kind = (uint32_t)cqe->res;
        if (kind == IOX_MSG_SHUTDOWN) { iox_reactor_begin_stop(r); return; }
        if (kind == IOX_MSG_HUP)
            for (unsigned i = 0; i < r->nkinds; i++)
                if (r->kinds[i].kind && r->kinds[i].kind->on_hup) r->kinds[i].kind->on_hup(r, r->kinds[i].ctx);
        if (iox_reactor_msg_handler(r, kind)) iox_reactor_msg_handler(r, kind)(r, NULL);
        return;
    }
    /* A batch: res messages chained through ->next. */
    r->n_msgs_received += (uint32_t)cqe->res;
    for (struct iox_msg *next; m; m = next) {
        next = m->next;
        iox_msg_handler h = iox_reactor_msg_handler(r, m->kind);
        if (h) h(r, m);
        else IOX_ERROR("message of unknown kind %u dropped", m->kind);
    }
}

/* ---- dispatch and flush ---- */

void iox_reactor_dispatch(struct iox_reactor *r, const struct iox_cqe *cqe)
{
    unsigned owner = iox_ud_owner(cqe->ud), op = iox_ud_op(cqe->ud);
    if (owner == IOX_OWN_REACTOR) {
        if (op == IOX_OP_ACCEPT) on_accept(r, cqe);
        else if (op == IOX_OP_TICK) on_tick(r, cqe->res);
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
    /* Reap again only after a full batch: a short one emptied the CQ, and
     * looking once more cost an empty reap (the ring check, then a peek
     * that flushes a CQ overflow) of ~100 instructions every turn — two
     * per keep-alive request. What completes meanwhile, or was held back
     * by an overflow, is taken at the next turn: the kernel flushes the
     * overflow list when it is entered, and the wait for one completion
     * returns at once while any is ready. The first reap of a turn still
     * peeks when the ring looks empty (after -EBUSY from the enter). */
    unsigned n;
    do {
        n = iox_seam_uring_reap(r->uring, cqes, 256);
        r->n_cqes += n;
        for (unsigned i = 0; i < n; i++) iox_reactor_dispatch(r, &cqes[i]);
    } while (n == 256);
    return 0;
}

void iox_reactor_flush(struct iox_reactor *r)
{
    IOX_KINDS_CALL(r, on_flush);
    msgs_flush(r);
    for (unsigned i = 0; !r->stopping && i < r->nlisteners; i++) {
        struct iox_listener_rt *l = &r->listeners[i];
        if (l->armed || l->paused || l->fd < 0 || !l->ctx) continue;
        if (iox_seam_accept_multishot(r->seam, l->fd, accept_ud(i)) == 0) l->armed = 1;
    }
    arm_tick(r);
}
