/* ioxide/file_stream.h — stream a byte range of an open file as the body of an
 * async HTTP response.
 *
 * The per-stream lifecycle is the generated machine file_stream
 * (spec/machines/file_stream.toml → generated/file_stream_machine.[ch]);
 * the actions are in runtime/file/file_stream.c. One positional read
 * (IORING_OP_READ, user_data owner: the streams' kind) is in flight at a time,
 * straight into the connection's write buffer; the next one is queued when
 * the connection has sent everything (drain hook). So a connection holds at
 * most one chunk (plus the head) whatever the file size and however slow
 * the peer. Per-reactor table indexed by connection slot, allocated once by
 * iox_file_streams_init: no malloc per request.
 *
 * A short read counts what came; the rest is read after it is sent. A read
 * error or an early end of file (truncated since it was opened) is logged
 * with the name and offset and aborts the connection. A connection that
 * closes under a stream ends it (close hook); the socket's close waits for
 * the read in flight (iox_conn_op_begin/op_end), so a read never lands in
 * freed memory.
 *
 * Splice path (iox_file_streams_splice): a large range instead sends its
 * head alone, then moves the body file → pipe → socket with splices on the
 * ring; see spec/machines/file_stream.toml and docs/file-mode.md.
 *
 * Zero-copy path (iox_file_streams_zc): a large range that finds a free
 * registered chunk sends its head alone, then reads the file into the
 * chunk (IORING_OP_READ_FIXED) and sends it with IORING_OP_SEND_ZC; the
 * chunk is written again only after the send's notification CQE. */
#ifndef IOX_FILE_STREAM_H
#define IOX_FILE_STREAM_H
#include "file_stream_machine.h"
#include <ioxide/http_conn.h>
#include <stdint.h>

/* Called exactly once per started stream, on the reactor thread: err 0 when
 * the last byte was committed (the connection went on), -errno when a read
 * failed (-EIO for an early end of file) or could not be queued (the
 * connection is being aborted), -EPIPE when the connection closed under the
 * stream, -ECANCELED from iox_file_streams_fini. */
typedef void (*iox_file_stream_end_fn)(struct iox_reactor *r, void *arg, int err);

/* Machine arg: a read completion's result (0 for other events). */
struct iox_fstream_event { int32_t res; };

struct iox_file_stream {
    struct iox_reactor *r;
    struct iox_http_server *hs;  /* whose connection slot idx is */
    const char *name;          /* for logs (the file's path) */
    iox_file_stream_end_fn on_end;
    void *arg;
    uint64_t off, left;        /* next byte to read, bytes still to commit */
    uint32_t idx;              /* connection slot */
    uint32_t chunk;            /* bytes per read */
    uint32_t asked;            /* length of the read in flight */
    int32_t err;               /* why a read could not be queued (-errno) */
    int fd;
    uint16_t gen;              /* the connection's generation */
    uint16_t seq;              /* the request the stream answers */
    int32_t pipe;              /* splice path: index of the pool pipe held, -1 none */
    uint32_t in_pipe;          /* splice path: bytes in the pipe, not yet on the socket */
    uint8_t pipe_dirty;        /* splice path: the pipe may hold bytes (a file → pipe splice was queued, the pipe not emptied since) */
    int32_t zc_chunk;          /* zero-copy path: index of the registered chunk held, -1 none */
    uint32_t zc_have, zc_pos;  /* zero-copy path: bytes of the chunk not sent yet, from zc_pos */
    int32_t zc_err;            /* zero-copy path: the failed send's -errno, for the abort after its notification */
    uint8_t zc_live;           /* zero-copy path: a SEND_ZC is in flight (its last CQE not in) */
    file_stream_state_t state; /* written only by file_stream_fire() and the [reuse] functions */
    uint8_t active;            /* started, on_end not called yet */
};

struct iox_file_streams {
    struct iox_file_stream *s; /* n entries: one per connection slot of hs */
    uint32_t n;
    struct iox_http_server *hs;
    uint32_t active;
    int owner;                 /* the streams' kind id in user_data */
    /* Splice path (iox_file_streams_splice): ranges of at least
     * splice_min bytes (0: never) go file → pipe → socket. */
    uint64_t splice_min;
    struct iox_fs_pipe { int rfd, wfd; uint8_t busy; } *pipes;
    uint32_t npipes, pipe_size;
    /* Counters (this reactor): what happened to reads and streams. */
    uint64_t n_started, n_reads, n_short, n_errors, n_eof_early, n_done, n_gone, n_stale;
    uint64_t n_spliced;        /* streams that took the splice path */
    uint64_t n_splices;        /* splice SQEs queued (both halves) */
    uint64_t n_no_pipe;        /* splice-sized streams that found no free pipe (read path) */
    uint64_t n_pipe_renewed;   /* pipes closed and made again because a stream left bytes in them */
    /* Zero-copy path (iox_file_streams_zc): ranges of at least zc_min
     * bytes (0: never) that find a free chunk go READ_FIXED + SEND_ZC. */
    uint64_t zc_min;
    char *zc_mem;              /* nchunks × chunk_size, registered with the ring */
    struct iox_fs_chunk {
        uint32_t slot;         /* the stream (connection slot) holding it */
        uint16_t gen;          /* that connection's generation */
        uint8_t busy;          /* held by a stream, or orphaned */
        uint8_t orphan;        /* its stream ended with a send in flight: free at the send's last CQE */
    } *chunks;
    uint32_t nchunks, chunk_size;
    uint64_t n_zc;             /* streams that took the zero-copy path */
    uint64_t n_no_chunk;       /* zero-copy-sized streams that found no free chunk (splice or read path) */
    uint64_t n_zc_reads, n_zc_sends, n_zc_short;   /* READ_FIXEDs, SEND_ZCs queued; sends that took less than asked */
    uint64_t n_zc_orphaned;    /* chunks whose stream ended before the send's notification */
    uint64_t n_notif_first;    /* notifications that came before their send's result */
    /* Copied zero-copy sends (the seam's zc_report: Linux 6.2+). */
    uint8_t zc_copied_keep;    /* iox_file_streams_zc_copied(r, 1): copied streams stay zero-copy */
    uint8_t zc_copied_logged;  /* the one log line of this reactor was written */
    uint64_t n_zc_copied;      /* notifications saying the kernel copied the bytes */
    uint64_t n_zc_to_splice;   /* zero-copy streams moved to splice because of that */
    uint32_t zc_skip;          /* zero-copy-sized streams still to start without zero-copy (a copy was reported) */
    uint64_t n_zc_skipped;     /* streams that did not try zero-copy because of a recent copy report */
};

/* After a copy report, this many zero-copy-sized streams of the reactor
 * start on the splice (or read) path before one tries zero-copy again. */
#define IOX_ZC_COPIED_SKIP 1000

/* Allocate the stream table for the connections of HTTP server hs (one
 * stream per connection slot, set up by its first stream: untouched
 * entries cost no RSS; a service of hs's reactor, one per reactor)
 * and register the streams' kind, which takes the read completions. 0 or
 * -ENOMEM. Call from the reactor's on_start (iox_http_server_of). */
int iox_file_streams_init(struct iox_http_server *hs);
/* Free the table; a stream still active (none once every connection is
 * closed) is ended with -ECANCELED. Call from on_stop. */
void iox_file_streams_fini(struct iox_reactor *r);
struct iox_file_streams *iox_file_streams_of(struct iox_reactor *r);
/* Turn on the splice path for this reactor's streams: a range of at least
 * min_len bytes (min_len > 0) is sent file → pipe → socket with
 * IORING_OP_SPLICE (both halves on the ring, one in flight at a time), so
 * its bytes never enter user memory; shorter ranges, and any stream that
 * finds all `npipes` pipes busy, take the read path. Creates npipes pipes
 * now (pipe2, then F_SETPIPE_SZ to pipe_bytes when it is not 0; the
 * kernel's default 64 KiB is kept if that is refused): a splice moves at
 * most the pipe's size. Call after iox_file_streams_init, from on_start.
 * Returns 0, or -errno (pipe2 failed: raise the open-files limit) with
 * nothing created. iox_file_streams_fini closes the pipes. */
int iox_file_streams_splice(struct iox_reactor *r, uint64_t min_len, unsigned npipes, uint32_t pipe_bytes);

/* Turn on the zero-copy path: a range of at least min_len bytes
 * (min_len > 0) that finds one of `nchunks` chunks of chunk_bytes free
 * goes file → registered chunk (IORING_OP_READ_FIXED) → socket
 * (IORING_OP_SEND_ZC), one op in flight at a time, the chunk rewritten
 * only after the send's notification. Takes precedence over the splice
 * path, which (or else the read path) serves the streams that find every
 * chunk busy (n_no_chunk). Allocates the chunks (mmap) and registers them
 * with the reactor's ring now (pinned memory: counts against
 * RLIMIT_MEMLOCK). Call after iox_file_streams_init, from on_start.
 * Returns 0; -EOPNOTSUPP when the kernel (probed) or the seam has no
 * READ_FIXED / SEND_ZC; -ENOMEM, or the register call's -errno (-ENOMEM:
 * raise `ulimit -l`). Nothing is left allocated on failure.
 * iox_file_streams_fini frees the chunks. */
int iox_file_streams_zc(struct iox_reactor *r, uint64_t min_len, unsigned nchunks, uint32_t chunk_bytes);

/* What a zero-copy stream does when the kernel reports that it copied the
 * bytes after all (IORING_SEND_ZC_REPORT_USAGE, asked for when the kernel
 * has it; a local receiver on loopback, a device without scatter-gather):
 * keep 0 (the default) moves it, once its chunk is free, to the splice
 * path for the rest of the file when a pipe is free (the machine's guard
 * to_splice), and the reactor's next IOX_ZC_COPIED_SKIP zero-copy-sized
 * streams start without zero-copy; keep 1 stays zero-copy (to test that
 * path on loopback).
 * Callable any time on the reactor thread; returns 0, -EINVAL without a
 * stream table. */
int iox_file_streams_zc_copied(struct iox_reactor *r, int keep);

/* From on_request, after the response head (iox_resp_head, Content-Length
 * = len) is written: stream bytes [off, off+len) of fd (len > 0), reading
 * `chunk` bytes at a time (the first read is trimmed so head + chunk fit one
 * chunk-sized buffer). `name` (not copied) and `arg` are kept for the
 * stream's life; on_end runs exactly once, possibly before this returns.
 * The first read waits (drain hook) until the request is the oldest one
 * outstanding on the connection; one stream per connection at a time (it
 * holds the close hook: no pipelined request is dispatched behind it).
 * Returns IOX_ASYNC (the stream owns the request), or IOX_HANDLED when it
 * failed at once (the connection is being aborted). */
int iox_file_stream_start(struct iox_conn *c, int fd, uint64_t off, uint64_t len, uint32_t chunk,
                          const char *name, iox_file_stream_end_fn on_end, void *arg);

#endif
