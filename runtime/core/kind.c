/* kind.c — the reactor's registry: kinds (who owns ring operations),
 * services (per-reactor objects found by a typed key) and message
 * handlers. Registration happens at startup, on the reactor's thread; the
 * arrays grow then and never on the hot path. See ioxide/reactor.h. */
#include <ioxide/log.h>
#include <ioxide/reactor.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int iox_reactor_register_kind(struct iox_reactor *r, const struct iox_kind *k, void *ctx)
{
    if (!k || !k->on_cqe) return -EINVAL;
    /* Reuse a freed owner id first: ids are 8 bits of user_data. */
    unsigned id = IOX_OWN_FIRST_KIND;
    while (id < r->nkinds && r->kinds[id].kind) id++;
    if (id > IOX_OWN_MAX) return -ENOSPC;
    if (id >= r->nkinds) {
        struct iox_kind_slot *n = realloc(r->kinds, (id + 1) * sizeof *n);
        if (!n) return -ENOMEM;
        memset(n + r->nkinds, 0, (id + 1 - r->nkinds) * sizeof *n);
        r->kinds = n;
        r->nkinds = id + 1;
    }
    r->kinds[id].kind = k;
    r->kinds[id].ctx = ctx;
    return (int)id;
}

void iox_reactor_unregister_kind(struct iox_reactor *r, int owner)
{
    if (owner < IOX_OWN_FIRST_KIND || (unsigned)owner >= r->nkinds) return;
    r->kinds[owner].kind = NULL;
    r->kinds[owner].ctx = NULL;
}

unsigned iox_reactor_counters(struct iox_reactor *r, struct iox_counter *out, unsigned max)
{
    unsigned n = 0;
    for (unsigned i = IOX_OWN_FIRST_KIND; i < r->nkinds && n < max; i++) {
        const struct iox_kind *k = r->kinds[i].kind;
        if (!k || !k->counters) continue;
        struct iox_counter got[32];
        unsigned m = k->counters(r, r->kinds[i].ctx, got, 32);
        for (unsigned j = 0; j < m && j < 32; j++) {
            unsigned at = 0;
            while (at < n && strcmp(out[at].name, got[j].name)) at++;
            if (at < n) { out[at].value += got[j].value; continue; }
            if (n == max) break;
            out[n++] = got[j];
        }
    }
    return n;
}

unsigned iox_reactor_kinds_busy(struct iox_reactor *r)
{
    unsigned busy = 0;
    for (unsigned i = IOX_OWN_FIRST_KIND; i < r->nkinds; i++) {
        const struct iox_kind *k = r->kinds[i].kind;
        if (k && k->busy) busy += k->busy(r, r->kinds[i].ctx);
    }
    return busy;
}

void iox_reactor_kinds_call(struct iox_reactor *r, size_t hook_offset)
{
    for (unsigned i = IOX_OWN_FIRST_KIND; i < r->nkinds; i++) {
        const struct iox_kind *k = r->kinds[i].kind;
        if (!k) continue;
        void (*fn)(struct iox_reactor *, void *);
        memcpy(&fn, (const char *)k + hook_offset, sizeof fn);
        if (fn) fn(r, r->kinds[i].ctx);
    }
}

void iox_reactor_kinds_free(struct iox_reactor *r)
{
    free(r->kinds);
    r->kinds = NULL;
    r->nkinds = 0;
    free(r->services);
    r->services = NULL;
    r->nservices = 0;
    free(r->msg_handlers);
    r->msg_handlers = NULL;
    r->nmsg_handlers = 0;
}

/* ---- services ---- */

int iox_reactor_set_service(struct iox_reactor *r, const struct iox_service_key *key, void *svc)
{
    for (unsigned i = 0; i < r->nservices; i++) {
        if (r->services[i].key != key) continue;
        if (svc) { r->services[i].svc = svc; return 0; }
        r->services[i] = r->services[--r->nservices];
        return 0;
    }
    if (!svc) return 0;
    struct iox_service_slot *n = realloc(r->services, (r->nservices + 1) * sizeof *n);
    if (!n) return -ENOMEM;
    r->services = n;
    r->services[r->nservices].key = key;
    r->services[r->nservices].svc = svc;
    r->nservices++;
    return 0;
}

void *iox_reactor_service(const struct iox_reactor *r, const struct iox_service_key *key)
{
    for (unsigned i = 0; i < r->nservices; i++)
        if (r->services[i].key == key) return r->services[i].svc;
    return NULL;
}

/* ---- message handlers ---- */

int iox_reactor_on_msg(struct iox_reactor *r, uint32_t kind, iox_msg_handler h)
{
    if (kind >= (1u << 16)) return -EINVAL;
    if (kind >= r->nmsg_handlers) {
        if (!h) return 0;
        iox_msg_handler *n = realloc(r->msg_handlers, (kind + 1) * sizeof *n);
        if (!n) return -ENOMEM;
        memset(n + r->nmsg_handlers, 0, (kind + 1 - r->nmsg_handlers) * sizeof *n);
        r->msg_handlers = n;
        r->nmsg_handlers = kind + 1;
    }
    r->msg_handlers[kind] = h;
    return 0;
}

iox_msg_handler iox_reactor_msg_handler(const struct iox_reactor *r, uint32_t kind)
{
    return kind < r->nmsg_handlers ? r->msg_handlers[kind] : NULL;
}
