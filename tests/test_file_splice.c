/* test_file_splice.c — file mode's splice path over real sockets (issue 14
 * §3): large bodies go file → pipe → socket with IORING_OP_SPLICE on the
 * ring (runtime/file/file_stream.c, states splice_head / splicing_in /
 * splicing_out of spec/machines/file_stream.toml), never through user
 * memory.
 *
 * One playground per suite (REACTORS=1, FILE_SPLICE_MIN=65536,
 * FILE_SPLICE_PIPES=2, FILE_PIPE_SIZE=65536: a 10 MiB body is 160 splices
 * each way) over a temp root with a 1 MiB and a 10 MiB file. Cases: both
 * files byte-exact (one keep-alive connection, then pipelined behind a
 * small answer), a Range in the middle, clients that close mid-file (the
 * server's descriptors are back to where they were: the pipes that held
 * bytes were made again, not leaked, and serve the next streams), HEAD on
 * a big file (no body, no stream). The last case stops the server and
 * reads its stop line: every GET of a big file was a stream, every stream
 * was spliced, HEADs started none, and pipes were made again after the
 * closes. */
#include "iox_test.h"
#include "big_files.h"
#include "http_client.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define FS_1M (1u << 20)
#define FS_10M (10u << 20)

static char fs_tmp[64], fs_root[96];
static unsigned char *fs_data1m, *fs_data10m;
static struct hc_server fs_srv;
static unsigned fs_gets;   /* GETs of a big file answered (each one stream) */

static int fs_init(void)
{
    snprintf(fs_tmp, sizeof fs_tmp, "/tmp/iox-splice-XXXXXX");
    if (!mkdtemp(fs_tmp)) return -1;
    snprintf(fs_root, sizeof fs_root, "%s/www", fs_tmp);
    if (mkdir(fs_root, 0755) < 0) return -1;
    fs_data1m = malloc(FS_1M);
    fs_data10m = malloc(FS_10M);
    if (!fs_data1m || !fs_data10m) return -1;
    bf_fill(fs_data1m, FS_1M, 7);
    bf_fill(fs_data10m, FS_10M, 11);
    if (bf_write(fs_root, "1m.bin", fs_data1m, FS_1M) || bf_write(fs_root, "10m.bin", fs_data10m, FS_10M) ||
        bf_write(fs_root, "small.txt", (const unsigned char *)"small\n", 6))
        return -1;
    char root_env[128];
    snprintf(root_env, sizeof root_env, "FILE_ROOT=%s", fs_root);
    /* Real fds: the cases see the server end its streams through its
     * descriptor count (connections and pipes); a direct descriptor is no
     * fd. Splice to a direct socket: suite direct_fds. */
    const char *env[] = {"PLAYGROUND_MODE=file", "REACTORS=1", root_env, "FILE_BAKE_MAX=65536",
                         "FILE_SPLICE_MIN=65536", "FILE_SPLICE_PIPES=2", "FILE_PIPE_SIZE=65536",
                         "IOX_DIRECT_FDS=off", "IOX_LOG=debug", NULL};   /* debug: the streams' end lines */
    return hc_server_start(&fs_srv, env) == 0 ? 0 : -1;
}

static int fs_clean(void)
{
    hc_server_free(&fs_srv);
    free(fs_data1m);
    free(fs_data10m);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fs_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* GET path on c; the body must be want[0, n). */
static void fs_get_exact(struct hc_conn *c, const char *path, const unsigned char *want, size_t n)
{
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    struct hc_response r;
    int rc = hc_roundtrip(c, req, &r, 0);
    CU_ASSERT_EQUAL_FATAL(rc, HC_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_len, n);
    CU_ASSERT(r.body_len == n && memcmp(r.body, want, n) == 0);
    hc_response_free(&r);
    fs_gets++;
}

IOX_TEST(file_splice, one_and_ten_mib_exact)
{
    struct hc_conn c;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&c, fs_srv.port, 2000), 0);
    hc_set_timeout(&c, hc_slow(20000));
    fs_get_exact(&c, "/1m.bin", fs_data1m, FS_1M);
    fs_get_exact(&c, "/10m.bin", fs_data10m, FS_10M);
    fs_get_exact(&c, "/1m.bin", fs_data1m, FS_1M);   /* the pipe again, same connection */
    /* Pipelined: small, 1 MiB, small — the spliced body sits between two
     * answers from the write buffer, in order. */
    CU_ASSERT_EQUAL(hc_send_str(&c, "GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                                    "GET /1m.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                                    "GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    struct hc_response a, b, d;
    CU_ASSERT_EQUAL_FATAL(hc_read_response(&c, &a, 0), HC_OK);
    CU_ASSERT_EQUAL_FATAL(hc_read_response(&c, &b, 0), HC_OK);
    CU_ASSERT_EQUAL_FATAL(hc_read_response(&c, &d, 0), HC_OK);
    CU_ASSERT(a.body_len == 6 && memcmp(a.body, "small\n", 6) == 0);
    CU_ASSERT(b.status == 200 && b.body_len == FS_1M && memcmp(b.body, fs_data1m, FS_1M) == 0);
    CU_ASSERT(d.body_len == 6 && memcmp(d.body, "small\n", 6) == 0);
    fs_gets++;
    hc_response_free(&a);
    hc_response_free(&b);
    hc_response_free(&d);
    hc_close(&c);
}

IOX_TEST(file_splice, range_in_the_middle)
{
    struct hc_conn c;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&c, fs_srv.port, 2000), 0);
    hc_set_timeout(&c, hc_slow(20000));
    const struct { const char *path; unsigned char *const *data; size_t a, b; } rs[] = {
        {"/1m.bin", &fs_data1m, 300001, 800000},
        {"/10m.bin", &fs_data10m, 4000000, 7654321},
    };
    for (size_t i = 0; i < 2; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nRange: bytes=%zu-%zu\r\n\r\n", rs[i].path, rs[i].a, rs[i].b);
        struct hc_response r;
        CU_ASSERT_EQUAL_FATAL(hc_roundtrip(&c, req, &r, 0), HC_OK);
        size_t n = rs[i].b - rs[i].a + 1;
        CU_ASSERT_EQUAL(r.status, 206);
        CU_ASSERT_EQUAL(r.body_len, n);
        CU_ASSERT(r.body_len == n && memcmp(r.body, *rs[i].data + rs[i].a, n) == 0);
        hc_response_free(&r);
        fs_gets++;
    }
    hc_close(&c);
}

/* Wait (bounded) until the server logged the end of `n` streams: each
 * line comes after the stream gave its pipe back (file_stream.c
 * stream_end). The descriptor count alone cannot say so: a client's socket
 * leaves the fd table while a cancelled splice may still hold its pipe,
 * and the next stream would find no free pipe. */
static unsigned fs_wait_ended(unsigned n)
{
    unsigned seen = 0;
    for (int i = 0; i < 400; i++) {
        char *log = hc_server_stderr(&fs_srv);
        seen = 0;
        for (const char *p = log; (p = strstr(p, "file stream: ended (")) != NULL; p++) seen++;
        free(log);
        if (seen >= n) break;
        usleep(50 * 1000);
    }
    return seen;
}

IOX_TEST(file_splice, client_closes_mid_file)
{
    int fds0 = bf_settled_fds(fs_srv.pid);
    CU_ASSERT_FATAL(fds0 > 0);
    /* Two at a time (the pool has two pipes): each reads the head and a
     * little of the 10 MiB body, then closes (one plainly, one with a
     * reset), leaving bytes in its pipe. */
    for (int round = 0; round < 3; round++) {
        bf_abandon_pair(fs_srv.port, "GET /10m.bin HTTP/1.1\r\nHost: t\r\n\r\n");
        fs_gets += 2;
        /* The server notices, ends the streams and gives the pipes back
         * (made again: the same count) before the next round takes them. */
        CU_ASSERT_EQUAL(bf_wait_fds(fs_srv.pid, fds0), fds0);
        CU_ASSERT_EQUAL(fs_wait_ended(fs_gets), fs_gets);
    }
    /* The pipes (made again) carry the next streams byte-exact. */
    struct hc_conn c;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&c, fs_srv.port, 2000), 0);
    hc_set_timeout(&c, hc_slow(20000));
    for (int i = 0; i < 3; i++) fs_get_exact(&c, "/10m.bin", fs_data10m, FS_10M);
    hc_close(&c);
    CU_ASSERT_EQUAL(bf_wait_fds(fs_srv.pid, fds0), fds0);
}

IOX_TEST(file_splice, head_never_splices)
{
    struct hc_conn c;
    CU_ASSERT_EQUAL_FATAL(hc_connect(&c, fs_srv.port, 2000), 0);
    for (int i = 0; i < 3; i++) {
        struct hc_response r;
        CU_ASSERT_EQUAL_FATAL(hc_roundtrip(&c, "HEAD /10m.bin HTTP/1.1\r\nHost: t\r\n\r\n", &r, 1), HC_OK);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(r.content_length, (long long)FS_10M);
        CU_ASSERT_EQUAL(r.body_len, 0);
        hc_response_free(&r);
    }
    /* Nothing of a body followed: the next answer on the connection is
     * the small file's. */
    fs_get_exact(&c, "/small.txt", (const unsigned char *)"small\n", 6);
    fs_gets--;   /* baked, not a stream */
    hc_close(&c);
}

/* Last: stop the server; its stop line says which path the bodies took. */
IOX_TEST(file_splice, every_big_body_was_spliced)
{
    int st = hc_server_stop(&fs_srv, NULL);
    CU_ASSERT_EQUAL(st, 0);
    char *log = hc_server_stderr(&fs_srv);
    const char *p = strstr(log, "file mode: streams: ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    unsigned long long started = 0, spliced = 0, nopipe = 0, done = 0, gone = 0, failed = 0, reads = 0, splices = 0, renewed = 0;
    int n = sscanf(p, "file mode: streams: %llu started (%llu spliced, %llu found no free pipe), %llu done, %llu gone, "
                      "%llu failed; %llu reads, %llu splices; %llu pipes made again",
                   &started, &spliced, &nopipe, &done, &gone, &failed, &reads, &splices, &renewed);
    CU_ASSERT_EQUAL_FATAL(n, 9);
    CU_ASSERT_EQUAL(started, fs_gets);     /* HEADs started no stream */
    CU_ASSERT_EQUAL(spliced, started);     /* every big body by splice */
    CU_ASSERT_EQUAL(nopipe, 0);
    CU_ASSERT_EQUAL(reads, 0);             /* no body byte read into user memory */
    CU_ASSERT(splices >= 2 * 160);         /* at least one 10 MiB body, 64 KiB a splice, each way */
    CU_ASSERT(renewed >= 1);               /* closes left bytes in pipes */
    CU_ASSERT_EQUAL(done + gone + failed, started);
    if (n != 9 || started != fs_gets || spliced != started) fprintf(stderr, "\n  %.400s\n", p);
    free(log);
}

IOX_SUITE(file_splice, fs_init, fs_clean);
