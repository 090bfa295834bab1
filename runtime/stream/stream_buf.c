/* stream_buf.c — a stream's reply slots' side buffers, and the output API
 * (stream.h: iox_stream_write, reserve/commit, reply slots) on them and on
 * the write buffer, which is the stream core's (stream_core.c: blocks from
 * the server's free lists, given back when everything is sent).
 *
 * Side buffers stay with their slot across connections (trimmed when they
 * grew large), so a steady state allocates nothing. The growable iox_sbuf
 * here also serves the client kit. */
#include "stream_internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A buffer larger than this is freed when its slot is released. */
#define KEEP_MAX (64u * 1024u)

int iox_sbuf_reserve(struct iox_sbuf *b, size_t n)
{
    if ((size_t)b->len + n <= b->cap) return 0;
    if ((size_t)b->len + n > UINT32_MAX / 2) return -ENOMEM;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < (size_t)b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -ENOMEM;
    b->p = p;
    b->cap = (uint32_t)cap;
    return 0;
}

int iox_sbuf_append(struct iox_sbuf *b, const void *p, size_t n)
{
    if (!n) return 0;
    int rc = iox_sbuf_reserve(b, n);
    if (rc) return rc;
    memcpy(b->p + b->len, p, n);
    b->len += (uint32_t)n;
    return 0;
}

void iox_sbuf_consume(struct iox_sbuf *b, size_t n)
{
    if (n >= b->len) { b->len = 0; return; }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= (uint32_t)n;
}

void iox_sbuf_free(struct iox_sbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void iox_sbuf_trim(struct iox_sbuf *b)
{
    b->len = 0;
    if (b->cap > KEEP_MAX) iox_sbuf_free(b);
}

/* ---- the write buffer (the core's; every write is committed at once) ---- */

int iox_stream_out_reserve(struct iox_stream *s, size_t n)
{
    return iox_sock_out_reserve(&s->srv->sh, &s->sk, n, (size_t)-1) ? 0 : -ENOMEM;
}

/* `used` bytes were written at out + wlen. */
static void out_grew(struct iox_stream *s, size_t used)
{
    s->sk.wlen += (uint32_t)used;
    s->sk.wcommit = s->sk.wlen;
}

size_t iox_stream_unsent_bytes(const struct iox_stream *s)
{
    return (size_t)iox_sock_owed(&s->sk) + s->side_len;
}

size_t iox_stream_unsent(const struct iox_stream *s)
{
    return iox_stream_unsent_bytes(s);
}

/* ---- reply slots ---- */

static struct iox_stream_rslot *rslot(const struct iox_stream *s, uint16_t seq)
{
    return &s->rs[seq & s->srv->rmask];
}

static int is_open(const struct iox_stream *s, uint16_t seq)
{
    return (uint16_t)(seq - s->rq_head) < (uint16_t)(s->rq_tail - s->rq_head);
}

static int takes_writes(const struct iox_stream *s)
{
    return s->state != STREAM_CONN_S_CLOSING && s->state != STREAM_CONN_S_CLOSED &&
           s->state != STREAM_CONN_S_LINGERING;
}

int iox_stream_writable(const struct iox_stream *s)
{
    return takes_writes(s) && !s->writes_off;
}

/* Bytes were written straight to the write buffer. */
static void wrote(struct iox_stream *s)
{
    iox_stream_mark_dirty(s);
}

/* Move the front of the ring into the write buffer: every ended slot, and
 * the side bytes of the first open one (which writes direct from now on). */
static int advance(struct iox_stream *s)
{
    int moved = 0;
    while (s->rq_head != s->rq_tail) {
        struct iox_stream_rslot *r = rslot(s, s->rq_head);
        if (r->side.len) {
            if (iox_stream_out_reserve(s, r->side.len) < 0) return -ENOMEM;
            memcpy(s->sk.out + s->sk.wlen, r->side.p, r->side.len);
            out_grew(s, r->side.len);
            s->side_len -= r->side.len;
            r->side.len = 0;
            iox_sbuf_trim(&r->side);
            moved = 1;
        }
        if (!r->ended) break;
        if (!r->inline_) s->nreplies--;
        s->rq_head++;
    }
    if (moved) wrote(s);
    return 0;
}

int iox_stream_reply_begin(struct iox_stream *s)
{
    if (!iox_stream_writable(s)) return -EPIPE;
    if (s->nreplies >= s->srv->cfg.max_replies) return -ENOSPC;
    if (!s->rs) {
        s->rs = calloc((size_t)s->srv->rmask + 1, sizeof *s->rs);
        if (!s->rs) return -ENOMEM;
    }
    uint16_t seq = s->rq_tail++;
    struct iox_stream_rslot *r = rslot(s, seq);
    r->seq = seq;
    r->ended = 0;
    r->inline_ = 0;
    r->side.len = 0;
    s->nreplies++;
    return seq;
}

static struct iox_stream_rslot *open_reply(struct iox_stream *s, int id)
{
    if (id < 0 || id > 0xffff || !s->rs || !is_open(s, (uint16_t)id)) return NULL;
    struct iox_stream_rslot *r = rslot(s, (uint16_t)id);
    return r->seq == (uint16_t)id && !r->ended ? r : NULL;
}

char *iox_stream_reply_reserve(struct iox_stream *s, int id, size_t n)
{
    if (!takes_writes(s)) return NULL;
    struct iox_stream_rslot *r = open_reply(s, id);
    if (!r) return NULL;
    if ((uint16_t)id == s->rq_head) {
        if (iox_stream_out_reserve(s, n) < 0) return NULL;
        return s->sk.out + s->sk.wlen;
    }
    if (iox_sbuf_reserve(&r->side, n) < 0) return NULL;
    return r->side.p + r->side.len;
}

void iox_stream_reply_commit(struct iox_stream *s, int id, size_t used)
{
    struct iox_stream_rslot *r = open_reply(s, id);
    if (!r || !used) return;
    if ((uint16_t)id == s->rq_head) {
        if (!s->sk.out || s->sk.wlen + used > s->sk.wcap) return;   /* not reserved: a caller bug, dropped */
        out_grew(s, used);
        wrote(s);
    } else {
        if (r->side.len + used > r->side.cap) return;
        r->side.len += (uint32_t)used;
        s->side_len += (uint32_t)used;
    }
}

int iox_stream_reply_write(struct iox_stream *s, int id, const void *p, size_t n)
{
    if (!takes_writes(s)) return -EPIPE;
    if (!open_reply(s, id)) return -ESTALE;
    if (!n) return 0;
    char *d = iox_stream_reply_reserve(s, id, n);
    if (!d) return -ENOMEM;
    memcpy(d, p, n);
    iox_stream_reply_commit(s, id, n);
    return 0;
}

int iox_stream_reply_end(struct iox_stream *s, int id)
{
    struct iox_stream_rslot *r = open_reply(s, id);
    if (!r) return -ESTALE;
    r->ended = 1;
    int was_oldest = (uint16_t)id == s->rq_head;
    if (was_oldest && advance(s) < 0) {
        iox_stream_abort(s);   /* output lost: the stream cannot go on in order */
        return 0;
    }
    /* A slot may have come free: input held behind full slots goes on at
     * the end of the turn (never from inside this call; the machine asks
     * the guard held then). */
    iox_stream_mark_kick(s);
    iox_stream_fire(s, STREAM_CONN_EV_REPLY_END, NULL);
    return 0;
}

unsigned iox_stream_replies_open(const struct iox_stream *s)
{
    return s->nreplies;
}

/* ---- plain writes ---- */

/* Where a plain write goes: the write buffer when no reply is open, else
 * the side buffer of an inline slot at the tail (made when the newest slot
 * is a real reply: inline slots never follow one another, so the ring of
 * 2 × max_replies entries cannot overflow). NULL: -ENOMEM. */
static struct iox_sbuf *plain_target(struct iox_stream *s, int *direct)
{
    *direct = s->rq_head == s->rq_tail;
    if (*direct) return NULL;
    struct iox_stream_rslot *t = rslot(s, (uint16_t)(s->rq_tail - 1));
    if (t->inline_) return &t->side;
    uint16_t seq = s->rq_tail++;
    t = rslot(s, seq);
    t->seq = seq;
    t->ended = 1;
    t->inline_ = 1;
    t->side.len = 0;
    return &t->side;
}

char *iox_stream_reserve(struct iox_stream *s, size_t n)
{
    if (!iox_stream_writable(s)) return NULL;
    int direct;
    struct iox_sbuf *b = plain_target(s, &direct);
    if (direct) {
        if (iox_stream_out_reserve(s, n) < 0) return NULL;
        return s->sk.out + s->sk.wlen;
    }
    if (!b || iox_sbuf_reserve(b, n) < 0) return NULL;
    return b->p + b->len;
}

void iox_stream_commit(struct iox_stream *s, size_t used)
{
    if (!used || !iox_stream_writable(s)) return;
    if (s->rq_head == s->rq_tail) {
        if (!s->sk.out || s->sk.wlen + used > s->sk.wcap) return;
        out_grew(s, used);
        wrote(s);
        return;
    }
    struct iox_stream_rslot *t = rslot(s, (uint16_t)(s->rq_tail - 1));
    if (!t->inline_ || t->side.len + used > t->side.cap) return;
    t->side.len += (uint32_t)used;
    s->side_len += (uint32_t)used;
}

int iox_stream_write(struct iox_stream *s, const void *p, size_t n)
{
    if (!iox_stream_writable(s)) return -EPIPE;
    if (!n) return 0;
    char *d = iox_stream_reserve(s, n);
    if (!d) return -ENOMEM;
    memcpy(d, p, n);
    iox_stream_commit(s, n);
    return 0;
}

void iox_stream_buffers_release(struct iox_stream *s)
{
    iox_sock_buffers_drop(&s->srv->sh, &s->sk);
    if (s->rs)
        for (uint32_t i = 0; i <= s->srv->rmask; i++) iox_sbuf_trim(&s->rs[i].side);
    s->rq_head = s->rq_tail = 0;
    s->nreplies = 0;
    s->side_len = 0;
}
