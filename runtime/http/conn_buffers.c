/* conn_buffers.c — the side buffers of responses waiting behind an earlier
 * one. They come from the stream core's free lists (stream_core.c), like
 * the carry and the write buffer, so a warm reactor serves without malloc. */
#include "conn_buffers.h"
#include "access_log.h"
#include "conn_internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- side buffers (responses waiting behind an earlier one) ---- */

char *iox_side_reserve(struct iox_conn *c, struct iox_rslot *s, size_t n, size_t max)
{
    if (s->buf && s->len + n <= s->cap) return s->buf + s->len;
    size_t live = iox_sock_owed(&c->sk) + c->side_len;
    if (live + n > max) return NULL;
    size_t want = IOX_BLOCK;
    while (want < s->len + n) want *= 2;
    char *g = iox_sock_block_get(&c->hs->sh, want);
    if (!g) return NULL;
    if (s->buf) {
        memcpy(g, s->buf, s->len);
        iox_sock_block_put(&c->hs->sh, s->buf, s->cap);
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
    iox_sock_block_put(&c->hs->sh, s->buf, s->cap);
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
