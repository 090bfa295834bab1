/* bench/ir_client.c — the lock-step client of bench/ir.sh (instructions per
 * request under callgrind).
 *
 *   ir_client PORT CONNS DEPTH REQUESTS
 *
 * Opens CONNS keep-alive connections to 127.0.0.1:PORT, then repeats rounds
 * until REQUESTS requests per connection have been answered: each round
 * writes DEPTH copies of `GET / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\n\r\n`
 * (the bytes wrk.format sends) on every connection in one write each, then
 * reads every connection until its DEPTH answers are complete (head +
 * Content-Length). Lock-step on purpose: the server sees the same batches
 * in every run, so two runs that differ only in REQUESTS differ in the
 * server's work by exactly that many requests (what ir.sh subtracts).
 * REQUESTS is rounded up to a multiple of DEPTH. Blocking sockets, no
 * timing. Exit 0 when every answer was a 200; otherwise one line on stderr
 * naming what went wrong, exit 1. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF 65536

static void die(const char *what, int err)
{
    fprintf(stderr, "ir_client: %s: %s\n", what, err ? strerror(err) : "unexpected answer");
    exit(1);
}

/* Reads from fd until `want` complete answers have arrived; the bytes of a
 * later answer cannot arrive early in lock-step, so anything left over is
 * an error. */
static void read_answers(int fd, unsigned want)
{
    static char buf[RBUF];
    size_t have = 0;
    unsigned done = 0;
    while (done < want) {
        ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die("recv", errno);
        if (n == 0) die("recv: the server closed the connection", 0);
        have += (size_t)n;
        for (;;) {
            char *end = memmem(buf, have, "\r\n\r\n", 4);
            if (!end) break;
            size_t head = (size_t)(end - buf) + 4;
            if (have < 12 || memcmp(buf, "HTTP/1.1 200", 12) != 0) die("status", 0);
            char *cl = memmem(buf, head, "Content-Length: ", 16);
            if (!cl) die("no Content-Length", 0);
            size_t body = strtoul(cl + 16, NULL, 10);
            if (have < head + body) break;
            memmove(buf, buf + head + body, have - head - body);
            have -= head + body;
            done++;
        }
        if (have == sizeof buf) die("answer too large", 0);
    }
    if (have) die("bytes beyond the answers owed", 0);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: ir_client PORT CONNS DEPTH REQUESTS\n");
        return 2;
    }
    int port = atoi(argv[1]);
    unsigned conns = (unsigned)atoi(argv[2]), depth = (unsigned)atoi(argv[3]);
    unsigned long requests = strtoul(argv[4], NULL, 10);
    if (port <= 0 || !conns || !depth || depth > 256) die("bad arguments", EINVAL);

    char one[128];
    int one_len = snprintf(one, sizeof one, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port);
    char *batch = malloc((size_t)one_len * depth);
    int *fds = calloc(conns, sizeof *fds);
    if (!batch || !fds) die("malloc", ENOMEM);
    for (unsigned i = 0; i < depth; i++) memcpy(batch + (size_t)i * one_len, one, (size_t)one_len);

    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (unsigned i = 0; i < conns; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0) die("socket", errno);
        int one_flag = 1;
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one_flag, sizeof one_flag);
        /* The server may still be starting under valgrind: retry a refused
         * connect for up to a minute (a refused SYN costs the server nothing). */
        int tries = 0;
        while (connect(fds[i], (struct sockaddr *)&a, sizeof a) < 0) {
            if (errno != ECONNREFUSED || ++tries > 600) die("connect", errno);
            close(fds[i]);
            fds[i] = socket(AF_INET, SOCK_STREAM, 0);
            if (fds[i] < 0) die("socket", errno);
            setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one_flag, sizeof one_flag);
            usleep(100000);
        }
    }
    unsigned long rounds = (requests + depth - 1) / depth;
    size_t len = (size_t)one_len * depth;
    for (unsigned long r = 0; r < rounds; r++) {
        for (unsigned i = 0; i < conns; i++) {
            size_t off = 0;
            while (off < len) {
                ssize_t n = send(fds[i], batch + off, len - off, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) die("send", errno);
                off += (size_t)n;
            }
        }
        for (unsigned i = 0; i < conns; i++) read_answers(fds[i], depth);
    }
    for (unsigned i = 0; i < conns; i++) close(fds[i]);
    printf("answered=%lu\n", rounds * depth * conns);
    return 0;
}
