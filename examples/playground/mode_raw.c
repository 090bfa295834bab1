/* mode_raw.c — GET / → 200 "ok"; any other path → 404. */
#include "playground.h"
#include "iox_conn.h"
#include <string.h>

static int raw_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    if (req->path_len == 1 && req->path[0] == '/') {
        if (req->method_id == IOX_HTTP_GET || req->method_id == IOX_HTTP_HEAD ||
            req->method_id == IOX_HTTP_POST)
            iox_resp_simple(c, 200, "text/plain", "ok", 2);
        else
            iox_resp_simple(c, 405, "text/plain", "method not allowed\n", 19);
        return IOX_HANDLED;
    }
    iox_resp_simple(c, 404, "text/plain", "not found\n", 10);
    return IOX_HANDLED;
}

static const struct iox_http_app raw_app = { raw_request };

int playground_raw(struct iox_server_config *cfg)
{
    cfg->app = &raw_app;
    return 0;
}

