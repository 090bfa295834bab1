/* test_stream_dial.c — suite `stream_dial`: the outbound socket of the
 * client kit (ioxide/stream_dial.h) that the kit's connections, pg's
 * sessions and pg's CancelRequest connections embed, driven directly on the
 * simulated ring by a minimal kind: the open (socket, then connect to the
 * address given, the deadline), the recv armed at most once, a short send
 * continued from where it stopped until every byte has left, op accounting
 * on the slot and on its owner, cancel, the close exactly once (and its
 * no-SQE fallback), a stale completion dropped, the backoff schedule. */
#include "iox_test.h"
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/stream_dial.h>
#include <ioxide/ud.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#define FD 11

static struct {
    struct iox_dial *d;
    unsigned owner_ops;     /* the owner's count, as a pool keeps it */
    unsigned taken, stale;
    unsigned last_op;
    int last_res;
} K;

static void kind_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    (void)ctx;
    K.owner_ops--;
    if (!iox_dial_take(K.d, r, cqe)) { K.stale++; return; }
    K.taken++;
    K.last_op = iox_ud_op(cqe->ud);
    K.last_res = cqe->res;
}
static const struct iox_kind kind = {.name = "dial_test", .on_cqe = kind_cqe};

struct w {
    struct iox_seam_sim *sim;
    struct iox_reactor r;
    struct iox_server_config cfg;
    struct iox_dial d;
    int owner;
};

static void sink(void *ctx, const struct iox_cqe *cqe) { iox_reactor_dispatch(ctx, cqe); }

static void w_init(struct w *w)
{
    memset(w, 0, sizeof *w);
    memset(&K, 0, sizeof K);
    w->sim = iox_sim_create(8, 64);
    CU_ASSERT_FATAL(w->sim != NULL);
    CU_ASSERT_FATAL(iox_reactor_init_sim(&w->r, iox_sim_seam(w->sim), &w->cfg) == 0);
    iox_sim_set_sink(w->sim, sink, &w->r);
    w->owner = iox_reactor_register_kind(&w->r, &kind, NULL);
    CU_ASSERT_FATAL(w->owner >= 0);
    iox_dial_init(&w->d, &w->r, (unsigned)w->owner, 5, &K.owner_ops);
    K.d = &w->d;
}

static void w_fini(struct w *w)
{
    CU_ASSERT_EQUAL(iox_sim_violations(w->sim), 0);
    iox_reactor_unregister_kind(&w->r, w->owner);
    iox_reactor_fini(&w->r);
    iox_sim_destroy(w->sim);
}

/* Open and connect the dial to 127.0.0.1:5432 on fake descriptor FD. */
static void open_connected(struct w *w, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(5432);
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_EQUAL(iox_dial_open(&w->d, AF_INET, 1234), 0);
    CU_ASSERT_EQUAL(w->d.deadline_ms, 1234);
    CU_ASSERT_EQUAL(w->d.ops, 1);
    CU_ASSERT_EQUAL(K.owner_ops, 1);
    CU_ASSERT_EQUAL(w->d.fd, -1);
    CU_ASSERT_EQUAL(iox_sim_complete_one(w->sim, IOX_OP_SOCKET, -1, FD), 0);
    CU_ASSERT_EQUAL(K.last_op, IOX_OP_SOCKET);
    CU_ASSERT_EQUAL(w->d.fd, FD);           /* the descriptor is kept by the take */
    CU_ASSERT_EQUAL(w->d.ops, 0);
    CU_ASSERT_EQUAL(K.owner_ops, 0);
    CU_ASSERT_EQUAL(iox_dial_connect(&w->d, (const struct sockaddr *)sa, sizeof *sa), 0);
    CU_ASSERT_STRING_EQUAL(iox_sim_connect_addr(w->sim, FD), "127.0.0.1:5432");
    CU_ASSERT_EQUAL(iox_sim_complete_one(w->sim, IOX_OP_CONNECT, FD, 0), 0);
    CU_ASSERT_EQUAL(K.last_op, IOX_OP_CONNECT);
    CU_ASSERT_EQUAL(w->d.ops, 0);
}

IOX_TEST(stream_dial, open_connect_short_sends_continue_close_once)
{
    struct w w;
    struct sockaddr_in sa;
    w_init(&w);
    open_connected(&w, &sa);
    CU_ASSERT(!iox_dial_overdue(&w.d, 1233));
    CU_ASSERT(iox_dial_overdue(&w.d, 1234));

    /* A send cut twice: each continuation starts where the last stopped. */
    static const char msg[] = "0123456789abcdef";
    CU_ASSERT_EQUAL(iox_dial_send(&w.d, msg, 16), 0);
    CU_ASSERT(w.d.send_busy);
    CU_ASSERT_EQUAL(iox_sim_send(w.sim, FD, 5), 0);
    CU_ASSERT_EQUAL(K.last_res, 5);
    CU_ASSERT(!w.d.send_busy);                  /* the op is over... */
    CU_ASSERT_EQUAL(iox_dial_sent(&w.d, 5), 1); /* ...the rest is on its way */
    CU_ASSERT(w.d.send_busy);
    CU_ASSERT_EQUAL(w.d.ops, 1);
    CU_ASSERT_EQUAL(iox_sim_send(w.sim, FD, 7), 0);
    CU_ASSERT_EQUAL(iox_dial_sent(&w.d, K.last_res), 1);
    CU_ASSERT_EQUAL(iox_sim_send(w.sim, FD, 0), 0);  /* all of the rest */
    CU_ASSERT_EQUAL(K.last_res, 4);
    CU_ASSERT_EQUAL(iox_dial_sent(&w.d, K.last_res), 0);
    CU_ASSERT(!w.d.send_busy);
    size_t n = 0;
    const char *out = iox_sim_peer_bytes(w.sim, FD, &n);
    CU_ASSERT_EQUAL(n, 16);
    CU_ASSERT(n == 16 && !memcmp(out, msg, 16));

    /* The recv is armed once, however often it is asked for. */
    char buf[32];
    CU_ASSERT_EQUAL(iox_dial_recv(&w.d, buf, sizeof buf), 0);
    CU_ASSERT_EQUAL(iox_dial_recv(&w.d, buf, sizeof buf), 0);
    CU_ASSERT_EQUAL(iox_sim_live_ops(w.sim, FD), 1);
    CU_ASSERT(w.d.recv_armed);
    CU_ASSERT_EQUAL(iox_sim_recv_into(w.sim, FD, "pong", 4), 4);
    CU_ASSERT(!w.d.recv_armed);
    CU_ASSERT(!memcmp(buf, "pong", 4));

    /* Cancel with a recv in flight, then the close once the last op is in. */
    CU_ASSERT_EQUAL(iox_dial_recv(&w.d, buf, sizeof buf), 0);
    CU_ASSERT_EQUAL(iox_dial_cancel(&w.d), 0);
    CU_ASSERT_EQUAL(w.d.ops, 2);
    CU_ASSERT_EQUAL(K.owner_ops, 2);
    iox_sim_pump(w.sim);
    CU_ASSERT_EQUAL(w.d.ops, 0);
    CU_ASSERT(!w.d.recv_armed);
    CU_ASSERT_EQUAL(iox_dial_close(&w.d), 0);
    CU_ASSERT_EQUAL(w.d.fd, -1);
    iox_sim_pump(w.sim);
    CU_ASSERT_EQUAL(iox_sim_closes(w.sim, FD), 1);
    CU_ASSERT_EQUAL(w.d.ops, 0);
    CU_ASSERT_EQUAL(K.owner_ops, 0);
    /* Nothing to cancel without a socket. */
    CU_ASSERT_EQUAL(iox_dial_cancel(&w.d), 0);
    CU_ASSERT_EQUAL(w.d.ops, 0);
    w_fini(&w);
}

IOX_TEST(stream_dial, no_sqe_counts_nothing_and_closes_directly)
{
    struct w w;
    struct sockaddr_in sa;
    w_init(&w);
    open_connected(&w, &sa);
    iox_sim_fail_submit(w.sim, IOX_OP_SEND, 1, -EBUSY);
    CU_ASSERT(iox_dial_send(&w.d, "x", 1) < 0);
    CU_ASSERT(!w.d.send_busy);
    CU_ASSERT_EQUAL(w.d.ops, 0);
    CU_ASSERT_EQUAL(K.owner_ops, 0);
    iox_sim_fail_submit(w.sim, IOX_OP_RECV, 1, -EBUSY);
    char buf[8];
    CU_ASSERT(iox_dial_recv(&w.d, buf, sizeof buf) < 0);
    CU_ASSERT(!w.d.recv_armed);
    CU_ASSERT_EQUAL(w.d.ops, 0);
    /* A close with no SQE closes at once (a simulated descriptor is not
     * ours to close(2)): no completion will come. */
    iox_sim_fail_submit(w.sim, IOX_OP_CLOSE, 1, -EBUSY);
    CU_ASSERT_EQUAL(iox_dial_close(&w.d), 1);
    CU_ASSERT_EQUAL(w.d.fd, -1);
    CU_ASSERT_EQUAL(w.d.ops, 0);
    CU_ASSERT_EQUAL(K.owner_ops, 0);
    iox_sim_pump(w.sim);
    CU_ASSERT_EQUAL(K.taken, 2);            /* socket, connect: nothing since */
    w_fini(&w);
}

IOX_TEST(stream_dial, a_late_completion_of_an_old_generation_is_dropped)
{
    struct w w;
    w_init(&w);
    CU_ASSERT_EQUAL(iox_dial_open(&w.d, AF_INET6, 0), 0);
    CU_ASSERT(!iox_dial_overdue(&w.d, ~0ull));    /* no deadline: never overdue */
    uint16_t gen = w.d.gen;
    iox_dial_reset(&w.d);                       /* the slot moves on (as no owner would, with an op out) */
    CU_ASSERT_EQUAL(w.d.gen, (uint16_t)(gen + 1));
    uint64_t stale0 = w.r.n_stale_cqes;
    CU_ASSERT_EQUAL(iox_sim_complete_one(w.sim, IOX_OP_SOCKET, -1, FD), 0);
    CU_ASSERT_EQUAL(K.stale, 1);
    CU_ASSERT_EQUAL(K.taken, 0);
    CU_ASSERT_EQUAL(w.r.n_stale_cqes, stale0 + 1);
    CU_ASSERT_EQUAL(w.d.fd, -1);                /* the stale socket is not adopted */
    CU_ASSERT_EQUAL(w.d.ops, 1);                /* ...nor counted on the new generation */
    w_fini(&w);
}

IOX_TEST(stream_dial, backoff_doubles_from_min_to_max)
{
    struct w w;
    w_init(&w);
    static const uint32_t want[] = {100, 200, 400, 500, 500};
    for (unsigned i = 0; i < 5; i++) CU_ASSERT_EQUAL(iox_dial_backoff(&w.d, 100, 500), want[i]);
    w.d.backoff_ms = 0;                          /* a session came up */
    CU_ASSERT_EQUAL(iox_dial_backoff(&w.d, 100, 500), 100);
    CU_ASSERT_EQUAL(iox_dial_backoff(&w.d, 100, 50), 50);   /* the cap wins over the minimum */
    w_fini(&w);
}

IOX_SUITE(stream_dial, NULL, NULL);
