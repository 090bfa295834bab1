/* stream_conn.c — completion handling, ops, timers and slots of a stream.
 * The decisions live in the generated machine (spec/machines/stream_conn.toml);
 * this file keeps the op books (ops in flight, the recv armed or being
 * cancelled, the peer's EOF), delivers events, and writes the state only
 * through the spec's [reuse] functions (stream_conn_free, stream_conn_open). */
#include "stream_internal.h"
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint64_t ud_of(const struct iox_stream *s, unsigned op)
{
    return iox_ud(op, (unsigned)s->srv->owner, s->gen, s->idx);
}

int iox_stream_in_use(const struct iox_stream *s)
{
    return s->state != STREAM_CONN_S_CLOSED;
}

void iox_stream_set_cause(struct iox_stream *s, enum iox_stream_cause c)
{
    if (!s->cause) s->cause = (uint8_t)(c + 1);
}

/* ---- machine entry with a re-entrancy queue ----
 * An event raised while the machine runs (the protocol closing inside
 * on_data, a reply ending inside it) waits for the current chain. Such
 * events carry no payload by construction (completions, the only events
 * with one, come from the reactor's dispatch, never inside a chain), so a
 * payload here is a bug and aborts. Each event is queued at most once (a
 * notification acts on the stream as it is then), so the queue, one entry
 * per event kind, cannot overflow. */
void iox_stream_fire(struct iox_stream *s, int event, const struct iox_stream_event *ev)
{
    if (s->firing) {
        if (ev && (ev->data || ev->len || ev->res || ev->flags)) {
            IOX_ERROR("stream %u: %s with a payload raised inside the machine — a runtime bug; aborting",
                      s->idx, stream_conn_event_names[event]);
            abort();
        }
        for (unsigned i = 0; i < s->nqueued; i++)
            if (s->queued[i] == event) return;
        s->queued[s->nqueued++] = (uint8_t)event;
        return;
    }
    static const struct iox_stream_event none = {0, 0, NULL, 0};
    s->firing = 1;
    stream_conn_fire(s, &s->state, event, ev ? ev : &none);
    while (s->nqueued) {
        int e = s->queued[0];
        s->nqueued--;
        memmove(s->queued, s->queued + 1, s->nqueued);
        stream_conn_fire(s, &s->state, e, &none);
    }
    s->firing = 0;
}

/* ---- end-of-turn lists ---- */

void iox_stream_mark_dirty(struct iox_stream *s)
{
    s->dirty = 1;
    if (s->dirty_linked) return;
    s->dirty_linked = 1;
    s->dirty_next = s->srv->dirty;
    s->srv->dirty = s;
}

void iox_stream_mark_kick(struct iox_stream *s)
{
    s->kicked = 1;
    if (s->kick_linked) return;
    s->kick_linked = 1;
    s->kick_next = s->srv->kicked;
    s->srv->kicked = s;
}

/* A recv is armed again at the end of the turn: not while one is armed or
 * being cancelled, and never after the peer's EOF. */
void iox_stream_park(struct iox_stream *s)
{
    if (s->recv_armed || s->recv_cancelling || s->peer_shut) return;
    s->parked = 1;
    if (s->parked_linked) return;
    s->parked_linked = 1;
    s->parked_next = s->srv->parked;
    s->srv->parked = s;
}

void iox_stream_stop_recv(struct iox_stream *s)
{
    s->parked = 0;
    if (s->recv_armed && !s->recv_cancelling) {
        if (iox_seam_cancel(s->srv->r->seam, ud_of(s, IOX_OP_RECV), ud_of(s, IOX_OP_CANCEL)) == 0) {
            s->inflight++;
            s->recv_cancelling = 1;
        }
    }
}

void iox_stream_rearm(struct iox_stream *s)
{
    s->parked = 0;
    if (s->recv_armed || s->recv_cancelling || s->peer_shut) return;
    int r = iox_seam_recv_multishot(s->srv->r->seam, s->fd, ud_of(s, IOX_OP_RECV));
    if (r < 0) {
        IOX_WARN("stream %u: cannot arm recv: %s (closing it)", s->idx, strerror(-r));
        if (!s->err) s->err = r;
        iox_stream_set_cause(s, IOX_STREAM_ERROR);
        iox_stream_fire(s, STREAM_CONN_EV_ABORT, NULL);
        return;
    }
    s->recv_armed = 1;
    s->inflight++;
}

void iox_stream_start_send(struct iox_stream *s)
{
    s->dirty = 0;
    if (s->send_inflight || s->wsent >= s->out.len) return;
    int r = iox_seam_send(s->srv->r->seam, s->fd, s->out.p + s->wsent, s->out.len - s->wsent,
                          ud_of(s, IOX_OP_SEND));
    if (r < 0) {
        IOX_WARN("stream %u: cannot queue send: %s (closing it)", s->idx, strerror(-r));
        if (!s->err) s->err = r;
        iox_stream_set_cause(s, IOX_STREAM_ERROR);
        iox_stream_fire(s, STREAM_CONN_EV_ABORT, NULL);
        return;
    }
    s->send_inflight = 1;
    s->wsend_end = s->out.len;
    s->inflight++;
}

/* Once per stream: the machine's drop, on entering closing. */
void iox_stream_begin_close(struct iox_stream *s)
{
    iox_stream_timer_remove(s);
    s->parked = 0;
    if (s->inflight) {
        if (iox_seam_cancel_fd(s->srv->r->seam, s->fd, ud_of(s, IOX_OP_CANCEL)) == 0)
            s->inflight++;
        else
            if (s->srv->r->uring) shutdown(s->fd, SHUT_RDWR);   /* no SQE: make the ops end on their own */
    }
}

void iox_stream_close_if_idle(struct iox_stream *s)
{
    if (s->inflight || s->fd < 0) return;
    int fd = s->fd;
    s->fd = -1;
    if (iox_seam_close(s->srv->r->seam, fd, ud_of(s, IOX_OP_CLOSE)) == 0) {
        s->inflight++;
        return;
    }
    /* No SQE to be had: close synchronously rather than leak the fd. */
    if (s->srv->r->uring) close(fd);
    iox_stream_fire(s, STREAM_CONN_EV_CLOSED, NULL);
}

/* ---- timers ----
 * One deadline per stream on the server's idle list (or its linger list),
 * both in deadline order: durations are fixed and the clock monotonic, so
 * appending keeps them sorted and the tick pops from the head. Progress
 * (bytes in, bytes out) moves the stream to the tail at most once per clock
 * step. While replies are open and nothing is sendable the server is
 * working on an answer: that is never the peer's idleness (the expiry
 * renews). */

static struct iox_stream_list *list_of(struct iox_stream *s, int which)
{
    return which == 1 ? &s->srv->idle : &s->srv->linger;
}

void iox_stream_timer_remove(struct iox_stream *s)
{
    if (!s->tlist) return;
    struct iox_stream_list *l = list_of(s, s->tlist);
    if (s->tprev) s->tprev->tnext = s->tnext; else l->head = s->tnext;
    if (s->tnext) s->tnext->tprev = s->tprev; else l->tail = s->tprev;
    s->tprev = s->tnext = NULL;
    s->tlist = 0;
}

static void timer_append(struct iox_stream *s, int which, uint64_t deadline)
{
    struct iox_stream_list *l = list_of(s, which);
    s->deadline_ms = deadline;
    s->tlist = (uint8_t)which;
    s->tnext = NULL;
    s->tprev = l->tail;
    if (l->tail) l->tail->tnext = s; else l->head = s;
    l->tail = s;
}

void iox_stream_progress(struct iox_stream *s)
{
    if (s->tlist != 1) return;
    uint64_t d = s->srv->r->now_ms + s->srv->cfg.idle_timeout_ms;
    if (d == s->deadline_ms) return;
    iox_stream_timer_remove(s);
    timer_append(s, 1, d);
}

void iox_stream_timer_linger(struct iox_stream *s)
{
    iox_stream_timer_remove(s);
    timer_append(s, 2, s->srv->r->now_ms + s->srv->cfg.linger_ms);
}

void iox_stream_on_timer(struct iox_stream *s)
{
    struct iox_stream_server *srv = s->srv;
    int lingering = s->tlist == 2;
    iox_stream_timer_remove(s);
    if (!lingering) {
        /* Replies open and nothing sendable (side bytes wait for an
         * earlier answer): the server is working, the peer is not idle. */
        int working = s->nreplies && s->out.len == s->wsent && !s->send_inflight;
        int keep = working;
        if (!keep && srv->cfg.on_timeout) keep = srv->cfg.on_timeout(s, srv->cfg.ctx) == IOX_STREAM_TIMEOUT_KEEP;
        if (keep || !iox_stream_in_use(s) || s->state == STREAM_CONN_S_CLOSING) {
            if (iox_stream_in_use(s) && s->state != STREAM_CONN_S_CLOSING && !s->tlist)
                timer_append(s, 1, srv->r->now_ms + srv->cfg.idle_timeout_ms);
            return;
        }
        srv->st.timeouts++;
        iox_stream_set_cause(s, IOX_STREAM_TIMEOUT);
        IOX_DEBUG("stream %u: idle timeout in %s", s->idx, stream_conn_state_names[s->state]);
    }
    iox_stream_fire(s, STREAM_CONN_EV_TIMEOUT, NULL);
}

/* ---- completions ---- */

static void ops_idle(struct iox_stream *s)
{
    iox_stream_fire(s, STREAM_CONN_EV_OP_DONE, NULL);
}

void iox_stream_on_cqe(struct iox_stream *s, unsigned op, const struct iox_cqe *cqe)
{
    struct iox_stream_server *srv = s->srv;
    struct iox_stream_event ev = {cqe->res, cqe->flags, NULL, 0};
    int more = (cqe->flags & IOX_CQE_F_MORE) != 0;
    switch (op) {
    case IOX_OP_RECV:
        if (!more) { s->recv_armed = 0; s->recv_cancelling = 0; s->inflight--; }
        if (cqe->res > 0) {
            if (!(cqe->flags & IOX_CQE_F_BUFFER)) {
                IOX_ERROR("stream %u: recv completion without a buffer (closing it)", s->idx);
                s->err = -EPROTO;
                iox_stream_set_cause(s, IOX_STREAM_ERROR);
                iox_stream_fire(s, STREAM_CONN_EV_ABORT, NULL);
                break;
            }
            unsigned bid = cqe->flags >> IOX_CQE_BUFFER_SHIFT;
            srv->st.bytes_in += (uint32_t)cqe->res;
            iox_stream_progress(s);
            ev.data = iox_seam_buf(srv->r->seam, bid);
            ev.len = (uint32_t)cqe->res;
            iox_stream_fire(s, STREAM_CONN_EV_RECV, &ev);
            /* The protocol is done with these bytes (a cut message was
             * copied to the carry): the buffer goes back before we return. */
            iox_seam_buf_return(srv->r->seam, bid);
            if (!more) iox_stream_fire(s, STREAM_CONN_EV_RECV_ENDED, NULL);
        } else if (cqe->res == 0) {
            s->peer_shut = 1;   /* for every state, before it decides */
            iox_stream_set_cause(s, IOX_STREAM_PEER_EOF);
            iox_stream_fire(s, STREAM_CONN_EV_RECV_EOF, NULL);
        } else if (cqe->res == -ENOBUFS) {
            srv->st.enobufs++;
            iox_stream_fire(s, STREAM_CONN_EV_RECV_NOBUFS, NULL);
        } else if (cqe->res == -ECANCELED) {
            iox_stream_fire(s, STREAM_CONN_EV_RECV_CANCELLED, NULL);
        } else {
            IOX_DEBUG("stream %u: recv: %s", s->idx, strerror(-cqe->res));
            if (!s->err) s->err = cqe->res;
            iox_stream_set_cause(s, IOX_STREAM_ERROR);
            iox_stream_fire(s, STREAM_CONN_EV_RECV_ERROR, NULL);
        }
        break;
    case IOX_OP_SEND:
        s->send_inflight = 0;
        s->inflight--;
        if (cqe->res < 0) {
            free(s->retired);
            s->retired = NULL;
            IOX_DEBUG("stream %u: send: %s", s->idx, strerror(-cqe->res));
            if (!s->err) s->err = cqe->res;
            iox_stream_set_cause(s, IOX_STREAM_ERROR);
            iox_stream_fire(s, STREAM_CONN_EV_SEND_ERROR, NULL);
            break;
        }
        s->wsent += (uint32_t)cqe->res;
        srv->st.bytes_out += (uint32_t)cqe->res;
        if (cqe->res > 0) iox_stream_progress(s);
        iox_stream_out_sent(s);
        if (s->wsent < s->wsend_end) {
            if (cqe->res == 0) {
                if (!s->err) s->err = -EPIPE;
                iox_stream_set_cause(s, IOX_STREAM_ERROR);
                iox_stream_fire(s, STREAM_CONN_EV_SEND_ERROR, NULL);
                break;
            }
            iox_stream_fire(s, STREAM_CONN_EV_SEND_PARTIAL, NULL);
            break;
        }
        if (s->wsent < s->out.len) iox_stream_mark_dirty(s);   /* written meanwhile */
        iox_stream_fire(s, STREAM_CONN_EV_SEND_DONE, NULL);
        break;
    case IOX_OP_CANCEL:
        s->inflight--;
        if (cqe->res < 0 && cqe->res != -ENOENT && cqe->res != -EALREADY)
            IOX_DEBUG("stream %u: cancel: %s", s->idx, strerror(-cqe->res));
        break;
    case IOX_OP_SHUTDOWN:
        s->inflight--;
        if (cqe->res < 0 && cqe->res != -ENOTCONN)
            IOX_DEBUG("stream %u: shutdown: %s", s->idx, strerror(-cqe->res));
        break;
    case IOX_OP_CLOSE:
        s->inflight--;
        if (cqe->res < 0) IOX_WARN("stream %u: close: %s", s->idx, strerror(-cqe->res));
        iox_stream_fire(s, STREAM_CONN_EV_CLOSED, NULL);
        return;
    default:
        IOX_ERROR("stream %u: unexpected op %u", s->idx, op);
        return;
    }
    if (!s->inflight) ops_idle(s);
}

/* ---- slots ---- */

/* Every per-connection field reset, the state left to the machine's
 * [reuse] functions, buffers and end-of-turn links kept (the slot may still
 * sit on this turn's lists from its previous life). */
static void slot_reset(struct iox_stream *s)
{
    s->fd = -1;
    s->inflight = 0;
    s->recv_armed = s->recv_cancelling = s->send_inflight = s->peer_shut = 0;
    s->paused = s->input_off = s->want_drain = s->writes_off = s->cause = 0;
    s->err = 0;
    s->parked = s->dirty = s->kicked = 0;
    s->firing = s->nqueued = 0;
    s->carry.len = 0;
    s->wsent = s->wsend_end = 0;
    s->out.len = 0;
    s->rq_head = s->rq_tail = 0;
    s->nreplies = 0;
    s->side_len = 0;
    s->user = NULL;
}

void iox_stream_init_slot(struct iox_stream_server *srv, struct iox_stream *s, uint32_t idx)
{
    s->srv = srv;
    s->idx = idx;
    slot_reset(s);
    stream_conn_free(&s->state);   /* -> closed, whatever the memory held */
}

void iox_stream_open_slot(struct iox_stream *s, int fd)
{
    struct iox_stream_server *srv = s->srv;
    slot_reset(s);
    s->fd = fd;
    stream_conn_open(&s->state);   /* closed -> reading; abort()s on a slot in use */
    timer_append(s, 1, srv->r->now_ms + srv->cfg.idle_timeout_ms);
    iox_stream_park(s);            /* the recv is armed with this turn's batch */
    if (srv->cfg.on_open) srv->cfg.on_open(s, srv->cfg.ctx);
    if (srv->stopping && iox_stream_in_use(s)) iox_stream_fire(s, STREAM_CONN_EV_SHUTDOWN, NULL);
}

void iox_stream_release(struct iox_stream *s)
{
    struct iox_stream_server *srv = s->srv;
    iox_stream_timer_remove(s);
    enum iox_stream_cause cause = s->cause ? (enum iox_stream_cause)(s->cause - 1) : IOX_STREAM_ABORTED;
    if (srv->cfg.on_close) srv->cfg.on_close(s, cause, srv->cfg.ctx);
    s->user = NULL;
    iox_stream_buffers_release(s);
    s->gen++;                  /* late CQEs and refs for the old socket are now stale */
    srv->free_slots[srv->nfree++] = s->idx;
    srv->nconns--;
    srv->st.closed++;
    iox_reactor_accept_resume(srv->r, srv->listener);
}
