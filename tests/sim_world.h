/* sim_world.h — one reactor on a simulated ring (include/ioxide/seam_sim.h),
 * the world every simulated-ring test sets up: the simulator, the reactor
 * over its seam with completions dispatched to it, the clock, and the moves
 * every such test makes — a loop turn (publish, flush, run the
 * self-completing ops until none is left), moving the clock, delivering
 * bytes to a multishot recv in buffer-sized pieces, completing every send.
 *
 * Used by the completion-script runner (tests/script_runner.c and the
 * vocabularies tests/test_machine_scripts.c, test_scripts_*.c) and by the
 * hand-scripted simulation suites. The caller owns the struct (stack or
 * static); sw_open fills it, sw_close frees what sw_open made. */
#ifndef IOX_TEST_SIM_WORLD_H
#define IOX_TEST_SIM_WORLD_H
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <stddef.h>
#include <stdint.h>

struct sim_world {
    struct iox_seam_sim *sim;
    struct iox_reactor r;
    struct iox_server_config cfg;
    uint64_t now;              /* the clock the world last set (ms) */
};

/* A simulator of nbufs provided buffers of bufsize bytes and a reactor on
 * it (shutdown grace grace_ms). Returns 0, or -1 (nothing left to free). */
/* Set by a test before sw_open: the world's simulated ring runs
 * incremental provided buffers (iox_sim_use_inc) instead of plain ones. */
extern int sw_inc_bufs;
int sw_open(struct sim_world *w, unsigned nbufs, unsigned bufsize, uint32_t grace_ms);
/* The reactor, then the simulator. */
void sw_close(struct sim_world *w);
/* One loop turn: publish completions, flush the reactor, and again while
 * cancels, closes and shutdowns completed something. */
void sw_turn(struct sim_world *w);
/* Move the clock ms forward (the reactor's timers see it at the next turn). */
void sw_advance(struct sim_world *w, uint64_t ms);
/* Deliver n bytes to the multishot recv on fd, a turn after each piece,
 * re-delivering what a dry buffer ring (ENOBUFS) left once the owner armed
 * again. 0, or -1 when the bytes could not all be delivered. */
int sw_deliver(struct sim_world *w, int fd, const void *p, size_t n);
/* Like sw_deliver, in pieces of at most `chunk` bytes (0: a buffer each).
 * 0 when all were delivered, -1 when no recv was armed for a piece (the
 * connection stopped reading; the rest is not delivered). */
int sw_deliver_chunked(struct sim_world *w, int fd, const void *p, size_t n, size_t chunk);
/* Complete every send on fd in full, a turn after each (at most `max`).
 * Returns how many completed. */
unsigned sw_send_all(struct sim_world *w, int fd, unsigned max);

/* ---- an HTTP server on the world ---- */
struct iox_http_config;
struct iox_http_server;
/* Open an HTTP server with hcfg on the world's reactor, its Date fixed (runs
 * compared byte for byte must not straddle a second). 0, or -1. */
int sw_http_open(struct sim_world *w, const struct iox_http_config *hcfg, struct iox_http_server **hs);
/* The peer of fd goes away: a turn, every send completed, EOF on the recv
 * if one is armed, the sends again, and when the connection is still open
 * (lingering) the clock moved `ms` and a turn. */
void sw_http_peer_close(struct sim_world *w, struct iox_http_server *hs, int fd, uint64_t ms);

#endif
