/* client_conn.c — the guards and actions of the stream_client machine
 * (spec/machines/stream_client.toml): one pooled outbound connection. */
#include "client_internal.h"
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- guards ---- */

int stream_client_guard_ops_in_flight(const struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;
    return c->dl.ops > 0;
}

int stream_client_guard_no_socket(const struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;
    return c->dl.fd < 0;
}

int stream_client_guard_stopping(const struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;
    return c->pool->stopping;
}

/* ---- helpers ---- */

static void fail_conn(struct iox_client_conn *c, int status, const char *why)
{
    if (!c->fail_status) c->fail_status = status;
    iox_client_set_error(c->pool, status, why);
}

static void arm_recv(struct iox_client_conn *c)
{
    if (iox_dial_recv_multishot(&c->dl) < 0) {
        fail_conn(c, -ECONNRESET, "cannot arm the recv (no SQE)");
        iox_client_fire(c, STREAM_CLIENT_EV_FAIL, NULL);
    }
}

/* Frame replies out of p[0, n): each complete one goes to `one` (the
 * handshake check or the FIFO's head). Returns the bytes consumed, or -1
 * on a protocol error (recorded). */
static long frame(struct iox_client_conn *c, const char *p, size_t n, int (*one)(struct iox_client_conn *, const char *, size_t))
{
    struct iox_client_pool *pool = c->pool;
    size_t done = 0;
    while (done < n && c->state != STREAM_CLIENT_S_CLOSING && !c->fail_status) {
        long k = pool->cfg.proto->reply_len(p + done, n - done, pool->cfg.proto_ctx);
        if (k == 0) break;
        if (k < 0 || (size_t)k > n - done) {
            fail_conn(c, -EPROTO, "the protocol could not frame a reply");
            return -1;
        }
        if (one(c, p + done, (size_t)k) < 0) return -1;
        done += (size_t)k;
    }
    return (long)done;
}

/* Frame p[0, n) where it lies; keep a cut reply in the carry. */
static int in_place(struct iox_client_conn *c, const char *p, size_t n,
                    int (*one)(struct iox_client_conn *, const char *, size_t))
{
    long k = frame(c, p, n, one);
    if (k < 0) return -1;
    if ((size_t)k < n && iox_sbuf_append(&c->carry, p + k, n - (size_t)k) < 0) {
        fail_conn(c, -ECONNRESET, "out of memory for a reply");
        return -1;
    }
    return 0;
}

/* Bytes from a recv. As for a server stream (stream_actions.c, deliver):
 * a cut reply is completed from the new bytes copied in growing pieces,
 * and once what was carried is consumed the rest is framed where the ring
 * put it. 0, or -1 after a failure (recorded). */
static int input(struct iox_client_conn *c, const struct iox_client_event *ev,
                 int (*one)(struct iox_client_conn *, const char *, size_t))
{
    c->pool->st.bytes_in += ev->len;
    if (!c->carry.len) return in_place(c, ev->data, ev->len, one);
    size_t cut = c->carry.len, off = 0, step = 256;
    for (;;) {
        size_t take = ev->len - off < step ? ev->len - off : step;
        if (iox_sbuf_append(&c->carry, ev->data + off, take) < 0) {
            fail_conn(c, -ECONNRESET, "out of memory for a reply");
            return -1;
        }
        off += take;
        long k = frame(c, c->carry.p, c->carry.len, one);
        if (k < 0) return -1;
        if ((size_t)k >= cut) {
            size_t back = c->carry.len - (size_t)k;
            c->carry.len = 0;
            return in_place(c, ev->data + off - back, ev->len - off + back, one);
        }
        iox_sbuf_consume(&c->carry, (size_t)k);
        cut -= (size_t)k;
        if (off == ev->len) return 0;
        step *= 2;
    }
}

/* ---- connecting ---- */

int stream_client_act_open_socket(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;
    struct iox_client_pool *p = c->pool;
    c->fail_status = 0;
    if (iox_dial_open(&c->dl, p->sa.ss_family, p->r->now_ms + p->cfg.connect_timeout_ms) < 0) {
        fail_conn(c, -ECONNRESET, "cannot queue IORING_OP_SOCKET (no SQE)");
        return STREAM_CLIENT_EV_FAIL;
    }
    return STREAM_CLIENT_EV_NONE;
}

int stream_client_act_start_connect(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;   /* the descriptor is in c->dl.fd (iox_dial_complete) */
    struct iox_client_pool *p = c->pool;
    if (iox_dial_connect(&c->dl, (const struct sockaddr *)&p->sa, p->salen) < 0) {
        fail_conn(c, -ECONNRESET, "cannot queue IORING_OP_CONNECT (no SQE)");
        return STREAM_CLIENT_EV_FAIL;
    }
    return STREAM_CLIENT_EV_NONE;
}

int stream_client_act_start_handshake(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;
    struct iox_client_pool *p = c->pool;
    arm_recv(c);
    c->hs_left = c->hs_seen = 0;
    if (!p->cfg.proto->handshake) return STREAM_CLIENT_EV_ESTABLISHED;
    if (iox_sbuf_reserve(&c->out, 4096) < 0) {
        fail_conn(c, -ECONNRESET, "out of memory for the handshake");
        return STREAM_CLIENT_EV_FAIL;
    }
    unsigned nrep = 0;
    long n = p->cfg.proto->handshake(c->out.p + c->out.len, c->out.cap - c->out.len, &nrep, p->cfg.proto_ctx);
    if (n < 0 || (size_t)n > c->out.cap - c->out.len) {
        fail_conn(c, -ECONNRESET, "the handshake hook failed");
        return STREAM_CLIENT_EV_FAIL;
    }
    c->out.len += (uint32_t)n;
    c->hs_left = nrep;
    if (n) iox_client_mark_dirty(c);
    return nrep ? STREAM_CLIENT_EV_NONE : STREAM_CLIENT_EV_ESTABLISHED;
}

static int hs_one(struct iox_client_conn *c, const char *p, size_t n)
{
    struct iox_client_pool *pool = c->pool;
    if (!c->hs_left) {
        fail_conn(c, -EPROTO, "a reply before any request (after the handshake)");
        return -1;
    }
    if (pool->cfg.proto->handshake_reply &&
        pool->cfg.proto->handshake_reply(p, n, c->hs_seen, pool->cfg.proto_ctx) < 0) {
        char why[120];
        snprintf(why, sizeof why, "handshake reply %u refused: %.*s", c->hs_seen, (int)(n < 60 ? n : 60), p);
        for (char *q = why; *q; q++) if (*q == '\r' || *q == '\n') *q = ' ';
        fail_conn(c, -ECONNREFUSED, why);
        return -1;
    }
    c->hs_seen++;
    c->hs_left--;
    return 0;
}

int stream_client_act_handshake_input(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    /* Replies are framed one at a time here: bytes after the last
     * handshake reply would be a reply nobody asked for (checked by
     * reply_input once up), so stop framing once the handshake is done. */
    if (input(c, ev, hs_one) < 0) return STREAM_CLIENT_EV_FAIL;
    return c->hs_left ? STREAM_CLIENT_EV_NONE : STREAM_CLIENT_EV_ESTABLISHED;
}

int stream_client_act_session_up(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;
    struct iox_client_pool *p = c->pool;
    c->dl.deadline_ms = 0;
    c->dl.backoff_ms = 0;
    c->counted_up = 1;
    p->nup++;
    p->st.connects++;
    IOX_DEBUG("client %s: connection %u up", p->peer, c->idx);
    if (c->carry.len) {
        fail_conn(c, -EPROTO, "bytes after the handshake before any request");
        return STREAM_CLIENT_EV_FAIL;
    }
    iox_client_pump(p);
    return STREAM_CLIENT_EV_NONE;
}

/* ---- up ---- */

static int reply_one(struct iox_client_conn *c, const char *p, size_t n)
{
    struct iox_client_pool *pool = c->pool;
    if (c->head == c->tail) {
        fail_conn(c, -EPROTO, "a reply nobody asked for");
        return -1;
    }
    struct iox_client_req q = c->fifo[c->head % pool->cfg.max_inflight];
    c->head++;
    pool->st.replies++;
    q.cb(q.arg, 0, p, n);   /* may issue requests: onto this FIFO's tail too */
    return 0;
}

int stream_client_act_reply_input(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    if (input(c, ev, reply_one) < 0) return STREAM_CLIENT_EV_FAIL;
    iox_client_pump(c->pool);   /* room freed: waiting requests go on */
    return STREAM_CLIENT_EV_NONE;
}

int stream_client_act_rearm(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;
    arm_recv(c);
    return STREAM_CLIENT_EV_NONE;
}

int stream_client_act_send_out(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;
    c->dirty = 0;
    if (c->dl.send_busy || !c->out.len) return STREAM_CLIENT_EV_NONE;
    struct iox_sbuf t = c->sending;   /* swap: the kernel reads `sending` until the send completes */
    c->sending = c->out;
    c->out = t;
    c->out.len = 0;
    if (iox_dial_send(&c->dl, c->sending.p, c->sending.len) < 0) {
        fail_conn(c, -ECONNRESET, "cannot queue a send (no SQE)");
        return STREAM_CLIENT_EV_FAIL;
    }
    return STREAM_CLIENT_EV_NONE;
}

int stream_client_act_on_sent(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    c->pool->st.bytes_out += (uint32_t)ev->res;
    int rc = iox_dial_sent(&c->dl, ev->res);
    if (rc < 0) {
        fail_conn(c, -ECONNRESET, "cannot queue a send (no SQE)");
        return STREAM_CLIENT_EV_FAIL;
    }
    if (rc > 0) return STREAM_CLIENT_EV_NONE;   /* the rest of `sending` is on its way */
    c->sending.len = 0;
    if (c->out.len) iox_client_mark_dirty(c);   /* queued meanwhile: next turn's send */
    return STREAM_CLIENT_EV_NONE;
}

/* ---- ending ---- */

int stream_client_act_drop(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;
    struct iox_client_pool *p = c->pool;
    int status = p->stopping ? -ECANCELED : c->fail_status ? c->fail_status : -ECONNRESET;
    if (c->counted_up) {
        c->counted_up = 0;
        p->nup--;
        p->st.losses++;
        if (!p->nup) p->down_since_ms = p->r->now_ms;
    } else {
        p->st.connect_failures++;
    }
    c->dl.deadline_ms = 0;
    /* Every request this connection carried fails, once, oldest first. */
    while (c->head != c->tail) {
        struct iox_client_req q = c->fifo[c->head % p->cfg.max_inflight];
        c->head++;
        p->st.failures++;
        q.cb(q.arg, status, NULL, 0);
    }
    c->out.len = 0;
    c->carry.len = 0;
    iox_dial_cancel(&c->dl);   /* no SQE: the socket is shut down, its ops end on their own */
    /* The next attempt: backoff_min doubling to backoff_max. */
    iox_dial_backoff(&c->dl, p->cfg.backoff_min_ms, p->cfg.backoff_max_ms);
    return STREAM_CLIENT_EV_OP_DONE;
}

int stream_client_act_close_socket(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;
    return iox_dial_close(&c->dl) ? STREAM_CLIENT_EV_CLOSED : STREAM_CLIENT_EV_NONE;
}

int stream_client_act_release(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;
    struct iox_client_pool *p = c->pool;
    iox_dial_reset(&c->dl);
    c->sending.len = 0;
    c->head = c->tail = 0;
    c->dl.retry_at_ms = p->r->now_ms + c->dl.backoff_ms;
    return STREAM_CLIENT_EV_RELEASED;
}

int stream_client_act_finish(struct iox_client_conn *c, const struct iox_client_event *ev)
{
    (void)ev;
    c->dl.deadline_ms = 0;
    return STREAM_CLIENT_EV_NONE;
}
