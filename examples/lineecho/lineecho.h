/* lineecho.h — a tiny line protocol on the stream layer (ioxide/stream.h):
 * the second protocol of the engine, used by the tests and by
 * examples/lineecho/main.c. Each '\n'-terminated line is a message:
 *   SLOW   "started\n" at once, then "SLOW!\n" about 200 ms later, from the
 *          reactor's tick (an answer written after other work: a reply slot)
 *   HOLD   never answered (its reply slot stays open until the stream ends)
 *   QUIT   "bye\n", then a graceful close
 *   other  echoed back
 * Lines longer than max_carry close the stream (IOX_STREAM_TOO_BIG). */
#ifndef LINEECHO_H
#define LINEECHO_H
#include <ioxide/reactor.h>
#include <ioxide/stream.h>
#include <stdint.h>

/* The stream configuration of the protocol (callbacks set, limits zero:
 * the defaults, or the environment's when filled by the caller). */
void lineecho_config(struct iox_stream_config *cfg);
/* The server's on_start hook: registers the protocol's timer kind on r. */
int lineecho_on_start(struct iox_reactor *r, void *app_ctx);
/* Serve the protocol on host:port with `reactors` reactors until SIGTERM;
 * returns iox_server_run's exit status. */
int lineecho_serve(const char *host, uint16_t port, unsigned reactors);
#endif
