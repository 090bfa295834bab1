/* stream_actions.c — the guards and actions of the stream_conn machine
 * (spec/machines/stream_conn.toml). Actions do the work and raise what
 * happened; where the stream goes next is the spec's. */
#include "stream_internal.h"
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* ---- guards (side-effect free) ---- */

int stream_conn_guard_peer_shut(const struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    return s->sk.peer_shut;
}

int stream_conn_guard_over_cap(const struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    return iox_stream_unsent_bytes(s) >= s->srv->cfg.write_cap;
}

int stream_conn_guard_held(const struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    return s->paused || s->nreplies >= s->srv->cfg.max_replies;
}

int stream_conn_guard_owes(const struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    return iox_stream_unsent_bytes(s) > 0 || s->sk.send_inflight || s->nreplies > 0;
}

int stream_conn_guard_shutdown_hook(const struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    return s->srv->cfg.on_shutdown != NULL;
}

/* ---- offering input ---- */

/* May the protocol be offered more bytes now? Not once it paused, closed
 * or failed, nor while every reply slot is open (it could not answer). */
static int can_offer(const struct iox_stream *s)
{
    return !s->paused && !s->input_off && s->nreplies < s->srv->cfg.max_replies;
}

/* Offer p[0, n) until the protocol takes no more. Returns the bytes
 * consumed, or -1 after a protocol error (cause recorded). */
static long offer_bytes(struct iox_stream *s, const char *p, size_t n)
{
    struct iox_stream_server *srv = s->srv;
    size_t done = 0;
    while (done < n && can_offer(s)) {
        long k = srv->cfg.on_data(s, p + done, n - done, srv->cfg.ctx);
        if (k < 0) {
            iox_stream_set_cause(s, IOX_STREAM_PROTOCOL);
            s->input_off = 1;
            return -1;
        }
        if (k == 0) break;
        if ((size_t)k > n - done) k = (long)(n - done);
        done += (size_t)k;
    }
    return (long)done;
}

/* The carry is the core's (stream_core.c): blocks from the server's free
 * list, grown as a cut message needs (max_carry bounds it below). Append
 * all n bytes, or 0 for no memory. */
static int carry_add(struct iox_stream *s, const char *p, size_t n)
{
    if (!n) return 1;
    return iox_sock_carry_append(&s->srv->sh, &s->sk, p, n, (size_t)s->sk.in_len + n) == n;
}

static void carry_drop(struct iox_stream *s)
{
    s->sk.in_len = 0;
    iox_sock_carry_release(&s->srv->sh, &s->sk);
}

/* The carry holds a cut message: too big to wait for? */
static int carry_too_big(struct iox_stream *s)
{
    if (s->sk.in_len <= s->srv->cfg.max_carry || !can_offer(s)) return 0;
    IOX_DEBUG("stream %u: a message of more than %u bytes (max_carry) was cut: closing", s->sk.idx,
              s->srv->cfg.max_carry);
    iox_stream_set_cause(s, IOX_STREAM_TOO_BIG);
    s->input_off = 1;
    return 1;
}

static int no_memory(struct iox_stream *s)
{
    IOX_WARN("stream %u: out of memory for the carry: closing", s->sk.idx);
    s->err = -ENOMEM;
    iox_stream_set_cause(s, IOX_STREAM_ERROR);
    s->input_off = 1;
    return STREAM_CONN_EV_BAD_INPUT;
}

/* Offer what the carry holds. */
static int offer_carry(struct iox_stream *s)
{
    if (s->sk.in_len) {
        long k = offer_bytes(s, s->sk.in, s->sk.in_len);
        if (k < 0) return STREAM_CONN_EV_BAD_INPUT;
        iox_sock_carry_consume(&s->srv->sh, &s->sk, (size_t)k);
        if (carry_too_big(s)) return STREAM_CONN_EV_BAD_INPUT;
    }
    return STREAM_CONN_EV_DELIVERED;
}

/* Offer p[0, n) where it lies; only the tail the protocol could not
 * consume yet is copied into the carry. */
static int offer_in_place(struct iox_stream *s, const char *p, size_t n)
{
    long k = offer_bytes(s, p, n);
    if (k < 0) return STREAM_CONN_EV_BAD_INPUT;
    if ((size_t)k < n && !carry_add(s, p + k, n - (size_t)k)) return no_memory(s);
    if (carry_too_big(s)) return STREAM_CONN_EV_BAD_INPUT;
    return STREAM_CONN_EV_DELIVERED;
}

int stream_conn_act_deliver(struct iox_stream *s, const struct iox_stream_event *ev)
{
    if (!s->sk.in_len) return offer_in_place(s, ev->data, ev->len);   /* zero-copy */
    /* A message was cut: complete it from the new bytes, copied in growing
     * pieces (most messages complete within the first). Once the protocol
     * has consumed everything that was carried, the rest lies in the ring
     * buffer: it is offered there, not copied. (Appending the whole buffer
     * instead copied every byte of a pipelined stream whose buffers each
     * end in a cut message.) */
    size_t cut = s->sk.in_len, off = 0, step = 256;
    for (;;) {
        if (!can_offer(s)) {
            if (!carry_add(s, ev->data + off, ev->len - off)) return no_memory(s);
            return STREAM_CONN_EV_DELIVERED;
        }
        size_t take = ev->len - off < step ? ev->len - off : step;
        if (!carry_add(s, ev->data + off, take)) return no_memory(s);
        off += take;
        long k = offer_bytes(s, s->sk.in, s->sk.in_len);
        if (k < 0) return STREAM_CONN_EV_BAD_INPUT;
        if ((size_t)k >= cut) {
            size_t back = s->sk.in_len - (size_t)k;   /* copies of ring bytes not consumed yet */
            carry_drop(s);
            return offer_in_place(s, ev->data + off - back, ev->len - off + back);
        }
        iox_sock_carry_consume(&s->srv->sh, &s->sk, (size_t)k);
        cut -= (size_t)k;
        if (carry_too_big(s)) return STREAM_CONN_EV_BAD_INPUT;
        if (off == ev->len) return STREAM_CONN_EV_DELIVERED;
        step *= 2;
    }
}

int stream_conn_act_hold(struct iox_stream *s, const struct iox_stream_event *ev)
{
    if (!carry_add(s, ev->data, ev->len)) return no_memory(s);
    return STREAM_CONN_EV_NONE;
}

int stream_conn_act_discard(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)s; (void)ev;
    return STREAM_CONN_EV_NONE;
}

int stream_conn_act_rearm(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    iox_stream_park(s);
    return STREAM_CONN_EV_NONE;
}

int stream_conn_act_park(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    iox_stream_park(s);   /* -ENOBUFS was counted by the completion handler */
    return STREAM_CONN_EV_NONE;
}

int stream_conn_act_count_nobufs(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)s; (void)ev;     /* counted by the completion handler; reading stays stopped */
    return STREAM_CONN_EV_NONE;
}

int stream_conn_act_stop_recv(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    iox_stream_stop_recv(s);
    return STREAM_CONN_EV_NONE;
}

/* ---- output ---- */

static void drain_check(struct iox_stream *s)
{
    struct iox_stream_server *srv = s->srv;
    if (!s->want_drain || s->sk.send_inflight || iox_stream_unsent_bytes(s)) return;
    s->want_drain = 0;
    if (srv->cfg.on_drain) srv->cfg.on_drain(s, srv->cfg.ctx);
}

int stream_conn_act_send_out(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    iox_stream_start_send(s);
    drain_check(s);
    return STREAM_CONN_EV_NONE;
}

/* Over the cap at the end of a turn: reading stops, and what is waiting
 * must still leave now — a reply written outside on_data (a cross-reactor
 * answer) can fill the cap on its own, and nothing else would flush it
 * (found by the RESP example with 1 MiB values across reactors). */
int stream_conn_act_throttle(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    iox_stream_stop_recv(s);
    iox_stream_start_send(s);
    drain_check(s);
    return STREAM_CONN_EV_NONE;
}

int stream_conn_act_send_rest(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    iox_stream_start_send(s);
    return STREAM_CONN_EV_NONE;
}

int stream_conn_act_sent(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    drain_check(s);
    return STREAM_CONN_EV_NONE;
}

static void drained(struct iox_stream *s)
{
    struct iox_stream_server *srv = s->srv;
    s->want_drain = 0;
    if (srv->cfg.on_drain) srv->cfg.on_drain(s, srv->cfg.ctx);
}

int stream_conn_act_unthrottle(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    drained(s);
    iox_stream_park(s);
    return offer_carry(s);
}

int stream_conn_act_unthrottle_held(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    drained(s);
    return STREAM_CONN_EV_NONE;
}

int stream_conn_act_offer(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    iox_stream_park(s);
    return offer_carry(s);
}

int stream_conn_act_offer_held(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    return offer_carry(s);   /* the peer shut its side: no recv again */
}

/* ---- ending ---- */

int stream_conn_act_finish(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    s->input_off = 1;
    carry_drop(s);
    iox_stream_park(s);   /* drain (and drop) input; see the peer's EOF */
    return STREAM_CONN_EV_FINISHED;
}

int stream_conn_act_notify_shutdown(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    s->srv->cfg.on_shutdown(s, s->srv->cfg.ctx);
    return STREAM_CONN_EV_NONE;
}

int stream_conn_act_linger(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    struct iox_stream_server *srv = s->srv;
    s->input_off = 1;
    carry_drop(s);
    iox_stream_set_cause(s, IOX_STREAM_CLOSED);
    /* No SQE: the same, synchronously (rare); a direct descriptor has no
     * such way (no fd): the linger then ends by its deadline. */
    if (iox_sock_shutdown_wr(&srv->sh, &s->sk) < 0 && srv->r->uring && !iox_fd_is_direct(s->sk.fd))
        shutdown(s->sk.fd, SHUT_WR);
    iox_stream_park(s);
    iox_stream_timer_linger(s);
    return STREAM_CONN_EV_NONE;
}

int stream_conn_act_drop(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    iox_stream_begin_close(s);
    iox_stream_close_if_idle(s);
    return STREAM_CONN_EV_NONE;
}

int stream_conn_act_maybe_close(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    iox_stream_close_if_idle(s);
    return STREAM_CONN_EV_NONE;
}

int stream_conn_act_release(struct iox_stream *s, const struct iox_stream_event *ev)
{
    (void)ev;
    iox_stream_release(s);
    return STREAM_CONN_EV_NONE;
}
