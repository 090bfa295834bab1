/* mode_hop.c — GET / is handed to another reactor and back:
 * body "hop=<from>-><to>", produced on <to>, answered on <from>. Other
 * paths, methods, OPTIONS and CONNECT: playground_root_only.
 *
 * A hop message comes from the origin reactor's own pool, goes to the
 * target with IORING_OP_MSG_RING (with every other message of the loop
 * turn for that reactor: one MSG_RING per destination per turn), is filled
 * there and sent back the same way; only the origin touches its pool (see struct iox_msg in
 * ioxide/reactor.h for the ownership rule). With REACTORS=1 the target is the
 * reactor itself: the message still makes the round trip through the ring. */
#include "playground.h"
#include <ioxide/http_conn.h>
#include <ioxide/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HOP_REQ = IOX_MSG_APP0, HOP_REPLY = IOX_MSG_APP0 + 1 };
#define HOP_POOL 1024    /* preallocated per reactor; grows (cold) beyond */

struct hop_msg {
    struct iox_msg m;            /* first: the runtime sees this */
    struct iox_conn_ref ref;     /* the waiting connection, on the origin */
    struct hop_msg *free_next;
    uint16_t origin;
    uint8_t len;
    char body[40];
};

struct hop_reactor {
    struct hop_msg *free;
    unsigned next_target;
    struct hop_msg slab[HOP_POOL];
};

static const struct iox_service_key hop_key = {"playground hop mode"};
#define HOP(r) ((struct hop_reactor *)iox_reactor_service((r), &hop_key))

static struct hop_msg *hop_get(struct iox_reactor *r)
{
    struct hop_reactor *h = HOP(r);
    struct hop_msg *m = h->free;
    if (m) { h->free = m->free_next; return m; }
    return malloc(sizeof *m);         /* pool exhausted: cold path */
}

static void hop_put(struct iox_reactor *r, struct hop_msg *m)
{
    struct hop_reactor *h = HOP(r);
    if (m >= h->slab && m < h->slab + HOP_POOL) {
        m->free_next = h->free;
        h->free = m;
    } else {
        free(m);
    }
}

static void answer(struct iox_reactor *r, struct hop_msg *m, int status, const char *body, size_t len)
{
    struct iox_conn *c = iox_conn_deref(m->ref);
    if (c) {
        iox_resp_simple(c, status, "text/plain", body, len);
        iox_conn_async_done(c);
    }
    hop_put(r, m);
}

/* On the target: produce the body, send it home. */
static void on_hop_req(struct iox_reactor *r, struct iox_msg *msg)
{
    struct hop_msg *m = (struct hop_msg *)msg;
    if (msg->status < 0) {               /* bounced: we are the origin */
        answer(r, m, 503, "hop target unavailable\n", 23);
        return;
    }
    int n = snprintf(m->body, sizeof m->body, "hop=%u->%u", m->origin, r->id);
    m->len = (uint8_t)n;
    m->m.kind = HOP_REPLY;
    iox_reactor_send_msg(r, m->origin, &m->m);
}

/* Back on the origin: answer the waiting connection. */
static void on_hop_reply(struct iox_reactor *r, struct iox_msg *msg)
{
    struct hop_msg *m = (struct hop_msg *)msg;
    if (msg->status < 0) {
        /* The origin's ring is gone (it cannot happen while the server
         * runs: reactors leave together). The message belongs to the
         * origin's pool, which only the origin may touch: leave it. */
        IOX_ERROR("hop reply to reactor %u lost: %d", m->origin, msg->status);
        return;
    }
    answer(r, m, 200, m->body, m->len);
}

static int hop_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    if (playground_root_only(c, req)) return IOX_HANDLED;
    struct iox_reactor *r = c->r;
    struct hop_msg *m = hop_get(r);
    if (!m) {
        iox_resp_simple(c, 503, "text/plain", "out of memory\n", 14);
        return IOX_HANDLED;
    }
    struct hop_reactor *h = HOP(r);
    unsigned to = r->id;
    if (r->nreactors > 1) {
        /* Round robin over the others. */
        to = h->next_target++ % (r->nreactors - 1);
        if (to >= r->id) to++;
    }
    m->m.kind = HOP_REQ;
    m->ref = iox_conn_ref(c);
    m->origin = (uint16_t)r->id;
    iox_reactor_send_msg(r, to, &m->m);
    return IOX_ASYNC;
}

static const struct iox_http_app hop_app = { hop_request };

static int hop_start(struct iox_reactor *r, void *ctx)
{
    (void)ctx;
    struct hop_reactor *h = calloc(1, sizeof *h);
    if (!h) return -1;
    for (unsigned i = 0; i < HOP_POOL; i++) {
        h->slab[i].free_next = h->free;
        h->free = &h->slab[i];
    }
    if (iox_reactor_set_service(r, &hop_key, h) < 0 || iox_reactor_on_msg(r, HOP_REQ, on_hop_req) < 0 ||
        iox_reactor_on_msg(r, HOP_REPLY, on_hop_reply) < 0) {
        iox_reactor_set_service(r, &hop_key, NULL);
        free(h);
        return -1;
    }
    return 0;
}

static void hop_stop(struct iox_reactor *r, void *ctx)
{
    (void)ctx;
    free(HOP(r));
    iox_reactor_set_service(r, &hop_key, NULL);
}

int playground_hop(struct iox_server_config *cfg, struct iox_http_config *http)
{
    http->app = &hop_app;
    cfg->on_start = hop_start;
    cfg->on_stop = hop_stop;
    return 0;
}
