/* test_msg_batch.c — messages to one reactor in one loop turn travel
 * together (issue 14 item 4): one IORING_OP_MSG_RING per destination per
 * turn carrying the turn's messages, in order, one batch in flight per
 * destination; a refused batch (target CQ full) is resent whole, ahead of
 * newer messages; a target that cannot take messages bounces every
 * message, in order, to its handler on the sender; a target that begins
 * to stop in the middle of a batch still runs the rest of it.
 *
 * Two reactors on linked simulated rings (ioxide/seam_sim.h): the test
 * decides when each MSG_RING completes and how. */
#include "iox_test.h"
#include <ioxide/log.h>
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <string.h>

#define RING_FD0 200
#define NMSG 256

enum { K_TEST = IOX_MSG_APP0 + 7 };

struct tmsg {
    struct iox_msg m;
    unsigned seq;
};

struct two {
    struct iox_seam_sim *sim[2];
    struct iox_reactor r[2];
    struct iox_server_config cfg;
    int ring_fds[2];
};

/* What each reactor's handler saw, in order. */
static struct { unsigned n; unsigned seq[NMSG * 2]; int status[NMSG * 2]; } seen[2];
static int stop_r1_at = -1;   /* r1's handler begins r1's stop at this seq */

static void on_test(struct iox_reactor *r, struct iox_msg *msg)
{
    struct tmsg *t = (struct tmsg *)msg;
    unsigned i = r->id;
    if (seen[i].n < NMSG * 2) {
        seen[i].seq[seen[i].n] = t->seq;
        seen[i].status[seen[i].n] = msg->status;
        seen[i].n++;
    }
    if (i == 1 && (int)t->seq == stop_r1_at) iox_reactor_begin_stop(r);
}

static void sink(void *ctx, const struct iox_cqe *cqe) { iox_reactor_dispatch(ctx, cqe); }

static void two_open(struct two *w)
{
    memset(w, 0, sizeof *w);
    memset(seen, 0, sizeof seen);
    stop_r1_at = -1;
    w->cfg.shutdown_grace_ms = 100;
    for (unsigned i = 0; i < 2; i++) {
        w->sim[i] = iox_sim_create(4, 32);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w->sim[i]);
        CU_ASSERT_FATAL(iox_reactor_init_sim(&w->r[i], iox_sim_seam(w->sim[i]), &w->cfg) == 0);
        iox_sim_set_sink(w->sim[i], sink, &w->r[i]);
        w->ring_fds[i] = RING_FD0 + (int)i;
        w->r[i].id = i;
        w->r[i].nreactors = 2;
        w->r[i].peer_ring_fds = w->ring_fds;
        CU_ASSERT_FATAL(iox_reactor_on_msg(&w->r[i], K_TEST, on_test) == 0);
    }
    for (unsigned i = 0; i < 2; i++)
        for (unsigned j = 0; j < 2; j++) iox_sim_link_ring(w->sim[i], RING_FD0 + (int)j, w->sim[j]);
}

static void two_close(struct two *w)
{
    for (unsigned i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(iox_sim_violations(w->sim[i]), 0);
        iox_reactor_fini(&w->r[i]);
        iox_sim_destroy(w->sim[i]);
    }
}

static struct tmsg msgs[NMSG];

static void send_range(struct two *w, unsigned from, unsigned to, unsigned a, unsigned b)
{
    for (unsigned k = a; k < b; k++) {
        msgs[k].m.kind = K_TEST;
        msgs[k].seq = k;
        CU_ASSERT_EQUAL(iox_reactor_send_msg(&w->r[from], to, &msgs[k].m), 0);
    }
}

/* The pending MSG_RING of reactor i addressed to reactor `to`: its index. */
static int ring_op_to(struct two *w, unsigned i, unsigned to, uint32_t *len)
{
    for (unsigned k = 0; k < iox_sim_msgs(w->sim[i]); k++) {
        int fd;
        iox_sim_msg_peek(w->sim[i], k, &fd, len, NULL);
        if (fd == RING_FD0 + (int)to) return (int)k;
    }
    return -1;
}

static void assert_seq(unsigned i, unsigned a, unsigned b, int status)
{
    CU_ASSERT_EQUAL_FATAL(seen[i].n, b - a);
    for (unsigned k = 0; k < b - a; k++) {
        CU_ASSERT_EQUAL(seen[i].seq[k], a + k);
        CU_ASSERT_EQUAL(seen[i].status[k], status);
    }
}

IOX_TEST(msg_batch, one_doorbell_per_destination_all_in_order)
{
    struct two w;
    two_open(&w);
    /* One turn: 200 messages to r1 and 50 to r0 itself. Nothing leaves
     * before the end of the turn; then one MSG_RING per destination. */
    send_range(&w, 0, 1, 0, 200);
    send_range(&w, 0, 0, 200, 250);
    CU_ASSERT_EQUAL(iox_sim_msgs(w.sim[0]), 0);
    CU_ASSERT_EQUAL(iox_reactor_msgs_outstanding(&w.r[0]), 250);
    iox_reactor_flush(&w.r[0]);
    CU_ASSERT_EQUAL(iox_sim_msgs(w.sim[0]), 2);
    CU_ASSERT_EQUAL(w.r[0].n_msg_batches, 2);
    uint32_t len = 0;
    int k1 = ring_op_to(&w, 0, 1, &len);
    CU_ASSERT_FATAL(k1 >= 0);
    CU_ASSERT_EQUAL(len, 200);
    /* A second turn while the batch to r1 is in flight: its messages wait
     * (one batch per destination in flight keeps the order). */
    send_range(&w, 0, 1, 250, 256);
    iox_reactor_flush(&w.r[0]);
    CU_ASSERT_EQUAL(iox_sim_msgs(w.sim[0]), 2);
    CU_ASSERT_EQUAL(iox_sim_msg_complete(w.sim[0], (unsigned)ring_op_to(&w, 0, 1, NULL), 0), 0);
    assert_seq(1, 0, 200, 0);
    CU_ASSERT_EQUAL(iox_sim_msg_complete(w.sim[0], (unsigned)ring_op_to(&w, 0, 0, NULL), 0), 0);
    assert_seq(0, 200, 250, 0);
    CU_ASSERT_EQUAL(w.r[1].n_msgs_received, 200);
    /* Now the 6 that waited go, in one MSG_RING. */
    iox_reactor_flush(&w.r[0]);
    CU_ASSERT_EQUAL(iox_sim_msgs(w.sim[0]), 1);
    CU_ASSERT_FATAL(ring_op_to(&w, 0, 1, &len) == 0);
    CU_ASSERT_EQUAL(len, 6);
    CU_ASSERT_EQUAL(iox_sim_msg_complete(w.sim[0], 0, 0), 0);
    CU_ASSERT_EQUAL(seen[1].n, 206);
    for (unsigned k = 0; k < 206; k++) CU_ASSERT_EQUAL(seen[1].seq[k], k < 200 ? k : 250 + (k - 200));
    CU_ASSERT_EQUAL(iox_reactor_msgs_outstanding(&w.r[0]), 0);
    CU_ASSERT_EQUAL(w.r[0].n_msg_batches, 3);
    two_close(&w);
}

IOX_TEST(msg_batch, full_target_cq_resends_the_batch_first)
{
    struct two w;
    two_open(&w);
    send_range(&w, 0, 1, 0, 5);
    iox_reactor_flush(&w.r[0]);
    send_range(&w, 0, 1, 5, 8);                       /* queued behind the batch in flight */
    CU_ASSERT_EQUAL(iox_sim_msg_complete(w.sim[0], 0, -EOVERFLOW), 0);
    CU_ASSERT_EQUAL(seen[1].n, 0);                    /* nothing delivered, nothing bounced */
    CU_ASSERT_EQUAL(seen[0].n, 0);
    CU_ASSERT_EQUAL(iox_reactor_msgs_outstanding(&w.r[0]), 8);
    iox_reactor_flush(&w.r[0]);
    uint32_t len = 0;
    CU_ASSERT_FATAL(ring_op_to(&w, 0, 1, &len) == 0);
    CU_ASSERT_EQUAL(len, 8);
    CU_ASSERT_EQUAL(iox_sim_msg_complete(w.sim[0], 0, 0), 0);
    assert_seq(1, 0, 8, 0);
    CU_ASSERT_EQUAL(iox_reactor_msgs_outstanding(&w.r[0]), 0);
    two_close(&w);
}

IOX_TEST(msg_batch, gone_target_bounces_every_message_in_order)
{
    struct two w;
    two_open(&w);
    int lvl = iox_log_level;
    iox_log_level = -1;                               /* the bounce is logged as a warning */
    send_range(&w, 0, 1, 0, 6);
    iox_reactor_flush(&w.r[0]);
    CU_ASSERT_EQUAL(iox_sim_msg_complete(w.sim[0], 0, -ENXIO), 0);
    iox_log_level = lvl;
    CU_ASSERT_EQUAL(seen[1].n, 0);
    assert_seq(0, 0, 6, -ENXIO);                      /* each on the sender, status < 0 */
    CU_ASSERT_EQUAL(iox_reactor_msgs_outstanding(&w.r[0]), 0);
    /* The way is free again: the next batch goes. */
    send_range(&w, 0, 1, 6, 7);
    iox_reactor_flush(&w.r[0]);
    CU_ASSERT_EQUAL(iox_sim_msgs(w.sim[0]), 1);
    CU_ASSERT_EQUAL(iox_sim_msg_complete(w.sim[0], 0, 0), 0);
    CU_ASSERT_EQUAL(seen[1].n, 1);
    two_close(&w);
}

IOX_TEST(msg_batch, target_stopping_mid_batch_runs_the_rest)
{
    struct two w;
    two_open(&w);
    stop_r1_at = 10;                                  /* r1 begins to stop at the 11th of 40 */
    send_range(&w, 0, 1, 0, 40);
    iox_reactor_flush(&w.r[0]);
    CU_ASSERT_EQUAL(iox_sim_msg_complete(w.sim[0], 0, 0), 0);
    CU_ASSERT_TRUE(w.r[1].stopping);
    assert_seq(1, 0, 40, 0);                          /* none lost after the stop began */
    /* A stopping reactor still takes messages (others may be finishing). */
    send_range(&w, 0, 1, 40, 45);
    iox_reactor_flush(&w.r[0]);
    CU_ASSERT_EQUAL(iox_sim_msg_complete(w.sim[0], 0, 0), 0);
    CU_ASSERT_EQUAL(seen[1].n, 45);
    CU_ASSERT_EQUAL(iox_reactor_msgs_outstanding(&w.r[0]), 0);
    two_close(&w);
}

IOX_SUITE(msg_batch, NULL, NULL);
