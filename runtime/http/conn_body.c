/* conn_body.c — request bodies handed to their handlers (ioxide/http_conn.h,
 * "Reading a request body").
 *
 * A handler takes its request's body in on_request; from then on the parse
 * loop (conn_actions.c, process) hands each piece to c->body instead of
 * dropping it. Where the connection goes meanwhile — paused while output is
 * over the cap (throttled), while the handler holds a piece (body_held),
 * drained once the handler has finished (guard body_abandoned) — is the
 * machine's (spec/machines/http_conn.toml); this file only moves bytes and
 * calls the handler. */
#include "conn_buffers.h"
#include "conn_internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The request may be open still (its handler has not finished). */
static struct iox_rslot *open_slot(struct iox_conn *c, uint16_t seq)
{
    if ((uint16_t)(seq - c->rq_head) >= (uint16_t)(c->rq_tail - c->rq_head)) return NULL;
    struct iox_rslot *s = iox_conn_slot(c, seq);
    return s->seq == seq ? s : NULL;
}

/* Nothing of the target request's answer is written yet. */
static int nothing_written(const struct iox_conn *c, const struct iox_rslot *s)
{
    if (c->tgt == c->rq_head) return c->sk.wlen == c->sk.wcommit;
    return s->len == 0;
}

/* Common checks: inside on_request for the request being dispatched, its
 * body not taken yet. */
static struct iox_rslot *dispatching(struct iox_conn *c)
{
    if (c->hs->in_request != c || c->body) return NULL;
    if (c->tgt != (uint16_t)(c->rq_tail - 1)) return NULL;
    return open_slot(c, c->tgt);
}

/* The body is taken: a pending 100-continue is honoured now. */
static void claim(struct iox_conn *c, struct iox_rslot *s)
{
    if (!s->skip_body) return;
    s->skip_body = 0;
    if (nothing_written(c, s)) {
        s->keep_alive = c->req_keep_alive = s->ka_req;
        iox_resp_interim_continue(c);
    }
    /* else the head already said Connection: close; and no 100 can come
     * after a head. The client sends its body anyway (after its own wait):
     * it is read, and the connection closes after the answer. */
    else c->close_after = 1;
}

/* Body states come from the server's free list (first use mallocs): a warm
 * reactor streams request bodies without malloc. Each free one's first
 * word links the list. */
static struct iox_body *body_new(struct iox_conn *c, uint16_t seq)
{
    struct iox_body *b = c->hs->free_body;
    if (b) c->hs->free_body = *(void **)b;
    else b = malloc(sizeof *b);
    if (!b) return NULL;
    memset(b, 0, sizeof *b);
    b->seq = seq;
    c->body = b;
    return b;
}

static void body_free(struct iox_http_server *hs, struct iox_body *b)
{
    free(b->buf);
    free(b->held);
    *(void **)b = hs->free_body;
    hs->free_body = b;
}

int iox_req_body_stream(struct iox_conn *c, const struct iox_http_request *req, iox_body_fn fn, void *arg)
{
    struct iox_rslot *s = dispatching(c);
    if (!s || !fn) return -EINVAL;
    if (req->body_kind == IOX_HTTP_BODY_NONE) {
        fn(c, NULL, 0, IOX_BODY_END, arg);
        return 0;
    }
    struct iox_body *b = body_new(c, s->seq);
    if (!b) return -ENOMEM;
    b->fn = fn;
    b->arg = arg;
    s->body_done = 1;   /* the answer may leave while the body arrives */
    claim(c, s);
    return 0;
}

int iox_req_body_read(struct iox_conn *c, const struct iox_http_request *req, size_t limit,
                      iox_body_whole_fn fn, void *arg)
{
    struct iox_rslot *s = dispatching(c);
    if (!s || !fn) return -EINVAL;
    if (req->body_kind == IOX_HTTP_BODY_NONE) {
        fn(c, NULL, 0, IOX_BODY_END, arg);
        return 0;
    }
    if (req->body_kind == IOX_HTTP_BODY_LENGTH && req->content_length > limit) {
        /* Refused before a byte is read (and before any 100): 413, and the
         * body is skipped, which closes the connection. */
        s->skip_body = 1;
        s->keep_alive = c->req_keep_alive = 0;
        fn(c, NULL, 0, IOX_HTTP_E_BODY_TOO_LARGE, arg);
        iox_conn_set_target(c, s->seq);
        static const char msg[] = "request body too large\n";
        iox_resp_simple(c, 413, "text/plain", msg, sizeof msg - 1);
        s->awaiting = 0;   /* answered: a handle taken meanwhile goes stale */
        return 0;
    }
    struct iox_body *b = body_new(c, s->seq);
    if (!b) return -ENOMEM;
    b->whole = fn;
    b->whole_arg = arg;
    b->limit = limit;
    claim(c, s);   /* the answer still waits for the whole body */
    return 0;
}

int iox_body_piece(struct iox_conn *c, struct iox_body *b, const char *data, size_t len)
{
    struct iox_rslot *s = open_slot(c, b->seq);
    if (!s || !s->awaiting) return IOX_BODY_OK;   /* finished early: drained */
    if (b->whole) {
        if (len > b->limit - b->len) return IOX_BODY_OVER;
        if (b->len + len > b->cap) {
            size_t want = b->cap ? b->cap : 4096;
            while (want < b->len + len) want *= 2;
            if (want > b->limit && b->len + len <= b->limit) want = b->limit;
            char *g = realloc(b->buf, want);
            if (!g) return IOX_BODY_OVER;
            b->buf = g;
            b->cap = want;
        }
        memcpy(b->buf + b->len, data, len);
        b->len += len;
        return IOX_BODY_OK;
    }
    iox_conn_set_target(c, b->seq);
    return b->fn(c, data, len, IOX_BODY_PIECE, b->arg) == IOX_BODY_HOLD ? IOX_BODY_HOLD : IOX_BODY_OK;
}

void iox_body_end(struct iox_conn *c)
{
    struct iox_body *b = c->body;
    if (!b) return;
    c->body = NULL;
    struct iox_rslot *s = open_slot(c, b->seq);
    if (s && s->awaiting) {
        iox_conn_set_target(c, b->seq);
        if (b->whole) b->whole(c, b->len ? b->buf : NULL, b->len, IOX_BODY_END, b->whole_arg);
        else b->fn(c, NULL, 0, IOX_BODY_END, b->arg);
    }
    body_free(c->hs, b);
}

void iox_body_abort(struct iox_conn *c, int status)
{
    struct iox_body *b = c->body;
    if (!b) return;
    c->body = NULL;
    struct iox_rslot *s = open_slot(c, b->seq);
    if (s && s->awaiting) {
        iox_conn_set_target(c, b->seq);
        if (b->whole) b->whole(c, NULL, 0, status, b->whole_arg);
        else b->fn(c, NULL, 0, status, b->arg);
    }
    body_free(c->hs, b);
}

void iox_body_detach(struct iox_conn *c)
{
    struct iox_body *b = c->body;
    if (!b) return;
    c->body = NULL;
    body_free(c->hs, b);
}

void iox_req_body_release(struct iox_conn *c)
{
    if (!c->body || !c->body->held || iox_conn_closing(c)) return;
    iox_conn_fire(c, HTTP_CONN_EV_RELEASE, NULL);
}

void iox_req_set_user(struct iox_conn *c, void *user)
{
    struct iox_rslot *s = open_slot(c, c->tgt);
    if (s) s->user = user;
}

void *iox_req_user(const struct iox_conn *c)
{
    struct iox_rslot *s = open_slot((struct iox_conn *)c, c->tgt);
    return s ? s->user : NULL;
}
