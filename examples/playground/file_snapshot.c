/* file_snapshot.c — directory walk, precomputed heads, hash index, and the
 * per-reactor claims that free old snapshots; see file_snapshot.h. */
#include "file_snapshot.h"
#include "http_cond.h"
#include <ioxide/log.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)p[i]; h *= 1099511628211ull; }
    return h;
}

/* ---- Content-Type by extension ---- */

static const struct { const char *ext, *ctype; } ctypes[] = {
    {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"}, {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"}, {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"}, {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"}, {"xml", "application/xml"},
    {"png", "image/png"}, {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"},
    {"gif", "image/gif"}, {"svg", "image/svg+xml"}, {"ico", "image/x-icon"},
    {"webp", "image/webp"}, {"avif", "image/avif"}, {"wasm", "application/wasm"},
    {"pdf", "application/pdf"}, {"woff", "font/woff"}, {"woff2", "font/woff2"},
    {"ttf", "font/ttf"}, {"otf", "font/otf"}, {"mp4", "video/mp4"},
    {"webm", "video/webm"}, {"mp3", "audio/mpeg"}, {"ogg", "audio/ogg"},
    {"zip", "application/zip"}, {"gz", "application/gzip"}, {"tar", "application/x-tar"},
    {"map", "application/json"}, {"webmanifest", "application/manifest+json"},
};

static const char *ctype_for(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && dot != name)
        for (size_t i = 0; i < sizeof ctypes / sizeof ctypes[0]; i++)
            if (strcasecmp(dot + 1, ctypes[i].ext) == 0) return ctypes[i].ctype;
    return "application/octet-stream";
}

/* ---- walk ---- */

struct walk {
    const struct fs_options *o;
    struct fs_snapshot *s;
    uint32_t cap;
    char path[PATH_MAX];
    int truncated_warned, depth_warned;
    int err;
    char *why;
    size_t why_len;
};

/* Returns 2 when the entry keeps fd (streamed), 0 when baked, 1 when
 * skipped, -errno on failure (the entry is then freed with the snapshot). */
static int add_entry(struct walk *w, size_t plen, int fd, const struct stat *st, const char *name)
{
    struct fs_snapshot *s = w->s;
    if (s->count == w->cap) {
        uint32_t nc = w->cap ? w->cap * 2 : 256;
        struct fs_entry *ne = realloc(s->entries, nc * sizeof *ne);
        if (!ne) return -ENOMEM;
        s->entries = ne;
        w->cap = nc;
    }
    struct fs_entry *e = &s->entries[s->count];
    memset(e, 0, sizeof *e);
    e->fd = -1;
    e->path = strndup(w->path, plen);
    if (!e->path) return -ENOMEM;
    s->count++;   /* counted now so a failure below frees what it holds */
    e->path_len = (uint32_t)plen;
    e->hash = fnv1a(e->path, plen);
    e->ctype = ctype_for(name);
    e->size = (uint64_t)st->st_size;
    e->mtime = (int64_t)st->st_mtim.tv_sec;
    uint64_t mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
    if (e->size <= w->o->bake_max) {
        e->body = malloc(e->size ? e->size : 1);
        if (!e->body) return -ENOMEM;
        uint64_t got = 0;
        while (got < e->size) {
            ssize_t n = pread(fd, e->body + got, e->size - got, (off_t)got);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                int err = errno;
                IOX_WARN("file mode: read %s: %s (skipped)", e->path, strerror(err));
                free(e->body);
                free(e->path);
                s->count--;
                return 1;
            }
            if (n == 0) break;   /* shrank since fstat: serve what is there */
            got += (uint64_t)n;
        }
        e->size = got;
        s->nbaked++;
        s->baked_bytes += got;
    } else {
        /* io_uring punts a blocking buffered read to a worker, but returns
         * -EAGAIN for an O_NONBLOCK file: clear it (it was only for the open). */
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        e->fd = fd;
        s->nstreamed++;
    }
    int kept = e->fd >= 0 ? 2 : 0;
    e->etag_len = (uint32_t)snprintf(e->etag, sizeof e->etag, "\"%" PRIx64 "-%" PRIx64 "\"", e->size, mtime_ns);
    iox_http_date_format(e->mtime, e->last_modified);
    size_t hl = e->etag_len + strlen(e->last_modified) + 80;
    e->hdrs = malloc(hl);
    if (!e->hdrs) return -ENOMEM;
    snprintf(e->hdrs, hl, "ETag: %s\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n", e->etag, e->last_modified);
    return kept;
}

/* Walk directory dfd (which is w->path[0, plen)) at `depth`. Entries are
 * opened relative to their directory's fd with O_NOFOLLOW: a symlink is
 * never followed (neither to a file nor to a directory), so nothing outside
 * the root can enter the snapshot even if the tree changes during the walk. */
static int walk_dir(struct walk *w, int dfd, size_t plen, unsigned depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        int err = errno;
        close(dfd);
        IOX_WARN("file mode: cannot list %.*s/: %s (skipped)", (int)plen, w->path, strerror(err));
        return 0;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.') continue;   /* ".", "..", and hidden files (.git, .htpasswd) */
        if (w->s->count >= w->o->max_files) {
            if (!w->truncated_warned++)
                IOX_WARN("file mode: more than %u files under %s; the rest are not served", w->o->max_files, w->o->root);
            break;
        }
        size_t nl = strlen(name);
        if (plen + 1 + nl + 1 > sizeof w->path) continue;
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        w->path[plen] = '/';
        memcpy(w->path + plen + 1, name, nl + 1);
        size_t sub = plen + 1 + nl;
        if (S_ISDIR(st.st_mode)) {
            if (depth + 1 > w->o->max_depth) {
                if (!w->depth_warned++)
                    IOX_WARN("file mode: %s is deeper than %u levels; not served", w->path, w->o->max_depth);
                continue;
            }
            int cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd < 0) {
                if (errno == EMFILE || errno == ENFILE) { rc = -errno; break; }
                IOX_WARN("file mode: cannot open directory %s: %s (skipped)", w->path, strerror(errno));
                continue;
            }
            rc = walk_dir(w, cfd, sub, depth + 1);
            continue;
        }
        if (!S_ISREG(st.st_mode)) continue;   /* symlinks, fifos, sockets, devices */
        /* O_NONBLOCK: should the name have become a FIFO since fstatat, the
         * open must not hang the walk; fstat below rejects it. */
        int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) { rc = -errno; break; }
            IOX_WARN("file mode: cannot open %s: %s (skipped)", w->path, strerror(errno));
            continue;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) { close(fd); continue; }
        int a = add_entry(w, sub, fd, &st, name);
        if (a < 0) rc = a;
        /* Kept by the entry (streamed, or owned by it on a failure after
         * e->fd was set), or closed here. */
        if (a != 2 && !(a < 0 && w->s->count && w->s->entries[w->s->count - 1].fd == fd)) close(fd);
    }
    closedir(d);
    if (rc == -EMFILE || rc == -ENFILE)
        snprintf(w->why, w->why_len, "file mode: out of file descriptors while opening large files under %s — "
                 "raise `ulimit -n` or FILE_BAKE_MAX", w->o->root);
    else if (rc == -ENOMEM)
        snprintf(w->why, w->why_len, "file mode: out of memory while snapshotting %s", w->o->root);
    return rc;
}

static int build_index(struct fs_snapshot *s)
{
    uint32_t size = 16;
    while (size < 2 * (uint64_t)s->count) size *= 2;
    s->table = calloc(size, sizeof *s->table);
    if (!s->table) return -ENOMEM;
    s->mask = size - 1;
    for (uint32_t i = 0; i < s->count; i++) {
        uint32_t k = (uint32_t)s->entries[i].hash & s->mask;
        while (s->table[k]) k = (k + 1) & s->mask;
        s->table[k] = i + 1;
    }
    return 0;
}

int fs_snapshot_build(const struct fs_options *o, uint64_t generation,
                      struct fs_snapshot **out, char *why, size_t why_len)
{
    struct fs_snapshot *s = calloc(1, sizeof *s);
    if (!s) { snprintf(why, why_len, "file mode: out of memory"); return -ENOMEM; }
    s->generation = generation;
    s->nreactors = o->nreactors;
    atomic_init(&s->claims, o->nreactors);
    atomic_init(&s->next, NULL);
    s->hold = calloc(o->nreactors, sizeof *s->hold);
    int rc = s->hold ? 0 : -ENOMEM;
    int dfd = rc ? -1 : open(o->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!rc && dfd < 0) {
        rc = -errno;
        snprintf(why, why_len, "file mode: FILE_ROOT=%s: %s — set FILE_ROOT to a readable directory",
                 o->root, strerror(errno));
    }
    if (!rc) {
        struct walk w;
        memset(&w, 0, sizeof w);
        w.o = o;
        w.s = s;
        w.why = why;
        w.why_len = why_len;
        rc = walk_dir(&w, dfd, 0, 0);
    }
    if (!rc && build_index(s) < 0) {
        rc = -ENOMEM;
        snprintf(why, why_len, "file mode: out of memory for the index of %s", o->root);
    }
    if (rc) {
        if (rc == -ENOMEM && !why[0]) snprintf(why, why_len, "file mode: out of memory");
        fs_snapshot_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

const struct fs_entry *fs_snapshot_find(const struct fs_snapshot *s, const char *path, size_t len)
{
    uint64_t h = fnv1a(path, len);
    for (uint32_t k = (uint32_t)h & s->mask;; k = (k + 1) & s->mask) {
        uint32_t v = s->table[k];
        if (!v) return NULL;
        const struct fs_entry *e = &s->entries[v - 1];
        if (e->hash == h && e->path_len == len && memcmp(e->path, path, len) == 0) return e;
    }
}

void fs_snapshot_free(struct fs_snapshot *s)
{
    if (!s) return;
    for (uint32_t i = 0; i < s->count; i++) {
        struct fs_entry *e = &s->entries[i];
        if (e->fd >= 0) close(e->fd);
        free(e->path);
        free(e->hdrs);
        free(e->body);
    }
    free(s->entries);
    free(s->table);
    free(s->hold);
    free(s);
}

void fs_snapshot_publish(struct fs_snapshot *latest, struct fs_snapshot *s)
{
    /* Release: a reactor that sees `next` sees the whole snapshot. `latest`
     * cannot be freed here: no reactor has moved past it (next was NULL). */
    atomic_store_explicit(&latest->next, s, memory_order_release);
}

static void drop_claim(struct fs_snapshot *s)
{
    /* acq_rel: every reactor's last use of s happens before the free. */
    if (atomic_fetch_sub_explicit(&s->claims, 1, memory_order_acq_rel) == 1) {
        IOX_DEBUG("file mode: snapshot %" PRIu64 " released", s->generation);
        fs_snapshot_free(s);
    }
}

void fs_view_advance(struct fs_view *v)
{
    struct fs_snapshot *n;
    /* Our claim on cur keeps it alive, so reading cur->next is safe; each
     * snapshot on the way also still holds our claim until we drop it. */
    while ((n = atomic_load_explicit(&v->cur->next, memory_order_acquire)) != NULL) {
        struct fs_snapshot *old = v->cur;
        v->cur = n;
        old->hold[v->id].moved_past = 1;
        if (old->hold[v->id].streams == 0) drop_claim(old);
    }
}

void fs_view_stream_begin(struct fs_view *v, struct fs_snapshot *s)
{
    s->hold[v->id].streams++;
}

void fs_view_stream_end(struct fs_view *v, struct fs_snapshot *s)
{
    struct fs_hold *h = &s->hold[v->id];
    if (--h->streams == 0 && h->moved_past) drop_claim(s);
}

void fs_view_leave(struct fs_view *v)
{
    if (!v->cur) return;
    v->cur->hold[v->id].moved_past = 1;
    if (v->cur->hold[v->id].streams == 0) drop_claim(v->cur);
    v->cur = NULL;
}
