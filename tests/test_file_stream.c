/* test_file_stream.c — suite `file_stream`: the file_stream machine's start
 * behind an earlier async answer, on the simulated ring.
 *
 * A stream whose request is not the oldest outstanding one on its
 * connection must not read yet: the write buffer still belongs to the
 * earlier answer. `start` is then ignored in `idle` (guard `behind`,
 * spec/machines/file_stream.toml) and the first read is queued by the
 * drain hook once the earlier answer is sent (`idle` / `drained`). The file
 * mode never gets there (its only async answers are streams, and a stream
 * holds the close hook, so nothing is dispatched behind it), hence this
 * test: an app that holds "/hold" (IOX_ASYNC) and streams "/file" behind
 * it, pipelined on one connection. */
#include "iox_test.h"
#include "sim_world.h"
#include "file_stream_machine.h"
#include <ioxide/http_conn.h>
#include <ioxide/file_stream.h>
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FS_FD 7           /* the simulated client connection */
#define FS_LEN 10000u     /* file size: three 4 KiB chunks */
#define FS_CHUNK 4096u

static struct {
    struct iox_conn_ref held;
    int have_held, file_fd, ends, end_err;
    uint64_t taken[FILE_STREAM_STATE_COUNT][FILE_STREAM_EVENT_COUNT];
} fst;

static void fs_trace(struct iox_file_stream *st, int from, int event, int to)
{
    (void)st; (void)to;
    fst.taken[from][event]++;
}

static void fs_ended(struct iox_reactor *r, void *arg, int err)
{
    (void)r; (void)arg;
    fst.ends++;
    fst.end_err = err;
}

static int fs_on_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    if (req->target_len == 5 && !memcmp(req->target, "/hold", 5)) {
        fst.held = iox_conn_ref(c);
        fst.have_held = 1;
        return IOX_ASYNC;
    }
    /* /empty: a zero-length range of the file (what a Range of nothing or an
     * empty file comes to). */
    uint64_t len = req->target_len == 6 && !memcmp(req->target, "/empty", 6) ? 0 : FS_LEN;
    if (iox_resp_head(c, 200, "application/octet-stream", len, NULL) < 0) return IOX_HANDLED;
    return iox_file_stream_start(c, fst.file_fd, 0, len, FS_CHUNK, "file", fs_ended, NULL);
}

static const struct iox_http_app fs_app = {.on_request = fs_on_request};

IOX_TEST(file_stream, start_behind_an_async_answer)
{
    memset(&fst, 0, sizeof fst);
    char path[] = "/tmp/iox_file_stream.XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    unlink(path);
    static char data[FS_LEN];
    for (unsigned i = 0; i < FS_LEN; i++) data[i] = (char)('a' + i % 26);
    CU_ASSERT_FATAL(write(fd, data, FS_LEN) == (ssize_t)FS_LEN);
    fst.file_fd = fd;

    struct iox_http_config hcfg = {.idle_timeout_ms = 1000, .linger_ms = 100, .max_conns = 2,
                                   .write_cap = 1 << 20, .app = &fs_app};
    struct sim_world sw;      /* tests/sim_world.h: simulator, reactor, clock */
    struct iox_http_server *hs;
    CU_ASSERT_FATAL(sw_open(&sw, 4, 4096, 500) == 0);
    CU_ASSERT_FATAL(sw.r.seam == iox_sim_seam(sw.sim));   /* the reactor runs on the simulator */
    struct iox_seam_sim *sim = sw.sim;
    CU_ASSERT_FATAL(iox_http_server_open(&sw.r, &hcfg, 0, &hs) == 0);
    CU_ASSERT_FATAL(iox_file_streams_init(hs) == 0);
    file_stream_trace = fs_trace;
    struct iox_conn *c = iox_http_adopt(hs, FS_FD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    struct iox_file_stream *st = &iox_file_streams_of(&sw.r)->s[c->sk.idx];

    sw_turn(&sw);   /* arms the recv */
    static const char req[] = "GET /hold HTTP/1.1\r\nHost: t\r\n\r\nGET /file HTTP/1.1\r\nHost: t\r\n\r\n";
    CU_ASSERT_EQUAL(iox_sim_recv(sim, FS_FD, req, sizeof req - 1, 0), (long)(sizeof req - 1));
    sw_turn(&sw);
    /* Behind /hold: started, but idle with no read queued. */
    CU_ASSERT_TRUE(fst.have_held);
    CU_ASSERT_EQUAL(iox_file_streams_of(&sw.r)->n_started, 1);
    CU_ASSERT_EQUAL(st->state, FILE_STREAM_S_IDLE);
    CU_ASSERT_TRUE(st->active);
    CU_ASSERT_EQUAL(iox_sim_reads(sim), 0);
    CU_ASSERT_EQUAL(fst.taken[FILE_STREAM_S_IDLE][FILE_STREAM_EV_START], 0);

    /* /hold is answered; once it is sent, the drain hook starts the stream. */
    struct iox_conn *hc = iox_conn_deref(fst.held);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hc);
    CU_ASSERT_EQUAL(iox_resp_simple(hc, 200, "text/plain", "held", 4), 0);
    iox_conn_async_done(hc);
    sw_turn(&sw);
    for (int guard = 0; guard < 100 && fst.ends == 0; guard++) {
        if (iox_sim_has_op(sim, IOX_OP_SEND, FS_FD)) {
            iox_sim_send(sim, FS_FD, 0);
        } else if (iox_sim_reads(sim)) {
            CU_ASSERT_EQUAL(iox_sim_read_complete(sim, 0, (size_t)-1, 0, NULL), 0);
        } else {
            break;
        }
        sw_turn(&sw);
    }
    while (iox_sim_has_op(sim, IOX_OP_SEND, FS_FD)) {
        iox_sim_send(sim, FS_FD, 0);
        sw_turn(&sw);
    }
    CU_ASSERT_EQUAL(fst.ends, 1);
    CU_ASSERT_EQUAL(fst.end_err, 0);
    CU_ASSERT_EQUAL(st->state, FILE_STREAM_S_DONE);
    CU_ASSERT_EQUAL(fst.taken[FILE_STREAM_S_IDLE][FILE_STREAM_EV_DRAINED], 1);
    CU_ASSERT_EQUAL(fst.taken[FILE_STREAM_S_READING][FILE_STREAM_EV_READ_DONE], 3);
    CU_ASSERT_EQUAL(fst.taken[FILE_STREAM_S_SENDING][FILE_STREAM_EV_DRAINED], 2);

    /* On the wire: the held answer, then the file's head and every byte. */
    size_t n;
    const char *out = iox_sim_peer_bytes(sim, FS_FD, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    const char *held = memmem(out, n, "\r\n\r\nheld", 8);
    const char *head2 = memmem(out, n, "Content-Length: 10000\r\n", 23);
    CU_ASSERT_PTR_NOT_NULL(held);
    CU_ASSERT_PTR_NOT_NULL_FATAL(head2);
    CU_ASSERT_TRUE(held && held < head2);
    const char *body = memmem(head2, n - (size_t)(head2 - out), "\r\n\r\n", 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    body += 4;
    CU_ASSERT_EQUAL((size_t)(out + n - body), FS_LEN);
    CU_ASSERT(out + n - body == FS_LEN && memcmp(body, data, FS_LEN) == 0);

    file_stream_trace = NULL;
    iox_file_streams_fini(&sw.r);
    iox_http_server_close(hs);
    sw_close(&sw);
    close(fd);
}

/* A stream of zero bytes ends at once, with no read (and no splice) on the
 * ring: nothing to wait for, nothing to hand back. */
IOX_TEST(file_stream, zero_length_ends_without_a_read)
{
    memset(&fst, 0, sizeof fst);
    char path[] = "/tmp/iox_file_stream.XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    unlink(path);
    fst.file_fd = fd;
    struct iox_http_config hcfg = {.idle_timeout_ms = 1000, .linger_ms = 100, .max_conns = 2,
                                   .write_cap = 1 << 20, .app = &fs_app};
    struct sim_world sw;      /* tests/sim_world.h: simulator, reactor, clock */
    struct iox_http_server *hs;
    CU_ASSERT_FATAL(sw_open(&sw, 4, 4096, 500) == 0);
    CU_ASSERT_FATAL(sw.r.seam == iox_sim_seam(sw.sim));   /* the reactor runs on the simulator */
    struct iox_seam_sim *sim = sw.sim;
    CU_ASSERT_FATAL(iox_http_server_open(&sw.r, &hcfg, 0, &hs) == 0);
    CU_ASSERT_FATAL(iox_file_streams_init(hs) == 0);
    struct iox_conn *c = iox_http_adopt(hs, FS_FD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    sw_turn(&sw);
    static const char req[] = "GET /empty HTTP/1.1\r\nHost: t\r\n\r\n";
    CU_ASSERT_EQUAL(iox_sim_recv(sim, FS_FD, req, sizeof req - 1, 0), (long)(sizeof req - 1));
    sw_turn(&sw);
    CU_ASSERT_EQUAL(iox_sim_reads(sim), 0);
    CU_ASSERT_EQUAL(fst.ends, 1);
    CU_ASSERT_EQUAL(fst.end_err, 0);
    while (iox_sim_has_op(sim, IOX_OP_SEND, FS_FD)) { iox_sim_send(sim, FS_FD, 0); sw_turn(&sw); }
    size_t n;
    const char *out = iox_sim_peer_bytes(sim, FS_FD, &n);
    CU_ASSERT(n > 4 && memmem(out, n, "Content-Length: 0\r\n", 19) && !memcmp(out + n - 4, "\r\n\r\n", 4));
    CU_ASSERT_EQUAL(iox_sim_reads(sim), 0);
    iox_file_streams_fini(&sw.r);
    iox_http_server_close(hs);
    sw_close(&sw);
    close(fd);
}

IOX_SUITE(file_stream, NULL, NULL);
