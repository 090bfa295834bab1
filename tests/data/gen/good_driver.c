/* good_driver.c — hand-written actions for the generated echo_conn machine
 * (tests/data/gen/good.toml), built and run by tests/test_generator.c.
 * Prints one line per traced transition and the state after each fire();
 * the test compares that log. `./driver spin` instead fires the endless
 * follow-up chain, which must abort(). */
#include "echo_conn_machine.h"

#include <stdio.h>
#include <string.h>

struct echo_ctx { int bytes, replies, rearms, closes, spins; };
struct echo_ev { int n; };

int echo_conn_act_parse(struct echo_ctx *ctx, const struct echo_ev *ev)
{
    ctx->bytes += ev->n;
    return ctx->bytes >= 4 ? ECHO_CONN_EV_OUTPUT : ECHO_CONN_EV_IDLE;
}
int echo_conn_act_send_reply(struct echo_ctx *ctx, const struct echo_ev *ev)
{
    (void)ev;
    ctx->replies++;
    ctx->bytes = 0;
    return ECHO_CONN_EV_NONE;
}
int echo_conn_act_rearm(struct echo_ctx *ctx, const struct echo_ev *ev)
{
    (void)ev;
    ctx->rearms++;
    return ECHO_CONN_EV_NONE;
}
int echo_conn_act_begin_close(struct echo_ctx *ctx, const struct echo_ev *ev)
{
    (void)ev;
    ctx->closes++;
    return ECHO_CONN_EV_NONE;
}
int echo_conn_act_spin(struct echo_ctx *ctx, const struct echo_ev *ev)
{
    (void)ev;
    ctx->spins++;
    return ECHO_CONN_EV_SPIN;
}

static void trace(struct echo_ctx *ctx, int from, int event, int to)
{
    (void)ctx;
    printf("  %s --%s--> %s\n", echo_conn_state_names[from],
           echo_conn_event_names[event], echo_conn_state_names[to]);
}

static void fire(struct echo_ctx *ctx, uint8_t *st, int event, int n)
{
    struct echo_ev ev = {n};
    int r = echo_conn_fire(ctx, st, event, &ev);
    printf("fire %s -> %s%s\n", echo_conn_event_names[event], echo_conn_state_names[r],
           r != *st ? " (MISMATCH)" : "");
}

int main(int argc, char **argv)
{
    struct echo_ctx ctx = {0};
    uint8_t st = ECHO_CONN_INITIAL;
    if (argc > 1 && strcmp(argv[1], "spin") == 0) {
        fire(&ctx, &st, ECHO_CONN_EV_SPIN, 0);
        return 0; /* not reached: the chain must abort */
    }
    echo_conn_trace = trace;
    fire(&ctx, &st, ECHO_CONN_EV_RECV, 2);     /* parse -> idle -> rearm */
    fire(&ctx, &st, ECHO_CONN_EV_SENT, 0);     /* ignored in reading */
    fire(&ctx, &st, ECHO_CONN_EV_RECV, 3);     /* parse -> output -> writing */
    fire(&ctx, &st, ECHO_CONN_EV_RECV, 1);     /* ignored in writing */
    fire(&ctx, &st, ECHO_CONN_EV_SENT, 0);     /* back to reading */
    fire(&ctx, &st, ECHO_CONN_EV_NONE, 0);     /* no-op */
    fire(&ctx, &st, ECHO_CONN_EV_TIMEOUT, 0);  /* [any]: begin_close */
    fire(&ctx, &st, ECHO_CONN_EV_TIMEOUT, 0);  /* ignored in closing */
    fire(&ctx, &st, ECHO_CONN_EV_CLOSED, 0);
    fire(&ctx, &st, ECHO_CONN_EV_RECV, 9);     /* final: ignored */
    printf("final=%d replies=%d rearms=%d closes=%d\n", echo_conn_is_final(st),
           ctx.replies, ctx.rearms, ctx.closes);
    return 0;
}
