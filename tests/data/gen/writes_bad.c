/* writes_bad.c — fixture for gen/check_state_writes.py (tests/test_generator.c,
 * with the echo_conn machine of good.toml): every write of the state below is
 * one the checker must report. Scanned, never compiled. */
#include "echo_conn_machine.h"

struct echo_ctx { echo_conn_state_t state; int paused; };
struct slots { struct echo_ctx *s; int n; };
struct holder { struct echo_ctx *conn; };

static void poke(echo_conn_state_t *p) { *p = ECHO_CONN_S_CLOSED; }

void open_slot(struct echo_ctx *c)
{
    c->state = ECHO_CONN_INITIAL;
}

void reset_all(struct slots *t)
{
    for (int i = 0; i < t->n; i++)
        t->s[i].state = ECHO_CONN_S_CLOSED;
}

void via_member(struct holder *h, int v)
{
    h->conn->state = v;
}

void arith(struct echo_ctx *c)
{
    c->state++;
    --c->state;
    c->state |= 1;
}

void through_pointer(struct echo_ctx *c)
{
    poke(&c->state);
    echo_conn_state_t *p = &c->state;
    (void)p;
}

void locals(void)
{
    struct echo_ctx a, b[2];
    a.state = 3;
    b[1].state = 0;
}

void cast(void *x)
{
    ((struct echo_ctx *)x)->state = ECHO_CONN_S_READING;
}

static struct echo_ctx table[4] = {
    [0] = { .state = ECHO_CONN_S_CLOSED },
};
