/* conn_internal.h — helpers shared by conn.c and conn_actions.c. */
#ifndef IOX_CONN_INTERNAL_H
#define IOX_CONN_INTERNAL_H
#include <ioxide/http_conn.h>
#include <ioxide/http_server.h>
#include <stddef.h>

/* Extra carry room beyond head + buffers (bytes). */
#define IOX_CARRY_SLACK 4096u

/* Deliver an event to the connection's machine. Re-entrant calls (an action
 * or handler causing another event on the same connection) are queued and
 * run after the current chain. */
/* Response slots: position 0 of every connection's ring sits in one plane
 * (rslots[idx]), the other positions of each connection together after it
 * (rslots[max_conns + idx * mask + pos - 1]). A connection that never
 * pipelines touches only its 56 bytes in the plane, not its whole ring
 * (32 × 48 B, before the per-request user pointer made it 56: most of the
 * 2.6 KiB per idle connection the soak saw); one
 * that does keeps its deeper slots in one contiguous block (a fully
 * position-major layout put each of a 16-deep pipeline's slots on its own
 * page). Positions count from rq_base, the seq at which the ring last
 * emptied, so a keep-alive connection keeps using position 0. */
static inline struct iox_rslot *iox_conn_slot(const struct iox_conn *c, uint16_t seq)
{
    uint32_t pos = (uint16_t)(seq - c->rq_base) & c->hs->rslot_mask;
    struct iox_rslot *s = c->hs->rslots;
    if (pos == 0) return &s[c->sk.idx];
    return &s[c->hs->max_conns + (size_t)c->sk.idx * c->hs->rslot_mask + pos - 1];
}

void iox_conn_fire(struct iox_conn *c, int event, const struct iox_event *ev);

/* A body handed to its handler (conn_body.c). Whole reads gather into buf
 * through an internal piece callback. held: the copy of a piece the handler
 * did not take (IOX_BODY_HOLD), handed again on release. */
struct iox_body {
    iox_body_fn fn;
    void *arg;
    uint16_t seq;               /* its request */
    iox_body_whole_fn whole;    /* iox_req_body_read's callback, else NULL */
    void *whole_arg;
    char *buf;
    size_t len, cap, limit;
    char *held;
    size_t held_len;
};

/* Result of iox_body_piece beyond IOX_BODY_OK / IOX_BODY_HOLD: a whole read
 * passed its limit. */
#define IOX_BODY_OVER 2
int iox_body_piece(struct iox_conn *c, struct iox_body *b, const char *data, size_t len);
/* The body is complete: detach it, then hand over its END. */
void iox_body_end(struct iox_conn *c);
/* The body can never complete (status < 0): detach it, tell the handler. */
void iox_body_abort(struct iox_conn *c, int status);
/* Detach and free without a call (the handler finished its answer early:
 * the rest of the body is drained). */
void iox_body_detach(struct iox_conn *c);
/* HTTP/1.1 100 Continue into the target request's output, sendable in order. */
void iox_resp_interim_continue(struct iox_conn *c);
int iox_conn_over_cap(const struct iox_conn *c);

/* The stream core's turn-end lists and backpressure, for a connection. */
static inline void iox_conn_mark_dirty(struct iox_conn *c)   /* send committed output at turn end */
{
    iox_sock_mark_dirty(&c->hs->sh, &c->sk);
}
static inline void iox_conn_park(struct iox_conn *c)         /* (re-)arm recv at turn end (not after the peer's EOF) */
{
    iox_sock_park(&c->hs->sh, &c->sk);
}
static inline void iox_conn_stop_recv(struct iox_conn *c)    /* backpressure: cancel the recv, drop a pending re-arm */
{
    iox_sock_stop_recv(&c->hs->sh, &c->sk);
}
/* The connection a core socket of this server belongs to. */
static inline struct iox_conn *iox_conn_of_sock(struct iox_sock *s)
{
    return (struct iox_conn *)(void *)((char *)s - offsetof(struct iox_conn, sk));
}
void iox_conn_timer_update(struct iox_conn *c);   /* set the client deadline this state calls for (conn.c) */
void iox_conn_timer_linger(struct iox_conn *c);   /* move to the linger list */
void iox_conn_begin_close(struct iox_conn *c);    /* cancel all ops on the socket */
void iox_conn_close_if_idle(struct iox_conn *c);  /* issue the close when nothing is in flight */
void iox_conn_release(struct iox_conn *c);        /* free the slot (after the close CQE) */
void iox_conn_set_target(struct iox_conn *c, uint16_t seq); /* iox_resp_* write for request seq */
void iox_conn_kick_drain(struct iox_conn *c);    /* run the oldest request's drain hook if all is sent */
void iox_http_slot_freed(struct iox_http_server *hs);  /* a slot came free: accept may resume */
int iox_http_stats_enable(struct iox_http_server *hs);  /* http_stats.c: serve cfg.stats_path */

#endif
