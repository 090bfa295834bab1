/* stream_dial.c — the outbound socket of the client kit (ioxide/stream_dial.h):
 * open, connect, recv, send with continuation, cancel, close once, backoff.
 * Every op queued is counted on the slot and on its owner; nothing here
 * decides what a connection does next. */
#include <ioxide/stream_dial.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

void iox_dial_init(struct iox_dial *d, struct iox_reactor *r, unsigned owner, uint32_t idx, unsigned *owner_ops)
{
    *d = (struct iox_dial){.r = r, .owner_ops = owner_ops, .idx = idx, .owner = (uint8_t)owner, .fd = -1};
}

void iox_dial_reset(struct iox_dial *d)
{
    d->gen++;
    d->fd = -1;
    d->recv_armed = d->send_busy = 0;
    d->sbuf = NULL;
    d->slen = d->soff = 0;
    d->deadline_ms = 0;
}

int iox_dial_open(struct iox_dial *d, int family, uint64_t deadline_ms)
{
    d->deadline_ms = deadline_ms;
    return iox__dial_counted(d, iox_seam_socket(d->r->seam, family, SOCK_STREAM | SOCK_CLOEXEC, 0, iox_dial_ud(d, IOX_OP_SOCKET)));
}

int iox_dial_connect(struct iox_dial *d, const struct sockaddr *sa, socklen_t salen)
{
    return iox__dial_counted(d, iox_seam_connect(d->r->seam, d->fd, sa, salen, iox_dial_ud(d, IOX_OP_CONNECT)));
}

int iox_dial_recv_multishot(struct iox_dial *d)
{
    if (d->recv_armed) return 0;
    int rc = iox__dial_counted(d, iox_seam_recv_multishot(d->r->seam, d->fd, iox_dial_ud(d, IOX_OP_RECV)));
    if (rc == 0) d->recv_armed = 1;
    return rc;
}

int iox_dial_cancel(struct iox_dial *d)
{
    if (!d->ops || d->fd < 0) return 0;
    int rc = iox__dial_counted(d, iox_seam_cancel_fd(d->r->seam, d->fd, iox_dial_ud(d, IOX_OP_CANCEL)));
    /* No SQE: make the ops end on their own (a simulated ring's descriptors
     * are not ours to shut down). */
    if (rc < 0 && d->r->uring) shutdown(d->fd, SHUT_RDWR);
    return rc;
}

int iox_dial_close(struct iox_dial *d)
{
    int fd = d->fd;
    d->fd = -1;
    if (iox__dial_counted(d, iox_seam_close(d->r->seam, fd, iox_dial_ud(d, IOX_OP_CLOSE))) == 0) return 0;
    if (d->r->uring) close(fd);   /* nothing is in flight on it */
    return 1;
}

uint32_t iox_dial_backoff(struct iox_dial *d, uint32_t min_ms, uint32_t max_ms)
{
    uint32_t next = d->backoff_ms ? d->backoff_ms * 2 : min_ms;
    if (next > max_ms) next = max_ms;
    d->backoff_ms = next;
    return next;
}

void iox_dial_forget(struct iox_dial *d)
{
    if (d->fd >= 0 && d->r->uring) close(d->fd);
    d->fd = -1;
}

void iox_dial_stale(struct iox_reactor *r, unsigned op, int res)
{
    r->n_stale_cqes++;
    if (op == IOX_OP_SOCKET && res >= 0 && r->uring) close(res);
}

unsigned iox_dial_drain(struct iox_reactor *r, unsigned owner, uint32_t guard_idx, const unsigned *ops,
                        uint8_t *guard_fired)
{
    if (!r->uring || !*ops) return *ops;
    if (iox_seam_timeout(r->seam, 500ull * 1000000ull, iox_ud(IOX_OP_TIMEOUT, owner, 0, guard_idx)) < 0)
        *guard_fired = 1;   /* no guard, no unbounded wait */
    while (*ops > 0 && !*guard_fired)
        if (iox_reactor_turn(r) < 0) break;
    return *ops;
}

