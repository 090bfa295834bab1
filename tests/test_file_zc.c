/* test_file_zc.c — file mode's zero-copy path over real sockets (issue 14
 * §3, FILE_SEND=zc): large bodies are read into a registered chunk
 * (IORING_OP_READ_FIXED) and sent from it with IORING_OP_SEND_ZC, the
 * chunk written again only after the send's notification CQE
 * (runtime/file/file_stream.c, states zc_head … zc_failing of
 * spec/machines/file_stream.toml).
 *
 * One playground per suite (REACTORS=1, FILE_SEND=zc, FILE_SPLICE_MIN=65536,
 * FILE_ZC_CHUNKS=2 of FILE_ZC_CHUNK=65536, FILE_SPLICE_PIPES=2 of
 * FILE_PIPE_SIZE=65536: a 1 MiB body is 16 read + send + notification
 * rounds) over a temp root with bodies of 1 MiB, odd sizes around the
 * chunk size, 10 MiB and 32 MiB. Cases: every size byte-exact (one
 * keep-alive connection, then pipelined between small answers), Ranges
 * (206) starting and ending off the chunk grid, HEAD (no body, no
 * stream), clients that close or reset mid-body (the server's descriptors
 * come back, the next bodies are exact: no chunk was lost or reused
 * before its notification), six concurrent 32 MiB bodies on two chunks
 * (two go zero-copy, the rest fall back: two by splice, two by reads, all
 * exact). The last case stops the server and reads its stop line: the
 * counts of zero-copy streams, fallbacks and orphaned chunks.
 *
 * The suite's playground keeps copied streams zero-copy (FILE_ZC_COPIED=
 * keep: on loopback the kernel copies every zero-copy send to the local
 * receiver, so the default would move them all to splice after their
 * first chunk). copied_sends_move_to_splice starts its own playground with
 * the default and checks the move: a copy report (IORING_SEND_ZC_REPORT_
 * USAGE, Linux 6.2) moves the stream to splice and keeps the reactor's
 * next streams off zero-copy, so a reader with a 2 KiB SO_RCVBUF (which
 * crawls at ≈ 5 KB/s on copied zero-copy skbs) gets its body.
 *
 * The kernel must have IORING_OP_SEND_ZC (Linux 6.0); without it the
 * playground prints one line and splices, and the stop-line case fails,
 * saying so. */
#include "iox_test.h"
#include "big_files.h"
#include "http_client.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZC_1M (1u << 20)
#define ZC_10M (10u << 20)
#define ZC_32M (32u << 20)

static char zc_tmp[64], zc_root[96];
static unsigned char *zc_data;   /* ZC_32M bytes: every file is a prefix */
static struct hc_server zc_srv;
static unsigned zc_gets;         /* GETs of a big file answered or started (each one stream) */
static unsigned zc_fallbacks;    /* of those, started while both chunks were held */

static const size_t zc_sizes[] = {65536, 65537, 131071, ZC_1M, ZC_1M + 1, 3000001, ZC_10M};

static int zc_init(void)
{
    snprintf(zc_tmp, sizeof zc_tmp, "/tmp/iox-zc-XXXXXX");
    if (!mkdtemp(zc_tmp)) return -1;
    snprintf(zc_root, sizeof zc_root, "%s/www", zc_tmp);
    if (mkdir(zc_root, 0755) < 0) return -1;
    zc_data = malloc(ZC_32M);
    if (!zc_data) return -1;
    bf_fill(zc_data, ZC_32M, 13);
    for (size_t i = 0; i < sizeof zc_sizes / sizeof *zc_sizes; i++) {
        char name[32];
        snprintf(name, sizeof name, "%zu.bin", zc_sizes[i]);
        if (bf_write(zc_root, name, zc_data, zc_sizes[i])) return -1;
    }
    if (bf_write(zc_root, "32m.bin", zc_data, ZC_32M) || bf_write(zc_root, "small.txt", (const unsigned char *)"small\n", 6)) return -1;
    char root_env[128];
    snprintf(root_env, sizeof root_env, "FILE_ROOT=%s", zc_root);
    const char *env[] = {"PLAYGROUND_MODE=file", "REACTORS=1", root_env, "FILE_BAKE_MAX=65535", "FILE_SEND=zc",
                         "FILE_SPLICE_MIN=65536", "FILE_ZC_CHUNKS=2", "FILE_ZC_CHUNK=65536",
                         "FILE_SPLICE_PIPES=2", "FILE_PIPE_SIZE=65536", "FILE_ZC_COPIED=keep",
                         "IOX_DIRECT_FDS=off", NULL};   /* descriptor counts, as file_splice */
    return hc_server_start(&zc_srv, env) == 0 ? 0 : -1;
}

static int zc_clean(void)
{
    hc_server_free(&zc_srv);
    free(zc_data);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", zc_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* GET path on c; the body must be the first n bytes of zc_data. */
static void zc_get_exact(struct hc_conn *c, const char *path, size_t n)
{
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    struct hc_response r;
    CU_ASSERT_EQUAL_FATAL(hc_roundtrip(c, req, &r, 0), HC_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_len, n);
    CU_ASSERT(r.body_len == n && memcmp(r.body, zc_data, n) == 0);
    hc_response_free(&r);
    zc_gets++;
}

IOX_TEST(file_zc, every_size_exact)
{
    struct hc_conn c;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&c, zc_srv.port, 2000), 0);
    hc_set_timeout(&c, hc_slow(20000));
    for (size_t i = 0; i < sizeof zc_sizes / sizeof *zc_sizes; i++) {
        char path[40];
        snprintf(path, sizeof path, "/%zu.bin", zc_sizes[i]);
        zc_get_exact(&c, path, zc_sizes[i]);
    }
    zc_get_exact(&c, "/1048576.bin", ZC_1M);   /* the chunk again, same connection */
    /* Pipelined: small, 1 MiB + 1, small — the zero-copy body sits between
     * two answers from the write buffer, in order. */
    CU_ASSERT_EQUAL(hc_send_str(&c, "GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                                    "GET /1048577.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                                    "GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    struct hc_response a, b, d;
    CU_ASSERT_EQUAL_FATAL(hc_read_response(&c, &a, 0), HC_OK);
    CU_ASSERT_EQUAL_FATAL(hc_read_response(&c, &b, 0), HC_OK);
    CU_ASSERT_EQUAL_FATAL(hc_read_response(&c, &d, 0), HC_OK);
    CU_ASSERT(a.body_len == 6 && memcmp(a.body, "small\n", 6) == 0);
    CU_ASSERT(b.status == 200 && b.body_len == ZC_1M + 1 && memcmp(b.body, zc_data, ZC_1M + 1) == 0);
    CU_ASSERT(d.body_len == 6 && memcmp(d.body, "small\n", 6) == 0);
    zc_gets++;
    hc_response_free(&a);
    hc_response_free(&b);
    hc_response_free(&d);
    hc_close(&c);
}

IOX_TEST(file_zc, ranges_206)
{
    struct hc_conn c;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&c, zc_srv.port, 2000), 0);
    hc_set_timeout(&c, hc_slow(20000));
    const struct { const char *path; size_t a, b; } rs[] = {
        {"/1048576.bin", 300001, 800000},      /* off the 64 KiB grid at both ends */
        {"/1048576.bin", 65535, 131072},       /* one byte either side of a chunk */
        {"/3000001.bin", 0, 2999999},          /* all but the last byte */
        {"/10485760.bin", 4000000, 7654321},
    };
    for (size_t i = 0; i < sizeof rs / sizeof *rs; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nRange: bytes=%zu-%zu\r\n\r\n", rs[i].path, rs[i].a, rs[i].b);
        struct hc_response r;
        CU_ASSERT_EQUAL_FATAL(hc_roundtrip(&c, req, &r, 0), HC_OK);
        size_t n = rs[i].b - rs[i].a + 1;
        CU_ASSERT_EQUAL(r.status, 206);
        CU_ASSERT_EQUAL(r.body_len, n);
        CU_ASSERT(r.body_len == n && memcmp(r.body, zc_data + rs[i].a, n) == 0);
        hc_response_free(&r);
        zc_gets++;
    }
    hc_close(&c);
}

IOX_TEST(file_zc, head_starts_no_stream)
{
    struct hc_conn c;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&c, zc_srv.port, 2000), 0);
    for (int i = 0; i < 3; i++) {
        struct hc_response r;
        CU_ASSERT_EQUAL_FATAL(hc_roundtrip(&c, "HEAD /10485760.bin HTTP/1.1\r\nHost: t\r\n\r\n", &r, 1), HC_OK);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(r.content_length, (long long)ZC_10M);
        CU_ASSERT_EQUAL(r.body_len, 0);
        hc_response_free(&r);
    }
    struct hc_response r;                 /* nothing followed the heads */
    CU_ASSERT_EQUAL_FATAL(hc_roundtrip(&c, "GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, 0), HC_OK);
    CU_ASSERT(r.status == 200 && r.body_len == 6 && memcmp(r.body, "small\n", 6) == 0);
    hc_response_free(&r);
    hc_close(&c);
}

IOX_TEST(file_zc, client_resets_mid_body)
{
    int fds0 = bf_settled_fds(zc_srv.pid);
    CU_ASSERT_FATAL(fds0 > 0);
    /* Two at a time (the pool has two chunks): each reads the head and a
     * little of the 10 MiB body, then closes (one plainly, one with a
     * reset) while a zero-copy send may be in flight. */
    for (int round = 0; round < 3; round++) {
        bf_abandon_pair(zc_srv.port, "GET /10485760.bin HTTP/1.1\r\nHost: t\r\n\r\n");
        zc_gets += 2;
        /* The connections close only after their sends' notifications. */
        CU_ASSERT_EQUAL(bf_wait_fds(zc_srv.pid, fds0), fds0);
    }
    /* The chunks came back and carry the next bodies byte-exact. */
    struct hc_conn c;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&c, zc_srv.port, 2000), 0);
    hc_set_timeout(&c, hc_slow(20000));
    for (int i = 0; i < 3; i++) zc_get_exact(&c, "/10485760.bin", ZC_10M);
    hc_close(&c);
    CU_ASSERT_EQUAL(bf_wait_fds(zc_srv.pid, fds0), fds0);
}

/* Six 32 MiB bodies at once on two chunks and two pipes: none can end
 * before its client reads (more than the socket buffers hold), so the
 * first two hold the chunks, the next two take the pipes, the last two
 * the read path. Every body is exact. */
IOX_TEST(file_zc, pool_exhausted_falls_back)
{
    enum { N = 6 };
    struct hc_conn c[N];
    for (int k = 0; k < N; k++) {
        CU_ASSERT_EQUAL_FATAL(hc_connect(&c[k], zc_srv.port, 2000), 0);
        hc_set_timeout(&c[k], hc_slow(30000));
        CU_ASSERT_EQUAL(hc_send_str(&c[k], "GET /32m.bin HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
        /* Its head arrives: the stream has started (and taken what it got)
         * before the next request is sent. */
        char b[1];
        CU_ASSERT_EQUAL(recv(c[k].fd, b, 1, MSG_PEEK), 1);
    }
    for (int k = 0; k < N; k++) {
        struct hc_response r;
        CU_ASSERT_EQUAL_FATAL(hc_read_response(&c[k], &r, 0), HC_OK);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(r.body_len == ZC_32M && memcmp(r.body, zc_data, ZC_32M) == 0);
        hc_response_free(&r);
        hc_close(&c[k]);
    }
    zc_gets += N;
    zc_fallbacks += N - 2;
}

/* Reads one answer of `want` body bytes from fd within ms milliseconds in
 * all; returns the body bytes that arrived and match zc_data (less than
 * want: too late, cut, or wrong). */
static size_t zc_read_within(int fd, size_t want, int ms)
{
    size_t cap = want + 4096, len = 0, body = 0;
    char *buf = malloc(cap);
    if (!buf) return 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *end = NULL;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0) break;
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)left) <= 0) break;
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
        buf[len < cap ? len : cap - 1] = 0;
        if (!end) end = memmem(buf, len, "\r\n\r\n", 4);
        if (end && len - (size_t)(end + 4 - buf) >= want) break;
        if (len == cap) break;
    }
    if (end && !strncmp(buf, "HTTP/1.1 200", 12)) {
        body = len - (size_t)(end + 4 - buf);
        if (body > want || memcmp(end + 4, zc_data, body)) body = 0;
    }
    free(buf);
    return body;
}

/* The default FILE_ZC_COPIED=splice, on loopback (every zero-copy send is
 * copied, and the kernel says so): the first stream moves to splice after
 * its first chunk; the next one, for a reader with a 2 KiB receive buffer,
 * does not try zero-copy and arrives whole (zero-copy, it would crawl past
 * the client's 30 s timeout). */
IOX_TEST(file_zc, copied_sends_move_to_splice)
{
    char root_env[128];
    snprintf(root_env, sizeof root_env, "FILE_ROOT=%s", zc_root);
    const char *env[] = {"PLAYGROUND_MODE=file", "REACTORS=1", root_env, "FILE_BAKE_MAX=65535", "FILE_SEND=zc",
                         "FILE_SPLICE_MIN=65536", "FILE_ZC_CHUNKS=2", "FILE_ZC_CHUNK=65536",
                         "FILE_SPLICE_PIPES=2", "FILE_PIPE_SIZE=65536", NULL};
    struct hc_server srv;
    CU_ASSERT_EQUAL_FATAL(hc_server_start(&srv, env), 0);
    struct hc_conn c;
    struct hc_response r;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&c, srv.port, 2000), 0);
    hc_set_timeout(&c, hc_slow(30000));
    CU_ASSERT_EQUAL(hc_roundtrip(&c, "GET /1048576.bin HTTP/1.1\r\nHost: t\r\n\r\n", &r, 0), HC_OK);
    CU_ASSERT(r.status == 200 && r.body_len == ZC_1M && memcmp(r.body, zc_data, ZC_1M) == 0);
    hc_response_free(&r);
    hc_close(&c);
    CU_ASSERT_EQUAL_FATAL(hc_connect_ex(&c, srv.port, 2000, 2048, 0), 0);
    CU_ASSERT_EQUAL(hc_send_str(&c, "GET /3000001.bin HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    /* A bound on the whole answer, not a timing goal: by splice it takes
     * about a second here; copied zero-copy skbs trickle in forever (each
     * recv gets some, so a per-recv timeout would never end the case). */
    size_t got = zc_read_within(c.fd, 3000001, hc_slow(60000));
    CU_ASSERT_EQUAL(got, 3000001);
    hc_close(&c);
    CU_ASSERT_EQUAL(hc_server_stop(&srv, NULL), 0);
    char *log = hc_server_stderr(&srv);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "copy reports (IORING_SEND_ZC_REPORT_USAGE) yes"));
    const char *p = strstr(log, " chunks orphaned, ");
    unsigned long long copied = 0, moved = 0, skipped = 0;
    CU_ASSERT_PTR_NOT_NULL(p);
    if (p) CU_ASSERT_EQUAL(sscanf(p, " chunks orphaned, %llu copied, %llu moved to splice, %llu did not try", &copied, &moved, &skipped), 3);
    CU_ASSERT(copied >= 1);
    CU_ASSERT_EQUAL(moved, 1);     /* the first stream, after its first chunk */
    CU_ASSERT_EQUAL(skipped, 1);   /* the second never tried */
    if (!p || moved != 1 || skipped != 1) fprintf(stderr, "\n  %.800s\n", log);
    free(log);
    hc_server_free(&srv);
}

/* Last: stop the server; its stop line says which path the bodies took. */
IOX_TEST(file_zc, stop_line_counts)
{
    int st = hc_server_stop(&zc_srv, NULL);
    CU_ASSERT_EQUAL(st, 0);
    char *log = hc_server_stderr(&zc_srv);
    CU_ASSERT_PTR_NULL(strstr(log, "no zero-copy send"));   /* the kernel has SEND_ZC */
    const char *p = strstr(log, "file mode: streams: ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    unsigned long long started = 0, spliced = 0, nopipe = 0, done = 0, gone = 0, failed = 0, reads = 0, splices = 0,
                       renewed = 0, zc = 0, nochunk = 0, freads = 0, sends = 0, shorts = 0, orphaned = 0;
    int n = sscanf(p, "file mode: streams: %llu started (%llu spliced, %llu found no free pipe), %llu done, %llu gone, "
                      "%llu failed; %llu reads, %llu splices; %llu pipes made again; zero-copy: %llu streams, "
                      "%llu found no free chunk, %llu fixed reads, %llu sends (%llu short), %llu chunks orphaned",
                   &started, &spliced, &nopipe, &done, &gone, &failed, &reads, &splices, &renewed,
                   &zc, &nochunk, &freads, &sends, &shorts, &orphaned);
    CU_ASSERT_EQUAL_FATAL(n, 15);
    CU_ASSERT_EQUAL(started, zc_gets);          /* HEADs started no stream */
    CU_ASSERT_EQUAL(nochunk, zc_fallbacks);     /* only the concurrent case found the chunks busy */
    CU_ASSERT_EQUAL(zc + nochunk, started);
    CU_ASSERT_EQUAL(spliced, 2);                /* of those, two took the pipes */
    CU_ASSERT_EQUAL(nopipe, 2);                 /* and two the read path */
    CU_ASSERT(reads > 0);
    CU_ASSERT(freads >= 16 * 2 + 160);          /* 1 MiB twice and a 10 MiB body, 64 KiB a read */
    CU_ASSERT(sends + 6 >= freads);             /* one send per read (more when short), but for a read the 6 leaving clients cut short */
    CU_ASSERT_EQUAL(orphaned, 0);               /* every close waited for its notification */
    CU_ASSERT(gone + failed >= 6);              /* the clients that left mid-body (a reset may fail a send) */
    CU_ASSERT_EQUAL(done + gone + failed, started);
    if (n != 15 || started != zc_gets || nochunk != zc_fallbacks) fprintf(stderr, "\n  %.600s\n", p);
    free(log);
}

IOX_SUITE(file_zc, zc_init, zc_clean);
