/* seam_sim.c — the simulated ring (see ioxide/seam_sim.h). Test-only code, but
 * in the library so fuzzers and benches can drive machines through it. */
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include "seam_slices.h"
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define SIM_FDS 4096
#define SIM_OPS 8192

struct sim_op {
    uint64_t ud;
    uint64_t target;     /* cancel: user_data to cancel; msg_ring: the target CQE's user_data */
    uint64_t seq;        /* order of submission (oldest first) */
    uint64_t off;        /* read: file offset */
    const char *buf;
    size_t len;          /* msg_ring: the target CQE's res */
    int fd;
    int ring_fd;         /* msg_ring: the target ring; splice: fd_in */
    uint8_t op, live, cancel_fd;
    uint8_t zc;          /* send_zc: 1 its result was delivered, 2 its notification */
};

#define SIM_RINGS 16

struct peer {
    char *data;
    size_t len, cap;
    unsigned closes;
    uint8_t closed;
    uint32_t unsent;             /* what SIOCOUTQ reports (iox_sim_set_unsent) */
    char addr[112];              /* the last connect's address, as text (iox_sim_connect_addr) */
};

struct iox_seam_sim {
    struct iox_seam base;
    struct sim_op ops[SIM_OPS];
    unsigned nops;               /* high-water mark of used entries */
    char *bufs;
    uint8_t *lent;
    uint16_t *ring;              /* FIFO of free buffer ids, like the kernel's */
    unsigned head, tail;         /* ring[head % n] .. ring[tail % n] */
    uint16_t *pending;           /* returned, not yet published (like the kernel's tail) */
    unsigned npending;
    unsigned nlent, violations;
    /* iox_sim_use_inc: incremental buffers. The "kernel" fills the head
     * buffer at kfill[bid] (its own count, apart from the seam's slice
     * books, so a wrong offset there reads the wrong bytes). */
    uint8_t inc;
    uint32_t *kfill;
    struct iox_slices sl;
    char last_violation[160];
    struct peer peers[SIM_FDS];
    iox_sim_sink sink;
    void *sink_ctx;
    uint64_t seq;
    /* msg_ring: which simulated ring each ring fd reaches (iox_sim_link_ring). */
    int ring_fds[SIM_RINGS];
    struct iox_seam_sim *rings[SIM_RINGS];
    unsigned nrings;
    /* iox_sim_fail_submit: the next fail_n submissions of fail_op fail. */
    unsigned fail_op, fail_n;
    int fail_err;
};

#define S(s) ((struct iox_seam_sim *)(s))

static void violation(struct iox_seam_sim *s, const char *what, int fd)
{
    s->violations++;
    snprintf(s->last_violation, sizeof s->last_violation, "%s (fd %d)", what, fd);
}

static int add_op(struct iox_seam_sim *s, unsigned op, int fd, uint64_t ud, const void *buf, size_t len)
{
    if (s->fail_n && op == s->fail_op) { s->fail_n--; return s->fail_err; }
    if (fd >= 0 && fd < SIM_FDS && s->peers[fd].closed && op != IOX_OP_CANCEL)
        violation(s, "op queued on a closed fd", fd);
    for (unsigned i = 0; i < SIM_OPS; i++) {
        if (s->ops[i].live) continue;
        s->ops[i] = (struct sim_op){ud, 0, ++s->seq, 0, buf, len, fd, -1, (uint8_t)op, 1, 0, 0};
        if (i >= s->nops) s->nops = i + 1;
        return (int)i;
    }
    return -EBUSY;
}

static void deliver(struct iox_seam_sim *s, uint64_t ud, int res, uint32_t flags)
{
    struct iox_cqe c = {ud, res, flags};
    if (s->sink) s->sink(s->sink_ctx, &c);
}

static int find(struct iox_seam_sim *s, unsigned op, int fd)
{
    for (unsigned i = 0; i < s->nops; i++)
        if (s->ops[i].live && s->ops[i].op == op && s->ops[i].fd == fd) return (int)i;
    return -1;
}

/* The oldest live op of kind op on fd; want_buf: 1 plain recv (a buffer of
 * its own), 0 multishot, -1 either. */
static int find_oldest(struct iox_seam_sim *s, unsigned op, int fd, int want_buf)
{
    int best = -1;
    for (unsigned i = 0; i < s->nops; i++) {
        struct sim_op *o = &s->ops[i];
        if (!o->live || o->op != op || o->fd != fd) continue;
        if (want_buf >= 0 && (o->buf != NULL) != want_buf) continue;
        if (best < 0 || o->seq < s->ops[best].seq) best = (int)i;
    }
    return best;
}

/* ---- seam ops ---- */

static int x_accept(struct iox_seam *b, int lfd, uint64_t ud) { return add_op(S(b), IOX_OP_ACCEPT, lfd, ud, NULL, 0) < 0 ? -EBUSY : 0; }
static int x_recv_ms(struct iox_seam *b, int fd, uint64_t ud)
{
    if (find_oldest(S(b), IOX_OP_RECV, fd, 0) >= 0) violation(S(b), "second multishot recv on one fd", fd);
    return add_op(S(b), IOX_OP_RECV, fd, ud, NULL, 0) < 0 ? -EBUSY : 0;
}
static int x_recv(struct iox_seam *b, int fd, void *buf, size_t n, uint64_t ud) { return add_op(S(b), IOX_OP_RECV, fd, ud, buf, n) < 0 ? -EBUSY : 0; }
static int x_send(struct iox_seam *b, int fd, const void *buf, size_t n, uint64_t ud) { return add_op(S(b), IOX_OP_SEND, fd, ud, buf, n) < 0 ? -EBUSY : 0; }
static int x_read(struct iox_seam *b, int fd, void *buf, size_t n, uint64_t off, uint64_t ud)
{
    int i = add_op(S(b), IOX_OP_READ, fd, ud, buf, n);
    if (i < 0) return i;
    S(b)->ops[i].off = off;
    return 0;
}
/* A splice is booked on its socket when it writes one (off_in -1: the
 * pipe → socket half), so a cancel or close of the socket sees it; the
 * file → pipe half is on no simulated fd (both are real descriptors). */
static int x_splice(struct iox_seam *b, int in, int64_t off_in, int out, size_t n, uint64_t ud)
{
    int i = add_op(S(b), IOX_OP_SPLICE, off_in < 0 ? out : -1, ud, NULL, n);
    if (i < 0) return i;
    S(b)->ops[i].off = (uint64_t)off_in;
    S(b)->ops[i].ring_fd = in;
    S(b)->ops[i].target = (uint64_t)(uint32_t)out;
    return 0;
}
static int x_socket(struct iox_seam *b, int d, int t, int p, uint64_t ud) { (void)d; (void)t; (void)p; return add_op(S(b), IOX_OP_SOCKET, -1, ud, NULL, 0) < 0 ? -EBUSY : 0; }
static int x_connect(struct iox_seam *b, int fd, const struct sockaddr *sa, socklen_t l, uint64_t ud)
{
    if (fd >= 0 && fd < SIM_FDS && sa) {
        char *t = S(b)->peers[fd].addr, ip[INET6_ADDRSTRLEN];
        size_t cap = sizeof S(b)->peers[fd].addr;
        if (sa->sa_family == AF_INET && l >= sizeof(struct sockaddr_in)) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
            snprintf(t, cap, "%s:%u", inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip) ? ip : "?", ntohs(in->sin_port));
        } else if (sa->sa_family == AF_INET6 && l >= sizeof(struct sockaddr_in6)) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
            snprintf(t, cap, "[%s]:%u", inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip) ? ip : "?",
                     ntohs(in6->sin6_port));
        } else if (sa->sa_family == AF_UNIX) {
            snprintf(t, cap, "%s", ((const struct sockaddr_un *)sa)->sun_path);
        } else {
            snprintf(t, cap, "?");
        }
    }
    return add_op(S(b), IOX_OP_CONNECT, fd, ud, NULL, 0) < 0 ? -EBUSY : 0;
}
static int x_shutdown(struct iox_seam *b, int fd, int how, uint64_t ud) { (void)how; return add_op(S(b), IOX_OP_SHUTDOWN, fd, ud, NULL, 0) < 0 ? -EBUSY : 0; }
/* A close queued while another op (but a cancel) is still live on the fd:
 * the owner closed before its last completion (the kernel may then run
 * that op on a reused descriptor). */
static int x_close(struct iox_seam *b, int fd, uint64_t ud)
{
    struct iox_seam_sim *s = S(b);
    for (unsigned i = 0; i < s->nops; i++)
        if (s->ops[i].live && s->ops[i].fd == fd && s->ops[i].op != IOX_OP_CANCEL && s->ops[i].op != IOX_OP_CLOSE) {
            violation(s, "close queued while ops are live", fd);
            break;
        }
    return add_op(s, IOX_OP_CLOSE, fd, ud, NULL, 0) < 0 ? -EBUSY : 0;
}
static int x_timeout(struct iox_seam *b, uint64_t ns, uint64_t ud) { (void)ns; return add_op(S(b), IOX_OP_TIMEOUT, -1, ud, NULL, 0) < 0 ? -EBUSY : 0; }
static int x_msg_ring(struct iox_seam *b, int rfd, uint32_t len, uint64_t data, uint64_t ud)
{
    int i = add_op(S(b), IOX_OP_MSG_SENT, -1, ud, NULL, len);
    if (i < 0) return -EBUSY;
    S(b)->ops[i].target = data;
    S(b)->ops[i].ring_fd = rfd;
    return 0;
}

static int x_cancel_fd(struct iox_seam *b, int fd, uint64_t ud)
{
    int i = add_op(S(b), IOX_OP_CANCEL, fd, ud, NULL, 0);
    if (i < 0) return -EBUSY;
    S(b)->ops[i].cancel_fd = 1;
    return 0;
}

static int x_cancel(struct iox_seam *b, uint64_t target, uint64_t ud)
{
    int i = add_op(S(b), IOX_OP_CANCEL, -1, ud, NULL, 0);
    if (i < 0) return -EBUSY;
    S(b)->ops[i].target = target;
    return 0;
}

static char *x_buf(struct iox_seam *b, unsigned bid)
{
    struct iox_seam_sim *s = S(b);
    if (s->inc)
        return s->bufs + (size_t)iox_slices_bid(&s->sl, bid) * b->buf_size + iox_slices_off(&s->sl, bid);
    return s->bufs + (size_t)bid * b->buf_size;
}

static void x_buf_return(struct iox_seam *b, unsigned bid)
{
    struct iox_seam_sim *s = S(b);
    if (s->inc) {
        unsigned v = s->sl.violations;
        unsigned k = iox_slices_put(&s->sl, bid);
        if (s->sl.violations != v) { violation(s, "buffer slice returned twice or never lent", -1); return; }
        s->nlent--;
        if (k != IOX_SLICE_NONE) s->pending[s->npending++] = (uint16_t)k;
        return;
    }
    if (bid >= b->buf_count || !s->lent[bid]) { violation(s, "buffer returned twice or never lent", -1); return; }
    s->lent[bid] = 0;
    s->nlent--;
    s->pending[s->npending++] = (uint16_t)bid;
}

static int x_unsent(struct iox_seam *b, int fd)
{
    struct iox_seam_sim *s = S(b);
    if (fd < 0 || fd >= SIM_FDS || s->peers[fd].closed) return -EBADF;
    return (int)s->peers[fd].unsent;
}

/* No ring command here: the core falls back to x_unsent (synchronous). */
static int x_unsent_cmd(struct iox_seam *b, int fd, uint64_t ud) { (void)b; (void)fd; (void)ud; return -EOPNOTSUPP; }
/* Simulated fds are not ours to close. */
static int x_close_sync(struct iox_seam *b, int fd) { (void)b; (void)fd; return 0; }

/* A write waits for iox_sim_complete_one / _all(s, IOX_OP_WRITE, ...,
 * res): the test decides how much of it the "disk" took, and those res
 * bytes really go to the (real) file descriptor, so a test reads back what
 * reached the file. */
static int x_write(struct iox_seam *b, int fd, const void *buf, size_t n, uint64_t off, uint64_t ud)
{
    int i = add_op(S(b), IOX_OP_WRITE, fd, ud, buf, n);
    if (i < 0) return i;
    S(b)->ops[i].off = off;
    return 0;
}
/* The simulated peer is 192.0.2.1 (TEST-NET-1) port 40000 + fd; the op is
 * booked on the fd and completes with iox_sim_complete_one(s,
 * IOX_OP_PEERNAME, fd, res): res > 0 fills the address first. */
static int x_peername(struct iox_seam *b, int fd, struct sockaddr *sa, socklen_t len, uint64_t ud)
{
    int i = add_op(S(b), IOX_OP_PEERNAME, fd, ud, sa, len);
    return i < 0 ? i : 0;
}

/* Registered buffers: accepted (nothing to pin). A READ_FIXED is booked
 * as a read (iox_sim_read_complete fills it from the real file); a SEND_ZC
 * on its socket, completed in two steps by iox_sim_send_zc and
 * iox_sim_send_zc_notif. */
static int x_register_buffers(struct iox_seam *b, const struct iovec *iov, unsigned n)
{
    (void)iov;
    if (!n) return -EINVAL;
    b->zc_report = 1;   /* iox_sim_send_zc_notif_copied reports a copy */
    return 0;
}
static int x_read_fixed(struct iox_seam *b, int fd, void *buf, size_t n, uint64_t off, unsigned bi, uint64_t ud)
{
    (void)bi;
    return x_read(b, fd, buf, n, off, ud);
}
static int x_send_zc(struct iox_seam *b, int fd, const void *buf, size_t n, unsigned bi, uint64_t ud)
{
    (void)bi;
    return add_op(S(b), IOX_OP_SEND_ZC, fd, ud, buf, n) < 0 ? -EBUSY : 0;
}

static const struct iox_seam_ops sim_ops = {
    .accept_multishot = x_accept, .recv_multishot = x_recv_ms, .recv = x_recv,
    .send = x_send, .read = x_read, .splice = x_splice, .socket = x_socket, .connect = x_connect,
    .shutdown = x_shutdown, .close = x_close, .cancel_fd = x_cancel_fd,
    .cancel = x_cancel, .timeout = x_timeout, .msg_ring = x_msg_ring,
    .unsent = x_unsent, .unsent_cmd = x_unsent_cmd, .close_sync = x_close_sync, .buf = x_buf, .buf_return = x_buf_return,
    .write = x_write, .peername = x_peername,
    .register_buffers = x_register_buffers, .read_fixed = x_read_fixed, .send_zc = x_send_zc,
};

/* ---- lifecycle ---- */

struct iox_seam_sim *iox_sim_create(unsigned nbufs, unsigned bufsize)
{
    struct iox_seam_sim *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->base.ops = &sim_ops;
    s->base.buf_count = nbufs;
    s->base.buf_size = bufsize;
    s->bufs = calloc(nbufs, bufsize);
    s->lent = calloc(nbufs, 1);
    s->ring = calloc(nbufs, sizeof *s->ring);
    s->pending = calloc(nbufs, sizeof *s->pending);
    if (!s->bufs || !s->lent || !s->ring || !s->pending) { iox_sim_destroy(s); return NULL; }
    for (unsigned i = 0; i < nbufs; i++) s->ring[s->tail++] = (uint16_t)i;
    return s;
}

void iox_sim_destroy(struct iox_seam_sim *s)
{
    if (!s) return;
    for (unsigned i = 0; i < SIM_FDS; i++) free(s->peers[i].data);
    free(s->bufs);
    free(s->kfill);
    iox_slices_fini(&s->sl);
    free(s->lent);
    free(s->ring);
    free(s->pending);
    free(s);
}

int iox_sim_use_inc(struct iox_seam_sim *s)
{
    if (s->nlent || s->inc) return -EBUSY;
    s->kfill = calloc(s->base.buf_count, sizeof *s->kfill);
    if (!s->kfill || iox_slices_init(&s->sl, s->base.buf_count, 4096) < 0) {
        free(s->kfill);
        s->kfill = NULL;
        return -ENOMEM;
    }
    s->inc = 1;
    return 0;
}

struct iox_seam *iox_sim_seam(struct iox_seam_sim *s) { return &s->base; }
void iox_sim_set_sink(struct iox_seam_sim *s, iox_sim_sink fn, void *ctx) { s->sink = fn; s->sink_ctx = ctx; }

/* ---- driving ---- */

static long sim_recv(struct iox_seam_sim *s, int fd, const void *data, size_t len, size_t chunk, int last);

long iox_sim_recv(struct iox_seam_sim *s, int fd, const void *data, size_t len, size_t chunk)
{
    return sim_recv(s, fd, data, len, chunk, 0);
}

long iox_sim_recv_last(struct iox_seam_sim *s, int fd, const void *data, size_t len)
{
    return sim_recv(s, fd, data, len, 0, 1);
}

static long sim_recv(struct iox_seam_sim *s, int fd, const void *data, size_t len, size_t chunk, int last)
{
    const char *p = data;
    size_t done = 0;
    unsigned bsz = s->base.buf_size;
    if (!chunk || chunk > bsz) chunk = bsz;
    while (done < len) {
        int i = find_oldest(s, IOX_OP_RECV, fd, 0);
        if (i < 0) return done ? (long)done : -1;
        if (s->head == s->tail) {
            /* Dry ring: the multishot recv ends; the bytes stay queued. */
            s->ops[i].live = 0;
            deliver(s, s->ops[i].ud, -ENOBUFS, 0);
            return (long)done;
        }
        size_t n = len - done < chunk ? len - done : chunk;
        unsigned bid, bufmore = 0;
        if (s->inc) {
            /* Like the kernel's incremental commit: this receive takes the
             * next bytes of the head buffer, at most what is left of it;
             * the buffer leaves the ring once full (no BUF_MORE). */
            unsigned kb = s->ring[s->head % s->base.buf_count];
            uint32_t room = bsz - s->kfill[kb];
            if (n > room) n = room;
            memcpy(s->bufs + (size_t)kb * bsz + s->kfill[kb], p + done, n);
            s->kfill[kb] += (uint32_t)n;
            int kdone = s->kfill[kb] == bsz;
            if (kdone) { s->head++; s->kfill[kb] = 0; }
            else bufmore = IOX_CQE_F_BUF_MORE;
            bid = iox_slices_take(&s->sl, kb, (uint32_t)n, kdone);
            if (bid == IOX_SLICE_NONE) { violation(s, "every buffer slice is out", fd); return (long)done; }
        } else {
            bid = s->ring[s->head++ % s->base.buf_count];
            s->lent[bid] = 1;
            memcpy(x_buf(&s->base, bid), p + done, n);
        }
        s->nlent++;
        done += n;
        /* last: the final piece ends the multishot recv (no F_MORE). */
        int ends = last && done == len;
        if (ends) s->ops[i].live = 0;
        deliver(s, s->ops[i].ud, (int)n,
                IOX_CQE_F_BUFFER | (ends ? 0 : IOX_CQE_F_MORE) | bufmore | (bid << IOX_CQE_BUFFER_SHIFT));
    }
    return (long)done;
}

long iox_sim_recv_into(struct iox_seam_sim *s, int fd, const void *data, size_t len)
{
    int i = find_oldest(s, IOX_OP_RECV, fd, 1);
    if (i < 0) return -1;
    struct sim_op *o = &s->ops[i];
    size_t n = len < o->len ? len : o->len;
    if (!n) return 0;   /* 0 would read as EOF: use iox_sim_recv_end for that */
    o->live = 0;
    memcpy((char *)o->buf, data, n);
    deliver(s, o->ud, (int)n, 0);
    return (long)n;
}

/* A write the test completes with res > 0: the first min(res, len) bytes
 * are written to the descriptor for real (the result says what it took). */
static int sim_write_out(const struct sim_op *o, int res)
{
    if (res <= 0 || o->fd < 0) return res;
    size_t n = (size_t)res < o->len ? (size_t)res : o->len;
    ssize_t w = write(o->fd, o->buf, n);
    return w < 0 ? -errno : (int)w;
}

int iox_sim_complete_one(struct iox_seam_sim *s, unsigned op, int fd, int res)
{
    int i = find_oldest(s, op, fd, -1);
    if (i < 0) return -1;
    s->ops[i].live = 0;
    if (op == IOX_OP_WRITE) res = sim_write_out(&s->ops[i], res);
    if (op == IOX_OP_PEERNAME && res > 0 && s->ops[i].len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(40000 + fd))};
        sin.sin_addr.s_addr = htonl(0xc0000201u);   /* 192.0.2.1 */
        memcpy((void *)s->ops[i].buf, &sin, sizeof sin);
        res = (int)sizeof sin;
    }
    deliver(s, s->ops[i].ud, res, 0);
    return 0;
}

int iox_sim_recv_end(struct iox_seam_sim *s, int fd, int res)
{
    int i = find_oldest(s, IOX_OP_RECV, fd, -1);
    if (i < 0) return -1;
    s->ops[i].live = 0;
    deliver(s, s->ops[i].ud, res, 0);
    return 0;
}

static void peer_append(struct peer *p, const char *d, size_t n)
{
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4096;
        while (cap < p->len + n) cap *= 2;
        p->data = realloc(p->data, cap);
        if (!p->data) abort();
        p->cap = cap;
    }
    memcpy(p->data + p->len, d, n);
    p->len += n;
}

int iox_sim_send(struct iox_seam_sim *s, int fd, int res)
{
    int i = find_oldest(s, IOX_OP_SEND, fd, -1);
    if (i < 0) return -1;
    struct sim_op *o = &s->ops[i];
    o->live = 0;
    if (res < 0) { deliver(s, o->ud, res, 0); return 0; }
    size_t n = res == 0 || (size_t)res > o->len ? o->len : (size_t)res;
    if (fd >= 0 && fd < SIM_FDS) peer_append(&s->peers[fd], o->buf, n);
    deliver(s, o->ud, (int)n, 0);
    return 0;
}

/* The oldest SEND_ZC on fd still owing the CQE `bit` (1 result, 2 notification). */
static int zc_oldest(struct iox_seam_sim *s, int fd, uint8_t bit)
{
    int best = -1;
    for (unsigned i = 0; i < s->nops; i++) {
        const struct sim_op *o = &s->ops[i];
        if (o->live && o->op == IOX_OP_SEND_ZC && o->fd == fd && !(o->zc & bit) && (best < 0 || o->seq < s->ops[best].seq))
            best = (int)i;
    }
    return best;
}

int iox_sim_send_zc(struct iox_seam_sim *s, int fd, int res, int more)
{
    int i = zc_oldest(s, fd, 1);
    if (i < 0) return -1;
    struct sim_op *o = &s->ops[i];
    if (res >= 0) {
        size_t n = res == 0 || (size_t)res > o->len ? o->len : (size_t)res;
        if (fd >= 0 && fd < SIM_FDS) peer_append(&s->peers[fd], o->buf, n);
        res = (int)n;
    }
    o->zc |= 1;
    if (!more || (o->zc & 2)) o->live = 0;
    deliver(s, o->ud, res, more ? IOX_CQE_F_MORE : 0);
    return 0;
}

static int zc_notif(struct iox_seam_sim *s, int fd, int32_t res)
{
    int i = zc_oldest(s, fd, 2);
    if (i < 0) return -1;
    struct sim_op *o = &s->ops[i];
    o->zc |= 2;
    if (o->zc & 1) o->live = 0;
    deliver(s, o->ud, res, IOX_CQE_F_NOTIF);
    return 0;
}

int iox_sim_send_zc_notif(struct iox_seam_sim *s, int fd) { return zc_notif(s, fd, 0); }
int iox_sim_send_zc_notif_copied(struct iox_seam_sim *s, int fd) { return zc_notif(s, fd, (int32_t)IOX_NOTIF_ZC_COPIED); }

int iox_sim_complete_all(struct iox_seam_sim *s, unsigned op, int res)
{
    int n = 0;
    for (unsigned i = 0; i < s->nops; i++) {
        if (!s->ops[i].live || s->ops[i].op != op) continue;
        s->ops[i].live = 0;
        deliver(s, s->ops[i].ud, op == IOX_OP_WRITE ? sim_write_out(&s->ops[i], res) : res, 0);
        n++;
    }
    return n;
}

int iox_sim_pump(struct iox_seam_sim *s)
{
    int delivered = 0;
    for (int progress = 1; progress;) {
        progress = 0;
        for (unsigned i = 0; i < s->nops; i++) {
            struct sim_op *o = &s->ops[i];
            if (!o->live) continue;
            if (o->op == IOX_OP_CANCEL) {
                o->live = 0;
                int n = 0;
                for (unsigned j = 0; j < s->nops; j++) {
                    struct sim_op *t = &s->ops[j];
                    if (!t->live || t->op == IOX_OP_CANCEL || t->op == IOX_OP_CLOSE) continue;
                    if (o->cancel_fd ? t->fd == o->fd : t->ud == o->target) {
                        t->live = 0;
                        n++;
                        if (t->op == IOX_OP_SEND_ZC) {   /* both CQEs still owed: the result, then the notification */
                            if (!(t->zc & 1)) deliver(s, t->ud, -ECANCELED, IOX_CQE_F_MORE);
                            if (!(t->zc & 2)) deliver(s, t->ud, 0, IOX_CQE_F_NOTIF);
                        } else {
                            deliver(s, t->ud, -ECANCELED, 0);
                        }
                    }
                }
                deliver(s, o->ud, n ? n : -ENOENT, 0);
                progress = 1;
                delivered += n + 1;
            } else if (o->op == IOX_OP_CLOSE) {
                o->live = 0;
                if (o->fd >= 0 && o->fd < SIM_FDS) {
                    struct peer *p = &s->peers[o->fd];
                    p->closes++;
                    p->closed = 1;
                    if (iox_sim_live_ops(s, o->fd)) violation(s, "close while ops are live", o->fd);
                }
                deliver(s, o->ud, 0, 0);
                progress = 1;
                delivered++;
            } else if (o->op == IOX_OP_SHUTDOWN) {
                o->live = 0;
                deliver(s, o->ud, 0, 0);
                progress = 1;
                delivered++;
            }
        }
    }
    return delivered;
}

void iox_sim_fail_submit(struct iox_seam_sim *s, unsigned op, unsigned n, int err)
{
    s->fail_op = op;
    s->fail_n = n;
    s->fail_err = err < 0 ? err : -EBUSY;
}

/* ---- positional reads ---- */

/* The k-th live read, oldest first. */
static int read_nth(struct iox_seam_sim *s, unsigned k)
{
    uint64_t after = 0;
    for (unsigned n = 0;; n++) {
        int best = -1;
        for (unsigned i = 0; i < s->nops; i++) {
            struct sim_op *o = &s->ops[i];
            if (!o->live || o->op != IOX_OP_READ || o->seq <= after) continue;
            if (best < 0 || o->seq < s->ops[best].seq) best = (int)i;
        }
        if (best < 0) return -1;
        if (n == k) return best;
        after = s->ops[best].seq;
    }
}

unsigned iox_sim_reads(struct iox_seam_sim *s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->nops; i++)
        if (s->ops[i].live && s->ops[i].op == IOX_OP_READ) n++;
    return n;
}

int iox_sim_read_peek(struct iox_seam_sim *s, unsigned k, int *fd, uint64_t *off, size_t *len, uint64_t *ud)
{
    int i = read_nth(s, k);
    if (i < 0) return -1;
    if (fd) *fd = s->ops[i].fd;
    if (off) *off = s->ops[i].off;
    if (len) *len = s->ops[i].len;
    if (ud) *ud = s->ops[i].ud;
    return 0;
}

int iox_sim_read_complete(struct iox_seam_sim *s, unsigned k, size_t max, int err, int *res)
{
    int i = read_nth(s, k);
    if (i < 0) return -1;
    struct sim_op *o = &s->ops[i];
    o->live = 0;
    int r = err;
    if (err >= 0) {
        size_t n = max < o->len ? max : o->len;
        ssize_t got = n ? pread(o->fd, (char *)o->buf, n, (off_t)o->off) : 0;
        r = got < 0 ? -errno : (int)got;
    }
    if (res) *res = r;
    deliver(s, o->ud, r, 0);
    return 0;
}

/* ---- splices ---- */

static int splice_nth(struct iox_seam_sim *s, unsigned k)
{
    uint64_t after = 0;
    for (unsigned n = 0;; n++) {
        int best = -1;
        for (unsigned i = 0; i < s->nops; i++) {
            struct sim_op *o = &s->ops[i];
            if (!o->live || o->op != IOX_OP_SPLICE || o->seq <= after) continue;
            if (best < 0 || o->seq < s->ops[best].seq) best = (int)i;
        }
        if (best < 0) return -1;
        if (n == k) return best;
        after = s->ops[best].seq;
    }
}

unsigned iox_sim_splices(struct iox_seam_sim *s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->nops; i++)
        if (s->ops[i].live && s->ops[i].op == IOX_OP_SPLICE) n++;
    return n;
}

int iox_sim_splice_peek(struct iox_seam_sim *s, unsigned k, int *in, int64_t *off_in, int *out, size_t *len, uint64_t *ud)
{
    int i = splice_nth(s, k);
    if (i < 0) return -1;
    if (in) *in = s->ops[i].ring_fd;
    if (off_in) *off_in = (int64_t)s->ops[i].off;
    if (out) *out = (int)(uint32_t)s->ops[i].target;
    if (len) *len = s->ops[i].len;
    if (ud) *ud = s->ops[i].ud;
    return 0;
}

int iox_sim_splice_complete(struct iox_seam_sim *s, unsigned k, size_t max, int err, int *res)
{
    int i = splice_nth(s, k);
    if (i < 0) return -1;
    struct sim_op *o = &s->ops[i];
    o->live = 0;
    int r = err;
    size_t n = max < o->len ? max : o->len;
    int in = o->ring_fd, out = (int)(uint32_t)o->target;
    if (err >= 0 && (int64_t)o->off >= 0) {          /* file → real pipe */
        loff_t off = (loff_t)o->off;
        ssize_t got = n ? splice(in, &off, out, NULL, n, SPLICE_F_NONBLOCK) : 0;
        r = got < 0 ? -errno : (int)got;
    } else if (err >= 0) {                            /* real pipe → simulated socket */
        char tmp[65536];
        size_t done = 0;
        while (done < n) {
            size_t want = n - done < sizeof tmp ? n - done : sizeof tmp;
            int avail = 0;                            /* never block on an emptied pipe */
            if (ioctl(in, FIONREAD, &avail) < 0 || avail <= 0) break;
            if ((size_t)avail < want) want = (size_t)avail;
            ssize_t got = read(in, tmp, want);
            if (got <= 0) break;
            if (out >= 0 && out < SIM_FDS) peer_append(&s->peers[out], tmp, (size_t)got);
            done += (size_t)got;
        }
        r = (int)done;
    }
    if (res) *res = r;
    deliver(s, o->ud, r, 0);
    return 0;
}

/* ---- cross-reactor messages ---- */

int iox_sim_link_ring(struct iox_seam_sim *s, int ring_fd, struct iox_seam_sim *target)
{
    for (unsigned i = 0; i < s->nrings; i++)
        if (s->ring_fds[i] == ring_fd) { s->rings[i] = target; return 0; }
    if (s->nrings == SIM_RINGS) return -ENOSPC;
    s->ring_fds[s->nrings] = ring_fd;
    s->rings[s->nrings++] = target;
    return 0;
}

static int msg_nth(struct iox_seam_sim *s, unsigned k)
{
    /* The k-th live msg_ring op, oldest first. */
    uint64_t after = 0;
    for (unsigned n = 0;; n++) {
        int best = -1;
        for (unsigned i = 0; i < s->nops; i++) {
            struct sim_op *o = &s->ops[i];
            if (!o->live || o->op != IOX_OP_MSG_SENT || o->seq <= after) continue;
            if (best < 0 || o->seq < s->ops[best].seq) best = (int)i;
        }
        if (best < 0) return -1;
        if (n == k) return best;
        after = s->ops[best].seq;
    }
}

unsigned iox_sim_msgs(struct iox_seam_sim *s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->nops; i++)
        if (s->ops[i].live && s->ops[i].op == IOX_OP_MSG_SENT) n++;
    return n;
}

int iox_sim_msg_peek(struct iox_seam_sim *s, unsigned k, int *ring_fd, uint32_t *len, uint64_t *data)
{
    int i = msg_nth(s, k);
    if (i < 0) return -1;
    if (ring_fd) *ring_fd = s->ops[i].ring_fd;
    if (len) *len = (uint32_t)s->ops[i].len;
    if (data) *data = s->ops[i].target;
    return 0;
}

int iox_sim_msg_complete(struct iox_seam_sim *s, unsigned k, int res)
{
    int i = msg_nth(s, k);
    if (i < 0) return -1;
    struct sim_op *o = &s->ops[i];
    o->live = 0;
    if (res >= 0) {
        struct iox_seam_sim *t = NULL;
        for (unsigned j = 0; j < s->nrings; j++)
            if (s->ring_fds[j] == o->ring_fd) t = s->rings[j];
        if (!t) res = -EBADF;   /* not a ring we know: what the kernel says of a bad fd */
        else deliver(t, o->target, (int32_t)o->len, 0);
    }
    deliver(s, o->ud, res, 0);
    return 0;
}

void iox_sim_publish(struct iox_seam_sim *s)
{
    for (unsigned i = 0; i < s->npending; i++)
        s->ring[s->tail++ % s->base.buf_count] = s->pending[i];
    s->npending = 0;
}

/* ---- books ---- */

int iox_sim_has_op(struct iox_seam_sim *s, unsigned op, int fd) { return find(s, op, fd) >= 0; }

unsigned iox_sim_live_ops(struct iox_seam_sim *s, int fd)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->nops; i++)
        if (s->ops[i].live && s->ops[i].fd == fd && s->ops[i].op != IOX_OP_CLOSE) n++;
    return n;
}

void iox_sim_set_unsent(struct iox_seam_sim *s, int fd, uint32_t n)
{
    if (fd >= 0 && fd < SIM_FDS) s->peers[fd].unsent = n;
}

unsigned iox_sim_closes(struct iox_seam_sim *s, int fd) { return fd >= 0 && fd < SIM_FDS ? s->peers[fd].closes : 0; }
unsigned iox_sim_bufs_lent(struct iox_seam_sim *s) { return s->nlent; }
unsigned iox_sim_violations(struct iox_seam_sim *s) { return s->violations; }
const char *iox_sim_last_violation(struct iox_seam_sim *s) { return s->last_violation; }

const char *iox_sim_peer_bytes(struct iox_seam_sim *s, int fd, size_t *len)
{
    *len = s->peers[fd].len;
    return s->peers[fd].data ? s->peers[fd].data : "";
}

void iox_sim_peer_clear(struct iox_seam_sim *s, int fd)
{
    s->peers[fd].len = 0;
    s->peers[fd].closes = 0;
    s->peers[fd].closed = 0;
}

const char *iox_sim_connect_addr(struct iox_seam_sim *s, int fd)
{
    return fd >= 0 && fd < SIM_FDS ? s->peers[fd].addr : "";
}
