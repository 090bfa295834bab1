/* stream_conn.c — completion handling, ops, timers and slots of a stream.
 * The decisions live in the generated machine (spec/machines/stream_conn.toml);
 * the socket mechanics (op books, ops, carry, write buffer, timer lists,
 * the close) are the stream core's (ioxide/stream_core.h), shared with
 * HTTP's connection. This file turns the core's completions into the
 * machine's events and writes the state only through the spec's [reuse]
 * functions (stream_conn_free, stream_conn_open). */
#include "stream_internal.h"
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
                      s->sk.idx, stream_conn_event_names[event]);
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

void iox_stream_mark_kick(struct iox_stream *s)
{
    s->kicked = 1;
    if (s->kick_linked) return;
    s->kick_linked = 1;
    s->kick_next = s->srv->kicked;
    s->srv->kicked = s;
}

/* A failed op (no room on the ring): the stream cannot go on. */
static void op_failed(struct iox_stream *s, int r)
{
    if (!s->err) s->err = r;
    iox_stream_set_cause(s, IOX_STREAM_ERROR);
    iox_stream_fire(s, STREAM_CONN_EV_ABORT, NULL);
}

void iox_stream_rearm(struct iox_stream *s)
{
    int r = iox_sock_rearm(&s->srv->sh, &s->sk);
    if (r < 0) op_failed(s, r);
}

void iox_stream_start_send(struct iox_stream *s)
{
    s->sk.wcommit = s->sk.wlen;   /* every write is committed at once */
    int r = iox_sock_start_send(&s->srv->sh, &s->sk);
    if (r < 0) op_failed(s, r);
}

/* Once per stream: the machine's drop, on entering closing. */
void iox_stream_begin_close(struct iox_stream *s)
{
    iox_sock_begin_close(&s->srv->sh, &s->sk);
}

void iox_stream_close_if_idle(struct iox_stream *s)
{
    if (iox_sock_close_if_idle(&s->srv->sh, &s->sk)) iox_stream_fire(s, STREAM_CONN_EV_CLOSED, NULL);
}

/* ---- timers ----
 * One deadline per stream on the core's idle list (class PROGRESS: bytes
 * in or out renew it, at most once per clock step) or its linger list.
 * While replies are open and nothing is sendable the server is working on
 * an answer: that is never the peer's idleness (the expiry renews). */

void iox_stream_timer_remove(struct iox_stream *s)
{
    iox_sock_timer_remove(&s->srv->sh, &s->sk);
}

void iox_stream_progress(struct iox_stream *s)
{
    s->sk.tprogress = 1;
    if (s->sk.tlist == 1) iox_sock_timer_set(&s->srv->sh, &s->sk, IOX_SOCK_T_PROGRESS);
}

void iox_stream_timer_linger(struct iox_stream *s)
{
    iox_sock_timer_linger(&s->srv->sh, &s->sk);
}

void iox_stream_on_timer(struct iox_stream *s)
{
    struct iox_stream_server *srv = s->srv;
    int lingering;
    iox_sock_expire(&srv->sh, &s->sk, &lingering);   /* PROGRESS: never renewed by the send queue */
    if (!lingering) {
        /* Replies open and nothing sendable (side bytes wait for an
         * earlier answer): the server is working, the peer is not idle. */
        int working = s->nreplies && iox_sock_owed(&s->sk) == 0 && !s->sk.send_inflight;
        int keep = working;
        if (!keep && srv->cfg.on_timeout) keep = srv->cfg.on_timeout(s, srv->cfg.ctx) == IOX_STREAM_TIMEOUT_KEEP;
        if (keep || !iox_stream_in_use(s) || s->state == STREAM_CONN_S_CLOSING) {
            if (iox_stream_in_use(s) && s->state != STREAM_CONN_S_CLOSING && !s->sk.tlist)
                iox_sock_timer_restart(&srv->sh, &s->sk);
            return;
        }
        srv->st.timeouts++;
        iox_stream_set_cause(s, IOX_STREAM_TIMEOUT);
        IOX_DEBUG("stream %u: idle timeout in %s", s->sk.idx, stream_conn_state_names[s->state]);
    }
    iox_stream_fire(s, STREAM_CONN_EV_TIMEOUT, NULL);
}

/* ---- completions ---- */

static void ops_idle(struct iox_stream *s)
{
    iox_stream_fire(s, STREAM_CONN_EV_OP_DONE, NULL);
}

static void socket_error(struct iox_stream *s, int err, int event)
{
    if (!s->err) s->err = err;
    iox_stream_set_cause(s, IOX_STREAM_ERROR);
    iox_stream_fire(s, event, NULL);
}

void iox_stream_on_cqe(struct iox_stream *s, unsigned op, const struct iox_cqe *cqe)
{
    struct iox_stream_server *srv = s->srv;
    struct iox_stream_event ev = {cqe->res, cqe->flags, NULL, 0};
    switch (iox_sock_cqe(&srv->sh, &s->sk, op, cqe, &ev.data, &ev.len)) {
    case IOX_SOCK_GOT_RECV:
        srv->st.bytes_in += ev.len;
        iox_stream_progress(s);
        iox_stream_fire(s, STREAM_CONN_EV_RECV, &ev);
        /* The protocol is done with these bytes (a cut message was
         * copied to the carry): the buffer goes back before we return. */
        iox_sock_recv_done(&srv->sh, cqe);
        if (iox_sock_recv_over(cqe)) iox_stream_fire(s, STREAM_CONN_EV_RECV_ENDED, NULL);
        break;
    case IOX_SOCK_GOT_RECV_EOF:
        iox_stream_set_cause(s, IOX_STREAM_PEER_EOF);
        iox_stream_fire(s, STREAM_CONN_EV_RECV_EOF, NULL);
        break;
    case IOX_SOCK_GOT_RECV_NOBUFS:
        srv->st.enobufs++;
        iox_stream_fire(s, STREAM_CONN_EV_RECV_NOBUFS, NULL);
        break;
    case IOX_SOCK_GOT_RECV_CANCELLED:
        iox_stream_fire(s, STREAM_CONN_EV_RECV_CANCELLED, NULL);
        break;
    case IOX_SOCK_GOT_RECV_ERROR:
        if (cqe->res > 0) socket_error(s, -EPROTO, STREAM_CONN_EV_ABORT);   /* bytes without a buffer */
        else socket_error(s, cqe->res, STREAM_CONN_EV_RECV_ERROR);
        break;
    case IOX_SOCK_GOT_SEND_DONE:
        srv->st.bytes_out += (uint32_t)cqe->res;
        if (cqe->res > 0) iox_stream_progress(s);
        iox_stream_fire(s, STREAM_CONN_EV_SEND_DONE, NULL);
        break;
    case IOX_SOCK_GOT_SEND_PARTIAL:
        srv->st.bytes_out += (uint32_t)cqe->res;
        iox_stream_progress(s);
        iox_stream_fire(s, STREAM_CONN_EV_SEND_PARTIAL, NULL);
        break;
    case IOX_SOCK_GOT_SEND_ERROR:
        socket_error(s, cqe->res < 0 ? cqe->res : -EPIPE, STREAM_CONN_EV_SEND_ERROR);
        break;
    case IOX_SOCK_GOT_CLOSED:
        iox_stream_fire(s, STREAM_CONN_EV_CLOSED, NULL);
        return;
    case IOX_SOCK_GOT_UNSENT:
        break;   /* never asked: a stream's deadline is PROGRESS, which SIOCOUTQ does not renew */
    case IOX_SOCK_GOT_OTHER:
        if (op != IOX_OP_CANCEL && op != IOX_OP_SHUTDOWN) return;   /* unknown op (logged) */
        break;
    }
    if (!s->sk.inflight) ops_idle(s);
}

/* ---- slots ---- */

/* Every per-connection field reset, the state left to the machine's
 * [reuse] functions, the slot's generation and its end-of-turn links kept
 * (the slot may still sit on this turn's lists from its previous life).
 * Its buffers went back when it was released. */
static void slot_reset(struct iox_stream *s)
{
    struct iox_sock k = s->sk;
    memset(&s->sk, 0, sizeof s->sk);
    s->sk.idx = k.idx;
    s->sk.gen = k.gen;
    s->sk.parked_linked = k.parked_linked;
    s->sk.dirty_linked = k.dirty_linked;
    s->sk.parked_next = k.parked_next;
    s->sk.dirty_next = k.dirty_next;
    s->sk.fd = -1;
    s->paused = s->input_off = s->want_drain = s->writes_off = s->cause = 0;
    s->err = 0;
    s->kicked = 0;
    s->firing = s->nqueued = 0;
    s->rq_head = s->rq_tail = 0;
    s->nreplies = 0;
    s->side_len = 0;
    s->user = NULL;
}

void iox_stream_init_slot(struct iox_stream_server *srv, struct iox_stream *s, uint32_t idx)
{
    s->srv = srv;
    s->sk.idx = idx;
    slot_reset(s);
    stream_conn_free(&s->state);   /* -> closed, whatever the memory held */
}

void iox_stream_open_slot(struct iox_stream *s, int fd)
{
    struct iox_stream_server *srv = s->srv;
    slot_reset(s);
    s->sk.fd = fd;
    stream_conn_open(&s->state);   /* closed -> reading; abort()s on a slot in use */
    iox_sock_timer_set(&srv->sh, &s->sk, IOX_SOCK_T_PROGRESS);
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
    s->sk.gen++;               /* late CQEs and refs for the old socket are now stale */
    srv->free_slots[srv->nfree++] = s->sk.idx;
    srv->nconns--;
    srv->st.closed++;
    iox_reactor_accept_resume(srv->r, srv->listener);
}
