/* file_stream.c — the actions and guards of the file_stream machine
 * (spec/machines/file_stream.toml) and the glue that turns read
 * completions and connection hooks into its events. API and model:
 * ioxide/file_stream.h. The state is written only by file_stream_fire() and
 * the [reuse] functions file_stream_init() / file_stream_reset().
 *
 * Why the reserved space stays valid while a read is in flight: the read
 * goes to [wlen, wlen+n) of the write buffer, reserved (iox_resp_reserve)
 * but not counted until it completes. The runtime only rewinds or frees a
 * write buffer when everything counted has been sent (wsent == wlen), which
 * cannot happen meanwhile — for the first chunk the uncommitted head is
 * counted ahead of it, and later chunks are read only from the drain hook,
 * when no send is in flight and none starts until the commit. The socket's
 * close waits for the read (iox_conn_op_begin), so the buffer is not freed
 * under it either.
 *
 * Op accounting (op_begin in issue_read, op_end in the completion handler
 * before the event is fired) and the connection's resume after the last
 * chunk (iox_conn_async_done, which may parse a pipelined request that
 * starts the next stream on this very slot) happen outside the machine:
 * an instance is never fired from inside one of its own actions. */
#include <ioxide/file_stream.h>
#include "conn_internal.h"
#include "file_stream_machine.h"
#include "http_conn_machine.h"
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const struct iox_service_key streams_key = {"file streams"};
static struct iox_file_streams *streams_of(struct iox_reactor *r) { return iox_reactor_service(r, &streams_key); }
/* The connection, with its response target set to the stream's request. */
static struct iox_conn *conn_of(struct iox_file_stream *st)
{
    struct iox_conn *c = &st->hs->conns[st->idx];
    if (iox_conn_in_use(c) && c->gen == st->gen) iox_conn_set_target(c, st->seq);
    return c;
}
static int conn_is_ours(struct iox_file_stream *st)
{
    struct iox_conn *c = conn_of(st);
    return iox_conn_in_use(c) && c->gen == st->gen;
}

/* The stream is over: its owner hears it once, the hooks are cleared. */
static void stream_end(struct iox_file_stream *st, int err)
{
    if (!st->active) return;
    struct iox_file_streams *fs = streams_of(st->r);
    st->active = 0;
    fs->active--;
    if (conn_is_ours(st)) {
        struct iox_conn *c = conn_of(st);
        iox_conn_set_close_hook(c, NULL, NULL);
        iox_conn_set_drain_hook(c, NULL, NULL);
    }
    iox_file_stream_end_fn fn = st->on_end;
    void *arg = st->arg;
    st->on_end = NULL;
    st->arg = NULL;
    if (fn) fn(st->r, arg, err);
}

/* ---- actions ---- */

int file_stream_act_issue_read(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    struct iox_conn *c = conn_of(st);
    uint32_t owed = c->wlen - c->wsent;
    uint64_t room = st->chunk > owed + 4096 ? st->chunk - owed : st->chunk;
    size_t n = st->left < room ? (size_t)st->left : (size_t)room;
    char *p = iox_resp_reserve(c, n);
    int rc = p ? iox_seam_read(st->r->seam, st->fd, p, n, st->off,
                               iox_ud(IOX_OP_READ, (unsigned)streams_of(st->r)->owner, st->gen, st->idx))
               : -ENOBUFS;
    if (rc < 0) {
        st->err = rc;
        return FILE_STREAM_EV_READ_ERROR;
    }
    iox_conn_op_begin(c);
    st->asked = (uint32_t)n;
    streams_of(st->r)->n_reads++;
    return FILE_STREAM_EV_NONE;
}

static void commit_bytes(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    struct iox_conn *c = conn_of(st);
    iox_resp_commit_bytes(c, (size_t)ev->res);
    st->off += (uint64_t)ev->res;
    st->left -= (uint64_t)ev->res;
    iox_conn_flush(c);
}

/* A short read counts what arrived; the rest is read after it is sent. */
int file_stream_act_commit(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    commit_bytes(st, ev);
    return FILE_STREAM_EV_NONE;
}

/* The last chunk (guard last_chunk). The connection resumes in the
 * completion handler, after the machine returns (a pipelined request may
 * start the next stream on this slot). */
int file_stream_act_finish(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    commit_bytes(st, ev);
    streams_of(st->r)->n_done++;
    stream_end(st, 0);
    return FILE_STREAM_EV_NONE;
}

int file_stream_act_abort(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    struct iox_file_streams *fs = streams_of(st->r);
    const char *what;
    int err;
    if (st->err) { err = st->err; what = "cannot queue read of"; fs->n_errors++; }
    else if (ev && ev->res < 0) { err = ev->res; what = "read"; fs->n_errors++; }
    else { err = -EIO; what = "unexpected end of file (truncated since it was opened?) in"; fs->n_eof_early++; }
    IOX_ERROR("file stream: %s %s at offset %" PRIu64 ": %s — closing the connection",
              what, st->name ? st->name : "(file)", st->off, strerror(-err));
    struct iox_conn *c = conn_of(st);
    int ours = conn_is_ours(st);
    stream_end(st, err);
    if (ours) iox_conn_abort(c);
    return FILE_STREAM_EV_NONE;
}

int file_stream_act_release(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    streams_of(st->r)->n_gone++;
    stream_end(st, -EPIPE);
    return FILE_STREAM_EV_NONE;
}

int file_stream_act_cancel(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    stream_end(st, -ECANCELED);
    return FILE_STREAM_EV_NONE;
}

/* ---- guards ---- */

/* Asked on start only, from iox_file_stream_start: the connection's target
 * is the stream's request (st->seq = c->tgt), so "is it the oldest
 * outstanding one" is iox_conn_is_oldest. The drain hook runs only for the
 * oldest, so a drained idle stream needs no such question. */
int file_stream_guard_behind(const struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    return !iox_conn_is_oldest(&st->hs->conns[st->idx]);
}

/* read_done: the read returned all it asked for; it was the last when it
 * asked for everything left (asked = min(left, room)). */
int file_stream_guard_last_chunk(const struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    return ev->res > 0 && (uint64_t)ev->res == st->left;
}

/* ---- events from the connection and the ring ---- */

static void fire(struct iox_file_stream *st, int event, int32_t res)
{
    struct iox_fstream_event ev = {res};
    file_stream_fire(st, &st->state, event, &ev);
}

/* Close hook: the connection is released (every op on it ended). */
static void on_conn_close(struct iox_conn *c, void *arg)
{
    struct iox_file_streams *fs = arg;
    struct iox_file_stream *st = &fs->s[c->idx];
    if (st->active && st->gen == c->gen) fire(st, FILE_STREAM_EV_CONN_GONE, 0);
}

/* Drain hook: everything committed has been sent. */
static void on_conn_drain(struct iox_conn *c, void *arg)
{
    struct iox_file_streams *fs = arg;
    struct iox_file_stream *st = &fs->s[c->idx];
    if (st->active && st->gen == c->gen) fire(st, FILE_STREAM_EV_DRAINED, 0);
}

/* Completion of a chunk read (the streams' kind). */
static void on_read_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    (void)r;
    struct iox_file_streams *fs = ctx;
    uint32_t idx = iox_ud_idx(cqe->ud);
    uint16_t gen = (uint16_t)iox_ud_gen(cqe->ud);
    struct iox_file_stream *st = fs && idx < fs->n ? &fs->s[idx] : NULL;
    if (!st || iox_ud_op(cqe->ud) != IOX_OP_READ || !st->active || st->gen != gen ||
        st->state != FILE_STREAM_S_READING) {
        if (fs) fs->n_stale++;
        IOX_ERROR("file stream: completion for no stream (slot %u, op %u, res %d)", idx,
                  iox_ud_op(cqe->ud), cqe->res);
        return;
    }
    struct iox_conn *c = &fs->hs->conns[idx];
    if (!conn_is_ours(st)) {   /* cannot happen: the close waits for op_end */
        IOX_ERROR("file stream: slot %u: connection gone with a read in flight", idx);
        fire(st, FILE_STREAM_EV_CONN_GONE, 0);
        return;
    }
    /* First: may close and release the connection (close hook: conn_gone). */
    iox_conn_op_end(c);
    if (!st->active || st->gen != gen) return;
    int e;
    if (c->state == HTTP_CONN_S_CLOSING || c->state == HTTP_CONN_S_CLOSED) e = FILE_STREAM_EV_CONN_GONE;
    else if (cqe->res < 0) e = FILE_STREAM_EV_READ_ERROR;
    else if (cqe->res == 0) e = FILE_STREAM_EV_READ_EOF_EARLY;
    else if ((uint32_t)cqe->res < st->asked) e = FILE_STREAM_EV_READ_SHORT, fs->n_short++;
    else if ((uint32_t)cqe->res == st->asked) e = FILE_STREAM_EV_READ_DONE;
    else {   /* more than asked: a broken ring; never count it */
        IOX_ERROR("file stream: read of %u bytes returned %d", st->asked, cqe->res);
        e = FILE_STREAM_EV_READ_ERROR;
    }
    int s = file_stream_fire(st, &st->state, e, &(struct iox_fstream_event){e == FILE_STREAM_EV_READ_ERROR && cqe->res >= 0 ? -EIO : cqe->res});
    if (s == FILE_STREAM_S_DONE) iox_conn_async_done(conn_of(st));   /* clears the drain hook, resumes */
}

/* ---- API ---- */

static const struct iox_kind streams_kind = {.name = "file streams", .on_cqe = on_read_cqe};

int iox_file_streams_init(struct iox_http_server *hs)
{
    struct iox_reactor *r = hs->r;
    struct iox_file_streams *fs = calloc(1, sizeof *fs);
    if (!fs) return -ENOMEM;
    fs->hs = hs;
    fs->n = hs->max_conns;
    fs->s = calloc(fs->n ? fs->n : 1, sizeof *fs->s);
    if (!fs->s) { free(fs); return -ENOMEM; }
    for (uint32_t i = 0; i < fs->n; i++) {
        fs->s[i].r = r;
        fs->s[i].hs = hs;
        fs->s[i].idx = i;
        file_stream_init(&fs->s[i].state);
    }
    fs->owner = iox_reactor_register_kind(r, &streams_kind, fs);
    if (fs->owner < 0 || iox_reactor_set_service(r, &streams_key, fs) < 0) {
        if (fs->owner >= 0) iox_reactor_unregister_kind(r, fs->owner);
        free(fs->s);
        free(fs);
        return -ENOMEM;
    }
    return 0;
}

void iox_file_streams_fini(struct iox_reactor *r)
{
    struct iox_file_streams *fs = streams_of(r);
    if (!fs) return;
    for (uint32_t i = 0; fs->active && i < fs->n; i++)
        if (fs->s[i].active) fire(&fs->s[i], FILE_STREAM_EV_CANCEL, 0);   /* -> cancelled */
    iox_reactor_unregister_kind(r, fs->owner);
    iox_reactor_set_service(r, &streams_key, NULL);
    free(fs->s);
    free(fs);
}

struct iox_file_streams *iox_file_streams_of(struct iox_reactor *r) { return streams_of(r); }

int iox_file_stream_start(struct iox_conn *c, int fd, uint64_t off, uint64_t len, uint32_t chunk,
                          const char *name, iox_file_stream_end_fn on_end, void *arg)
{
    struct iox_file_streams *fs = streams_of(c->r);
    struct iox_file_stream *st = &fs->s[c->idx];
    if (st->active) {   /* cannot happen: the close hook or the last read ends it */
        IOX_ERROR("file stream: slot %u still has a stream; dropping it", c->idx);
        fire(st, FILE_STREAM_EV_CANCEL, 0);   /* -> cancelled */
    }
    if (!len) {         /* nothing to read: done before it starts */
        if (on_end) on_end(c->r, arg, 0);
        return IOX_HANDLED;
    }
    st->name = name;
    st->on_end = on_end;
    st->arg = arg;
    st->fd = fd;
    st->off = off;
    st->left = len;
    st->chunk = chunk ? chunk : 65536;
    st->asked = 0;
    st->err = 0;
    st->gen = c->gen;
    st->seq = c->tgt;
    st->active = 1;
    file_stream_reset(&st->state);   /* from idle or the last stream's final state */
    fs->active++;
    fs->n_started++;
    iox_conn_set_close_hook(c, on_conn_close, fs);
    iox_conn_set_drain_hook(c, on_conn_drain, fs);
    /* Behind an earlier outstanding answer the write buffer is not ours
     * yet: start is ignored (guard behind) and the first read waits for
     * the drain hook (idle → reading). */
    fire(st, FILE_STREAM_EV_START, 0);
    return st->state == FILE_STREAM_S_FAILED ? IOX_HANDLED : IOX_ASYNC;   /* failed: no read queued */
}
