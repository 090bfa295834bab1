/* ioxide/http_server.h — the HTTP/1.1 server: a protocol of the reactor.
 *
 * A listener whose protocol is iox_http_protocol (proto_cfg: a struct
 * iox_http_config) gets, on every reactor, an iox_http_server: its
 * connection table, its timers, its buffers and its kind in the reactor's
 * registry. Connections (ioxide/http_conn.h) are the generated machine http_conn.
 * Everything here runs on the reactor's thread. */
#ifndef IOX_HTTP_SERVER_H
#define IOX_HTTP_SERVER_H
#include <ioxide/http_parser.h>
#include <ioxide/reactor.h>
#include <ioxide/stream_core.h>
#include <stdint.h>

struct iox_conn;
struct iox_rslot;

/* Handler results. */
enum { IOX_HANDLED = 0, IOX_ASYNC = 1 };

/* Outstanding async requests per connection: default and most. */
#define IOX_MAX_ASYNC_DEFAULT 16u
#define IOX_MAX_ASYNC_LIMIT 64u

/* An HTTP application. on_request runs on the reactor thread for every
 * complete request head; req's views are valid only during the call. It
 * writes the response with iox_resp_*() and returns IOX_HANDLED, or returns
 * IOX_ASYNC after taking iox_conn_ref(c), to answer later on the same
 * reactor (iox_conn_deref, iox_resp_*, iox_conn_async_done: pg query, hop);
 * the connection goes on parsing pipelined requests meanwhile, up to
 * max_async outstanding ones, and answers leave in request order.
 * Request bodies (ioxide/http_conn.h, "Reading a request body"): in
 * on_request the handler may take the body — streamed piece by piece with
 * backpressure (iox_req_body_stream; its answer may leave while the body
 * still arrives) or gathered whole up to a limit (iox_req_body_read; 413
 * beyond) — which makes the request asynchronous. A body it leaves is
 * drained by the runtime after on_request, up to the parser's max_body
 * (413 and close beyond), and that request's answer is sent only once the
 * body has been read, so a body that turns out malformed gets the 400, never
 * the handler's answer. Expect: 100-continue gets its 100 only when the
 * handler takes the body; otherwise the answer closes the connection. */
struct iox_http_app {
    int (*on_request)(struct iox_conn *c, const struct iox_http_request *req, void *app_ctx);
};

/* Zero fields get the defaults in brackets. */
struct iox_http_config {
    uint32_t idle_timeout_ms;    /* idle, stuck mid-request or not reading → close (30000) */
    uint32_t linger_ms;          /* after a final response, wait this long for EOF (2000) */
    uint32_t max_conns;          /* per reactor; accept pauses when reached (16384) */
    uint32_t write_cap;          /* pending response bytes before reading stops (256 KiB) */
    uint32_t max_async;          /* outstanding async requests per connection (16, ≤ 64) */
    struct iox_http_limits limits; /* parser limits (0 = the parser's defaults) */
    const struct iox_http_app *app;  /* NULL: every request is answered 404 */
    void *app_ctx;
    /* A path answered, before the application, with every reactor's
     * counters in Prometheus text format (gathered through ring messages);
     * NULL or "": off. */
    const char *stats_path;
    /* The access log (opt-in): one line per request in the combined log
     * format, each reactor writing its own file through its ring
     * (ioxide/logfile.h: buffered, at most one write per loop turn; a full
     * disk drops lines, counted in ioxide_log_dropped_total, and never
     * stalls a request). "%r" in the path is replaced by the reactor's
     * index; without it ".<index>" is appended when there are several
     * reactors. SIGHUP reopens the files (log rotation). NULL or "": off.
     * A file that cannot be opened stops startup with its reason. */
    const char *access_log;
};

/* Fill cfg's zero fields from IDLE_TIMEOUT_MS, IOX_LINGER_MS, IOX_MAX_CONNS,
 * IOX_WRITE_CAP, IOX_MAX_ASYNC, IOX_MAX_HEAD, IOX_MAX_HEADERS,
 * IOX_MAX_TARGET, IOX_MAX_BODY_MB, IOX_STATS_PATH, IOX_ACCESS_LOG. 0, or
 * -EINVAL with why (a malformed number, a stats path not starting with
 * '/'). */
int iox_http_config_from_env(struct iox_http_config *cfg, char *why, size_t why_len);

/* The protocol for iox_listener_config.proto; proto_cfg is a const struct
 * iox_http_config * (NULL: all defaults). */
extern const struct iox_protocol iox_http_protocol;

/* A server with one HTTP listener, all three configurations together;
 * iox_http_single_from_env fills them from the environment and links them
 * (listener → HTTP, server → listener): set http.app (and hooks on
 * server), then iox_server_run(&s->server). s must outlive the run.
 * 0, or -EINVAL with why. */
struct iox_http_single {
    struct iox_server_config server;
    struct iox_listener_config listener;
    struct iox_http_config http;
};
int iox_http_single_from_env(struct iox_http_single *s, char *why, size_t why_len);

/* Serve HTTP with `app` on one listener and everything else from the
 * environment and the defaults (iox_server_config_from_env,
 * iox_listener_config_from_env, iox_http_config_from_env): what a zeroed
 * configuration means. Returns iox_server_run's exit status (2: malformed
 * environment, printed). */
int iox_http_serve(const struct iox_http_app *app, void *app_ctx);

/* Length of the cached Date line, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
 * (an IMF-fixdate has a fixed length, RFC 9110 §5.6.7): the head writer
 * copies that many bytes without measuring them. */
#define IOX_HTTP_DATE_LINE_LEN 37

/* The bytes of the last prepared answer (iox_resp_send_prepared) this
 * server wrote, and what they were built for. Runtime-private. */
#define IOX_RESP_MEMO_MAX 320
struct iox_resp_memo {
    uint32_t id;                   /* the prepared answer's id; 0: nothing cached */
    uint16_t len;                  /* bytes in s */
    uint8_t variant;               /* HEAD and the Connection line (conn_response.c) */
    uint8_t date_off;              /* where its Date line is in s; 0: it has none */
    char s[IOX_RESP_MEMO_MAX];
};

/* One reactor's HTTP server for one listener. Fields are the runtime's;
 * applications read the counters. */
struct iox_http_server {
    struct iox_reactor *r;
    struct iox_http_config cfg;       /* defaults applied */
    int owner;                        /* kind id: user_data owner of its connections */
    unsigned listener;                /* index of its listener (accept pause/resume) */
    /* Connection table: flat array indexed by slot, free slots in a stack. */
    struct iox_conn *conns;
    uint32_t max_conns, nconns, nfree;
    uint32_t *free_slots;
    /* Response rings: rslot_mask + 1 entries per connection slot, stored
     * position 0 of every connection first, then each connection's deeper
     * positions together (conn_internal.h, iox_conn_slot). */
    struct iox_rslot *rslots;
    uint32_t rslot_mask;
    uint32_t max_async;
    /* Its connections' shared socket mechanics (ioxide/stream_core.h):
     * turn-end lists, timer lists ordered by deadline, buffer free lists. */
    struct iox_sock_host sh;
    char date[40];                    /* "Date: ...\r\n" cached per second: IOX_HTTP_DATE_LINE_LEN
                                         bytes and a NUL, or "" (a simulated seam's test set none) */
    uint64_t date_sec;
    /* Counters (this reactor only; served at stats_path). */
    uint64_t n_accepted, n_closed, n_requests, n_stale_cqes, n_enobufs, n_timeouts;
    uint64_t n_status[6];             /* answers by status class, [1] = 1xx .. [5] = 5xx */
    uint64_t n_bytes_in, n_bytes_out;
    struct iox_conn *in_request;      /* the connection whose on_request runs (body API checks) */
    /* Stats on: the path, and the application behind it (http_stats.c). */
    const char *stats_path;
    const struct iox_http_app *user_app;
    void *user_ctx;
    /* Request-body states (struct iox_body, conn_body.c) ready for reuse. */
    void *free_body;
    /* The access log when cfg.access_log is set, else NULL (access_log.c). */
    struct iox_alog *alog;
    struct iox_resp_memo memo;        /* the last prepared answer written (conn_response.c) */
};

/* Make an HTTP server on reactor r (its thread) outside a listener — the
 * simulated-ring tests and tools that adopt sockets themselves; `listener`
 * is only used to pause/resume accept (pass the listener's index, or any
 * value when there is none). 0 and *out, or -ENOMEM. */
int iox_http_server_open(struct iox_reactor *r, const struct iox_http_config *cfg, unsigned listener,
                         struct iox_http_server **out);
/* Close every connection's fd (no ceremony), free the tables and the
 * server, unregister its kind. */
void iox_http_server_close(struct iox_http_server *hs);
/* The HTTP server of r's listener `listener`, or NULL (not HTTP). */
struct iox_http_server *iox_http_server_of(struct iox_reactor *r, unsigned listener);
/* Adopt a connected socket as an HTTP connection (what an accept does).
 * NULL when the table is full. */
struct iox_conn *iox_http_adopt(struct iox_http_server *hs, int fd);
#endif
