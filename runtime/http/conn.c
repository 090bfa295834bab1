/* conn.c — completion handling, sends, timers and close for iox_conn.
 * The decisions live in the generated machine (spec/machines/http_conn.toml);
 * this file keeps the op books (ops in flight, the recv armed or being
 * cancelled, the peer's EOF), delivers events, and writes the state only
 * through the spec's [reuse] functions (http_conn_free, http_conn_open). */
#include "conn_buffers.h"
#include "conn_internal.h"
#include "http_conn_machine.h"
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t ud_of(struct iox_conn *c, unsigned op)
{
    return iox_ud(op, (unsigned)c->hs->owner, c->gen, c->idx);
}

/* ---- machine entry with a re-entrancy queue ---- */

/* An event raised while the machine is running (a handler answering inside
 * on_request, a failure inside an action) waits for the current chain. Such
 * events carry no payload by construction: completions — the only events
 * with bytes or a result — are delivered by the reactor's dispatch, which
 * never runs inside a chain. A re-entrant event with a payload is therefore
 * a runtime bug, and stops the process rather than lose the payload. An
 * event already waiting is not queued twice: each is a notification
 * ("a reply is written", "fail") whose action acts on the connection as it
 * is then, so once is enough — and the queue, one entry per event kind,
 * cannot overflow. (Before: 6 entries, overflow dropped with a log line.) */
static void conn_fire(struct iox_conn *c, int event, const struct iox_event *ev)
{
    if (c->firing) {
        if (ev && (ev->data || ev->len || ev->res || ev->flags)) {
            IOX_ERROR("conn %u: %s with a payload raised inside the machine — a runtime bug; aborting",
                      c->idx, http_conn_event_names[event]);
            abort();
        }
        for (unsigned i = 0; i < c->nqueued; i++)
            if (c->queued[i] == event) return;
        c->queued[c->nqueued++] = (uint8_t)event;   /* < HTTP_CONN_EVENT_COUNT distinct */
        return;
    }
    static const struct iox_event none = {0, 0, NULL, 0};
    c->firing = 1;
    http_conn_fire(c, &c->state, event, ev ? ev : &none);
    while (c->nqueued) {   /* pending ones only: an event may be raised again once handled */
        int e = c->queued[0];
        c->nqueued--;
        memmove(c->queued, c->queued + 1, c->nqueued);
        http_conn_fire(c, &c->state, e, &none);
    }
    c->firing = 0;
}

void iox_conn_fire(struct iox_conn *c, int event, const struct iox_event *ev)
{
    int nested = c->firing;
    conn_fire(c, event, ev);
    if (!nested) iox_conn_timer_update(c);
}

/* No op on the socket is in flight any more. Only closing acts on it (the
 * close waits for it; every other state ignores it), so no deadline is
 * recomputed: closing has none, and elsewhere nothing changed. */
static void ops_idle(struct iox_conn *c)
{
    conn_fire(c, HTTP_CONN_EV_OP_DONE, NULL);
}

/* ---- lists on the reactor ---- */

void iox_conn_mark_dirty(struct iox_conn *c)
{
    c->dirty = 1;
    if (c->dirty_linked) return;
    c->dirty_linked = 1;
    c->dirty_next = c->hs->dirty;
    c->hs->dirty = c;
}

/* A recv is armed again at the end of the turn: not while one is armed or
 * being cancelled, and never after the peer's EOF (the socket has nothing
 * more to deliver). The machine asks for it only in the states that read. */
void iox_conn_park(struct iox_conn *c)
{
    if (c->recv_armed || c->recv_cancelling || c->peer_shut) return;
    c->parked = 1;
    if (c->parked_linked) return;
    c->parked_linked = 1;
    c->parked_next = c->hs->parked;
    c->hs->parked = c;
}

/* Backpressure: the machine is entering a throttled state. A re-arm asked
 * for earlier in this turn is withdrawn (reading stays stopped until the
 * machine parks the recv again), and an armed recv is cancelled. */
void iox_conn_stop_recv(struct iox_conn *c)
{
    c->parked = 0;
    if (c->recv_armed && !c->recv_cancelling) {
        if (iox_seam_cancel(c->r->seam, ud_of(c, IOX_OP_RECV), ud_of(c, IOX_OP_CANCEL)) == 0) {
            c->inflight++;
            c->recv_cancelling = 1;
        }
    }
}

static void tlist_remove(struct iox_conn *c)
{
    struct iox_conn_list *l = c->tlist == 1 ? &c->hs->idle : c->tlist == 2 ? &c->hs->linger : NULL;
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
    struct iox_conn_list *l = which == 1 ? &c->hs->idle : &c->hs->linger;
    c->deadline_ms = deadline;
    c->tlist = (uint8_t)which;
    c->tnext = NULL;
    c->tprev = l->tail;
    if (l->tail) l->tail->tnext = c; else l->head = c;
    l->tail = c;
}

/* What a connection may be timed out for (docs/http.md, "Timeouts"). The
 * one rule: a request the server has received is answered however long the
 * server takes to produce the answer; only the client's own slowness can
 * close the connection —
 *   IDLE    nothing owed either way: idle since the last answer left;
 *   HEAD    a request head is arriving (or cut in the carry): stuck since
 *           its first byte, a trickle does not renew it (slowloris);
 *   BODY    a request body is arriving: renewed by each piece of it;
 *   OUTPUT  answers are waiting for the client to take them: renewed by
 *           each send that makes progress;
 *   NONE    the server is producing an answer (async handler, file read,
 *           database): no client deadline at all.
 * Before, the deadline ran from the last send whatever happened since, so a
 * request that arrived late in an idle period and took the server the rest
 * of it to start answering was closed unanswered (the soak's file mode under
 * load: "EOF after 0 body bytes"). Lingering keeps its own short deadline. */
enum { T_NONE, T_IDLE, T_HEAD, T_BODY, T_OUTPUT };
static const char *const timer_class_names[] = {"nothing", "idleness", "a request head", "a request body", "output"};

static unsigned timer_class(const struct iox_conn *c)
{
    if (c->send_inflight || c->wsent < c->wcommit) return T_OUTPUT;
    if (c->body_pending) return T_BODY;
    if (c->rq_head != c->rq_tail) return T_NONE;
    if (c->in_len || iox_http_parser_mid_request(&c->hp)) return T_HEAD;
    return T_IDLE;
}

void iox_conn_timer_update(struct iox_conn *c)
{
    int progress = c->tprogress;
    c->tprogress = 0;
    if (c->tlist == 2 || iox_conn_closing(c)) return;
    unsigned k = timer_class(c);
    if (k == c->tclass && !(progress && (k == T_OUTPUT || k == T_BODY))) return;
    c->tclass = (uint8_t)k;
    c->last_unsent = 0;
    tlist_remove(c);
    if (k != T_NONE) tlist_append(c, 1, c->r->now_ms + c->hs->cfg.idle_timeout_ms);
}

void iox_conn_timer_linger(struct iox_conn *c)
{
    tlist_remove(c);
    c->tclass = T_NONE;
    tlist_append(c, 2, c->r->now_ms + c->hs->cfg.linger_ms);
}

void iox_conn_on_timer(struct iox_conn *c)
{
    int lingering = c->tlist == 2;   /* the end of a linger is no timeout */
    tlist_remove(c);
    /* A send completes when the kernel has taken the bytes, not when the
     * client has them: a client still taking a large answer out of the
     * socket is not idle. While the send queue keeps changing between
     * expiries, the deadline is renewed (one ioctl per expiry, not per
     * request); a queue that does not move is a client that does not read. */
    if (c->tclass == T_IDLE || c->tclass == T_OUTPUT) {
        int q = iox_seam_unsent(c->r->seam, c->fd);
        if (q > 0 && (uint32_t)q != c->last_unsent) {
            c->last_unsent = (uint32_t)q;
            tlist_append(c, 1, c->r->now_ms + c->hs->cfg.idle_timeout_ms);
            return;
        }
    }
    IOX_DEBUG("conn %u: timeout in %s (deadline for %s)", c->idx, http_conn_state_names[c->state],
              timer_class_names[c->tclass]);
    if (!lingering) c->hs->n_timeouts++;
    iox_conn_fire(c, HTTP_CONN_EV_TIMEOUT, NULL);
}

void iox_conn_on_shutdown(struct iox_conn *c)
{
    iox_conn_fire(c, HTTP_CONN_EV_SHUTDOWN, NULL);
}

/* ---- ops ---- */

/* At the end of the turn, for a connection that parked its recv. Nothing
 * to decide: a throttle (iox_conn_stop_recv) and the close
 * (iox_conn_begin_close) withdraw the park, and iox_conn_park refuses after
 * the peer's EOF; what is left is the op books. */
void iox_conn_rearm(struct iox_conn *c)
{
    c->parked = 0;
    if (c->recv_armed || c->recv_cancelling || c->peer_shut) return;
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
    if (c->send_inflight || iox_conn_closing(c)) return;
    if (c->wsent >= c->wcommit) return;
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
    iox_conn_timer_update(c);
}

/* Once per connection: the machine's drop, on entering closing (which it
 * never leaves but for closed). */
void iox_conn_begin_close(struct iox_conn *c)
{
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
            c->hs->n_bytes_in += (uint32_t)cqe->res;
            ev.data = iox_seam_buf(c->r->seam, bid);
            ev.len = (uint32_t)cqe->res;
            iox_conn_fire(c, HTTP_CONN_EV_RECV, &ev);
            /* The parser is done with these bytes (a cut request was copied
             * to the carry): the buffer goes back before we return. */
            iox_seam_buf_return(c->r->seam, bid);
            if (!more) iox_conn_fire(c, HTTP_CONN_EV_RECV_ENDED, &ev);
        } else if (cqe->res == 0) {
            c->peer_shut = 1;   /* for every state, before it decides */
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
        c->hs->n_bytes_out += (uint32_t)cqe->res;
        if (cqe->res > 0) c->tprogress = 1;   /* the client is taking our output */
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
        else iox_conn_kick_drain(c);   /* streamed response: next chunk */
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
    if (!c->inflight) ops_idle(c);
}

/* ---- slots ---- */

/* Every field of the slot zeroed but its state (the machine's: outside the
 * dispatch only the spec's [reuse] functions set it), then the slot's
 * constants. */
static void slot_reset(struct iox_http_server *hs, struct iox_conn *c, uint32_t idx)
{
    const size_t at = offsetof(struct iox_conn, state), end = at + sizeof c->state;
    memset(c, 0, at);
    memset((char *)c + end, 0, sizeof *c - end);
    c->r = hs->r;
    c->hs = hs;
    c->idx = idx;
    c->fd = -1;
}

void iox_conn_init_slot(struct iox_http_server *hs, struct iox_conn *c, uint32_t idx)
{
    slot_reset(hs, c, idx);
    http_conn_free(&c->state);   /* -> closed, whatever the memory held */
}

void iox_conn_open(struct iox_conn *c, int fd)
{
    struct iox_reactor *r = c->r;
    /* The slot may still sit on this turn's dirty/parked lists from its
     * previous life: keep those links, reset everything else. */
    uint16_t gen = c->gen;
    uint8_t pl = c->parked_linked, dl = c->dirty_linked;
    struct iox_conn *pn = c->parked_next, *dn = c->dirty_next;
    slot_reset(c->hs, c, c->idx);
    c->gen = gen;
    c->parked_linked = pl;
    c->dirty_linked = dl;
    c->parked_next = pn;
    c->dirty_next = dn;
    c->fd = fd;
    http_conn_open(&c->state);   /* closed -> reading; abort()s on a slot still in use */
    iox_http_parser_init(&c->hp, &c->hs->cfg.limits);
    iox_conn_timer_update(c);
    iox_conn_park(c);   /* recv is armed with this turn's batch */
    if (r->stopping) iox_conn_fire(c, HTTP_CONN_EV_SHUTDOWN, NULL);
}

void iox_conn_release(struct iox_conn *c)
{
    struct iox_http_server *hs = c->hs;
    if (c->on_close) {
        void (*fn)(struct iox_conn *, void *) = c->on_close;
        c->on_close = NULL;
        fn(c, c->on_close_arg);   /* the slot (idx, gen) is still this connection's */
    }
    tlist_remove(c);
    if (c->body) iox_body_abort(c, -ECONNRESET);   /* its handler is told, then freed */
    c->in_len = 0;
    iox_carry_release(c);
    iox_slots_release(c);
    c->wsent = c->wlen;
    c->send_inflight = 0;
    iox_out_release(c);
    c->gen++;                  /* late CQEs for the old socket are now stale */
    hs->free_slots[hs->nfree++] = c->idx;
    hs->nconns--;
    hs->n_closed++;
    iox_http_slot_freed(hs);
}

/* ---- requests and their response slots ---- */

static struct iox_rslot *slot_of(struct iox_conn *c, uint16_t seq)
{
    return iox_conn_slot(c, seq);
}

/* seq is an open request: dispatched, its response not yet committed. */
static int is_open(const struct iox_conn *c, uint16_t seq)
{
    return (uint16_t)(seq - c->rq_head) < (uint16_t)(c->rq_tail - c->rq_head);
}

void iox_conn_set_target(struct iox_conn *c, uint16_t seq)
{
    struct iox_rslot *s = slot_of(c, seq);
    c->tgt = seq;
    c->req_head = s->head;
    c->req_keep_alive = s->keep_alive;
    c->req_minor = s->minor;
}

int iox_conn_is_oldest(const struct iox_conn *c)
{
    return c->tgt == c->rq_head;
}

/* The oldest open request streams (drain hook) and everything committed is
 * sent: let it write its next chunk. */
void iox_conn_kick_drain(struct iox_conn *c)
{
    if (c->rq_head == c->rq_tail || c->send_inflight || c->wsent < c->wcommit || iox_conn_closing(c))
        return;
    struct iox_rslot *s = slot_of(c, c->rq_head);
    if (!s->on_drain || !s->awaiting) return;
    iox_conn_set_target(c, c->rq_head);
    s->on_drain(c, s->on_drain_arg);
}

struct iox_conn_ref iox_conn_ref(struct iox_conn *c)
{
    struct iox_conn_ref ref = {c->hs, c->idx, c->gen, c->tgt};
    return ref;
}

struct iox_conn *iox_conn_deref(struct iox_conn_ref ref)
{
    if (!ref.hs || ref.idx >= ref.hs->max_conns) return NULL;
    struct iox_conn *c = &ref.hs->conns[ref.idx];
    if (c->gen != ref.gen || iox_conn_closing(c)) return NULL;
    if (!is_open(c, ref.seq)) return NULL;
    struct iox_rslot *s = slot_of(c, ref.seq);
    if (s->seq != ref.seq || !s->awaiting) return NULL;
    iox_conn_set_target(c, ref.seq);
    return c;
}

int iox_conn_ref_done(struct iox_conn_ref ref)
{
    struct iox_conn *c = iox_conn_deref(ref);
    if (!c) return -ESTALE;
    iox_conn_async_done(c);
    return 0;
}

void iox_conn_flush(struct iox_conn *c)
{
    if (!is_open(c, c->tgt)) return;
    struct iox_rslot *s = slot_of(c, c->tgt);
    if (!s->body_done) return;
    if (c->tgt != c->rq_head) { s->flushed = s->len; return; }
    c->wcommit = c->wlen;
    iox_conn_mark_dirty(c);
}

void iox_conn_set_drain_hook(struct iox_conn *c, void (*fn)(struct iox_conn *c, void *arg), void *arg)
{
    if (!is_open(c, c->tgt)) return;
    struct iox_rslot *s = slot_of(c, c->tgt);
    s->on_drain = fn;
    s->on_drain_arg = arg;
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
    if (!c->inflight) ops_idle(c);
}

/* The target request's answer is written: it no longer awaits its handler
 * (the machine decides what that means in its state: reply). */
void iox_conn_async_done(struct iox_conn *c)
{
    if (is_open(c, c->tgt)) {
        struct iox_rslot *s = slot_of(c, c->tgt);
        s->on_drain = NULL;
        s->awaiting = 0;
        if (s->counted) { s->counted = 0; c->nasync--; }
    }
    iox_conn_fire(c, HTTP_CONN_EV_REPLY, NULL);
}

/* Inside a chain the fail is queued behind it; the parse sees it queued
 * and stops (conn_actions.c, abort_pending). */
void iox_conn_abort(struct iox_conn *c)
{
    iox_conn_fire(c, HTTP_CONN_EV_FAIL, NULL);
}
