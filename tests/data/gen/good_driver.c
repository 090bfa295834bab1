/* good_driver.c — hand-written actions and guards for the generated echo_conn
 * machine (tests/data/gen/good.toml), built and run by tests/test_generator.c.
 * Prints one line per guard evaluated ("  ? guard: result"), one per traced
 * transition and the state after each fire(); the test compares that log, so
 * it checks which guarded alternative is taken, that guards are tried in
 * spec order and that the first one that holds ends the search.
 * `./driver spin` instead fires the endless follow-up chain, which must
 * abort(); `./driver badopen` reopens a slot that is not closed, which must
 * abort() too. The state is only ever written by echo_conn_fire() and the
 * [reuse] functions: gen/check_state_writes.py must find nothing here. */
#include "echo_conn_machine.h"

#include <stdio.h>
#include <string.h>

struct echo_ctx {
    echo_conn_state_t state;   /* one byte; gdb prints its name */
    int bytes, replies, rearms, closes, spins, stashed, paused;
};
struct echo_ev { int n; };

int echo_conn_guard_oversized(const struct echo_ctx *ctx, const struct echo_ev *ev)
{
    (void)ctx;
    int r = ev->n > 8;
    printf("  ? oversized (n=%d): %d\n", ev->n, r);
    return r;
}
int echo_conn_guard_paused(const struct echo_ctx *ctx, const struct echo_ev *ev)
{
    (void)ev;
    printf("  ? paused: %d\n", ctx->paused);
    return ctx->paused;
}

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
int echo_conn_act_stash(struct echo_ctx *ctx, const struct echo_ev *ev)
{
    ctx->stashed += ev->n;
    return ECHO_CONN_EV_NONE;
}

static void trace(struct echo_ctx *ctx, int from, int event, int to)
{
    (void)ctx;
    printf("  %s --%s--> %s\n", echo_conn_state_names[from],
           echo_conn_event_names[event], echo_conn_state_names[to]);
}

static void fire(struct echo_ctx *ctx, int event, int n)
{
    struct echo_ev ev = {n};
    int r = echo_conn_fire(ctx, &ctx->state, event, &ev);
    printf("fire %s -> %s%s\n", echo_conn_event_names[event], echo_conn_state_names[r],
           r != (int)ctx->state ? " (MISMATCH)" : "");
}

static void open_slot(struct echo_ctx *ctx)
{
    echo_conn_open(&ctx->state);
    printf("open -> %s\n", echo_conn_state_names[ctx->state]);
}

int main(int argc, char **argv)
{
    struct echo_ctx ctx = {0};
    echo_conn_init(&ctx.state);                /* a free slot */
    printf("init -> %s\n", echo_conn_state_names[ctx.state]);
    open_slot(&ctx);
    if (argc > 1 && strcmp(argv[1], "spin") == 0) {
        fire(&ctx, ECHO_CONN_EV_SPIN, 0);
        return 0; /* not reached: the chain must abort */
    }
    if (argc > 1 && strcmp(argv[1], "badopen") == 0) {
        open_slot(&ctx);                       /* reading is not closed */
        return 0; /* not reached: the reopen must abort */
    }
    echo_conn_trace = trace;
    fire(&ctx, ECHO_CONN_EV_RECV, 2);     /* default: parse -> idle -> rearm */
    fire(&ctx, ECHO_CONN_EV_SENT, 0);     /* ignored in reading */
    ctx.paused = 1;
    fire(&ctx, ECHO_CONN_EV_RECV, 5);     /* [paused] stash */
    fire(&ctx, ECHO_CONN_EV_TIMEOUT, 0);  /* [any]: not [!paused], so rearm */
    ctx.paused = 0;
    fire(&ctx, ECHO_CONN_EV_RECV, 3);     /* default: parse -> output -> writing */
    fire(&ctx, ECHO_CONN_EV_RECV, 1);     /* writing: [!paused] stash */
    ctx.paused = 1;
    fire(&ctx, ECHO_CONN_EV_RECV, 1);     /* writing: "ignore" default */
    ctx.paused = 0;
    fire(&ctx, ECHO_CONN_EV_SENT, 0);     /* back to reading */
    fire(&ctx, ECHO_CONN_EV_NONE, 0);     /* no-op */
    fire(&ctx, ECHO_CONN_EV_TIMEOUT, 0);  /* [any]: [!paused] begin_close */
    fire(&ctx, ECHO_CONN_EV_TIMEOUT, 0);  /* ignored in closing */
    fire(&ctx, ECHO_CONN_EV_CLOSED, 0);
    fire(&ctx, ECHO_CONN_EV_RECV, 9);     /* final: ignored, no guard called */
    open_slot(&ctx);                      /* the slot is reused */
    fire(&ctx, ECHO_CONN_EV_RECV, 100);   /* [oversized]: paused is not asked */
    fire(&ctx, ECHO_CONN_EV_CLOSED, 0);
    printf("final=%d replies=%d rearms=%d closes=%d stashed=%d state_size=%zu\n",
           echo_conn_is_final(ctx.state), ctx.replies, ctx.rearms, ctx.closes, ctx.stashed,
           sizeof ctx.state);
    return 0;
}
