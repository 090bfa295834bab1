/* file_snapshot.h — an immutable snapshot of a directory tree for file mode,
 * and the claim scheme that lets reactors switch to a newer one safely.
 *
 * Build (cold, main thread): walk the root without following symlinks,
 * precompute every regular file's response head fields, bake small files
 * into memory and keep large ones open, index them in a hash table. After
 * publication nothing in a snapshot is written except each reactor's own
 * `hold` entry, so all reactors read it without locks (docs/file-mode.md).
 *
 * Lifetime: snapshots form a chain (s->next, set once when a newer one is
 * published). A snapshot starts with one claim per reactor. Reactor i drops
 * its claim on s once it has moved past s (to s->next) AND it has no file
 * stream reading from s. The reactor that drops the last claim frees s. */
#ifndef FILE_SNAPSHOT_H
#define FILE_SNAPSHOT_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct fs_entry {
    char *path;               /* "/dir/name", the lookup key */
    uint32_t path_len;
    uint64_t hash;
    const char *ctype;        /* static string */
    uint64_t size;
    int64_t mtime;            /* seconds */
    char etag[48];            /* "\"<size hex>-<mtime ns hex>\"" */
    uint32_t etag_len;
    char last_modified[32];   /* IMF-fixdate */
    char *hdrs;               /* "ETag: ..\r\nLast-Modified: ..\r\nAccept-Ranges: bytes\r\n" */
    char *body;               /* baked (size <= bake_max), else NULL */
    int fd;                   /* streamed: open O_RDONLY|O_CLOEXEC, else -1 */
};

/* One per reactor, padded so reactors never share a cache line. */
struct fs_hold {
    uint32_t streams;         /* this reactor's streams reading from the snapshot */
    uint8_t moved_past;       /* this reactor switched to a newer snapshot */
    char pad[64 - 5];
};

struct fs_snapshot {
    uint64_t generation;
    struct fs_entry *entries;
    uint32_t count, nbaked, nstreamed;
    uint64_t baked_bytes;
    uint32_t *table;          /* open addressing: entry index + 1, 0 = empty */
    uint32_t mask;
    unsigned nreactors;
    atomic_uint claims;
    _Atomic(struct fs_snapshot *) next;
    struct fs_hold *hold;     /* nreactors entries */
};

struct fs_options {
    const char *root;
    uint64_t bake_max;        /* files up to this size are baked (FILE_BAKE_MAX) */
    uint32_t max_files;       /* the walk stops here, with a warning */
    uint32_t max_depth;       /* directories deeper are skipped, with a warning */
    unsigned nreactors;
};

/* Walk o->root into a new snapshot with o->nreactors claims. Returns 0, or
 * -errno with one line in why (root missing, out of descriptors, ...). */
int fs_snapshot_build(const struct fs_options *o, uint64_t generation,
                      struct fs_snapshot **out, char *why, size_t why_len);
/* The entry for a normalized path (url_path.h), or NULL. No allocation. */
const struct fs_entry *fs_snapshot_find(const struct fs_snapshot *s, const char *path, size_t len);
/* Free a snapshot nobody can reach any more (closes its files). */
void fs_snapshot_free(struct fs_snapshot *s);
/* Main thread: make `s` the successor of `latest` (the last published). */
void fs_snapshot_publish(struct fs_snapshot *latest, struct fs_snapshot *s);

/* A reactor's view: the snapshot it serves new requests from. */
struct fs_view { struct fs_snapshot *cur; unsigned id; };

/* Move to the newest published snapshot, dropping claims left behind. */
void fs_view_advance(struct fs_view *v);
/* The snapshot to serve a new request from: one atomic load when nothing
 * changed. */
static inline struct fs_snapshot *fs_view_current(struct fs_view *v)
{
    if (atomic_load_explicit(&v->cur->next, memory_order_acquire)) fs_view_advance(v);
    return v->cur;
}
/* A stream starts/ends reading from s (s is the view's current, or older). */
void fs_view_stream_begin(struct fs_view *v, struct fs_snapshot *s);
void fs_view_stream_end(struct fs_view *v, struct fs_snapshot *s);
/* The reactor stops: drop its claim on the current snapshot (no streams). */
void fs_view_leave(struct fs_view *v);

#endif
