/* pg_sim_server.h — a PostgreSQL server played by a test over the
 * simulated ring (ioxide/seam_sim.h): backend message builders and the server
 * of one connection, shared by tests/test_pg_sim.c (seeded schedules) and
 * tests/fuzz/fuzz_pg_conn.c (fuzzer-written schedules).
 *
 * The server reads what the client sent (the fd's peer capture) with a
 * small frontend-message reader: StartupMessage, then a PasswordMessage for
 * cleartext / MD5 auth, then Parse, Bind, Execute, Sync and Query. It
 * answers with backend messages built by hand into sv->tx; srv_deliver
 * hands them to the client's plain recvs in pieces. Every query carries its
 * number (the first Bind parameter, or "SELECT <n>"): the server answers
 * "r<n>", or an ErrorResponse "e<n>" when query_is_error(n), so a result
 * given to the wrong query is seen.
 *
 * What the server needs from its test (the simulator, the auth method, a
 * place to report a client that misbehaves, a loop turn) is in srv_host. */
#ifndef IOX_PG_SIM_SERVER_H
#define IOX_PG_SIM_SERVER_H
#include <ioxide/seam_sim.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

/* ---- backend message builders ---- */

struct buf { char *p; size_t len, cap, off; };

static inline void b_put(struct buf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}
static inline void b_u32(struct buf *b, uint32_t v) { unsigned char x[4] = {v >> 24, v >> 16, v >> 8, v}; b_put(b, x, 4); }
static inline void b_u16(struct buf *b, uint16_t v) { unsigned char x[2] = {v >> 8, v}; b_put(b, x, 2); }
static inline void b_str(struct buf *b, const char *s) { b_put(b, s, strlen(s) + 1); }

/* A message: type, length, then the payload built in `pl`. */
static inline void b_msg(struct buf *b, char type, const struct buf *pl)
{
    b_put(b, &type, 1);
    b_u32(b, (uint32_t)(pl ? pl->len : 0) + 4);
    if (pl && pl->len) b_put(b, pl->p, pl->len);
}

static inline void be_auth(struct buf *b, uint32_t code, const char *salt)
{
    struct buf pl = {0};
    b_u32(&pl, code);
    if (salt) b_put(&pl, salt, 4);
    b_msg(b, 'R', &pl);
    free(pl.p);
}

/* The BackendKeyData of the session on fd: pid fd, secret key srv_key(fd). */
static inline uint32_t srv_key(int fd) { return (uint32_t)fd * 7u + 1u; }

/* report: also the ParameterStatus a PostgreSQL 14+ server sends for
 * target_session_attrs (in_hot_standby, default_transaction_read_only),
 * as a standby (hot standby, read-only) or a primary. pid: its
 * BackendKeyData (pid, srv_key(pid)). */
static inline void be_session_start_as(struct buf *b, int report, int standby, int pid)
{
    struct buf pl = {0};
    be_auth(b, 0, NULL);
    b_str(&pl, "server_version"); b_str(&pl, report ? "16.0" : "13.0");
    b_msg(b, 'S', &pl);
    pl.len = 0;
    if (report) {
        b_str(&pl, "in_hot_standby"); b_str(&pl, standby ? "on" : "off");
        b_msg(b, 'S', &pl);
        pl.len = 0;
        b_str(&pl, "default_transaction_read_only"); b_str(&pl, "off");
        b_msg(b, 'S', &pl);
        pl.len = 0;
    }
    b_u32(&pl, (uint32_t)pid); b_u32(&pl, srv_key(pid));
    b_msg(b, 'K', &pl);
    pl.len = 0;
    b_put(&pl, "I", 1);
    b_msg(b, 'Z', &pl);
    free(pl.p);
}

/* One text row of one column (the answer to a session check). */
static inline void be_one_value(struct buf *b, const char *v)
{
    struct buf pl = {0};
    b_u16(&pl, 1);
    b_str(&pl, "v"); b_u32(&pl, 0); b_u16(&pl, 0); b_u32(&pl, 25); b_u16(&pl, 0xffff);
    b_u32(&pl, 0xffffffff); b_u16(&pl, 0);
    b_msg(b, 'T', &pl);
    pl.len = 0;
    b_u16(&pl, 1); b_u32(&pl, (uint32_t)strlen(v)); b_put(&pl, v, strlen(v));
    b_msg(b, 'D', &pl);
    pl.len = 0;
    b_str(&pl, "SHOW");
    b_msg(b, 'C', &pl);
    free(pl.p);
}

static inline void be_session_start(struct buf *b) { be_session_start_as(b, 0, 0, 4242); }

static inline void be_rows(struct buf *b, unsigned q, int with_desc)
{
    struct buf pl = {0};
    char v[24];
    if (with_desc) {
        b_u16(&pl, 1);
        b_str(&pl, "v"); b_u32(&pl, 0); b_u16(&pl, 0); b_u32(&pl, 25); b_u16(&pl, 0xffff);
        b_u32(&pl, 0xffffffff); b_u16(&pl, 0);
        b_msg(b, 'T', &pl);
        pl.len = 0;
    }
    int n = snprintf(v, sizeof v, "r%u", q);
    b_u16(&pl, 1); b_u32(&pl, (uint32_t)n); b_put(&pl, v, (size_t)n);
    b_msg(b, 'D', &pl);
    pl.len = 0;
    b_str(&pl, "SELECT 1");
    b_msg(b, 'C', &pl);
    free(pl.p);
}

static inline void be_error(struct buf *b, const char *sev, const char *code, const char *msg)
{
    struct buf pl = {0};
    b_put(&pl, "S", 1); b_str(&pl, sev);
    b_put(&pl, "V", 1); b_str(&pl, sev);
    b_put(&pl, "C", 1); b_str(&pl, code);
    b_put(&pl, "M", 1); b_str(&pl, msg);
    b_put(&pl, "", 1);
    b_msg(b, 'E', &pl);
    free(pl.p);
}

static inline void be_simple(struct buf *b, char type)
{
    b_msg(b, type, NULL);
}

static inline void be_rfq(struct buf *b)
{
    struct buf pl = {0};
    b_put(&pl, "I", 1);
    b_msg(b, 'Z', &pl);
    free(pl.p);
}

/* ---- the simulated server ---- */

enum { AUTH_TRUST, AUTH_CLEARTEXT, AUTH_MD5 };
enum srv_state { SV_CONNECTING, SV_STARTUP, SV_PASSWORD, SV_UP, SV_DEAD };

struct srv {
    int fd;
    enum srv_state st;
    int stalled;          /* the server does not answer (timeouts) */
    int send_fail;        /* fail the next send */
    size_t rx;            /* client bytes consumed (peer capture offset) */
    struct buf tx;        /* bytes owed to the client; [off, len) undelivered */
    unsigned bind_q;      /* the query of the last Bind */
    int bind_err;
    int cancel;           /* a CancelRequest landed: the next Execute/Query fails with 57014 */
    unsigned cancels;     /* CancelRequests this session received (as the target) */
    int was_cancel;       /* this connection carried a CancelRequest */
    /* What kind of server this is (target_session_attrs): a hot standby or
     * a primary; report: PostgreSQL 14+ (reports in_hot_standby and
     * default_transaction_read_only), else the client must ask. */
    uint8_t standby, report;
    unsigned checks;      /* session checks (SHOW / pg_is_in_recovery) answered */
    unsigned queries;     /* application queries (Sync or Query) answered */
};

static inline int query_is_error(unsigned q) { return q % 5 == 2; }

/* What the server needs from the test driving it. */
struct srv_host {
    struct iox_seam_sim *sim;
    int auth;                 /* AUTH_* */
    /* The client sent something wrong (fmt has %u for q, %s for got). */
    void (*bad)(void *ctx, const char *fmt, unsigned q, const char *got);
    void (*turn)(void *ctx);  /* one loop turn, after each delivered piece */
    void *ctx;
    /* The session whose BackendKeyData pid is pid (a CancelRequest's
     * target), or NULL; without it a CancelRequest is dropped. */
    struct srv *(*find)(void *ctx, int32_t pid);
};

static inline uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static inline uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Read what the client sent on sv and queue the answers. */
static inline void srv_serve(const struct srv_host *w, struct srv *sv)
{
    if (sv->st == SV_DEAD || sv->st == SV_CONNECTING || sv->stalled) return;
    size_t n;
    const unsigned char *in = (const unsigned char *)iox_sim_peer_bytes(w->sim, sv->fd, &n);
    while (sv->rx < n) {
        const unsigned char *m = in + sv->rx;
        size_t left = n - sv->rx;
        if (sv->st == SV_STARTUP) {
            if (left < 8 || left < rd32(m)) return;
            uint32_t len = rd32(m);
            if (len == 16 && rd32(m + 4) == 80877102) {
                /* CancelRequest: as the postmaster, signal the target (when
                 * pid and key match) and close. A backend that has consumed
                 * everything is idle and ignores it; otherwise the oldest
                 * query not answered yet fails with 57014 — the slow one, or
                 * the next if the slow one finished first (the race). */
                sv->rx += len;
                sv->was_cancel = 1;
                sv->st = SV_DEAD;
                struct srv *t = w->find ? w->find(w->ctx, (int32_t)rd32(m + 8)) : NULL;
                if (t && t->st == SV_UP && rd32(m + 12) == srv_key(t->fd)) {
                    size_t tn;
                    iox_sim_peer_bytes(w->sim, t->fd, &tn);
                    t->cancels++;
                    if (t->rx < tn) t->cancel = 1;
                    t->stalled = 0;   /* pg_sleep is interrupted */
                } else if (t && t->st == SV_UP) {
                    w->bad(w->ctx, "fd %u: CancelRequest with a wrong key%s", (unsigned)t->fd, "");
                }
                return;
            }
            if (rd32(m + 4) != 196608) w->bad(w->ctx, "fd %u: startup with a wrong protocol%s", (unsigned)sv->fd, "");
            sv->rx += len;
            if (w->auth == AUTH_TRUST) { be_session_start_as(&sv->tx, sv->report, sv->standby, sv->fd); sv->st = SV_UP; }
            else { be_auth(&sv->tx, w->auth == AUTH_MD5 ? 5 : 3, w->auth == AUTH_MD5 ? "salt" : NULL); sv->st = SV_PASSWORD; }
            continue;
        }
        if (left < 5 || left < 1 + rd32(m + 1)) return;
        char type = (char)m[0];
        uint32_t len = rd32(m + 1);
        const unsigned char *p = m + 5, *end = m + 1 + len;
        sv->rx += 1 + len;
        if (sv->st == SV_PASSWORD) {
            if (type != 'p') { w->bad(w->ctx, "fd %u: expected a password message%s", (unsigned)sv->fd, ""); continue; }
            /* MD5: "md5" + 32 hex digits; cleartext: the password. */
            if (w->auth == AUTH_MD5 ? (end - p != 36 || memcmp(p, "md5", 3)) : strcmp((const char *)p, "pw"))
                w->bad(w->ctx, "fd %u: bad password message%s", (unsigned)sv->fd, "");
            be_session_start_as(&sv->tx, sv->report, sv->standby, sv->fd);
            sv->st = SV_UP;
            continue;
        }
        switch (type) {
        case 'P': be_simple(&sv->tx, '1'); break;
        case 'B': {
            const unsigned char *x = p;
            x += strlen((const char *)x) + 1;           /* portal */
            x += strlen((const char *)x) + 1;           /* statement */
            uint16_t nf = rd16(x); x += 2 + 2 * nf;
            uint16_t np = rd16(x); x += 2;
            unsigned q = 0;
            if (np >= 1) { uint32_t l = rd32(x); x += 4; for (uint32_t i = 0; i < l; i++) q = q * 10 + (unsigned)(x[i] - '0'); }
            sv->bind_q = q;
            sv->bind_err = query_is_error(q);
            be_simple(&sv->tx, '2');
            break;
        }
        case 'E':
            if (sv->cancel) {
                sv->cancel = 0;
                be_error(&sv->tx, "ERROR", "57014", "canceling statement due to user request");
            } else if (sv->bind_err) {
                char msg[16];
                snprintf(msg, sizeof msg, "e%u", sv->bind_q);
                be_error(&sv->tx, "ERROR", "22012", msg);
            } else {
                be_rows(&sv->tx, sv->bind_q, 0);
            }
            break;
        case 'S': be_rfq(&sv->tx); sv->bind_err = 0; sv->queries++; break;
        case 'Q': {
            if (!strcmp((const char *)p, "SHOW transaction_read_only") ||
                !strcmp((const char *)p, "SELECT pg_catalog.pg_is_in_recovery()")) {
                be_one_value(&sv->tx, p[0] == 'S' && p[1] == 'H' ? (sv->standby ? "on" : "off") : (sv->standby ? "t" : "f"));
                be_rfq(&sv->tx);
                sv->checks++;
                break;
            }
            sv->queries++;
            unsigned q = (unsigned)strtoul((const char *)p + 7, NULL, 10);
            if (sv->cancel) {
                sv->cancel = 0;
                be_error(&sv->tx, "ERROR", "57014", "canceling statement due to user request");
            } else if (query_is_error(q)) {
                char msg[16];
                snprintf(msg, sizeof msg, "e%u", q);
                be_error(&sv->tx, "ERROR", "22012", msg);
            } else {
                be_rows(&sv->tx, q, 1);
            }
            be_rfq(&sv->tx);
            break;
        }
        default:
            w->bad(w->ctx, "fd %u: unexpected frontend message '%s'", (unsigned)sv->fd, (char[]){type, 0});
        }
    }
}

/* Deliver up to `max` owed bytes in pieces of at most `chunk`. */
static inline void srv_deliver(const struct srv_host *w, struct srv *sv, size_t max, size_t chunk)
{
    if (sv->st == SV_DEAD || sv->stalled) return;
    while (max && sv->tx.off < sv->tx.len) {
        size_t k = sv->tx.len - sv->tx.off;
        if (k > max) k = max;
        if (k > chunk) k = chunk;
        long got = iox_sim_recv_into(w->sim, sv->fd, sv->tx.p + sv->tx.off, k);
        if (got <= 0) return;
        sv->tx.off += (size_t)got;
        max -= (size_t)got;
        w->turn(w->ctx);
    }
}

#endif
