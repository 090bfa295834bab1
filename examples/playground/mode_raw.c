/* mode_raw.c — GET, HEAD or POST / → 200 "ok"; OPTIONS / and OPTIONS * →
 * 200 with Allow; other methods on / (and CONNECT) → 405 with Allow; any
 * other path → 404. */
#include "playground.h"
#include <ioxide/http_conn.h>
#include <string.h>

#define RAW_ALLOW "Allow: GET, HEAD, POST, OPTIONS\r\n"

static int raw_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    if (playground_server_wide(c, req, RAW_ALLOW)) return IOX_HANDLED;
    if (req->path_len == 1 && req->path[0] == '/') {
        if (req->method_id == IOX_HTTP_GET || req->method_id == IOX_HTTP_HEAD ||
            req->method_id == IOX_HTTP_POST)
            iox_resp_simple(c, 200, "text/plain", "ok", 2);
        else if (req->method_id == IOX_HTTP_OPTIONS)
            playground_options(c, RAW_ALLOW);
        else
            playground_405(c, RAW_ALLOW);
        return IOX_HANDLED;
    }
    iox_resp_simple(c, 404, "text/plain", "not found\n", 10);
    return IOX_HANDLED;
}

static const struct iox_http_app raw_app = { raw_request };

int playground_raw(struct iox_server_config *cfg, struct iox_http_config *http)
{
    (void)cfg;
    http->app = &raw_app;
    return 0;
}
