/* test_stream_core.c — suite `stream_core`: the socket mechanics that the
 * stream layer and HTTP's connection share (ioxide/stream_core.h), driven
 * directly on the simulated ring by a minimal kind: the write buffer's
 * sent / committed / uncommitted parts, one send at a time, a buffer grown
 * under a send in flight kept alive (retired) until it completes, buffers
 * given back once everything is sent; the timer classes (stuck is not
 * renewed by progress, progress and output are, SIOCOUTQ renews idle and
 * output while it moves, linger); the recv books, the carry, EOF, and the
 * close once no op is in flight. */
#include "iox_test.h"
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/stream_core.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FD 9

static struct {
    struct iox_sock_host *h;
    struct iox_sock *s;
    enum iox_sock_got got;
    unsigned ncqe;
    char in[256];
    size_t in_len;
} K;

static void kind_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    (void)r; (void)ctx;
    const char *data = NULL;
    uint32_t len = 0;
    K.ncqe++;
    CU_ASSERT_EQUAL(iox_ud_gen(cqe->ud), K.s->gen);
    CU_ASSERT_EQUAL(iox_ud_idx(cqe->ud), K.s->idx);
    K.got = iox_sock_cqe(K.h, K.s, iox_ud_op(cqe->ud), cqe, &data, &len);
    if (K.got == IOX_SOCK_GOT_RECV) {
        if (K.in_len + len <= sizeof K.in) memcpy(K.in + K.in_len, data, len);
        K.in_len += len;
        iox_sock_recv_done(K.h, cqe);
    }
}
static const struct iox_kind kind = {.name = "core_test", .on_cqe = kind_cqe};

struct w {
    struct iox_seam_sim *sim;
    struct iox_reactor r;
    struct iox_server_config cfg;
    struct iox_sock_host h;
    struct iox_sock s;
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
    w->h.r = &w->r;
    w->h.owner = iox_reactor_register_kind(&w->r, &kind, NULL);
    CU_ASSERT_FATAL(w->h.owner >= 0);
    w->h.name = "sock";
    w->h.idle_ms = 1000;
    w->h.linger_ms = 100;
    w->s.fd = FD;
    w->s.idx = 3;
    w->s.gen = 7;
    K.h = &w->h;
    K.s = &w->s;
}

static void w_fini(struct w *w)
{
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(w->sim), 0);
    CU_ASSERT_EQUAL(iox_sim_violations(w->sim), 0);
    iox_sock_buffers_drop(&w->h, &w->s);
    iox_sock_host_free(&w->h);
    iox_reactor_unregister_kind(&w->r, w->h.owner);
    iox_reactor_fini(&w->r);
    iox_sim_destroy(w->sim);
}

/* Append n bytes of pattern (byte i of the whole output is 'a' + i % 26). */
static void put(struct w *w, size_t n, size_t *total)
{
    char *p = iox_sock_out_reserve(&w->h, &w->s, n, (size_t)1 << 20);
    CU_ASSERT_FATAL(p != NULL);
    for (size_t i = 0; i < n; i++) p[i] = (char)('a' + (*total + i) % 26);
    w->s.wlen += (uint32_t)n;
    *total += n;
}

/* The turn end: sends of the dirty list. */
static void flush_dirty(struct w *w)
{
    struct iox_sock *k = iox_sock_take_dirty(&w->h);
    while (k) {
        struct iox_sock *next = k->dirty_next;
        k->dirty_linked = 0;
        if (k->dirty) CU_ASSERT_EQUAL(iox_sock_start_send(&w->h, k), 0);
        k = next;
    }
}

IOX_TEST(stream_core, write_buffer_commits_sends_once_and_gives_back)
{
    struct w w;
    w_init(&w);
    size_t total = 0;
    put(&w, 100, &total);
    w.s.wcommit = 60;   /* [60, 100): a response still being built */
    CU_ASSERT_EQUAL(iox_sock_start_send(&w.h, &w.s), 0);
    CU_ASSERT(w.s.send_inflight);
    CU_ASSERT_EQUAL(w.s.inflight, 1);
    CU_ASSERT_EQUAL(w.s.wsend_end, 60);
    CU_ASSERT_EQUAL(iox_sock_start_send(&w.h, &w.s), 0);   /* one at a time */
    CU_ASSERT_EQUAL(iox_sim_live_ops(w.sim, FD), 1);

    CU_ASSERT_EQUAL(iox_sim_send(w.sim, FD, 20), 0);        /* short */
    CU_ASSERT_EQUAL(K.got, IOX_SOCK_GOT_SEND_PARTIAL);
    CU_ASSERT_EQUAL(w.s.wsent, 20);
    CU_ASSERT_EQUAL(w.s.inflight, 0);
    CU_ASSERT(w.s.tprogress);

    /* The rest of the committed part goes; the buffer grows under it. */
    CU_ASSERT_EQUAL(iox_sock_start_send(&w.h, &w.s), 0);
    char *before = w.s.out;
    put(&w, 40000, &total);
    CU_ASSERT(w.s.out != before);
    CU_ASSERT_PTR_EQUAL(w.s.retired, before);   /* the send in flight still reads it */
    CU_ASSERT_EQUAL(w.s.wsent, 0);              /* rebased: owed bytes at the front */
    CU_ASSERT_EQUAL(w.s.wcommit, 40);
    CU_ASSERT_EQUAL(w.s.wsend_end, 40);
    CU_ASSERT_EQUAL(iox_sim_send(w.sim, FD, 0), 0);
    CU_ASSERT_EQUAL(K.got, IOX_SOCK_GOT_SEND_DONE);
    CU_ASSERT_PTR_NULL(w.s.retired);
    CU_ASSERT_PTR_NOT_NULL(w.s.out);            /* [40, wlen) is still owed */
    CU_ASSERT(!w.s.dirty);                      /* nothing committed is unsent */

    /* Commit the rest: it goes at the turn end, and then the buffer goes
     * back (an idle socket holds none). */
    w.s.wcommit = w.s.wlen;
    iox_sock_mark_dirty(&w.h, &w.s);
    iox_sock_mark_dirty(&w.h, &w.s);            /* listed once */
    flush_dirty(&w);
    CU_ASSERT(w.s.send_inflight);
    CU_ASSERT_EQUAL(iox_sim_send(w.sim, FD, 0), 0);
    CU_ASSERT_EQUAL(K.got, IOX_SOCK_GOT_SEND_DONE);
    CU_ASSERT_PTR_NULL(w.s.out);
    CU_ASSERT_EQUAL(w.s.wlen, 0);
    CU_ASSERT_EQUAL(iox_sock_owed(&w.s), 0);
    CU_ASSERT(w.h.free_wbuf != NULL || w.h.free_wbuf_big[1] != NULL);   /* recycled, not freed */

    size_t n = 0;
    const char *peer = iox_sim_peer_bytes(w.sim, FD, &n);
    CU_ASSERT_EQUAL(n, total);
    int same = n == total;
    for (size_t i = 0; same && i < n; i++) same = peer[i] == (char)('a' + i % 26);
    CU_ASSERT(same);

    /* A send that fails, and one that writes nothing, are errors. */
    put(&w, 10, &total);
    w.s.wcommit = w.s.wlen;
    CU_ASSERT_EQUAL(iox_sock_start_send(&w.h, &w.s), 0);
    CU_ASSERT_EQUAL(iox_sim_send(w.sim, FD, -EPIPE), 0);
    CU_ASSERT_EQUAL(K.got, IOX_SOCK_GOT_SEND_ERROR);
    CU_ASSERT_EQUAL(w.s.inflight, 0);
    w_fini(&w);
}

IOX_TEST(stream_core, growth_is_bounded_by_max)
{
    struct w w;
    w_init(&w);
    CU_ASSERT_PTR_NOT_NULL(iox_sock_out_reserve(&w.h, &w.s, IOX_BLOCK, IOX_BLOCK));
    w.s.wlen = IOX_BLOCK;
    CU_ASSERT_PTR_NULL(iox_sock_out_reserve(&w.h, &w.s, 1, IOX_BLOCK));   /* would grow past max */
    CU_ASSERT_EQUAL(w.s.wlen, IOX_BLOCK);
    CU_ASSERT_EQUAL(w.s.wcap, IOX_BLOCK);
    CU_ASSERT_PTR_NULL(iox_sock_out_reserve(&w.h, &w.s, (size_t)UINT32_MAX, (size_t)-1));   /* 32-bit lengths */
    w.s.wsent = w.s.wlen;   /* everything "sent": the buffer can go back */
    iox_sock_out_release(&w.h, &w.s);
    CU_ASSERT_PTR_NULL(w.s.out);
    CU_ASSERT_PTR_NOT_NULL(w.h.free_wbuf);
    w_fini(&w);
}

IOX_TEST(stream_core, timer_classes)
{
    struct w w;
    w_init(&w);
    struct iox_sock t = {.fd = FD + 1};   /* a second socket on the same lists */
    const uint64_t b = w.r.now_ms;

    /* STUCK: from the first byte; progress does not renew it. */
    iox_sock_timer_set(&w.h, &w.s, IOX_SOCK_T_STUCK);
    CU_ASSERT_EQUAL(w.s.tlist, 1);
    CU_ASSERT_EQUAL(w.s.deadline_ms, b + 1000);
    iox_reactor_advance_clock(&w.r, b + 500);
    iox_sock_progress(&w.s);
    iox_sock_timer_set(&w.h, &w.s, IOX_SOCK_T_STUCK);
    CU_ASSERT_EQUAL(w.s.deadline_ms, b + 1000);
    CU_ASSERT(!w.s.tprogress);                  /* consumed by the set */

    /* A new class starts a new deadline; PROGRESS is renewed by progress. */
    iox_sock_timer_set(&w.h, &w.s, IOX_SOCK_T_PROGRESS);
    CU_ASSERT_EQUAL(w.s.deadline_ms, b + 1500);
    iox_sock_timer_set(&w.h, &t, IOX_SOCK_T_IDLE);   /* t: 1500 too, behind s */
    iox_reactor_advance_clock(&w.r, b + 700);
    iox_sock_timer_set(&w.h, &w.s, IOX_SOCK_T_PROGRESS);
    CU_ASSERT_EQUAL(w.s.deadline_ms, b + 1500);     /* no progress: kept */
    iox_sock_progress(&w.s);
    iox_sock_timer_set(&w.h, &w.s, IOX_SOCK_T_PROGRESS);
    CU_ASSERT_EQUAL(w.s.deadline_ms, b + 1700);
    CU_ASSERT_PTR_EQUAL(w.h.idle.head, &t);     /* the list stays in deadline order */
    CU_ASSERT_PTR_EQUAL(w.h.idle.tail, &w.s);

    /* NONE: no deadline. */
    iox_sock_timer_set(&w.h, &w.s, IOX_SOCK_T_NONE);
    CU_ASSERT_EQUAL(w.s.tlist, 0);
    CU_ASSERT_PTR_EQUAL(w.h.idle.tail, &t);

    /* OUTPUT: an expiry is renewed while the send queue moves, not once it
     * stands still. */
    iox_sock_timer_set(&w.h, &w.s, IOX_SOCK_T_OUTPUT);
    CU_ASSERT_EQUAL(w.s.deadline_ms, b + 1700);
    iox_reactor_advance_clock(&w.r, b + 1700);
    int lingering = -1;
    iox_sim_set_unsent(w.sim, FD, 5000);
    CU_ASSERT_EQUAL(iox_sock_expire(&w.h, &w.s, &lingering), 1);
    CU_ASSERT_EQUAL(lingering, 0);
    CU_ASSERT_EQUAL(w.s.tlist, 1);
    CU_ASSERT_EQUAL(w.s.deadline_ms, b + 2700);
    iox_reactor_advance_clock(&w.r, b + 2700);
    CU_ASSERT_EQUAL(iox_sock_expire(&w.h, &w.s, &lingering), 0);   /* 5000 again: the peer does not read */
    CU_ASSERT_EQUAL(w.s.tlist, 0);
    /* STUCK never asks the send queue. */
    iox_sim_set_unsent(w.sim, FD, 6000);
    iox_sock_timer_set(&w.h, &w.s, IOX_SOCK_T_STUCK);
    CU_ASSERT_EQUAL(iox_sock_expire(&w.h, &w.s, &lingering), 0);

    /* Linger: its own list; its end is no timeout; set() leaves it alone. */
    iox_sock_timer_linger(&w.h, &w.s);
    CU_ASSERT_EQUAL(w.s.tlist, 2);
    CU_ASSERT_EQUAL(w.s.deadline_ms, b + 2800);
    iox_sock_timer_set(&w.h, &w.s, IOX_SOCK_T_IDLE);
    CU_ASSERT_EQUAL(w.s.tlist, 2);
    CU_ASSERT_EQUAL(iox_sock_expire(&w.h, &w.s, &lingering), 0);
    CU_ASSERT_EQUAL(lingering, 1);
    CU_ASSERT_PTR_NULL(w.h.linger.head);
    iox_sock_timer_remove(&w.h, &t);
    CU_ASSERT_PTR_NULL(w.h.idle.head);
    w_fini(&w);
}

IOX_TEST(stream_core, recv_books_carry_eof_and_close)
{
    struct w w;
    w_init(&w);
    iox_sock_park(&w.h, &w.s);
    CU_ASSERT(w.s.parked && w.s.parked_linked);
    struct iox_sock *k = iox_sock_take_parked(&w.h);
    CU_ASSERT_PTR_EQUAL(k, &w.s);
    k->parked_linked = 0;
    CU_ASSERT_EQUAL(iox_sock_rearm(&w.h, &w.s), 0);
    CU_ASSERT(w.s.recv_armed);
    CU_ASSERT_EQUAL(w.s.inflight, 1);
    CU_ASSERT_EQUAL(iox_sock_rearm(&w.h, &w.s), 0);   /* armed: no second recv */
    CU_ASSERT_EQUAL(w.s.inflight, 1);
    iox_sim_publish(w.sim);

    /* Bytes: the books keep the multishot armed (more CQEs to come). */
    CU_ASSERT_EQUAL(iox_sim_recv(w.sim, FD, "hello world", 11, 4), 11);
    CU_ASSERT_EQUAL(K.got, IOX_SOCK_GOT_RECV);
    CU_ASSERT_EQUAL(K.in_len, 11);
    CU_ASSERT(!memcmp(K.in, "hello world", 11));
    CU_ASSERT(w.s.recv_armed);

    /* The carry: blocks from the host, grown on demand, back when empty. */
    CU_ASSERT_EQUAL(iox_sock_carry_append(&w.h, &w.s, "abc", 3, 1 << 20), 3);
    static char big[IOX_BLOCK + 100];
    memset(big, 'z', sizeof big);
    CU_ASSERT_EQUAL(iox_sock_carry_append(&w.h, &w.s, big, sizeof big, 1 << 20), sizeof big);
    CU_ASSERT(w.s.in_cap >= 3 + sizeof big);
    CU_ASSERT(!memcmp(w.s.in, "abczz", 5));
    size_t room = w.s.in_cap - w.s.in_len;
    CU_ASSERT(room < sizeof big);
    CU_ASSERT_EQUAL(iox_sock_carry_append(&w.h, &w.s, big, sizeof big, w.s.in_cap), room);   /* at max: no growth */
    iox_sock_carry_consume(&w.h, &w.s, 2);
    CU_ASSERT_EQUAL(w.s.in[0], 'c');
    iox_sock_carry_consume(&w.h, &w.s, w.s.in_len);
    CU_ASSERT_PTR_NULL(w.s.in);

    /* Backpressure: the cancel is an op; a pending re-arm is withdrawn. */
    iox_sock_park(&w.h, &w.s);
    CU_ASSERT(!w.s.parked);                     /* armed: nothing to re-arm */
    iox_sock_stop_recv(&w.h, &w.s);
    CU_ASSERT(w.s.recv_cancelling);
    CU_ASSERT_EQUAL(w.s.inflight, 2);
    iox_sim_pump(w.sim);
    CU_ASSERT(!w.s.recv_armed && !w.s.recv_cancelling);
    CU_ASSERT_EQUAL(w.s.inflight, 0);
    CU_ASSERT_EQUAL(iox_sock_rearm(&w.h, &w.s), 0);
    iox_sim_publish(w.sim);

    /* EOF: peer_shut, the recv is over, and it is never armed again. */
    CU_ASSERT_EQUAL(iox_sim_recv_end(w.sim, FD, 0), 0);
    CU_ASSERT_EQUAL(K.got, IOX_SOCK_GOT_RECV_EOF);
    CU_ASSERT(w.s.peer_shut);
    CU_ASSERT(!w.s.recv_armed);
    iox_sock_park(&w.h, &w.s);
    CU_ASSERT(!w.s.parked);
    CU_ASSERT_EQUAL(iox_sock_rearm(&w.h, &w.s), 0);
    CU_ASSERT(!w.s.recv_armed);

    /* Close: the write side shut (an op), then the close once none is in
     * flight, exactly once. */
    CU_ASSERT_EQUAL(iox_sock_shutdown_wr(&w.h, &w.s), 0);
    CU_ASSERT_EQUAL(w.s.inflight, 1);
    iox_sock_begin_close(&w.h, &w.s);
    CU_ASSERT_EQUAL(iox_sock_close_if_idle(&w.h, &w.s), 0);
    CU_ASSERT_EQUAL(w.s.fd, FD);                /* ops in flight: not yet */
    iox_sim_pump(w.sim);
    CU_ASSERT_EQUAL(w.s.inflight, 0);
    CU_ASSERT_EQUAL(iox_sock_close_if_idle(&w.h, &w.s), 0);
    CU_ASSERT_EQUAL(w.s.fd, -1);
    CU_ASSERT_EQUAL(iox_sock_close_if_idle(&w.h, &w.s), 0);   /* once */
    iox_sim_pump(w.sim);
    CU_ASSERT_EQUAL(K.got, IOX_SOCK_GOT_CLOSED);
    CU_ASSERT_EQUAL(iox_sim_closes(w.sim, FD), 1);
    CU_ASSERT_EQUAL(w.s.inflight, 0);
    w_fini(&w);
}

IOX_SUITE(stream_core, NULL, NULL);
