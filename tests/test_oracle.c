/* test_oracle.c — the independent HTTP response model (http_oracle.c) must
 * itself be able to fail: each case hands it a response stream with one
 * fault of the kind the simulations have to catch, and a correct stream it
 * must accept. */
#include "http_oracle.h"
#include "iox_test.h"
#include <string.h>

#define DATE "Date: Wed, 02 Dec 2026 03:00:00 GMT\r\n"
#define OK2 "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 2\r\n\r\nok"

static int by_path(const struct oracle_req *rq, struct oracle_expect *ex, void *arg)
{
    (void)arg;
    if (!strcmp(rq->target, "/")) { *ex = (struct oracle_expect){200, "ok", 2, 0}; return 0; }
    if (!strcmp(rq->target, "/a")) { *ex = (struct oracle_expect){200, "a", 1, 0}; return 0; }
    if (!strcmp(rq->target, "/b")) { *ex = (struct oracle_expect){200, "b", 1, 0}; return 0; }
    if (!strcmp(rq->target, "/echo")) { *ex = (struct oracle_expect){200, rq->body, rq->body_len, 0}; return 0; }
    return -1;
}

static int check(const char *req, const char *resp, unsigned flags, char *why)
{
    return http_oracle_check(req, strlen(req), resp, strlen(resp), by_path, NULL, flags, why, 256);
}

#define GET(p) "GET " p " HTTP/1.1\r\nHost: a\r\n\r\n"

IOX_TEST(oracle, accepts_correct_streams)
{
    char why[256];
    CU_ASSERT_EQUAL(check(GET("/") GET("/"), OK2 OK2, 0, why), 2);
    /* HEAD: Content-Length of the GET, no content. */
    CU_ASSERT_EQUAL(check("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" GET("/"),
                          "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 2\r\n\r\n" OK2, 0, why), 2);
    /* A chunked echo of a chunked request, trailers on both. */
    CU_ASSERT_EQUAL(check("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
                          "HTTP/1.1 200 OK\r\n" DATE "Transfer-Encoding: chunked\r\n\r\n"
                          "5\r\nabcde\r\n0\r\nX-T: 2\r\n\r\n", 0, why), 1);
    /* An interim 100 before the final answer. */
    CU_ASSERT_EQUAL(check("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nxyz",
                          "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n" DATE "Content-Length: 3\r\n\r\nxyz", 0, why), 1);
    /* HTTP/1.0 keep-alive, then a close. */
    CU_ASSERT_EQUAL(check("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
                          "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
                          "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 2\r\nConnection: close\r\n\r\nok", 0, why), 2);
    /* A malformed request: 400 with close, nothing after. */
    CU_ASSERT_EQUAL(check(GET("/") "BAD\r\n\r\n",
                          OK2 "HTTP/1.1 400 Bad Request\r\n" DATE "Content-Length: 0\r\nConnection: close\r\n\r\n", 0, why), 2);
    /* Partial: a cut second answer is fine when the exchange ended early. */
    CU_ASSERT_EQUAL(check(GET("/") GET("/"), OK2 "HTTP/1.1 200 OK\r\nDa", ORACLE_PARTIAL, why), 1);
}

IOX_TEST(oracle, rejects_each_fault)
{
    static const struct { const char *req, *resp, *why; } bad[] = {
        {GET("/") GET("/"), "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 3\r\n\r\nok" OK2, "Content-Length one too large"},
        {GET("/") GET("/"), "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 1\r\n\r\nok" OK2, "Content-Length one too small"},
        {"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" GET("/"), OK2 OK2, "a body on HEAD"},
        {GET("/"), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "no Date"},
        {GET("/"), "HTTP/1.1 200 OK\r\nDate: yesterday\r\nContent-Length: 2\r\n\r\nok", "a Date that is no IMF-fixdate"},
        {GET("/"), "HTTP/1.1 201 OK\r\n" DATE "Content-Length: 2\r\n\r\nok", "a wrong reason phrase"},
        {GET("/a") GET("/b"), "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 1\r\n\r\nb"
                              "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 1\r\n\r\na", "answers reordered"},
        {GET("/") GET("/"), OK2, "an answer missing"},
        {GET("/"), OK2 OK2, "an answer too many"},
        {GET("/") GET("/"), "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 2\r\nConnection: close\r\n\r\nok" OK2,
         "bytes after Connection: close"},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", OK2, "a close the answer does not announce"},
        {GET("/"), "HTTP/1.1 204 No Content\r\n" DATE "Content-Length: 2\r\n\r\n", "Content-Length on 204"},
        {GET("/"), "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok",
         "Content-Length with Transfer-Encoding"},
        {GET("/"), "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 2\r\nContent-Length: 2\r\n\r\nok", "two Content-Lengths"},
        {GET("/"), "HTTP/1.1 200 OK\r\n" DATE "Transfer-Encoding: chunked\r\n\r\n2\r\nok0\r\n\r\n", "chunk data not ended by CRLF"},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
         "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 2\r\n\r\nok" OK2, "1.0 kept open without keep-alive"},
        {GET("/") "BAD\r\n\r\n", OK2 OK2, "a malformed request answered 200"},
        {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz",
         "HTTP/1.1 200 OK\r\n" DATE "Content-Length: 3\r\n\r\nxyy", "an echo that changed a byte"},
        {GET("/"), "HTTP/1.1 200 OK\r\n" DATE "Bad Header\r\nContent-Length: 2\r\n\r\nok", "a header line without a colon"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[256];
        int rc = check(bad[i].req, bad[i].resp, 0, why);
        CU_ASSERT_EQUAL(rc, -1);
        if (rc != -1) fprintf(stderr, "\n  oracle accepted: %s\n", bad[i].why);
        else CU_ASSERT(why[0] != 0);
    }
}
IOX_SUITE(oracle, NULL, NULL);
