/* ioxide/seam.h — the ring seam: the only way machines reach io_uring.
 *
 * A machine asks the seam to start an operation on behalf of an owner slot
 * (the user_data, see ioxide/ud.h) and later receives the completion as a
 * struct iox_cqe through the reactor's dispatch. Two implementations:
 *   - seam_uring.c: the real ring (one per reactor thread) with its provided
 *     buffer ring for multishot recv;
 *   - seam_sim.c:   a simulated ring whose completions a test drives
 *     (ioxide/seam_sim.h), so every machine can be run deterministically.
 *
 * Conventions (liburing's): every call returns 0 or -errno and never sets
 * errno. A return of -EBUSY means no SQE could be had even after flushing
 * the submission queue; the caller treats the op as not started. Buffers
 * passed to send/recv/read must stay valid until the completion arrives.
 * Multishot recv picks buffers from the seam's provided buffer group; the
 * completion carries IOX_CQE_F_BUFFER and, in its upper 16 bits
 * (flags >> IOX_CQE_BUFFER_SHIFT), a buffer handle h: the completion's res
 * bytes are at iox_seam_buf(s, h) until iox_seam_buf_return(s, h), which
 * every completion with res > 0 and IOX_CQE_F_BUFFER needs exactly once
 * (a stale one too). With plain provided buffers h is the kernel's buffer
 * id; with incremental ones (IOU_PBUF_RING_INC) h names a slice — one
 * receive's bytes inside a larger buffer that later receives keep filling —
 * and the seam gives the buffer back to the kernel only when the kernel is
 * done with it and every slice of it came back. Either way the caller sees
 * one contiguous span per completion and must not assume h < buf_count or
 * that two completions' bytes are adjacent. */
#ifndef IOX_SEAM_H
#define IOX_SEAM_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Completion flags, values equal to the kernel's IORING_CQE_F_*. */
#define IOX_CQE_F_BUFFER (1u << 0)
#define IOX_CQE_F_MORE   (1u << 1)
#define IOX_CQE_F_NOTIF  (1u << 3)   /* a SEND_ZC's notification: the kernel let go of the buffer */
#define IOX_CQE_F_BUF_MORE (1u << 4) /* incremental buffers: the kernel keeps filling this buffer */
#define IOX_CQE_BUFFER_SHIFT 16

/* ---- Direct descriptors ---------------------------------------------------
 * With IOX_DIRECT_FDS on (seam_uring.c), accepted sockets never get a real
 * fd: multishot accept installs each into a slot of the ring's sparse
 * registered file table and every op names the slot with IOSQE_FIXED_FILE.
 * A slot travels through machines and protocols as an ordinary int with a
 * marker bit, so nothing above the seam changes: IOX_FD_DIRECT | slot. Real
 * fds never reach the bit (the kernel's nr_open is at most 2^30 - 64, so
 * fds stay below 2^30), and the encoded value stays a non-negative int
 * (tests of `fd >= 0` keep meaning "open"). Why a bit and not a separate
 * field: every struct that holds an fd (iox_sock, the dial, the file
 * stream's pipe ends) keeps one int, and the seam is the only place that
 * decodes it — one test and branch per SQE.
 *
 * A direct descriptor is valid only on the ring that owns its table (one
 * per reactor): it must never reach another reactor, close(2), or any
 * other syscall on a real fd (setsockopt, ioctl, getpeername, shutdown):
 * close it with iox_seam_close (a ring op) or iox_seam_close_sync. */
#define IOX_FD_DIRECT (1 << 30)
/* fd names a slot of this ring's registered file table. */
static inline int iox_fd_is_direct(int fd) { return fd >= 0 && (fd & IOX_FD_DIRECT) != 0; }
/* The encoded descriptor of table slot `slot` (an accept CQE's res). */
static inline int iox_fd_direct(unsigned slot) { return (int)(slot | (unsigned)IOX_FD_DIRECT); }
/* The table slot of a direct descriptor. */
static inline unsigned iox_fd_slot(int fd) { return (unsigned)fd & ~(unsigned)IOX_FD_DIRECT; }

/* A completion as machines see it. */
struct iox_cqe {
    uint64_t ud;
    int32_t res;
    uint32_t flags;
};

struct iox_seam;
struct iox_seam_ops {
    int (*accept_multishot)(struct iox_seam *s, int lfd, uint64_t ud);
    int (*recv_multishot)(struct iox_seam *s, int fd, uint64_t ud);
    int (*recv)(struct iox_seam *s, int fd, void *buf, size_t len, uint64_t ud);
    int (*send)(struct iox_seam *s, int fd, const void *buf, size_t len, uint64_t ud);
    int (*read)(struct iox_seam *s, int fd, void *buf, size_t len, uint64_t off, uint64_t ud);
    /* Move up to len bytes from fd_in to fd_out through the kernel
     * (IORING_OP_SPLICE; one of the two is a pipe). off_in: the file offset
     * to read at, or -1 for a pipe (no offset); fd_out is read/written at
     * its own position. Completes with the bytes moved (0: fd_in at end of
     * file) or -errno. */
    int (*splice)(struct iox_seam *s, int fd_in, int64_t off_in, int fd_out, size_t len, uint64_t ud);
    int (*socket)(struct iox_seam *s, int domain, int type, int proto, uint64_t ud);
    int (*connect)(struct iox_seam *s, int fd, const struct sockaddr *sa, socklen_t len, uint64_t ud);
    int (*shutdown)(struct iox_seam *s, int fd, int how, uint64_t ud);
    int (*close)(struct iox_seam *s, int fd, uint64_t ud);
    /* Cancel every op on fd (IORING_ASYNC_CANCEL_FD | _ALL). */
    int (*cancel_fd)(struct iox_seam *s, int fd, uint64_t ud);
    /* Cancel the op(s) queued with user_data `target`. */
    int (*cancel)(struct iox_seam *s, uint64_t target, uint64_t ud);
    /* One-shot relative timeout of `ns` nanoseconds; completes with -ETIME. */
    int (*timeout)(struct iox_seam *s, uint64_t ns, uint64_t ud);
    /* Post a CQE with user_data `data` and res `len` on ring `ring_fd`. */
    int (*msg_ring)(struct iox_seam *s, int ring_fd, uint32_t len, uint64_t data, uint64_t ud);
    /* Bytes written to a stream socket that its peer has not acknowledged
     * yet (SIOCOUTQ), or -errno. A synchronous ioctl: only for rare paths
     * (a deadline that expired), never per request. */
    int (*unsent)(struct iox_seam *s, int fd);
    /* The same on the ring: IORING_OP_URING_CMD with SOCKET_URING_OP_SIOCOUTQ
     * (Linux 6.7; a direct descriptor too). Completes with the unsent
     * bytes or -errno. Returns -EOPNOTSUPP (no SQE used) where the kernel
     * has no such command (probed at ring creation) or the seam does not
     * model it (the simulated ring): the caller uses unsent instead. */
    int (*unsent_cmd)(struct iox_seam *s, int fd, uint64_t ud);
    /* Close fd now, without the ring: close(2), or for a direct descriptor
     * a synchronous io_uring_register_files_update of its slot with -1. For
     * cold paths only (a refused accept, no SQE to be had, teardown); ops
     * still in flight on it keep the file until they end. Returns 0 or
     * -errno. The simulated ring owns no fds: it does nothing. */
    int (*close_sync)(struct iox_seam *s, int fd);
    char *(*buf)(struct iox_seam *s, unsigned bid);
    void (*buf_return)(struct iox_seam *s, unsigned bid);
    /* Write len bytes of buf to fd at offset off ((uint64_t)-1: at the
     * file position — the end, for a file opened O_APPEND). buf must stay
     * valid until the completion: the bytes written, or -errno. */
    int (*write)(struct iox_seam *s, int fd, const void *buf, size_t len, uint64_t off, uint64_t ud);
    /* The peer address of a connected socket into sa, on the ring
     * (getsockopt SO_PEERNAME through SOCKET_URING_OP_GETSOCKOPT, Linux
     * 6.7+). len must be the size of the socket family's address
     * (sockaddr_in or sockaddr_in6: the kernel refuses a larger one); sa
     * must stay valid until the completion: the address length, or -errno
     * (-EOPNOTSUPP or -EINVAL where the kernel has no such command). */
    int (*peername)(struct iox_seam *s, int fd, struct sockaddr *sa, socklen_t len, uint64_t ud);
    /* Registered buffers (io_uring_register_buffers) for read_fixed and
     * send_zc: n buffers, buffer i is iov[i]; the memory must stay valid
     * until the ring is destroyed. Once per ring (cold path, a syscall).
     * Returns 0, -EOPNOTSUPP when the kernel lacks IORING_OP_READ_FIXED or
     * IORING_OP_SEND_ZC (probed) or the seam has no such ops (the
     * simulated ring), or the register call's -errno (-ENOMEM: memlock
     * limit). On success the seam also asks the kernel, when it has it
     * (IORING_SEND_ZC_REPORT_USAGE, Linux 6.2: probed), to say in each
     * send_zc notification whether the bytes were copied after all
     * (zc_report below). */
    int (*register_buffers)(struct iox_seam *s, const struct iovec *iov, unsigned n);
    /* IORING_OP_READ_FIXED: len bytes of fd at off into buf, which lies in
     * registered buffer bi. Completes with the bytes read or -errno. */
    int (*read_fixed)(struct iox_seam *s, int fd, void *buf, size_t len, uint64_t off, unsigned bi, uint64_t ud);
    /* IORING_OP_SEND_ZC from registered buffer bi (IORING_RECVSEND_FIXED_BUF,
     * MSG_NOSIGNAL): the pages are sent without a copy. Two completions with
     * this ud: the result (bytes sent or -errno; IOX_CQE_F_MORE when a
     * notification follows), then the notification (IOX_CQE_F_NOTIF,
     * res 0, or with zc_report res & IOX_NOTIF_ZC_COPIED when the kernel
     * copied the bytes instead: a local receiver on loopback, a device
     * without scatter-gather): only after it may buf be written again. */
    int (*send_zc)(struct iox_seam *s, int fd, const void *buf, size_t len, unsigned bi, uint64_t ud);
};

struct iox_seam {
    const struct iox_seam_ops *ops;
    uint32_t buf_size;   /* bytes per provided buffer */
    uint32_t buf_count;  /* provided buffers */
    /* Accepts land in the registered file table: an accept CQE's res is a
     * slot, not an fd (iox_seam_accepted_fd). Set once, before the first
     * accept (iox_seam_uring_files). */
    uint8_t direct;
    uint8_t zc_report;   /* send_zc notifications say whether the bytes were copied (set by register_buffers) */
};

/* The descriptor an accept completion's res (>= 0) stands for. */
static inline int iox_seam_accepted_fd(const struct iox_seam *s, int res)
{
    return s->direct ? iox_fd_direct((unsigned)res) : res;
}

/* In a send_zc notification's res (zc_report): the kernel copied the bytes
 * (IORING_NOTIF_USAGE_ZC_COPIED, Linux 6.2). */
#define IOX_NOTIF_ZC_COPIED (1U << 31)

static inline int iox_seam_accept_multishot(struct iox_seam *s, int lfd, uint64_t ud) { return s->ops->accept_multishot(s, lfd, ud); }
static inline int iox_seam_recv_multishot(struct iox_seam *s, int fd, uint64_t ud) { return s->ops->recv_multishot(s, fd, ud); }
static inline int iox_seam_recv(struct iox_seam *s, int fd, void *b, size_t n, uint64_t ud) { return s->ops->recv(s, fd, b, n, ud); }
static inline int iox_seam_send(struct iox_seam *s, int fd, const void *b, size_t n, uint64_t ud) { return s->ops->send(s, fd, b, n, ud); }
static inline int iox_seam_read(struct iox_seam *s, int fd, void *b, size_t n, uint64_t off, uint64_t ud) { return s->ops->read(s, fd, b, n, off, ud); }
static inline int iox_seam_splice(struct iox_seam *s, int in, int64_t off_in, int out, size_t n, uint64_t ud) { return s->ops->splice(s, in, off_in, out, n, ud); }
static inline int iox_seam_socket(struct iox_seam *s, int d, int t, int p, uint64_t ud) { return s->ops->socket(s, d, t, p, ud); }
static inline int iox_seam_connect(struct iox_seam *s, int fd, const struct sockaddr *sa, socklen_t l, uint64_t ud) { return s->ops->connect(s, fd, sa, l, ud); }
static inline int iox_seam_shutdown(struct iox_seam *s, int fd, int how, uint64_t ud) { return s->ops->shutdown(s, fd, how, ud); }
static inline int iox_seam_close(struct iox_seam *s, int fd, uint64_t ud) { return s->ops->close(s, fd, ud); }
static inline int iox_seam_cancel_fd(struct iox_seam *s, int fd, uint64_t ud) { return s->ops->cancel_fd(s, fd, ud); }
static inline int iox_seam_cancel(struct iox_seam *s, uint64_t target, uint64_t ud) { return s->ops->cancel(s, target, ud); }
static inline int iox_seam_timeout(struct iox_seam *s, uint64_t ns, uint64_t ud) { return s->ops->timeout(s, ns, ud); }
static inline int iox_seam_msg_ring(struct iox_seam *s, int ring_fd, uint32_t len, uint64_t data, uint64_t ud) { return s->ops->msg_ring(s, ring_fd, len, data, ud); }
static inline int iox_seam_unsent(struct iox_seam *s, int fd) { return s->ops->unsent(s, fd); }
static inline int iox_seam_unsent_cmd(struct iox_seam *s, int fd, uint64_t ud) { return s->ops->unsent_cmd(s, fd, ud); }
static inline int iox_seam_close_sync(struct iox_seam *s, int fd) { return s->ops->close_sync(s, fd); }
static inline char *iox_seam_buf(struct iox_seam *s, unsigned bid) { return s->ops->buf(s, bid); }
static inline void iox_seam_buf_return(struct iox_seam *s, unsigned bid) { s->ops->buf_return(s, bid); }
static inline int iox_seam_write(struct iox_seam *s, int fd, const void *b, size_t n, uint64_t off, uint64_t ud) { return s->ops->write(s, fd, b, n, off, ud); }
static inline int iox_seam_register_buffers(struct iox_seam *s, const struct iovec *iov, unsigned n) { return s->ops->register_buffers(s, iov, n); }
static inline int iox_seam_read_fixed(struct iox_seam *s, int fd, void *b, size_t n, uint64_t off, unsigned bi, uint64_t ud) { return s->ops->read_fixed(s, fd, b, n, off, bi, ud); }
static inline int iox_seam_send_zc(struct iox_seam *s, int fd, const void *b, size_t n, unsigned bi, uint64_t ud) { return s->ops->send_zc(s, fd, b, n, bi, ud); }
static inline int iox_seam_peername(struct iox_seam *s, int fd, struct sockaddr *sa, socklen_t l, uint64_t ud) { return s->ops->peername(s, fd, sa, l, ud); }

/* ---- The real ring ------------------------------------------------------ */
struct iox_uring_config {
    unsigned sq_entries;   /* SQ size (default 4096) */
    unsigned cq_entries;   /* CQ size (default 4 × SQ: multishot ops post many CQEs) */
    unsigned buf_count;    /* provided recv buffers, power of two (default 1024; 64 incremental) */
    unsigned buf_size;     /* bytes each (default 4096; 65536 with incremental buffers) */
    unsigned recv_bufs;    /* enum iox_recv_bufs (IOX_RECV_BUFS): which provided buffers */
    /* IOX_DIRECT_FDS: accepted sockets as direct descriptors (see above).
     * IOX_DIRECT_AUTO (0, the default): when the kernel can (probed);
     * IOX_DIRECT_ON: required — a kernel or limit that cannot is a startup
     * error, never a silent downgrade; IOX_DIRECT_OFF: real fds. */
    unsigned direct_fds;
};
enum { IOX_DIRECT_AUTO = 0, IOX_DIRECT_ON = 1, IOX_DIRECT_OFF = 2 };
/* Provided buffers for multishot recv. AUTO: plain (what measured best
 * here; the kernel is still probed so the startup line says whether INC
 * could be had). INC: incremental (Linux 6.12); one the kernel refuses
 * fails the ring's creation with a line saying so. */
enum iox_recv_bufs { IOX_RECV_BUFS_AUTO = 0, IOX_RECV_BUFS_PLAIN, IOX_RECV_BUFS_INC };
struct iox_seam_uring;

/* Create the ring on the CALLING thread (SINGLE_ISSUER: only this thread may
 * submit) with SINGLE_ISSUER | DEFER_TASKRUN | SUBMIT_ALL and a CQ larger
 * than the SQ, and register the provided buffer ring (group 0), incremental
 * or plain per cfg->recv_bufs. Returns 0 and *out, or -errno with a
 * one-line cause and fix written to `why`. */
int iox_seam_uring_create(const struct iox_uring_config *cfg, struct iox_seam_uring **out,
                          char *why, size_t why_len);
/* The registered file table for direct descriptors, once per ring, after
 * the protocols said how many connections they hold (`conns`, 0: no
 * listener, no table) and before the first accept. Sizes the sparse table
 * at conns plus headroom (accepts that complete in one batch before the
 * protocol refuses), decides by cfg->direct_fds and the probe, sets
 * seam->direct, and writes the ring's startup line (once per process;
 * "direct descriptors yes (table N)" or "no (why)"). Returns 0, or -errno
 * with a one-line cause and fix in `why` when IOX_DIRECT_FDS=on cannot be
 * had (kernel without it; a table over RLIMIT_NOFILE). */
int iox_seam_uring_files(struct iox_seam_uring *u, unsigned conns, char *why, size_t why_len);
void iox_seam_uring_destroy(struct iox_seam_uring *u);
struct iox_seam *iox_seam_uring_seam(struct iox_seam_uring *u);
int iox_seam_uring_ring_fd(struct iox_seam_uring *u);
/* One loop turn's kernel entry: publish returned buffers, submit, wait for
 * at least `wait_nr` completions (DEFER_TASKRUN runs task work here). EINTR
 * is retried. Returns 0 or -errno. */
int iox_seam_uring_submit_and_wait(struct iox_seam_uring *u, unsigned wait_nr);
/* Copy up to `max` ready completions into `out` and mark them seen.
 * Returns how many (0 when none are ready). */
unsigned iox_seam_uring_reap(struct iox_seam_uring *u, struct iox_cqe *out, unsigned max);
/* Number of times the CQ overflowed (kernel kept the CQEs; counted for logs). */
unsigned iox_seam_uring_overflows(struct iox_seam_uring *u);
/* 1 when the ring's provided buffers are incremental (IOU_PBUF_RING_INC),
 * 0 when plain. */
int iox_seam_uring_bufs_inc(struct iox_seam_uring *u);

#endif
