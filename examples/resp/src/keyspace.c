/* keyspace.c — see keyspace.h. Entries are one allocation (header and
 * key); the value is a second one, grown in place when a SET needs more.
 * Memory is the data's, not the request path's: like redis-server, a new
 * key allocates. */
#include "keyspace.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t ks_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t ks_hash(const char *k, size_t n)
{
    /* FNV-1a, then a final mix so that low and high bits both spread. */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= (uint8_t)k[i]; h *= 1099511628211ull; }
    h ^= h >> 33; h *= 0xff51afd7ed558ccdull; h ^= h >> 33;
    return h;
}

int ks_init(struct keyspace *ks)
{
    memset(ks, 0, sizeof *ks);
    ks->mask = 1023;
    ks->b = calloc(ks->mask + 1, sizeof *ks->b);
    return ks->b ? 0 : -1;
}

static void entry_free(struct ks_entry *e)
{
    free(e->val);
    free(e);
}

void ks_flush(struct keyspace *ks)
{
    for (size_t i = 0; i <= ks->mask; i++) {
        struct ks_entry *e = ks->b[i];
        while (e) { struct ks_entry *n = e->next; entry_free(e); e = n; }
        ks->b[i] = NULL;
    }
    ks->count = ks->volatile_n = 0;
}

void ks_fini(struct keyspace *ks)
{
    if (!ks->b) return;
    ks_flush(ks);
    free(ks->b);
    ks->b = NULL;
}

static void unlink_at(struct keyspace *ks, struct ks_entry **pp)
{
    struct ks_entry *e = *pp;
    *pp = e->next;
    ks->count--;
    if (e->expire_ms) ks->volatile_n--;
    entry_free(e);
}

/* The link pointing at key's entry (live or not), or at the chain's end. */
static struct ks_entry **find(struct keyspace *ks, const char *k, size_t n, uint64_t h)
{
    struct ks_entry **pp = &ks->b[h & ks->mask];
    for (; *pp; pp = &(*pp)->next) {
        struct ks_entry *e = *pp;
        if (e->hash == h && e->klen == n && memcmp(e->key, k, n) == 0) return pp;
    }
    return pp;
}

static int expired(const struct ks_entry *e, int64_t now)
{
    return e->expire_ms && e->expire_ms <= now;
}

struct ks_entry *ks_get(struct keyspace *ks, const char *k, size_t n, int64_t now)
{
    uint64_t h = ks_hash(k, n);
    struct ks_entry **pp = find(ks, k, n, h);
    if (!*pp) return NULL;
    if (expired(*pp, now)) { unlink_at(ks, pp); ks->expired++; return NULL; }
    return *pp;
}

static void grow(struct keyspace *ks)
{
    size_t nb = (ks->mask + 1) * 2;
    struct ks_entry **b = calloc(nb, sizeof *b);
    if (!b) return;                  /* stay at this size: chains get longer */
    for (size_t i = 0; i <= ks->mask; i++) {
        struct ks_entry *e = ks->b[i];
        while (e) {
            struct ks_entry *n = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(ks->b);
    ks->b = b;
    ks->mask = nb - 1;
    ks->sweep_at = 0;
}

void ks_set_expire(struct keyspace *ks, struct ks_entry *e, int64_t expire_ms)
{
    if (!e->expire_ms && expire_ms) ks->volatile_n++;
    if (e->expire_ms && !expire_ms) ks->volatile_n--;
    e->expire_ms = expire_ms;
}

struct ks_entry *ks_set(struct keyspace *ks, const char *k, size_t n, const char *v, size_t vn,
                        int keep_ttl, int64_t expire_ms, int64_t now)
{
    uint64_t h = ks_hash(k, n);
    struct ks_entry **pp = find(ks, k, n, h);
    struct ks_entry *e = *pp;
    if (e && expired(e, now)) { unlink_at(ks, pp); ks->expired++; e = NULL; pp = find(ks, k, n, h); }
    if (!e) {
        if (n > UINT32_MAX || vn > UINT32_MAX) return NULL;
        e = malloc(sizeof *e + n);
        if (!e) return NULL;
        memset(e, 0, sizeof *e);
        e->hash = h;
        e->klen = (uint32_t)n;
        memcpy(e->key, k, n);
        *pp = e;
        ks->count++;
        keep_ttl = 0;
    }
    if (vn > e->vcap || (e->vcap > 4096 && vn < e->vcap / 4)) {
        char *nv = malloc(vn ? vn : 1);
        if (!nv) return NULL;
        free(e->val);
        e->val = nv;
        e->vcap = (uint32_t)(vn ? vn : 1);
    }
    memcpy(e->val, v, vn);
    e->vlen = (uint32_t)vn;
    if (!keep_ttl) ks_set_expire(ks, e, expire_ms);
    if (ks->count > (ks->mask + 1) * 2) grow(ks);
    return e;
}

int ks_del(struct keyspace *ks, const char *k, size_t n, int64_t now)
{
    uint64_t h = ks_hash(k, n);
    struct ks_entry **pp = find(ks, k, n, h);
    if (!*pp) return 0;
    int live = !expired(*pp, now);
    if (!live) ks->expired++;
    unlink_at(ks, pp);
    return live;
}

size_t ks_size(const struct keyspace *ks) { return ks->count; }

size_t ks_sweep(struct keyspace *ks, int64_t now, size_t buckets)
{
    size_t gone = 0;
    if (!ks->volatile_n) return 0;
    for (size_t i = 0; i < buckets && i <= ks->mask; i++) {
        size_t at = ks->sweep_at++ & ks->mask;
        struct ks_entry **pp = &ks->b[at];
        while (*pp) {
            if (expired(*pp, now)) { unlink_at(ks, pp); ks->expired++; gone++; }
            else pp = &(*pp)->next;
        }
    }
    return gone;
}
