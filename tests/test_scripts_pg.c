/* test_scripts_pg.c — completion scripts for the pg_conn machine (one
 * session of a pool of one), the pg_conn vocabulary of the generic runner
 * (tests/script_runner.h); corpus tests/data/machines/pg_conn/NAME.md.
 *
 * The pool opens at the first step (with the conninfo of a `conninfo` step
 * when the script begins with one), so its IORING_OP_SOCKET is in flight
 * from the start. Each `socket ok` gives a new descriptor (1000, 1001, ...):
 * a socket's closes and late completions never mix with the next one's.
 * Steps (# starts a comment):
 *   conninfo "k=v ..."     first step only: the pool's conninfo (default
 *                          "host=/sim port=5432 user=sim dbname=sim",
 *                          connect_timeout_ms=1000 query_timeout_ms=2000
 *                          always appended)
 *   socket ok | socket -EMFILE       the pool's IORING_OP_SOCKET completes
 *   connect ok | connect -ECONNREFUSED  the connect completes
 *   recv MSG | MSG ...     the server's bytes arrive in the plain recv, as
 *                          many recvs as it takes; replayed whole, then cut
 *                          at every byte. A MSG is a backend message:
 *                            R ok | R cleartext | R md5   Authentication
 *                            S name=value   ParameterStatus
 *                            K              BackendKeyData
 *                            Z I | Z T | Z E  ReadyForQuery
 *                            1 | 2 | 3 | n | s  ParseComplete, BindComplete,
 *                                           CloseComplete, NoData, PortalSuspended
 *                            T              RowDescription (one text column "v")
 *                            D "a" "b" | D null  DataRow
 *                            C "SELECT 1"   CommandComplete
 *                            E CODE "msg" | E FATAL CODE "msg"  ErrorResponse
 *                            N "msg"        NoticeResponse
 *                            session        R ok | S server_version=16 | K | Z I
 *                            "raw bytes"    bytes as they are (escapes as
 *                                           in http_conn's corpus; 'S', 'N')
 *   recv eof | recv -ECONNRESET       the recv ends (EOF, or an error)
 *   send all | send N | send N/M | send -EPIPE  the oldest send completes in
 *                          full, N bytes (of M: a note for the reader), or fails
 *   query NAME "SQL"       iox_pg_query_simple
 *   query NAME prepared V  iox_pg_query with "SELECT $1" and parameter V
 *   advance MS             the clock moves MS ms; the pool's tick fires
 *   timeout                the clock moves past both deadlines (2001 ms)
 *   shutdown               iox_pg_pool_stop (the machine's `shutdown`: the
 *                          pool stops; the loop delivers what is in flight)
 *   stop                   iox_pg_pool_close now (the machine's `stop`: the
 *                          pool is freed whatever is still in the ring; the
 *                          books then only check the state and violations)
 * Expectations (they do not turn the loop):
 *   expect sent MSG ...    the frontend messages the server received since
 *                          the last `expect sent`, exactly, by name:
 *                          Startup SSLRequest Password Parse Bind Describe
 *                          Execute Sync Query Flush Close Terminate
 *                          ClientHello (TLS bytes)
 *   expect sent nothing    none
 *   expect op KIND | expect no-op KIND  an op of KIND (socket connect recv
 *                          send close timeout) is (not) in flight on the
 *                          session's socket (socket: on no fd)
 *   expect answer NAME ok ["v"]   the query's callback ran once, OK (first
 *                          cell v)
 *   expect answer NAME error "msg" | expect answer NAME failed
 *   expect waiting NAME    its callback has not run
 *   expect refused NAME    iox_pg_query* refused it (no callback ever)
 *   expect closed | expect open   the current socket closed exactly once and
 *                          nothing is in flight on it / not closed
 *   expect state NAME, expect took FROM/EVENT  (the core's)
 * After the script the pool is stopped and closed: every accepted query's
 * callback must have run exactly once, every socket must be closed exactly
 * once with no op left on it, no op of the pool left, no violation. */
#include "iox_test.h"
#include "pg_conn_machine.h"
#include "script_runner.h"
#include "sim_world.h"
#include <ioxide/pg.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD0 1000
enum { MAXQN = 32, MAXFDS = 16 };

static struct iox_pg_stmt stmt;
static int stmt_ready;

struct pq {
    char name[16];
    int rc, calls, status, err;
    char cell[64], msg[128];
    int has_cell;
};

struct pgw {
    struct sim_world w;
    struct iox_pg_pool *pool;
    char conninfo[512];
    int nfd;                       /* sockets given: fds FD0 .. FD0 + nfd - 1 */
    size_t rx[MAXFDS];             /* how far `expect sent` has read each fd */
    int untyped[MAXFDS];           /* the next message on the fd has no type byte */
    int state;                     /* the session's state (trace) */
    struct pq q[MAXQN];
    unsigned nq;
    char bad[160];                 /* a callback that should not have run */
    int closed_early;              /* `stop`: the pool was freed by the script */
};

static struct pgw *cur;
static const struct sr_script *cur_script;   /* the script being replayed */

static void trace(struct iox_pg_conn *c, int from, int event, int to)
{
    (void)c;
    if (cur) cur->state = to;
    sr_took(from, event, to);
}

static int fd_now(struct pgw *g) { return g->nfd ? FD0 + g->nfd - 1 : -1; }

static int pool_up(struct pgw *g, char *why, size_t wl);
static void pg_close(void *arg);

static void *pg_open(const struct sr_script *sc, char *why, size_t wl)
{
    static struct pgw world;
    struct pgw *g = &world;
    memset(g, 0, sizeof *g);
    if (!stmt_ready) {
        if (iox_pg_stmt_init(&stmt, "SELECT $1", 1)) { snprintf(why, wl, "stmt init failed"); return NULL; }
        stmt_ready = 1;
    }
    if (sw_open(&g->w, 4, 64, 500)) { snprintf(why, wl, "sim world setup failed"); return NULL; }
    g->state = PG_CONN_S_DOWN;
    snprintf(g->conninfo, sizeof g->conninfo, "host=/sim port=5432 user=sim dbname=sim");
    cur = g;
    pg_conn_trace = trace;
    cur_script = sc;
    if (sc->n && !strcmp(sc->st[0].verb, "conninfo")) snprintf(g->conninfo, sizeof g->conninfo, "%s", sc->st[0].data.s);
    if (pool_up(g, why, wl)) { pg_close(g); return NULL; }
    return g;
}

static int pool_up(struct pgw *g, char *why, size_t wl)
{
    if (g->pool) return 0;
    char ci[700], err[200];
    snprintf(ci, sizeof ci, "%s connect_timeout_ms=1000 query_timeout_ms=2000", g->conninfo);
    struct iox_pg_pool_config pc = {.conninfo = ci, .size = 1, .min_size = 1, .pipeline_max = 8, .depth = 8,
                                    .queue_max = 4, .backoff_max_ms = 100};
    if (iox_pg_pool_open(&g->w.r, &pc, &g->pool, err, sizeof err)) { snprintf(why, wl, "pool open: %s", err); return -1; }
    sw_turn(&g->w);
    return 0;
}

static void pg_close(void *arg)
{
    struct pgw *g = arg;
    if (g->pool) iox_pg_pool_close(g->pool);
    pg_conn_trace = NULL;
    cur = NULL;
    sw_close(&g->w);
}

static int pg_state(void *arg) { return ((struct pgw *)arg)->state; }

static void on_result(void *user, const struct iox_pg_res *res)
{
    struct pq *q = user;
    q->calls++;
    q->status = res->status;
    q->err = res->err;
    snprintf(q->msg, sizeof q->msg, "%s", res->message);
    q->has_cell = res->status == IOX_PG_OK && res->nrows && res->ncols;
    if (q->has_cell) {
        const struct iox_pg_str *c = iox_pg_cell(res, 0, 0);
        snprintf(q->cell, sizeof q->cell, "%.*s", c->len < 0 ? 4 : (int)c->len, c->len < 0 ? "null" : c->ptr);
    }
    if (cur && q->rc && !cur->bad[0]) snprintf(cur->bad, sizeof cur->bad, "callback for refused query %s", q->name);
}

/* ---- backend messages ---- */

static void put32(struct sbuf *b, uint32_t v) { unsigned char x[4] = {v >> 24, v >> 16, v >> 8, v}; sb_put(b, x, 4); }
static void put16(struct sbuf *b, uint16_t v) { unsigned char x[2] = {v >> 8, v}; sb_put(b, x, 2); }
static void putz(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s) + 1); }
static void msg(struct sbuf *b, char type, const struct sbuf *pl)
{
    sb_put(b, &type, 1);
    put32(b, (uint32_t)(pl->n + 4));
    if (pl->n) sb_put(b, pl->s, pl->n);
}

/* One message of a recv line at *p (up to '|' or the end) into out. */
static int backend(const char **p, struct sbuf *out, char *why, size_t wl)
{
    const char *s = *p;
    while (*s == ' ') s++;
    struct sbuf pl = {0};
    char w1[64] = "", w2[64] = "";
    int rc = 0;
    if (*s == '"') {
        if (sr_quoted(&s, out)) { snprintf(why, wl, "unterminated string"); return -1; }
        goto done;
    }
    char type = *s++;
    if (*s && *s != ' ' && *s != '|' && type != 's') {   /* a word, not a one-letter type */
        s--;
        if (!strncmp(s, "session", 7)) {
            s += 7;
            const char *ses = "R ok | S server_version=16 | K | Z I";
            while (*ses) {
                if (backend(&ses, out, why, wl)) return -1;
                if (*ses == '|') ses++;
            }
            goto done;
        }
        snprintf(why, wl, "unknown backend message \"%.20s\"", s);
        return -1;
    }
    if (type == 's' && !strncmp(s, "ession", 6)) {
        s--;
        s += 7;
        const char *ses = "R ok | S server_version=16 | K | Z I";
        while (*ses) {
            if (backend(&ses, out, why, wl)) return -1;
            if (*ses == '|') ses++;
        }
        goto done;
    }
    while (*s == ' ') s++;
    switch (type) {
    case 'R':
        if (sscanf(s, "%63s", w1) != 1) { snprintf(why, wl, "R ok | cleartext | md5"); return -1; }
        s += strlen(w1);
        if (!strcmp(w1, "ok")) put32(&pl, 0);
        else if (!strcmp(w1, "cleartext")) put32(&pl, 3);
        else if (!strcmp(w1, "md5")) { put32(&pl, 5); sb_put(&pl, "salt", 4); }
        else { snprintf(why, wl, "R ok | cleartext | md5"); return -1; }
        msg(out, 'R', &pl);
        break;
    case 'S': {
        if (sscanf(s, "%63[^= ]=%63[^ |]", w1, w2) != 2) { snprintf(why, wl, "S name=value"); return -1; }
        s += strlen(w1) + 1 + strlen(w2);
        putz(&pl, w1); putz(&pl, w2);
        msg(out, 'S', &pl);
        break;
    }
    case 'K': put32(&pl, 4242); put32(&pl, 777); msg(out, 'K', &pl); break;
    case 'Z':
        if (*s != 'I' && *s != 'T' && *s != 'E') { snprintf(why, wl, "Z I | T | E"); return -1; }
        sb_put(&pl, s, 1);
        s++;
        msg(out, 'Z', &pl);
        break;
    case '1': case '2': case '3': case 'n': case 's': msg(out, type, &pl); break;
    case 'T':
        put16(&pl, 1);
        putz(&pl, "v"); put32(&pl, 0); put16(&pl, 0); put32(&pl, 25); put16(&pl, 0xffff); put32(&pl, 0xffffffff); put16(&pl, 0);
        msg(out, 'T', &pl);
        break;
    case 'D': {
        struct sbuf cells = {0};
        uint16_t nc = 0;
        while (*s == '"' || !strncmp(s, "null", 4)) {
            if (*s == '"') {
                struct sbuf v = {0};
                if (sr_quoted(&s, &v)) { snprintf(why, wl, "unterminated string"); free(cells.s); return -1; }
                put32(&cells, (uint32_t)v.n);
                sb_put(&cells, v.s, v.n);
                free(v.s);
            } else {
                s += 4;
                put32(&cells, 0xffffffff);
            }
            nc++;
            while (*s == ' ') s++;
        }
        put16(&pl, nc);
        if (cells.n) sb_put(&pl, cells.s, cells.n);
        free(cells.s);
        msg(out, 'D', &pl);
        break;
    }
    case 'C': case 'N': {
        struct sbuf v = {0};
        if (sr_quoted(&s, &v)) { snprintf(why, wl, "%c \"text\"", type); return -1; }
        if (type == 'C') putz(&pl, v.s);
        else { sb_put(&pl, "SNOTICE", 8); sb_put(&pl, "M", 1); putz(&pl, v.s); sb_put(&pl, "", 1); }
        free(v.s);
        msg(out, type, &pl);
        break;
    }
    case 'E': {
        const char *sev = "ERROR";
        if (!strncmp(s, "FATAL ", 6)) { sev = "FATAL"; s += 6; }
        if (sscanf(s, "%63s", w1) != 1) { snprintf(why, wl, "E [FATAL] CODE \"msg\""); return -1; }
        s += strlen(w1);
        while (*s == ' ') s++;
        struct sbuf v = {0};
        if (sr_quoted(&s, &v)) { snprintf(why, wl, "E [FATAL] CODE \"msg\""); return -1; }
        sb_put(&pl, "S", 1); putz(&pl, sev);
        sb_put(&pl, "V", 1); putz(&pl, sev);
        sb_put(&pl, "C", 1); putz(&pl, w1);
        sb_put(&pl, "M", 1); putz(&pl, v.s);
        sb_put(&pl, "", 1);
        free(v.s);
        msg(out, 'E', &pl);
        break;
    }
    default:
        snprintf(why, wl, "unknown backend message '%c'", type);
        rc = -1;
    }
done:
    free(pl.s);
    while (*s == ' ') s++;
    if (*s && *s != '|') { snprintf(why, wl, "junk after a message: \"%.20s\"", s); return -1; }
    *p = s;
    return rc;
}

/* ---- steps ---- */

#define FAILF(...) do { snprintf(why, wl, __VA_ARGS__); return SR_FAIL; } while (0)

static int find_q(struct pgw *g, const char *name)
{
    for (unsigned i = 0; i < g->nq; i++)
        if (!strcmp(g->q[i].name, name)) return (int)i;
    return -1;
}

static int op_kind(const char *k)
{
    static const struct { const char *n; int op; } ops[] = {
        {"socket", IOX_OP_SOCKET}, {"connect", IOX_OP_CONNECT}, {"recv", IOX_OP_RECV}, {"send", IOX_OP_SEND},
        {"close", IOX_OP_CLOSE}, {"timeout", IOX_OP_TIMEOUT},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(ops[i].n, k)) return ops[i].op;
    return -1;
}

static const char *const fe_names[] = {"Startup", "SSLRequest", "Password", "Parse", "Bind", "Describe", "Execute",
                                       "Sync", "Query", "Flush", "Close", "Terminate", "ClientHello", NULL};

static int pg_parse(struct sr_step *st, char *why, size_t wl)
{
    const char *v = st->verb, *rest = st->rest;
    if (!strcmp(v, "conninfo")) {
        if (st->line && sr_quoted(&rest, &st->data)) { snprintf(why, wl, "conninfo \"k=v ...\""); return -1; }
        return 0;
    }
    if (!strcmp(v, "socket")) {
        if (strcmp(st->arg, "ok") && strcmp(st->arg, "-EMFILE")) { snprintf(why, wl, "socket ok | -EMFILE"); return -1; }
        return 0;
    }
    if (!strcmp(v, "connect")) {
        if (strcmp(st->arg, "ok") && strcmp(st->arg, "-ECONNREFUSED")) { snprintf(why, wl, "connect ok | -ECONNREFUSED"); return -1; }
        return 0;
    }
    if (!strcmp(v, "recv")) {
        if (!strcmp(st->arg, "eof") || !strcmp(st->arg, "-ECONNRESET")) return 0;
        while (*rest) {
            if (backend(&rest, &st->data, why, wl)) return -1;
            if (*rest == '|') rest++;
        }
        if (!st->data.n) { snprintf(why, wl, "recv needs messages, eof or -ECONNRESET"); return -1; }
        st->has_data = 1;
        st->split = 1;
        return 0;
    }
    if (!strcmp(v, "send")) {
        if (strcmp(st->arg, "all") && strcmp(st->arg, "-EPIPE") && (st->num = strtol(st->arg, NULL, 10)) <= 0) {
            snprintf(why, wl, "send all | N | N/M | -EPIPE");
            return -1;
        }
        return 0;
    }
    if (!strcmp(v, "query")) {
        char nm[32];
        const char *r = rest;
        if (sscanf(r, "%31s", nm) != 1 || strlen(nm) >= 16) { snprintf(why, wl, "query NAME \"SQL\" | NAME prepared V"); return -1; }
        r += strlen(nm);
        while (*r == ' ') r++;
        if (*r == '"') {
            if (sr_quoted(&r, &st->data)) { snprintf(why, wl, "unterminated SQL"); return -1; }
        } else if (!strncmp(r, "prepared ", 9)) {
            st->has_data = 1;
            r += 9;
            sb_put(&st->data, r, strlen(r));
        } else { snprintf(why, wl, "query NAME \"SQL\" | NAME prepared V"); return -1; }
        snprintf(st->arg, sizeof st->arg, "%s", nm);
        return 0;
    }
    if (!strcmp(v, "advance")) {
        if ((st->num = strtol(st->arg, NULL, 10)) <= 0) { snprintf(why, wl, "advance MS"); return -1; }
        return 0;
    }
    if (!strcmp(v, "timeout") || !strcmp(v, "shutdown") || !strcmp(v, "stop")) return 0;
    if (!strcmp(v, "expect")) {
        const char *a = st->arg;
        if (!strcmp(a, "closed") || !strcmp(a, "open")) return 0;
        if (!strcmp(a, "op") || !strcmp(a, "no-op")) {
            char k[32];
            if (sscanf(rest, "%*s %31s", k) != 1 || (st->num = op_kind(k)) < 0) {
                snprintf(why, wl, "expect op|no-op socket|connect|recv|send|close|timeout");
                return -1;
            }
            return 0;
        }
        if (!strcmp(a, "sent")) {
            const char *r = rest + 4;
            char nm[32];
            int n;
            while (sscanf(r, "%31s%n", nm, &n) == 1) {
                r += n;
                if (!strcmp(nm, "nothing")) continue;
                int k = -1;
                for (int i = 0; fe_names[i]; i++)
                    if (!strcmp(fe_names[i], nm)) k = i;
                if (k < 0) { snprintf(why, wl, "no frontend message \"%s\"", nm); return -1; }
                sb_put(&st->data, nm, strlen(nm));
                sb_put(&st->data, " ", 1);
            }
            if (!st->data.s) sb_put(&st->data, "", 0);
            return 0;
        }
        if (!strcmp(a, "answer") || !strcmp(a, "waiting") || !strcmp(a, "refused")) {
            char nm[32], how[16] = "";
            int n = 0;
            if (sscanf(rest, "%*s %31s%n", nm, &n) != 1) { snprintf(why, wl, "expect %s NAME ...", a); return -1; }
            const char *r = rest + n;
            int is_answer = !strcmp(a, "answer");
            snprintf(st->arg + strlen(st->arg), sizeof st->arg - strlen(st->arg), " %s", nm);
            if (!is_answer) return 0;
            if (sscanf(r, " %15s%n", how, &n) != 1 || (strcmp(how, "ok") && strcmp(how, "error") && strcmp(how, "failed"))) {
                snprintf(why, wl, "expect answer NAME ok [\"v\"] | error \"msg\" | failed");
                return -1;
            }
            st->num = !strcmp(how, "ok") ? IOX_PG_OK : !strcmp(how, "error") ? IOX_PG_ERROR : IOX_PG_FAILED;
            r += n;
            while (*r == ' ') r++;
            if (*r == '"') {
                if (sr_quoted(&r, &st->data)) { snprintf(why, wl, "unterminated string"); return -1; }
                st->has_data = 1;
            }
            return 0;
        }
        snprintf(why, wl, "unknown expectation \"%s\"", a);
        return -1;
    }
    snprintf(why, wl, "unknown step \"%s\"", v);
    return -1;
}

/* Deliver bytes to the session's plain recvs, a turn after each. */
static int deliver(struct pgw *g, const char *p, size_t n)
{
    size_t done = 0;
    for (int guard = 0; done < n && guard < 10000; guard++) {
        long k = iox_sim_recv_into(g->w.sim, fd_now(g), p + done, n - done);
        if (k <= 0) return -1;
        done += (size_t)k;
        sw_turn(&g->w);
    }
    return done == n ? 0 : -1;
}

static void tick(struct pgw *g, uint64_t ms)
{
    sw_advance(&g->w, ms);
    iox_sim_complete_all(g->w.sim, IOX_OP_TIMEOUT, -ETIME);
    sw_turn(&g->w);
}

static uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* The frontend messages received on fd k since the last look, as names. */
static int sent_since(struct pgw *g, int k, struct sbuf *out)
{
    size_t n;
    const unsigned char *in = (const unsigned char *)iox_sim_peer_bytes(g->w.sim, FD0 + k, &n);
    while (in && g->rx[k] < n) {
        const unsigned char *m = in + g->rx[k];
        size_t left = n - g->rx[k];
        const char *nm;
        size_t len;
        if (g->untyped[k] == 0 && m[0] == 0x16) {             /* a TLS record: the rest is ciphertext */
            nm = "ClientHello";
            len = left;
        } else if (g->untyped[k] == 0) {
            if (left < 8) return -1;
            len = rd32(m);
            uint32_t code = rd32(m + 4);
            nm = code == 80877103 ? "SSLRequest" : code == 196608 ? "Startup" : "?";
            g->untyped[k] = code == 80877103 ? 0 : 1;
        } else {
            if (left < 5) return -1;
            len = 1 + rd32(m + 1);
            switch (m[0]) {
            case 'p': nm = "Password"; break;
            case 'P': nm = "Parse"; break;
            case 'B': nm = "Bind"; break;
            case 'D': nm = "Describe"; break;
            case 'E': nm = "Execute"; break;
            case 'S': nm = "Sync"; break;
            case 'Q': nm = "Query"; break;
            case 'H': nm = "Flush"; break;
            case 'C': nm = "Close"; break;
            case 'X': nm = "Terminate"; break;
            default: nm = "?";
            }
        }
        if (len > left) return -1;
        g->rx[k] += len;
        sb_put(out, nm, strlen(nm));
        sb_put(out, " ", 1);
    }
    if (!out->s) sb_put(out, "", 0);
    return 0;
}

static int pg_step(void *arg, const struct sr_step *st, size_t split, char *why, size_t wl)
{
    struct pgw *g = arg;
    struct iox_seam_sim *sim = g->w.sim;
    const char *v = st->verb, *a = st->arg;
#define NOOP(...) do { if (st->lenient) return SR_SKIP; FAILF(__VA_ARGS__); } while (0)
    if (!strcmp(v, "conninfo")) {
        if (st != &cur_script->st[0]) FAILF("conninfo must come first");
        return SR_OK;
    }
    int fd = fd_now(g);
    if (!strcmp(v, "socket")) {
        if (!strcmp(a, "ok")) {
            if (g->nfd == MAXFDS) FAILF("too many sockets");
            if (iox_sim_complete_one(sim, IOX_OP_SOCKET, -1, FD0 + g->nfd) < 0) NOOP("no socket op in flight");
            g->nfd++;
        } else if (iox_sim_complete_one(sim, IOX_OP_SOCKET, -1, -EMFILE) < 0) NOOP("no socket op in flight");
    } else if (!strcmp(v, "connect")) {
        if (fd < 0 || iox_sim_complete_one(sim, IOX_OP_CONNECT, fd, !strcmp(a, "ok") ? 0 : -ECONNREFUSED) < 0)
            NOOP("no connect in flight");
    } else if (!strcmp(v, "recv")) {
        if (st->has_data) {
            const char *d = st->data.s;
            size_t n = st->data.n;
            if (fd < 0 || !iox_sim_has_op(sim, IOX_OP_RECV, fd)) NOOP("no recv in flight");
            if (split && split < n) {
                if (deliver(g, d, split) || deliver(g, d + split, n - split)) FAILF("no recv in flight to take the bytes");
            } else if (deliver(g, d, n)) FAILF("no recv in flight to take the bytes");
            return SR_OK;
        }
        if (fd < 0 || iox_sim_recv_end(sim, fd, !strcmp(a, "eof") ? 0 : -ECONNRESET) < 0) NOOP("no recv in flight");
    } else if (!strcmp(v, "send")) {
        if (fd < 0 || !iox_sim_has_op(sim, IOX_OP_SEND, fd)) NOOP("no send in flight");
        if (!strcmp(a, "all")) sw_send_all(&g->w, fd, 1000);
        else iox_sim_send(sim, fd, !strcmp(a, "-EPIPE") ? -EPIPE : (int)st->num);
    } else if (!strcmp(v, "query")) {
        if (g->nq == MAXQN) FAILF("too many queries");
        if (find_q(g, a) >= 0) FAILF("query %s named twice", a);
        struct pq *q = &g->q[g->nq++];
        memset(q, 0, sizeof *q);
        snprintf(q->name, sizeof q->name, "%.15s", a);
        if (st->has_data) {
            const char *vals[1] = {st->data.s};
            q->rc = iox_pg_query(g->pool, &stmt, 1, vals, on_result, q);
        } else {
            q->rc = iox_pg_query_simple(g->pool, st->data.s, on_result, q);
        }
        if (q->rc && q->calls) FAILF("refused query %s got a callback", a);
    } else if (!strcmp(v, "advance")) {
        tick(g, (uint64_t)st->num);
        return SR_OK;
    } else if (!strcmp(v, "timeout")) {
        tick(g, 2001);
        return SR_OK;
    } else if (!strcmp(v, "shutdown")) {
        iox_pg_pool_stop(g->pool);
    } else if (!strcmp(v, "stop")) {
        if (!g->pool) FAILF("the pool is closed already");
        iox_pg_pool_close(g->pool);
        g->pool = NULL;
        g->closed_early = 1;
    } else if (!strcmp(v, "expect")) {
        if (g->bad[0]) FAILF("%s", g->bad);
        if (!strcmp(a, "closed") || !strcmp(a, "open")) {
            if (fd < 0) FAILF("no socket was ever made");
            unsigned cl = iox_sim_closes(sim, fd), live = iox_sim_live_ops(sim, fd);
            if (!strcmp(a, "closed") && (cl != 1 || live)) FAILF("fd %d: %u closes, %u ops in flight", fd, cl, live);
            if (!strcmp(a, "open") && cl) FAILF("fd %d is closed", fd);
        } else if (!strcmp(a, "op") || !strcmp(a, "no-op")) {
            int on = st->num == IOX_OP_SOCKET || st->num == IOX_OP_TIMEOUT ? -1 : fd;
            int has = (on >= 0 || st->num == IOX_OP_SOCKET || st->num == IOX_OP_TIMEOUT) && iox_sim_has_op(sim, (unsigned)st->num, on);
            if (!strcmp(a, "op") && !has) FAILF("no %s in flight", st->rest + 3);
            if (!strcmp(a, "no-op") && has) FAILF("%s in flight", st->rest + 6);
        } else if (!strcmp(a, "sent")) {
            struct sbuf got = {0};
            int rc = fd < 0 ? 0 : sent_since(g, fd - FD0, &got);
            if (!got.s) sb_put(&got, "", 0);
            int same = rc == 0 && !strcmp(got.s, st->data.s);
            char gs[200];
            snprintf(gs, sizeof gs, "%s", got.n ? got.s : "nothing ");
            free(got.s);
            if (rc) FAILF("the client's bytes are not frontend messages");
            if (!same) FAILF("sent %swant %s", gs, st->data.n ? st->data.s : "nothing");
        } else {
            char nm[32];
            sscanf(a, "%*s %31s", nm);
            int k = find_q(g, nm);
            if (k < 0) FAILF("no query %s", nm);
            struct pq *q = &g->q[k];
            if (!strncmp(a, "refused", 7)) {
                if (!q->rc) FAILF("query %s was accepted", nm);
            } else if (q->rc) {
                FAILF("query %s was refused (%s)", nm, strerror(-q->rc));
            } else if (!strncmp(a, "waiting", 7)) {
                if (q->calls) FAILF("query %s was answered (status %d, \"%s\")", nm, q->status, q->msg);
            } else {
                static const char *const sn[] = {"ok", "error", "failed"};
                if (q->calls != 1) FAILF("query %s: %d callbacks, want 1", nm, q->calls);
                if (q->status != st->num)
                    FAILF("query %s: %s (\"%s\"), want %s", nm, sn[q->status], q->status == IOX_PG_OK ? q->cell : q->msg, sn[st->num]);
                if (st->has_data) {
                    const char *got = q->status == IOX_PG_OK ? q->cell : q->msg;
                    if (q->status == IOX_PG_OK && !q->has_cell) FAILF("query %s: no rows, want \"%s\"", nm, st->data.s);
                    if (strcmp(got, st->data.s)) FAILF("query %s: \"%s\", want \"%s\"", nm, got, st->data.s);
                }
            }
        }
        return SR_OK;
    }
#undef NOOP
    sw_turn(&g->w);
    return SR_OK;
}

/* Stop, let every op of the pool end (a socket still coming is given a
 * descriptor, which must then be closed too), check the books. */
static int pg_finish(void *arg, char *why, size_t wl)
{
    struct pgw *g = arg;
    struct iox_seam_sim *sim = g->w.sim;
    if (g->closed_early) {
        if (g->state != PG_CONN_S_STOPPED) FAILF("state %s after close, want stopped", pg_conn_state_names[g->state]);
        if (iox_sim_violations(sim)) FAILF("%u ring violations (%s)", iox_sim_violations(sim), iox_sim_last_violation(sim));
        return 0;
    }
    iox_pg_pool_stop(g->pool);
    sw_turn(&g->w);
    for (int guard = 0; iox_pg_pool_ops(g->pool) && guard < 100; guard++) {
        if (g->nfd < MAXFDS && iox_sim_complete_one(sim, IOX_OP_SOCKET, -1, FD0 + g->nfd) == 0) g->nfd++;
        int fd = fd_now(g);
        if (fd >= 0) {
            iox_sim_complete_one(sim, IOX_OP_CONNECT, fd, -ECANCELED);
            iox_sim_recv_end(sim, fd, -ECANCELED);
            iox_sim_send(sim, fd, -ECANCELED);
        }
        iox_sim_complete_all(sim, IOX_OP_TIMEOUT, -ECANCELED);
        sw_turn(&g->w);
    }
    if (iox_pg_pool_ops(g->pool)) FAILF("after stop: %u ops of the pool left", iox_pg_pool_ops(g->pool));
    iox_pg_pool_close(g->pool);
    g->pool = NULL;
    sw_turn(&g->w);
    if (g->bad[0]) FAILF("%s", g->bad);
    for (unsigned i = 0; i < g->nq; i++)
        if (!g->q[i].rc && g->q[i].calls != 1) FAILF("query %s: %d callbacks after close, want 1", g->q[i].name, g->q[i].calls);
    for (int k = 0; k < g->nfd; k++)
        if (iox_sim_closes(sim, FD0 + k) != 1 || iox_sim_live_ops(sim, FD0 + k))
            FAILF("fd %d: %u closes, %u ops in flight at the end", FD0 + k, iox_sim_closes(sim, FD0 + k),
                  iox_sim_live_ops(sim, FD0 + k));
    if (iox_sim_violations(sim)) FAILF("%u ring violations (%s)", iox_sim_violations(sim), iox_sim_last_violation(sim));
    if (g->state != PG_CONN_S_STOPPED) FAILF("state %s after close, want stopped", pg_conn_state_names[g->state]);
    return 0;
}

/* A trail line of generated/pg_conn.pml's @@script table as a step. */
static int from_trail(const char *t, char *out, size_t cap)
{
    if (!strncmp(t, "cancel ", 7) || !strncmp(t, "close ", 6) || strstr(t, "-ECANCELED") || !strcmp(t, "open"))
        return 0;
    if (!strncmp(t, "socket ", 7)) snprintf(out, cap, "socket %s", t[7] == '-' ? "-EMFILE" : "ok");
    else if (!strncmp(t, "connect ", 8)) snprintf(out, cap, "connect %s", t[8] == '0' ? "ok" : "-ECONNREFUSED");
    else if (!strcmp(t, "recv 0")) snprintf(out, cap, "recv eof");
    else if (!strncmp(t, "recv \"R", 7)) snprintf(out, cap, "recv R ok | S server_version=16 | K");
    else if (!strncmp(t, "recv \"Z", 7)) snprintf(out, cap, "recv Z I");
    else if (!strcmp(t, "query")) {
        static unsigned n;
        snprintf(out, cap, "query t%u \"SELECT 1\"", n++);
    } else snprintf(out, cap, "%s", t);
    return 1;
}

/* Handshaking is reached (the ClientHello goes out) but a handshake is never
 * completed: that takes a TLS server (pg_tls, the playground's TLS cases). */
static const char *const pg_unreached[] = {NULL};

extern const struct sr_vocab pg_conn_vocab;
const struct sr_vocab pg_conn_vocab = {
    .machine = "pg_conn",
    .state_names = pg_conn_state_names,
    .nstates = PG_CONN_STATE_COUNT,
    .event_names = pg_conn_event_names,
    .nevents = PG_CONN_EVENT_COUNT,
    .parse = pg_parse,
    .open = pg_open,
    .step = pg_step,
    .state = pg_state,
    .finish = pg_finish,
    .close = pg_close,
    .from_trail = from_trail,
    .unreached_ok = pg_unreached,
};

IOX_TEST(machine_scripts, pg_conn_corpus)
{
    unsigned cases = 0, runs = 0;
    unsigned failures = sr_run_corpus(&pg_conn_vocab, &cases, &runs);
    CU_ASSERT(cases >= 15);
    CU_ASSERT_EQUAL(failures, 0);
}
