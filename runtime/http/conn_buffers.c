/* conn_buffers.c — the connection's carry and write buffer.
 *
 * Both start from a per-reactor free list of fixed-size blocks, so a warm
 * reactor serves requests without malloc; they grow (cold path) only for a
 * request cut across ring buffers with a large head, or a response over
 * 1 MiB; write buffers up to 1 MiB are recycled by power-of-two class. */
#include "conn_buffers.h"
#include "access_log.h"
#include "conn_internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct free_block { struct free_block *next; };

static char *block_get(void **list, size_t size)
{
    struct free_block *b = *list;
    if (b) { *list = b->next; return (char *)b; }
    return malloc(size);
}

static void block_put(void **list, char *p)
{
    struct free_block *b = (struct free_block *)p;
    b->next = *list;
    *list = b;
}

void iox_block_list_free(void **list)
{
    while (*list) {
        struct free_block *b = *list;
        *list = b->next;
        free(b);
    }
}

/* ---- carry ---- */

size_t iox_carry_append(struct iox_conn *c, const char *p, size_t n, size_t max)
{
    if (!c->in) {
        c->in = block_get(&c->hs->free_carry, IOX_BLOCK);
        if (!c->in) return 0;
        c->in_cap = IOX_BLOCK;
    }
    if (c->in_len + n > c->in_cap && c->in_cap < max) {
        size_t want = c->in_cap;
        while (want < c->in_len + n && want < max) want *= 2;
        if (want > max) want = max;
        char *g = malloc(want);
        if (g) {
            memcpy(g, c->in, c->in_len);
            /* Not iox_carry_release: it keeps a carry that holds bytes. */
            if (c->in_cap == IOX_BLOCK) block_put(&c->hs->free_carry, c->in);
            else free(c->in);
            c->in = g;
            c->in_cap = (uint32_t)want;
        }
    }
    size_t room = c->in_cap - c->in_len;
    if (n > room) n = room;
    memcpy(c->in + c->in_len, p, n);
    c->in_len += (uint32_t)n;
    return n;
}

void iox_carry_consume(struct iox_conn *c, size_t used)
{
    if (used >= c->in_len) {
        c->in_len = 0;
        iox_carry_release(c);
        return;
    }
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= (uint32_t)used;
}

void iox_carry_release(struct iox_conn *c)
{
    if (!c->in || c->in_len) return;
    if (c->in_cap == IOX_BLOCK) block_put(&c->hs->free_carry, c->in);
    else free(c->in);
    c->in = NULL;
    c->in_cap = 0;
}

/* ---- write buffer ---- */

/* The free list for a write buffer of `cap` bytes: 16 KiB blocks, then one
 * list per power of two up to 1 MiB; NULL for anything larger (malloc'd and
 * freed: a response that large is rare and the list would pin the memory).
 * Lists only grow to the reactor's peak of concurrent large responses. */
static void **wbuf_list(struct iox_http_server *r, size_t cap)
{
    if (cap == IOX_BLOCK) return &r->free_wbuf;
    size_t n = sizeof r->free_wbuf_big / sizeof r->free_wbuf_big[0];
    for (size_t k = 0; k < n; k++)
        if (cap == (size_t)IOX_BLOCK << (k + 1)) return &r->free_wbuf_big[k];
    return NULL;
}

static char *wbuf_get(struct iox_http_server *r, size_t cap)
{
    void **l = wbuf_list(r, cap);
    return l ? block_get(l, cap) : malloc(cap);
}

static void wbuf_put(struct iox_http_server *r, char *p, size_t cap)
{
    void **l = wbuf_list(r, cap);
    if (l) block_put(l, p);
    else free(p);
}

char *iox_out_reserve(struct iox_conn *c, size_t n, size_t max)
{
    if (c->out && c->wlen + n <= c->wcap) return c->out + c->wlen;
    /* Bytes still owed to the peer: [wsent, wlen). */
    size_t live = c->out ? c->wlen - c->wsent : 0;
    if (live + n > max) return NULL;
    if (!c->out) {
        c->out = block_get(&c->hs->free_wbuf, IOX_BLOCK);
        if (!c->out) return NULL;
        c->wcap = IOX_BLOCK;
        c->wlen = c->wsent = c->wcommit = c->wsend_end = 0;
        if (n <= c->wcap) return c->out;
    }
    size_t want = IOX_BLOCK;
    while (want < live + n) want *= 2;
    char *g = wbuf_get(c->hs, want);
    if (!g) return NULL;
    /* Move what is owed to the front of the new buffer. A send in flight
     * still reads the old buffer: keep it as `retired` until its completion
     * (the kernel may read it until then). A buffer moved out of during
     * the same send holds only copies and is freed at once. */
    memcpy(g, c->out + c->wsent, live);
    if (c->send_inflight && !c->retired) {
        c->retired = c->out;
        c->retired_cap = c->wcap;
    } else {
        wbuf_put(c->hs, c->out, c->wcap);
    }
    c->wcommit -= c->wsent;
    c->wsend_end -= c->send_inflight ? c->wsent : c->wsend_end;
    c->wlen -= c->wsent;
    c->wsent = 0;
    c->out = g;
    c->wcap = (uint32_t)want;
    return c->out + c->wlen;
}

void iox_out_release_retired(struct iox_conn *c)
{
    if (c->retired && !c->send_inflight) {
        wbuf_put(c->hs, c->retired, c->retired_cap);
        c->retired = NULL;
    }
}

void iox_out_release(struct iox_conn *c)
{
    if (c->retired && !c->send_inflight) {
        wbuf_put(c->hs, c->retired, c->retired_cap);
        c->retired = NULL;
    }
    if (!c->out || c->wlen != c->wsent || c->send_inflight) return;
    wbuf_put(c->hs, c->out, c->wcap);
    c->out = NULL;
    c->wcap = c->wlen = c->wsent = c->wcommit = c->wsend_end = 0;
}

/* ---- side buffers (responses waiting behind an earlier one) ---- */

char *iox_side_reserve(struct iox_conn *c, struct iox_rslot *s, size_t n, size_t max)
{
    if (s->buf && s->len + n <= s->cap) return s->buf + s->len;
    size_t live = (c->out ? c->wlen - c->wsent : 0) + c->side_len;
    if (live + n > max) return NULL;
    size_t want = IOX_BLOCK;
    while (want < s->len + n) want *= 2;
    char *g = wbuf_get(c->hs, want);
    if (!g) return NULL;
    if (s->buf) {
        memcpy(g, s->buf, s->len);
        wbuf_put(c->hs, s->buf, s->cap);
    }
    s->buf = g;
    s->cap = (uint32_t)want;
    return s->buf + s->len;
}

void iox_side_free(struct iox_conn *c, struct iox_rslot *s)
{
    c->side_len -= s->len;
    s->len = s->flushed = 0;
    if (!s->buf) return;
    wbuf_put(c->hs, s->buf, s->cap);
    s->buf = NULL;
    s->cap = 0;
}

void iox_slots_release(struct iox_conn *c)
{
    if (!c->hs->rslots) return;
    for (uint16_t q = c->rq_head; q != c->rq_tail; q++) {
        if (c->hs->alog) iox_alog_abandon(c, iox_conn_slot(c, q));
        iox_side_free(c, iox_conn_slot(c, q));
    }
    c->rq_head = c->rq_tail = c->tgt = c->rq_base = 0;
    c->nasync = 0;
    c->side_len = 0;
}
