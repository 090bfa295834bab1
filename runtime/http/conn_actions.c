/* conn_actions.c — the hand-written actions of the http_conn machine.
 *
 * The generated dispatch (generated/http_conn_machine.c) decides which action
 * runs in which state; these functions do the work and return a follow-up
 * event (HTTP_CONN_EV_NONE for none). Op accounting and buffer returns are
 * done by iox_conn_on_cqe (conn.c) for every completion in every state, so
 * an action never has to remember them. */
#include "conn_buffers.h"
#include "conn_internal.h"
#include "http_conn_machine.h"
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* Largest carry: a head may be up to max_head, plus a few buffers that
 * arrive while a recv is being cancelled for backpressure. */
static size_t carry_max(struct iox_conn *c)
{
    return (size_t)c->hp.lim.max_head + 8u * c->r->seam->buf_size + IOX_CARRY_SLACK;
}

/* Where the carry may go once reading is throttled. Bytes delivered after
 * the throttle were already taken from the socket and must be kept: until
 * the cancel of the multishot recv lands, the kernel may deliver as many
 * buffers as the provided ring holds (CQEs already posted each pin one), far
 * more than the "few" carry_max allows — failing then reset the connection
 * and lost every answer owed. The ring is shared by the reactor, so this
 * bounds the total taken after throttles, not only this connection's. */
static size_t carry_limit(struct iox_conn *c)
{
    if (!c->throttled) return carry_max(c);
    return carry_max(c) + (size_t)c->r->seam->buf_count * c->r->seam->buf_size;
}

/* Arm the recv again at the end of the turn unless reading is paused for
 * backpressure or the peer is done sending (iox_conn_park ignores a recv
 * that is armed or being cancelled). */
static void read_again(struct iox_conn *c)
{
    if (!c->throttled && !c->eof) iox_conn_park(c);
}

static int over_cap(struct iox_conn *c)
{
    return (c->out ? c->wlen - c->wsent : 0) + c->side_len >= c->hs->cfg.write_cap;
}

static struct iox_rslot *slot_of(struct iox_conn *c, uint16_t seq)
{
    return iox_conn_slot(c, seq);
}

static unsigned nopen(const struct iox_conn *c)
{
    return (uint16_t)(c->rq_tail - c->rq_head);
}

/* A new request: the next slot of the ring, and the response target. */
static struct iox_rslot *slot_new(struct iox_conn *c, int head, int keep_alive, int minor, int body_done)
{
    if (c->rq_head == c->rq_tail) c->rq_base = c->rq_tail;   /* empty: start at plane 0 again */
    uint16_t seq = c->rq_tail++;
    struct iox_rslot *s = slot_of(c, seq);
    s->seq = seq;
    s->len = s->flushed = 0;   /* buf is NULL: freed when the slot left the ring */
    s->on_drain = NULL;
    s->awaiting = s->counted = 0;
    s->body_done = (uint8_t)body_done;
    s->head = (uint8_t)head;
    s->keep_alive = (uint8_t)keep_alive;
    s->minor = (uint8_t)minor;
    c->tgt = seq;
    c->req_head = (uint8_t)head;
    c->req_keep_alive = (uint8_t)keep_alive;
    c->req_minor = (uint8_t)minor;
    return s;
}

/* Commit, in request order, every complete answer at the front of the
 * ring: the oldest open request's answer is in the write buffer already;
 * the next one's side buffer moves there (its flushed part sendable at
 * once) and it becomes the oldest. 0, or FAIL when memory runs out. */
static int advance(struct iox_conn *c)
{
    int any = 0;
    while (c->rq_head != c->rq_tail) {
        struct iox_rslot *s = slot_of(c, c->rq_head);
        if (s->awaiting || !s->body_done) break;
        c->wcommit = c->wlen;
        c->rq_head++;
        c->hs->n_requests++;
        any = 1;
        if (c->rq_head == c->rq_tail) break;
        struct iox_rslot *n = slot_of(c, c->rq_head);
        if (n->len) {
            char *p = iox_out_reserve(c, n->len, (size_t)-1);
            if (!p) return HTTP_CONN_EV_FAIL;
            memcpy(p, n->buf, n->len);
            c->wlen += n->len;
            c->wcommit += n->flushed;
            if (n->flushed) any = 1;
        }
        iox_side_free(c, n);
    }
    if (any) iox_conn_mark_dirty(c);
    iox_conn_kick_drain(c);   /* a stream that became the oldest */
    return HTTP_CONN_EV_NONE;
}

/* No more requests are dispatched: close after the answers owed. Shutdown
 * mid-request (one_more) still answers the request being read. */
static int finish_due(struct iox_conn *c)
{
    return c->close_after && !c->one_more && !c->body_pending;
}

/* A request is fully read and answered (or a reply came): commit what can
 * be, in order. Returns FINISH when the connection must close after it. */
static int complete_request(struct iox_conn *c)
{
    if (advance(c)) return HTTP_CONN_EV_FAIL;
    return finish_due(c) ? HTTP_CONN_EV_FINISH : HTTP_CONN_EV_NONE;
}

/* Forget the last request's answer (its body turned out malformed, or it
 * never ends): its handler's reference no longer derefs. */
static void drop_last(struct iox_conn *c, struct iox_rslot *s)
{
    if (s->seq == c->rq_head) c->wlen = c->wcommit;
    else iox_side_free(c, s);
    s->on_drain = NULL;
    s->awaiting = 0;
    if (s->counted) { s->counted = 0; c->nasync--; }
}

/* A malformed request: drop its unanswered response, answer `status` after
 * every earlier answer, and close after it. The answer to a HEAD has no
 * content (RFC 9110 §9.3.2), whatever went wrong: a refused body keeps its
 * request's slot (and so its method); a refused head is a HEAD when the
 * parser got past the method. */
static int reject(struct iox_conn *c, int err)
{
    int status = iox_http_error_status(err);
    IOX_DEBUG("conn %u: %s → %d", c->idx, iox_http_result_name(err), status);
    struct iox_rslot *s;
    if (c->body_pending && nopen(c)) {
        /* The body of the last request: its slot carries the error. */
        s = slot_of(c, (uint16_t)(c->rq_tail - 1));
        drop_last(c, s);
        s->keep_alive = 0;
        s->minor = 1;
        s->body_done = 1;
        iox_conn_set_target(c, s->seq);
    } else {
        s = slot_new(c, iox_http_parser_method(&c->hp) == IOX_HTTP_HEAD, 0, 1, 1);
    }
    c->close_after = 1;
    c->one_more = 0;
    c->body_pending = 0;
    const char *reason = iox_http_error_reason(err);
    if (iox_resp_simple(c, status, "text/plain", reason, strlen(reason)) < 0)
        return HTTP_CONN_EV_FAIL;
    if (advance(c)) return HTTP_CONN_EV_FAIL;
    return HTTP_CONN_EV_FINISH;
}

/* Parsing pauses at the next head: the async limit is reached, the ring is
 * full (sync answers behind outstanding async ones), or a request owns the
 * connection's close hook (a streamed response is exclusive from behind). */
static int paused(struct iox_conn *c)
{
    return c->nasync >= c->hs->max_async || nopen(c) > c->hs->rslot_mask || c->on_close;
}

/* Run the parser over base[0, len). *used reports the bytes consumed; the
 * caller keeps the rest (a cut request, or input held back while parsing
 * is paused by the async limit or backpressure). */
static int process(struct iox_conn *c, const char *base, size_t len, size_t *used)
{
    size_t off = 0;
    int ev = HTTP_CONN_EV_NONE;
    while (off < len) {
        if (c->body_pending) {
            size_t consumed = 0;
            const char *data;
            size_t dlen;
            int r;
            /* Body bytes are discarded. Ask again after each piece, even
             * with no input left: the end of a body that ends exactly at
             * the end of this buffer is only reported by the next call. */
            do {
                r = iox_http_parse_body(&c->hp, base + off, len - off, &consumed, &data, &dlen);
                off += consumed;
                if (consumed) c->tprogress = 1;   /* the body is moving: not stuck */
            } while (r == IOX_HTTP_BODY_DATA);
            if (r == IOX_HTTP_NEED_MORE) continue;
            if (r < 0) { ev = reject(c, r); off = len; break; }
            /* BODY_DONE */
            c->body_pending = 0;
            slot_of(c, (uint16_t)(c->rq_tail - 1))->body_done = 1;
            ev = complete_request(c);
            if (ev) { off = len; break; }
            continue;
        }
        /* Between requests: the next head waits while parsing is paused,
         * or while the peer is not reading our answers. */
        if (finish_due(c)) { ev = HTTP_CONN_EV_FINISH; off = len; break; }
        if (paused(c)) { ev = HTTP_CONN_EV_ASYNC; break; }
        if (over_cap(c)) { iox_conn_throttle(c); break; }
        struct iox_http_request req;
        int r = iox_http_parse_head(&c->hp, base + off, len - off, &req);
        if (r == IOX_HTTP_NEED_MORE) break;
        if (r < 0) { ev = reject(c, r); off = len; break; }
        off += req.head_len;
        c->body_pending = req.body_kind != IOX_HTTP_BODY_NONE;
        struct iox_rslot *s = slot_new(c, req.method_id == IOX_HTTP_HEAD, req.keep_alive,
                                       req.version_minor, !c->body_pending);
        if (!req.keep_alive) c->close_after = 1;   /* the last request */
        c->one_more = 0;
        if (req.expect_continue && c->body_pending && req.version_minor >= 1 &&
            off == len && s->seq == c->rq_head) {
            /* The client waits for this before sending the body (RFC 9110
             * §10.1.1); an interim answer, sent ahead of the final one. Not
             * needed when body bytes are already here; not sent behind an
             * earlier outstanding answer (it would overtake it). */
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (iox_resp_write(c, cont, sizeof cont - 1) == 0) {
                c->wcommit = c->wlen;
                iox_conn_mark_dirty(c);
            }
        }
        s->awaiting = 1;   /* an answer from inside on_request (async_done) is noted */
        int h = c->hs->cfg.app->on_request(c, &req, c->hs->cfg.app_ctx);
        if (c->aborted) { off = len; ev = HTTP_CONN_EV_FAIL; break; }
        if (h == IOX_ASYNC && s->awaiting) {
            s->counted = 1;
            c->nasync++;
            continue;
        }
        s->awaiting = 0;
        if (!c->body_pending) {
            ev = complete_request(c);
            if (ev) { off = len; break; }
        }
    }
    *used = off;
    return ev;
}

/* Feed bytes that are not in the carry (a ring buffer's, or stashed). */
static int feed(struct iox_conn *c, const char *p, size_t n)
{
    int ev = HTTP_CONN_EV_NONE;
    if (c->in_len == 0) {
        size_t used = 0;
        ev = process(c, p, n, &used);
        p += used;
        n -= used;
        if (n && ev != HTTP_CONN_EV_FINISH && ev != HTTP_CONN_EV_FAIL) {
            if (iox_carry_append(c, p, n, carry_limit(c)) != n) return HTTP_CONN_EV_FAIL;
        }
        return ev;
    }
    /* Slow path: a request is already cut; continue it in the carry. */
    while (n) {
        size_t k = iox_carry_append(c, p, n, carry_limit(c));
        if (k == 0) return HTTP_CONN_EV_FAIL;
        p += k;
        n -= k;
        size_t used = 0;
        size_t before = c->in_len;
        ev = process(c, c->in, c->in_len, &used);
        iox_carry_consume(c, used);
        if (ev == HTTP_CONN_EV_FINISH || ev == HTTP_CONN_EV_FAIL) return ev;
        if (ev || c->throttled) {
            /* Parsing paused: keep the rest of the input behind the carry. */
            if (n && iox_carry_append(c, p, n, carry_limit(c)) != n) return HTTP_CONN_EV_FAIL;
            return ev;
        }
        if (used == 0 && before == c->in_cap && n) return HTTP_CONN_EV_FAIL;
    }
    return ev;
}

/* Parse what the carry holds (after an async reply or backpressure eased). */
static int feed_carry(struct iox_conn *c)
{
    if (!c->in_len) return HTTP_CONN_EV_NONE;
    size_t used = 0;
    int ev = process(c, c->in, c->in_len, &used);
    if (ev == HTTP_CONN_EV_FINISH || ev == HTTP_CONN_EV_FAIL) return ev;
    iox_carry_consume(c, used);
    return ev;
}

int http_conn_act_consume(struct iox_conn *c, const struct iox_event *ev)
{
    return feed(c, ev->data, ev->len);
}

int http_conn_act_stash(struct iox_conn *c, const struct iox_event *ev)
{
    if (c->body_pending) return feed(c, ev->data, ev->len);
    if (iox_carry_append(c, ev->data, ev->len, carry_limit(c)) != ev->len) {
        /* The client keeps sending while we cannot answer: stop reading. */
        iox_conn_throttle(c);
        return HTTP_CONN_EV_FAIL;
    }
    if (c->in_len > carry_max(c) / 2) iox_conn_throttle(c);
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_discard(struct iox_conn *c, const struct iox_event *ev)
{
    (void)c; (void)ev;
    return HTTP_CONN_EV_NONE;
}

/* The peer has sent everything (c->eof): once nothing parsable is waiting,
 * finish. Requests that arrived before the EOF are answered whenever the EOF
 * lands: while an async handler owns a request (its reply calls back here
 * through resume) or while backpressure holds complete requests in the carry
 * (the drain calls back here through sent), nothing is decided yet. After
 * that, what is left in the carry is a cut request that can never complete:
 * send what is owed and close, or close at once when nothing is. Before,
 * an EOF landing in those windows dropped the pipelined requests behind it
 * (found by tests/fuzz/fuzz_http_conn). */
static int after_eof(struct iox_conn *c)
{
    if (c->nasync || c->throttled) return HTTP_CONN_EV_NONE;
    if (c->wcommit > c->wsent || c->send_inflight || nopen(c)) {
        c->close_after = 1;
        return HTTP_CONN_EV_FINISH;
    }
    return HTTP_CONN_EV_FAIL;
}

int http_conn_act_peer_eof(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    c->eof = 1;
    return after_eof(c);
}

/* Waiting: the async replies decide (resume → after_eof). Finishing: the
 * close is already decided. */
int http_conn_act_note_eof(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    c->eof = 1;
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_rearm(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    read_again(c);
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_park(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    c->hs->n_enobufs++;
    read_again(c);
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_recv_stopped(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    read_again(c);
    return HTTP_CONN_EV_NONE;
}

/* A send completed in full. In finishing, the close follows once all is out;
 * otherwise, if reading was throttled and the backlog is gone, parse what
 * was held back and read again. */
int http_conn_act_sent(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    if (c->state == HTTP_CONN_S_FINISHING) {
        if (c->wsent >= c->wcommit && !c->send_inflight && !nopen(c)) return HTTP_CONN_EV_DRAINED;
        return HTTP_CONN_EV_NONE;
    }
    if (c->throttled && !over_cap(c)) {
        c->throttled = 0;
        int e = c->state == HTTP_CONN_S_READING ? feed_carry(c) : HTTP_CONN_EV_NONE;
        read_again(c);
        if (e) return e;
    }
    if (c->eof && c->state == HTTP_CONN_S_READING) return after_eof(c);
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_send_rest(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    iox_conn_mark_dirty(c);   /* the rest goes out with this turn's batch */
    return HTTP_CONN_EV_NONE;
}

/* An async handler's response is written (iox_conn_async_done marked its
 * request). Commit every answer now complete at the front, in request
 * order; a request whose body is still arriving (an early reply) is
 * committed when the body ends. In waiting, the limit no longer holds:
 * parse what was stashed (it may pause again). Before, reading ignored an
 * early reply and the connection hung in waiting until its idle timeout
 * (found by tests/fuzz/fuzz_http_conn). */
int http_conn_act_resume(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    int e = complete_request(c);
    if (e) return e;
    /* A throttle taken while waiting (a large stash) ends here: the stash is
     * parsed now, and parsing throttles again if output piles up. Ending it
     * before looking at EOF matters: with no send in flight nothing else
     * would ever lift it (the connection would sit until its idle timeout). */
    if (c->throttled && !over_cap(c)) c->throttled = 0;
    e = feed_carry(c);
    if (e) return e;
    read_again(c);
    if (c->eof) return after_eof(c);
    return HTTP_CONN_EV_NONE;
}

/* Finishing, with answers still owed by async handlers: commit in order;
 * the drain (sent) waits for the last of them. */
int http_conn_act_settle(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    if (advance(c)) return HTTP_CONN_EV_FAIL;
    if (!nopen(c) && c->wsent >= c->wcommit && !c->send_inflight) return HTTP_CONN_EV_DRAINED;
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_on_shutdown(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    c->close_after = 1;
    /* Between requests (idle, only output left, or async answers owed):
     * send what is owed, then half-close and linger — requests the peer
     * sent meanwhile must not turn our close into a RST that destroys
     * answers still in flight. */
    if (!iox_http_parser_mid_request(&c->hp) && !c->in_len && !c->body_pending)
        return HTTP_CONN_EV_FINISH;
    /* Mid-request: close after its answer (a head being read is still
     * dispatched; a body being read belongs to the last request). */
    c->one_more = !c->body_pending;
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_note_shutdown(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    c->close_after = 1;
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_finish(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    c->close_after = 1;
    /* Input after the last answer is dropped, and so is any carried part. */
    c->in_len = 0;
    iox_carry_release(c);
    /* A request whose body is still arriving never completes now: its
     * answer is dropped (earlier ones are still owed and wait). */
    if (c->body_pending && nopen(c)) {
        struct iox_rslot *s = slot_of(c, (uint16_t)(c->rq_tail - 1));
        drop_last(c, s);
        s->body_done = 1;
        if (advance(c)) return HTTP_CONN_EV_FAIL;
    }
    c->body_pending = 0;
    if (c->throttled) {
        c->throttled = 0;
        read_again(c);
    }
    if (c->wsent >= c->wcommit && !c->send_inflight && !nopen(c)) return HTTP_CONN_EV_DRAINED;
    iox_conn_mark_dirty(c);
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_linger(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    /* Linger while stopping too: the grace deadline bounds it, and closing
     * with unread input would reset the connection and discard answers
     * still in the socket buffer (RFC 9112 §9.6). */
    if (c->eof) return HTTP_CONN_EV_FAIL;
    int r = iox_seam_shutdown(c->r->seam, c->fd, SHUT_WR,
                              iox_ud(IOX_OP_SHUTDOWN, (unsigned)c->hs->owner, c->gen, c->idx));
    if (r < 0) return HTTP_CONN_EV_FAIL;
    c->inflight++;
    iox_conn_timer_linger(c);
    iox_conn_park(c);   /* drain the peer's input (armed or parking: no-op) */
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_drop(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    iox_conn_begin_close(c);
    return HTTP_CONN_EV_OP_DONE;
}

int http_conn_act_maybe_close(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    iox_conn_close_if_idle(c);
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_release(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    iox_conn_release(c);
    return HTTP_CONN_EV_NONE;
}
