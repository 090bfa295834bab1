/* writes_clean.c — fixture for gen/check_state_writes.py (tests/test_generator.c,
 * with the echo_conn machine of good.toml): reads, sanctioned writes and
 * look-alikes; the checker must report nothing here. Scanned, never compiled. */
#include "echo_conn_machine.h"

struct echo_ctx { echo_conn_state_t state; int paused; };
struct echo_ev { int n; };
struct scram { int state; };   /* not a machine: a field that happens to be called state */

int is_busy(const struct echo_ctx *c)
{
    return c->state == ECHO_CONN_S_WRITING || c->state != ECHO_CONN_S_READING;
}

void deliver(struct echo_ctx *c, int e)
{
    struct echo_ev ev = {0};
    echo_conn_fire(c, &c->state, e, &ev);
}

void reuse_slot(struct echo_ctx *c)
{
    echo_conn_open(&c->state);
}

void look_alikes(struct scram *s, struct echo_ctx *c)
{
    s->state = 2;
    int copy = c->state;
    s->state = copy & c->state;
    /* c->state = ECHO_CONN_S_CLOSED; in a comment */
    const char *msg = "c->state = ECHO_CONN_S_CLOSED";
    (void)msg;
}

/* Scopes: here c is not a context. */
void scoped(struct scram *c)
{
    c->state = 1;
}
