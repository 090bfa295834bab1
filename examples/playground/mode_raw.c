/* mode_raw.c — GET, HEAD or POST / → 200 "ok"; OPTIONS / and OPTIONS * →
 * 200 with Allow; other methods on / (and CONNECT) → 405 with Allow;
 * POST /echo → 200 whose body is exactly the request body, streamed as it
 * arrives (a Content-Length request gets a Content-Length answer of the same
 * length, a chunked one a chunked answer); other methods on /echo → 405;
 * any other path → 404. */
#include "playground.h"
#include <ioxide/http_conn.h>
#include <string.h>

#define RAW_ALLOW "Allow: GET, HEAD, POST, OPTIONS\r\n"
#define ECHO_ALLOW "Allow: POST\r\n"

/* Each piece goes straight back out (copied into the answer, so it is
 * never held). Backpressure is the runtime's: it stops handing pieces while
 * the answer's unsent bytes are over the write cap. */
static int echo_piece(struct iox_conn *c, const char *data, size_t len, int status, void *arg)
{
    (void)arg;
    if (status == IOX_BODY_PIECE) {
        if (iox_resp_chunk(c, data, len) < 0) { iox_conn_abort(c); return IOX_BODY_OK; }
        iox_conn_flush(c);
        return IOX_BODY_OK;
    }
    if (status == IOX_BODY_END) {
        if (iox_resp_end(c, NULL) < 0) { iox_conn_abort(c); return IOX_BODY_OK; }
        iox_conn_async_done(c);
    }
    /* status < 0: the body broke off; the runtime closes the connection. */
    return IOX_BODY_OK;
}

static int echo(struct iox_conn *c, const struct iox_http_request *req)
{
    if (req->body_kind == IOX_HTTP_BODY_NONE) {
        iox_resp_simple(c, 200, "application/octet-stream", "", 0);
        return IOX_HANDLED;
    }
    int64_t len = req->body_kind == IOX_HTTP_BODY_CHUNKED ? IOX_RESP_CHUNKED
                                                          : (int64_t)req->content_length;
    /* The body is taken first: a 100-continue goes out before the head. */
    if (iox_req_body_stream(c, req, echo_piece, NULL) < 0) {
        iox_resp_simple(c, 500, "text/plain", "cannot read the body\n", 21);
        return IOX_HANDLED;
    }
    if (iox_resp_start(c, 200, "application/octet-stream", NULL, len) < 0) {
        iox_conn_abort(c);
        return IOX_ASYNC;
    }
    return IOX_ASYNC;
}

/* The answer to GET /, prepared once (playground_raw): a pipelined burst
 * of it is a copy per request (iox_resp_send_prepared). */
static struct iox_resp_prepared ok_answer;

static int raw_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    /* The request a benchmark sends, first: GET / is neither OPTIONS nor
     * CONNECT, so the server-wide answers below cannot apply to it. */
    if (req->method_id == IOX_HTTP_GET && req->path_len == 1 && req->path[0] == '/') {
        iox_resp_send_prepared(c, &ok_answer);
        return IOX_HANDLED;
    }
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
    if (req->path_len == 5 && memcmp(req->path, "/echo", 5) == 0) {
        if (req->method_id == IOX_HTTP_POST) return echo(c, req);
        if (req->method_id == IOX_HTTP_OPTIONS) playground_options(c, ECHO_ALLOW);
        else playground_405(c, ECHO_ALLOW);
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
    return iox_resp_prepare(&ok_answer, 200, "text/plain", "ok", 2);
}
