/* playground.h — each mode fills the server config (app, hooks) and returns
 * 0, or -1 after printing why it cannot start. */
#ifndef PLAYGROUND_H
#define PLAYGROUND_H
#include "iox_reactor.h"

int playground_raw(struct iox_server_config *cfg);
int playground_pg(struct iox_server_config *cfg);
int playground_file(struct iox_server_config *cfg);
int playground_hop(struct iox_server_config *cfg);

#endif
