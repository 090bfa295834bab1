/* ioxide/stream_dial.h — the outbound socket of the client kit: the
 * protocol-neutral mechanics every client connection on the ring shares.
 *
 * A `struct iox_dial` is embedded in a client connection (the client kit's
 * pooled connection, runtime/stream/client_conn.c; PostgreSQL's session,
 * runtime/pg/pg_conn.c, and its CancelRequest connection). It holds what
 * the socket needs and nothing of the protocol:
 *  - the descriptor, and the slot's user_data (owner kind, slot index,
 *    generation: a CQE of an older generation is stale and dropped by the
 *    owner's on_cqe);
 *  - op accounting: `ops` on this socket in the ring, and the owner's count
 *    of all its ops (the pool's, waited for at close) kept in step;
 *  - the open: IORING_OP_SOCKET for the peer's family (IPv4, IPv6, Unix)
 *    then IORING_OP_CONNECT, with a connect deadline the owner's tick checks;
 *  - a recv armed at most once (a plain recv into the owner's buffer, or a
 *    multishot recv on the reactor's provided buffers);
 *  - one send in flight at a time, continued on a short send until every
 *    byte of the buffer has left (the buffer is the caller's and must not
 *    move until then: double-buffer it);
 *  - cancel of every op on the socket, close exactly once after the last op,
 *    and the reconnect backoff (doubling from a minimum to a maximum).
 *
 * What comes next after a completion is the owner's machine's business:
 * the dial never decides where a connection goes, it only does the op and
 * counts it. Why a header of its own and not stream_client.h: pg uses the
 * dial without the kit's pool (its replies are not one per request, so the
 * kit's FIFO reply_len matching does not fit), and a user's own client
 * machine can embed it the same way.
 *
 * The functions on the path of every request (recv, send, the
 * completion's books) are inline, as the stream core's are: out of line
 * each call costs a few dozen instructions per completion.
 *
 * Errors: every submitting function returns 0 or -errno (-EBUSY: no SQE
 * after a flush, as iox_seam_*), never sets errno, and counts the op only
 * when it was queued. All functions run on the reactor thread that owns the
 * ring. Hot path: no malloc, no syscall (the ring's SQEs only; the no-SQE
 * fallbacks of cancel and close call shutdown(2) / close(2)).
 */
#ifndef IOX_STREAM_DIAL_H
#define IOX_STREAM_DIAL_H
#include <ioxide/reactor.h>
#include <ioxide/seam.h>
#include <ioxide/ud.h>
#include <stdint.h>
#include <sys/socket.h>

struct iox_dial {
    struct iox_reactor *r;
    unsigned *owner_ops;     /* the owner's count of its ops in the ring (may be NULL) */
    uint32_t idx;            /* slot index in user_data */
    uint16_t gen;            /* the slot's generation in user_data */
    uint8_t owner;           /* the owner's kind id (iox_reactor_register_kind) */
    uint8_t recv_armed;      /* a recv (plain or multishot) is in the ring */
    uint8_t send_busy;       /* a send is in the ring */
    int fd;                  /* -1: no socket */
    uint16_t ops;            /* ops on this socket in the ring (the close waits for 0) */
    /* The send in flight: [soff, slen) of sbuf still to go. */
    const char *sbuf;
    uint32_t slen, soff;
    uint64_t deadline_ms;    /* the connect deadline (0: none), on the reactor's clock */
    uint64_t retry_at_ms;    /* when down: the next open */
    uint32_t backoff_ms;     /* the last reconnect delay (0: none yet) */
};

/* Set up a dial in a slot: no socket, nothing in flight, generation 0.
 * owner_ops, if not NULL, is incremented with every op queued (the owner
 * decrements it itself in on_cqe, stale CQEs included). Call once, when the
 * slot is created. */
void iox_dial_init(struct iox_dial *d, struct iox_reactor *r, unsigned owner, uint32_t idx, unsigned *owner_ops);

/* The user_data of op `op` on this slot's current generation. */
static inline uint64_t iox_dial_ud(const struct iox_dial *d, unsigned op)
{
    return iox_ud(op, d->owner, d->gen, d->idx);
}

/* Between two connections (every op has completed, the socket is closed or
 * was never made): bump the generation, forget the recv, the send and the
 * deadline. The backoff and retry_at_ms are kept. */
void iox_dial_reset(struct iox_dial *d);

/* Start an open: set the connect deadline (0: none) and queue
 * IORING_OP_SOCKET for `family` (stream, close-on-exec). Its completion
 * gives the descriptor (iox_dial_complete stores it). 0 or -errno. */
int iox_dial_open(struct iox_dial *d, int family, uint64_t deadline_ms);

/* Queue IORING_OP_CONNECT of the socket to sa (kept by the caller until
 * the completion). 0 or -errno. */
int iox_dial_connect(struct iox_dial *d, const struct sockaddr *sa, socklen_t salen);

/* Arm a plain recv into buf[0, len) (the caller's, alive until the
 * completion), unless one is armed already (then 0 and nothing queued).
 * 0 or -errno. */
static inline int iox_dial_recv(struct iox_dial *d, void *buf, uint32_t len);

/* The same with a multishot recv on the reactor's provided buffers. */
int iox_dial_recv_multishot(struct iox_dial *d);

/* Send buf[0, len) (len > 0; the caller's, unmoved until the send is over:
 * see iox_dial_sent). One send at a time: the caller checks send_busy.
 * 0 or -errno. */
static inline int iox_dial_send(struct iox_dial *d, const char *buf, uint32_t len);

/* A send completed with res > 0 bytes: the rest of the buffer goes out now
 * (1, the buffer still in use), or the buffer is all sent (0, the caller
 * may reuse it), or the rest could not be queued (-errno). */
static inline int iox_dial_sent(struct iox_dial *d, int res);

/* Account a completion of this slot's current generation (the owner has
 * checked it): one op fewer unless `more` (a multishot recv goes on); the
 * recv is disarmed when it ends; a send is over (send_busy cleared, set
 * again by iox_dial_sent for a continuation); a socket's descriptor is
 * kept. The owner's count is the owner's to decrement. */
static inline void iox_dial_complete(struct iox_dial *d, unsigned op, int res, int more);

/* Cancel every op on the socket (IORING_OP_ASYNC_CANCEL by fd) when some
 * are in flight: 0 (queued, or nothing to cancel), or -errno when no SQE
 * could be had — then on a real ring the socket is shut down so the ops
 * end by themselves. */
int iox_dial_cancel(struct iox_dial *d);

/* Close the socket, exactly once, when no op is in flight (the caller's
 * machine guarantees it): fd becomes -1. 0: IORING_OP_CLOSE is queued, its
 * completion comes; 1: closed at once (no SQE: close(2) on a real ring; a
 * simulated ring's descriptors are not ours) — no completion will come. */
int iox_dial_close(struct iox_dial *d);

/* The connect deadline has passed (a deadline is set and now >= it). */
static inline int iox_dial_overdue(const struct iox_dial *d, uint64_t now_ms)
{
    return d->deadline_ms && now_ms >= d->deadline_ms;
}

/* The next reconnect delay: min_ms first, then doubled each time, capped at
 * max_ms (backoff_ms keeps it; a successful session sets it back to 0).
 * Returns it. */
uint32_t iox_dial_backoff(struct iox_dial *d, uint32_t min_ms, uint32_t max_ms);

/* The owner's on_cqe found slot d (NULL: no such slot) in a completion's
 * user_data: 1 when it is of the slot's current generation (then accounted
 * as iox_dial_complete, `more` read from the CQE's flags), 0 when stale
 * (then handled as iox_dial_stale: drop it). */
static inline int iox_dial_take(struct iox_dial *d, struct iox_reactor *r, const struct iox_cqe *cqe);

/* At the owner's free, after its bounded wait (iox_dial_drain): close a
 * descriptor still held, directly (on a real ring; a simulated ring's are
 * not ours), and forget it. No completion is waited for. */
void iox_dial_forget(struct iox_dial *d);

/* A completion of an older generation of a slot (or of no slot): count it
 * in the reactor's stale CQEs and close the descriptor an IORING_OP_SOCKET
 * gave (on a real ring). The owner returns a provided buffer itself. */
void iox_dial_stale(struct iox_reactor *r, unsigned op, int res);

/* The owner is being freed after the loop: wait, bounded (500 ms), for
 * every op it counts in *ops to leave the ring, so no recv lands in a freed
 * buffer. The owner's on_cqe must decrement *ops for its completions and
 * set *guard_fired when the guard timeout (user_data op IOX_OP_TIMEOUT,
 * owner, slot guard_idx) completes; that one is not counted. Only on a real
 * ring (a simulated ring completes nothing by itself): returns at once
 * there. Returns the ops still in the ring (the caller logs them). */
unsigned iox_dial_drain(struct iox_reactor *r, unsigned owner, uint32_t guard_idx, const unsigned *ops,
                        uint8_t *guard_fired);

/* ---- inline definitions ---- */

/* A queued op (rc 0) counts on the slot and its owner; a failed queue
 * changes nothing. Returns rc. */
static inline int iox__dial_counted(struct iox_dial *d, int rc)
{
    if (rc == 0) {
        d->ops++;
        if (d->owner_ops) (*d->owner_ops)++;
    }
    return rc;
}

static inline int iox_dial_recv(struct iox_dial *d, void *buf, uint32_t len)
{
    if (d->recv_armed) return 0;
    int rc = iox__dial_counted(d, iox_seam_recv(d->r->seam, d->fd, buf, len, iox_dial_ud(d, IOX_OP_RECV)));
    if (rc == 0) d->recv_armed = 1;
    return rc;
}

static inline int iox__dial_send_rest(struct iox_dial *d)
{
    int rc = iox__dial_counted(d, iox_seam_send(d->r->seam, d->fd, d->sbuf + d->soff, d->slen - d->soff,
                                                iox_dial_ud(d, IOX_OP_SEND)));
    if (rc == 0) d->send_busy = 1;
    return rc;
}

static inline int iox_dial_send(struct iox_dial *d, const char *buf, uint32_t len)
{
    d->sbuf = buf;
    d->slen = len;
    d->soff = 0;
    return iox__dial_send_rest(d);
}

static inline int iox_dial_sent(struct iox_dial *d, int res)
{
    d->soff += (uint32_t)res;
    if (d->soff < d->slen) {
        int rc = iox__dial_send_rest(d);
        return rc < 0 ? rc : 1;
    }
    d->sbuf = NULL;
    d->slen = d->soff = 0;
    return 0;
}

static inline void iox_dial_complete(struct iox_dial *d, unsigned op, int res, int more)
{
    if (more) return;
    d->ops--;
    switch (op) {
    case IOX_OP_RECV: d->recv_armed = 0; break;
    case IOX_OP_SEND: d->send_busy = 0; break;
    case IOX_OP_SOCKET: if (res >= 0) d->fd = res; break;   /* closed like any other, even when abandoned */
    default: break;
    }
}

static inline int iox_dial_take(struct iox_dial *d, struct iox_reactor *r, const struct iox_cqe *cqe)
{
    unsigned op = iox_ud_op(cqe->ud);
    if (__builtin_expect(!d || d->gen != iox_ud_gen(cqe->ud), 0)) {
        iox_dial_stale(r, op, cqe->res);
        return 0;
    }
    iox_dial_complete(d, op, cqe->res, op == IOX_OP_RECV && (cqe->flags & IOX_CQE_F_MORE));
    return 1;
}

#endif
