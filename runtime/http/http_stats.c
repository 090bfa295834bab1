/* http_stats.c — per-reactor counters in Prometheus text format at
 * iox_http_config.stats_path (IOX_STATS_PATH).
 *
 * The reactor that receives the request asks every reactor (itself
 * included, through its own ring) for a snapshot with one ring message
 * each (IOX_MSG_STATS); each fills in its counters and sends the message
 * back; when the last one is home the answer is written. No lock, no shared
 * counter: every number is read on the thread that owns it. A reactor that
 * cannot be reached (its ring gone) is reported as missing. The messages
 * and the gathering belong to the asking reactor and are freed only there
 * (struct iox_msg's ownership rule). Not the hot path: malloc is fine. */
#include "conn_internal.h"
#include <ioxide/http_server.h>
#include <ioxide/log.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stats_snap {
    uint64_t accepted, open, requests, closed, enobufs, stale, timeouts, cqes, enters, msgs, msg_rings;
    uint64_t status[6];           /* answers by status class: 1xx .. 5xx (index 1..5) */
    uint64_t bytes_in, bytes_out;
    struct iox_counter kc[48];    /* every other kind's (pg pools, streams, clients) */
    unsigned nkc;
    uint8_t valid;
};

struct stats_gather {
    struct iox_conn_ref ref;
    unsigned want, got;
    struct stats_snap snap[];     /* one per reactor */
};

struct stats_msg {
    struct iox_msg m;             /* first: the runtime sees this */
    struct stats_gather *g;
    uint16_t origin, reply;
    struct stats_snap snap;
};

/* Everything this reactor counts: its HTTP servers and its loop. */
static void snapshot(struct iox_reactor *r, struct stats_snap *s)
{
    memset(s, 0, sizeof *s);
    for (unsigned i = 0; i < r->nlisteners; i++) {
        struct iox_http_server *hs = iox_http_server_of(r, i);
        if (!hs) continue;
        s->accepted += hs->n_accepted;
        s->open += hs->nconns;
        s->requests += hs->n_requests;
        s->closed += hs->n_closed;
        s->enobufs += hs->n_enobufs;
        s->stale += hs->n_stale_cqes;
        s->timeouts += hs->n_timeouts;
        s->bytes_in += hs->n_bytes_in;
        s->bytes_out += hs->n_bytes_out;
        for (int k = 1; k <= 5; k++) s->status[k] += hs->n_status[k];
    }
    s->cqes = r->n_cqes;
    s->enters = r->n_enters;
    s->msgs = r->n_msgs_sent;
    s->msg_rings = r->n_msg_batches;
    s->nkc = iox_reactor_counters(r, s->kc, sizeof s->kc / sizeof s->kc[0]);
    s->valid = 1;
}

/* A kind's counter of that name in a reactor's snapshot, or NULL. */
static const struct iox_counter *find_counter(const struct stats_snap *s, const char *name)
{
    for (unsigned l = 0; s->valid && l < s->nkc; l++)
        if (!strcmp(s->kc[l].name, name)) return &s->kc[l];
    return NULL;
}

static void put(char **p, char *end, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put(char **p, char *end, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*p, (size_t)(end - *p), fmt, ap);
    va_end(ap);
    if (n > 0) *p += (size_t)n < (size_t)(end - *p) ? (size_t)n : (size_t)(end - *p);
}

static void answer(struct stats_gather *g)
{
    struct iox_conn *c = iox_conn_deref(g->ref);
    if (c) {
        size_t cap = 4096 + (size_t)g->want * 6144;
        char *buf = malloc(cap), *p = buf, *end = buf + cap;
        if (!buf) {
            iox_resp_simple(c, 503, "text/plain", "out of memory\n", 14);
        } else {
            static const struct { const char *name, *type, *help; size_t off; } m[] = {
#define F(x) offsetof(struct stats_snap, x)
                {"ioxide_http_accepted_total", "counter", "Connections accepted.", F(accepted)},
                {"ioxide_http_connections_open", "gauge", "Connections open now.", F(open)},
                {"ioxide_http_requests_total", "counter", "Requests answered.", F(requests)},
                {"ioxide_http_closed_total", "counter", "Connections closed.", F(closed)},
                {"ioxide_http_timeouts_total", "counter", "Connections closed by a deadline (idle, stuck request, not reading).", F(timeouts)},
                {"ioxide_http_enobufs_total", "counter", "Receive re-arms after the provided buffer ring ran dry.", F(enobufs)},
                {"ioxide_http_stale_cqes_total", "counter", "Completions for connections already closed (dropped).", F(stale)},
                {"ioxide_http_received_bytes_total", "counter", "Bytes received from clients.", F(bytes_in)},
                {"ioxide_http_sent_bytes_total", "counter", "Bytes sent to clients.", F(bytes_out)},
                {"ioxide_reactor_cqes_total", "counter", "Completions reaped by the reactor's loop.", F(cqes)},
                {"ioxide_reactor_enters_total", "counter", "Kernel entries (io_uring_submit_and_wait) of the loop.", F(enters)},
                {"ioxide_reactor_msgs_sent_total", "counter", "Messages sent to reactors (hops, gathering).", F(msgs)},
                {"ioxide_reactor_msg_rings_total", "counter", "MSG_RINGs that carried them: one per destination per loop turn.", F(msg_rings)},
#undef F
            };
            put(&p, end, "# HELP ioxide_reactor_up 1 when the reactor answered this scrape.\n# TYPE ioxide_reactor_up gauge\n");
            for (unsigned i = 0; i < g->want; i++) put(&p, end, "ioxide_reactor_up{reactor=\"%u\"} %d\n", i, g->snap[i].valid);
            for (size_t k = 0; k < sizeof m / sizeof *m; k++) {
                put(&p, end, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help, m[k].name, m[k].type);
                for (unsigned i = 0; i < g->want; i++) {
                    if (!g->snap[i].valid) continue;
                    uint64_t v;
                    memcpy(&v, (const char *)&g->snap[i] + m[k].off, sizeof v);
                    put(&p, end, "%s{reactor=\"%u\"} %" PRIu64 "\n", m[k].name, i, v);
                }
            }
            put(&p, end, "# HELP ioxide_http_responses_total Answers by status class.\n# TYPE ioxide_http_responses_total counter\n");
            for (unsigned i = 0; i < g->want; i++)
                for (int k = 1; k <= 5 && g->snap[i].valid; k++)
                    put(&p, end, "ioxide_http_responses_total{reactor=\"%u\",class=\"%dxx\"} %" PRIu64 "\n", i, k,
                        g->snap[i].status[k]);
            /* The other kinds' counters, one group per name (Prometheus
             * wants a metric's samples together), reactors in order. Names
             * are unique within a reactor (iox_reactor_counters sums them),
             * so a name is new when no earlier reactor had it. */
            for (unsigned i = 0; i < g->want; i++) {
                for (unsigned k = 0; g->snap[i].valid && k < g->snap[i].nkc; k++) {
                    const struct iox_counter *kc = &g->snap[i].kc[k];
                    int seen = 0;
                    for (unsigned j = 0; j < i && !seen; j++) seen = find_counter(&g->snap[j], kc->name) != NULL;
                    if (seen) continue;
                    put(&p, end, "# HELP %s %s\n# TYPE %s %s\n", kc->name, kc->help, kc->name,
                        kc->gauge ? "gauge" : "counter");
                    for (unsigned j = i; j < g->want; j++) {
                        const struct iox_counter *v = find_counter(&g->snap[j], kc->name);
                        if (v) put(&p, end, "%s{reactor=\"%u\"} %" PRIu64 "\n", kc->name, j, v->value);
                    }
                }
            }
            iox_resp_simple(c, 200, "text/plain; version=0.0.4; charset=utf-8", buf, (size_t)(p - buf));
            free(buf);
        }
        iox_conn_async_done(c);
    }
    free(g);
}

static void on_stats_msg(struct iox_reactor *r, struct iox_msg *msg)
{
    struct stats_msg *m = (struct stats_msg *)msg;
    if (!m->reply && msg->status == 0) {          /* on the asked reactor */
        snapshot(r, &m->snap);
        m->reply = 1;
        iox_reactor_send_msg(r, m->origin, &m->m);
        return;
    }
    /* Home (answered, or bounced: the target could not be reached). */
    struct stats_gather *g = m->g;
    if (msg->status == 0 && m->m.from < g->want) g->snap[m->m.from] = m->snap;
    else if (msg->status < 0) IOX_WARN("stats: reactor %u unreachable: %s", m->m.to, strerror(-msg->status));
    free(m);
    if (++g->got == g->want) answer(g);
}

static int stats_request(struct iox_conn *c, const struct iox_http_request *req)
{
    if (req->method_id != IOX_HTTP_GET && req->method_id != IOX_HTTP_HEAD) {
        iox_resp_simple_ex(c, 405, "text/plain", "Allow: GET, HEAD\r\n", "method not allowed\n", 19);
        return IOX_HANDLED;
    }
    struct iox_reactor *r = c->r;
    struct stats_gather *g = calloc(1, sizeof *g + r->nreactors * sizeof g->snap[0]);
    if (!g) {
        iox_resp_simple(c, 503, "text/plain", "out of memory\n", 14);
        return IOX_HANDLED;
    }
    g->ref = iox_conn_ref(c);
    g->want = r->nreactors;
    unsigned sent = 0;
    for (unsigned i = 0; i < r->nreactors; i++) {
        struct stats_msg *m = calloc(1, sizeof *m);
        if (!m) { g->want = sent; break; }
        m->m.kind = IOX_MSG_STATS;
        m->g = g;
        m->origin = (uint16_t)r->id;
        iox_reactor_send_msg(r, i, &m->m);
        sent++;
    }
    if (!sent) {
        free(g);
        iox_resp_simple(c, 503, "text/plain", "out of memory\n", 14);
        return IOX_HANDLED;
    }
    return IOX_ASYNC;
}

/* The application the server runs when stats are on: the stats path,
 * else the configured application. */
static int with_stats(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    struct iox_http_server *hs = ctx;
    size_t n = strlen(hs->stats_path);
    if (req->path_len == n && !memcmp(req->path, hs->stats_path, n)) return stats_request(c, req);
    return hs->user_app->on_request(c, req, hs->user_ctx);
}
static const struct iox_http_app with_stats_app = {with_stats};

int iox_http_stats_enable(struct iox_http_server *hs)
{
    if (!hs->cfg.stats_path || !*hs->cfg.stats_path) return 0;
    hs->stats_path = hs->cfg.stats_path;
    hs->user_app = hs->cfg.app;
    hs->user_ctx = hs->cfg.app_ctx;
    hs->cfg.app = &with_stats_app;
    hs->cfg.app_ctx = hs;
    return iox_reactor_on_msg(hs->r, IOX_MSG_STATS, on_stats_msg);
}
