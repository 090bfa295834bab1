/* access_log.c — one line per request in the combined log format:
 *
 *   127.0.0.1 - - [02/Dec/2026:07:30:00 +0000] "GET / HTTP/1.1" 200 2 "-" "curl/7.88.1"
 *
 * (Apache's LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\"
 * \"%{User-agent}i\"", nginx's `combined`). %b is the body's bytes ("-"
 * for none), %t the time the request's head arrived. Quotes, backslashes
 * and bytes outside printable ASCII in the request line, Referer and
 * User-Agent are written as \", \\ and \xhh (Apache's escaping), so a line
 * cannot be forged by a request; a field longer than its share of the
 * record is cut with "...".
 *
 * Memory: a record per open request (from a free list that grows on demand
 * and is kept), an index per response-ring entry, and the peer address per
 * connection slot — allocated only when the log is on. */
#include "access_log.h"
#include "conn_internal.h"
#include <ioxide/log.h>
#include <ioxide/logfile.h>
#include <ioxide/seam.h>
#include <ioxide/ud.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Bytes of prefix + suffix text per record, and the shares of its fields. */
#define REC_TEXT 1344u
#define MAX_LINE_FIELD 900u   /* the request line, escaped */
#define MAX_HDR_FIELD 160u    /* Referer and User-Agent each, escaped */

struct rec {
    uint64_t bytes;           /* answer bytes written (heads included) */
    uint64_t head_bytes;      /* of which heads (interim 100s included) */
    uint32_t next_free;
    uint16_t status;
    uint16_t pre_len, suf_len;
    char text[REC_TEXT];      /* [0, pre_len) prefix, then the suffix */
};

struct peer {
    uint16_t gen;             /* the connection the address belongs to */
    char host[INET6_ADDRSTRLEN];   /* "" until known: logged as "-" */
    union { struct sockaddr_in in; struct sockaddr_in6 in6; } sa;
};

struct iox_alog {
    struct iox_logfile *lf;
    struct rec *recs;         /* [0] unused: index 0 means "none" */
    uint32_t nrecs, free_head;
    uint32_t *rec_of;         /* per response-ring entry (same index as hs->rslots) */
    struct peer *peers;       /* per connection slot */
    socklen_t sa_len;         /* the listener family's address size */
    uint8_t no_ring_peername; /* the kernel refused SO_PEERNAME on the ring: getpeername(2) */
    time_t t_sec;             /* the cached time stamp's second */
    char t_text[32];          /* "[02/Dec/2026:07:30:00 +0000]" */
};

int iox_alog_path(const char *path, unsigned reactor, unsigned nreactors, char *out, size_t out_len)
{
    const char *mark = strstr(path, "%r");
    int n = mark ? snprintf(out, out_len, "%.*s%u%s", (int)(mark - path), path, reactor, mark + 2)
          : nreactors > 1 ? snprintf(out, out_len, "%s.%u", path, reactor)
          : snprintf(out, out_len, "%s", path);
    return n < 0 || (size_t)n >= out_len ? -ENAMETOOLONG : 0;
}

int iox_alog_open(struct iox_http_server *hs, char *why, size_t why_len)
{
    struct iox_reactor *r = hs->r;
    char path[4096];
    if (iox_alog_path(hs->cfg.access_log, r->id, r->nreactors ? r->nreactors : 1, path, sizeof path) < 0) {
        snprintf(why, why_len, "access log path %s: too long", hs->cfg.access_log);
        return -ENAMETOOLONG;
    }
    struct iox_alog *a = calloc(1, sizeof *a);
    size_t nslots = (size_t)hs->max_conns * (hs->rslot_mask + 1);
    if (!a || !(a->rec_of = calloc(nslots, sizeof *a->rec_of)) ||
        !(a->peers = calloc(hs->max_conns, sizeof *a->peers))) {
        snprintf(why, why_len, "access log: out of memory for %u connections (IOX_MAX_CONNS)", hs->max_conns);
        if (a) free(a->rec_of);
        free(a);
        return -ENOMEM;
    }
    int rc = iox_logfile_open(r, path, 0, &a->lf, why, why_len);
    if (rc < 0) {
        free(a->peers);
        free(a->rec_of);
        free(a);
        return rc;
    }
    /* The kernel refuses an address buffer larger than the family's. */
    const char *host = hs->listener < r->nlisteners && r->cfg && r->cfg->listeners
                     ? r->cfg->listeners[hs->listener].host : NULL;
    a->sa_len = host && strchr(host, ':') ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    a->t_sec = (time_t)-1;
    hs->alog = a;
    IOX_INFO("reactor %u: access log %s", r->id, path);
    return 0;
}

void iox_alog_close(struct iox_http_server *hs)
{
    struct iox_alog *a = hs->alog;
    if (!a) return;
    iox_logfile_close(a->lf);
    free(a->recs);
    free(a->rec_of);
    free(a->peers);
    free(a);
    hs->alog = NULL;
}

/* ---- peers ---- */

static void peer_text(struct peer *p, int len)
{
    const void *addr = NULL;
    int fam = AF_UNSPEC;
    if (len >= (int)sizeof(struct sockaddr_in) && p->sa.in.sin_family == AF_INET) {
        fam = AF_INET;
        addr = &p->sa.in.sin_addr;
    } else if (len >= (int)sizeof(struct sockaddr_in6) && p->sa.in6.sin6_family == AF_INET6) {
        fam = AF_INET6;
        addr = &p->sa.in6.sin6_addr;
        /* A v4 client on a dual-stack listener is logged as v4, as nginx does. */
        if (IN6_IS_ADDR_V4MAPPED(&p->sa.in6.sin6_addr)) {
            fam = AF_INET;
            addr = &p->sa.in6.sin6_addr.s6_addr[12];
        }
    }
    if (!addr || !inet_ntop(fam, addr, p->host, sizeof p->host)) p->host[0] = 0;
}

/* No socket getsockopt on this kernel's ring: one getpeername(2) per
 * connection, the cost of having peers in the log (said once at startup
 * of the first connection). */
static void peer_by_syscall(struct iox_alog *a, struct iox_conn *c)
{
    struct peer *p = &a->peers[c->sk.idx];
    socklen_t len = sizeof p->sa;
    /* A direct descriptor is no fd: getpeername(2) cannot reach it (the
     * ring's getsockopt always exists where direct descriptors do, so this
     * is only an SQ that was full: the peer is logged as "-"). */
    if (iox_fd_is_direct(c->sk.fd)) return;
    if (getpeername(c->sk.fd, (struct sockaddr *)&p->sa, &len) == 0) peer_text(p, (int)len);
}

void iox_alog_conn_open(struct iox_conn *c)
{
    struct iox_alog *a = c->hs->alog;
    struct peer *p = &a->peers[c->sk.idx];
    p->gen = c->sk.gen;
    p->host[0] = 0;
    if (a->no_ring_peername) { peer_by_syscall(a, c); return; }
    memset(&p->sa, 0, sizeof p->sa);
    /* Not counted among the connection's ops: the kernel answers it inline
     * while submitting, and a late answer for a reused slot is told apart
     * by the generation. */
    if (iox_seam_peername(c->r->seam, c->sk.fd, (struct sockaddr *)&p->sa, a->sa_len,
                          iox_ud(IOX_OP_PEERNAME, (unsigned)c->hs->owner, c->sk.gen, c->sk.idx)) < 0)
        peer_by_syscall(a, c);   /* SQ full: once, the plain way */
}

void iox_alog_peer_cqe(struct iox_http_server *hs, const struct iox_cqe *cqe)
{
    struct iox_alog *a = hs->alog;
    uint32_t idx = iox_ud_idx(cqe->ud);
    if (!a || idx >= hs->max_conns) return;
    struct peer *p = &a->peers[idx];
    struct iox_conn *c = &hs->conns[idx];
    if (p->gen != (uint16_t)iox_ud_gen(cqe->ud) || !iox_conn_in_use(c) || c->sk.gen != p->gen) return;
    if (cqe->res > 0) { peer_text(p, cqe->res); return; }
    if ((cqe->res == -EOPNOTSUPP || cqe->res == -EINVAL) && !a->no_ring_peername) {
        a->no_ring_peername = 1;
        IOX_INFO("access log: the kernel has no getsockopt on the ring (Linux 6.7+); peer addresses come from "
                 "getpeername(2), one call per connection");
    }
    if (cqe->res != -ENOTCONN && c->sk.fd >= 0) peer_by_syscall(a, c);
}

/* ---- records ---- */

static uint32_t rec_new(struct iox_alog *a)
{
    if (!a->free_head) {
        /* Grow by doubling (kept for reuse: the steady state does not
         * allocate). Indexes stay valid across the realloc. */
        uint32_t n = a->nrecs ? a->nrecs * 2 : 256;
        struct rec *nr = realloc(a->recs, (size_t)n * sizeof *nr);
        if (!nr) return 0;
        a->recs = nr;
        for (uint32_t i = n - 1; i >= (a->nrecs ? a->nrecs : 1); i--) {
            nr[i].next_free = a->free_head;
            a->free_head = i;
        }
        a->nrecs = n;
    }
    uint32_t i = a->free_head;
    struct rec *r = &a->recs[i];
    a->free_head = r->next_free;
    r->bytes = r->head_bytes = 0;
    r->status = 0;
    r->pre_len = r->suf_len = 0;
    return i;
}

static void rec_free(struct iox_alog *a, uint32_t i)
{
    a->recs[i].next_free = a->free_head;
    a->free_head = i;
}

static uint32_t *rec_slot(struct iox_conn *c, const struct iox_rslot *s)
{
    return &c->hs->alog->rec_of[s - c->hs->rslots];
}

/* Escaped copy of [p, p+n) into out (room: cap), cut with "..." when it
 * does not fit. Returns the bytes written. */
static size_t esc(char *out, size_t cap, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        size_t need = ch == '"' || ch == '\\' ? 2 : ch < 0x20 || ch >= 0x7f ? 4 : 1;
        if (o + need + 3 > cap) {
            memcpy(out + o, "...", 3);
            return o + 3;
        }
        if (need == 2) { out[o++] = '\\'; out[o++] = (char)ch; }
        else if (need == 4) { out[o++] = '\\'; out[o++] = 'x'; out[o++] = hex[ch >> 4]; out[o++] = hex[ch & 15]; }
        else out[o++] = (char)ch;
    }
    return o;
}

static size_t put_str(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return n;
}

static const char *stamp(struct iox_alog *a, const struct iox_reactor *r)
{
    /* The simulated ring's tests see a fixed time. */
    time_t now = r->uring ? time(NULL) : 0;
    if (now != a->t_sec) {
        a->t_sec = now;
        struct tm tm;
        if (r->uring) localtime_r(&now, &tm);
        else gmtime_r(&now, &tm);
        long off = r->uring ? tm.tm_gmtoff / 60 : 0;
        char sign = off < 0 ? '-' : '+';
        if (off < 0) off = -off;
        size_t n = strftime(a->t_text, sizeof a->t_text, "[%d/%b/%Y:%H:%M:%S ", &tm);
        snprintf(a->t_text + n, sizeof a->t_text - n, "%c%02ld%02ld]", sign, off / 60, off % 60);
    }
    return a->t_text;
}

/* The prefix "host - - [time] \"request line\"" and the suffix
 * " \"referer\" \"user-agent\"" of request s. */
static void rec_fill(struct iox_conn *c, struct iox_rslot *s, const struct iox_http_request *req)
{
    struct iox_alog *a = c->hs->alog;
    uint32_t *slot = rec_slot(c, s);
    if (!*slot) *slot = rec_new(a);
    if (!*slot) return;   /* out of memory: the line goes without its record */
    struct rec *r = &a->recs[*slot];
    struct peer *p = &a->peers[c->sk.idx];
    char *o = r->text;
    size_t n = put_str(o, p->host[0] && p->gen == c->sk.gen ? p->host : "-");
    n += put_str(o + n, " - - ");
    n += put_str(o + n, stamp(a, c->r));
    n += put_str(o + n, " \"");
    if (req) {
        /* The request line as sent (method, target, version), escaped. */
        size_t l = esc(o + n, 40, req->method, req->method_len);
        o[n + l++] = ' ';
        l += esc(o + n + l, MAX_LINE_FIELD - 10 - l, req->target, req->target_len);
        l += (size_t)snprintf(o + n + l, 10, " HTTP/1.%u", req->version_minor);
        n += l;
    } else {
        o[n++] = '-';
    }
    o[n++] = '"';
    r->pre_len = (uint16_t)n;
    size_t m = 0;
    const char *names[2] = {"referer", "user-agent"};
    for (int k = 0; k < 2; k++) {
        const char *v = NULL;
        size_t vl = 0;
        if (req) {
            uint32_t len = 0;
            if (iox_http_header_find(req, names[k], &v, &len)) vl = len;
            else v = NULL;
        }
        m += put_str(o + n + m, " \"");
        if (v && vl) m += esc(o + n + m, MAX_HDR_FIELD, v, vl);
        else o[n + m++] = '-';
        o[n + m++] = '"';
    }
    r->suf_len = (uint16_t)m;
}

void iox_alog_request(struct iox_conn *c, struct iox_rslot *s, const struct iox_http_request *req)
{
    rec_fill(c, s, req);
}

void iox_alog_reject(struct iox_conn *c, struct iox_rslot *s)
{
    uint32_t i = *rec_slot(c, s);
    if (!i) { rec_fill(c, s, NULL); return; }
    /* A body error keeps its request's record; what its handler had
     * written was dropped, the error answer replaces it. */
    struct rec *r = &c->hs->alog->recs[i];
    r->bytes = r->head_bytes = 0;
    r->status = 0;
}

static struct rec *target_rec(struct iox_conn *c)
{
    if (c->rq_head == c->rq_tail) return NULL;   /* no open request (an early 100 has none) */
    uint32_t i = *rec_slot(c, iox_conn_slot(c, c->tgt));
    return i ? &c->hs->alog->recs[i] : NULL;
}

void iox_alog_head(struct iox_conn *c, int status, size_t head_bytes)
{
    struct rec *r = target_rec(c);
    if (!r) return;
    if (status) r->status = (uint16_t)status;
    r->head_bytes += head_bytes;
}

void iox_alog_count(struct iox_conn *c, size_t n)
{
    struct rec *r = target_rec(c);
    if (r) r->bytes += n;
}

static void emit(struct iox_conn *c, struct iox_rslot *s, int abandoned)
{
    struct iox_alog *a = c->hs->alog;
    uint32_t *slot = rec_slot(c, s);
    uint32_t i = *slot;
    *slot = 0;
    struct rec r0 = {0};
    struct rec *r = i ? &a->recs[i] : &r0;
    size_t need = (size_t)r->pre_len + r->suf_len + 48;
    char *o = iox_logfile_reserve(a->lf, need);
    if (o) {
        size_t n = 0;
        if (r->pre_len) { memcpy(o, r->text, r->pre_len); n = r->pre_len; }
        else {
            n = put_str(o, "- - - ");
            n += put_str(o + n, stamp(a, c->r));
            n += put_str(o + n, " \"-\"");
        }
        unsigned status = r->status ? r->status : abandoned ? 499 : 0;
        uint64_t body = r->bytes > r->head_bytes ? r->bytes - r->head_bytes : 0;
        n += (size_t)(body ? snprintf(o + n, 48, " %03u %llu", status, (unsigned long long)body)
                           : snprintf(o + n, 48, " %03u -", status));
        if (r->suf_len) { memcpy(o + n, r->text + r->pre_len, r->suf_len); n += r->suf_len; }
        else n += put_str(o + n, " \"-\" \"-\"");
        o[n++] = '\n';
        iox_logfile_commit(a->lf, n);
    }
    if (i) rec_free(a, i);
}

void iox_alog_done(struct iox_conn *c, struct iox_rslot *s)
{
    emit(c, s, 0);
}

void iox_alog_abandon(struct iox_conn *c, struct iox_rslot *s)
{
    emit(c, s, 1);
}
