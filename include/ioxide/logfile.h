/* ioxide/logfile.h — a reactor's own append-only log file, written through
 * its ring. Lines are appended to a buffer in memory; at the end of a loop
 * turn at most ONE write of everything buffered is submitted
 * (IORING_OP_WRITE on a file opened O_APPEND), and while it is in flight
 * new lines fill the second buffer. Nothing waits on the disk: when both
 * buffers are full, or the file refuses a write (a full disk: ENOSPC, EIO,
 * a quota), the lines are dropped and counted, one log line tells why, and
 * the loop goes on. A graceful stop writes what is buffered before the
 * reactor ends (the kind's busy() holds it).
 *
 * Used by the HTTP access log (iox_http_config.access_log); any protocol may
 * keep its own. Everything here runs on the reactor thread that opened the
 * file; nothing is thread-safe. */
#ifndef IOX_LOGFILE_H
#define IOX_LOGFILE_H
#include <ioxide/reactor.h>
#include <stddef.h>
#include <stdint.h>

struct iox_logfile;

/* Counters (monotonic). */
struct iox_logfile_stats {
    uint64_t lines;         /* lines written to the file */
    uint64_t bytes;         /* bytes written to the file */
    uint64_t dropped;       /* lines lost: buffers full, or a write failed */
    uint64_t write_errors;  /* writes that failed (each drops its lines) */
    uint64_t reopens;       /* successful iox_logfile_reopen calls */
};

/* Open (create, mode 0644) `path` for appending on reactor r (call on its
 * thread, before or while its loop runs — not the hot path: this is
 * open(2)), with two buffers of buf_size bytes each (0: 64 KiB; a longer
 * line is cut to fit). Registers a kind in r's registry for its writes.
 * 0 and *out, or -errno with "path: reason — what to do" in why. */
int iox_logfile_open(struct iox_reactor *r, const char *path, size_t buf_size,
                     struct iox_logfile **out, char *why, size_t why_len);
/* Room for a line of up to n bytes at the end of the current buffer (the
 * caller writes it, newline included, then iox_logfile_commit), or NULL:
 * no room this turn — the line is counted as dropped. n is cut to the
 * buffer size. The pointer is valid until the commit. */
char *iox_logfile_reserve(struct iox_logfile *lf, size_t n);
/* The line of n bytes (≤ what was reserved) is complete. */
void iox_logfile_commit(struct iox_logfile *lf, size_t n);
/* Reopen the same path (after a log rotation moved the file away): later
 * lines go to the new file; a write in flight finishes on the old one,
 * which is closed after it. On failure the old file stays in use and
 * -errno is returned with the reason logged. On lf's reactor thread. */
int iox_logfile_reopen(struct iox_logfile *lf);
/* Write what is buffered synchronously (a plain write(2)), close the file,
 * unregister the kind and free lf — for teardown after the loop ended,
 * when no completion will come any more. NULL is ignored. */
void iox_logfile_close(struct iox_logfile *lf);
/* Counters so far. */
struct iox_logfile_stats iox_logfile_stats(const struct iox_logfile *lf);
/* The path given to iox_logfile_open (owned by lf). */
const char *iox_logfile_path(const struct iox_logfile *lf);

#endif
