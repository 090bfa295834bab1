/* resp_client.c — see resp_client.h. The framing is rbuf.c's
 * resp_reply_len; the kit does the rest (connect, backoff, FIFO matching,
 * one send per connection per turn). */
#include "resp_client.h"
#include "rbuf.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct resp_client {
    struct iox_client_pool *pool;
    struct rbuf req;             /* the request being encoded */
};

static long reply_len(const char *p, size_t n, void *ctx)
{
    (void)ctx;
    return resp_reply_len(p, n);
}

static long handshake(char *buf, size_t cap, unsigned *nreplies, void *ctx)
{
    (void)ctx;
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    if (cap < sizeof ping - 1) return -1;
    memcpy(buf, ping, sizeof ping - 1);
    *nreplies = 1;
    return (long)(sizeof ping - 1);
}

static int handshake_reply(const char *reply, size_t len, unsigned i, void *ctx)
{
    (void)ctx; (void)i;
    return len == 7 && memcmp(reply, "+PONG\r\n", 7) == 0 ? 0 : -1;
}

static const struct iox_client_proto resp_proto = {
    .reply_len = reply_len,
    .handshake = handshake,
    .handshake_reply = handshake_reply,
};

int resp_client_open(struct iox_reactor *r, const struct resp_client_config *cfg, struct resp_client **out,
                     char *why, size_t why_len)
{
    struct resp_client *c = calloc(1, sizeof *c);
    if (!c) { snprintf(why, why_len, "out of memory"); return -ENOMEM; }
    struct iox_client_config k = {
        .host = cfg->host ? cfg->host : "127.0.0.1",
        .port = cfg->port ? cfg->port : 6379,
        .conns = cfg->conns,
        .max_inflight = cfg->max_inflight,
        .down_fail_ms = cfg->down_fail_ms,
        .proto = &resp_proto,
    };
    int rc = iox_client_pool_open(r, &k, &c->pool, why, why_len);
    if (rc < 0) { free(c); return rc; }
    *out = c;
    return 0;
}

int resp_client_command(struct resp_client *c, unsigned argc, const char *const *argv, const size_t *lens,
                        resp_client_cb cb, void *arg)
{
    if (!argc) return -EINVAL;
    struct rbuf *b = &c->req;
    rb_reset(b);
    rb_array(b, argc);
    for (unsigned i = 0; i < argc; i++) rb_bulk(b, argv[i], lens ? lens[i] : strlen(argv[i]));
    if (b->oom) return -ENOMEM;
    return iox_client_request(c->pool, b->p, b->len, cb, arg);
}

struct iox_client_pool *resp_client_pool(struct resp_client *c) { return c->pool; }

void resp_client_stop(struct resp_client *c) { iox_client_pool_stop(c->pool); }

void resp_client_close(struct resp_client *c)
{
    if (!c) return;
    iox_client_pool_close(c->pool);
    rb_free(&c->req);
    free(c);
}

int resp_client_reply_int(const char *r, size_t n, long long *v)
{
    if (n < 4 || r[0] != ':') return 0;
    char *end;
    *v = strtoll(r + 1, &end, 10);
    return *end == '\r';
}

int resp_client_reply_str(const char *r, size_t n, const char **p, size_t *len)
{
    if (n < 3) return 0;
    if (r[0] == '+' || r[0] == '-') { *p = r + 1; *len = n - 3; return 1; }
    if (r[0] != '$') return 0;
    long long l = strtoll(r + 1, NULL, 10);
    if (l < 0) { *p = NULL; *len = 0; return 1; }
    const char *d = memchr(r, '\n', n);
    if (!d) return 0;
    *p = d + 1;
    *len = (size_t)l;
    return 1;
}
