/* lineecho.c — the line protocol of lineecho.h: a parser (find '\n'), its
 * actions, and iox_stream_protocol on a listener. Everything else — reading,
 * carrying a cut line, backpressure, ordering the late SLOW answer before
 * the lines behind it, timers, the close — is the stream layer's. */
#include "lineecho.h"
#include <ioxide/log.h>
#include <string.h>

#define MAX_REACTORS 64
#define MAX_SLOW 256
#define SLOW_MS 200

/* Per reactor: the SLOW answers still due (shared-nothing: each reactor
 * only touches its own row). */
struct slow { struct iox_stream_ref ref; int id; uint64_t due_ms; };
static struct {
    struct slow q[MAX_SLOW];
    unsigned n;
} slow_of[MAX_REACTORS];

static unsigned max_replies = 16;

static int answer_line(struct iox_stream *s, const char *line, size_t len)
{
    int id = iox_stream_reply_begin(s);
    if (id < 0) return id;   /* -ENOSPC: every slot open; offered again later */
    iox_stream_reply_write(s, id, line, len);
    iox_stream_reply_write(s, id, "\n", 1);
    iox_stream_reply_end(s, id);
    return 0;
}

static long on_data(struct iox_stream *s, const char *p, size_t n, void *ctx)
{
    (void)ctx;
    unsigned rid = iox_stream_reactor(s)->id % MAX_REACTORS;
    size_t used = 0;
    while (used < n) {
        const char *nl = memchr(p + used, '\n', n - used);
        if (!nl) break;   /* a cut line: carried, offered again with the next bytes */
        const char *line = p + used;
        size_t len = (size_t)(nl - line);
        if (len && line[len - 1] == '\r') len--;
        if (len == 4 && !memcmp(line, "SLOW", 4)) {
            if (slow_of[rid].n == MAX_SLOW) return -1;
            if (iox_stream_replies_open(s) >= max_replies) break;   /* no slot: offered again later */
            iox_stream_write(s, "started\n", 8);   /* in order: before the slot below */
            int id = iox_stream_reply_begin(s);
            if (id < 0) return -1;
            struct slow *w = &slow_of[rid].q[slow_of[rid].n++];
            w->ref = iox_stream_ref(s);
            w->id = id;
            w->due_ms = iox_stream_reactor(s)->now_ms + SLOW_MS;
        } else if (len == 4 && !memcmp(line, "HOLD", 4)) {
            if (iox_stream_reply_begin(s) < 0) break;
        } else if (len == 4 && !memcmp(line, "QUIT", 4)) {
            iox_stream_write(s, "bye\n", 4);
            iox_stream_close(s);
            return (long)(nl + 1 - p);
        } else if (answer_line(s, line, len) < 0) {
            break;
        }
        used = (size_t)(nl + 1 - p);
    }
    return (long)used;
}

static void on_close(struct iox_stream *s, enum iox_stream_cause cause, void *ctx)
{
    (void)ctx;
    IOX_DEBUG("lineecho: stream %d closed (%s)", iox_stream_fd(s), iox_stream_cause_name(cause));
}

void lineecho_config(struct iox_stream_config *cfg)
{
    cfg->on_data = on_data;
    cfg->on_close = on_close;
    if (!cfg->max_replies) cfg->max_replies = 16;
    max_replies = cfg->max_replies;
}

/* The protocol's own kind: only a tick, to answer SLOW when it is due. */
static void slow_tick(struct iox_reactor *r, void *ctx)
{
    (void)ctx;
    unsigned rid = r->id % MAX_REACTORS;
    unsigned k = 0;
    for (unsigned i = 0; i < slow_of[rid].n; i++) {
        struct slow *w = &slow_of[rid].q[i];
        if (w->due_ms > r->now_ms) { slow_of[rid].q[k++] = *w; continue; }
        struct iox_stream *s = iox_stream_deref(w->ref);
        if (!s) continue;   /* the stream is gone: nobody to answer */
        iox_stream_reply_write(s, w->id, "SLOW!\n", 6);
        iox_stream_reply_end(s, w->id);
    }
    slow_of[rid].n = k;
}

static void slow_cqe(struct iox_reactor *r, void *ctx, const struct iox_cqe *cqe)
{
    (void)r; (void)ctx; (void)cqe;   /* it queues no ops */
}

static const struct iox_kind slow_kind = {.name = "lineecho_slow", .on_cqe = slow_cqe, .on_tick = slow_tick};

int lineecho_on_start(struct iox_reactor *r, void *app_ctx)
{
    (void)app_ctx;
    slow_of[r->id % MAX_REACTORS].n = 0;
    iox_reactor_want_tick(r, 50);
    return iox_reactor_register_kind(r, &slow_kind, NULL) < 0 ? -1 : 0;
}

int lineecho_serve(const char *host, uint16_t port, unsigned reactors)
{
    static struct iox_stream_config scfg;
    static struct iox_listener_config l;
    static struct iox_server_config s;
    char why[256];
    memset(&scfg, 0, sizeof scfg);
    memset(&l, 0, sizeof l);
    memset(&s, 0, sizeof s);
    if (iox_stream_config_from_env(&scfg, why, sizeof why) < 0) { IOX_ERROR("%s", why); return 2; }
    lineecho_config(&scfg);
    l.host = host;
    l.port = port;
    l.proto = &iox_stream_protocol;
    l.proto_cfg = &scfg;
    s.reactors = reactors;
    s.pin = -1;
    s.listeners = &l;
    s.nlisteners = 1;
    s.on_start = lineecho_on_start;
    return iox_server_run(&s);
}
