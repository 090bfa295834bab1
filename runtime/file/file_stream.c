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
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

static const struct iox_service_key streams_key = {"file streams"};
static struct iox_file_streams *streams_of(struct iox_reactor *r) { return iox_reactor_service(r, &streams_key); }
/* The connection, with its response target set to the stream's request. */
static struct iox_conn *conn_of(struct iox_file_stream *st)
{
    struct iox_conn *c = &st->hs->conns[st->idx];
    if (iox_conn_in_use(c) && c->sk.gen == st->gen) iox_conn_set_target(c, st->seq);
    return c;
}
static int conn_is_ours(struct iox_file_stream *st)
{
    struct iox_conn *c = conn_of(st);
    return iox_conn_in_use(c) && c->sk.gen == st->gen;
}

/* Make pool pipe i (closed or never made): 0 or -errno. */
static int pipe_make(struct iox_file_streams *fs, uint32_t i)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -errno;
    /* Refused (above /proc/sys/fs/pipe-max-size for a non-root user) keeps
     * the default: splices are then just smaller. */
    if (fs->pipe_size) (void)fcntl(p[1], F_SETPIPE_SZ, (int)fs->pipe_size);
    fs->pipes[i] = (struct iox_fs_pipe){p[0], p[1], 0};
    return 0;
}

/* Give the stream's pipe back. Bytes left in it (a stream that ended in
 * the middle) would go out ahead of the next stream's: such a pipe is
 * closed and made again — a rare path (the peer left, a read failed). */
static void pipe_put(struct iox_file_streams *fs, struct iox_file_stream *st)
{
    if (st->pipe < 0) return;
    uint32_t i = (uint32_t)st->pipe;
    st->pipe = -1;
    if (st->in_pipe || st->pipe_dirty) {
        close(fs->pipes[i].rfd);
        close(fs->pipes[i].wfd);
        fs->pipes[i] = (struct iox_fs_pipe){-1, -1, 1};   /* busy until made again */
        fs->n_pipe_renewed++;
        int rc = pipe_make(fs, i);
        if (rc < 0) IOX_ERROR("file stream: cannot make splice pipe %u again: %s — %u of %u pipes left (raise the open-files limit)",
                              i, strerror(-rc), fs->npipes - 1, fs->npipes);
    } else {
        fs->pipes[i].busy = 0;
    }
    st->in_pipe = 0;
    st->pipe_dirty = 0;
}

static int32_t pipe_get(struct iox_file_streams *fs)
{
    for (uint32_t i = 0; i < fs->npipes; i++)
        if (!fs->pipes[i].busy) { fs->pipes[i].busy = 1; return (int32_t)i; }
    return -1;
}

/* The stream is over: its owner hears it once, the hooks are cleared. */
static void stream_end(struct iox_file_stream *st, int err)
{
    if (!st->active) return;
    struct iox_file_streams *fs = streams_of(st->r);
    st->active = 0;
    fs->active--;
    pipe_put(fs, st);
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
    uint32_t owed = c->sk.wlen - c->sk.wsent;
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
    int spl = st->pipe >= 0;
    if (st->err) { err = st->err; what = spl ? "cannot queue splice of" : "cannot queue read of"; fs->n_errors++; }
    else if (ev && ev->res < 0) { err = ev->res; what = spl ? "splice of" : "read"; fs->n_errors++; }
    else { err = -EIO; what = "unexpected end of file (truncated since it was opened?) in"; fs->n_eof_early++; }
    /* The socket half failing with EPIPE / ECONNRESET is the peer leaving
     * mid-body, as common as a send failing: not worth an error line. */
    if (spl && (err == -EPIPE || err == -ECONNRESET))
        IOX_DEBUG("file stream: splice of %s at offset %" PRIu64 ": %s (the peer left) — closing the connection",
                  st->name ? st->name : "(file)", st->off, strerror(-err));
    else
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

/* ---- the splice path ---- */

int file_stream_act_flush_head(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    struct iox_conn *c = conn_of(st);
    iox_resp_commit_bytes(c, 0);
    iox_conn_flush(c);
    return FILE_STREAM_EV_NONE;
}

/* Queue one splice (op_begin); in: file → pipe at st->off, else pipe →
 * socket of what the pipe holds. */
static int queue_splice(struct iox_file_stream *st, int in)
{
    struct iox_file_streams *fs = streams_of(st->r);
    struct iox_conn *c = conn_of(st);
    const struct iox_fs_pipe *p = &fs->pipes[st->pipe];
    size_t n;
    int rc;
    uint64_t ud = iox_ud(IOX_OP_SPLICE, (unsigned)fs->owner, st->gen, st->idx);
    if (in) {
        uint64_t cap = st->chunk;
        n = st->left < cap ? (size_t)st->left : (size_t)cap;
        rc = iox_seam_splice(st->r->seam, st->fd, (int64_t)st->off, p->wfd, n, ud);
        /* Its bytes may land even if the stream ends before it is counted
         * (the connection goes away on this very completion). */
        if (rc == 0) st->pipe_dirty = 1;
    } else {
        n = st->in_pipe;
        rc = iox_seam_splice(st->r->seam, p->rfd, -1, c->sk.fd, n, ud);
    }
    if (rc < 0) {
        st->err = rc;
        return FILE_STREAM_EV_SPLICE_ERROR;
    }
    iox_conn_op_begin(c);
    st->asked = (uint32_t)n;
    fs->n_splices++;
    return FILE_STREAM_EV_NONE;
}

int file_stream_act_splice_in(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    st->in_pipe -= (uint32_t)ev->res;   /* 0: the pipe is empty (nothing sent yet after the head's drain) */
    st->pipe_dirty = 0;
    return queue_splice(st, 1);
}

int file_stream_act_splice_out(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    st->off += (uint64_t)ev->res;
    st->left -= (uint64_t)ev->res;
    st->in_pipe += (uint32_t)ev->res;
    return queue_splice(st, 0);
}

int file_stream_act_splice_rest(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    st->in_pipe -= (uint32_t)ev->res;
    return queue_splice(st, 0);
}

int file_stream_act_finish_splice(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    st->in_pipe -= (uint32_t)ev->res;
    st->pipe_dirty = 0;
    streams_of(st->r)->n_done++;
    stream_end(st, 0);
    return FILE_STREAM_EV_NONE;
}

/* ---- guards ---- */

int file_stream_guard_spliced(const struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    return st->pipe >= 0;
}

/* splice_out_done: the pipe is empty; the range is over when nothing is left. */
int file_stream_guard_all_spliced(const struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    return st->left == 0;
}


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
    struct iox_file_stream *st = &fs->s[c->sk.idx];
    if (st->active && st->gen == c->sk.gen) fire(st, FILE_STREAM_EV_CONN_GONE, 0);
}

/* Drain hook: everything committed has been sent. */
static void on_conn_drain(struct iox_conn *c, void *arg)
{
    struct iox_file_streams *fs = arg;
    struct iox_file_stream *st = &fs->s[c->sk.idx];
    if (st->active && st->gen == c->sk.gen) fire(st, FILE_STREAM_EV_DRAINED, 0);
}

/* Completion of a chunk read (the streams' kind). */
static void on_read_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    (void)r;
    struct iox_file_streams *fs = ctx;
    uint32_t idx = iox_ud_idx(cqe->ud);
    uint16_t gen = (uint16_t)iox_ud_gen(cqe->ud);
    struct iox_file_stream *st = fs && idx < fs->n ? &fs->s[idx] : NULL;
    unsigned op = iox_ud_op(cqe->ud);
    int splicing = st && (st->state == FILE_STREAM_S_SPLICING_IN || st->state == FILE_STREAM_S_SPLICING_OUT);
    if (!st || !st->active || st->gen != gen ||
        !(op == IOX_OP_READ ? st->state == FILE_STREAM_S_READING : op == IOX_OP_SPLICE && splicing)) {
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
    if (op == IOX_OP_SPLICE) {
        int32_t res = cqe->res;
        if (c->state == HTTP_CONN_S_CLOSING || c->state == HTTP_CONN_S_CLOSED) e = FILE_STREAM_EV_CONN_GONE;
        else if (res < 0) e = FILE_STREAM_EV_SPLICE_ERROR;
        else if ((uint32_t)res > st->asked) {   /* a broken ring; never count it */
            IOX_ERROR("file stream: splice of %u bytes returned %d", st->asked, res);
            e = FILE_STREAM_EV_SPLICE_ERROR, res = -EIO;
        } else if (st->state == FILE_STREAM_S_SPLICING_IN) {
            e = res == 0 ? FILE_STREAM_EV_SPLICE_EOF_EARLY : FILE_STREAM_EV_SPLICE_IN;
        } else if (res == 0) {   /* the socket took nothing: it is gone */
            e = FILE_STREAM_EV_SPLICE_ERROR, res = -EPIPE;
        } else {
            iox_resp_sent_direct(c, (uint64_t)res);   /* pipe → socket: the body left */
            e = (uint32_t)res < st->in_pipe ? FILE_STREAM_EV_SPLICE_OUT_SHORT : FILE_STREAM_EV_SPLICE_OUT_DONE;
        }
        int s = file_stream_fire(st, &st->state, e, &(struct iox_fstream_event){res});
        if (s == FILE_STREAM_S_DONE) iox_conn_async_done(conn_of(st));
        return;
    }
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
    /* One entry per connection slot (96 B), left as calloc made it: a slot
     * is set up (file_stream_init: -> idle) by its first stream, so the
     * table costs RSS only for slots that ever streamed, not for
     * IOX_MAX_CONNS of them (bench row memory, issue 14 §6). A zeroed entry
     * is inactive: completions and hooks for it are dropped as stale. */
    fs->s = calloc(fs->n ? fs->n : 1, sizeof *fs->s);
    if (!fs->s) { free(fs); return -ENOMEM; }
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
    for (uint32_t i = 0; i < fs->npipes; i++) {
        if (fs->pipes[i].rfd >= 0) close(fs->pipes[i].rfd);
        if (fs->pipes[i].wfd >= 0) close(fs->pipes[i].wfd);
    }
    free(fs->pipes);
    free(fs->s);
    free(fs);
}

int iox_file_streams_splice(struct iox_reactor *r, uint64_t min_len, unsigned npipes, uint32_t pipe_bytes)
{
    struct iox_file_streams *fs = streams_of(r);
    if (!fs || !min_len || !npipes || fs->pipes) return -EINVAL;
    fs->pipes = calloc(npipes, sizeof *fs->pipes);
    if (!fs->pipes) return -ENOMEM;
    fs->pipe_size = pipe_bytes;
    for (unsigned i = 0; i < npipes; i++) {
        int rc = pipe_make(fs, i);
        if (rc < 0) {
            for (unsigned j = 0; j < i; j++) { close(fs->pipes[j].rfd); close(fs->pipes[j].wfd); }
            free(fs->pipes);
            fs->pipes = NULL;
            return rc;
        }
    }
    /* A splice moves at most what the pipe holds: that is the chunk. */
    int sz = fcntl(fs->pipes[0].wfd, F_GETPIPE_SZ);
    fs->pipe_size = sz > 0 ? (uint32_t)sz : 65536;
    fs->npipes = npipes;
    fs->splice_min = min_len;
    return 0;
}

struct iox_file_streams *iox_file_streams_of(struct iox_reactor *r) { return streams_of(r); }

int iox_file_stream_start(struct iox_conn *c, int fd, uint64_t off, uint64_t len, uint32_t chunk,
                          const char *name, iox_file_stream_end_fn on_end, void *arg)
{
    struct iox_file_streams *fs = streams_of(c->r);
    struct iox_file_stream *st = &fs->s[c->sk.idx];
    if (!st->r) {       /* the slot's first stream: set it up */
        st->r = c->r;
        st->hs = fs->hs;
        st->idx = c->sk.idx;
        st->pipe = -1;
        file_stream_init(&st->state);
    }
    if (st->active) {   /* cannot happen: the close hook or the last read ends it */
        IOX_ERROR("file stream: slot %u still has a stream; dropping it", c->sk.idx);
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
    st->gen = c->sk.gen;
    st->seq = c->tgt;
    st->active = 1;
    st->in_pipe = 0;
    st->pipe_dirty = 0;
    st->pipe = fs->splice_min && len >= fs->splice_min ? pipe_get(fs) : -1;
    if (st->pipe >= 0) { st->chunk = fs->pipe_size; fs->n_spliced++; }
    else if (fs->splice_min && len >= fs->splice_min) fs->n_no_pipe++;
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
