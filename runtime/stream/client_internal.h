/* client_internal.h — the client kit's data (internal to runtime/stream).
 * A pool has `conns` slots, each the generated machine stream_client
 * (spec/machines/stream_client.toml), and one FIFO of requests waiting for
 * a connection. */
#ifndef IOX_CLIENT_INTERNAL_H
#define IOX_CLIENT_INTERNAL_H
#include "stream_client_machine.h"
#include "stream_internal.h"
#include <ioxide/stream_client.h>
#include <ioxide/stream_dial.h>
#include <netinet/in.h>
#include <stdint.h>

struct iox_client_event {
    int32_t res;
    uint32_t flags;
    const char *data;
    uint32_t len;
};

/* A request's callback, in a per-connection FIFO ring (in flight) or the
 * pool's wait FIFO (with its bytes' length in the pool's wait buffer). */
struct iox_client_req {
    iox_client_cb cb;
    void *arg;
    uint32_t len;
};

struct iox_client_conn {
    struct iox_client_pool *pool;
    uint32_t idx;
    stream_client_state_t state;
    /* The socket (ioxide/stream_dial.h): descriptor, generation, ops in
     * flight, the armed recv, the send in flight, the connect deadline,
     * the backoff. */
    struct iox_dial dl;
    uint8_t dirty;
    uint8_t counted_up;           /* counted in pool->nup (bookkeeping of session_up / drop) */
    uint8_t firing, nqueued;
    uint8_t queued[STREAM_CLIENT_EVENT_COUNT];
    int fail_status;              /* what drop fails the requests with */
    unsigned hs_left, hs_seen;    /* handshake replies still expected / checked */
    /* In flight: [head, tail) of a ring of max_inflight entries. */
    struct iox_client_req *fifo;
    uint32_t head, tail;
    /* Output: requests queued this turn (out); the send in flight (dl)
     * reads `sending`. Two buffers swapped, so nothing moves under the
     * kernel. */
    struct iox_sbuf out, sending;
    struct iox_sbuf carry;        /* a reply cut by a buffer boundary */
};

struct iox_client_pool {
    struct iox_reactor *r;
    struct iox_client_config cfg;      /* defaults applied */
    int owner;
    struct sockaddr_storage sa;
    socklen_t salen;
    char peer[80];                     /* "host:port" for messages */
    struct iox_client_conn *conns;
    unsigned nup;
    uint8_t stopping, guard_fired;
    unsigned ops;                      /* every op of the pool in the ring */
    uint64_t down_since_ms;            /* nup == 0 since then */
    /* Waiting requests: FIFO ring of max_queued entries, bytes in order in wbuf. */
    struct iox_client_req *wait;
    uint32_t whead, wtail;
    struct iox_sbuf wbuf;
    uint32_t wbuf_off;
    char last_error[280];
    struct iox_client_stats st;
};

/* client_pool.c */
void iox_client_fire(struct iox_client_conn *c, int event, const struct iox_client_event *ev);
uint64_t iox_client_ud(const struct iox_client_conn *c, unsigned op);
void iox_client_set_error(struct iox_client_pool *p, int err, const char *what);
/* Hand waiting requests to up connections with room. */
void iox_client_pump(struct iox_client_pool *p);
void iox_client_mark_dirty(struct iox_client_conn *c);
uint32_t iox_client_inflight(const struct iox_client_conn *c);

#endif
