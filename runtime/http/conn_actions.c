/* conn_actions.c — the hand-written actions and guards of the http_conn
 * machine (spec/machines/http_conn.toml).
 *
 * The generated dispatch (generated/http_conn_machine.c) decides which action
 * runs in which state, asking the guards below where a state has
 * alternatives. The actions do the work and raise what happened (async,
 * throttle, finish, committed, caught_up, fail; HTTP_CONN_EV_NONE for
 * nothing): none tests a flag or the state to steer the machine — whether
 * reading is stopped for backpressure is the state (throttled, the held
 * variants of the actions), whether the peer has shut its side is a state or
 * the guard peer_shut. Inside one recv's parse (process) the loop still asks,
 * per request, whether the next head may be dispatched — close_due, paused,
 * over_cap, the same predicates the guards use — and raises finish, async or
 * throttle where it stops. Op accounting and buffer returns are done by
 * iox_conn_on_cqe (conn.c) for every completion in every state, so an action
 * never has to remember them. */
#include "conn_buffers.h"
#include "access_log.h"
#include "conn_internal.h"
#include "http_conn_machine.h"
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Largest carry: a head may be up to max_head, plus a few buffers that
 * arrive while a recv is being cancelled for backpressure. */
static size_t carry_max(struct iox_conn *c)
{
    return (size_t)c->hp.lim.max_head + 8u * c->r->seam->buf_size + IOX_CARRY_SLACK;
}

/* Where the carry may go once reading is stopped for backpressure (held:
 * the throttled states, or a parse that has just stopped it). Bytes
 * delivered after the throttle were already taken from the socket and must
 * be kept: until the cancel of the multishot recv lands, the kernel may
 * deliver as many buffers as the provided ring holds (CQEs already posted
 * each pin one), far more than the "few" carry_max allows — failing then
 * reset the connection and lost every answer owed. The ring is shared by the
 * reactor, so this bounds the total taken after throttles, not only this
 * connection's. */
static size_t carry_limit(struct iox_conn *c, int held)
{
    if (!held) return carry_max(c);
    return carry_max(c) + (size_t)c->r->seam->buf_count * c->r->seam->buf_size;
}

static int over_cap(const struct iox_conn *c)
{
    return iox_sock_owed(&c->sk) + c->side_len >= c->hs->cfg.write_cap;
}

int iox_conn_over_cap(const struct iox_conn *c)
{
    return over_cap(c);
}

static struct iox_rslot *slot_of(struct iox_conn *c, uint16_t seq)
{
    return iox_conn_slot(c, seq);
}

static unsigned nopen(const struct iox_conn *c)
{
    return (uint16_t)(c->rq_tail - c->rq_head);
}

/* A new request: the next slot of the ring, and the response target.
 * Inline: it runs once per request, from process() and reject(). */
static inline __attribute__((always_inline)) struct iox_rslot *slot_new(struct iox_conn *c, int head, int keep_alive, int minor, int body_done)
{
    if (c->rq_head == c->rq_tail) c->rq_base = c->rq_tail;   /* empty: start at plane 0 again */
    uint16_t seq = c->rq_tail++;
    struct iox_rslot *s = slot_of(c, seq);
    s->seq = seq;
    s->len = s->flushed = 0;   /* buf is NULL: freed when the slot left the ring */
    s->on_drain = NULL;
    s->user = NULL;
    s->awaiting = s->counted = 0;
    s->body_done = (uint8_t)body_done;
    s->head = (uint8_t)head;
    s->keep_alive = s->ka_req = (uint8_t)keep_alive;
    s->minor = (uint8_t)minor;
    s->framing = s->skip_body = 0;
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
        c->sk.wcommit = c->sk.wlen;
        if (c->hs->alog) iox_alog_done(c, s);
        c->rq_head++;
        c->hs->n_requests++;
        any = 1;
        if (c->rq_head == c->rq_tail) break;
        struct iox_rslot *n = slot_of(c, c->rq_head);
        if (n->len) {
            char *p = iox_out_reserve(c, n->len, (size_t)-1);
            if (!p) return HTTP_CONN_EV_FAIL;
            memcpy(p, n->buf, n->len);
            c->sk.wlen += n->len;
            c->sk.wcommit += n->flushed;
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
static int close_due(const struct iox_conn *c)
{
    return c->close_after && !c->one_more && !c->body_pending;
}

/* Bytes committed and not yet sent, a send in flight, or a request whose
 * answer is not committed yet: the peer is owed something. */
static int owes(const struct iox_conn *c)
{
    return c->sk.wcommit > c->sk.wsent || c->sk.send_inflight || nopen(c);
}

/* A request is fully read and answered (inside the parse): commit what can
 * be, in order. Returns FINISH when the connection must close after it. */
static int complete_request(struct iox_conn *c)
{
    /* The common case inline, what advance() does for it: the request just
     * answered is the only open one, and its answer is complete. */
    if ((uint16_t)(c->rq_head + 1) == c->rq_tail && !c->hs->alog) {
        struct iox_rslot *s = slot_of(c, c->rq_head);
        if (!s->awaiting && s->body_done) {
            c->sk.wcommit = c->sk.wlen;
            c->rq_head++;
            c->hs->n_requests++;
            iox_conn_mark_dirty(c);
            /* No request is open now: nothing for iox_conn_kick_drain. */
            return close_due(c) ? HTTP_CONN_EV_FINISH : HTTP_CONN_EV_NONE;
        }
    }
    if (advance(c)) return HTTP_CONN_EV_FAIL;
    return close_due(c) ? HTTP_CONN_EV_FINISH : HTTP_CONN_EV_NONE;
}

/* Forget the last request's answer (its body turned out malformed, or it
 * never ends): its handler's reference no longer derefs. */
static void drop_last(struct iox_conn *c, struct iox_rslot *s, int err)
{
    if (c->body) iox_body_abort(c, err);   /* its handler is told; its handle goes stale */
    if (s->seq == c->rq_head) c->sk.wlen = c->sk.wcommit;
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
    IOX_DEBUG("conn %u: %s → %d", c->sk.idx, iox_http_result_name(err), status);
    struct iox_rslot *s;
    if (c->body_pending && (!nopen(c) || slot_of(c, (uint16_t)(c->rq_tail - 1))->body_done)) {
        /* A body handed to a streaming handler whose answer may be under
         * way (or complete): it can no longer be changed into an error.
         * The handler is told; what was committed goes out, the rest of its
         * answer is dropped, and the connection closes (finish). */
        if (c->body) iox_body_abort(c, err);
        return HTTP_CONN_EV_FINISH;
    }
    if (c->body_pending && nopen(c)) {
        /* The body of the last request: its slot carries the error. */
        s = slot_of(c, (uint16_t)(c->rq_tail - 1));
        drop_last(c, s, err);
        s->keep_alive = 0;
        s->minor = 1;
        s->body_done = 1;
        iox_conn_set_target(c, s->seq);
    } else {
        s = slot_new(c, iox_http_parser_method(&c->hp) == IOX_HTTP_HEAD, 0, 1, 1);
    }
    if (c->hs->alog) iox_alog_reject(c, s);
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
static int paused(const struct iox_conn *c)
{
    return c->nasync >= c->hs->max_async || nopen(c) > c->hs->rslot_mask || c->on_close;
}

/* iox_conn_abort was called while this chain runs (from the application's
 * on_request, or a drain hook it caused): its fail is queued behind the
 * chain, so parsing must stop now. Outside a chain it would have closed the
 * connection at once. */
static int abort_pending(const struct iox_conn *c)
{
    for (unsigned i = 0; i < c->nqueued; i++)
        if (c->queued[i] == HTTP_CONN_EV_FAIL) return 1;
    return 0;
}

/* Run the parser over base[0, len). *used reports the bytes consumed; the
 * caller keeps the rest (a cut request, or input held back while parsing
 * is paused by the async limit or backpressure). At a head over the write
 * cap it raises throttle, and stops the recv unless reading is already
 * stopped (held). */
/* The input after off is dropped unread (the parse ends here for good):
 * noted for the guard client_done, which must not close at once then. */
static size_t drop_rest(struct iox_conn *c, size_t off, size_t len)
{
    if (off < len) c->input_dropped = 1;
    return len;
}

static int process(struct iox_conn *c, const char *base, size_t len, size_t *used, int held)
{
    /* Read once: the server and its application do not change during a
     * parse, and the byte stores below (uint8_t may alias anything) would
     * make the compiler load them again per request. */
    struct iox_http_server *hs = c->hs;
    const int alog = hs->alog != NULL;
    const struct iox_http_app *app = hs->cfg.app;
    void *app_ctx = hs->cfg.app_ctx;
    size_t off = 0;
    int ev = HTTP_CONN_EV_NONE;
    /* len 0 with a body pending still asks the parser once: a body whose
     * last piece was held ends without more input (iox_req_body_release). */
    while (off < len || (c->body_pending && len == 0 && !ev)) {
        if (c->body_pending) {
            size_t consumed = 0;
            const char *data;
            size_t dlen;
            int r;
            /* Body bytes go to the handler that took them (c->body), else
             * they are discarded. Ask again after each piece, even with no
             * input left: the end of a body that ends exactly at the end of
             * this buffer is only reported by the next call. A handed body
             * pauses while output is over the write cap (throttle) or when
             * its handler holds a piece (hold). */
            do {
                if (c->body && over_cap(c)) {
                    if (!held) iox_conn_stop_recv(c);
                    *used = off;
                    return HTTP_CONN_EV_THROTTLE;
                }
                r = iox_http_parse_body(&c->hp, base + off, len - off, &consumed, &data, &dlen);
                off += consumed;
                if (consumed) c->sk.tprogress = 1;   /* the body is moving: not stuck */
                if (r == IOX_HTTP_BODY_DATA && c->body) {
                    int k = iox_body_piece(c, c->body, data, dlen);
                    if (abort_pending(c)) { *used = len; return HTTP_CONN_EV_FAIL; }
                    if (k == IOX_BODY_OVER) { r = IOX_HTTP_E_BODY_TOO_LARGE; break; }
                    if (k == IOX_BODY_HOLD) {
                        struct iox_body *b = c->body;
                        b->held = malloc(dlen ? dlen : 1);
                        if (!b->held) { *used = len; return HTTP_CONN_EV_FAIL; }
                        memcpy(b->held, data, dlen);
                        b->held_len = dlen;
                        if (!held) iox_conn_stop_recv(c);
                        *used = off;
                        return HTTP_CONN_EV_HOLD;
                    }
                }
            } while (r == IOX_HTTP_BODY_DATA);
            if (r == IOX_HTTP_NEED_MORE) { if (len == 0) break; continue; }
            if (r < 0) { ev = reject(c, r); off = drop_rest(c, off, len); break; }
            /* BODY_DONE */
            c->body_pending = 0;
            slot_of(c, (uint16_t)(c->rq_tail - 1))->body_done = 1;
            if (c->body) {
                iox_body_end(c);
                if (abort_pending(c)) { *used = len; return HTTP_CONN_EV_FAIL; }
            }
            ev = complete_request(c);
            if (ev) { off = drop_rest(c, off, len); break; }
            if (len == 0) break;
            continue;
        }
        /* Between requests: the next head waits while parsing is paused,
         * or while the peer is not reading our answers. */
        if (close_due(c)) {
            ev = HTTP_CONN_EV_FINISH;
            off = drop_rest(c, off, len);
            break;
        }
        if (paused(c)) { ev = HTTP_CONN_EV_ASYNC; break; }
        if (over_cap(c)) {
            if (!held) iox_conn_stop_recv(c);
            ev = HTTP_CONN_EV_THROTTLE;
            break;
        }
        struct iox_http_request req;
        int r = iox_http_parse_head(&c->hp, base + off, len - off, &req);
        if (r == IOX_HTTP_NEED_MORE) break;
        if (r < 0) { ev = reject(c, r); off = drop_rest(c, off, len); break; }
        off += req.head_len;
        c->body_pending = req.body_kind != IOX_HTTP_BODY_NONE;
        struct iox_rslot *s = slot_new(c, req.method_id == IOX_HTTP_HEAD, req.keep_alive,
                                       req.version_minor, !c->body_pending);
        if (alog) iox_alog_request(c, s, &req);
        if (!req.keep_alive) c->close_after = c->client_close = 1;   /* the last request, by the client's word */
        c->one_more = 0;
        if (req.expect_continue && c->body_pending && req.version_minor >= 1) {
            /* The client waits for a 100 before it sends the body (RFC 9110
             * §10.1.1), and gets it only if the handler takes the body
             * (conn_body.c). Until then the body is to be skipped: an answer
             * written without taking it says Connection: close. */
            s->skip_body = 1;
            s->keep_alive = c->req_keep_alive = 0;
        }
        s->awaiting = 1;   /* an answer from inside on_request (async_done) is noted */
        hs->in_request = c;
        int h = app->on_request(c, &req, app_ctx);
        hs->in_request = NULL;
        if (abort_pending(c)) { off = drop_rest(c, off, len); ev = HTTP_CONN_EV_FAIL; break; }
        if (s->skip_body) {
            /* Not asked for (or refused as too large): never read. The
             * parser cannot skip it, so this is the last request. */
            iox_http_parser_init(&c->hp, &hs->cfg.limits);
            c->body_pending = 0;
            s->body_done = 1;
            c->close_after = 1;
            c->input_dropped = 1;   /* the body may still be on its way */
            c->one_more = 0;
        }
        if ((h == IOX_ASYNC || c->body) && s->awaiting) {
            s->counted = 1;
            c->nasync++;
            continue;
        }
        s->awaiting = 0;
        if (!c->body_pending) {
            ev = complete_request(c);
            if (ev) { off = drop_rest(c, off, len); break; }
        }
    }
    *used = off;
    return ev;
}

/* Feed bytes that are not in the carry (a ring buffer's). held: reading is
 * stopped for backpressure (throttled states) — the larger carry limit, and
 * input behind a stop is kept whole; a parse that raises throttle holds it
 * from there on. */
static int feed(struct iox_conn *c, const char *p, size_t n, int held)
{
    int ev = HTTP_CONN_EV_NONE;
    if (c->sk.in_len == 0) {
        size_t used = 0;
        ev = process(c, p, n, &used, held);
        p += used;
        n -= used;
        if (ev == HTTP_CONN_EV_THROTTLE || ev == HTTP_CONN_EV_HOLD) held = 1;
        if (n && ev != HTTP_CONN_EV_FINISH && ev != HTTP_CONN_EV_FAIL) {
            if (iox_carry_append(c, p, n, carry_limit(c, held)) != n) return HTTP_CONN_EV_FAIL;
        }
        return ev;
    }
    /* Slow path: a request is already cut; continue it in the carry. */
    while (n) {
        size_t k = iox_carry_append(c, p, n, carry_limit(c, held));
        if (k == 0) return HTTP_CONN_EV_FAIL;
        p += k;
        n -= k;
        size_t used = 0;
        size_t before = c->sk.in_len;
        ev = process(c, c->sk.in, c->sk.in_len, &used, held);
        iox_carry_consume(c, used);
        if (ev == HTTP_CONN_EV_FINISH || ev == HTTP_CONN_EV_FAIL) return ev;
        if (ev == HTTP_CONN_EV_THROTTLE || ev == HTTP_CONN_EV_HOLD) held = 1;
        if (ev || held) {
            /* Parsing paused: keep the rest of the input behind the carry. */
            if (n && iox_carry_append(c, p, n, carry_limit(c, held)) != n) return HTTP_CONN_EV_FAIL;
            return ev;
        }
        if (used == 0 && before == c->sk.in_cap && n) return HTTP_CONN_EV_FAIL;
    }
    return ev;
}

/* Parse what the carry holds (after an async reply or backpressure eased). */
static int feed_carry(struct iox_conn *c, int held)
{
    if (!c->sk.in_len && !c->body_pending) return HTTP_CONN_EV_NONE;
    size_t used = 0;
    int ev = process(c, c->sk.in_len ? c->sk.in : "", c->sk.in_len, &used, held);
    if (ev == HTTP_CONN_EV_FINISH || ev == HTTP_CONN_EV_FAIL) return ev;
    iox_carry_consume(c, used);
    return ev;
}

/* ---- guards: no side effects (const), trivial reads ---- */

int http_conn_guard_peer_shut(const struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    return c->sk.peer_shut;
}

int http_conn_guard_answers_due(const struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    return c->nasync != 0;
}

int http_conn_guard_owes(const struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    return owes(c);
}

int http_conn_guard_over_cap(const struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    return over_cap(c);
}

int http_conn_guard_close_due(const struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    return close_due(c);
}

int http_conn_guard_between_requests(const struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    return !iox_http_parser_mid_request(&c->hp) && !c->sk.in_len && !c->body_pending;
}

/* Why closing at once is safe here: a client that sent Connection: close
 * sends nothing more (RFC 9112 §9.6, "MUST NOT send further requests"), and
 * everything it did send was read, so the close finds an empty receive
 * queue and sends a FIN, not a RST that could destroy the answer. nginx
 * closes the same way (lingering_close on: linger only when input may
 * remain). It saves the wait for the client's FIN and the linger timer; a
 * close the server decides (error, shutdown, keep-alive limit) lingers. */
int http_conn_guard_client_done(const struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    return c->client_close && !c->input_dropped && !c->body_pending && !c->sk.in_len &&
           !iox_http_parser_mid_request(&c->hp);
}

int http_conn_guard_body_pending(const struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    return c->body_pending;
}

int http_conn_guard_body_abandoned(const struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    if (!c->body) return 0;
    uint16_t seq = c->body->seq;
    if ((uint16_t)(seq - c->rq_head) >= (uint16_t)(c->rq_tail - c->rq_head)) return 1;
    return !iox_conn_slot(c, seq)->awaiting;
}

/* ---- input ---- */

int http_conn_act_consume(struct iox_conn *c, const struct iox_event *ev)
{
    return feed(c, ev->data, ev->len, 0);
}

int http_conn_act_consume_held(struct iox_conn *c, const struct iox_event *ev)
{
    return feed(c, ev->data, ev->len, 1);
}

/* Waiting: parsing is paused at a head (no body is arriving then), so the
 * bytes are only kept. */
int http_conn_act_stash(struct iox_conn *c, const struct iox_event *ev)
{
    if (iox_carry_append(c, ev->data, ev->len, carry_limit(c, 0)) != ev->len) {
        /* The client keeps sending while we cannot answer: stop reading. */
        iox_conn_stop_recv(c);
        return HTTP_CONN_EV_FAIL;
    }
    if (c->sk.in_len > carry_max(c) / 2) {
        iox_conn_stop_recv(c);
        return HTTP_CONN_EV_THROTTLE;
    }
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_stash_held(struct iox_conn *c, const struct iox_event *ev)
{
    if (iox_carry_append(c, ev->data, ev->len, carry_limit(c, 1)) != ev->len) return HTTP_CONN_EV_FAIL;
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_discard(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    c->input_dropped = 1;
    return HTTP_CONN_EV_NONE;
}

/* The recv is off (ended, or a backpressure cancel landed after reading
 * resumed): arm it again at the end of the turn (iox_conn_park ignores a
 * recv that is armed, being cancelled, or over for good after the peer's
 * EOF). Only reached in states that read. */
int http_conn_act_rearm(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    iox_conn_park(c);
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_park(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    c->hs->n_enobufs++;
    iox_conn_park(c);
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_count_nobufs(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    c->hs->n_enobufs++;
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_send_rest(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    iox_conn_mark_dirty(c);   /* the rest goes out with this turn's batch */
    return HTTP_CONN_EV_NONE;
}

/* ---- answers ---- */

/* An async handler's response is written (iox_conn_async_done marked its
 * request). Commit every answer now complete at the front, in request
 * order; a request whose body is still arriving (an early reply) is
 * committed when the body ends. What follows is the state's: a due close
 * finishes, else parsing resumes (in waiting, the limit no longer holds:
 * what was stashed is parsed, and may pause again). Before, reading ignored
 * an early reply and the connection hung in waiting until its idle timeout
 * (found by tests/fuzz/fuzz_http_conn). */
int http_conn_act_commit(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    if (advance(c)) return HTTP_CONN_EV_FAIL;
    return HTTP_CONN_EV_COMMITTED;
}

/* Parse what the carry holds and read on. A throttle taken while waiting
 * (a large stash) or while output was over the cap ended on the way here
 * (throttled → reading): the stash is parsed now, and parsing throttles
 * again if output piles up. Ending it before the peer's EOF is looked at
 * (caught_up, in half_closed) matters: with no send in flight nothing else
 * would ever lift it (the connection would sit until its idle timeout). */
int http_conn_act_resume(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    int e = feed_carry(c, 0);
    if (e) return e;
    iox_conn_park(c);
    return HTTP_CONN_EV_CAUGHT_UP;
}

/* Output is still over the cap: the next head waits (parsing raises
 * throttle again, which throttled ignores); reading stays stopped. */
int http_conn_act_resume_held(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    return feed_carry(c, 1);
}

/* A send drained output under the cap: parse what was held back and read
 * again (unless the parse stopped reading again). */
int http_conn_act_unthrottle(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    int e = feed_carry(c, 0);
    if (e != HTTP_CONN_EV_THROTTLE) iox_conn_park(c);
    return e ? e : HTTP_CONN_EV_CAUGHT_UP;
}

int http_conn_act_resume_reading(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    iox_conn_park(c);
    return HTTP_CONN_EV_NONE;
}

/* ---- a body handed to its handler ---- */

/* The handler finished its answer before its body ended: it gets no more
 * pieces; the rest is drained (and, like any drained body, bounded by the
 * parser's max_body). */
int http_conn_act_drain_body(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    iox_body_detach(c);
    if (advance(c)) return HTTP_CONN_EV_FAIL;
    return HTTP_CONN_EV_COMMITTED;
}

int http_conn_act_drain_held(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    iox_body_detach(c);   /* the held piece goes with it */
    if (advance(c)) return HTTP_CONN_EV_FAIL;
    return HTTP_CONN_EV_RELEASE;
}

/* The handler released the piece it held: hand it again; if it is taken,
 * parse what was kept behind it (the next pieces, or the end of the body)
 * and read again, unless that paused once more. */
int http_conn_act_unhold(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    struct iox_body *b = c->body;
    if (b && b->held) {
        char *piece = b->held;
        size_t n = b->held_len;
        b->held = NULL;
        int k = iox_body_piece(c, b, piece, n);
        if (abort_pending(c)) { free(piece); return HTTP_CONN_EV_FAIL; }
        if (k == IOX_BODY_HOLD) {
            b->held = piece;   /* reading is still stopped */
            return HTTP_CONN_EV_HOLD;
        }
        free(piece);
    }
    int e = feed_carry(c, 1);
    if (e == HTTP_CONN_EV_THROTTLE || e == HTTP_CONN_EV_HOLD || e == HTTP_CONN_EV_FINISH ||
        e == HTTP_CONN_EV_FAIL)
        return e;
    iox_conn_park(c);
    return e ? e : HTTP_CONN_EV_CAUGHT_UP;
}

/* ---- closing ---- */

/* Shutdown mid-request: close after its answer (a body being read belongs
 * to the last request; a head being read is still dispatched). Between
 * requests the spec finishes at once: requests the peer sent meanwhile
 * must not turn our close into a RST that destroys answers still in
 * flight, so the connection half-closes and lingers. */
int http_conn_act_close_after_body(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    c->close_after = 1;
    c->one_more = 0;
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_close_after_head(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    c->close_after = 1;
    c->one_more = 1;
    return HTTP_CONN_EV_NONE;
}

int http_conn_act_note_shutdown(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    c->close_after = 1;
    return HTTP_CONN_EV_NONE;
}

static int finish_work(struct iox_conn *c, int held)
{
    c->close_after = 1;
    /* Input after the last answer is dropped, and so is any carried part. */
    if (c->sk.in_len || c->body_pending || iox_http_parser_mid_request(&c->hp)) c->input_dropped = 1;
    c->sk.in_len = 0;
    iox_carry_release(c);
    /* A request whose body is still arriving never completes now: its
     * answer is dropped (earlier ones are still owed and wait). */
    if (c->body_pending && nopen(c)) {
        struct iox_rslot *s = slot_of(c, (uint16_t)(c->rq_tail - 1));
        drop_last(c, s, -ECONNRESET);
        s->body_done = 1;
        if (advance(c)) return HTTP_CONN_EV_FAIL;
    }
    if (c->body) iox_body_abort(c, -ECONNRESET);   /* its answer was complete already */
    c->body_pending = 0;
    /* Reading stopped for backpressure resumes: the input is drained (and
     * dropped) from now on, and the peer's EOF is what lingering waits for. */
    if (held) iox_conn_park(c);
    if (owes(c)) iox_conn_mark_dirty(c);
    return HTTP_CONN_EV_COMMITTED;
}

int http_conn_act_finish(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    return finish_work(c, 0);
}

int http_conn_act_finish_held(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    return finish_work(c, 1);
}

/* Everything is out (the spec asked owes and peer_shut). Linger while
 * stopping too: the grace deadline bounds it, and closing with unread input
 * would reset the connection and discard answers still in the socket buffer
 * (RFC 9112 §9.6). */
int http_conn_act_linger(struct iox_conn *c, const struct iox_event *ev)
{
    (void)ev;
    if (iox_sock_shutdown_wr(&c->hs->sh, &c->sk) < 0) return HTTP_CONN_EV_FAIL;
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
