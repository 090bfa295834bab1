/* conn.c — a RESP connection on a stream: the stream callbacks and the
 * resp_conn machine's actions (spec/resp_conn.toml). */
#include "server.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct resp_conn *conn_get(struct resp_server *rs)
{
    struct resp_conn *c = rs->free_conns;
    if (c) rs->free_conns = c->free_next;
    else c = malloc(sizeof *c);       /* the pool grows to the most connections seen */
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    c->rs = rs;
    resp_conn_open(&c->state);
    return c;
}

void resp_on_open(struct iox_stream *s, void *ctx)
{
    (void)ctx;
    struct resp_server *rs = resp_server_of(iox_stream_reactor(s));
    struct resp_conn *c = rs ? conn_get(rs) : NULL;
    if (!c) { iox_stream_abort(s); return; }
    iox_stream_set_user(s, c);
}

long resp_on_data(struct iox_stream *s, const char *p, size_t n, void *ctx)
{
    (void)ctx;
    struct resp_conn *c = iox_stream_user(s);
    if (!c) return -1;
    struct resp_ev ev = {s, p, n};
    c->used = 0;
    c->more = 0;
    /* One request per input event: a pipeline of thousands in one buffer
     * would be too long a follow-up chain for the machine. */
    do resp_conn_fire(c, &c->state, RESP_CONN_EV_INPUT, &ev);
    while (c->state == RESP_CONN_S_SERVING && !c->more && c->used < n);
    if (c->state == RESP_CONN_S_FAILED) return -1;
    return (long)c->used;
}

void resp_on_close(struct iox_stream *s, enum iox_stream_cause cause, void *ctx)
{
    (void)ctx; (void)cause;
    struct resp_conn *c = iox_stream_user(s);
    if (!c) return;
    struct resp_ev ev = {s, NULL, 0};
    resp_conn_fire(c, &c->state, RESP_CONN_EV_CLOSED, &ev);
    iox_stream_set_user(s, NULL);
    c->free_next = c->rs->free_conns;
    c->rs->free_conns = c;
}

/* Redis's default `timeout 0`: an idle client is never dropped. */
int resp_on_timeout(struct iox_stream *s, void *ctx)
{
    (void)s; (void)ctx;
    return IOX_STREAM_TIMEOUT_KEEP;
}

/* ---- actions ------------------------------------------------------------------ */

int resp_conn_act_parse(struct resp_conn *c, const struct resp_ev *ev)
{
    switch (resp_parse(&c->rs->ps, ev->p + c->used, ev->n - c->used, &c->step)) {
    case RESP_P_REQUEST: return RESP_CONN_EV_COMMAND;
    case RESP_P_EMPTY: c->used += c->step; return RESP_CONN_EV_EMPTY;
    case RESP_P_MORE: c->more = 1; return RESP_CONN_EV_PARTIAL;
    case RESP_P_ERROR: break;
    }
    return RESP_CONN_EV_MALFORMED;
}

int resp_conn_act_execute(struct resp_conn *c, const struct resp_ev *ev)
{
    struct resp_parser *ps = &c->rs->ps;
    int rc = resp_dispatch(c->rs, ev->s, ps->argv, ps->argc);
    if (rc == -ENOSPC) return RESP_CONN_EV_STALL;   /* not consumed: offered again */
    c->used += c->step;
    return rc == 1 ? RESP_CONN_EV_QUIT : RESP_CONN_EV_NONE;
}

int resp_conn_act_goodbye(struct resp_conn *c, const struct resp_ev *ev)
{
    (void)c;
    iox_stream_write(ev->s, "+OK\r\n", 5);
    iox_stream_close(ev->s);
    return RESP_CONN_EV_NONE;
}

int resp_conn_act_reject(struct resp_conn *c, const struct resp_ev *ev)
{
    struct rbuf *out = &c->rs->out;
    rb_reset(out);
    rb_raw(out, "-ERR ", 5);
    rb_raw(out, c->rs->ps.err, strlen(c->rs->ps.err));
    rb_raw(out, "\r\n", 2);
    if (!out->oom) iox_stream_write(ev->s, out->p, out->len);
    return RESP_CONN_EV_NONE;
}
