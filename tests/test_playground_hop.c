/* test_playground_hop.c — hop mode over real sockets: GET / is produced on
 * another reactor (IORING_OP_MSG_RING there and back) and answered on the
 * one that accepted it. Checked: the body names two reactors and they differ
 * when there are several; every answer arrives complete and in order under
 * concurrent pipelined load with 2 and 4 reactors; SIGTERM while hops are in
 * flight (messages to reactors that are shutting down) loses nothing. */
#include "iox_test.h"
#include "http_client.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char GET_ROOT[] = "GET / HTTP/1.1\r\nHost: hop\r\n\r\n";

/* Parses "hop=A->B"; returns 1 with *a, *b set when well formed. */
static int parse_hop(const char *body, size_t len, unsigned *a, unsigned *b)
{
    char tail;
    char buf[64];
    if (len >= sizeof buf) return 0;
    memcpy(buf, body, len);
    buf[len] = 0;
    return sscanf(buf, "hop=%u->%u%c", a, b, &tail) == 2;
}

struct hop_worker {
    pthread_t th;
    uint16_t port;
    unsigned reactors, rounds, depth;
    volatile int *stop;          /* NULL: run `rounds` rounds */
    /* results */
    unsigned long answers, bad, same, truncated, errors;
    unsigned seen_from, seen_to; /* bit sets */
};

static void *hop_worker_main(void *arg)
{
    struct hop_worker *w = arg;
    struct hc_conn c;
    if (hc_connect(&c, w->port, 3000) != 0) { w->errors++; return NULL; }
    char batch[64 * sizeof GET_ROOT];
    size_t n = 0;
    for (unsigned i = 0; i < w->depth; i++) {
        memcpy(batch + n, GET_ROOT, sizeof GET_ROOT - 1);
        n += sizeof GET_ROOT - 1;
    }
    for (unsigned r = 0; w->stop ? !*w->stop : r < w->rounds; r++) {
        if (hc_send(&c, batch, n) != 0) { if (!w->stop) w->errors++; break; }
        for (unsigned i = 0; i < w->depth; i++) {
            struct hc_response resp;
            int rc = hc_read_response(&c, &resp, 0);
            if (rc != HC_OK) {
                /* Around SIGTERM the server may end the stream between
                 * answers (EOF); a cut answer is a failure. */
                if (rc == HC_EOF && w->stop) goto out;
                if (w->stop && c.eof && hc_pending(&c) == 0) goto out;
                if (w->stop && rc != HC_TRUNCATED) goto out;
                w->truncated += rc == HC_TRUNCATED;
                w->errors += rc != HC_TRUNCATED;
                goto out;
            }
            unsigned a, b;
            if (resp.status != 200 || !parse_hop(resp.body, resp.body_len, &a, &b) ||
                a >= w->reactors || b >= w->reactors) {
                w->bad++;
            } else {
                if (w->reactors > 1 && a == b) w->same++;
                w->seen_from |= 1u << a;
                w->seen_to |= 1u << b;
                w->answers++;
            }
            hc_response_free(&resp);
            if (resp.conn_close) goto out;
        }
    }
out:
    hc_close(&c);
    return NULL;
}

static void run_hop_load(unsigned reactors)
{
    char env_r[32];
    snprintf(env_r, sizeof env_r, "REACTORS=%u", reactors);
    const char *env[] = {"PLAYGROUND_MODE=hop", env_r, NULL};
    struct hc_server s;
    if (hc_server_start(&s, env) != 0) { CU_FAIL("start the hop playground"); return; }
    enum { W = 16 };
    struct hop_worker ws[W];
    memset(ws, 0, sizeof ws);
    for (int i = 0; i < W; i++) {
        ws[i].port = s.port;
        ws[i].reactors = reactors;
        ws[i].rounds = 200;
        ws[i].depth = 8;
        pthread_create(&ws[i].th, NULL, hop_worker_main, &ws[i]);
    }
    unsigned long answers = 0, bad = 0, same = 0, trunc = 0, errors = 0;
    unsigned from = 0, to = 0;
    for (int i = 0; i < W; i++) {
        pthread_join(ws[i].th, NULL);
        answers += ws[i].answers;
        bad += ws[i].bad;
        same += ws[i].same;
        trunc += ws[i].truncated;
        errors += ws[i].errors;
        from |= ws[i].seen_from;
        to |= ws[i].seen_to;
    }
    CU_ASSERT_EQUAL(answers, (unsigned long)W * 200 * 8);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(same, 0);        /* with several reactors, never itself */
    CU_ASSERT_EQUAL(trunc, 0);
    CU_ASSERT_EQUAL(errors, 0);
    /* Every reactor produced answers for others (round robin spreads). */
    CU_ASSERT_EQUAL(to, (1u << reactors) - 1);
    if (to != (1u << reactors) - 1) fprintf(stderr, "\n  reactors %u: origins 0x%x targets 0x%x\n", reactors, from, to);
    CU_ASSERT(from != 0);
    long ms;
    CU_ASSERT_EQUAL(hc_server_stop(&s, &ms), 0);
    if (to != (1u << reactors) - 1) { char *e = hc_server_stderr(&s); fprintf(stderr, "%s\n", e); free(e); }
    hc_server_free(&s);
}

IOX_TEST(playground_hop, two_reactors_under_pipelined_load) { run_hop_load(2); }
IOX_TEST(playground_hop, four_reactors_under_pipelined_load) { run_hop_load(4); }

IOX_TEST(playground_hop, one_reactor_hops_to_itself_and_404_elsewhere)
{
    const char *env[] = {"PLAYGROUND_MODE=hop", "REACTORS=1", NULL};
    struct hc_server s;
    if (hc_server_start(&s, env) != 0) { CU_FAIL("start the hop playground"); return; }
    struct hc_conn c;
    CU_ASSERT_FATAL(hc_connect(&c, s.port, 3000) == 0);
    struct hc_response r;
    CU_ASSERT_EQUAL_FATAL(hc_roundtrip(&c, GET_ROOT, &r, 0), HC_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(r.body_len == 8 && !memcmp(r.body, "hop=0->0", 8));
    hc_response_free(&r);
    CU_ASSERT_EQUAL_FATAL(hc_roundtrip(&c, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n", &r, 0), HC_OK);
    CU_ASSERT_EQUAL(r.status, 404);
    hc_response_free(&r);
    /* HEAD goes through the hop too, and carries no body. */
    CU_ASSERT_EQUAL_FATAL(hc_roundtrip(&c, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", &r, 1), HC_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_len, 0);
    CU_ASSERT_EQUAL(r.content_length, 8);
    hc_response_free(&r);
    hc_close(&c);
    long ms;
    CU_ASSERT_EQUAL(hc_server_stop(&s, &ms), 0);
    hc_server_free(&s);
}

/* SIGTERM while hops are in flight between 4 reactors: reactors stop at
 * different moments, and a stopped reactor must still answer the hops sent
 * to it until every reactor is done. No answer may be cut or lost to a
 * hang; the server exits 0 within 5 s. */
IOX_TEST(playground_hop, sigterm_with_hops_in_flight)
{
    const char *env[] = {"PLAYGROUND_MODE=hop", "REACTORS=4", NULL};
    struct hc_server s;
    if (hc_server_start(&s, env) != 0) { CU_FAIL("start the hop playground"); return; }
    enum { W = 12 };
    struct hop_worker ws[W];
    volatile int stop = 0;
    memset(ws, 0, sizeof ws);
    for (int i = 0; i < W; i++) {
        ws[i].port = s.port;
        ws[i].reactors = 4;
        ws[i].depth = 16;
        ws[i].stop = &stop;
        pthread_create(&ws[i].th, NULL, hop_worker_main, &ws[i]);
    }
    usleep(300 * 1000);
    long ms = 0;
    int st = hc_server_stop(&s, &ms);
    stop = 1;
    unsigned long answers = 0, bad = 0, trunc = 0;
    for (int i = 0; i < W; i++) {
        pthread_join(ws[i].th, NULL);
        answers += ws[i].answers;
        bad += ws[i].bad;
        trunc += ws[i].truncated;
    }
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT(ms < 5000);
    CU_ASSERT(answers > 100);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(trunc, 0);
    if (st != 0) {
        char *e = hc_server_stderr(&s);
        fprintf(stderr, "\n%s\n", e);
        free(e);
    }
    hc_server_free(&s);
}

IOX_SUITE(playground_hop, NULL, NULL);
