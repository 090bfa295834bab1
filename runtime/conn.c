/* conn.c — completion handling, sends, timers and close for iox_conn.
 * The decisions live in the generated machine; see iox_conn.h. */
#include "conn_buffers.h"
#include "conn_internal.h"
#include "http_conn_machine.h"
#include "iox_log.h"
#include "iox_ud.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static uint64_t ud_of(struct iox_conn *c, unsigned op)
{
    return iox_ud(op, IOX_OWN_HTTP, c->gen, c->idx);
}

/* ---- machine entry with a small re-entrancy queue ---- */

void iox_conn_fire(struct iox_conn *c, int event, const struct iox_event *ev)
{
    if (c->firing) {
        if (c->nqueued < sizeof c->queued / sizeof c->queued[0]) c->queued[c->nqueued++] = (uint8_t)event;
        else IOX_ERROR("conn %u: event queue full, %s dropped", c->idx, http_conn_event_names[event]);
        return;
    }
    static const struct iox_event none = {0, 0, NULL, 0};
    c->firing = 1;
    http_conn_fire(c, &c->state, event, ev ? ev : &none);
    for (unsigned i = 0; i < c->nqueued; i++)
        http_conn_fire(c, &c->state, c->queued[i], &none);
    c->nqueued = 0;
    c->firing = 0;
}

/* ---- lists on the reactor ---- */

void iox_conn_mark_dirty(struct iox_conn *c)
{
    c->dirty = 1;
    if (c->dirty_linked) return;
    c->dirty_linked = 1;
    c->dirty_next = c->r->dirty;
    c->r->dirty = c;
}

void iox_conn_park(struct iox_conn *c)
{
    if (c->recv_armed || c->recv_cancelling) return;
    c->parked = 1;
    if (c->parked_linked) return;
    c->parked_linked = 1;
    c->parked_next = c->r->parked;
    c->r->parked = c;
}

void iox_conn_throttle(struct iox_conn *c)
{
    if (c->throttled) return;
    c->throttled = 1;
    if (c->recv_armed && !c->recv_cancelling) {
        if (iox_seam_cancel(c->r->seam, ud_of(c, IOX_OP_RECV), ud_of(c, IOX_OP_CANCEL)) == 0) {
            c->inflight++;
            c->recv_cancelling = 1;
        }
    }
}

static void tlist_remove(struct iox_conn *c)
{
    struct iox_conn_list *l = c->tlist == 1 ? &c->r->idle : c->tlist == 2 ? &c->r->linger : NULL;
    if (!l) return;
    if (c->tprev) c->tprev->tnext = c->tnext; else l->head = c->tnext;
    if (c->tnext) c->tnext->tprev = c->tprev; else l->tail = c->tprev;
    c->tprev = c->tnext = NULL;
    c->tlist = 0;
}

/* Deadlines are appended in time order (fixed durations from a monotonic
 * clock), so each list stays sorted and the tick pops from the head. */
static void tlist_append(struct iox_conn *c, int which, uint64_t deadline)
{
    struct iox_conn_list *l = which == 1 ? &c->r->idle : &c->r->linger;
    c->deadline_ms = deadline;
    c->tlist = (uint8_t)which;
    c->tnext = NULL;
    c->tprev = l->tail;
    if (l->tail) l->tail->tnext = c; else l->head = c;
    l->tail = c;
}

void iox_conn_timer_touch(struct iox_conn *c)
{
    if (c->tlist == 2) return;   /* lingering keeps its short deadline */
    tlist_remove(c);
    tlist_append(c, 1, c->r->now_ms + c->r->cfg->idle_timeout_ms);
}

void iox_conn_timer_linger(struct iox_conn *c)
{
    tlist_remove(c);
    tlist_append(c, 2, c->r->now_ms + c->r->cfg->linger_ms);
}

void iox_conn_on_timer(struct iox_conn *c)
{
    tlist_remove(c);
    IOX_DEBUG("conn %u: timeout in %s", c->idx, http_conn_state_names[c->state]);
    iox_conn_fire(c, HTTP_CONN_EV_TIMEOUT, NULL);
}

void iox_conn_on_shutdown(struct iox_conn *c)
{
    iox_conn_fire(c, HTTP_CONN_EV_SHUTDOWN, NULL);
}

/* ---- ops ---- */

void iox_conn_rearm(struct iox_conn *c)
{
    c->parked = 0;
    if (c->recv_armed || c->recv_cancelling || c->state == HTTP_CONN_S_CLOSING ||
        c->state == HTTP_CONN_S_CLOSED || c->throttled || c->eof)
        return;
    int r = iox_seam_recv_multishot(c->r->seam, c->fd, ud_of(c, IOX_OP_RECV));
    if (r < 0) {
        IOX_WARN("conn %u: cannot arm recv: %s", c->idx, strerror(-r));
        iox_conn_fire(c, HTTP_CONN_EV_FAIL, NULL);
        return;
    }
    c->recv_armed = 1;
    c->inflight++;
}

void iox_conn_start_send(struct iox_conn *c)
{
    c->dirty = 0;
    if (c->send_inflight || c->state == HTTP_CONN_S_CLOSING || c->state == HTTP_CONN_S_CLOSED) return;
    if (c->wsent >= c->wcommit) return;
    /* Pipelined async requests (hop, pg) are answered one at a time. While
     * one is outstanding and more requests wait in the carry, the answers
     * already made are held — at most IOX_HOLD_TURNS turns and
     * IOX_HOLD_BYTES — so a 16-deep pipeline costs two sends, not sixteen.
     * The reply that ends the wait marks the connection dirty again; the
     * client is owed every held answer before the outstanding one anyway.
     * Never while a drain hook is set: a streamed response (a file stream)
     * waits for its own bytes to be sent before it writes more, and nothing
     * would mark the connection dirty again. */
    if (c->state == HTTP_CONN_S_WAITING && c->in_len && !c->close_after && !c->on_drain &&
        c->hold_turns < IOX_HOLD_TURNS && c->wcommit - c->wsent < IOX_HOLD_BYTES) {
        c->hold_turns++;
        return;
    }
    c->hold_turns = 0;
    int r = iox_seam_send(c->r->seam, c->fd, c->out + c->wsent, c->wcommit - c->wsent,
                          ud_of(c, IOX_OP_SEND));
    if (r < 0) {
        IOX_WARN("conn %u: cannot queue send: %s", c->idx, strerror(-r));
        iox_conn_fire(c, HTTP_CONN_EV_FAIL, NULL);
        return;
    }
    c->send_inflight = 1;
    c->wsend_end = c->wcommit;
    c->inflight++;
}

void iox_conn_begin_close(struct iox_conn *c)
{
    if (c->closing_started) return;
    c->closing_started = 1;
    tlist_remove(c);
    c->parked = 0;   /* a parked entry is skipped by the reactor */
    if (c->recv_armed || c->send_inflight || c->inflight) {
        if (iox_seam_cancel_fd(c->r->seam, c->fd, ud_of(c, IOX_OP_CANCEL)) == 0)
            c->inflight++;
        else
            shutdown(c->fd, SHUT_RDWR);   /* no SQE: make the ops end on their own */
    }
}

void iox_conn_close_if_idle(struct iox_conn *c)
{
    if (c->inflight || c->fd < 0) return;
    int fd = c->fd;
    if (iox_seam_close(c->r->seam, fd, ud_of(c, IOX_OP_CLOSE)) == 0) {
        c->inflight++;
        c->fd = -1;
        return;
    }
    /* No SQE to be had: close synchronously rather than leak the fd. */
    close(fd);
    c->fd = -1;
    iox_conn_fire(c, HTTP_CONN_EV_CLOSED, NULL);
}

/* ---- completions ---- */

void iox_conn_on_cqe(struct iox_conn *c, unsigned op, const struct iox_cqe *cqe)
{
    struct iox_event ev = {cqe->res, cqe->flags, NULL, 0};
    int more = (cqe->flags & IOX_CQE_F_MORE) != 0;
    switch (op) {
    case IOX_OP_RECV: {
        if (!more) { c->recv_armed = 0; c->recv_cancelling = 0; c->inflight--; }
        if (cqe->res > 0) {
            if (!(cqe->flags & IOX_CQE_F_BUFFER)) {
                IOX_ERROR("conn %u: recv completion without a buffer", c->idx);
                iox_conn_fire(c, HTTP_CONN_EV_FAIL, NULL);
                break;
            }
            unsigned bid = cqe->flags >> IOX_CQE_BUFFER_SHIFT;
            ev.data = iox_seam_buf(c->r->seam, bid);
            ev.len = (uint32_t)cqe->res;
            iox_conn_fire(c, HTTP_CONN_EV_RECV, &ev);
            /* The parser is done with these bytes (a cut request was copied
             * to the carry): the buffer goes back before we return. */
            iox_seam_buf_return(c->r->seam, bid);
            if (!more) iox_conn_fire(c, HTTP_CONN_EV_RECV_ENDED, &ev);
        } else if (cqe->res == 0) {
            iox_conn_fire(c, HTTP_CONN_EV_RECV_EOF, &ev);
        } else if (cqe->res == -ENOBUFS) {
            iox_conn_fire(c, HTTP_CONN_EV_RECV_NOBUFS, &ev);
        } else if (cqe->res == -ECANCELED) {
            iox_conn_fire(c, HTTP_CONN_EV_RECV_CANCELLED, &ev);
        } else {
            IOX_DEBUG("conn %u: recv: %s", c->idx, strerror(-cqe->res));
            iox_conn_fire(c, HTTP_CONN_EV_RECV_ERROR, &ev);
        }
        break;
    }
    case IOX_OP_SEND: {
        c->send_inflight = 0;
        c->inflight--;
        /* Whatever its result, this send no longer reads the buffer that was
         * retired under it. Free it now: left "retired" into the next send
         * (it was, after a short send), the next growth took the current
         * buffer for one that "holds only copies" and freed it under the
         * send in flight (found by tests/test_file_sim.c, seed 33357). */
        iox_out_release_retired(c);
        if (cqe->res < 0) {
            IOX_DEBUG("conn %u: send: %s", c->idx, strerror(-cqe->res));
            iox_conn_fire(c, HTTP_CONN_EV_SEND_ERROR, &ev);
            break;
        }
        c->wsent += (uint32_t)cqe->res;
        if (cqe->res > 0) iox_conn_timer_touch(c);
        if (c->wsent < c->wsend_end) {
            if (cqe->res == 0) { iox_conn_fire(c, HTTP_CONN_EV_SEND_ERROR, &ev); break; }
            iox_conn_fire(c, HTTP_CONN_EV_SEND_PARTIAL, &ev);
            break;
        }
        if (c->wsent == c->wlen) {
            /* Everything sent: rewind the buffer, or give it back. */
            c->wsent = c->wlen = c->wcommit = c->wsend_end = 0;
            iox_out_release(c);
        } else if (c->retired) {
            iox_out_release(c);
        }
        if (c->wsent < c->wcommit) iox_conn_mark_dirty(c);
        else if (c->on_drain && c->awaiting_reply && c->state != HTTP_CONN_S_CLOSING)
            c->on_drain(c, c->on_drain_arg);   /* streamed response: next chunk */
        iox_conn_fire(c, HTTP_CONN_EV_SEND_DONE, &ev);
        break;
    }
    case IOX_OP_CANCEL:
        c->inflight--;
        if (cqe->res < 0 && cqe->res != -ENOENT && cqe->res != -EALREADY)
            IOX_DEBUG("conn %u: cancel: %s", c->idx, strerror(-cqe->res));
        break;
    case IOX_OP_SHUTDOWN:
        c->inflight--;
        if (cqe->res < 0 && cqe->res != -ENOTCONN)
            IOX_DEBUG("conn %u: shutdown: %s", c->idx, strerror(-cqe->res));
        break;
    case IOX_OP_CLOSE:
        c->inflight--;
        if (cqe->res < 0) IOX_WARN("conn %u: close: %s", c->idx, strerror(-cqe->res));
        iox_conn_fire(c, HTTP_CONN_EV_CLOSED, &ev);
        return;
    default:
        IOX_ERROR("conn %u: unexpected op %u", c->idx, op);
        return;
    }
    if (c->state == HTTP_CONN_S_CLOSING && c->in_use) iox_conn_fire(c, HTTP_CONN_EV_OP_DONE, &ev);
}

/* ---- slots ---- */

void iox_conn_init_slot(struct iox_reactor *r, struct iox_conn *c, uint32_t idx)
{
    memset(c, 0, sizeof *c);
    c->r = r;
    c->idx = idx;
    c->fd = -1;
    c->state = HTTP_CONN_S_CLOSED;
}

void iox_conn_open(struct iox_conn *c, int fd)
{
    struct iox_reactor *r = c->r;
    /* The slot may still sit on this turn's dirty/parked lists from its
     * previous life: keep those links, reset everything else. */
    uint16_t gen = c->gen;
    uint8_t pl = c->parked_linked, dl = c->dirty_linked;
    struct iox_conn *pn = c->parked_next, *dn = c->dirty_next;
    iox_conn_init_slot(r, c, c->idx);
    c->gen = gen;
    c->parked_linked = pl;
    c->dirty_linked = dl;
    c->parked_next = pn;
    c->dirty_next = dn;
    c->fd = fd;
    c->in_use = 1;
    c->state = HTTP_CONN_INITIAL;
    iox_http_parser_init(&c->hp, &r->cfg->http);
    iox_conn_timer_touch(c);
    iox_conn_park(c);   /* recv is armed with this turn's batch */
    if (r->stopping) iox_conn_fire(c, HTTP_CONN_EV_SHUTDOWN, NULL);
}

void iox_conn_release(struct iox_conn *c)
{
    struct iox_reactor *r = c->r;
    if (c->on_close) {
        void (*fn)(struct iox_conn *, void *) = c->on_close;
        c->on_close = NULL;
        c->on_drain = NULL;
        fn(c, c->on_close_arg);   /* the slot (idx, gen) is still this connection's */
    }
    tlist_remove(c);
    c->in_len = 0;
    iox_carry_release(c);
    c->wsent = c->wlen;
    c->send_inflight = 0;
    iox_out_release(c);
    c->in_use = 0;
    c->gen++;                  /* late CQEs for the old socket are now stale */
    r->free_slots[r->nfree++] = c->idx;
    r->nconns--;
    r->n_closed++;
    iox_reactor_slot_freed(r);
}

struct iox_conn_ref iox_conn_ref(struct iox_conn *c)
{
    struct iox_conn_ref ref = {c->r, c->idx, c->gen};
    return ref;
}

struct iox_conn *iox_conn_deref(struct iox_conn_ref ref)
{
    if (!ref.r || ref.idx >= ref.r->max_conns) return NULL;
    struct iox_conn *c = &ref.r->conns[ref.idx];
    if (!c->in_use || c->gen != ref.gen || c->state == HTTP_CONN_S_CLOSING) return NULL;
    return c;
}

void iox_conn_flush(struct iox_conn *c)
{
    if (c->body_pending) return;
    c->wcommit = c->wlen;
    iox_conn_mark_dirty(c);
}

void iox_conn_set_drain_hook(struct iox_conn *c, void (*fn)(struct iox_conn *c, void *arg), void *arg)
{
    c->on_drain = fn;
    c->on_drain_arg = arg;
}

void iox_conn_set_close_hook(struct iox_conn *c, void (*fn)(struct iox_conn *c, void *arg), void *arg)
{
    c->on_close = fn;
    c->on_close_arg = arg;
}

void iox_conn_op_begin(struct iox_conn *c)
{
    c->inflight++;
}

void iox_conn_op_end(struct iox_conn *c)
{
    c->inflight--;
    if (c->state == HTTP_CONN_S_CLOSING && c->in_use) iox_conn_fire(c, HTTP_CONN_EV_OP_DONE, NULL);
}

void iox_conn_async_done(struct iox_conn *c)
{
    c->on_drain = NULL;
    iox_conn_fire(c, HTTP_CONN_EV_REPLY, NULL);
}

void iox_conn_abort(struct iox_conn *c)
{
    c->aborted = 1;
    iox_conn_fire(c, HTTP_CONN_EV_FAIL, NULL);
}
