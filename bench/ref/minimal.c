/* bench/ref/minimal.c — the baseline for bench rows `minimal` (issue 14 §2):
 * the least an io_uring HTTP/1.1 responder can do, so that ioxide's CPU per
 * request can be read against what the kernel path itself costs.
 *
 * One thread, one ring (SINGLE_ISSUER | DEFER_TASKRUN), one multishot accept,
 * one multishot recv per connection drawing from a provided buffer ring.
 * No parser: a request is "\r\n\r\n" (counted across recv boundaries with a
 * 0..3 match state per connection); every request gets the same fixed
 * `200 ok`, and all the answers owed for one recv completion leave in one
 * send (at most one send in flight per connection; what becomes due while
 * one is in flight leaves with the next). Per-connection state is a table
 * indexed by fd, allocated once. Not a server: no timeouts, no limits, no
 * errors beyond closing the connection. Built by the bench (make
 * build/minimal); PORT from the environment (default 8080), 127.0.0.1. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CLOSE };
#define UD(op, fd) (((uint64_t)(op) << 32) | (uint32_t)(fd))
#define BUF_COUNT 1024u
#define BUF_SIZE 4096u
#define BGID 0
#define MAX_FDS 65536

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
#define RESP_LEN (sizeof RESP - 1)
#define RESP_BATCH 64   /* answers per send at most; more owed go in the next one */
static char resp_many[RESP_LEN * RESP_BATCH];

struct conn {
    uint32_t owed;      /* answers not sent yet */
    uint32_t in_send;   /* answers in the send in flight (0: none) */
    uint8_t match;      /* bytes of "\r\n\r\n" matched at the end of the last recv */
    uint8_t live, recv_armed, closing;
};
static struct conn *conns;
static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;

static void die(const char *what, int err)
{
    fprintf(stderr, "minimal: %s: %s\n", what, strerror(err));
    exit(1);
}

static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe) {
        int rc = io_uring_submit(&ring);
        if (rc < 0) die("io_uring_submit", -rc);
        sqe = io_uring_get_sqe(&ring);
        if (!sqe) die("io_uring_get_sqe", EBUSY);
    }
    return sqe;
}

static void arm_accept(int lfd)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
    io_uring_sqe_set_data64(sqe, UD(OP_ACCEPT, lfd));
}

static void arm_recv(int fd)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, UD(OP_RECV, fd));
    conns[fd].recv_armed = 1;
}

static void send_owed(int fd)
{
    struct conn *c = &conns[fd];
    if (c->in_send || !c->owed || c->closing) return;
    uint32_t n = c->owed < RESP_BATCH ? c->owed : RESP_BATCH;
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_send(sqe, fd, resp_many, n * RESP_LEN, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, UD(OP_SEND, fd));
    c->in_send = n;
    c->owed -= n;
}

/* Close once nothing of ours is in flight on fd. */
static void maybe_close(int fd)
{
    struct conn *c = &conns[fd];
    if (!c->closing || c->in_send || c->recv_armed || !c->live) return;
    c->live = 0;
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data64(sqe, UD(OP_CLOSE, fd));
}

static void start_close(int fd)
{
    struct conn *c = &conns[fd];
    if (c->closing) return;
    c->closing = 1;
    if (c->recv_armed) {   /* multishot recv ends with a final CQE */
        struct io_uring_sqe *sqe = sqe_get();
        io_uring_prep_cancel64(sqe, UD(OP_RECV, fd), 0);
        io_uring_sqe_set_data64(sqe, 0);
    }
    maybe_close(fd);
}

/* Count request ends in [p, p+n), carrying the partial match. */
static uint32_t count_requests(struct conn *c, const char *p, uint32_t n)
{
    static const char pat[4] = {'\r', '\n', '\r', '\n'};
    uint32_t k = 0;
    uint8_t m = c->match;
    for (uint32_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == pat[m]) {
            if (++m == 4) { k++; m = 0; }
        } else {
            m = ch == '\r' ? 1 : 0;
        }
    }
    c->match = m;
    return k;
}

static void on_cqe(int lfd, struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    int op = (int)(ud >> 32), fd = (int)(uint32_t)ud;
    int res = cqe->res;
    switch (op) {
    case OP_ACCEPT:
        if (res >= 0) {
            if (res >= MAX_FDS) { close(res); break; }
            conns[res] = (struct conn){.live = 1};
            int one = 1;
            setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            arm_recv(res);
        } else if (res != -EAGAIN && res != -EINTR && res != -ECONNABORTED && res != -EMFILE && res != -ENFILE) {
            die("accept", -res);
        }
        if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(lfd);
        break;
    case OP_RECV: {
        struct conn *c = &conns[fd];
        int more = !!(cqe->flags & IORING_CQE_F_MORE);
        if (cqe->flags & IORING_CQE_F_BUFFER) {
            unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
            if (res > 0 && !c->closing) c->owed += count_requests(c, bufs + (size_t)bid * BUF_SIZE, (uint32_t)res);
            io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, bid,
                                  io_uring_buf_ring_mask(BUF_COUNT), 0);
            io_uring_buf_ring_advance(br, 1);
        }
        if (!more) c->recv_armed = 0;
        if (res > 0) {
            send_owed(fd);
            if (!more && !c->closing) arm_recv(fd);   /* ended (e.g. buffers ran out): re-arm */
        } else if (res == -ENOBUFS && !c->closing) {
            if (!more) arm_recv(fd);
        } else {
            start_close(fd);   /* EOF or error */
        }
        maybe_close(fd);
        break;
    }
    case OP_SEND: {
        struct conn *c = &conns[fd];
        uint32_t n = c->in_send;
        c->in_send = 0;
        if (res < 0 || (uint32_t)res != n * RESP_LEN) {   /* short sends: not worth handling here */
            start_close(fd);
        } else {
            send_owed(fd);
        }
        maybe_close(fd);
        break;
    }
    default:
        break;
    }
}

int main(void)
{
    const char *ps = getenv("PORT");
    int port = ps ? atoi(ps) : 8080;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    for (int i = 0; i < RESP_BATCH; i++) memcpy(resp_many + i * RESP_LEN, RESP, RESP_LEN);
    conns = calloc(MAX_FDS, sizeof *conns);
    if (!conns) die("calloc", ENOMEM);

    struct io_uring_params p = {0};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
              IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    int rc = io_uring_queue_init_params(4096, &ring, &p);
    if (rc < 0) die("io_uring_queue_init_params (SINGLE_ISSUER|DEFER_TASKRUN needs Linux 6.1)", -rc);

    /* liburing 2.3 has no io_uring_setup_buf_ring: map and register it. */
    size_t br_bytes = BUF_COUNT * sizeof(struct io_uring_buf);
    br = mmap(NULL, br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br == MAP_FAILED) die("mmap of the buffer ring", errno);
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)br, .ring_entries = BUF_COUNT, .bgid = BGID};
    rc = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rc < 0) die("io_uring_register_buf_ring (Linux 5.19+)", -rc);
    io_uring_buf_ring_init(br);
    bufs = malloc((size_t)BUF_COUNT * BUF_SIZE);
    if (!bufs) die("malloc", ENOMEM);
    for (unsigned i = 0; i < BUF_COUNT; i++)
        io_uring_buf_ring_add(br, bufs + (size_t)i * BUF_SIZE, BUF_SIZE, i, io_uring_buf_ring_mask(BUF_COUNT), (int)i);
    io_uring_buf_ring_advance(br, BUF_COUNT);

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) die("socket", errno);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind", errno);
    if (listen(lfd, 4096) < 0) die("listen", errno);
    fprintf(stderr, "minimal: listening on 127.0.0.1:%d\n", port);
    arm_accept(lfd);

    for (;;) {
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR) die("io_uring_submit_and_wait", -rc);
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            on_cqe(lfd, cqe);
            n++;
        }
        io_uring_cq_advance(&ring, n);
    }
}
