/* conn.c — completion handling, sends, timers and close for iox_conn.
 * The decisions live in the generated machine (spec/machines/http_conn.toml);
 * the socket mechanics (op books, ops, the carry and write buffer, timer
 * lists, the close) are the stream core's (ioxide/stream_core.h), shared
 * with the stream layer. This file turns the core's completions into the
 * machine's events, says what the deadline is for (timer_class), and writes
 * the state only through the spec's [reuse] functions (http_conn_free,
 * http_conn_open). */
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
                      c->sk.idx, http_conn_event_names[event]);
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
enum { T_NONE = IOX_SOCK_T_NONE, T_IDLE = IOX_SOCK_T_IDLE, T_HEAD = IOX_SOCK_T_STUCK,
       T_BODY = IOX_SOCK_T_PROGRESS, T_OUTPUT = IOX_SOCK_T_OUTPUT };
static const char *const timer_class_names[] = {"nothing", "idleness", "a request head", "a request body", "output"};

static unsigned timer_class(const struct iox_conn *c)
{
    if (c->sk.send_inflight || c->sk.wsent < c->sk.wcommit) return T_OUTPUT;
    if (c->body_pending) return T_BODY;
    if (c->rq_head != c->rq_tail) return T_NONE;
    if (c->sk.in_len || iox_http_parser_mid_request(&c->hp)) return T_HEAD;
    return T_IDLE;
}

void iox_conn_timer_update(struct iox_conn *c)
{
    if (iox_conn_closing(c)) { c->sk.tprogress = 0; return; }
    iox_sock_timer_set(&c->hs->sh, &c->sk, timer_class(c));
}

void iox_conn_timer_linger(struct iox_conn *c)
{
    iox_sock_timer_linger(&c->hs->sh, &c->sk);
}

static void conn_timeout(struct iox_conn *c, int lingering)
{
    IOX_DEBUG("conn %u: timeout in %s (deadline for %s)", c->sk.idx, http_conn_state_names[c->state],
              timer_class_names[c->sk.tclass]);
    if (!lingering) c->hs->n_timeouts++;
    iox_conn_fire(c, HTTP_CONN_EV_TIMEOUT, NULL);
}

void iox_conn_on_timer(struct iox_conn *c)
{
    int lingering;
    /* 1: the client is reading; 2: asking the kernel on the ring first
     * (IOX_SOCK_GOT_UNSENT below decides). */
    if (iox_sock_expire(&c->hs->sh, &c->sk, &lingering)) return;
    conn_timeout(c, lingering);
}

void iox_conn_on_shutdown(struct iox_conn *c)
{
    iox_conn_fire(c, HTTP_CONN_EV_SHUTDOWN, NULL);
}

/* ---- ops ---- */

/* At the end of the turn, for a connection that parked its recv. Nothing
 * to decide: a throttle (iox_conn_stop_recv) and the close
 * (iox_conn_begin_close) withdraw the park, and iox_conn_park refuses after
 * the peer's EOF; what is left is the op books (the core's). */
void iox_conn_rearm(struct iox_conn *c)
{
    if (iox_sock_rearm(&c->hs->sh, &c->sk) < 0) iox_conn_fire(c, HTTP_CONN_EV_FAIL, NULL);
}

void iox_conn_start_send(struct iox_conn *c)
{
    if (iox_conn_closing(c)) { c->sk.dirty = 0; return; }
    if (c->sk.send_inflight || c->sk.wsent >= c->sk.wcommit) { c->sk.dirty = 0; return; }
    if (iox_sock_start_send(&c->hs->sh, &c->sk) < 0) {
        iox_conn_fire(c, HTTP_CONN_EV_FAIL, NULL);
        return;
    }
    iox_conn_timer_update(c);
}

/* Once per connection: the machine's drop, on entering closing (which it
 * never leaves but for closed). */
void iox_conn_begin_close(struct iox_conn *c)
{
    iox_sock_begin_close(&c->hs->sh, &c->sk);
}

void iox_conn_close_if_idle(struct iox_conn *c)
{
    if (iox_sock_close_if_idle(&c->hs->sh, &c->sk)) iox_conn_fire(c, HTTP_CONN_EV_CLOSED, NULL);
}

/* ---- completions ---- */

void iox_conn_on_cqe(struct iox_conn *c, unsigned op, const struct iox_cqe *cqe)
{
    struct iox_event ev = {cqe->res, cqe->flags, NULL, 0};
    switch (iox_sock_cqe(&c->hs->sh, &c->sk, op, cqe, &ev.data, &ev.len)) {
    case IOX_SOCK_GOT_RECV:
        c->hs->n_bytes_in += ev.len;
        iox_conn_fire(c, HTTP_CONN_EV_RECV, &ev);
        /* The parser is done with these bytes (a cut request was copied
         * to the carry): the buffer goes back before we return. */
        iox_sock_recv_done(&c->hs->sh, cqe);
        if (iox_sock_recv_over(cqe)) iox_conn_fire(c, HTTP_CONN_EV_RECV_ENDED, &ev);
        break;
    case IOX_SOCK_GOT_RECV_EOF:
        iox_conn_fire(c, HTTP_CONN_EV_RECV_EOF, &ev);
        break;
    case IOX_SOCK_GOT_RECV_NOBUFS:
        iox_conn_fire(c, HTTP_CONN_EV_RECV_NOBUFS, &ev);
        break;
    case IOX_SOCK_GOT_RECV_CANCELLED:
        iox_conn_fire(c, HTTP_CONN_EV_RECV_CANCELLED, &ev);
        break;
    case IOX_SOCK_GOT_RECV_ERROR:
        /* bytes without a buffer: a ring bug, the connection fails */
        iox_conn_fire(c, cqe->res > 0 ? HTTP_CONN_EV_FAIL : HTTP_CONN_EV_RECV_ERROR, &ev);
        break;
    case IOX_SOCK_GOT_SEND_DONE:
        c->hs->n_bytes_out += (uint32_t)cqe->res;
        if (c->sk.wsent >= c->sk.wcommit) iox_conn_kick_drain(c);   /* streamed response: next chunk */
        iox_conn_fire(c, HTTP_CONN_EV_SEND_DONE, &ev);
        break;
    case IOX_SOCK_GOT_SEND_PARTIAL:
        c->hs->n_bytes_out += (uint32_t)cqe->res;
        iox_conn_fire(c, HTTP_CONN_EV_SEND_PARTIAL, &ev);
        break;
    case IOX_SOCK_GOT_SEND_ERROR:
        if (cqe->res > 0) c->hs->n_bytes_out += (uint32_t)cqe->res;
        iox_conn_fire(c, HTTP_CONN_EV_SEND_ERROR, &ev);
        break;
    case IOX_SOCK_GOT_CLOSED:
        iox_conn_fire(c, HTTP_CONN_EV_CLOSED, &ev);
        return;
    case IOX_SOCK_GOT_UNSENT:
        /* The deadline's own check (stream_core.c): the machine sees the
         * timeout only if it expired after all, never the check. */
        if (!iox_conn_closing(c) && iox_sock_unsent_done(&c->hs->sh, &c->sk, cqe->res)) conn_timeout(c, 0);
        break;
    case IOX_SOCK_GOT_OTHER:
        if (op != IOX_OP_CANCEL && op != IOX_OP_SHUTDOWN) return;   /* unknown op (logged) */
        break;
    }
    if (!c->sk.inflight) ops_idle(c);
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
    c->sk.idx = idx;
    c->sk.fd = -1;
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
    uint16_t gen = c->sk.gen;
    uint8_t pl = c->sk.parked_linked, dl = c->sk.dirty_linked;
    struct iox_sock *pn = c->sk.parked_next, *dn = c->sk.dirty_next;
    slot_reset(c->hs, c, c->sk.idx);
    c->sk.gen = gen;
    c->sk.parked_linked = pl;
    c->sk.dirty_linked = dl;
    c->sk.parked_next = pn;
    c->sk.dirty_next = dn;
    c->sk.fd = fd;
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
    iox_sock_timer_remove(&hs->sh, &c->sk);
    if (c->body) iox_body_abort(c, -ECONNRESET);   /* its handler is told, then freed */
    iox_slots_release(c);
    iox_sock_buffers_drop(&hs->sh, &c->sk);
    c->sk.gen++;   /* late CQEs for the old socket are now stale */
    hs->free_slots[hs->nfree++] = c->sk.idx;
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
    if (c->rq_head == c->rq_tail || c->sk.send_inflight || c->sk.wsent < c->sk.wcommit || iox_conn_closing(c))
        return;
    struct iox_rslot *s = slot_of(c, c->rq_head);
    if (!s->on_drain || !s->awaiting) return;
    iox_conn_set_target(c, c->rq_head);
    s->on_drain(c, s->on_drain_arg);
}

struct iox_conn_ref iox_conn_ref(struct iox_conn *c)
{
    struct iox_conn_ref ref = {c->hs, c->sk.idx, c->sk.gen, c->tgt};
    return ref;
}

struct iox_conn *iox_conn_deref(struct iox_conn_ref ref)
{
    if (!ref.hs || ref.idx >= ref.hs->max_conns) return NULL;
    struct iox_conn *c = &ref.hs->conns[ref.idx];
    if (c->sk.gen != ref.gen || iox_conn_closing(c)) return NULL;
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
    c->sk.wcommit = c->sk.wlen;
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
    c->sk.inflight++;
}

void iox_conn_op_end(struct iox_conn *c)
{
    c->sk.inflight--;
    if (!c->sk.inflight) ops_idle(c);
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
