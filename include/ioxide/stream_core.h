/* ioxide/stream_core.h — the socket mechanics every stream connection
 * shares (runtime/stream/stream_core.c): the protocol-neutral stream
 * (struct iox_stream, stream.h) and HTTP's connection (struct iox_conn,
 * http_conn.h) both embed a struct iox_sock and drive it from their
 * machines' actions; what each protocol decides (which event a completion
 * is, when to read, when to close) stays in its machine.
 *
 * One implementation, here, of:
 *   op books   ops on the socket in flight (the close waits for none), the
 *              multishot recv armed or being cancelled, the peer's EOF, the
 *              send in flight; iox_sock_cqe keeps them for every completion
 *              and says what the completion was (enum iox_sock_got);
 *   turn end   the parked list (recvs to re-arm once this turn's buffers
 *              are back) and the dirty list (one send per socket per turn);
 *   input      the carry: bytes not consumed yet that are not in a ring
 *              buffer (blocks from the host's free list);
 *   output     the write buffer: [0, wsent) sent, [wsent, wcommit) ready,
 *              [wcommit, wlen) written but not committed yet (a protocol
 *              that commits every write keeps wcommit == wlen); while a send
 *              is in flight it covers [wsent, wsend_end) and a buffer grown
 *              under it stays alive (retired) until it completes; buffers
 *              come from the host's free lists by power-of-two class and go
 *              back when nothing is owed (an idle socket holds none);
 *   timers     one deadline per socket on the host's idle list (what it is
 *              for: its class, enum iox_sock_timer) or its linger list,
 *              both in deadline order (fixed durations, monotonic clock);
 *              an expiry of a class that waits for the peer to read is
 *              renewed while the kernel's send queue (SIOCOUTQ) moves;
 *   close      cancel every op, close once none is in flight.
 *
 * Internal to the runtime's stream connections (it is public only because
 * struct iox_conn embeds it): everything runs on the owning reactor's
 * thread; no function allocates on the warm path (free lists), none takes
 * a lock, and the only syscalls are the ring's. */
#ifndef IOX_STREAM_CORE_H
#define IOX_STREAM_CORE_H
#include <ioxide/reactor.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* Size of the blocks on the host's free lists (carry, first write buffer). */
#define IOX_BLOCK 16384u

struct iox_sock;
struct iox_sock_list { struct iox_sock *head, *tail; };

/* What the sockets of one server (one kind on one reactor) share. The
 * protocol fills r, owner, name, idle_ms and linger_ms; the rest starts
 * zeroed. */
struct iox_sock_host {
    struct iox_reactor *r;
    int owner;                        /* kind id: user_data owner of the sockets' ops */
    const char *name;                 /* for logs: "conn", "stream" */
    uint32_t idle_ms, linger_ms;
    struct iox_sock *parked, *dirty;  /* this turn's lists */
    struct iox_sock_list idle, linger;
    /* Free lists: carry blocks, write buffers of IOX_BLOCK, then 32 KiB ..
     * 1 MiB by power of two (larger ones are malloc'd and freed). */
    void *free_carry, *free_wbuf;
    void *free_wbuf_big[6];
};

/* What a socket's deadline is for (the protocol says, iox_sock_timer_set):
 *   NONE      no deadline (the server is producing an answer);
 *   IDLE      nothing owed either way; renewed while SIOCOUTQ moves;
 *   STUCK     input is arriving that must complete (a request head): runs
 *             from its first byte, progress does not renew it;
 *   PROGRESS  renewed by each piece of progress (iox_sock_progress);
 *   OUTPUT    output is waiting for the peer: renewed by progress and while
 *             SIOCOUTQ moves. */
enum iox_sock_timer { IOX_SOCK_T_NONE, IOX_SOCK_T_IDLE, IOX_SOCK_T_STUCK, IOX_SOCK_T_PROGRESS, IOX_SOCK_T_OUTPUT };

struct iox_sock {
    int fd;
    uint32_t idx;                     /* slot in the protocol's table (user_data) */
    uint16_t gen;                     /* slot generation (user_data): late CQEs are stale */
    uint16_t inflight;                /* ops on the socket in flight; close waits for 0 */
    uint8_t recv_armed, recv_cancelling, peer_shut, send_inflight;
    uint8_t parked, dirty;            /* wants a re-arm / a send at turn end */
    uint8_t parked_linked, dirty_linked;   /* on the host's list (an entry may outlive the want) */
    uint8_t tlist;                    /* 0 none, 1 idle, 2 linger */
    uint8_t tclass;                   /* enum iox_sock_timer of the idle deadline */
    uint8_t tprogress;                /* progress since the last iox_sock_timer_set */
    uint8_t outq_check;               /* the expiry's SIOCOUTQ ring command is in flight */
    uint32_t last_unsent;             /* SIOCOUTQ at the last renewed expiry */
    /* Carry. */
    uint32_t in_len;
    char *in;
    uint32_t in_cap;
    /* Write buffer (see above). */
    uint32_t wlen;
    char *out;
    uint32_t wsent, wcommit, wsend_end, wcap;
    char *retired;
    uint32_t retired_cap;
    uint64_t deadline_ms;
    struct iox_sock *tprev, *tnext, *parked_next, *dirty_next;
};

/* ---- turn-end lists ---- */

/* Send the committed output at the end of the turn. */
static inline void iox_sock_mark_dirty(struct iox_sock_host *h, struct iox_sock *s)
{
    s->dirty = 1;
    if (s->dirty_linked) return;
    s->dirty_linked = 1;
    s->dirty_next = h->dirty;
    h->dirty = s;
}

/* Re-arm the recv at the end of the turn: not while one is armed or being
 * cancelled, never after the peer's EOF. */
static inline void iox_sock_park(struct iox_sock_host *h, struct iox_sock *s)
{
    if (s->recv_armed || s->recv_cancelling || s->peer_shut) return;
    s->parked = 1;
    if (s->parked_linked) return;
    s->parked_linked = 1;
    s->parked_next = h->parked;
    h->parked = s;
}

/* The turn-end flush takes each list whole (a socket listed again meanwhile
 * waits for the next turn); it clears the entry's *_linked and acts only
 * on the sockets whose want (parked, dirty) still holds. */
static inline struct iox_sock *iox_sock_take_parked(struct iox_sock_host *h)
{
    struct iox_sock *s = h->parked;
    h->parked = NULL;
    return s;
}
static inline struct iox_sock *iox_sock_take_dirty(struct iox_sock_host *h)
{
    struct iox_sock *s = h->dirty;
    h->dirty = NULL;
    return s;
}

/* ---- ops ----
 * Each returns 0, or the -errno of a ring that had no room (logged; the
 * caller fails the connection its way). */

/* Backpressure: withdraw a pending re-arm, cancel an armed recv. */
void iox_sock_stop_recv(struct iox_sock_host *h, struct iox_sock *s);
/* Arm the multishot recv (the parked entry's turn): no-op while one is
 * armed or being cancelled, or after the peer's EOF. */
int iox_sock_rearm(struct iox_sock_host *h, struct iox_sock *s);
/* One send of the committed, unsent output, unless one is in flight
 * (inline: the hot path; below). */
static inline int iox_sock_start_send(struct iox_sock_host *h, struct iox_sock *s);
/* Graceful close, half: shut the write side (an op: the close waits for it). */
int iox_sock_shutdown_wr(struct iox_sock_host *h, struct iox_sock *s);
/* Once per socket, when closing begins: off the timer lists, no re-arm,
 * every op in flight cancelled. */
void iox_sock_begin_close(struct iox_sock_host *h, struct iox_sock *s);
/* With no op in flight, close the fd (an op). Returns 1 when the fd was
 * closed synchronously (no room on the ring: the caller's "closed" comes
 * now), else 0 (nothing to do yet, or the close CQE comes later). */
int iox_sock_close_if_idle(struct iox_sock_host *h, struct iox_sock *s);
/* An op of the protocol's own (a file read into the write buffer) the
 * close waits for. End returns 1 when no op is left in flight. */
static inline void iox_sock_op_begin(struct iox_sock *s) { s->inflight++; }
static inline int iox_sock_op_end(struct iox_sock *s) { return --s->inflight == 0; }

/* ---- completions ---- */

/* What a completion was, after the books were kept. */
enum iox_sock_got {
    IOX_SOCK_GOT_RECV,         /* bytes: *data, *len; then iox_sock_recv_done */
    IOX_SOCK_GOT_RECV_EOF,     /* peer_shut is set */
    IOX_SOCK_GOT_RECV_NOBUFS,  /* the provided buffer ring was dry (the recv ended) */
    IOX_SOCK_GOT_RECV_CANCELLED,
    IOX_SOCK_GOT_RECV_ERROR,   /* a socket error (or bytes without a buffer: -EPROTO) */
    IOX_SOCK_GOT_SEND_DONE,    /* the send covered everything it was queued with */
    IOX_SOCK_GOT_SEND_PARTIAL, /* short: the rest is still committed */
    IOX_SOCK_GOT_SEND_ERROR,   /* failed, or wrote nothing */
    IOX_SOCK_GOT_CLOSED,       /* the close completed */
    IOX_SOCK_GOT_UNSENT,       /* an expiry's SIOCOUTQ check: iox_sock_unsent_done decides */
    IOX_SOCK_GOT_OTHER,        /* a cancel or a shutdown: books only */
};
/* Keep the books for one completion of op on s and classify it. For a
 * recv with bytes, *data and *len point at the ring buffer; hand it back
 * with iox_sock_recv_done(h, cqe) once the protocol is done with them (in
 * the same call). A send's progress sets tprogress and rewinds (or gives
 * back) the write buffer once everything is sent; output committed
 * meanwhile marks the socket dirty. After the protocol handled it,
 * inflight == 0 means every op ended (except after GOT_CLOSED). Inline
 * (below): every completion of every connection comes through here. */
static inline enum iox_sock_got iox_sock_cqe(struct iox_sock_host *h, struct iox_sock *s, unsigned op,
                                             const struct iox_cqe *cqe, const char **data, uint32_t *len);
static inline void iox_sock_recv_done(struct iox_sock_host *h, const struct iox_cqe *cqe)
{
    iox_seam_buf_return(h->r->seam, cqe->flags >> IOX_CQE_BUFFER_SHIFT);
}
/* The recv ended with this completion (no more CQEs of it will come). */
static inline int iox_sock_recv_over(const struct iox_cqe *cqe)
{
    return (cqe->flags & IOX_CQE_F_MORE) == 0;
}

/* ---- timers ---- */

/* Set the idle deadline for class k: kept when the class is the same (and,
 * for PROGRESS and OUTPUT, no progress was made since), else restarted
 * (NONE: no deadline). Not while lingering. */
void iox_sock_timer_set(struct iox_sock_host *h, struct iox_sock *s, unsigned k);
/* Progress (bytes in or out): the next iox_sock_timer_set renews a
 * PROGRESS or OUTPUT deadline. */
static inline void iox_sock_progress(struct iox_sock *s) { s->tprogress = 1; }
/* A fresh idle deadline of the current class, now. */
void iox_sock_timer_restart(struct iox_sock_host *h, struct iox_sock *s);
/* Move to the linger list (linger_ms from now). */
void iox_sock_timer_linger(struct iox_sock_host *h, struct iox_sock *s);
void iox_sock_timer_remove(struct iox_sock_host *h, struct iox_sock *s);
/* The head of a list is due: take it off. Returns 1 when the deadline was
 * renewed (IDLE/OUTPUT with a send queue that moved since the last
 * expiry: the peer is reading), 0 for an expiry the protocol acts on (a
 * linger's end when *lingering), 2 when the send queue is being asked on
 * the ring (IDLE/OUTPUT where the kernel has the SIOCOUTQ ring command:
 * always so for a direct descriptor, which no ioctl reaches): nothing to
 * do now; the answer comes as IOX_SOCK_GOT_UNSENT (an op the close waits
 * for) and iox_sock_unsent_done says whether it expired. */
int iox_sock_expire(struct iox_sock_host *h, struct iox_sock *s, int *lingering);
/* The SIOCOUTQ answer (res: bytes or -errno) to an expiry that returned 2.
 * Returns 1 when the deadline expired after all (the protocol acts on it
 * as on iox_sock_expire's 0), 0 when it was renewed, or when the socket
 * moved on meanwhile (a new deadline, another class, lingering): the
 * answer is moot. The protocol must not act while it is closing. */
int iox_sock_unsent_done(struct iox_sock_host *h, struct iox_sock *s, int res);

/* ---- buffers ---- */

/* Append up to n bytes to the carry, growing it (when it is full) to at
 * most max bytes; returns the bytes appended (fewer when it is full at max,
 * or memory ran out). */
size_t iox_sock_carry_append(struct iox_sock_host *h, struct iox_sock *s, const char *p, size_t n,
                             size_t max);
/* Drop the first `used` bytes (all: the block goes back). */
void iox_sock_carry_consume(struct iox_sock_host *h, struct iox_sock *s, size_t used);
/* Give an empty carry's block back. */
void iox_sock_carry_release(struct iox_sock_host *h, struct iox_sock *s);
/* Room for n bytes at out + wlen: in place when the buffer has it, else
 * in a larger buffer (what is owed, [wsent, wlen), moved to its front)
 * while owed + n stays under max; a buffer a send in flight reads stays
 * alive (retired). Returns the pointer (count the bytes by adding to
 * wlen), or NULL. */
char *iox_sock_out_reserve(struct iox_sock_host *h, struct iox_sock *s, size_t n, size_t max);
/* Give the write buffer back when nothing is owed or in flight (and a
 * retired one whose send ended). */
void iox_sock_out_release(struct iox_sock_host *h, struct iox_sock *s);
/* Bytes written and not yet sent. */
static inline uint32_t iox_sock_owed(const struct iox_sock *s)
{
    return s->out ? s->wlen - s->wsent : 0;
}
/* Drop every buffer of a socket whose slot is released (nothing reads
 * them any more: no op is in flight). */
void iox_sock_buffers_drop(struct iox_sock_host *h, struct iox_sock *s);
/* A buffer of `cap` bytes from the host's lists (or malloc), and back. */
char *iox_sock_block_get(struct iox_sock_host *h, size_t cap);
void iox_sock_block_put(struct iox_sock_host *h, char *p, size_t cap);
/* Free every block on the host's lists (the server goes away). */
void iox_sock_host_free(struct iox_sock_host *h);

/* ---- the hot path, inline ---- */

/* Cold: the log line for a completion's error or an unknown op. */
void iox_sock_cqe_note(const struct iox_sock_host *h, const struct iox_sock *s, unsigned op, int res);
void iox_sock_send_failed(const struct iox_sock_host *h, const struct iox_sock *s, int r);

static inline uint64_t iox_sock_ud(const struct iox_sock_host *h, const struct iox_sock *s, unsigned op)
{
    return iox_ud(op, (unsigned)h->owner, s->gen, s->idx);
}

static inline int iox_sock_start_send(struct iox_sock_host *h, struct iox_sock *s)
{
    s->dirty = 0;
    if (s->send_inflight || s->wsent >= s->wcommit) return 0;
    int r = iox_seam_send(h->r->seam, s->fd, s->out + s->wsent, s->wcommit - s->wsent,
                          iox_sock_ud(h, s, IOX_OP_SEND));
    if (r < 0) {
        iox_sock_send_failed(h, s, r);
        return r;
    }
    s->send_inflight = 1;
    s->wsend_end = s->wcommit;
    s->inflight++;
    return 0;
}

/* A send completed, in full, short or failed: the buffer retired under it
 * is no longer read. Free it now: left "retired" into the next send (it
 * was, after a short send), the next growth took the current buffer for
 * one that "holds only copies" and freed it under the send in flight
 * (found by tests/test_file_sim.c, seed 33357). */
static inline void iox_sock_release_retired(struct iox_sock_host *h, struct iox_sock *s)
{
    if (s->retired && !s->send_inflight) {
        iox_sock_block_put(h, s->retired, s->retired_cap);
        s->retired = NULL;
    }
}

static inline enum iox_sock_got iox_sock_cqe(struct iox_sock_host *h, struct iox_sock *s, unsigned op,
                                             const struct iox_cqe *cqe, const char **data, uint32_t *len)
{
    switch (op) {
    case IOX_OP_RECV:
        if (!(cqe->flags & IOX_CQE_F_MORE)) { s->recv_armed = 0; s->recv_cancelling = 0; s->inflight--; }
        if (cqe->res > 0) {
            if (!(cqe->flags & IOX_CQE_F_BUFFER)) {
                iox_sock_cqe_note(h, s, op, cqe->res);
                return IOX_SOCK_GOT_RECV_ERROR;
            }
            *data = iox_seam_buf(h->r->seam, cqe->flags >> IOX_CQE_BUFFER_SHIFT);
            *len = (uint32_t)cqe->res;
            return IOX_SOCK_GOT_RECV;
        }
        if (cqe->res == 0) {
            s->peer_shut = 1;   /* for every state, before it decides */
            return IOX_SOCK_GOT_RECV_EOF;
        }
        if (cqe->res == -ENOBUFS) return IOX_SOCK_GOT_RECV_NOBUFS;
        if (cqe->res == -ECANCELED) return IOX_SOCK_GOT_RECV_CANCELLED;
        iox_sock_cqe_note(h, s, op, cqe->res);
        return IOX_SOCK_GOT_RECV_ERROR;
    case IOX_OP_SEND:
        s->send_inflight = 0;
        s->inflight--;
        iox_sock_release_retired(h, s);
        if (cqe->res < 0) {
            iox_sock_cqe_note(h, s, op, cqe->res);
            return IOX_SOCK_GOT_SEND_ERROR;
        }
        s->wsent += (uint32_t)cqe->res;
        if (cqe->res > 0) s->tprogress = 1;   /* the peer is taking our output */
        if (s->wsent < s->wsend_end) return cqe->res == 0 ? IOX_SOCK_GOT_SEND_ERROR : IOX_SOCK_GOT_SEND_PARTIAL;
        if (s->wsent == s->wlen) {
            /* Everything sent: rewind the buffer and give it back. */
            s->wsent = s->wlen = s->wcommit = s->wsend_end = 0;
            iox_sock_out_release(h, s);
        }
        if (s->wsent < s->wcommit) iox_sock_mark_dirty(h, s);   /* committed meanwhile */
        return IOX_SOCK_GOT_SEND_DONE;
    case IOX_OP_CANCEL:
    case IOX_OP_SHUTDOWN:
        s->inflight--;
        if (cqe->res < 0) iox_sock_cqe_note(h, s, op, cqe->res);
        return IOX_SOCK_GOT_OTHER;
    case IOX_OP_CLOSE:
        s->inflight--;
        if (cqe->res < 0) iox_sock_cqe_note(h, s, op, cqe->res);
        return IOX_SOCK_GOT_CLOSED;
    case IOX_OP_UNSENT:
        s->inflight--;
        s->outq_check = 0;
        return IOX_SOCK_GOT_UNSENT;
    default:
        iox_sock_cqe_note(h, s, op, cqe->res);
        return IOX_SOCK_GOT_OTHER;
    }
}

#endif
