/* test_registry.c — suite `registry`: the reactor's kinds, services and
 * message handlers (include/ioxide/reactor.h, runtime/core/kind.c), on a
 * simulated reactor: completions reach the kind that owns them with its
 * context, an unregistered owner's completion is dropped (its recv buffer
 * handed back), hooks run for every kind, busy() adds up, ids are reused
 * and bounded, services are found by key, message kinds are not capped. */
#include "iox_test.h"
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <string.h>

struct rec { unsigned cqes, flushes, ticks, stops, busy; int last_res; };

static void k_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    (void)r;
    struct rec *x = ctx;
    x->cqes++;
    x->last_res = cqe->res;
}
static void k_flush(struct iox_reactor *r, void *ctx) { (void)r; ((struct rec *)ctx)->flushes++; }
static void k_tick(struct iox_reactor *r, void *ctx) { (void)r; ((struct rec *)ctx)->ticks++; }
static void k_stop(struct iox_reactor *r, void *ctx) { (void)r; ((struct rec *)ctx)->stops++; }
static unsigned k_busy(struct iox_reactor *r, void *ctx) { (void)r; return ((struct rec *)ctx)->busy; }

static const struct iox_kind kind_full = {
    .name = "full", .on_cqe = k_cqe, .on_flush = k_flush, .on_tick = k_tick, .on_stop = k_stop, .busy = k_busy,
};
static const struct iox_kind kind_min = {.name = "min", .on_cqe = k_cqe};

IOX_TEST(registry, kinds_get_their_completions_and_hooks)
{
    struct iox_server_config cfg = {.shutdown_grace_ms = 10};
    struct iox_reactor r;
    struct iox_seam_sim *sim = iox_sim_create(4, 64);
    CU_ASSERT_FATAL(sim && iox_reactor_init_sim(&r, iox_sim_seam(sim), &cfg) == 0);
    struct rec a = {0}, b = {0};
    int ida = iox_reactor_register_kind(&r, &kind_full, &a);
    int idb = iox_reactor_register_kind(&r, &kind_min, &b);
    CU_ASSERT(ida >= IOX_OWN_FIRST_KIND && idb >= IOX_OWN_FIRST_KIND && ida != idb);
    CU_ASSERT_EQUAL(iox_reactor_register_kind(&r, &(struct iox_kind){.name = "none"}, NULL), -EINVAL);

    struct iox_cqe ca = {iox_ud(IOX_OP_READ, (unsigned)ida, 0, 5), 11, 0};
    struct iox_cqe cb = {iox_ud(IOX_OP_SEND, (unsigned)idb, 3, 7), 22, 0};
    iox_reactor_dispatch(&r, &ca);
    iox_reactor_dispatch(&r, &cb);
    CU_ASSERT(a.cqes == 1 && a.last_res == 11);
    CU_ASSERT(b.cqes == 1 && b.last_res == 22);

    iox_reactor_flush(&r);
    iox_reactor_advance_clock(&r, r.now_ms + 5);
    CU_ASSERT(a.flushes == 1 && a.ticks == 1);   /* the minimal kind has no hooks: nothing to call */
    a.busy = 3;
    b.busy = 9;                                  /* no busy hook: not counted */
    CU_ASSERT_EQUAL(iox_reactor_kinds_busy(&r), 3);
    iox_reactor_begin_stop(&r);
    CU_ASSERT_EQUAL(a.stops, 1);

    /* Unregistered: its late completions are dropped, a recv buffer goes
     * back; the id is handed out again. */
    iox_reactor_unregister_kind(&r, idb);
    uint64_t stale = r.n_stale_cqes;
    iox_reactor_dispatch(&r, &cb);
    CU_ASSERT_EQUAL(b.cqes, 1);
    CU_ASSERT_EQUAL(r.n_stale_cqes, stale + 1);
    struct rec c = {0};
    CU_ASSERT_EQUAL(iox_reactor_register_kind(&r, &kind_min, &c), idb);

    /* Bounded by the owner byte: no crash, a clear error. */
    int last = 0, n = 0;
    while ((last = iox_reactor_register_kind(&r, &kind_min, &c)) >= 0) n++;
    CU_ASSERT_EQUAL(last, -ENOSPC);
    CU_ASSERT_EQUAL(n, IOX_OWN_MAX + 1 - IOX_OWN_FIRST_KIND - 2);
    iox_reactor_fini(&r);
    iox_sim_destroy(sim);
}

static void on_msg(struct iox_reactor *r, struct iox_msg *m) { (void)r; (void)m; }

IOX_TEST(registry, services_by_key_and_message_kinds)
{
    struct iox_server_config cfg = {0};
    struct iox_reactor r;
    struct iox_seam_sim *sim = iox_sim_create(4, 64);
    CU_ASSERT_FATAL(sim && iox_reactor_init_sim(&r, iox_sim_seam(sim), &cfg) == 0);
    static const struct iox_service_key k1 = {"one"}, k2 = {"two"};
    int x = 1, y = 2, z = 3;
    CU_ASSERT_PTR_NULL(iox_reactor_service(&r, &k1));
    CU_ASSERT_EQUAL(iox_reactor_set_service(&r, &k1, &x), 0);
    CU_ASSERT_EQUAL(iox_reactor_set_service(&r, &k2, &y), 0);
    CU_ASSERT_PTR_EQUAL(iox_reactor_service(&r, &k1), &x);
    CU_ASSERT_PTR_EQUAL(iox_reactor_service(&r, &k2), &y);
    CU_ASSERT_EQUAL(iox_reactor_set_service(&r, &k1, &z), 0);   /* replaced */
    CU_ASSERT_PTR_EQUAL(iox_reactor_service(&r, &k1), &z);
    CU_ASSERT_EQUAL(iox_reactor_set_service(&r, &k1, NULL), 0); /* removed */
    CU_ASSERT_PTR_NULL(iox_reactor_service(&r, &k1));
    CU_ASSERT_PTR_EQUAL(iox_reactor_service(&r, &k2), &y);
    /* Message kinds are not capped at 16 any more. */
    CU_ASSERT_EQUAL(iox_reactor_on_msg(&r, IOX_MSG_APP0 + 1000, on_msg), 0);
    CU_ASSERT_PTR_EQUAL(iox_reactor_msg_handler(&r, IOX_MSG_APP0 + 1000), on_msg);
    CU_ASSERT_PTR_NULL(iox_reactor_msg_handler(&r, IOX_MSG_APP0 + 999));
    CU_ASSERT_EQUAL(iox_reactor_on_msg(&r, 1u << 16, on_msg), -EINVAL);
    iox_reactor_fini(&r);
    iox_sim_destroy(sim);
}

/* A configuration without a listener is refused at once (one line on
 * stderr), before any thread, socket or signal mask. */
IOX_TEST(registry, no_listener_is_a_startup_error)
{
    struct iox_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    CU_ASSERT_EQUAL(iox_server_run(&cfg), 1);
    struct iox_listener_config l;
    memset(&l, 0, sizeof l);            /* no protocol */
    cfg.listeners = &l;
    cfg.nlisteners = 1;
    CU_ASSERT_EQUAL(iox_server_run(&cfg), 1);
}

/* A tick timeout the kernel keeps failing (not -ETIME) is not re-armed
 * forever: after a few in a row the loop stops arming it (one log line),
 * instead of spinning on it. A tick that expires resets the count. On a
 * real ring: the simulated one has no tick. */
IOX_TEST(registry, a_failing_tick_is_not_rearmed_forever)
{
    struct iox_reactor r;
    struct iox_server_config cfg = {0};
    cfg.ring.sq_entries = 64;
    cfg.ring.buf_count = 16;
    cfg.ring.buf_size = 1024;
    char why[256];
    CU_ASSERT_FATAL(iox_reactor_open_here(&r, &cfg, why, sizeof why) == 0);
    iox_reactor_want_tick(&r, 250);
    struct iox_cqe bad = {iox_ud(IOX_OP_TICK, IOX_OWN_REACTOR, 0, 0), -EINVAL, 0};
    struct iox_cqe good = {iox_ud(IOX_OP_TICK, IOX_OWN_REACTOR, 0, 0), -ETIME, 0};
    iox_reactor_flush(&r);
    CU_ASSERT_EQUAL(r.tick_armed, 1);
    for (int i = 0; i < 5; i++) { iox_reactor_dispatch(&r, &bad); iox_reactor_flush(&r); }
    CU_ASSERT_EQUAL(r.tick_armed, 1);           /* a few failures: still re-armed */
    iox_reactor_dispatch(&r, &good);
    iox_reactor_flush(&r);
    CU_ASSERT_EQUAL(r.tick_errors, 0);          /* an expiry resets the count */
    for (int i = 0; i < 8; i++) { iox_reactor_dispatch(&r, &bad); iox_reactor_flush(&r); }
    CU_ASSERT_EQUAL(r.tick_armed, 0);           /* eight in a row: given up */
    iox_reactor_flush(&r);
    CU_ASSERT_EQUAL(r.tick_armed, 0);
    iox_reactor_close_here(&r);
}

IOX_SUITE(registry, NULL, NULL);
