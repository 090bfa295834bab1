/* mode_file.c — file mode: serve FILE_ROOT from an immutable snapshot.
 *
 * GET and HEAD; OPTIONS on a file → 200 with Allow, OPTIONS * as in every
 * mode; other methods (CONNECT too) → 405 with Allow. Paths are decoded and
 * normalized by url_path.c (anything climbing above the root, NUL, %2F,
 * '\\', bad escapes or bad UTF-8 → 400) and looked up in the snapshot's
 * hash table; "/dir/" serves dir/index.html, "/dir" redirects (301) to
 * "/dir/" when that exists.
 * Conditionals (If-None-Match, else If-Modified-Since → 304) apply to every
 * file, and so does a single byte range of a GET (206 / 416; If-Range
 * honoured; a HEAD ignores Range).
 *
 * Small files are baked: the answer is the precomputed head fields plus one
 * memcpy of the body into the write buffer. Large files are streamed from
 * the fd opened at snapshot time: one positional read on the ring per chunk
 * (FILE_CHUNK, default 64 KiB) into the connection's write buffer, the next
 * read only when that chunk has been sent (drain hook), so a connection never
 * holds more than one chunk however big the file and however slow the peer.
 * The streaming itself is the runtime's file stream (ioxide/file_stream.h: the
 * generated machine file_stream, actions in runtime/file/file_stream.c).
 *
 * SIGHUP builds a new snapshot on the main thread and publishes it; each
 * reactor switches at its next request (or at once on IOX_MSG_HUP) and
 * streams already running finish from the snapshot they started on
 * (file_snapshot.h, docs/file-mode.md). */
#include "file_snapshot.h"
#include "http_cond.h"
#include "http_conn_machine.h"
#include <ioxide/http_conn.h>
#include <ioxide/file_stream.h>
#include <ioxide/log.h>
#include <ioxide/ud.h>
#include "playground.h"
#include "url_path.h"
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The playground's per-reactor file state: a reactor service. */
static const struct iox_service_key file_reactor_key = {"playground file mode"};
#define FILE_REACTOR(r) ((struct file_reactor *)iox_reactor_service((r), &file_reactor_key))
#define FILE_MAX_PATH (IOX_HTTP_DEFAULT_MAX_TARGET + 64)

struct file_reactor {
    struct fs_view view;
    char path[FILE_MAX_PATH];      /* normalized request path */
    char hdr[512];                 /* per-response extra header lines */
};

static struct {
    struct fs_options opt;
    uint32_t chunk;
    uint64_t splice_min;  /* FILE_SPLICE_MIN: ranges this large go by splice (0: never) */
    unsigned splice_pipes;  /* FILE_SPLICE_PIPES: pipes per reactor */
    uint32_t pipe_size;  /* FILE_PIPE_SIZE: bytes per pipe (F_SETPIPE_SZ) */
    int zc;              /* FILE_SEND=zc: READ_FIXED + SEND_ZC first, splice for streams finding no chunk */
    int zc_keep;         /* FILE_ZC_COPIED=keep: streams whose sends the kernel copied stay zero-copy */
    atomic_int zc_said;  /* the "copy reports" startup line is printed once */
    unsigned zc_chunks;  /* FILE_ZC_CHUNKS: registered chunks per reactor */
    uint32_t zc_chunk;   /* FILE_ZC_CHUNK: bytes per chunk */
    atomic_int zc_warned;   /* the "no zero-copy" line is printed once, not once per reactor */
    uint64_t generation;
    struct fs_snapshot *latest;    /* main thread only */
} app;

/* ---- responses ---- */

static int text(struct iox_conn *c, int status, const char *msg)
{
    return iox_resp_simple(c, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* Head and, for GET, body bytes [first, first+len) of a baked file. Room for
 * both is reserved first so the buffer grows at most once. */
static int send_baked(struct iox_conn *c, int status, const struct fs_entry *e,
                      const char *extra, uint64_t first, uint64_t len)
{
    int head = c->req_head;
    if (!iox_resp_reserve(c, 512 + strlen(extra) + (head ? 0 : len))) return -ENOBUFS;
    int rc = iox_resp_head(c, status, e->ctype, len, extra);
    if (rc == 0 && !head && len) rc = iox_resp_write(c, e->body + first, len);
    return rc;
}

/* ---- streaming ---- */

/* Large files go through the runtime's file stream (runtime/file/file_stream.c,
 * the generated machine file_stream): positional reads on the ring into the
 * write buffer, one chunk at a time. The stream holds the snapshot it
 * started from (fs_view_stream_begin) until it ends, whichever way. */
static void stream_ended(struct iox_reactor *r, void *arg, int err)
{
    (void)err;   /* read failures are logged by the stream */
    struct file_reactor *fr = FILE_REACTOR(r);
    fs_view_stream_end(&fr->view, arg);
}

static int start_stream(struct file_reactor *fr, struct iox_conn *c, struct fs_snapshot *snap,
                        const struct fs_entry *e, uint64_t first, uint64_t len)
{
    fs_view_stream_begin(&fr->view, snap);
    return iox_file_stream_start(c, e->fd, first, len, app.chunk, e->path, stream_ended, snap);
}

/* ---- request handling ---- */

static int not_modified(const struct iox_http_request *req, const struct fs_entry *e)
{
    const char *v;
    uint32_t vl;
    if (iox_http_header_find(req, "If-None-Match", &v, &vl))
        return iox_http_etag_match(v, vl, e->etag, e->etag_len);
    int64_t t;
    if (iox_http_header_find(req, "If-Modified-Since", &v, &vl) && iox_http_date_parse(v, vl, &t) == 0)
        return e->mtime <= t;
    return 0;
}

/* If-Range (RFC 9110 §13.1.5): the range applies only if the validator is
 * our strong ETag or exactly our Last-Modified date. */
static int if_range_ok(const struct iox_http_request *req, const struct fs_entry *e)
{
    const char *v;
    uint32_t vl;
    if (!iox_http_header_find(req, "If-Range", &v, &vl)) return 1;
    if (vl == e->etag_len && memcmp(v, e->etag, vl) == 0) return 1;
    return vl == strlen(e->last_modified) && memcmp(v, e->last_modified, vl) == 0;
}

static int file_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    struct file_reactor *fr = FILE_REACTOR(c->r);
    if (playground_server_wide(c, req, PLAYGROUND_ALLOW_GET)) return IOX_HANDLED;
    int options = req->method_id == IOX_HTTP_OPTIONS;
    if (req->method_id != IOX_HTTP_GET && req->method_id != IOX_HTTP_HEAD && !options) {
        static const char msg[] = "method not allowed\n";
        iox_resp_simple_ex(c, 405, "text/plain; charset=utf-8", PLAYGROUND_ALLOW_GET, msg, sizeof msg - 1);
        return IOX_HANDLED;
    }
    if (req->body_kind != IOX_HTTP_BODY_NONE && !options) {
        /* A streamed answer starts before the body would be read: refuse. */
        text(c, 400, "GET and HEAD take no request body\n");
        return IOX_HANDLED;
    }
    const char *path = req->path;
    uint32_t path_len = req->path_len;
    if (req->target_form == IOX_HTTP_ABSOLUTE_FORM && path_len == 0) { path = "/"; path_len = 1; }
    else if (req->target_form != IOX_HTTP_ORIGIN_FORM && req->target_form != IOX_HTTP_ABSOLUTE_FORM) {
        text(c, 400, "bad request target\n");
        return IOX_HANDLED;
    }
    /* Room for "index.html" / "/index.html" after the normalized path. */
    int n = iox_url_path_normalize(path, path_len, fr->path, sizeof fr->path - 16);
    if (n < 0) {
        IOX_DEBUG("file mode: %.*s → %s", (int)path_len, path, iox_url_result_name(n));
        text(c, iox_url_error_status(n), "bad path\n");
        return IOX_HANDLED;
    }
    struct fs_snapshot *snap = fs_view_current(&fr->view);
    size_t len = (size_t)n;
    if (fr->path[len - 1] == '/') {
        memcpy(fr->path + len, "index.html", 11);
        len += 10;
    }
    const struct fs_entry *e = fs_snapshot_find(snap, fr->path, len);
    if (!e) {
        if (fr->path[len - 1] != '/' && fr->path[n - 1] != '/') {
            memcpy(fr->path + len, "/index.html", 12);
            if (fs_snapshot_find(snap, fr->path, len + 11) && path_len + 32 < sizeof fr->hdr) {
                /* A directory named without its '/': send the client there.
                 * The raw path is echoed: the parser admits no CR/LF in it. */
                snprintf(fr->hdr, sizeof fr->hdr, "Location: %.*s/\r\n", (int)path_len, path);
                static const char msg[] = "moved\n";
                iox_resp_head(c, 301, "text/plain; charset=utf-8", sizeof msg - 1, fr->hdr);
                if (!c->req_head) iox_resp_write(c, msg, sizeof msg - 1);
                return IOX_HANDLED;
            }
        }
        text(c, 404, "not found\n");
        return IOX_HANDLED;
    }
    if (options) {   /* a file: what it allows (RFC 9110 §9.3.7) */
        playground_options(c, PLAYGROUND_ALLOW_GET);
        return IOX_HANDLED;
    }
    if (not_modified(req, e)) {
        iox_resp_head(c, 304, NULL, 0, e->hdrs);
        return IOX_HANDLED;
    }
    int status = 200;
    uint64_t first = 0, blen = e->size;
    const char *extra = e->hdrs;
    const char *rv;
    uint32_t rvl;
    /* Range is defined for GET only: any other method ignores it (RFC 9110
     * §14.2), so a HEAD gets the plain 200 head, full Content-Length. */
    if (req->method_id == IOX_HTTP_GET && iox_http_header_find(req, "Range", &rv, &rvl) &&
        if_range_ok(req, e)) {
        uint64_t a, b;
        int rr = iox_http_range_parse(rv, rvl, e->size, &a, &b);
        if (rr == IOX_RANGE_UNSATISFIABLE) {
            snprintf(fr->hdr, sizeof fr->hdr, "%sContent-Range: bytes */%" PRIu64 "\r\n", e->hdrs, e->size);
            iox_resp_head(c, 416, NULL, 0, fr->hdr);
            return IOX_HANDLED;
        }
        if (rr == IOX_RANGE_OK) {
            status = 206;
            first = a;
            blen = b - a + 1;
            snprintf(fr->hdr, sizeof fr->hdr, "%sContent-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n",
                     e->hdrs, a, b, e->size);
            extra = fr->hdr;
        }
    }
    if (e->body || c->req_head || blen == 0) {
        if (e->body) {
            if (send_baked(c, status, e, extra, first, blen) < 0) iox_conn_abort(c);
        } else {
            iox_resp_head(c, status, e->ctype, blen, extra);
        }
        return IOX_HANDLED;
    }
    if (iox_resp_head(c, status, e->ctype, blen, extra) < 0) { iox_conn_abort(c); return IOX_HANDLED; }
    return start_stream(fr, c, snap, e, first, blen);
}

static const struct iox_http_app file_app = { file_request };

/* ---- reactor hooks and SIGHUP ---- */

static void on_hup(struct iox_reactor *r, struct iox_msg *m)
{
    (void)m;
    struct file_reactor *fr = FILE_REACTOR(r);
    if (fr) fs_view_advance(&fr->view);
}

static int file_start(struct iox_reactor *r, void *ctx)
{
    (void)ctx;
    struct file_reactor *fr = calloc(1, sizeof *fr);
    if (!fr) return -1;
    struct iox_http_server *hs = iox_http_server_of(r, 0);
    if (!hs || iox_file_streams_init(hs) < 0) { free(fr); return -1; }
    if (app.splice_min) {
        int rc = iox_file_streams_splice(r, app.splice_min, app.splice_pipes, app.pipe_size);
        if (rc < 0) {
            IOX_ERROR("file mode: cannot create %u splice pipes: %s — raise ulimit -n, or FILE_SPLICE_MIN=0 to read and send instead",
                      app.splice_pipes, strerror(-rc));
            iox_file_streams_fini(r);
            free(fr);
            return -1;
        }
    }
    if (app.zc) {
        int rc = iox_file_streams_zc(r, app.splice_min, app.zc_chunks, app.zc_chunk);
        if (rc < 0 && !atomic_exchange(&app.zc_warned, 1))
            IOX_WARN("file mode: FILE_SEND=zc: no zero-copy send (%u registered chunks of %u B: %s%s) — large files go by splice",
                     app.zc_chunks, app.zc_chunk, strerror(-rc),
                     rc == -EOPNOTSUPP ? "; IORING_OP_SEND_ZC needs Linux 6.0" : rc == -ENOMEM ? "; raise ulimit -l or lower FILE_ZC_CHUNKS" : "");
        if (rc == 0) {
            iox_file_streams_zc_copied(r, app.zc_keep);
            if (!atomic_exchange(&app.zc_said, 1))
                IOX_INFO("file mode: zero-copy: copy reports (IORING_SEND_ZC_REPORT_USAGE) %s%s",
                         r->seam->zc_report ? "yes: streams whose sends the kernel copies " : "no (Linux 6.2+): copied sends go unnoticed",
                         !r->seam->zc_report ? "" : app.zc_keep ? "stay zero-copy (FILE_ZC_COPIED=keep)" : "move to splice (FILE_ZC_COPIED=splice)");
        }
    }
    /* No SIGHUP is handled before every reactor has started, so the first
     * snapshot is still the latest and holds one claim for each of us. */
    fr->view.cur = app.latest;
    fr->view.id = r->id;
    if (iox_reactor_set_service(r, &file_reactor_key, fr) < 0) { iox_file_streams_fini(r); free(fr); return -1; }
    iox_reactor_on_msg(r, IOX_MSG_HUP, on_hup);
    return 0;
}

static void file_stop(struct iox_reactor *r, void *ctx)
{
    (void)ctx;
    struct file_reactor *fr = FILE_REACTOR(r);
    if (!fr) return;
    /* Every connection is closed (the loop ends at zero), so every stream
     * ended through its close hook; any left (ended here, -ECANCELED) would
     * pin their snapshot. The counters say which path the bodies took
     * (tests/test_file_splice.c reads this line). */
    const struct iox_file_streams *fs = iox_file_streams_of(r);
    if (fs)
        IOX_INFO("file mode: streams: %" PRIu64 " started (%" PRIu64 " spliced, %" PRIu64 " found no free pipe), %" PRIu64
                 " done, %" PRIu64 " gone, %" PRIu64 " failed; %" PRIu64 " reads, %" PRIu64 " splices; %" PRIu64 " pipes made again; "
                 "zero-copy: %" PRIu64 " streams, %" PRIu64 " found no free chunk, %" PRIu64 " fixed reads, %" PRIu64 " sends (%" PRIu64
                 " short), %" PRIu64 " chunks orphaned, %" PRIu64 " copied, %" PRIu64 " moved to splice, %" PRIu64 " did not try",
                 fs->n_started, fs->n_spliced, fs->n_no_pipe, fs->n_done, fs->n_gone, fs->n_errors + fs->n_eof_early,
                 fs->n_reads, fs->n_splices, fs->n_pipe_renewed,
                 fs->n_zc, fs->n_no_chunk, fs->n_zc_reads, fs->n_zc_sends, fs->n_zc_short, fs->n_zc_orphaned,
                 fs->n_zc_copied, fs->n_zc_to_splice, fs->n_zc_skipped);
    iox_file_streams_fini(r);
    fs_view_leave(&fr->view);
    free(fr);
    iox_reactor_set_service(r, &file_reactor_key, NULL);
}

static void log_snapshot(const char *what, const struct fs_snapshot *s)
{
    IOX_INFO("file mode: %s %s: %u files (%u baked, %" PRIu64 " bytes; %u streamed), generation %" PRIu64,
             what, app.opt.root, s->count, s->nbaked, s->baked_bytes, s->nstreamed, s->generation);
}

static void file_sighup(void *ctx)
{
    (void)ctx;
    char why[512] = "";
    struct fs_snapshot *s;
    if (fs_snapshot_build(&app.opt, app.generation + 1, &s, why, sizeof why) < 0) {
        IOX_ERROR("%s; still serving generation %" PRIu64, why, app.generation);
        return;
    }
    app.generation++;
    fs_snapshot_publish(app.latest, s);
    app.latest = s;
    log_snapshot("re-snapshot of", s);
}

static int env_u64(const char *name, uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *v = getenv(name);
    *out = def;
    if (!v || !*v) return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || v[0] == '-' || x < min || x > max) {
        fprintf(stderr, "playground: %s=%s is not a number in [%" PRIu64 ", %" PRIu64 "]\n", name, v, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

int playground_file(struct iox_server_config *cfg, struct iox_http_config *http)
{
    uint64_t bake, chunk, files, depth, splice_min, pipes, pipe_size, zc_chunks, zc_chunk;
    /* Splice from 64 KiB: everything streamed (FILE_BAKE_MAX) goes file →
     * pipe → socket; bench/RESULTS.md (row file1m) has the measurement. */
    if (env_u64("FILE_SPLICE_MIN", 64 * 1024, 0, UINT64_MAX, &splice_min) < 0 ||
        env_u64("FILE_SPLICE_PIPES", 64, 1, 4096, &pipes) < 0 ||
        env_u64("FILE_PIPE_SIZE", 1u << 20, 4096, 1u << 30, &pipe_size) < 0 ||
        env_u64("FILE_BAKE_MAX", 64 * 1024, 0, 8u << 20, &bake) < 0 ||
        env_u64("FILE_CHUNK", 64 * 1024, 4096, 1u << 20, &chunk) < 0 ||
        env_u64("FILE_MAX_FILES", 100000, 1, 10000000, &files) < 0 ||
        env_u64("FILE_MAX_DEPTH", 32, 1, 1024, &depth) < 0 ||
        env_u64("FILE_ZC_CHUNKS", 16, 1, 1024, &zc_chunks) < 0 ||
        env_u64("FILE_ZC_CHUNK", 256 * 1024, 4096, 64u << 20, &zc_chunk) < 0)
        return -1;
    /* FILE_SEND: how streamed ranges of at least FILE_SPLICE_MIN bytes
     * leave. splice (default: bench/RESULTS.md row file1m), zc (registered
     * chunks + SEND_ZC, splice when no chunk is free), read (neither). */
    const char *send = getenv("FILE_SEND");
    if (!send || !*send || !strcmp(send, "splice")) app.zc = 0;
    else if (!strcmp(send, "zc")) app.zc = 1;
    else if (!strcmp(send, "read")) app.zc = 0, splice_min = 0;
    else {
        fprintf(stderr, "playground: FILE_SEND=%s is not one of splice, zc, read\n", send);
        return -1;
    }
    /* FILE_ZC_COPIED: what a zero-copy stream does when the kernel says it
     * copied the bytes (loopback: always): splice (default) moves it to
     * the splice path, keep stays zero-copy (tests of that path). */
    const char *copied = getenv("FILE_ZC_COPIED");
    if (!copied || !*copied || !strcmp(copied, "splice")) app.zc_keep = 0;
    else if (!strcmp(copied, "keep")) app.zc_keep = 1;
    else {
        fprintf(stderr, "playground: FILE_ZC_COPIED=%s is not one of splice, keep\n", copied);
        return -1;
    }
    if (app.zc && !splice_min) {
        fprintf(stderr, "playground: FILE_SEND=zc with FILE_SPLICE_MIN=0: nothing would go zero-copy; set FILE_SPLICE_MIN > 0\n");
        return -1;
    }
    app.zc_chunks = (unsigned)zc_chunks;
    app.zc_chunk = (uint32_t)zc_chunk;
    const char *root = getenv("FILE_ROOT");
    app.opt.root = root && *root ? root : "examples/www";
    app.opt.bake_max = bake;
    app.opt.max_files = (uint32_t)files;
    app.opt.max_depth = (uint32_t)depth;
    app.opt.nreactors = cfg->reactors;
    app.chunk = (uint32_t)chunk;
    app.splice_min = splice_min;
    app.splice_pipes = (unsigned)pipes;
    app.pipe_size = (uint32_t)pipe_size;
    char why[512] = "";
    if (fs_snapshot_build(&app.opt, 1, &app.latest, why, sizeof why) < 0) {
        fprintf(stderr, "playground: %s\n", why);
        return -1;
    }
    app.generation = 1;
    log_snapshot("snapshot of", app.latest);
    http->app = &file_app;
    cfg->on_start = file_start;
    cfg->on_stop = file_stop;
    cfg->on_sighup = file_sighup;
    return 0;
}
