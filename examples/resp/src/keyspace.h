/* keyspace.h — one reactor's share of the keys: string keys and values
 * with an optional expiry, in a chained hash table of its own. Nothing here
 * is shared or locked: a key lives on the reactor resp_owner() names, and
 * every command on it runs there.
 *
 * Expiry: a key past its deadline is deleted when it is touched (lazy) and
 * by ks_sweep, which the reactor's tick calls with a bounded budget
 * (active). Deadlines are CLOCK_MONOTONIC milliseconds (a vDSO read, no
 * syscall). */
#ifndef RESP_KEYSPACE_H
#define RESP_KEYSPACE_H
#include <stddef.h>
#include <stdint.h>

struct ks_entry {
    struct ks_entry *next;
    uint64_t hash;
    int64_t expire_ms;     /* 0: none */
    char *val;
    uint32_t vlen, vcap;
    uint32_t klen;
    char key[];
};

struct keyspace {
    struct ks_entry **b;
    size_t mask;           /* buckets - 1 */
    size_t count;          /* entries, expired ones not yet reclaimed included */
    size_t volatile_n;     /* entries with a deadline */
    size_t sweep_at;       /* the active sweep's bucket cursor */
    uint64_t expired;      /* keys deleted because they expired */
};

int ks_init(struct keyspace *ks);
void ks_fini(struct keyspace *ks);
int64_t ks_now_ms(void);
uint64_t ks_hash(const char *k, size_t n);

/* The live entry for key, or NULL (an expired one is deleted now). */
struct ks_entry *ks_get(struct keyspace *ks, const char *k, size_t n, int64_t now);
/* Set key's value (creating the key); keeps its deadline unless
 * keep_ttl is 0, then sets expire_ms (0: none). The entry, or NULL (oom). */
struct ks_entry *ks_set(struct keyspace *ks, const char *k, size_t n, const char *v, size_t vn,
                        int keep_ttl, int64_t expire_ms, int64_t now);
void ks_set_expire(struct keyspace *ks, struct ks_entry *e, int64_t expire_ms);
/* 1 when a live key was deleted, else 0. */
int ks_del(struct keyspace *ks, const char *k, size_t n, int64_t now);
void ks_flush(struct keyspace *ks);
/* Live keys (counts expired-but-unreclaimed ones, as redis-server's DBSIZE does). */
size_t ks_size(const struct keyspace *ks);
/* Active expiry: look at up to `buckets` buckets from the cursor, deleting
 * expired entries. Returns how many were deleted. */
size_t ks_sweep(struct keyspace *ks, int64_t now, size_t buckets);

#endif
