/* http_client.h — a small blocking HTTP/1.1 test client and a playground
 * process helper, for black-box integration tests over real sockets.
 *
 * Client: hc_connect() opens a blocking TCP connection to 127.0.0.1 with
 * SO_RCVTIMEO/SO_SNDTIMEO set (a hung server fails a test instead of hanging
 * it). hc_read_response() reads one response from the connection's own read
 * buffer, so many pipelined responses can be read one after the other from
 * one stream. hc_parse_response() is the same parser without I/O, for tests
 * that drive non-blocking sockets themselves (poll/epoll load tests).
 *
 * Server: hc_server_start() runs <bin_dir>/playground as a child with extra
 * environment on a free port, waits until it accepts, and captures its
 * stderr to a temp file; hc_server_stop() sends SIGTERM and returns the exit
 * status. Usable for every playground mode (raw, pg, file, hop).
 * IOX_PLAYGROUND_WRAPPER, when set, is a command prefix the playground runs
 * under (make memcheck: valgrind). */
#ifndef IOX_HTTP_CLIENT_H
#define IOX_HTTP_CLIENT_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- responses ---- */

#define HC_MAX_HEADERS 64

struct hc_header {
    char *name;
    char *value;
};

struct hc_response {
    int status;                 /* e.g. 200 */
    int minor;                  /* HTTP/1.<minor> */
    char reason[64];
    unsigned nheaders;
    struct hc_header headers[HC_MAX_HEADERS];
    char *body;                 /* NUL-terminated copy (body_len bytes) */
    size_t body_len;
    long long content_length;   /* -1 when absent */
    int chunked;                /* Transfer-Encoding: chunked */
    int conn_close;             /* a Connection header with the "close" token */
    int conn_keep_alive;        /* a Connection header with "keep-alive" */
    int until_close;            /* body delimited by the end of the stream */
    size_t wire_len;            /* bytes of the stream this response took */
};

/* Result codes of the parser and the readers. */
enum {
    HC_OK = 0,
    HC_EOF = -1,        /* clean end of stream before the first byte */
    HC_TRUNCATED = -2,  /* end of stream in the middle of a response */
    HC_TIMEOUT = -3,    /* SO_RCVTIMEO expired */
    HC_MALFORMED = -4,  /* not a valid HTTP/1.x response */
    HC_IOERR = -5,      /* recv/send failed: errno in hc_conn.err */
};
const char *hc_strerror(int rc);

/* Parses one response at buf[0, len). head: the request was HEAD (no body
 * whatever the headers say). eof: no more bytes will come (completes a body
 * read until close). Returns 1 and fills *out (free with hc_response_free)
 * and *consumed when complete, 0 when more bytes are needed, HC_MALFORMED
 * when the bytes cannot be a response (why, when not NULL, says where). */
int hc_parse_response(const char *buf, size_t len, int head, int eof,
                      struct hc_response *out, size_t *consumed, const char **why);
void hc_response_free(struct hc_response *r);
/* Value of the first header named `name` (case-insensitive), or NULL. */
const char *hc_header(const struct hc_response *r, const char *name);
/* Number of headers named `name`. */
unsigned hc_header_count(const struct hc_response *r, const char *name);

/* ---- connections ---- */

struct hc_conn {
    int fd;
    char *buf;          /* read buffer: bytes [off, len) not yet parsed */
    size_t off, len, cap;
    int eof;            /* the peer's FIN was read */
    int err;            /* errno of the last HC_IOERR */
    const char *why;    /* detail of the last HC_MALFORMED */
};

#define HC_DEFAULT_TIMEOUT_MS 5000

/* Connects to 127.0.0.1:port within timeout_ms; TCP_NODELAY on, receive and
 * send timeouts HC_DEFAULT_TIMEOUT_MS. Returns 0 or -errno. */
int hc_connect(struct hc_conn *c, uint16_t port, int timeout_ms);
/* The same with SO_RCVBUF/SO_SNDBUF set before connecting (0: default). */
int hc_connect_ex(struct hc_conn *c, uint16_t port, int timeout_ms, int rcvbuf, int sndbuf);
void hc_set_timeout(struct hc_conn *c, int timeout_ms);
/* Sends every byte. Returns 0 or -errno (-EAGAIN: SO_SNDTIMEO expired). */
int hc_send(struct hc_conn *c, const void *data, size_t len);
int hc_send_str(struct hc_conn *c, const char *s);
/* Reads one response (HC_OK and *out filled, or an HC_ error code). */
int hc_read_response(struct hc_conn *c, struct hc_response *out, int head);
/* Waits up to timeout_ms for the peer to close. Returns 1 on EOF (recv → 0
 * with nothing unread), 0 on timeout, 2 when bytes arrived instead, -errno
 * on a receive error (e.g. -ECONNRESET). */
int hc_wait_eof(struct hc_conn *c, int timeout_ms);
/* Bytes received but not parsed yet. */
static inline size_t hc_pending(const struct hc_conn *c) { return c->len - c->off; }
void hc_close(struct hc_conn *c);
/* Close with SO_LINGER {1, 0}: the peer sees a reset. */
void hc_reset(struct hc_conn *c);

/* One request, sent and answered: convenience for the common case. */
int hc_roundtrip(struct hc_conn *c, const char *req, struct hc_response *out, int head);

/* ---- the playground as a child process ---- */

struct hc_server {
    pid_t pid;
    uint16_t port;
    int exited;                 /* waitpid collected it */
    int wstatus;                /* raw status from waitpid */
    char stderr_path[64];
};

/* A TCP port on 127.0.0.1 that nobody listens on right now (bind port 0). */
uint16_t hc_free_port(void);
/* Path of the playground next to the running test binary. */
const char *hc_playground_path(void);

/* Forks and execs the playground with the extra environment `env` ("K=V"
 * strings, NULL-terminated; may be NULL) plus PORT=port and, unless env sets
 * them, HOST=127.0.0.1 and IOX_PIN=0. Does not wait. Returns 0 or -errno. */
int hc_server_spawn(struct hc_server *s, const char *const *env, uint16_t port);
/* Polls connect() until the server accepts (1), it exits (0), or timeout
 * (-ETIMEDOUT). */
int hc_server_wait_ready(struct hc_server *s, int timeout_ms);
/* Spawn on a free port and wait until it accepts (5 s); retries another
 * port when the chosen one was taken in the meantime. Returns 0, or -1 with
 * the reason and the server's stderr printed. */
int hc_server_start(struct hc_server *s, const char *const *env);
/* Waits up to timeout_ms for the child to exit. Returns its exit status
 * (0..255), 128+signal when killed by a signal, or -ETIMEDOUT. */
int hc_server_wait_exit(struct hc_server *s, int timeout_ms);
/* SIGTERM, then waits up to 6 s; SIGKILL when it did not exit (returns
 * -ETIMEDOUT then). Otherwise the exit status as hc_server_wait_exit. Safe to
 * call on a server that has already exited. *elapsed_ms (may be NULL) is the
 * time from SIGTERM to exit. */
int hc_server_stop(struct hc_server *s, long *elapsed_ms);
/* The captured stderr (malloc'd, NUL-terminated; "" when unreadable). */
char *hc_server_stderr(const struct hc_server *s);
/* Removes the stderr file; kills the child if it still runs. */
void hc_server_free(struct hc_server *s);
/* VmRSS of a process in KiB, or -1. */
long hc_rss_kb(pid_t pid);

/* Valgrind runs (make memcheck): IOX_UNDER_VALGRIND=1 says the playground
 * (IOX_PLAYGROUND_WRAPPER) or this runner runs under valgrind, ~20-50x
 * slower. Suites skip their heavy load cases then. hc_slow(ms) scales a
 * timeout by IOX_TIMEOUT_SCALE (default 20 under valgrind, else 1); the
 * helpers here (connect/receive timeouts, server start and stop) use it. */
int hc_under_valgrind(void);
int hc_slow(int ms);

/* Monotonic milliseconds. */
long long hc_now_ms(void);
/* Raises RLIMIT_NOFILE's soft limit to at least n (up to the hard limit).
 * Returns the resulting soft limit. */
long hc_raise_nofile(long n);

#endif
