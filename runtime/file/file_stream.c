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
#include <sys/mman.h>
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

/* Give the stream's registered chunk back. A SEND_ZC still in flight (the
 * stream was cancelled before its notification) keeps the chunk the
 * kernel's: it is orphaned, and freed by that send's last CQE. */
static void chunk_put(struct iox_file_streams *fs, struct iox_file_stream *st)
{
    if (st->zc_chunk < 0) return;
    struct iox_fs_chunk *ck = &fs->chunks[st->zc_chunk];
    st->zc_chunk = -1;
    if (st->zc_live) { ck->orphan = 1; fs->n_zc_orphaned++; }
    else ck->busy = 0;
    st->zc_live = 0;
}

static int32_t chunk_get(struct iox_file_streams *fs, const struct iox_file_stream *st)
{
    for (uint32_t i = 0; i < fs->nchunks; i++)
        if (!fs->chunks[i].busy) {
            fs->chunks[i] = (struct iox_fs_chunk){st->idx, st->gen, 1, 0};
            return (int32_t)i;
        }
    return -1;
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
    chunk_put(fs, st);
    /* One line per stream, after its pipe and chunk are back: a test
     * (file_splice) waits for these before it starts streams that must
     * find a free pipe — the connection's fd can be gone from the table
     * while a cancelled splice still holds the pipe. */
    IOX_DEBUG("file stream: ended (%s), its pipe and chunk back", err ? strerror(-err) : "done");
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
    int spl = st->pipe >= 0 || st->zc_chunk >= 0;
    if (st->zc_err) { err = st->zc_err; what = "zero-copy send of"; fs->n_errors++; }
    else if (st->err) { err = st->err; what = spl ? "cannot queue splice of" : "cannot queue read of"; fs->n_errors++; }
    else if (ev && ev->res < 0) { err = ev->res; what = spl ? "splice of" : "read"; fs->n_errors++; }
    else { err = -EIO; what = "unexpected end of file (truncated since it was opened?) in"; fs->n_eof_early++; }
    /* The socket half failing with EPIPE / ECONNRESET is the peer leaving
     * mid-body, as common as a send failing: not worth an error line. */
    if (spl && (err == -EPIPE || err == -ECONNRESET))
        IOX_DEBUG("file stream: sending %s at offset %" PRIu64 ": %s (the peer left) — closing the connection",
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

/* ---- the zero-copy path: READ_FIXED into a registered chunk, SEND_ZC ---- */

static char *chunk_mem(const struct iox_file_streams *fs, int32_t k) { return fs->zc_mem + (size_t)k * fs->chunk_size; }

int file_stream_act_zc_read(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    struct iox_file_streams *fs = streams_of(st->r);
    size_t n = st->left < fs->chunk_size ? (size_t)st->left : fs->chunk_size;
    int rc = iox_seam_read_fixed(st->r->seam, st->fd, chunk_mem(fs, st->zc_chunk), n, st->off, (unsigned)st->zc_chunk,
                                 iox_ud(IOX_OP_READ_FIXED, (unsigned)fs->owner, st->gen, (uint32_t)st->zc_chunk));
    if (rc < 0) {
        st->err = rc;
        return FILE_STREAM_EV_READ_ERROR;
    }
    iox_conn_op_begin(conn_of(st));
    st->asked = (uint32_t)n;
    fs->n_zc_reads++;
    return FILE_STREAM_EV_NONE;
}

/* After a read (ev->res > 0: the chunk now holds those bytes) or a
 * notification (res 0: the rest of a short send). */
int file_stream_act_zc_send(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    struct iox_file_streams *fs = streams_of(st->r);
    struct iox_conn *c = conn_of(st);
    if (ev->res > 0) {
        st->off += (uint64_t)ev->res;
        st->left -= (uint64_t)ev->res;
        st->zc_have = (uint32_t)ev->res;
        st->zc_pos = 0;
    }
    int rc = iox_seam_send_zc(st->r->seam, c->sk.fd, chunk_mem(fs, st->zc_chunk) + st->zc_pos, st->zc_have,
                              (unsigned)st->zc_chunk, iox_ud(IOX_OP_SEND_ZC, (unsigned)fs->owner, st->gen, (uint32_t)st->zc_chunk));
    if (rc < 0) {
        st->err = rc;
        return FILE_STREAM_EV_ZC_SEND_ERROR;
    }
    /* Ended by the send's last CQE (the notification): the socket's close
     * waits for it, so the chunk is never the kernel's after the stream. */
    iox_conn_op_begin(c);
    st->zc_live = 1;
    st->asked = st->zc_have;
    fs->n_zc_sends++;
    return FILE_STREAM_EV_NONE;
}

int file_stream_act_zc_count(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    uint32_t n = (uint32_t)ev->res;
    if (n < st->zc_have) streams_of(st->r)->n_zc_short++;
    st->zc_pos += n;
    st->zc_have -= n;
    iox_resp_sent_direct(conn_of(st), n);   /* the body left without the write buffer */
    return FILE_STREAM_EV_NONE;
}

int file_stream_act_zc_count_notified(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    file_stream_act_zc_count(st, ev);
    return FILE_STREAM_EV_ZC_NOTIF;
}

int file_stream_act_zc_note_error(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    st->zc_err = ev->res < 0 ? ev->res : -EPIPE;
    return FILE_STREAM_EV_NONE;
}

int file_stream_act_zc_note_error_notified(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    file_stream_act_zc_note_error(st, ev);
    return FILE_STREAM_EV_ZC_NOTIF;
}

/* The chunk is free (its notification is in): back to the pool; what a
 * short send left of it goes back to the range (the chunk held the file's
 * bytes [off - zc_have, off)), and the rest of the range goes by splice
 * through the pipe the guard to_splice saw free. */
int file_stream_act_zc_to_splice(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    struct iox_file_streams *fs = streams_of(st->r);
    st->off -= st->zc_have;
    st->left += st->zc_have;
    st->zc_have = st->zc_pos = 0;
    chunk_put(fs, st);
    st->pipe = pipe_get(fs);
    if (st->pipe < 0) {   /* cannot happen: the guard saw one free this turn */
        st->err = -EBUSY;
        return FILE_STREAM_EV_SPLICE_ERROR;
    }
    st->chunk = fs->pipe_size;
    st->in_pipe = 0;
    fs->n_zc_to_splice++;
    if (!fs->zc_copied_logged) {
        fs->zc_copied_logged = 1;
        IOX_INFO("file stream: the kernel copied zero-copy sends of %s (a local receiver, or a device without "
                 "scatter-gather): such streams go on by splice (logged once per reactor; counted on the stop line)",
                 st->name);
    }
    return file_stream_act_splice_in(st, ev);
}

int file_stream_guard_to_splice(const struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    const struct iox_file_streams *fs = streams_of(st->r);
    if (fs->zc_copied_keep || !fs->splice_min) return 0;
    for (uint32_t i = 0; i < fs->npipes; i++)
        if (!fs->pipes[i].busy) return 1;
    return 0;
}

int file_stream_act_finish_zc(struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    streams_of(st->r)->n_done++;
    stream_end(st, 0);
    return FILE_STREAM_EV_NONE;
}

int file_stream_guard_zc(const struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    return st->zc_chunk >= 0;
}

int file_stream_guard_zc_rest(const struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    return st->zc_have > 0;
}

int file_stream_guard_all_sent(const struct iox_file_stream *st, const struct iox_fstream_event *ev)
{
    (void)ev;
    return st->zc_have == 0 && st->left == 0;
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
static int conn_closing(const struct iox_conn *c)
{
    return c->state == HTTP_CONN_S_CLOSING || c->state == HTTP_CONN_S_CLOSED;
}

/* A READ_FIXED or SEND_ZC completion: user_data names the chunk. A SEND_ZC
 * completes twice (result with IOX_CQE_F_MORE, then the notification); its
 * op (op_begin) ends with the last of the two, and only then is the chunk
 * free. The classification into events is here; what follows from them
 * is the machine's. */
static void on_zc_cqe(struct iox_file_streams *fs, const struct iox_cqe *cqe)
{
    uint32_t k = iox_ud_idx(cqe->ud);
    uint16_t gen = (uint16_t)iox_ud_gen(cqe->ud);
    unsigned op = iox_ud_op(cqe->ud);
    int notif = op == IOX_OP_SEND_ZC && (cqe->flags & IOX_CQE_F_NOTIF);
    struct iox_fs_chunk *ck = k < fs->nchunks ? &fs->chunks[k] : NULL;
    if (ck && ck->busy && ck->orphan && ck->gen == gen && op == IOX_OP_SEND_ZC) {
        /* Its stream was cancelled with this send in flight. */
        if (notif || !(cqe->flags & IOX_CQE_F_MORE)) {
            ck->busy = ck->orphan = 0;
            struct iox_conn *c = &fs->hs->conns[ck->slot];
            if (iox_conn_in_use(c) && c->sk.gen == gen) iox_conn_op_end(c);
        }
        return;
    }
    struct iox_file_stream *st = ck && ck->busy && ck->slot < fs->n ? &fs->s[ck->slot] : NULL;
    int want = !st ? 0 : op == IOX_OP_READ_FIXED ? st->state == FILE_STREAM_S_ZC_READING
                       : st->state == FILE_STREAM_S_ZC_SENDING || st->state == FILE_STREAM_S_ZC_NOTIF_FIRST ||
                         (notif && (st->state == FILE_STREAM_S_ZC_NOTIF_WAIT || st->state == FILE_STREAM_S_ZC_FAILING));
    if (!st || !st->active || st->gen != gen || st->zc_chunk != (int32_t)k || !want) {
        fs->n_stale++;
        IOX_ERROR("file stream: completion for no stream (chunk %u, op %u, res %d, flags %#x)", k, op, cqe->res, cqe->flags);
        return;
    }
    struct iox_conn *c = &fs->hs->conns[ck->slot];
    if (!conn_is_ours(st)) {   /* cannot happen: the close waits for op_end */
        IOX_ERROR("file stream: slot %u: connection gone with an op in flight", ck->slot);
        fire(st, FILE_STREAM_EV_CONN_GONE, 0);
        return;
    }
    int e;
    int32_t res = cqe->res;
    if (op == IOX_OP_READ_FIXED) {
        iox_conn_op_end(c);   /* may release the connection (close hook: conn_gone) */
        if (!st->active || st->gen != gen) return;
        if (conn_closing(c)) e = FILE_STREAM_EV_CONN_GONE;
        else if (res < 0) e = FILE_STREAM_EV_READ_ERROR;
        else if (res == 0) e = FILE_STREAM_EV_READ_EOF_EARLY;
        else if ((uint32_t)res < st->asked) e = FILE_STREAM_EV_READ_SHORT, fs->n_short++;
        else if ((uint32_t)res == st->asked) e = FILE_STREAM_EV_READ_DONE;
        else {
            IOX_ERROR("file stream: fixed read of %u bytes returned %d", st->asked, res);
            e = FILE_STREAM_EV_READ_ERROR, res = -EIO;
        }
    } else {
        int first = st->state == FILE_STREAM_S_ZC_SENDING;   /* neither CQE in yet */
        int last = notif ? !first : !(cqe->flags & IOX_CQE_F_MORE) || !first;
        if (notif && first) fs->n_notif_first++;
        if (last) {
            st->zc_live = 0;
            iox_conn_op_end(c);
            if (!st->active || st->gen != gen) return;
        }
        if (notif) {
            /* With usage reports (the seam's zc_report) res carries
             * IOX_NOTIF_ZC_COPIED when the kernel copied the bytes. */
            int copied = st->r->seam->zc_report && ((uint32_t)res & IOX_NOTIF_ZC_COPIED);
            if (copied) {
                fs->n_zc_copied++;
                if (!fs->zc_copied_keep) fs->zc_skip = IOX_ZC_COPIED_SKIP;
            }
            e = last && conn_closing(c) ? FILE_STREAM_EV_CONN_GONE
                : copied ? FILE_STREAM_EV_ZC_NOTIF_COPIED : FILE_STREAM_EV_ZC_NOTIF;
            res = 0;
        } else if (last && conn_closing(c)) {
            e = FILE_STREAM_EV_CONN_GONE;
        } else if (!(cqe->flags & IOX_CQE_F_MORE) && first) {
            e = FILE_STREAM_EV_ZC_SEND_ERROR;   /* no notification follows */
            if (res >= 0) res = -EIO;
        } else if (res > 0 && (uint32_t)res <= st->asked && !conn_closing(c)) {
            e = FILE_STREAM_EV_ZC_SENT;
        } else {
            if (res > 0 && (uint32_t)res > st->asked)
                IOX_ERROR("file stream: zero-copy send of %u bytes returned %d", st->asked, res);
            e = FILE_STREAM_EV_ZC_SEND_FAILED;   /* the notification follows: then abort */
            if (res >= 0) res = -EPIPE;
        }
    }
    int s = file_stream_fire(st, &st->state, e, &(struct iox_fstream_event){res});
    if (s == FILE_STREAM_S_DONE) iox_conn_async_done(conn_of(st));
}

static void on_read_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    (void)r;
    struct iox_file_streams *fs = ctx;
    if (fs && (iox_ud_op(cqe->ud) == IOX_OP_READ_FIXED || iox_ud_op(cqe->ud) == IOX_OP_SEND_ZC)) {
        on_zc_cqe(fs, cqe);
        return;
    }
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
    /* The ring (destroyed after on_stop) unregisters the buffers; the
     * kernel holds its own page references until then. */
    if (fs->zc_mem) munmap(fs->zc_mem, (size_t)fs->nchunks * fs->chunk_size);
    free(fs->chunks);
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

int iox_file_streams_zc(struct iox_reactor *r, uint64_t min_len, unsigned nchunks, uint32_t chunk_bytes)
{
    struct iox_file_streams *fs = streams_of(r);
    if (!fs || !min_len || !nchunks || !chunk_bytes || fs->chunks) return -EINVAL;
    size_t bytes = (size_t)nchunks * chunk_bytes;
    fs->chunks = calloc(nchunks, sizeof *fs->chunks);
    void *mem = fs->chunks ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
    if (mem == MAP_FAILED) { free(fs->chunks); fs->chunks = NULL; return -ENOMEM; }
    struct iovec *iov = calloc(nchunks, sizeof *iov);
    int rc = -ENOMEM;
    if (iov) {
        for (unsigned i = 0; i < nchunks; i++) iov[i] = (struct iovec){(char *)mem + (size_t)i * chunk_bytes, chunk_bytes};
        rc = iox_seam_register_buffers(r->seam, iov, nchunks);
        free(iov);
    }
    if (rc < 0) {
        munmap(mem, bytes);
        free(fs->chunks);
        fs->chunks = NULL;
        return rc;
    }
    fs->zc_mem = mem;
    fs->nchunks = nchunks;
    fs->chunk_size = chunk_bytes;
    fs->zc_min = min_len;
    return 0;
}

struct iox_file_streams *iox_file_streams_of(struct iox_reactor *r) { return streams_of(r); }

int iox_file_streams_zc_copied(struct iox_reactor *r, int keep)
{
    struct iox_file_streams *fs = streams_of(r);
    if (!fs) return -EINVAL;
    fs->zc_copied_keep = keep ? 1 : 0;
    return 0;
}

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
        st->zc_chunk = -1;
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
    st->zc_have = st->zc_pos = 0;
    st->zc_err = 0;
    st->zc_live = 0;
    /* After a copy report (and unless the owner keeps zero-copy) the
     * reactor's next ZC_COPIED_SKIP zero-copy-sized streams do not try:
     * bytes already sent zero-copy when the report comes cannot be taken
     * back, and on loopback those are what a small receive window crawls
     * on; then one stream tries again (the peers may have changed). */
    int skip = 0;
    if (fs->zc_min && len >= fs->zc_min && fs->zc_skip) { fs->zc_skip--; fs->n_zc_skipped++; skip = 1; }
    st->zc_chunk = fs->zc_min && len >= fs->zc_min && !skip ? chunk_get(fs, st) : -1;
    if (st->zc_chunk >= 0) fs->n_zc++;
    else if (fs->zc_min && len >= fs->zc_min && !skip) fs->n_no_chunk++;
    st->pipe = st->zc_chunk < 0 && fs->splice_min && len >= fs->splice_min ? pipe_get(fs) : -1;
    if (st->pipe >= 0) { st->chunk = fs->pipe_size; fs->n_spliced++; }
    else if (st->zc_chunk < 0 && fs->splice_min && len >= fs->splice_min) fs->n_no_pipe++;
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
