/* seam_uring.c — the real ring behind the seam (see ioxide/seam.h). */
#include <ioxide/seam.h>
#include <ioxide/log.h>
#include "seam_slices.h"
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Under valgrind (make memcheck). Valgrind 3.19 does not mark io_uring_enter
 * as a syscall that may block (KDE bug 463859, liburing issue #657): a
 * thread waiting in it keeps valgrind's global lock, so every other thread
 * of the process — the other reactors, the signal thread — stops until it
 * returns. When RUNNING_ON_VALGRIND, the loop's wait therefore never blocks
 * in the kernel: it enters only to submit and run task work, and sleeps
 * 1 ms in nanosleep (which valgrind does release the lock for) while the CQ
 * stays empty. Compiled in only when the valgrind headers exist; outside
 * valgrind the check is one load of a flag set at ring creation. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#include <valgrind/memcheck.h>
#define IOX_HAVE_VALGRIND 1
#endif
#endif
#ifndef IOX_HAVE_VALGRIND
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif

/* Memcheck cannot see the kernel write into the buffer of a recv or read
 * submitted on the ring (it does not interpret SQEs), so the bytes arrive
 * "uninitialised" (e.g. in the Postgres client's receive buffer). The
 * destination is marked defined when the operation is submitted: a client
 * request, a few no-op instructions outside valgrind. The provided buffers
 * of multishot recv need nothing: they are an anonymous mmap, which memcheck
 * already treats as defined. */
#define IOX_KERNEL_WRITES(buf, len) VALGRIND_MAKE_MEM_DEFINED((buf), (len))

/* Newer than liburing 2.3's headers; values from the kernel ABI. */
#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif

#ifndef IORING_OP_URING_CMD
#define IORING_OP_URING_CMD 46
#endif

#define BGID 0
#define IOX_MAX_FIXED_FILES (1u << 20)   /* the kernel's IORING_MAX_FIXED_FILES */

/* Incremental provided buffers (Linux 6.12), newer than liburing 2.3:
 * values from include/uapi/linux/io_uring.h. The flag goes in
 * io_uring_buf_reg.flags, which liburing 2.3 still calls `pad`; a kernel
 * without it refuses the registration with -EINVAL (the probe). */
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif
#if IOX_CQE_F_BUF_MORE != IORING_CQE_F_BUF_MORE
#error "IOX_CQE_F_BUF_MORE must equal the kernel's IORING_CQE_F_BUF_MORE"
#endif
#define PROBE_BGID 1
/* Slice handles (incremental mode): CQEs reaped and not yet returned.
 * Every consumer returns a recv's buffer while it handles the CQE, so at
 * most one reap batch (256) is out; the rest is headroom. */
#define IOX_SLICES 4096

struct iox_seam_uring {
    struct iox_seam base;
    struct io_uring ring;
    struct io_uring_buf_ring *br;   /* provided buffer ring (page aligned) */
    size_t br_bytes;
    char *bufs;                      /* buf_count × buf_size */
    size_t bufs_bytes;
    unsigned br_mask;
    unsigned br_pending;             /* buffers added since the last advance */
    uint8_t inc;                     /* incremental provided buffers (IOU_PBUF_RING_INC) */
    const char *bufs_label;          /* the startup line's word on the buffers (a string constant) */
    uint8_t slices_full_warned;
    struct iox_slices sl;            /* inc: the slices out and each buffer's books */
    int on_valgrind;                 /* RUNNING_ON_VALGRIND at creation */
    uint8_t reg_ring_fd;             /* io_uring_register_ring_fd took */
    uint8_t defer_taskrun;
    uint8_t count_ops;               /* IOX_OP_COUNTS=1: SQEs counted by opcode */
    uint8_t ring_outq;               /* SOCKET_URING_OP_SIOCOUTQ works (probed) */
    uint8_t direct_mode;             /* IOX_DIRECT_AUTO / _ON / _OFF */
    unsigned cq_entries;             /* for the startup line */
    unsigned nfiles;                 /* registered file table slots (0: none) */
    uint64_t op_counts[64];          /* SQEs submitted, by IORING_OP_* (count_ops) */
};

static struct iox_seam_uring *U(struct iox_seam *s) { return (struct iox_seam_uring *)s; }

/* IOX_OP_COUNTS=1 (a measuring knob, off by default): before each submit the
 * SQEs queued since the last one are counted by opcode, and the ring logs
 * the totals when it is destroyed. Why here and not in each prep: one place
 * sees every SQE, including hand-filled ones (URING_CMD), and the cost when
 * off is one byte test per submit. */
static void count_pending(struct iox_seam_uring *u)
{
    struct io_uring_sq *sq = &u->ring.sq;
    for (unsigned i = sq->sqe_head; i != sq->sqe_tail; i++)
        u->op_counts[sq->sqes[i & sq->ring_mask].opcode & 63]++;
}

/* An SQE, flushing the SQ once if it is full. The flush is the only
 * io_uring_enter outside the loop's own, and only under SQ pressure. */
static struct io_uring_sqe *sqe_get(struct iox_seam_uring *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (sqe) return sqe;
    if (u->count_ops) count_pending(u);
    int r = io_uring_submit(&u->ring);
    if (r < 0) IOX_WARN("io_uring_submit (SQ full): %s", strerror(-r));
    return io_uring_get_sqe(&u->ring);
}

#define SQE_OR_BUSY(u, sqe)                                                    \
    struct io_uring_sqe *sqe = sqe_get(u);                                     \
    if (!sqe) return -EBUSY

/* After a prep with an encoded fd: a direct descriptor names its slot in
 * the ring's file table (IOSQE_FIXED_FILE); a real fd stays as it is. The
 * one test every op on a socket pays for direct descriptors. */
static inline void sqe_fd(struct io_uring_sqe *sqe, int fd)
{
    if (iox_fd_is_direct(fd)) {
        sqe->fd = (int)iox_fd_slot(fd);
        sqe->flags |= IOSQE_FIXED_FILE;
    }
}

static int u_accept_multishot(struct iox_seam *s, int lfd, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    /* Direct: each connection into a free slot the kernel picks
     * (IORING_FILE_INDEX_ALLOC), no fd_install; the CQE's res is the slot.
     * SOCK_CLOEXEC means nothing there (the kernel refuses it). */
    if (s->direct) io_uring_prep_multishot_accept_direct(sqe, lfd, NULL, NULL, 0);
    else io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_recv_multishot(struct iox_seam *s, int fd, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe_fd(sqe, fd);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_recv(struct iox_seam *s, int fd, void *buf, size_t len, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    io_uring_prep_recv(sqe, fd, buf, len, 0);
    sqe_fd(sqe, fd);
    IOX_KERNEL_WRITES(buf, len);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_send(struct iox_seam *s, int fd, const void *buf, size_t len, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
    sqe_fd(sqe, fd);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_read(struct iox_seam *s, int fd, void *buf, size_t len, uint64_t off, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    io_uring_prep_read(sqe, fd, buf, (unsigned)len, off);
    sqe_fd(sqe, fd);
    IOX_KERNEL_WRITES(buf, len);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

/* SPLICE_F_MOVE is a hint the kernel ignores for most files; the pipe
 * half never blocks the ring: io_uring punts a splice that would block to
 * its worker. Direct descriptors: fd_out is the SQE's own fd
 * (IOSQE_FIXED_FILE); fd_in has its own flag, SPLICE_F_FD_IN_FIXED, set
 * only when fd_in is in the table (a pipe or a file never is). */
static int u_splice(struct iox_seam *s, int fd_in, int64_t off_in, int fd_out, size_t len, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    unsigned fl = SPLICE_F_MOVE;
    if (iox_fd_is_direct(fd_in)) { fd_in = (int)iox_fd_slot(fd_in); fl |= SPLICE_F_FD_IN_FIXED; }
    io_uring_prep_splice(sqe, fd_in, off_in, fd_out, -1, (unsigned)len, fl);
    sqe_fd(sqe, fd_out);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_socket(struct iox_seam *s, int domain, int type, int proto, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    io_uring_prep_socket(sqe, domain, type, proto, 0);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_connect(struct iox_seam *s, int fd, const struct sockaddr *sa, socklen_t len, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    io_uring_prep_connect(sqe, fd, sa, len);
    sqe_fd(sqe, fd);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_shutdown(struct iox_seam *s, int fd, int how, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    io_uring_prep_shutdown(sqe, fd, how);
    sqe_fd(sqe, fd);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_close(struct iox_seam *s, int fd, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    /* A slot is closed by index (no IOSQE_FIXED_FILE: the kernel refuses
     * it on a close): the table lets go of the file. */
    if (iox_fd_is_direct(fd)) io_uring_prep_close_direct(sqe, iox_fd_slot(fd));
    else io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_cancel_fd(struct iox_seam *s, int fd, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    if (iox_fd_is_direct(fd))
        io_uring_prep_cancel_fd(sqe, (int)iox_fd_slot(fd), IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_FD_FIXED);
    else
        io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_cancel(struct iox_seam *s, uint64_t target, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    io_uring_prep_cancel64(sqe, target, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_timeout(struct iox_seam *s, uint64_t ns, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    /* The kernel reads the timespec when the SQE is submitted, i.e. at the
     * end of this loop turn, not now: it cannot live on this stack frame.
     * A small per-thread ring of slots outlives the turn; timeouts are rare
     * (the reactor tick, client connect/query deadlines), far fewer than 256
     * per turn. */
    static __thread struct __kernel_timespec ts_slots[256];
    static __thread unsigned ts_next;
    struct __kernel_timespec *ts = &ts_slots[ts_next++ & 255];
    ts->tv_sec = (long long)(ns / 1000000000ull);
    ts->tv_nsec = (long long)(ns % 1000000000ull);
    io_uring_prep_timeout(sqe, ts, 0, 0);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_msg_ring(struct iox_seam *s, int ring_fd, uint32_t len, uint64_t data, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    io_uring_prep_msg_ring(sqe, ring_fd, len, data, 0);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

/* bid: the buffer id (plain) or a slice handle (inc; see seam_slices.h). */
static char *u_buf(struct iox_seam *s, unsigned bid)
{
    struct iox_seam_uring *u = U(s);
    if (u->inc)
        return u->bufs + (size_t)iox_slices_bid(&u->sl, bid) * s->buf_size + iox_slices_off(&u->sl, bid);
    return u->bufs + (size_t)bid * s->buf_size;
}

/* A buffer back to the kernel: published in one advance per loop turn. */
static void buf_give(struct iox_seam_uring *u, unsigned bid)
{
    io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * u->base.buf_size, u->base.buf_size,
                          (unsigned short)bid, u->br_mask, (int)u->br_pending);
    u->br_pending++;
}

static __attribute__((noinline, cold)) void slice_violation(struct iox_seam_uring *u, unsigned h)
{
    IOX_WARN("io_uring: recv buffer slice %u returned but not out (%u violations) — a consumer "
             "returned a buffer twice or one it never had; report it", h, u->sl.violations);
}

static void u_buf_return(struct iox_seam *s, unsigned bid)
{
    struct iox_seam_uring *u = U(s);
    if (!u->inc) { buf_give(u, bid); return; }
    unsigned v = u->sl.violations;
    unsigned b = iox_slices_put(&u->sl, bid);
    if (b != IOX_SLICE_NONE) buf_give(u, b);
    else if (u->sl.violations != v) slice_violation(u, bid);
}

static int u_unsent(struct iox_seam *s, int fd)
{
    (void)s;
    if (iox_fd_is_direct(fd)) return -EOPNOTSUPP;   /* not an fd: the ring command only */
    int n = 0;
    if (ioctl(fd, SIOCOUTQ, &n) < 0) return -errno;
    return n;
}

static int u_write(struct iox_seam *s, int fd, const void *buf, size_t len, uint64_t off, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    io_uring_prep_write(sqe, fd, buf, (unsigned)len, off);
    sqe_fd(sqe, fd);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

/* getsockopt on the ring is an IORING_OP_URING_CMD on the socket (Linux
 * 6.7); liburing 2.3 has neither the opcode's socket commands nor
 * io_uring_prep_cmd_sock, so the SQE is filled by hand from the kernel ABI
 * (include/uapi/linux/io_uring.h): cmd_op in `off`, level/optname in
 * `addr`, optlen in `file_index`, optval in `addr3`. The kernel runs
 * SO_PEERNAME inline and answers with the address length. */
#define IOX_SOCKET_URING_OP_GETSOCKOPT 2u

static int u_peername(struct iox_seam *s, int fd, struct sockaddr *sa, socklen_t len, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = fd;
    sqe->off = IOX_SOCKET_URING_OP_GETSOCKOPT;                      /* cmd_op (low 32 bits) */
    sqe->addr = (uint64_t)SOL_SOCKET | ((uint64_t)SO_PEERNAME << 32);   /* level, optname */
    sqe->file_index = (uint32_t)len;                                 /* optlen */
    sqe->addr3 = (uint64_t)(uintptr_t)sa;                            /* optval */
    sqe_fd(sqe, fd);
    IOX_KERNEL_WRITES(sa, len);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

/* SIOCOUTQ on the ring: the same hand-filled URING_CMD, cmd_op 1 (the
 * kernel runs the ioctl inline; the CQE's res is the unsent bytes). Works
 * on a direct descriptor, which the synchronous ioctl cannot reach. */
#define IOX_SOCKET_URING_OP_SIOCOUTQ 1u

static void prep_outq(struct io_uring_sqe *sqe, int fd)
{
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = fd;
    sqe->off = IOX_SOCKET_URING_OP_SIOCOUTQ;
    sqe_fd(sqe, fd);
}

static int u_unsent_cmd(struct iox_seam *s, int fd, uint64_t ud)
{
    if (!U(s)->ring_outq) return -EOPNOTSUPP;
    SQE_OR_BUSY(U(s), sqe);
    prep_outq(sqe, fd);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_close_sync(struct iox_seam *s, int fd)
{
    if (fd < 0) return -EBADF;
    if (!iox_fd_is_direct(fd)) return close(fd) < 0 ? -errno : 0;
    int none = -1;
    int r = io_uring_register_files_update(&U(s)->ring, iox_fd_slot(fd), &none, 1);
    return r < 0 ? r : 0;
}

/* Registered buffers for READ_FIXED + SEND_ZC (a file stream's zero-copy
 * path). liburing 2.3 has io_uring_prep_send_zc(_fixed) and the flags;
 * the guards below are for older headers. Both opcodes are probed first:
 * a kernel without them (SEND_ZC is Linux 6.0) answers -EOPNOTSUPP, and
 * the caller keeps its other path with one startup line. */
#ifndef IORING_CQE_F_NOTIF
#define IORING_CQE_F_NOTIF (1U << 3)
#endif
#ifndef IORING_RECVSEND_FIXED_BUF
#define IORING_RECVSEND_FIXED_BUF (1U << 2)
#endif
/* liburing 2.3 lacks the usage report (Linux 6.2): the kernel ABI's values. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
#if IOX_CQE_F_NOTIF != IORING_CQE_F_NOTIF
#error "IOX_CQE_F_NOTIF must equal the kernel's IORING_CQE_F_NOTIF"
#endif
#if IOX_NOTIF_ZC_COPIED != IORING_NOTIF_USAGE_ZC_COPIED
#error "IOX_NOTIF_ZC_COPIED must equal the kernel's IORING_NOTIF_USAGE_ZC_COPIED"
#endif

/* Does the kernel take IORING_SEND_ZC_REPORT_USAGE? The opcode probe says
 * nothing about send flags, and a kernel that does not know one refuses
 * the SQE at prep with -EINVAL, before it looks at the fd. So one SEND_ZC
 * with the flag on fd -1, on a throwaway ring (the reactor's ring has its
 * own completions in flight): -EINVAL is no, anything else (-EBADF) yes.
 * Once per ring at startup (cold path). */
static int zc_report_probe(void)
{
    struct io_uring t;
    if (io_uring_queue_init(2, &t, 0) < 0) return 0;
    int yes = 0;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&t);
    static char b[1];
    if (sqe) {
        io_uring_prep_send_zc(sqe, -1, b, sizeof b, MSG_NOSIGNAL, 0);
        sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
        struct io_uring_cqe *cqe;
        if (io_uring_submit(&t) == 1 && io_uring_wait_cqe(&t, &cqe) == 0) {
            yes = cqe->res != -EINVAL;
            io_uring_cqe_seen(&t, cqe);
        }
    }
    io_uring_queue_exit(&t);
    return yes;
}

static int u_register_buffers(struct iox_seam *s, const struct iovec *iov, unsigned n)
{
    struct iox_seam_uring *u = U(s);
    struct io_uring_probe *p = io_uring_get_probe_ring(&u->ring);
    if (!p) return -EOPNOTSUPP;
    int ok = io_uring_opcode_supported(p, IORING_OP_READ_FIXED) && io_uring_opcode_supported(p, IORING_OP_SEND_ZC);
    io_uring_free_probe(p);
    if (!ok) return -EOPNOTSUPP;
    int rc = io_uring_register_buffers(&u->ring, iov, n);
    if (rc == 0) s->zc_report = (uint8_t)zc_report_probe();
    return rc;
}

static int u_read_fixed(struct iox_seam *s, int fd, void *buf, size_t len, uint64_t off, unsigned bi, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    io_uring_prep_read_fixed(sqe, fd, buf, (unsigned)len, off, (int)bi);
    sqe_fd(sqe, fd);
    IOX_KERNEL_WRITES(buf, len);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int u_send_zc(struct iox_seam *s, int fd, const void *buf, size_t len, unsigned bi, uint64_t ud)
{
    SQE_OR_BUSY(U(s), sqe);
    io_uring_prep_send_zc_fixed(sqe, fd, buf, len, MSG_NOSIGNAL, 0, bi);
    sqe_fd(sqe, fd);
    if (s->zc_report) sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;   /* the notification says if it was copied */
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static const struct iox_seam_ops uring_ops = {
    .accept_multishot = u_accept_multishot, .recv_multishot = u_recv_multishot,
    .recv = u_recv, .send = u_send, .read = u_read, .splice = u_splice, .socket = u_socket,
    .connect = u_connect, .shutdown = u_shutdown, .close = u_close,
    .cancel_fd = u_cancel_fd, .cancel = u_cancel, .timeout = u_timeout,
    .msg_ring = u_msg_ring, .unsent = u_unsent, .unsent_cmd = u_unsent_cmd, .close_sync = u_close_sync, .buf = u_buf, .buf_return = u_buf_return,
    .write = u_write, .peername = u_peername,
    .register_buffers = u_register_buffers, .read_fixed = u_read_fixed, .send_zc = u_send_zc,
};

/* Whether SOCKET_URING_OP_SIOCOUTQ runs on this ring: once, at creation,
 * on a throwaway TCP socket (an unconnected one answers 0). The ring is
 * still empty, so one submit and one CQE. */
static int probe_outq(struct iox_seam_uring *u)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int ok = 0;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (sqe) {
        prep_outq(sqe, fd);
        io_uring_sqe_set_data64(sqe, 0);
        struct io_uring_cqe *cqe;
        if (io_uring_submit_and_wait(&u->ring, 1) >= 0 && io_uring_wait_cqe(&u->ring, &cqe) == 0) {
            ok = cqe->res >= 0;
            io_uring_cqe_seen(&u->ring, cqe);
        }
    }
    close(fd);
    return ok;
}

static void explain_setup_error(int err, char *why, size_t n)
{
    switch (err) {
    case ENOSYS:
        snprintf(why, n, "io_uring_setup: %s — this kernel has no io_uring; run on Linux 6.1 or newer", strerror(err));
        break;
    case EPERM:
        snprintf(why, n, "io_uring_setup: %s — io_uring is blocked by policy (sysctl kernel.io_uring_disabled, "
                 "a seccomp profile or container runtime); set kernel.io_uring_disabled=0 or allow io_uring_setup", strerror(err));
        break;
    case ENOMEM: {
        struct rlimit rl;
        getrlimit(RLIMIT_MEMLOCK, &rl);
        snprintf(why, n, "io_uring_setup: %s — ring memory could not be locked (RLIMIT_MEMLOCK %llu bytes); "
                 "raise it with `ulimit -l unlimited` or use a kernel ≥ 5.12, or lower IOX_SQ_ENTRIES",
                 strerror(err), (unsigned long long)rl.rlim_cur);
        break;
    }
    default:
        snprintf(why, n, "io_uring_setup: %s", strerror(err));
    }
}

/* Does the kernel take IOU_PBUF_RING_INC? A throwaway one-entry buffer
 * ring in group PROBE_BGID registered with the flag, then unregistered:
 * -EINVAL is a kernel older than 6.12 (it refuses unknown flags). */
static int probe_inc(struct io_uring *ring)
{
    void *br = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br == MAP_FAILED) return -errno;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (unsigned long)br;
    reg.ring_entries = 1;
    reg.bgid = PROBE_BGID;
    reg.pad = IOU_PBUF_RING_INC;
    int r = io_uring_register_buf_ring(ring, &reg, 0);
    if (r == 0) {
        int ur = io_uring_unregister_buf_ring(ring, PROBE_BGID);
        if (ur < 0) IOX_WARN("io_uring_unregister_buf_ring (probe group %d): %s", PROBE_BGID, strerror(-ur));
    }
    munmap(br, 4096);
    return r;
}

/* Which provided buffers (cfg->recv_bufs, IOX_RECV_BUFS), and the buffer
 * defaults that go with them: plain 1024 x 4 KiB (one buffer per receive,
 * however small); incremental 64 x 64 KiB — the same 4 MiB, a bulk receive
 * takes up to 64 KiB in one CQE while small requests share a buffer. auto
 * is plain: measured here (docs/architecture.md "The kernel path"), the
 * slice books cost ~50-70 Ir per keep-alive request and 64 KiB receives
 * cost more server CPU per MiB uploaded (the carry path), for 12x fewer
 * recv CQEs. The probe still runs for auto, so the startup line says
 * whether inc could be had. Sets u->inc, *label (the startup line's words
 * for plain), the slice table for inc. */
static int choose_bufs(struct iox_seam_uring *u, struct iox_uring_config *c, const char **label,
                       char *why, size_t why_len)
{
    u->inc = 0;
    if (c->recv_bufs == IOX_RECV_BUFS_PLAIN) {
        *label = "plain (IOX_RECV_BUFS=plain)";
    } else {
        int r = probe_inc(&u->ring);
        if (r == 0 && c->recv_bufs == IOX_RECV_BUFS_INC) {
            u->inc = 1;
        } else if (c->recv_bufs == IOX_RECV_BUFS_INC) {
            snprintf(why, why_len, "IOX_RECV_BUFS=inc: the kernel refuses incremental provided buffers "
                     "(io_uring_register_buf_ring with IOU_PBUF_RING_INC: %s) — they need Linux 6.12+; "
                     "use IOX_RECV_BUFS=auto or plain", strerror(-r));
            return r < 0 ? r : -EINVAL;
        } else if (r == 0) {
            *label = "plain (IOX_RECV_BUFS=auto; the kernel has IOU_PBUF_RING_INC: IOX_RECV_BUFS=inc)";
        } else {
            *label = r == -EINVAL ? "plain (IOX_RECV_BUFS=auto; kernel < 6.12: no IOU_PBUF_RING_INC)"
                                  : "plain (IOX_RECV_BUFS=auto; the IOU_PBUF_RING_INC probe failed)";
            if (r != -EINVAL) IOX_WARN("io_uring: probe for IOU_PBUF_RING_INC: %s", strerror(-r));
        }
    }
    if (!c->buf_count) c->buf_count = u->inc ? 64 : 1024;
    if (!c->buf_size) c->buf_size = u->inc ? 65536 : 4096;
    if (u->inc && iox_slices_init(&u->sl, c->buf_count, IOX_SLICES) < 0) {
        snprintf(why, why_len, "out of memory allocating the recv buffer slice table");
        return -ENOMEM;
    }
    return 0;
}

int iox_seam_uring_create(const struct iox_uring_config *cfg, struct iox_seam_uring **out,
                          char *why, size_t why_len)
{
    struct iox_uring_config c = *cfg;
    if (!c.sq_entries) c.sq_entries = 4096;
    if (!c.cq_entries) c.cq_entries = c.sq_entries * 4;
    if (c.buf_count & (c.buf_count - 1) || c.buf_count > 32768) {
        snprintf(why, why_len, "recv buffer count %u must be a power of two ≤ 32768 (IOX_RECV_BUFFERS)", c.buf_count);
        return -EINVAL;
    }
    struct iox_seam_uring *u = calloc(1, sizeof *u);
    if (!u) { snprintf(why, why_len, "out of memory allocating the ring"); return -ENOMEM; }
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
              IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
    p.cq_entries = c.cq_entries;
    int r = io_uring_queue_init_params(c.sq_entries, &u->ring, &p);
    if (r == -EINVAL) {
        /* Kernel older than 6.1: no DEFER_TASKRUN. Say so and carry on. */
        IOX_WARN("io_uring: SINGLE_ISSUER|DEFER_TASKRUN unsupported (kernel < 6.1); using a plain ring");
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = c.cq_entries;
        r = io_uring_queue_init_params(c.sq_entries, &u->ring, &p);
    }
    if (r < 0) {
        explain_setup_error(-r, why, why_len);
        free(u);
        return r;
    }
    u->base.ops = &uring_ops;
    u->on_valgrind = RUNNING_ON_VALGRIND ? 1 : 0;
    const char *inc_why = "plain";
    if ((r = choose_bufs(u, &c, &inc_why, why, why_len)) < 0) {
        io_uring_queue_exit(&u->ring);
        free(u);
        return r;
    }
    u->base.buf_size = c.buf_size;
    u->base.buf_count = c.buf_count;
    u->br_mask = c.buf_count - 1;
    u->br_bytes = (size_t)c.buf_count * sizeof(struct io_uring_buf);
    /* liburing 2.3 has no io_uring_setup_buf_ring: map the ring ourselves. */
    u->br = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    u->bufs_bytes = (size_t)c.buf_count * c.buf_size;
    u->bufs = mmap(NULL, u->bufs_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (u->br == MAP_FAILED || u->bufs == MAP_FAILED) {
        snprintf(why, why_len, "mmap of %zu bytes of recv buffers failed: %s (lower IOX_RECV_BUFFERS)",
                 u->bufs_bytes, strerror(errno));
        if (u->br != MAP_FAILED) munmap(u->br, u->br_bytes);
        iox_slices_fini(&u->sl);
        if (u->bufs != MAP_FAILED) munmap(u->bufs, u->bufs_bytes);
        io_uring_queue_exit(&u->ring);
        free(u);
        return -ENOMEM;
    }
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (unsigned long)u->br;
    reg.ring_entries = c.buf_count;
    reg.bgid = BGID;
    reg.pad = u->inc ? IOU_PBUF_RING_INC : 0;   /* `flags` in the kernel's struct */
    r = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (r < 0) {
        snprintf(why, why_len, "io_uring_register_buf_ring: %s — provided buffer rings need Linux 5.19+", strerror(-r));
        iox_slices_fini(&u->sl);
        munmap(u->br, u->br_bytes);
        munmap(u->bufs, u->bufs_bytes);
        io_uring_queue_exit(&u->ring);
        free(u);
        return r;
    }
    io_uring_buf_ring_init(u->br);
    for (unsigned i = 0; i < c.buf_count; i++) buf_give(u, i);
    io_uring_buf_ring_advance(u->br, (int)u->br_pending);
    u->br_pending = 0;
    /* The ring's own fd registered with itself (Linux 5.18): io_uring_enter
     * then skips the fd table lookup and reference count on every call.
     * Other reactors still reach this ring through its real fd (MSG_RING). */
    u->reg_ring_fd = io_uring_register_ring_fd(&u->ring) == 1;
    u->defer_taskrun = (p.flags & IORING_SETUP_DEFER_TASKRUN) != 0;
    const char *oc = getenv("IOX_OP_COUNTS");
    u->count_ops = oc && oc[0] == '1';
    u->cq_entries = p.cq_entries;
    u->direct_mode = (uint8_t)c.direct_fds;
    u->ring_outq = probe_outq(u);
    u->bufs_label = u->inc ? "incremental (IOU_PBUF_RING_INC)" : inc_why;
    *out = u;
    return 0;
}

/* Once per process: what the kernel gave us. */
static void startup_line(struct iox_seam_uring *u, const char *direct)
{
    static _Atomic int logged;
    if (atomic_exchange(&logged, 1)) return;
    IOX_INFO("io_uring: %s, CQ %u, provided buffer ring %u x %u B %s, registered ring fd %s, multishot accept/recv, "
             "SIOCOUTQ %s, direct descriptors %s",
             u->defer_taskrun ? "SINGLE_ISSUER|DEFER_TASKRUN|SUBMIT_ALL" : "plain ring (no DEFER_TASKRUN)",
             u->cq_entries, u->base.buf_count, u->base.buf_size, u->bufs_label,
             u->reg_ring_fd ? "yes" : "no (kernel < 5.18)",
             u->ring_outq ? "on the ring" : "ioctl (kernel < 6.7)", direct);
}

/* Headroom over the protocols' connections: accepts that complete in one
 * batch while the protocol is full take a slot each until they are
 * refused (closed at once); without room the accept fails with -ENFILE and
 * pauses for a tick. Small: slots of closing connections are still
 * counted by their protocol. */
static unsigned table_size(unsigned conns)
{
    unsigned long n = (unsigned long)conns + conns / 64 + 64;
    return n > IOX_MAX_FIXED_FILES ? IOX_MAX_FIXED_FILES : (unsigned)n;
}

int iox_seam_uring_files(struct iox_seam_uring *u, unsigned conns, char *why, size_t why_len)
{
    char line[256];
    const int on = u->direct_mode == IOX_DIRECT_ON;
    if (u->direct_mode == IOX_DIRECT_OFF) { startup_line(u, "no (IOX_DIRECT_FDS=off)"); return 0; }
    if (!conns) { startup_line(u, "no (no listener on this ring)"); return 0; }
    /* SIOCOUTQ on the ring is what the deadline renewal needs on a slot
     * (no ioctl can reach it); it is Linux 6.7, so it also implies every
     * other piece used here: sparse tables and FILE_INDEX_ALLOC (5.19),
     * IORING_ASYNC_CANCEL_FD_FIXED (6.0), socket URING_CMDs (6.7). */
    if (!u->ring_outq) {
        snprintf(line, sizeof line, "no (the kernel has no SOCKET_URING_OP_SIOCOUTQ: Linux < 6.7)");
        if (on) {
            snprintf(why, why_len, "IOX_DIRECT_FDS=on: this kernel cannot — it has no SIOCOUTQ ring command "
                     "(Linux 6.7+), which deadlines on direct descriptors need; run a newer kernel or set "
                     "IOX_DIRECT_FDS=auto or off");
            return -EOPNOTSUPP;
        }
        startup_line(u, line);
        return 0;
    }
    unsigned n = table_size(conns);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && n > rl.rlim_cur) {
        /* The kernel refuses a table larger than the open-file limit
         * (-EMFILE), though its slots are no open fds: say so with the fix. */
        if (on) {
            snprintf(why, why_len, "IOX_DIRECT_FDS=on: the direct descriptor table of %u slots (%u connections "
                     "(IOX_MAX_CONNS) + headroom) is over RLIMIT_NOFILE %llu, and the kernel refuses a table larger "
                     "than the open-file limit — raise it (`ulimit -n %u`, LimitNOFILE=%u), lower IOX_MAX_CONNS, "
                     "or set IOX_DIRECT_FDS=auto or off", n, conns, (unsigned long long)rl.rlim_cur, n, n);
            return -EMFILE;
        }
        snprintf(line, sizeof line, "no (a table of %u slots is over RLIMIT_NOFILE %llu: raise `ulimit -n` to %u "
                 "or lower IOX_MAX_CONNS)", n, (unsigned long long)rl.rlim_cur, n);
        startup_line(u, line);
        return 0;
    }
    int r = io_uring_register_files_sparse(&u->ring, n);
    if (r < 0) {
        if (on) {
            snprintf(why, why_len, "IOX_DIRECT_FDS=on: io_uring_register_files_sparse(%u): %s — %s", n, strerror(-r),
                     r == -EMFILE ? "the table is over RLIMIT_NOFILE: raise `ulimit -n` or lower IOX_MAX_CONNS"
                     : r == -ENOMEM ? "no kernel memory for the table: lower IOX_MAX_CONNS"
                     : "set IOX_DIRECT_FDS=auto or off");
            return r;
        }
        snprintf(line, sizeof line, "no (io_uring_register_files_sparse(%u): %s)", n, strerror(-r));
        startup_line(u, line);
        return 0;
    }
    u->nfiles = n;
    u->base.direct = 1;
    snprintf(line, sizeof line, "yes (table %u)", n);
    startup_line(u, line);
    return 0;
}

void iox_seam_uring_destroy(struct iox_seam_uring *u)
{
    if (!u) return;
    if (u->count_ops) {
        static const char *const names[64] = {
            [IORING_OP_NOP] = "nop", [IORING_OP_TIMEOUT] = "timeout",
            [IORING_OP_TIMEOUT_REMOVE] = "timeout_remove", [IORING_OP_ACCEPT] = "accept",
            [IORING_OP_ASYNC_CANCEL] = "cancel", [IORING_OP_CONNECT] = "connect",
            [IORING_OP_CLOSE] = "close", [IORING_OP_READ] = "read", [IORING_OP_WRITE] = "write",
            [IORING_OP_SEND] = "send", [IORING_OP_RECV] = "recv", [IORING_OP_SPLICE] = "splice",
            [IORING_OP_SHUTDOWN] = "shutdown", [IORING_OP_MSG_RING] = "msg_ring",
            [IORING_OP_SOCKET] = "socket", [IORING_OP_URING_CMD] = "uring_cmd",
        };
        char line[512];
        size_t n = 0;
        uint64_t total = 0;
        for (unsigned i = 0; i < 64; i++) {
            if (!u->op_counts[i]) continue;
            total += u->op_counts[i];
            int w = snprintf(line + n, sizeof line - n, " %s=%llu", names[i] ? names[i] : "op",
                             (unsigned long long)u->op_counts[i]);
            if (w > 0 && (size_t)w < sizeof line - n) n += (size_t)w;
        }
        line[n] = 0;
        IOX_INFO("io_uring SQEs by opcode (IOX_OP_COUNTS): total=%llu%s", (unsigned long long)total, line);
    }
    io_uring_queue_exit(&u->ring);
    munmap(u->br, u->br_bytes);
    munmap(u->bufs, u->bufs_bytes);
    iox_slices_fini(&u->sl);
    free(u);
}

struct iox_seam *iox_seam_uring_seam(struct iox_seam_uring *u) { return &u->base; }
int iox_seam_uring_ring_fd(struct iox_seam_uring *u) { return u->ring.ring_fd; }

int iox_seam_uring_submit_and_wait(struct iox_seam_uring *u, unsigned wait_nr)
{
    if (u->br_pending) {
        io_uring_buf_ring_advance(u->br, (int)u->br_pending);
        u->br_pending = 0;
    }
    if (u->count_ops) count_pending(u);
    if (u->on_valgrind && wait_nr) {
        /* See the top of the file: poll the ring, sleep outside it. */
        for (;;) {
            int r = io_uring_submit_and_get_events(&u->ring);
            if (r < 0 && r != -EINTR && r != -EBUSY && r != -EAGAIN) return r;
            if (io_uring_cq_ready(&u->ring) >= wait_nr) return 0;
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    for (;;) {
        int r = io_uring_submit_and_wait(&u->ring, wait_nr);
        if (r >= 0) return 0;
        if (r == -EINTR) continue;   /* a signal is not an error (LESSONS.md) */
        /* -EBUSY/-EAGAIN: CQ overflow backlog; reap first, then enter again. */
        if (r == -EBUSY || r == -EAGAIN) return 0;
        return r;
    }
}

/* None ready: io_uring_peek_batch_cqe also flushes completions the kernel
 * kept back after a CQ overflow (IORING_SQ_CQ_OVERFLOW). Apart, so the fast
 * path below has no 2 KiB array of pointers in its frame. */
static __attribute__((noinline, cold)) void slices_full(struct iox_seam_uring *u)
{
    if (u->slices_full_warned) return;
    u->slices_full_warned = 1;
    IOX_WARN("io_uring: all %u recv buffer slices are out — a consumer keeps recv buffers without "
             "returning them; receives wait until slices come back", u->sl.nslots);
}

/* Incremental buffers: a CQE with bytes becomes a slice, whose handle
 * replaces the buffer id in its flags (seam_slices.h). 0 when every handle
 * is out: the CQE stays on the ring for a later reap. */
static inline int inc_cqe(struct iox_seam_uring *u, struct iox_cqe *o)
{
    if (!(o->flags & IORING_CQE_F_BUFFER) || o->res <= 0) return 1;
    unsigned h = iox_slices_take(&u->sl, o->flags >> IORING_CQE_BUFFER_SHIFT, (uint32_t)o->res,
                                 !(o->flags & IORING_CQE_F_BUF_MORE));
    if (h == IOX_SLICE_NONE) { slices_full(u); return 0; }
    o->flags = (o->flags & ((1u << IORING_CQE_BUFFER_SHIFT) - 1)) | (h << IORING_CQE_BUFFER_SHIFT);
    return 1;
}

static __attribute__((noinline)) unsigned reap_peek(struct iox_seam_uring *u, struct iox_cqe *out,
                                                    unsigned max)
{
    struct io_uring_cqe *cqes[256];
    unsigned n = io_uring_peek_batch_cqe(&u->ring, cqes, max);
    for (unsigned i = 0; i < n; i++) {
        out[i].ud = cqes[i]->user_data;
        out[i].res = cqes[i]->res;
        out[i].flags = cqes[i]->flags;
        if (u->inc && !inc_cqe(u, &out[i])) { n = i; break; }
    }
    io_uring_cq_advance(&u->ring, n);
    return n;
}

/* CQEs ready: read them straight off the ring (io_uring_for_each_cqe; the
 * ring has 16-byte CQEs, no IORING_SETUP_CQE32). With incremental buffers
 * (inc) a CQE with bytes becomes a slice here, in the same loop. One
 * function per mode, each with inc constant, reached by a tail call:
 * measured per keep-alive request, a noinline inc loop called from the
 * plain one's frame cost +100 Ir, one loop testing u->inc per CQE +35 on
 * the plain mode, both loops inlined in one function +24 on it (a larger
 * frame). */
static inline __attribute__((always_inline)) unsigned reap_ready(struct iox_seam_uring *u, struct iox_cqe *out,
                                                                 unsigned max, const int inc)
{
    unsigned n = 0, head;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&u->ring, head, cqe) {
        uint32_t flags = cqe->flags;
        int32_t res = cqe->res;
        if (inc && (flags & IORING_CQE_F_BUFFER) && res > 0) {
            unsigned h = iox_slices_take(&u->sl, flags >> IORING_CQE_BUFFER_SHIFT, (uint32_t)res,
                                         !(flags & IORING_CQE_F_BUF_MORE));
            if (h == IOX_SLICE_NONE) { slices_full(u); break; }   /* the CQE waits on the ring */
            flags = (flags & ((1u << IORING_CQE_BUFFER_SHIFT) - 1)) | (h << IORING_CQE_BUFFER_SHIFT);
        }
        out[n].ud = cqe->user_data;
        out[n].res = res;
        out[n].flags = flags;
        if (++n == max) break;
    }
    io_uring_cq_advance(&u->ring, n);
    return n;
}

static __attribute__((noinline)) unsigned reap_plain(struct iox_seam_uring *u, struct iox_cqe *out, unsigned max)
{
    return reap_ready(u, out, max, 0);
}

static __attribute__((noinline)) unsigned reap_inc(struct iox_seam_uring *u, struct iox_cqe *out, unsigned max)
{
    return reap_ready(u, out, max, 1);
}

unsigned iox_seam_uring_reap(struct iox_seam_uring *u, struct iox_cqe *out, unsigned max)
{
    if (max > 256) max = 256;
    if (!io_uring_cq_ready(&u->ring)) return reap_peek(u, out, max);
    return u->inc ? reap_inc(u, out, max) : reap_plain(u, out, max);
}

unsigned iox_seam_uring_overflows(struct iox_seam_uring *u)
{
    return u->ring.cq.koverflow ? *u->ring.cq.koverflow : 0;
}

int iox_seam_uring_bufs_inc(struct iox_seam_uring *u) { return u->inc; }
