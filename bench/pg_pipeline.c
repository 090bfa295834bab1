/* pg_pipeline.c — the PostgreSQL ceiling for the bench's pg row: libpq
 * pipeline mode, one Sync per query (each query its own implicit
 * transaction, as pg mode sends them), N connections each keeping DEPTH
 * queries of a prepared `SELECT 42` in flight, for SECONDS.
 *
 *   build/pg_pipeline CONNS DEPTH SECONDS     (connection from PG* env)
 *
 * Prints one line: `queries N seconds S qps Q errors E`. Exit 0 when every
 * query answered 42 and none failed, 1 otherwise (the bench discards the
 * run). One thread, non-blocking libpq connections multiplexed with poll():
 * the same single-core client shape as the playground. */
#include <libpq-fe.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXC 64

struct pconn {
    PGconn *c;
    unsigned outstanding;   /* queries sent whose PIPELINE_SYNC has not come back */
    int want_write;         /* PQflush said more is queued */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int send_one(struct pconn *p)
{
    if (!PQsendQueryPrepared(p->c, "s42", 0, NULL, NULL, NULL, 0) || !PQpipelineSync(p->c)) {
        fprintf(stderr, "pg_pipeline: send: %s", PQerrorMessage(p->c));
        return -1;
    }
    p->outstanding++;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s CONNS DEPTH SECONDS (connection settings from PGHOST, PGPORT, ...)\n", argv[0]);
        return 2;
    }
    unsigned nc = (unsigned)atoi(argv[1]), depth = (unsigned)atoi(argv[2]);
    double secs = atof(argv[3]);
    if (nc < 1 || nc > MAXC || depth < 1 || depth > 100000 || secs <= 0) {
        fprintf(stderr, "pg_pipeline: CONNS in 1..%d, DEPTH >= 1, SECONDS > 0\n", MAXC);
        return 2;
    }
    struct pconn pc[MAXC];
    struct pollfd pf[MAXC];
    for (unsigned i = 0; i < nc; i++) {
        pc[i].c = PQconnectdb("");
        if (PQstatus(pc[i].c) != CONNECTION_OK) {
            fprintf(stderr, "pg_pipeline: connect: %s", PQerrorMessage(pc[i].c));
            return 1;
        }
        PGresult *r = PQprepare(pc[i].c, "s42", "SELECT 42", 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "pg_pipeline: prepare: %s", PQerrorMessage(pc[i].c));
            return 1;
        }
        PQclear(r);
        if (PQsetnonblocking(pc[i].c, 1) != 0 || !PQenterPipelineMode(pc[i].c)) {
            fprintf(stderr, "pg_pipeline: pipeline mode: %s", PQerrorMessage(pc[i].c));
            return 1;
        }
        pc[i].outstanding = 0;
        pc[i].want_write = 0;
    }
    unsigned long long done = 0, errors = 0;
    double t0 = now_s(), end = t0 + secs;
    int stopping = 0;
    for (;;) {
        int active = 0;
        for (unsigned i = 0; i < nc; i++) {
            struct pconn *p = &pc[i];
            while (!stopping && p->outstanding < depth)
                if (send_one(p) < 0) return 1;
            int f = PQflush(p->c);
            if (f < 0) { fprintf(stderr, "pg_pipeline: flush: %s", PQerrorMessage(p->c)); return 1; }
            p->want_write = f == 1;
            pf[i].fd = PQsocket(p->c);
            pf[i].events = POLLIN | (p->want_write ? POLLOUT : 0);
            pf[i].revents = 0;
            if (p->outstanding) active = 1;
        }
        if (stopping && !active) break;
        if (poll(pf, nc, 1000) < 0 && errno != EINTR) { perror("pg_pipeline: poll"); return 1; }
        for (unsigned i = 0; i < nc; i++) {
            struct pconn *p = &pc[i];
            if (!(pf[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
            if (!PQconsumeInput(p->c)) { fprintf(stderr, "pg_pipeline: input: %s", PQerrorMessage(p->c)); return 1; }
            /* Per query: its result, a NULL, then the PIPELINE_SYNC. With
             * nothing pending PQgetResult would return NULL forever: only
             * read while a query is outstanding. */
            while (p->outstanding && !PQisBusy(p->c)) {
                PGresult *r = PQgetResult(p->c);
                if (!r) continue;
                switch (PQresultStatus(r)) {
                case PGRES_PIPELINE_SYNC:
                    p->outstanding--;
                    done++;
                    break;
                case PGRES_TUPLES_OK:
                    if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), "42")) errors++;
                    break;
                default:
                    if (errors++ < 3) fprintf(stderr, "pg_pipeline: query: %s", PQresultErrorMessage(r));
                    break;
                }
                PQclear(r);
            }
        }
        if (!stopping && now_s() >= end) stopping = 1;
    }
    double el = now_s() - t0;
    printf("queries %llu seconds %.3f qps %.1f errors %llu\n", done, el, (double)done / el, errors);
    for (unsigned i = 0; i < nc; i++) PQfinish(pc[i].c);
    return errors ? 1 : 0;
}
