/* ioxide/seam_sim.h — a simulated ring for deterministic tests of machines.
 *
 * Operations queued through the seam are recorded, not performed. The test
 * decides what completes, when, and how: bytes arriving on a multishot recv
 * (taking provided buffers from a simulated buffer ring, -ENOBUFS when it is
 * dry) or into a plain recv's own buffer, EOF, resets, short or failed
 * sends, timeouts, messages between linked simulated rings (msg_ring),
 * positional reads filled from real files (short, failed, early EOF).
 * Cancels, closes and shutdowns complete by themselves on iox_sim_pump().
 * Every completion is handed to the sink (normally iox_reactor_dispatch).
 *
 * The simulator also keeps the books a test asserts on: provided buffers
 * lent and returned (a double return is counted as a violation), closes per
 * fd, ops still live per fd, any op queued on an fd after its close, and
 * the bytes each fd's peer has received. */
#ifndef IOX_SEAM_SIM_H
#define IOX_SEAM_SIM_H
#include <ioxide/seam.h>
#include <stddef.h>
#include <stdint.h>

struct iox_seam_sim;
typedef void (*iox_sim_sink)(void *ctx, const struct iox_cqe *cqe);

/* nbufs provided buffers of bufsize bytes; fds handled are [0, 4096). */
struct iox_seam_sim *iox_sim_create(unsigned nbufs, unsigned bufsize);
void iox_sim_destroy(struct iox_seam_sim *s);
struct iox_seam *iox_sim_seam(struct iox_seam_sim *s);
/* Switch the simulated buffer ring to incremental buffers (the real ring's
 * IOU_PBUF_RING_INC mode), before any buffer is lent: each delivered chunk
 * takes the next bytes of the head buffer (at most what is left of it;
 * IOX_CQE_F_BUF_MORE while the buffer is not full), its CQE carries a slice
 * handle (ioxide/seam.h), and a buffer re-enters the ring (on
 * iox_sim_publish) only when it is full and every slice of it came back.
 * iox_sim_bufs_lent then counts slices out; a slice returned twice or never
 * lent is a violation. Returns 0, -EBUSY (buffers lent, or already on), or
 * -ENOMEM. */
int iox_sim_use_inc(struct iox_seam_sim *s);
void iox_sim_set_sink(struct iox_seam_sim *s, iox_sim_sink fn, void *ctx);

/* Deliver bytes to the multishot recv armed on fd, one provided buffer per
 * chunk of at most `chunk` bytes (0 = buffer size). Returns the bytes
 * delivered: fewer than len when the buffer ring ran dry (the recv then
 * ended with -ENOBUFS and the rest is still "in the socket"), or -1 when no
 * recv is armed on fd. */
long iox_sim_recv(struct iox_seam_sim *s, int fd, const void *data, size_t len, size_t chunk);
/* Like iox_sim_recv (chunks of one buffer), but the completion carrying the
 * last byte also ends the multishot recv: no IOX_CQE_F_MORE on it, as the
 * kernel does when it stops a multishot (CQ overflow, a buffer ring change).
 * The owner must arm a new recv to read on. Same returns. */
long iox_sim_recv_last(struct iox_seam_sim *s, int fd, const void *data, size_t len);
/* Complete the oldest plain (non-multishot) recv on fd — one that reads
 * into a buffer of its own, like the pg client's — by copying up to len
 * bytes into the buffer it recorded (at most the length it asked for). The
 * completion's res is the count. Returns the bytes taken (the caller keeps
 * the rest "in the socket" for the next recv), 0 when len is 0, or -1 when
 * no plain recv is queued on fd. EOF and errors: iox_sim_recv_end. */
long iox_sim_recv_into(struct iox_seam_sim *s, int fd, const void *data, size_t len);
/* Complete the oldest live op of kind `op` on fd (-1 for ops on no fd:
 * socket, timeout) with `res`, e.g. IORING_OP_SOCKET with a fake fd, or a
 * connect with -ECONNREFUSED. Returns 0, or -1 when there is none. */
int iox_sim_complete_one(struct iox_seam_sim *s, unsigned op, int fd, int res);
/* The address of the last connect submitted on fd, as text: "1.2.3.4:5432",
 * "[::1]:5432" or the Unix socket path; "" when none. Valid until the next
 * connect on fd. */
const char *iox_sim_connect_addr(struct iox_seam_sim *s, int fd);
/* End the armed recv on fd with res (0 = EOF, -ECONNRESET, ...). -1 if none. */
int iox_sim_recv_end(struct iox_seam_sim *s, int fd, int res);
/* Complete the oldest send on fd: `res` > 0 sends min(res, len) bytes (a
 * short send when less), res <= 0 fails it with that value (0 → full send).
 * The bytes sent are appended to the fd's peer capture. -1 if none. */
int iox_sim_send(struct iox_seam_sim *s, int fd, int res);
/* SEND_ZC (a file stream's zero-copy path) completes twice. The oldest
 * one on fd whose result is owed gets it: res > 0 that many bytes reach the
 * peer (0: all), res < 0 fails; more: IOX_CQE_F_MORE (a notification
 * follows), else the op is over. iox_sim_send_zc_notif delivers the oldest
 * owed notification (IOX_CQE_F_NOTIF), before or after the result. A
 * cancel delivers what is owed (-ECANCELED with F_MORE, the notification).
 * Return 0, or -1 (none). */
int iox_sim_send_zc(struct iox_seam_sim *s, int fd, int res, int more);
int iox_sim_send_zc_notif(struct iox_seam_sim *s, int fd);
/* The same notification, saying the kernel copied the bytes (res
 * IOX_NOTIF_ZC_COPIED, as with IORING_SEND_ZC_REPORT_USAGE). 0, or -1 when
 * no zero-copy send on fd owes one. */
int iox_sim_send_zc_notif_copied(struct iox_seam_sim *s, int fd);
/* What the socket's send queue holds unacknowledged (SIOCOUTQ) from now on:
 * bytes the simulated peer has not taken yet. Default 0. */
void iox_sim_set_unsent(struct iox_seam_sim *s, int fd, uint32_t n);
/* Complete every live op of kind `op` (enum iox_op) with `res`. */
int iox_sim_complete_all(struct iox_seam_sim *s, unsigned op, int res);
/* Run self-completing ops (cancel, close, shutdown) until none is left.
 * Returns how many completions were delivered. */
int iox_sim_pump(struct iox_seam_sim *s);

/* Cross-reactor messages. Several simulated rings can be linked so that a
 * msg_ring on one reaches another: iox_sim_link_ring(a, fd, b) makes a's
 * msg_ring ops addressed to ring fd `fd` land on b. A msg_ring stays queued
 * on the sender until the test completes it, in any order it likes (so
 * messages can be delayed and reordered, within one sender and between
 * senders):
 *   iox_sim_msgs(s)                 how many are queued on s;
 *   iox_sim_msg_peek(s, k, ...)     the k-th (oldest first): target ring fd,
 *                                   len (the target CQE's res, the kind) and
 *                                   data (its user_data, the payload);
 *   iox_sim_msg_complete(s, k, res) res >= 0: deliver — the target's sink
 *                                   gets {data, len}, then the sender's gets
 *                                   {ud, 0} (-EBADF instead, and nothing
 *                                   delivered, if the fd is not linked);
 *                                   res < 0: the sender's completion fails
 *                                   with res and nothing is delivered
 *                                   (-EOVERFLOW: target CQ full; -EBADF,
 *                                   -ENXIO: target gone).
 * Return 0, or -1 (no such message) / -ENOSPC (more than 16 links). */
int iox_sim_link_ring(struct iox_seam_sim *s, int ring_fd, struct iox_seam_sim *target);
unsigned iox_sim_msgs(struct iox_seam_sim *s);
int iox_sim_msg_peek(struct iox_seam_sim *s, unsigned k, int *ring_fd, uint32_t *len, uint64_t *data);
int iox_sim_msg_complete(struct iox_seam_sim *s, unsigned k, int res);

/* Positional reads (IORING_OP_READ: a file stream's chunk into a write
 * buffer). They stay queued until the test completes them, in any order:
 *   iox_sim_reads(s)                    how many are live;
 *   iox_sim_read_peek(s, k, ...)        the k-th (oldest first): fd, file
 *                                       offset, length asked, user_data;
 *   iox_sim_read_complete(s, k, max, err, &res)
 *                                       err < 0: fail it with err (-EIO);
 *                                       else read min(max, length) bytes of
 *                                       the real file fd at the recorded
 *                                       offset (pread) into the recorded
 *                                       buffer: max < length is a short
 *                                       read, max 0 (or the end of the
 *                                       file) completes with 0, an early
 *                                       EOF. res: the completion's res.
 * Return 0, or -1 (no such read). */
unsigned iox_sim_reads(struct iox_seam_sim *s);
int iox_sim_read_peek(struct iox_seam_sim *s, unsigned k, int *fd, uint64_t *off, size_t *len, uint64_t *ud);
int iox_sim_read_complete(struct iox_seam_sim *s, unsigned k, size_t max, int err, int *res);

/* Splices (IORING_OP_SPLICE: a file stream's file → pipe → socket path),
 * queued until the test completes them:
 *   iox_sim_splices(s)                  how many are live;
 *   iox_sim_splice_peek(s, k, ...)      the k-th (oldest first): fd_in, its
 *                                       offset (-1: a pipe), fd_out,
 *                                       length asked, user_data;
 *   iox_sim_splice_complete(s, k, max, err, &res)
 *                                       err < 0: fail it with err; else move
 *                                       min(max, length) bytes for real:
 *                                       file → pipe with splice(2) (both
 *                                       are the test's real descriptors),
 *                                       pipe → socket by reading the real
 *                                       pipe into the simulated socket's
 *                                       peer bytes (iox_sim_peer_bytes);
 *                                       never blocking: a pipe holding
 *                                       fewer bytes gives what it holds
 *                                       (0 when empty: an owner that
 *                                       miscounts its pipe sees it).
 *                                       res: the completion's res.
 * Return 0, or -1 (no such splice). */
unsigned iox_sim_splices(struct iox_seam_sim *s);
int iox_sim_splice_peek(struct iox_seam_sim *s, unsigned k, int *in, int64_t *off_in, int *out, size_t *len, uint64_t *ud);
int iox_sim_splice_complete(struct iox_seam_sim *s, unsigned k, size_t max, int err, int *res);

/* The next n submissions of ops of kind `op` fail at once with err (what
 * the real seam returns when no SQE can be had: -EBUSY); 0 ends it. Only
 * reads return the error as given; other ops report -EBUSY. */
void iox_sim_fail_submit(struct iox_seam_sim *s, unsigned op, unsigned n, int err);

/* Make buffers returned since the last call available to recv again — what
 * the real ring does at submit time (one buf-ring advance per loop turn). */
void iox_sim_publish(struct iox_seam_sim *s);

/* Books. */
int iox_sim_has_op(struct iox_seam_sim *s, unsigned op, int fd);
unsigned iox_sim_live_ops(struct iox_seam_sim *s, int fd);
unsigned iox_sim_closes(struct iox_seam_sim *s, int fd);
unsigned iox_sim_bufs_lent(struct iox_seam_sim *s);
unsigned iox_sim_violations(struct iox_seam_sim *s);   /* double returns, ops after close, a close queued while another op (not a cancel) is live on its fd */
const char *iox_sim_peer_bytes(struct iox_seam_sim *s, int fd, size_t *len);
void iox_sim_peer_clear(struct iox_seam_sim *s, int fd);
const char *iox_sim_last_violation(struct iox_seam_sim *s);

#endif
