/* sim_world.c — see sim_world.h. */
#include "sim_world.h"
#include <ioxide/http_conn.h>
#include <ioxide/ud.h>
#include <stdio.h>
#include <string.h>

int sw_inc_bufs;

static void sw_sink(void *ctx, const struct iox_cqe *cqe) { iox_reactor_dispatch(ctx, cqe); }

int sw_open(struct sim_world *w, unsigned nbufs, unsigned bufsize, uint32_t grace_ms)
{
    memset(w, 0, sizeof *w);
    w->cfg.shutdown_grace_ms = grace_ms;
    w->sim = iox_sim_create(nbufs, bufsize);
    if (!w->sim) return -1;
    if (sw_inc_bufs && iox_sim_use_inc(w->sim) != 0) {
        iox_sim_destroy(w->sim);
        w->sim = NULL;
        return -1;
    }
    if (iox_reactor_init_sim(&w->r, iox_sim_seam(w->sim), &w->cfg) != 0) {
        iox_sim_destroy(w->sim);
        w->sim = NULL;
        return -1;
    }
    iox_sim_set_sink(w->sim, sw_sink, &w->r);
    w->now = w->r.now_ms;
    return 0;
}

void sw_close(struct sim_world *w)
{
    if (!w->sim) return;
    iox_reactor_fini(&w->r);
    iox_sim_destroy(w->sim);
    w->sim = NULL;
}

void sw_turn(struct sim_world *w)
{
    do {
        iox_sim_publish(w->sim);
        iox_reactor_flush(&w->r);
    } while (iox_sim_pump(w->sim) > 0);
}

void sw_advance(struct sim_world *w, uint64_t ms)
{
    w->now += ms;
    iox_reactor_advance_clock(&w->r, w->now);
}

int sw_deliver_chunked(struct sim_world *w, int fd, const void *p, size_t n, size_t chunk)
{
    size_t done = 0;
    for (long guard = 0; done < n && guard < 1000000; guard++) {
        long k = iox_sim_recv(w->sim, fd, (const char *)p + done, n - done, chunk);
        if (k < 0) return -1;
        done += (size_t)k;
        sw_turn(w);
    }
    return 0;
}

int sw_deliver(struct sim_world *w, int fd, const void *p, size_t n)
{
    size_t done = 0;
    for (int guard = 0; done < n && guard < 10000; guard++) {
        long k = iox_sim_recv(w->sim, fd, (const char *)p + done, n - done, 0);
        if (k < 0) return -1;
        done += (size_t)k;
        sw_turn(w);
    }
    return done == n ? 0 : -1;
}

unsigned sw_send_all(struct sim_world *w, int fd, unsigned max)
{
    unsigned k = 0;
    while (k < max && iox_sim_has_op(w->sim, IOX_OP_SEND, fd)) {
        iox_sim_send(w->sim, fd, 0);
        sw_turn(w);
        k++;
    }
    return k;
}

int sw_http_open(struct sim_world *w, const struct iox_http_config *hcfg, struct iox_http_server **hs)
{
    if (iox_http_server_open(&w->r, hcfg, 0, hs) != 0) return -1;
    snprintf((*hs)->date, sizeof (*hs)->date, "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n");
    return 0;
}

void sw_http_peer_close(struct sim_world *w, struct iox_http_server *hs, int fd, uint64_t ms)
{
    sw_turn(w);
    sw_send_all(w, fd, 1000000);
    if (iox_sim_recv_end(w->sim, fd, 0) == 0) sw_turn(w);
    sw_send_all(w, fd, 1000000);
    if (hs->nconns > 0) {
        sw_advance(w, ms);
        sw_turn(w);
    }
}
