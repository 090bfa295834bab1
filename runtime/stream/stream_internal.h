/* stream_internal.h — the stream layer's data (internal to runtime/stream).
 *
 * struct iox_stream is one slot of a server's table. Its control state is
 * the generated machine stream_conn (spec/machines/stream_conn.toml),
 * written only by stream_conn_fire and the [reuse] functions; the other
 * fields are the op books, buffers and facts the guards read. */
#ifndef IOX_STREAM_INTERNAL_H
#define IOX_STREAM_INTERNAL_H
#include "stream_conn_machine.h"
#include <ioxide/stream.h>
#include <ioxide/stream_core.h>
#include <stddef.h>
#include <stdint.h>

/* Machine arg: the completion being delivered, plus its bytes for recv. */
struct iox_stream_event {
    int32_t res;
    uint32_t flags;
    const char *data;
    uint32_t len;
};

/* A growable byte buffer. */
struct iox_sbuf {
    char *p;
    uint32_t len, cap;
};

/* One reply slot (see stream.h, "Ordered replies"): seq is its id. */
struct iox_stream_rslot {
    struct iox_sbuf side;     /* bytes written before it became the oldest */
    uint16_t seq;
    uint8_t ended;            /* iox_stream_reply_end was called */
    uint8_t inline_;          /* made by a plain write behind open replies (ended) */
};

struct iox_stream {
    struct iox_stream_server *srv;
    /* The socket mechanics (ioxide/stream_core.h): fd, slot index and
     * generation, op books, turn-end links, the carry, the write buffer
     * (every write is committed at once: wcommit == wlen) and the timer
     * (class PROGRESS: any progress renews it). */
    struct iox_sock sk;
    /* The control state (generated machine). */
    stream_conn_state_t state;
    /* Facts the protocol set (guards held; the deliver loop stops on them). */
    uint8_t paused;           /* iox_stream_pause */
    uint8_t input_off;        /* close / abort / bad input asked: offer nothing more */
    uint8_t want_drain;       /* iox_stream_want_drain */
    uint8_t writes_off;       /* close asked: plain writes refused (replies still taken) */
    uint8_t cause;            /* enum iox_stream_cause + 1 once recorded (first wins) */
    int32_t err;              /* the socket error that closed it */
    /* End-of-turn kick list (the parked and dirty lists are the core's). */
    uint8_t kicked, kick_linked;
    uint8_t firing, nqueued;
    uint8_t queued[STREAM_CONN_EVENT_COUNT];
    struct iox_stream *kick_next;
    /* Reply slots: open ones are [rq_head, rq_tail), entry seq & rmask. */
    struct iox_stream_rslot *rs;
    uint16_t rq_head, rq_tail;
    uint16_t nreplies;        /* open replies begun with reply_begin (not inline) */
    uint32_t side_len;        /* bytes in side buffers */
    void *user;
};

struct iox_stream_server {
    struct iox_reactor *r;
    struct iox_stream_config cfg;     /* defaults applied */
    int owner;
    unsigned listener;
    struct iox_stream *s;
    uint32_t max_conns, nconns, nfree;
    uint32_t *free_slots;
    uint16_t rmask;                   /* reply ring entries - 1 */
    uint8_t stopping;
    struct iox_sock_host sh;          /* turn-end and timer lists, buffer free lists */
    struct iox_stream *kicked;
    struct iox_stream_stats st;
};

/* stream_conn.c */
void iox_stream_fire(struct iox_stream *s, int event, const struct iox_stream_event *ev);
void iox_stream_on_cqe(struct iox_stream *s, unsigned op, const struct iox_cqe *cqe);
static inline void iox_stream_mark_dirty(struct iox_stream *s) { iox_sock_mark_dirty(&s->srv->sh, &s->sk); }
static inline void iox_stream_park(struct iox_stream *s) { iox_sock_park(&s->srv->sh, &s->sk); }
static inline void iox_stream_stop_recv(struct iox_stream *s) { iox_sock_stop_recv(&s->srv->sh, &s->sk); }
/* The stream a core socket of a stream server belongs to. */
static inline struct iox_stream *iox_stream_of_sock(struct iox_sock *k)
{
    return (struct iox_stream *)(void *)((char *)k - offsetof(struct iox_stream, sk));
}
void iox_stream_mark_kick(struct iox_stream *s);
void iox_stream_rearm(struct iox_stream *s);
void iox_stream_start_send(struct iox_stream *s);
void iox_stream_begin_close(struct iox_stream *s);
void iox_stream_close_if_idle(struct iox_stream *s);
void iox_stream_release(struct iox_stream *s);
void iox_stream_progress(struct iox_stream *s);
void iox_stream_timer_linger(struct iox_stream *s);
void iox_stream_timer_remove(struct iox_stream *s);
void iox_stream_on_timer(struct iox_stream *s);
void iox_stream_init_slot(struct iox_stream_server *srv, struct iox_stream *s, uint32_t idx);
void iox_stream_open_slot(struct iox_stream *s, int fd);
void iox_stream_set_cause(struct iox_stream *s, enum iox_stream_cause c);
int iox_stream_in_use(const struct iox_stream *s);

/* stream_buf.c */
int iox_sbuf_reserve(struct iox_sbuf *b, size_t n);   /* 0 or -ENOMEM */
int iox_sbuf_append(struct iox_sbuf *b, const void *p, size_t n);
void iox_sbuf_consume(struct iox_sbuf *b, size_t n);
void iox_sbuf_free(struct iox_sbuf *b);
/* Keep a buffer for the slot's next life unless it grew large. */
void iox_sbuf_trim(struct iox_sbuf *b);
/* Room for n bytes at the end of the write buffer (the core's: a send in
 * flight keeps reading the old one). 0 or -ENOMEM. */
int iox_stream_out_reserve(struct iox_stream *s, size_t n);
size_t iox_stream_unsent_bytes(const struct iox_stream *s);
/* Free every buffer of a slot's life (carry, write buffer, reply side buffers). */
void iox_stream_buffers_release(struct iox_stream *s);

#endif
