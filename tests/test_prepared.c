/* test_prepared.c — iox_resp_send_prepared writes what iox_resp_simple
 * writes, byte for byte: the same request stream is answered once with
 * iox_resp_simple and once with prepared answers (the reactor's cached
 * copy), over the simulated ring, and the two byte streams must be equal.
 * The stream walks every input of the cache key: HEAD, HTTP/1.0 with and
 * without keep-alive, Connection: close on the last request, two prepared
 * answers alternating (the cache thrashes), a bodiless status, an answer
 * written behind an async one (a side buffer), and the Date line changed
 * between two bursts (tests set it by hand, so only its content tells). */
#include "iox_test.h"
#include "sim_world.h"
#include <ioxide/http_conn.h>
#include <ioxide/http_server.h>
#include <ioxide/seam_sim.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD 9

static int use_prepared;
static struct iox_resp_prepared p_ok, p_nf, p_204;
static struct iox_conn_ref held;
static int have_held;

/* The answer both runs agree on, by path; /async is answered later. */
static void answer(struct iox_conn *c, const char *path, size_t n)
{
    const struct iox_resp_prepared *p = &p_ok;
    if (n == 3 && !memcmp(path, "/nf", 3)) p = &p_nf;
    else if (n == 4 && !memcmp(path, "/204", 4)) p = &p_204;
    int rc = use_prepared ? iox_resp_send_prepared(c, p)
                          : iox_resp_simple(c, p->status, p->ctype, p->body, p->body_len);
    CU_ASSERT_EQUAL(rc, 0);
}

static int app_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)ctx;
    if (req->path_len == 6 && !memcmp(req->path, "/async", 6)) {
        held = iox_conn_ref(c);
        have_held = 1;
        return IOX_ASYNC;
    }
    answer(c, req->path, req->path_len);
    return IOX_HANDLED;
}

static const struct iox_http_app app = {app_request};

/* Delivered in this order; the Date changes between burst 1 and 2. */
static const char BURST1[] =
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET /nf HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET /nf HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET /204 HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET /async HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
static const char BURST2[] =
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

/* One run: the bytes the peer got (malloc'd, *n long). */
static char *run(int prepared, size_t *n)
{
    use_prepared = prepared;
    have_held = 0;
    struct sim_world w;
    struct iox_http_config hcfg;
    struct iox_http_server *hs;
    memset(&hcfg, 0, sizeof hcfg);
    hcfg.idle_timeout_ms = 1000;
    hcfg.linger_ms = 100;
    hcfg.max_conns = 2;
    hcfg.app = &app;
    CU_ASSERT_FATAL(sw_open(&w, 64, 4096, 500) == 0);
    CU_ASSERT_FATAL(sw_http_open(&w, &hcfg, &hs) == 0);
    CU_ASSERT_FATAL(iox_http_adopt(hs, FD) != NULL);
    sw_turn(&w);
    CU_ASSERT_EQUAL(sw_deliver(&w, FD, BURST1, sizeof BURST1 - 1), 0);
    CU_ASSERT_FATAL(have_held);
    struct iox_conn *c = iox_conn_deref(held);
    CU_ASSERT_FATAL(c != NULL);
    answer(c, "/", 1);
    iox_conn_async_done(c);
    sw_turn(&w);
    sw_send_all(&w, FD, 1000);
    /* The next second: a cached answer must not keep the old Date. */
    snprintf(hs->date, sizeof hs->date, "Date: Thu, 01 Jan 2026 00:00:01 GMT\r\n");
    CU_ASSERT_EQUAL(sw_deliver(&w, FD, BURST2, sizeof BURST2 - 1), 0);
    sw_send_all(&w, FD, 1000);
    sw_http_peer_close(&w, hs, FD, 10000);
    CU_ASSERT_EQUAL(iox_sim_closes(w.sim, FD), 1);
    const char *out = iox_sim_peer_bytes(w.sim, FD, n);
    char *copy = malloc(*n + 1);
    CU_ASSERT_FATAL(copy != NULL);
    memcpy(copy, out, *n);
    copy[*n] = 0;
    iox_http_server_close(hs);
    sw_close(&w);
    return copy;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t k = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) k++;
    return k;
}

IOX_TEST(prepared, same_bytes_as_simple)
{
    CU_ASSERT_FATAL(iox_resp_prepare(&p_ok, 200, "text/plain", "ok", 2) == 0);
    CU_ASSERT_FATAL(iox_resp_prepare(&p_nf, 404, "text/plain", "not found\n", 10) == 0);
    CU_ASSERT_FATAL(iox_resp_prepare(&p_204, 204, "text/plain", "", 0) == 0);
    size_t sn, pn;
    char *simple = run(0, &sn);
    char *prep = run(1, &pn);
    /* The reference itself: 17 answers, the Date moved on for the last 3,
     * the 1.0 ones kept alive, the last one closing. */
    CU_ASSERT_EQUAL(count_of(simple, "HTTP/1.1 "), 17);
    CU_ASSERT_EQUAL(count_of(simple, "00:00:01 GMT"), 3);
    CU_ASSERT_EQUAL(count_of(simple, "Connection: keep-alive\r\n"), 2);
    CU_ASSERT_EQUAL(count_of(simple, "Connection: close\r\n"), 1);
    CU_ASSERT_EQUAL(pn, sn);
    CU_ASSERT(pn == sn && memcmp(prep, simple, sn) == 0);
    if (pn != sn || memcmp(prep, simple, sn))
        fprintf(stderr, "\n  iox_resp_simple:\n%s\n  prepared:\n%s\n", simple, prep);
    free(simple);
    free(prep);
}

IOX_TEST(prepared, prepare_refuses)
{
    struct iox_resp_prepared p;
    char big[IOX_RESP_PREPARED_BODY + 1];
    char ct[IOX_RESP_PREPARED_CTYPE + 1];
    memset(big, 'x', sizeof big);
    memset(ct, 'a', sizeof ct - 1);
    ct[sizeof ct - 1] = 0;
    CU_ASSERT_EQUAL(iox_resp_prepare(&p, 99, "text/plain", "", 0), -EINVAL);
    CU_ASSERT_EQUAL(iox_resp_prepare(&p, 600, "text/plain", "", 0), -EINVAL);
    CU_ASSERT_EQUAL(iox_resp_prepare(&p, 200, NULL, "", 0), -EINVAL);
    CU_ASSERT_EQUAL(iox_resp_prepare(&p, 200, ct, "", 0), -EINVAL);
    CU_ASSERT_EQUAL(iox_resp_prepare(&p, 200, "text/plain", big, sizeof big), -EINVAL);
    CU_ASSERT_EQUAL(iox_resp_prepare(&p, 200, "text/plain", big, sizeof big - 1), 0);
    struct iox_resp_prepared q;
    CU_ASSERT_EQUAL(iox_resp_prepare(&q, 200, "text/plain", big, sizeof big - 1), 0);
    CU_ASSERT(p.id != 0 && q.id != 0 && p.id != q.id);   /* the cache key tells them apart */
}

IOX_SUITE(prepared, NULL, NULL);
