/* reactor_here.c — a reactor on the calling thread, for tests and tools that
 * drive client pools on a real ring (see ioxide/reactor.h). */
#include <ioxide/log.h>
#include <ioxide/reactor.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int iox_reactor_open_here(struct iox_reactor *r, const struct iox_server_config *cfg,
                          char *why, size_t why_len)
{
    memset(r, 0, sizeof *r);
    r->nreactors = 1;
    r->peer_ring_fds = &r->ring_fd;
    int rc = reactor_alloc_public(r, cfg);
    if (!rc) rc = iox_reactor_msgs_init(r);
    if (rc < 0) { snprintf(why, why_len, "out of memory for the reactor tables"); iox_reactor_fini(r); return rc; }
    struct iox_uring_config rcfg = cfg->ring;
    if ((rc = iox_seam_uring_create(&rcfg, &r->uring, why, why_len)) < 0) { iox_reactor_fini(r); return rc; }
    /* No listener here: no direct descriptor table (outbound sockets are real fds). */
    if ((rc = iox_seam_uring_files(r->uring, 0, why, why_len)) < 0) { iox_reactor_close_here(r); return rc; }
    r->seam = iox_seam_uring_seam(r->uring);
    r->ring_fd = iox_seam_uring_ring_fd(r->uring);
    r->tick_ms = 10;
    return 0;
}

int iox_reactor_run_until(struct iox_reactor *r, int (*done)(void *arg), void *arg, uint32_t timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        iox_reactor_flush(r);
        if (done && done(arg)) return 0;
        if (now_ms() >= deadline) return -ETIMEDOUT;
        int rc = iox_reactor_turn(r);
        if (rc < 0) return rc;
    }
}

void iox_reactor_close_here(struct iox_reactor *r)
{
    iox_reactor_fini(r);
    iox_seam_uring_destroy(r->uring);
    r->uring = NULL;
}
