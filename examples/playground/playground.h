/* playground.h — each mode fills the server config (app, hooks) and returns
 * 0, or -1 after printing why it cannot start. */
#ifndef PLAYGROUND_H
#define PLAYGROUND_H
#include <ioxide/http_conn.h>
#include <ioxide/reactor.h>

/* The methods a resource allows (RFC 9110 §10.2.1), as a header line: every
 * 405 carries it (§15.5.6), and so does the 200 to OPTIONS (§9.3.7). */
#define PLAYGROUND_ALLOW_GET "Allow: GET, HEAD, OPTIONS\r\n"

static inline void playground_405(struct iox_conn *c, const char *allow)
{
    iox_resp_simple_ex(c, 405, "text/plain", allow, "method not allowed\n", 19);
}

/* OPTIONS (RFC 9110 §9.3.7): 200, Allow, Content-Length: 0, no content. */
static inline void playground_options(struct iox_conn *c, const char *allow)
{
    iox_resp_head(c, 200, NULL, 0, allow);
}

/* What every mode answers alike, whatever the path: OPTIONS * asks about
 * the server as a whole (RFC 9110 §9.3.7): 200 with every method the mode
 * implements (`allow`); CONNECT asks for a tunnel, which nothing here makes:
 * 405 with `allow` (the parser made CONNECT the connection's last request,
 * so the connection closes after the answer). Returns 1 when it answered. */
static inline int playground_server_wide(struct iox_conn *c, const struct iox_http_request *req,
                                         const char *allow)
{
    if (req->method_id == IOX_HTTP_OPTIONS && req->target_form == IOX_HTTP_ASTERISK_FORM) {
        playground_options(c, allow);
        return 1;
    }
    if (req->method_id == IOX_HTTP_CONNECT) {
        playground_405(c, allow);
        return 1;
    }
    return 0;
}

/* pg and hop serve GET and HEAD on "/" only: OPTIONS * and CONNECT as
 * above, 404 on other paths, 200 with Allow to OPTIONS /, 405 with Allow to
 * other methods. Returns 1 when it answered, 0 for the mode to answer the
 * GET or HEAD of "/". */
static inline int playground_root_only(struct iox_conn *c, const struct iox_http_request *req)
{
    if (playground_server_wide(c, req, PLAYGROUND_ALLOW_GET)) return 1;
    if (!(req->path_len == 1 && req->path[0] == '/')) {
        iox_resp_simple(c, 404, "text/plain", "not found\n", 10);
        return 1;
    }
    if (req->method_id == IOX_HTTP_OPTIONS) {
        playground_options(c, PLAYGROUND_ALLOW_GET);
        return 1;
    }
    if (req->method_id != IOX_HTTP_GET && req->method_id != IOX_HTTP_HEAD) {
        playground_405(c, PLAYGROUND_ALLOW_GET);
        return 1;
    }
    return 0;
}

int playground_raw(struct iox_server_config *cfg, struct iox_http_config *http);
int playground_pg(struct iox_server_config *cfg, struct iox_http_config *http);
int playground_file(struct iox_server_config *cfg, struct iox_http_config *http);
int playground_hop(struct iox_server_config *cfg, struct iox_http_config *http);

#endif
