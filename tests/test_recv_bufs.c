/* test_recv_bufs.c — the multishot recv's provided buffers, plain and
 * incremental (IOU_PBUF_RING_INC; ioxide/seam.h, runtime/seam/seam_slices.h).
 *
 * Suite `recv_bufs_sim`: the slice books on the simulated ring, driven
 * through the seam API with no machine: one buffer yields several CQEs at
 * successive offsets (IOX_CQE_F_BUF_MORE until it is full), a buffer goes
 * back to the ring only when full and every slice of it is returned, a
 * slice held keeps its bytes, a double return is a violation.
 *
 * Suite `recv_bufs_net`: the playground over real sockets with each mode
 * forced by IOX_RECV_BUFS (every mode this kernel has; a mode it lacks is
 * skipped with a note): the startup line names the mode; keep-alive,
 * 64-deep pipelining, a request split over many receives, a 1 MiB upload
 * echoed back, and many connections sending at once into 2 buffers of 64 B
 * (-ENOBUFS ends multishot recvs, which must re-arm and lose nothing).
 * Bad knob values stop startup with one line. */
#include "http_client.h"
#include "iox_test.h"
#include <ioxide/seam_sim.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- recv_bufs_sim ---- */

enum { FD = 7, MAXC = 64 };
static struct iox_cqe got[MAXC];
static unsigned ngot;

static void rec(void *ctx, const struct iox_cqe *cqe)
{
    (void)ctx;
    if (ngot < MAXC) got[ngot++] = *cqe;
}

static unsigned handle(const struct iox_cqe *c) { return c->flags >> IOX_CQE_BUFFER_SHIFT; }

static struct iox_seam_sim *sim_open(unsigned nbufs, unsigned bsz, int inc)
{
    struct iox_seam_sim *s = iox_sim_create(nbufs, bsz);
    CU_ASSERT_FATAL(s != NULL);
    if (inc) CU_ASSERT_FATAL(iox_sim_use_inc(s) == 0);
    iox_sim_set_sink(s, rec, NULL);
    ngot = 0;
    CU_ASSERT_FATAL(iox_seam_recv_multishot(iox_sim_seam(s), FD, 42) == 0);
    return s;
}

/* 2 buffers of 64 B. Buffer A takes eight 8-byte receives (the first
 * returned at once, while A is still being filled) (slices at
 * offsets 0, 8, ... 56; BUF_MORE on all but the last); slice 3 is held,
 * the rest returned. B fills and comes back whole: it re-enters the ring,
 * A does not (slice 3 out), so filling B again leaves the ring dry
 * (-ENOBUFS) — with slice 3's bytes intact. Once slice 3 returns, A is
 * back and the next receive lands at its offset 0. */
IOX_TEST(recv_bufs_sim, a_buffer_returns_when_full_and_every_slice_is_back)
{
    struct iox_seam_sim *s = sim_open(2, 64, 1);
    struct iox_seam *seam = iox_sim_seam(s);
    char data[64];
    for (int i = 0; i < 64; i++) data[i] = (char)('a' + i % 26);
    /* Slice 0 comes back at once, while the kernel still fills A: A must
     * stay out of the ring (it would be in it twice). */
    CU_ASSERT_EQUAL(iox_sim_recv(s, FD, data, 8, 0), 8);
    CU_ASSERT_EQUAL_FATAL(ngot, 1);
    const char *a0 = iox_seam_buf(seam, handle(&got[0]));
    CU_ASSERT(memcmp(a0, data, 8) == 0);
    iox_seam_buf_return(seam, handle(&got[0]));
    iox_sim_publish(s);
    for (int k = 1; k < 8; k++) CU_ASSERT_EQUAL(iox_sim_recv(s, FD, data + 8 * k, 8, 0), 8);
    CU_ASSERT_EQUAL_FATAL(ngot, 8);
    for (int k = 0; k < 8; k++) {
        CU_ASSERT_EQUAL(got[k].res, 8);
        CU_ASSERT(got[k].flags & IOX_CQE_F_BUFFER);
        CU_ASSERT_EQUAL(!!(got[k].flags & IOX_CQE_F_BUF_MORE), k < 7);
        if (k == 0) continue;                      /* returned */
        const char *p = iox_seam_buf(seam, handle(&got[k]));
        CU_ASSERT_PTR_EQUAL(p, a0 + 8 * k);       /* successive offsets of one buffer */
        CU_ASSERT(memcmp(p, data + 8 * k, 8) == 0);
    }
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(s), 7);
    unsigned held = handle(&got[3]);
    for (int k = 1; k < 8; k++)
        if (k != 3) iox_seam_buf_return(seam, handle(&got[k]));
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(s), 1);
    iox_sim_publish(s);

    /* B, whole, and back. */
    char other[64];
    memset(other, 'B', sizeof other);
    CU_ASSERT_EQUAL(iox_sim_recv(s, FD, other, 64, 0), 64);
    CU_ASSERT_EQUAL_FATAL(ngot, 9);
    const char *b0 = iox_seam_buf(seam, handle(&got[8]));
    CU_ASSERT(!(got[8].flags & IOX_CQE_F_BUF_MORE));
    CU_ASSERT(b0 < a0 || b0 >= a0 + 64);          /* the other buffer */
    iox_seam_buf_return(seam, handle(&got[8]));
    iox_sim_publish(s);

    /* B again (it came back); A must not have: the ring runs dry. */
    CU_ASSERT_EQUAL(iox_sim_recv(s, FD, other, 64, 0), 64);
    CU_ASSERT_EQUAL_FATAL(ngot, 10);
    CU_ASSERT_PTR_EQUAL(iox_seam_buf(seam, handle(&got[9])), b0);
    iox_seam_buf_return(seam, handle(&got[9]));
    CU_ASSERT_EQUAL(iox_sim_recv(s, FD, "x", 1, 0), 0);
    CU_ASSERT_EQUAL_FATAL(ngot, 11);
    CU_ASSERT_EQUAL(got[10].res, -ENOBUFS);
    CU_ASSERT(memcmp(iox_seam_buf(seam, held), data + 24, 8) == 0);   /* the held slice kept its bytes */

    /* Slice 3 back: A returns; a new recv lands at A's start. */
    iox_seam_buf_return(seam, held);
    iox_sim_publish(s);
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(s), 0);
    CU_ASSERT_FATAL(iox_seam_recv_multishot(seam, FD, 42) == 0);
    CU_ASSERT_EQUAL(iox_sim_recv(s, FD, "hello", 5, 0), 5);
    CU_ASSERT_EQUAL_FATAL(ngot, 12);
    const char *p = iox_seam_buf(seam, handle(&got[11]));
    CU_ASSERT(p == a0 || p == b0);                /* a buffer's start, not a stale offset */
    CU_ASSERT(memcmp(p, "hello", 5) == 0);
    iox_seam_buf_return(seam, handle(&got[11]));
    CU_ASSERT_EQUAL(iox_sim_violations(s), 0);
    iox_sim_destroy(s);
}

/* A receive longer than what is left of the head buffer stops at its end;
 * the rest goes to the next buffer (two CQEs, the first without BUF_MORE). */
IOX_TEST(recv_bufs_sim, a_receive_stops_at_the_end_of_the_buffer)
{
    struct iox_seam_sim *s = sim_open(4, 32, 1);
    struct iox_seam *seam = iox_sim_seam(s);
    char data[50];
    for (int i = 0; i < 50; i++) data[i] = (char)i;
    CU_ASSERT_EQUAL(iox_sim_recv(s, FD, data, 20, 0), 20);
    CU_ASSERT_EQUAL(iox_sim_recv(s, FD, data + 20, 30, 0), 30);
    CU_ASSERT_EQUAL_FATAL(ngot, 3);
    CU_ASSERT_EQUAL(got[0].res, 20);
    CU_ASSERT_EQUAL(got[1].res, 12);
    CU_ASSERT_EQUAL(got[2].res, 18);
    CU_ASSERT(got[0].flags & IOX_CQE_F_BUF_MORE);
    CU_ASSERT(!(got[1].flags & IOX_CQE_F_BUF_MORE));
    CU_ASSERT(got[2].flags & IOX_CQE_F_BUF_MORE);
    size_t off = 0;
    for (unsigned k = 0; k < 3; k++) {
        CU_ASSERT(memcmp(iox_seam_buf(seam, handle(&got[k])), data + off, (size_t)got[k].res) == 0);
        off += (size_t)got[k].res;
        iox_seam_buf_return(seam, handle(&got[k]));
    }
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(s), 0);
    CU_ASSERT_EQUAL(iox_sim_violations(s), 0);
    iox_sim_destroy(s);
}

IOX_TEST(recv_bufs_sim, a_slice_returned_twice_is_a_violation)
{
    struct iox_seam_sim *s = sim_open(2, 64, 1);
    struct iox_seam *seam = iox_sim_seam(s);
    CU_ASSERT_EQUAL(iox_sim_recv(s, FD, "abc", 3, 0), 3);
    CU_ASSERT_EQUAL(iox_sim_recv(s, FD, "def", 3, 0), 3);
    CU_ASSERT_EQUAL_FATAL(ngot, 2);
    iox_seam_buf_return(seam, handle(&got[0]));
    CU_ASSERT_EQUAL(iox_sim_violations(s), 0);
    iox_seam_buf_return(seam, handle(&got[0]));
    CU_ASSERT_EQUAL(iox_sim_violations(s), 1);
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(s), 1);     /* the double return took nothing */
    iox_seam_buf_return(seam, handle(&got[1]));
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(s), 0);
    iox_sim_destroy(s);
}

/* Plain buffers as before: one buffer per CQE, its id, no BUF_MORE. */
IOX_TEST(recv_bufs_sim, plain_buffers_take_one_buffer_per_receive)
{
    struct iox_seam_sim *s = sim_open(4, 64, 0);
    struct iox_seam *seam = iox_sim_seam(s);
    CU_ASSERT_EQUAL(iox_sim_recv(s, FD, "abc", 3, 0), 3);
    CU_ASSERT_EQUAL(iox_sim_recv(s, FD, "def", 3, 0), 3);
    CU_ASSERT_EQUAL_FATAL(ngot, 2);
    CU_ASSERT_NOT_EQUAL(handle(&got[0]), handle(&got[1]));
    CU_ASSERT(!(got[0].flags & IOX_CQE_F_BUF_MORE));
    CU_ASSERT(handle(&got[0]) < 4 && handle(&got[1]) < 4);
    CU_ASSERT(memcmp(iox_seam_buf(seam, handle(&got[1])), "def", 3) == 0);
    iox_seam_buf_return(seam, handle(&got[0]));
    iox_seam_buf_return(seam, handle(&got[1]));
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(s), 0);
    CU_ASSERT_EQUAL(iox_sim_violations(s), 0);
    iox_sim_destroy(s);
}

IOX_SUITE(recv_bufs_sim, NULL, NULL);

/* ---- recv_bufs_net ---- */

static const char GET_ROOT[] = "GET / HTTP/1.1\r\nHost: l\r\n\r\n";

static int ok_response(struct hc_conn *c)
{
    struct hc_response r;
    if (hc_read_response(c, &r, 0) != HC_OK) return 0;
    int ok = r.status == 200 && r.body_len == 2 && !memcmp(r.body, "ok", 2);
    hc_response_free(&r);
    return ok;
}

/* Starts the playground with IOX_RECV_BUFS=mode (and extra env). Returns 1
 * started (its startup line checked), 0 when the kernel lacks the mode
 * (skipped, with a note), -1 on failure. */
static int start_mode(struct hc_server *s, const char *mode, const char *extra1, const char *extra2)
{
    char knob[64];
    snprintf(knob, sizeof knob, "IOX_RECV_BUFS=%s", mode);
    const char *env[] = {"REACTORS=1", "PLAYGROUND_MODE=raw", knob, extra1, extra2, NULL};
    uint16_t port = hc_free_port();
    if (hc_server_spawn(s, env, port) != 0) return -1;
    int rd = hc_server_wait_ready(s, hc_slow(5000));
    char *e = hc_server_stderr(s);
    if (rd != 1) {
        int lacks = strstr(e, "need Linux") != NULL;
        if (lacks) fprintf(stderr, "\n  IOX_RECV_BUFS=%s: the kernel lacks it, skipped: %s\n", mode, e);
        else fprintf(stderr, "\n  IOX_RECV_BUFS=%s: the server did not start: %s\n", mode, e);
        free(e);
        hc_server_free(s);
        return lacks ? 0 : -1;
    }
    const char *want = !strcmp(mode, "inc") ? "incremental (IOU_PBUF_RING_INC)" : "plain (IOX_RECV_BUFS=plain)";
    int line = strstr(e, want) != NULL;
    if (!line) fprintf(stderr, "\n  IOX_RECV_BUFS=%s: no \"%s\" on the startup line: %s\n", mode, want, e);
    CU_ASSERT(line);
    free(e);
    return 1;
}

static void stop(struct hc_server *s)
{
    CU_ASSERT_EQUAL(hc_server_stop(s, NULL), 0);
    hc_server_free(s);
}

struct upload { int fd; const char *p; size_t n; int rc; };
static void *upload_thread(void *arg)
{
    struct upload *u = arg;
    size_t off = 0;
    while (off < u->n) {
        ssize_t k = send(u->fd, u->p + off, u->n - off, MSG_NOSIGNAL);
        if (k <= 0) { u->rc = -1; return NULL; }
        off += (size_t)k;
    }
    return NULL;
}

static void run_shapes(const char *mode)
{
    struct hc_server s;
    int st = start_mode(&s, mode, NULL, NULL);
    CU_ASSERT(st >= 0);
    if (st <= 0) return;
    struct hc_conn c;
    CU_ASSERT_FATAL(hc_connect(&c, s.port, 2000) == 0);
    /* keep-alive */
    int okc = 0;
    for (int i = 0; i < 50; i++) {
        CU_ASSERT_EQUAL(hc_send_str(&c, GET_ROOT), 0);
        okc += ok_response(&c);
    }
    CU_ASSERT_EQUAL(okc, 50);
    /* 64-deep pipelined, in one write */
    enum { DEEP = 64 };
    static char deep[DEEP * sizeof GET_ROOT];
    size_t dn = 0;
    for (int i = 0; i < DEEP; i++) { memcpy(deep + dn, GET_ROOT, sizeof GET_ROOT - 1); dn += sizeof GET_ROOT - 1; }
    CU_ASSERT_EQUAL(hc_send(&c, deep, dn), 0);
    okc = 0;
    for (int i = 0; i < DEEP; i++) okc += ok_response(&c);
    CU_ASSERT_EQUAL(okc, DEEP);
    /* one request over many receives: a byte per write, with pauses */
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (size_t i = 0; i < sizeof GET_ROOT - 1; i++) {
        CU_ASSERT_EQUAL(hc_send(&c, GET_ROOT + i, 1), 0);
        usleep(2000);
    }
    CU_ASSERT(ok_response(&c));
    /* a 1 MiB upload, echoed while it is sent */
    size_t n = 1u << 20;
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++) body[i] = (char)(i * 131 + (i >> 9));
    char head[128];
    int hl = snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
    CU_ASSERT_EQUAL(hc_send(&c, head, (size_t)hl), 0);
    struct upload u = {c.fd, body, n, 0};
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, upload_thread, &u) == 0);
    hc_set_timeout(&c, hc_slow(10000));
    struct hc_response r;
    int rc = hc_read_response(&c, &r, 0);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(u.rc, 0);
    CU_ASSERT_EQUAL(rc, HC_OK);
    if (rc == HC_OK) {
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(r.body_len, n);
        CU_ASSERT(r.body_len == n && memcmp(r.body, body, n) == 0);
        hc_response_free(&r);
    }
    free(body);
    hc_close(&c);
    stop(&s);
}

/* 40 connections, each 8 pipelined requests, all sent before any is read,
 * into 2 provided buffers of 64 B (each burst spans 4: the ring runs dry
 * under both modes, ~1400 times per run, counted by hand with
 * IOX_STATS_PATH): multishot recvs end with -ENOBUFS and
 * re-arm; every request is answered. */
static void run_exhaustion(const char *mode)
{
    struct hc_server s;
    int st = start_mode(&s, mode, "IOX_RECV_BUFFERS=2", "IOX_RECV_BUFSIZE=64");
    CU_ASSERT(st >= 0);
    if (st <= 0) return;
    enum { N = 40, DEPTH = 8 };
    static struct hc_conn c[N];
    static char burst[DEPTH * sizeof GET_ROOT];
    size_t bn = 0;
    for (int i = 0; i < DEPTH; i++) { memcpy(burst + bn, GET_ROOT, sizeof GET_ROOT - 1); bn += sizeof GET_ROOT - 1; }
    int connected = 0;
    for (int i = 0; i < N; i++) connected += hc_connect(&c[i], s.port, 2000) == 0;
    CU_ASSERT_EQUAL_FATAL(connected, N);
    for (int i = 0; i < N; i++) CU_ASSERT_EQUAL(hc_send(&c[i], burst, bn), 0);
    int okc = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < DEPTH; k++) okc += ok_response(&c[i]);
    CU_ASSERT_EQUAL(okc, N * DEPTH);
    for (int i = 0; i < N; i++) hc_close(&c[i]);
    stop(&s);
}

IOX_TEST(recv_bufs_net, plain_serves_every_shape) { run_shapes("plain"); }
IOX_TEST(recv_bufs_net, inc_serves_every_shape) { run_shapes("inc"); }
IOX_TEST(recv_bufs_net, plain_survives_buffer_exhaustion) { run_exhaustion("plain"); }
IOX_TEST(recv_bufs_net, inc_survives_buffer_exhaustion) { run_exhaustion("inc"); }

/* auto is plain (what measured best), and says whether the kernel would
 * have given incremental buffers (probed). */
IOX_TEST(recv_bufs_net, auto_is_plain_and_says_what_the_kernel_has)
{
    const char *env[] = {"REACTORS=1", NULL};
    struct hc_server s;
    CU_ASSERT_FATAL(hc_server_start(&s, env) == 0);
    char *e = hc_server_stderr(&s);
    CU_ASSERT(strstr(e, "plain (IOX_RECV_BUFS=auto; the kernel has IOU_PBUF_RING_INC") ||
              strstr(e, "plain (IOX_RECV_BUFS=auto; kernel < 6.12"));
    free(e);
    stop(&s);
}

IOX_TEST(recv_bufs_net, bad_values_stop_startup_with_one_line)
{
    static const char *const cases[][2] = {
        {"IOX_RECV_BUFS=bundle", "IOX_RECV_BUFS=bundle is not supported"},
        {"IOX_RECV_BUFS=lots", "IOX_RECV_BUFS=lots is not one of auto, inc, plain"},
    };
    for (unsigned i = 0; i < 2; i++) {
        const char *env[] = {cases[i][0], NULL};
        struct hc_server s;
        CU_ASSERT_FATAL(hc_server_spawn(&s, env, hc_free_port()) == 0);
        CU_ASSERT_EQUAL(hc_server_wait_exit(&s, hc_slow(3000)), 2);
        char *e = hc_server_stderr(&s);
        CU_ASSERT(strstr(e, cases[i][1]) != NULL);
        free(e);
        hc_server_free(&s);
    }
}

IOX_SUITE(recv_bufs_net, NULL, NULL);
