/* stream_core.c — the socket mechanics of every stream connection
 * (ioxide/stream_core.h): op books, ops, completions, timers, the carry and
 * the write buffer. Protocol-neutral: the stream layer and HTTP's
 * connection both drive a struct iox_sock from their machines' actions. */
#include <ioxide/stream_core.h>
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- ops ---- */

void iox_sock_stop_recv(struct iox_sock_host *h, struct iox_sock *s)
{
    s->parked = 0;
    if (s->recv_armed && !s->recv_cancelling) {
        if (iox_seam_cancel(h->r->seam, iox_sock_ud(h, s, IOX_OP_RECV), iox_sock_ud(h, s, IOX_OP_CANCEL)) == 0) {
            s->inflight++;
            s->recv_cancelling = 1;
        }
    }
}

int iox_sock_rearm(struct iox_sock_host *h, struct iox_sock *s)
{
    s->parked = 0;
    if (s->recv_armed || s->recv_cancelling || s->peer_shut) return 0;
    int r = iox_seam_recv_multishot(h->r->seam, s->fd, iox_sock_ud(h, s, IOX_OP_RECV));
    if (r < 0) {
        IOX_WARN("%s %u: cannot arm recv: %s (closing it)", h->name, s->idx, strerror(-r));
        return r;
    }
    s->recv_armed = 1;
    s->inflight++;
    return 0;
}

void iox_sock_send_failed(const struct iox_sock_host *h, const struct iox_sock *s, int r)
{
    IOX_WARN("%s %u: cannot queue send: %s (closing it)", h->name, s->idx, strerror(-r));
}

int iox_sock_shutdown_wr(struct iox_sock_host *h, struct iox_sock *s)
{
    int r = iox_seam_shutdown(h->r->seam, s->fd, SHUT_WR, iox_sock_ud(h, s, IOX_OP_SHUTDOWN));
    if (r < 0) {
        IOX_DEBUG("%s %u: cannot queue shutdown: %s", h->name, s->idx, strerror(-r));
        return r;
    }
    s->inflight++;
    return 0;
}

void iox_sock_begin_close(struct iox_sock_host *h, struct iox_sock *s)
{
    iox_sock_timer_remove(h, s);
    s->parked = 0;   /* a parked entry is skipped by the flush */
    if (s->inflight) {
        if (iox_seam_cancel_fd(h->r->seam, s->fd, iox_sock_ud(h, s, IOX_OP_CANCEL)) == 0)
            s->inflight++;
        else if (h->r->uring && !iox_fd_is_direct(s->fd))
            shutdown(s->fd, SHUT_RDWR);   /* no SQE: make the ops end on their own */
        /* (a direct descriptor has no synchronous shutdown: its ops end with
         * the peer or their own errors, and the close waits for them) */
    }
}

int iox_sock_close_if_idle(struct iox_sock_host *h, struct iox_sock *s)
{
    if (s->inflight || s->fd < 0) return 0;
    int fd = s->fd;
    s->fd = -1;
    if (iox_seam_close(h->r->seam, fd, iox_sock_ud(h, s, IOX_OP_CLOSE)) == 0) {
        s->inflight++;
        return 0;
    }
    /* No SQE to be had: close synchronously rather than leak the fd (a
     * direct one through the file table, never close(2) of a slot). */
    if (h->r->uring) iox_seam_close_sync(h->r->seam, fd);
    return 1;
}

/* ---- completions ---- */

void iox_sock_cqe_note(const struct iox_sock_host *h, const struct iox_sock *s, unsigned op, int res)
{
    switch (op) {
    case IOX_OP_RECV:
        if (res > 0) IOX_ERROR("%s %u: recv completion without a buffer (closing it)", h->name, s->idx);
        else IOX_DEBUG("%s %u: recv: %s", h->name, s->idx, strerror(-res));
        break;
    case IOX_OP_SEND:
        IOX_DEBUG("%s %u: send: %s", h->name, s->idx, strerror(-res));
        break;
    case IOX_OP_CANCEL:
        if (res != -ENOENT && res != -EALREADY) IOX_DEBUG("%s %u: cancel: %s", h->name, s->idx, strerror(-res));
        break;
    case IOX_OP_SHUTDOWN:
        if (res != -ENOTCONN) IOX_DEBUG("%s %u: shutdown: %s", h->name, s->idx, strerror(-res));
        break;
    case IOX_OP_CLOSE:
        IOX_WARN("%s %u: close: %s", h->name, s->idx, strerror(-res));
        break;
    default:
        IOX_ERROR("%s %u: unexpected op %u", h->name, s->idx, op);
        break;
    }
}

/* ---- timers ----
 * One deadline per socket on the host's idle list (or its linger list),
 * both in deadline order: durations are fixed and the clock monotonic, so
 * appending keeps them sorted and the tick pops from the head. */

static struct iox_sock_list *list_of(struct iox_sock_host *h, unsigned which)
{
    return which == 1 ? &h->idle : &h->linger;
}

void iox_sock_timer_remove(struct iox_sock_host *h, struct iox_sock *s)
{
    if (!s->tlist) return;
    struct iox_sock_list *l = list_of(h, s->tlist);
    if (s->tprev) s->tprev->tnext = s->tnext; else l->head = s->tnext;
    if (s->tnext) s->tnext->tprev = s->tprev; else l->tail = s->tprev;
    s->tprev = s->tnext = NULL;
    s->tlist = 0;
}

static void timer_append(struct iox_sock_host *h, struct iox_sock *s, unsigned which, uint64_t deadline)
{
    struct iox_sock_list *l = list_of(h, which);
    s->deadline_ms = deadline;
    s->tlist = (uint8_t)which;
    s->tnext = NULL;
    s->tprev = l->tail;
    if (l->tail) l->tail->tnext = s; else l->head = s;
    l->tail = s;
}

void iox_sock_timer_set(struct iox_sock_host *h, struct iox_sock *s, unsigned k)
{
    int progress = s->tprogress;
    s->tprogress = 0;
    if (s->tlist == 2) return;
    if (k == s->tclass && !(progress && (k == IOX_SOCK_T_OUTPUT || k == IOX_SOCK_T_PROGRESS))) return;
    s->tclass = (uint8_t)k;
    s->last_unsent = 0;
    uint64_t d = h->r->now_ms + h->idle_ms;
    if (k != IOX_SOCK_T_NONE && s->tlist == 1 && s->deadline_ms == d) return;   /* same clock step */
    iox_sock_timer_remove(h, s);
    if (k != IOX_SOCK_T_NONE) timer_append(h, s, 1, d);
}

void iox_sock_timer_restart(struct iox_sock_host *h, struct iox_sock *s)
{
    iox_sock_timer_remove(h, s);
    if (s->tclass != IOX_SOCK_T_NONE) timer_append(h, s, 1, h->r->now_ms + h->idle_ms);
}

void iox_sock_timer_linger(struct iox_sock_host *h, struct iox_sock *s)
{
    iox_sock_timer_remove(h, s);
    s->tclass = IOX_SOCK_T_NONE;
    timer_append(h, s, 2, h->r->now_ms + h->linger_ms);
}

static int unsent_renews(struct iox_sock_host *h, struct iox_sock *s, int q);

int iox_sock_expire(struct iox_sock_host *h, struct iox_sock *s, int *lingering)
{
    *lingering = s->tlist == 2;   /* the end of a linger is no timeout */
    iox_sock_timer_remove(h, s);
    /* A send completes when the kernel has taken the bytes, not when the
     * peer has them: a peer still taking a large answer out of the socket
     * is not idle. While the send queue keeps changing between expiries,
     * the deadline is renewed (one ioctl per expiry, not per message); a
     * queue that does not move is a peer that does not read. */
    if (!*lingering && (s->tclass == IOX_SOCK_T_IDLE || s->tclass == IOX_SOCK_T_OUTPUT)) {
        /* On the ring where the kernel can (one path for real and direct
         * descriptors): the timer's own internal step, not a state of the
         * protocol's machine — the machine still sees only the timeout,
         * after the check, exactly as with the synchronous ioctl; the
         * check is an op like any other (the close waits for it). */
        if (!s->outq_check) {
            int rc = iox_seam_unsent_cmd(h->r->seam, s->fd, iox_sock_ud(h, s, IOX_OP_UNSENT));
            if (rc == 0) {
                s->outq_check = 1;
                s->inflight++;
                return 2;
            }
            /* No SQE for a direct descriptor: no other way to ask, so the
             * deadline stands (as for a queue that did not move). */
            if (rc != -EOPNOTSUPP) return 0;
        }
        return unsent_renews(h, s, iox_seam_unsent(h->r->seam, s->fd));
    }
    return 0;
}

/* The queue moved since the last expiry: the peer is reading, renew. */
static int unsent_renews(struct iox_sock_host *h, struct iox_sock *s, int q)
{
    if (q > 0 && (uint32_t)q != s->last_unsent) {
        s->last_unsent = (uint32_t)q;
        timer_append(h, s, 1, h->r->now_ms + h->idle_ms);
        return 1;
    }
    return 0;
}

int iox_sock_unsent_done(struct iox_sock_host *h, struct iox_sock *s, int res)
{
    /* Anything that set a deadline meanwhile (progress, a new class, the
     * linger) decided already. */
    if (s->tlist || (s->tclass != IOX_SOCK_T_IDLE && s->tclass != IOX_SOCK_T_OUTPUT)) return 0;
    if (res < 0) IOX_DEBUG("%s %u: SIOCOUTQ on the ring: %s", h->name, s->idx, strerror(-res));
    return !unsent_renews(h, s, res);
}

/* ---- buffers ----
 * Both start from the host's free lists of fixed-size blocks, so a warm
 * reactor serves without malloc; they grow (cold path) only for a message
 * cut across ring buffers with a large head, or output over 1 MiB; write
 * buffers up to 1 MiB are recycled by power-of-two class. */

struct free_block { struct free_block *next; };

static char *list_get(void **list, size_t size)
{
    struct free_block *b = *list;
    if (b) { *list = b->next; return (char *)b; }
    return malloc(size);
}

static void list_put(void **list, char *p)
{
    struct free_block *b = (struct free_block *)p;
    b->next = *list;
    *list = b;
}

static void list_free(void **list)
{
    while (*list) {
        struct free_block *b = *list;
        *list = b->next;
        free(b);
    }
}

/* The free list for a write buffer of `cap` bytes: 16 KiB blocks, then one
 * list per power of two up to 1 MiB; NULL for anything larger (malloc'd and
 * freed: output that large is rare and the list would pin the memory).
 * Lists only grow to the reactor's peak of concurrent large buffers. */
static void **wbuf_list(struct iox_sock_host *h, size_t cap)
{
    if (cap == IOX_BLOCK) return &h->free_wbuf;
    size_t n = sizeof h->free_wbuf_big / sizeof h->free_wbuf_big[0];
    for (size_t k = 0; k < n; k++)
        if (cap == (size_t)IOX_BLOCK << (k + 1)) return &h->free_wbuf_big[k];
    return NULL;
}

char *iox_sock_block_get(struct iox_sock_host *h, size_t cap)
{
    void **l = wbuf_list(h, cap);
    return l ? list_get(l, cap) : malloc(cap);
}

void iox_sock_block_put(struct iox_sock_host *h, char *p, size_t cap)
{
    void **l = wbuf_list(h, cap);
    if (l) list_put(l, p);
    else free(p);
}

void iox_sock_host_free(struct iox_sock_host *h)
{
    list_free(&h->free_carry);
    list_free(&h->free_wbuf);
    for (unsigned k = 0; k < sizeof h->free_wbuf_big / sizeof h->free_wbuf_big[0]; k++)
        list_free(&h->free_wbuf_big[k]);
}

size_t iox_sock_carry_append(struct iox_sock_host *h, struct iox_sock *s, const char *p, size_t n, size_t max)
{
    if (!s->in) {
        s->in = list_get(&h->free_carry, IOX_BLOCK);
        if (!s->in) return 0;
        s->in_cap = IOX_BLOCK;
    }
    if (max > UINT32_MAX / 2) max = UINT32_MAX / 2;   /* lengths are 32-bit */
    if (s->in_len + n > s->in_cap && s->in_cap < max) {
        size_t want = s->in_cap;
        while (want < s->in_len + n && want < max) want *= 2;
        if (want > max) want = max;
        char *g = malloc(want);
        if (g) {
            memcpy(g, s->in, s->in_len);
            /* Not iox_sock_carry_release: it keeps a carry that holds bytes. */
            if (s->in_cap == IOX_BLOCK) list_put(&h->free_carry, s->in);
            else free(s->in);
            s->in = g;
            s->in_cap = (uint32_t)want;
        }
    }
    size_t room = s->in_cap - s->in_len;
    if (n > room) n = room;
    memcpy(s->in + s->in_len, p, n);
    s->in_len += (uint32_t)n;
    return n;
}

void iox_sock_carry_consume(struct iox_sock_host *h, struct iox_sock *s, size_t used)
{
    if (used >= s->in_len) {
        s->in_len = 0;
        iox_sock_carry_release(h, s);
        return;
    }
    memmove(s->in, s->in + used, s->in_len - used);
    s->in_len -= (uint32_t)used;
}

void iox_sock_carry_release(struct iox_sock_host *h, struct iox_sock *s)
{
    if (!s->in || s->in_len) return;
    if (s->in_cap == IOX_BLOCK) list_put(&h->free_carry, s->in);
    else free(s->in);
    s->in = NULL;
    s->in_cap = 0;
}

char *iox_sock_out_reserve(struct iox_sock_host *h, struct iox_sock *s, size_t n, size_t max)
{
    if (s->out && s->wlen + n <= s->wcap) return s->out + s->wlen;
    /* Bytes still owed to the peer: [wsent, wlen). */
    size_t live = s->out ? s->wlen - s->wsent : 0;
    if (live + n > max || live + n > UINT32_MAX / 2) return NULL;   /* lengths are 32-bit */
    if (!s->out) {
        s->out = list_get(&h->free_wbuf, IOX_BLOCK);
        if (!s->out) return NULL;
        s->wcap = IOX_BLOCK;
        s->wlen = s->wsent = s->wcommit = s->wsend_end = 0;
        if (n <= s->wcap) return s->out;
    }
    size_t want = IOX_BLOCK;
    while (want < live + n) want *= 2;
    char *g = iox_sock_block_get(h, want);
    if (!g) return NULL;
    /* Move what is owed to the front of the new buffer. A send in flight
     * still reads the old buffer: keep it as `retired` until its completion
     * (the kernel may read it until then). A buffer moved out of during
     * the same send holds only copies and is freed at once. */
    memcpy(g, s->out + s->wsent, live);
    if (s->send_inflight && !s->retired) {
        s->retired = s->out;
        s->retired_cap = s->wcap;
    } else {
        iox_sock_block_put(h, s->out, s->wcap);
    }
    s->wcommit -= s->wsent;
    s->wsend_end -= s->send_inflight ? s->wsent : s->wsend_end;
    s->wlen -= s->wsent;
    s->wsent = 0;
    s->out = g;
    s->wcap = (uint32_t)want;
    return s->out + s->wlen;
}

void iox_sock_out_release(struct iox_sock_host *h, struct iox_sock *s)
{
    iox_sock_release_retired(h, s);
    if (!s->out || s->wlen != s->wsent || s->send_inflight) return;
    iox_sock_block_put(h, s->out, s->wcap);
    s->out = NULL;
    s->wcap = s->wlen = s->wsent = s->wcommit = s->wsend_end = 0;
}

void iox_sock_buffers_drop(struct iox_sock_host *h, struct iox_sock *s)
{
    s->in_len = 0;
    iox_sock_carry_release(h, s);
    s->send_inflight = 0;
    s->wsent = s->wlen;
    iox_sock_out_release(h, s);
}
