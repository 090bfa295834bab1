/* resp_util.h — helpers of the RESP suites (tests/test_resp_*.c): start
 * build/ioxide-resp and a real redis-server as child processes on free
 * ports, exchange raw bytes, run redis-cli and redis-benchmark. */
#ifndef RESP_UTIL_H
#define RESP_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ru_proc {
    pid_t pid;
    uint16_t port;
    char dir[64];          /* a temp dir of its own: its log (and redis-server's files) */
};

/* Start build/ioxide-resp (beside the test binary) on a free port with the
 * extra environment env ("K=V", NULL-terminated, may be NULL), HOST
 * 127.0.0.1, and wait until it accepts. 0, or -1 with its log printed. */
int ru_start_resp(struct ru_proc *p, const char *const *env);
/* Start a real redis-server (no persistence, in a temp dir) with extra
 * arguments (NULL-terminated, may be NULL). 0, or -1 (its log printed). */
int ru_start_redis(struct ru_proc *p, const char *const *args);
/* SIGTERM, wait (up to 10 s, then SIGKILL), remove its dir. The exit
 * status (0..255), 128+signal, or -1. */
int ru_stop(struct ru_proc *p);
/* Print its log to stderr (after a failure). */
void ru_dump_log(const struct ru_proc *p);

/* Connect to 127.0.0.1:port (fd, or -errno); receive timeout 10 s. */
int ru_connect(uint16_t port);
/* Send data, then read until the server closes (or 10 s of silence: a
 * test failure, not a timing assertion). *out is malloc'd, NUL-terminated;
 * *closed says whether the server closed. 0 or -errno. */
int ru_exchange(uint16_t port, const void *data, size_t n, char **out, size_t *outlen, int *closed);
/* Read exactly n reply bytes... until `want` replies (RESP2 framing) have
 * arrived on fd; appended to *out (malloc'd). 0, or -1. */
int ru_read_replies(int fd, unsigned want, char **out, size_t *outlen);

/* Run a shell command; its exit status (or -1). With out != NULL its
 * stdout is captured (malloc'd, NUL-terminated). */
int ru_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Unescape \r \n \t \\ \xHH in s (n bytes) into a malloc'd buffer. */
char *ru_unescape(const char *s, size_t n, size_t *outlen);
/* The bytes as a printable, escaped string (static buffer, truncated). */
const char *ru_show(const char *p, size_t n);

#endif
