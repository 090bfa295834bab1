/* logfile.c — a reactor's append-only log file on its ring (see
 * ioxide/logfile.h). Two buffers: `cur` takes new lines, the other one is
 * the write in flight. The op books (a write in flight, its progress) are
 * data the completion keeps; there is no state to branch on besides them. */
#include <ioxide/logfile.h>
#include <ioxide/log.h>
#include <ioxide/seam.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lbuf {
    char *p;
    size_t len;
    uint64_t lines;
};

struct iox_logfile {
    struct iox_reactor *r;
    char *path;
    int fd;
    int old_fd;            /* the file before a reopen, closed when its write ends (-1) */
    int owner;
    size_t cap;
    struct lbuf b[2];
    unsigned cur;          /* the buffer taking lines */
    uint8_t writing;       /* b[!cur] is being written */
    uint8_t failing;       /* the last write failed: the next success says so */
    size_t wdone;          /* bytes of b[!cur] written so far */
    uint64_t streak_dropped;
    struct iox_logfile_stats st;
};

static void drop_lines(struct iox_logfile *lf, uint64_t n)
{
    lf->st.dropped += n;
    lf->streak_dropped += n;
}

/* Write the rest of b[!cur]. When the SQ is full the buffer stays pending
 * (b[!cur].len > 0, nothing in flight) and the next turn's flush retries. */
static void submit(struct iox_logfile *lf)
{
    struct lbuf *w = &lf->b[!lf->cur];
    int rc = iox_seam_write(lf->r->seam, lf->fd, w->p + lf->wdone, w->len - lf->wdone, (uint64_t)-1,
                            iox_ud(IOX_OP_WRITE, (unsigned)lf->owner, 0, 0));
    lf->writing = rc == 0;
}

/* End of the loop turn: one write of what this and earlier turns buffered
 * (or the rest of a write the SQ had no room for). */
static void lf_flush(struct iox_reactor *r, void *ctx)
{
    (void)r;
    struct iox_logfile *lf = ctx;
    if (lf->writing) return;
    if (!lf->b[!lf->cur].len) {
        if (!lf->b[lf->cur].len) return;
        lf->cur = !lf->cur;
        lf->wdone = 0;
    }
    submit(lf);
}

static void write_done(struct iox_logfile *lf, int res)
{
    struct lbuf *w = &lf->b[!lf->cur];
    if (res < 0 || (res == 0 && w->len > lf->wdone)) {
        int err = res < 0 ? -res : ENOSPC;   /* 0 bytes taken: the file is full */
        lf->st.write_errors++;
        drop_lines(lf, w->lines);
        if (!lf->failing)
            IOX_ERROR("log file %s: write failed: %s — its lines are dropped (counted) until writes succeed "
                      "again; free space or fix the file, nothing else waits for it",
                      lf->path, strerror(err));
        lf->failing = 1;
    } else {
        lf->wdone += (size_t)res;
        if (lf->wdone < w->len) {   /* short write: the rest, at once (or next turn) */
            submit(lf);
            return;
        }
        lf->st.lines += w->lines;
        lf->st.bytes += w->len;
        if (lf->failing) {
            IOX_WARN("log file %s: writing again (%llu lines were dropped)", lf->path,
                     (unsigned long long)lf->streak_dropped);
            lf->failing = 0;
            lf->streak_dropped = 0;
        }
    }
    w->len = 0;
    w->lines = 0;
    lf->wdone = 0;
    lf->writing = 0;
    if (lf->old_fd >= 0) {   /* a reopen waited for this write */
        close(lf->old_fd);
        lf->old_fd = -1;
    }
}

static void lf_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    (void)r;
    struct iox_logfile *lf = ctx;
    if (iox_ud_op(cqe->ud) == IOX_OP_WRITE && lf->writing) write_done(lf, cqe->res);
}

static unsigned lf_busy(struct iox_reactor *r, void *ctx)
{
    (void)r;
    struct iox_logfile *lf = ctx;
    return lf->writing || lf->b[0].len || lf->b[1].len;
}

/* SIGHUP: logrotate moved the file away (its postrotate sends the signal). */
static void lf_hup(struct iox_reactor *r, void *ctx)
{
    (void)r;
    iox_logfile_reopen(ctx);
}

/* Every log file of the reactor under one set of names (the registry sums
 * entries of one name). */
static unsigned lf_counters(struct iox_reactor *r, void *ctx, struct iox_counter *out, unsigned max)
{
    (void)r;
    struct iox_logfile *lf = ctx;
    const struct iox_counter c[] = {
        {"ioxide_log_lines_total", "Lines written to log files (the access log).", 0, lf->st.lines},
        {"ioxide_log_dropped_total", "Log lines dropped: buffers full, or the file refused the write.", 0, lf->st.dropped},
        {"ioxide_log_write_errors_total", "Log file writes that failed (a full disk, EIO).", 0, lf->st.write_errors},
    };
    unsigned n = 0;
    for (; n < max && n < sizeof c / sizeof c[0]; n++) out[n] = c[n];
    return n;
}

static const struct iox_kind logfile_kind = {
    .name = "logfile", .on_cqe = lf_cqe, .on_flush = lf_flush, .busy = lf_busy, .on_hup = lf_hup,
    .counters = lf_counters,
};

static int open_fd(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int iox_logfile_open(struct iox_reactor *r, const char *path, size_t buf_size,
                     struct iox_logfile **out, char *why, size_t why_len)
{
    if (!buf_size) buf_size = 64 * 1024;
    int rc = -ENOMEM;
    struct iox_logfile *lf = calloc(1, sizeof *lf);
    if (!lf || !(lf->path = strdup(path)) || !(lf->b[0].p = malloc(buf_size)) || !(lf->b[1].p = malloc(buf_size))) {
        snprintf(why, why_len, "%s: out of memory for the log buffers", path);
        goto fail;
    }
    lf->r = r;
    lf->cap = buf_size;
    lf->old_fd = -1;
    lf->fd = open_fd(path);
    if (lf->fd < 0) {
        rc = lf->fd;
        snprintf(why, why_len, "%s: cannot open for appending: %s — create the directory or fix its permissions",
                 path, strerror(-rc));
        goto fail;
    }
    lf->owner = iox_reactor_register_kind(r, &logfile_kind, lf);
    if (lf->owner < 0) {
        rc = lf->owner;
        snprintf(why, why_len, "%s: cannot register the log writer: %s", path, strerror(-rc));
        close(lf->fd);
        goto fail;
    }
    *out = lf;
    return 0;
fail:
    if (lf) { free(lf->b[0].p); free(lf->b[1].p); free(lf->path); }
    free(lf);
    return rc;
}

char *iox_logfile_reserve(struct iox_logfile *lf, size_t n)
{
    struct lbuf *b = &lf->b[lf->cur];
    if (n > lf->cap) n = lf->cap;
    if (b->len + n > lf->cap) {
        drop_lines(lf, 1);
        return NULL;
    }
    return b->p + b->len;
}

void iox_logfile_commit(struct iox_logfile *lf, size_t n)
{
    struct lbuf *b = &lf->b[lf->cur];
    b->len += n;
    b->lines++;
}

int iox_logfile_reopen(struct iox_logfile *lf)
{
    int fd = open_fd(lf->path);
    if (fd < 0) {
        IOX_ERROR("log file %s: reopen failed: %s — still writing to the old file", lf->path, strerror(-fd));
        return fd;
    }
    if (lf->writing) {
        if (lf->old_fd >= 0) close(lf->old_fd);   /* two reopens within one write: the middle file is done */
        lf->old_fd = lf->fd;
    } else {
        close(lf->fd);
    }
    lf->fd = fd;
    lf->st.reopens++;
    return 0;
}

void iox_logfile_close(struct iox_logfile *lf)
{
    if (!lf) return;
    /* The loop has ended: what is buffered goes out with plain writes, the
     * one in flight (if the loop ended under it) first. */
    for (unsigned k = 0; k < 2; k++) {
        struct lbuf *b = &lf->b[k == 0 ? !lf->cur : lf->cur];
        size_t off = k == 0 ? lf->wdone : 0;
        while (off < b->len) {
            ssize_t w = write(lf->fd, b->p + off, b->len - off);
            if (w <= 0) { if (w < 0 && errno == EINTR) continue; drop_lines(lf, b->lines); break; }
            off += (size_t)w;
        }
        if (off >= b->len) { lf->st.lines += b->lines; lf->st.bytes += b->len; }
    }
    if (lf->r && lf->owner >= 0) iox_reactor_unregister_kind(lf->r, lf->owner);
    if (lf->old_fd >= 0) close(lf->old_fd);
    close(lf->fd);
    free(lf->b[0].p);
    free(lf->b[1].p);
    free(lf->path);
    free(lf);
}

struct iox_logfile_stats iox_logfile_stats(const struct iox_logfile *lf)
{
    return lf->st;
}

const char *iox_logfile_path(const struct iox_logfile *lf)
{
    return lf->path;
}
