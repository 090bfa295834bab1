/* playground.h — each mode fills the server config (app, hooks) and returns
 * 0, or -1 after printing why it cannot start. */
#ifndef PLAYGROUND_H
#define PLAYGROUND_H
#include "iox_conn.h"
#include "iox_reactor.h"

/* pg and hop serve GET/HEAD on "/" only: answers 404 (other paths) or 405
 * (other methods) and returns 1, or returns 0 for the mode to handle. */
static inline int playground_root_only(struct iox_conn *c, const struct iox_http_request *req)
{
    if (!(req->path_len == 1 && req->path[0] == '/')) {
        iox_resp_simple(c, 404, "text/plain", "not found\n", 10);
        return 1;
    }
    if (req->method_id != IOX_HTTP_GET && req->method_id != IOX_HTTP_HEAD) {
        iox_resp_simple(c, 405, "text/plain", "method not allowed\n", 19);
        return 1;
    }
    return 0;
}

int playground_raw(struct iox_server_config *cfg);
int playground_pg(struct iox_server_config *cfg);
int playground_file(struct iox_server_config *cfg);
int playground_hop(struct iox_server_config *cfg);

#endif
