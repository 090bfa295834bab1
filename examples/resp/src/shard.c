/* shard.c — where a command runs. Keys belong to one reactor each
 * (resp_owner: hash of the key mod reactors). A command on this reactor's
 * keys runs at once and its reply is a plain stream write; one on another
 * reactor's key takes a reply slot (so later answers wait behind it) and
 * hops there in a ring message carrying its arguments; the owner runs it
 * into the message's reply buffer and sends it home, where the reply slot
 * is written and ended. Multi-key commands split per owner and gather;
 * DBSIZE and FLUSHALL visit every reactor.
 *
 * Order: a connection's commands on one key run in the order sent, since
 * this reactor's part always runs synchronously and the messages to one
 * reactor leave in order. (A message that finds the target's CQ full is
 * resent on the next turn and may then be overtaken by a later one: see
 * the README's limits.)
 *
 * Memory: every block is allocated and freed by the reactor that owns it,
 * so no allocator arena is shared between threads. Messages and gathers
 * come from the origin's pools and go back to them; the target only reads
 * the request and writes the reply into the message's buffer, never
 * growing it. A reply bigger than that buffer is built in the target's own
 * scratch, copied into a block the target allocates (struct big_reply) and
 * sent home with the message; the origin copies it into the message's
 * buffer (growing it on its own thread, kept for the next hop) and sends
 * the block back to its owner in a ring message of its own, where it is
 * freed. */
#include "server.h"
#include <errno.h>
#include <ioxide/log.h>
#include <stdlib.h>
#include <string.h>

enum { MSG_HOP = IOX_MSG_APP0, MSG_HOP_BACK = IOX_MSG_APP0 + 1, MSG_BIG_FREE = IOX_MSG_APP0 + 2 };

/* The reply buffer a new hop starts with: most replies fit. HOP_REP_FIT is
 * how much of a buffer of capacity cap a reply may use (all of it; the
 * simulation shrinks it so most of its replies take the big path). */
#define HOP_REP_CAP 1024u
#ifndef HOP_REP_FIT
#define HOP_REP_FIT(cap) (cap)
#endif

/* A reply too big for its hop's buffer, owned by the reactor that made it. */
struct big_reply {
    struct iox_msg m;            /* first: it travels home to be freed */
    uint16_t owner;
    int oom;
    size_t len;
    char data[];
};

struct hop {
    struct iox_msg m;            /* first: what the ring carries */
    struct hop *free_next;
    struct gather *g;            /* a part of a gathered command, else NULL */
    struct iox_stream_ref ref;   /* single: the stream waiting, and its slot */
    int reply_id;
    uint16_t origin, target;
    uint8_t cmd;
    int failed;                  /* the target was unreachable */
    uint32_t argc;
    long long count;             /* part(): its count */
    struct big_reply *big;       /* the reply, when the target's did not fit in rep */
    struct rbuf req;             /* argc times: u32 length, bytes */
    struct rbuf rep;             /* the reply (single) or the part's values */
};

struct gather {
    struct gather *free_next;
    struct iox_stream_ref ref;
    int reply_id;                /* -1: every part ran here, no slot taken */
    uint8_t cmd;
    int failed;
    unsigned pending;
    long long sum;
    unsigned nkeys;
    struct rbuf owners;          /* MGET: one byte per key, its reactor */
    struct rbuf local;           /* this reactor's part's values */
    struct hop **parts;          /* nreactors: the part that went to each */
    size_t *cur;                 /* nreactors: MGET's read position in each part */
};

static struct hop *hop_get(struct resp_server *rs)
{
    struct hop *h = rs->free_hops;
    if (h) rs->free_hops = h->free_next;
    else {
        h = calloc(1, sizeof *h);   /* the pool grows to the most hops in flight */
        /* The target writes replies into rep without growing it. */
        if (h && !rb_room(&h->rep, HOP_REP_CAP)) { free(h); h = NULL; }
    }
    if (!h) return NULL;
    h->big = NULL;
    h->g = NULL;
    h->failed = 0;
    h->count = 0;
    h->argc = 0;
    rb_reset(&h->req);
    rb_reset(&h->rep);
    return h;
}

static void hop_put(struct resp_server *rs, struct hop *h)
{
    h->free_next = rs->free_hops;
    rs->free_hops = h;
}

static struct gather *gather_get(struct resp_server *rs)
{
    struct gather *g = rs->free_gathers;
    if (g) rs->free_gathers = g->free_next;
    else {
        g = calloc(1, sizeof *g);
        if (!g) return NULL;
        g->parts = calloc(rs->db.nreactors, sizeof *g->parts);
        g->cur = calloc(rs->db.nreactors, sizeof *g->cur);
        if (!g->parts || !g->cur) { free(g->parts); free(g->cur); free(g); return NULL; }
    }
    g->failed = 0;
    g->pending = 0;
    g->sum = 0;
    g->reply_id = -1;
    rb_reset(&g->owners);
    rb_reset(&g->local);
    memset(g->parts, 0, rs->db.nreactors * sizeof *g->parts);
    memset(g->cur, 0, rs->db.nreactors * sizeof *g->cur);
    return g;
}

static void gather_put(struct resp_server *rs, struct gather *g)
{
    for (unsigned i = 0; i < rs->db.nreactors; i++)
        if (g->parts[i]) { hop_put(rs, g->parts[i]); g->parts[i] = NULL; }
    g->free_next = rs->free_gathers;
    rs->free_gathers = g;
}

static void enc_arg(struct rbuf *b, const struct resp_arg *a)
{
    uint32_t l = (uint32_t)a->len;
    rb_raw(b, &l, sizeof l);
    rb_raw(b, a->p, a->len);
}

/* The hop's arguments as resp_args into rs->dargv. -1: out of memory. */
static int decode(struct resp_server *rs, const struct hop *h)
{
    if (h->argc > rs->dcap) {
        struct resp_arg *a = realloc(rs->dargv, h->argc * sizeof *a);
        if (!a) return -1;
        rs->dargv = a;
        rs->dcap = h->argc;
    }
    const char *p = h->req.p;
    for (uint32_t i = 0; i < h->argc; i++) {
        uint32_t l;
        memcpy(&l, p, sizeof l);
        rs->dargv[i].p = p + sizeof l;
        rs->dargv[i].len = l;
        p += sizeof l + l;
    }
    return 0;
}

/* Write a finished reply for stream ref / reply id (or plain, id < 0, to s). */
static void answer_slot(struct iox_stream_ref ref, int id, const struct rbuf *b)
{
    struct iox_stream *s = iox_stream_deref(ref);
    if (!s) return;                          /* the client is gone */
    if (b->oom) iox_stream_reply_write(s, id, "-ERR out of memory\r\n", 20);
    else iox_stream_reply_write(s, id, b->p, b->len);
    iox_stream_reply_end(s, id);
}

static void write_plain(struct iox_stream *s, const struct rbuf *b)
{
    if (b->oom) iox_stream_write(s, "-ERR out of memory\r\n", 20);
    else iox_stream_write(s, b->p, b->len);
}

/* ---- the gathered answer ------------------------------------------------------ */

static void gather_finish(struct resp_server *rs, struct gather *g, struct iox_stream *s)
{
    const struct resp_cmd *c = resp_cmd_at(g->cmd);
    struct rbuf *out = &rs->out;
    rb_reset(out);
    if (g->failed) {
        rb_error(out, "ERR a reactor owning some of the keys is unavailable");
    } else if (c->id == CMD_MGET) {
        /* Each part holds its keys' values in key order: take them in the
         * request's key order. */
        rb_array(out, g->nkeys);
        for (unsigned i = 0; i < g->nkeys; i++) {
            unsigned o = (uint8_t)g->owners.p[i];
            const struct rbuf *src = o == rs->db.reactor ? &g->local : &g->parts[o]->rep;
            long l = resp_reply_len(src->p + g->cur[o], src->len - g->cur[o]);
            if (l <= 0) { rb_reset(out); rb_error(out, "ERR internal: short MGET part"); break; }
            rb_raw(out, src->p + g->cur[o], (size_t)l);
            g->cur[o] += (size_t)l;
        }
    } else {
        if (g->local.oom) out->oom = 1;
        c->done(g->sum, out);
    }
    if (g->reply_id < 0) write_plain(s, out);
    else answer_slot(g->ref, g->reply_id, out);
    gather_put(rs, g);
}

/* One part of g for reactor o, with the args at argv[i] for each i where
 * pick(i) names o. */
static int send_part(struct resp_server *rs, struct gather *g, unsigned o, const struct resp_arg *args,
                     unsigned nargs)
{
    struct hop *h = hop_get(rs);
    if (!h) return -1;
    h->g = g;
    h->cmd = g->cmd;
    h->origin = (uint16_t)rs->db.reactor;
    h->target = (uint16_t)o;
    h->argc = nargs;
    for (unsigned i = 0; i < nargs; i++) enc_arg(&h->req, &args[i]);
    if (h->req.oom) { hop_put(rs, h); return -1; }
    g->parts[o] = h;
    g->pending++;
    h->m.kind = MSG_HOP;
    rs->hops_out++;
    iox_reactor_send_msg(rs->r, o, &h->m);
    return 0;
}

static int dispatch_gathered(struct resp_server *rs, struct iox_stream *s, const struct resp_cmd *c,
                             const struct resp_arg *argv, unsigned argc)
{
    unsigned n = rs->db.nreactors, me = rs->db.reactor;
    unsigned width = c->route == ROUTE_PAIRS ? 2 : 1;
    unsigned nkeys = c->route == ROUTE_ALL ? 0 : (argc - 1) / width;
    /* Does any part leave this reactor? Then take the reply slot first:
     * without one nothing may run yet. */
    int remote = 0;
    if (c->route == ROUTE_ALL) remote = n > 1;
    else
        for (unsigned k = 0; k < nkeys && !remote; k++)
            remote = resp_owner(argv[1 + k * width].p, argv[1 + k * width].len, n) != me;
    int id = -1;
    if (remote) {
        id = iox_stream_reply_begin(s);
        if (id == -ENOSPC) return -ENOSPC;
        if (id < 0) return 0;                 /* closing: nobody to answer */
    }
    struct gather *g = gather_get(rs);
    if (!g) {
        if (id >= 0) {
            iox_stream_reply_write(s, id, "-ERR out of memory\r\n", 20);
            iox_stream_reply_end(s, id);
        } else {
            iox_stream_write(s, "-ERR out of memory\r\n", 20);
        }
        return 0;
    }
    g->cmd = (uint8_t)resp_cmd_index(c);
    g->reply_id = id;
    g->ref = iox_stream_ref(s);
    g->nkeys = nkeys;
    if (c->route == ROUTE_ALL) {
        g->sum += c->part(&rs->db, NULL, 0, &g->local);
        for (unsigned o = 0; o < n; o++)
            if (o != me && send_part(rs, g, o, NULL, 0) < 0) g->failed = 1;
    } else {
        char *own = rb_room(&g->owners, nkeys);
        if (!own) g->failed = 1;
        else {
            g->owners.len = nkeys;
            for (unsigned k = 0; k < nkeys; k++)
                own[k] = (char)resp_owner(argv[1 + k * width].p, argv[1 + k * width].len, n);
        }
        /* This reactor's share now, in the request's order; then one
         * message per other owner with its share. The parser's argv is
         * reused as the list of one owner's arguments: gathered in a
         * scratch array (dargv) instead, as the parser's is being read. */
        if (!g->failed && nkeys * width > rs->dcap) {
            struct resp_arg *a = realloc(rs->dargv, nkeys * width * sizeof *a);
            if (a) { rs->dargv = a; rs->dcap = nkeys * width; }
            else g->failed = 1;
        }
        for (unsigned o = 0; o < n && !g->failed; o++) {
            unsigned m = 0;
            for (unsigned k = 0; k < nkeys; k++)
                if ((unsigned)(uint8_t)g->owners.p[k] == o)
                    for (unsigned w = 0; w < width; w++) rs->dargv[m++] = argv[1 + k * width + w];
            if (!m) continue;
            if (o == me) g->sum += c->part(&rs->db, rs->dargv, m, &g->local);
            else if (send_part(rs, g, o, rs->dargv, m) < 0) g->failed = 1;
        }
    }
    /* Every part ran here (or every send failed): answer now. */
    if (g->pending == 0) gather_finish(rs, g, s);
    return 0;
}

/* ---- a single-key command on another reactor --------------------------------- */

static int dispatch_hop(struct resp_server *rs, struct iox_stream *s, const struct resp_cmd *c,
                        const struct resp_arg *argv, unsigned argc, unsigned owner)
{
    int id = iox_stream_reply_begin(s);
    if (id == -ENOSPC) return -ENOSPC;
    if (id < 0) return 0;
    struct hop *h = hop_get(rs);
    if (h) {
        h->cmd = (uint8_t)resp_cmd_index(c);
        h->ref = iox_stream_ref(s);
        h->reply_id = id;
        h->origin = (uint16_t)rs->db.reactor;
        h->target = (uint16_t)owner;
        h->argc = argc;
        for (unsigned i = 0; i < argc; i++) enc_arg(&h->req, &argv[i]);
    }
    if (!h || h->req.oom) {
        if (h) hop_put(rs, h);
        iox_stream_reply_write(s, id, "-ERR out of memory\r\n", 20);
        iox_stream_reply_end(s, id);
        return 0;
    }
    h->m.kind = MSG_HOP;
    rs->hops_out++;
    iox_reactor_send_msg(rs->r, owner, &h->m);
    return 0;
}

int resp_dispatch(struct resp_server *rs, struct iox_stream *s, const struct resp_arg *argv, unsigned argc)
{
    struct rbuf *out = &rs->out;
    rb_reset(out);
    const struct resp_cmd *c = resp_cmd_find(argv[0].p, argv[0].len);
    if (!c) {
        resp_cmd_unknown(argv, argc, out);
        write_plain(s, out);
        return 0;
    }
    if (resp_cmd_check(c, argv, argc, out) < 0) {
        write_plain(s, out);
        return 0;
    }
    switch (c->route) {
    case ROUTE_QUIT:
        return 1;
    case ROUTE_HERE:
        c->run(&rs->db, argv, argc, out);
        write_plain(s, out);
        return 0;
    case ROUTE_KEY: {
        unsigned o = resp_owner(argv[1].p, argv[1].len, rs->db.nreactors);
        if (o != rs->db.reactor) return dispatch_hop(rs, s, c, argv, argc, o);
        c->run(&rs->db, argv, argc, out);
        write_plain(s, out);
        return 0;
    }
    default:
        return dispatch_gathered(rs, s, c, argv, argc);
    }
}

/* ---- messages ------------------------------------------------------------------- */

/* On the owner: run it, send the reply home. Bounced (status < 0): we are
 * the origin and the target was unreachable. */
static void on_hop(struct iox_reactor *r, struct iox_msg *msg)
{
    struct hop *h = (struct hop *)msg;
    struct resp_server *rs = resp_server_of(r);
    if (msg->status < 0) {
        h->failed = 1;
        msg->status = 0;
        /* Answer for it here, on the origin. */
        if (h->g) {
            struct gather *g = h->g;
            g->failed = 1;
            if (--g->pending == 0) gather_finish(rs, g, NULL);
        } else {
            rb_reset(&h->rep);
            rb_error(&h->rep, "ERR the reactor owning this key is unavailable");
            answer_slot(h->ref, h->reply_id, &h->rep);
            hop_put(rs, h);
        }
        return;
    }
    rs->hops_in++;
    const struct resp_cmd *c = resp_cmd_at(h->cmd);
    /* Built in this reactor's own buffer: the message's belongs to the origin. */
    struct rbuf *out = &rs->hop_out;
    rb_reset(out);
    if (decode(rs, h) < 0) out->oom = 1;
    else if (h->g) h->count = c->part(&rs->db, rs->dargv, h->argc, out);
    else c->run(&rs->db, rs->dargv, h->argc, out);
    rb_reset(&h->rep);
    h->big = NULL;
    if (out->len <= HOP_REP_FIT(h->rep.cap)) {
        if (out->len) memcpy(h->rep.p, out->p, out->len);
        h->rep.len = out->len;
        h->rep.oom = out->oom;
    } else {
        struct big_reply *b = malloc(sizeof *b + out->len);
        if (!b) {
            h->rep.oom = 1;
        } else {
            memset(&b->m, 0, sizeof b->m);
            b->owner = (uint16_t)r->id;
            b->oom = out->oom;
            b->len = out->len;
            memcpy(b->data, out->p, out->len);
            h->big = b;
            rs->big_out++;
        }
    }
    h->m.kind = MSG_HOP_BACK;
    iox_reactor_send_msg(r, h->origin, &h->m);
}

/* Back on the origin. */
static void on_hop_back(struct iox_reactor *r, struct iox_msg *msg)
{
    struct hop *h = (struct hop *)msg;
    if (msg->status < 0) {
        /* The origin's ring is gone; only the origin may touch its pool. */
        IOX_ERROR("resp: hop reply to reactor %u lost: %d", h->origin, msg->status);
        return;
    }
    struct resp_server *rs = resp_server_of(r);
    if (h->big) {
        /* Into our own buffer (grown here), then the block goes home. */
        struct big_reply *b = h->big;
        h->big = NULL;
        rb_reset(&h->rep);
        rb_raw(&h->rep, b->data, b->len);
        if (b->oom) h->rep.oom = 1;
        b->m.kind = MSG_BIG_FREE;
        iox_reactor_send_msg(r, b->owner, &b->m);
    }
    if (!h->g) {
        answer_slot(h->ref, h->reply_id, &h->rep);
        hop_put(rs, h);
        return;
    }
    struct gather *g = h->g;
    g->sum += h->count;
    if (h->rep.oom) g->failed = 1;
    if (--g->pending == 0) gather_finish(rs, g, NULL);
}

/* A big reply's block is home: its owner frees it. Bounced (the owner's
 * ring is gone, only while stopping): freed here, the one exception. */
static void on_big_free(struct iox_reactor *r, struct iox_msg *msg)
{
    struct big_reply *b = (struct big_reply *)msg;
    if (msg->status == 0 && b->owner != r->id) {
        IOX_ERROR("resp: reply block of reactor %u freed on reactor %u — a bug; aborting", b->owner, r->id);
        abort();
    }
    if (msg->status == 0) resp_server_of(r)->big_back++;
    free(b);
}

int resp_shard_start(struct resp_server *rs)
{
    if (iox_reactor_on_msg(rs->r, MSG_HOP, on_hop) < 0 || iox_reactor_on_msg(rs->r, MSG_HOP_BACK, on_hop_back) < 0 ||
        iox_reactor_on_msg(rs->r, MSG_BIG_FREE, on_big_free) < 0)
        return -1;
    return 0;
}

static void free_hops(struct hop *h)
{
    while (h) {
        struct hop *n = h->free_next;
        rb_free(&h->req);
        rb_free(&h->rep);
        free(h);
        h = n;
    }
}

void resp_shard_stop(struct resp_server *rs)
{
    free_hops(rs->free_hops);
    rs->free_hops = NULL;
    struct gather *g = rs->free_gathers;
    while (g) {
        struct gather *n = g->free_next;
        rb_free(&g->owners);
        rb_free(&g->local);
        free(g->parts);
        free(g->cur);
        free(g);
        g = n;
    }
    rs->free_gathers = NULL;
    free(rs->dargv);
    rs->dargv = NULL;
    rb_free(&rs->hop_out);
    if (rs->big_out != rs->big_back)
        IOX_ERROR("resp: reactor %u: %llu of %llu big reply blocks did not come home", rs->r->id,
                  (unsigned long long)(rs->big_out - rs->big_back), (unsigned long long)rs->big_out);
    else if (rs->big_out)
        IOX_DEBUG("resp: reactor %u: %llu big replies, every block freed here", rs->r->id,
                  (unsigned long long)rs->big_out);
}
