/* commands.c — see commands.h. */
#include "commands.h"
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define A(i) argv[i].p, argv[i].len

static int eq(const struct resp_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp(a->p, s, n) == 0;
}

static void err_int(struct rbuf *out) { rb_error(out, "ERR value is not an integer or out of range"); }
static void err_syntax(struct rbuf *out) { rb_error(out, "ERR syntax error"); }

/* ---- no key ---------------------------------------------------------------- */

static void c_ping(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)db;
    if (argc > 2) { rb_error(out, "ERR wrong number of arguments for 'ping' command"); return; }
    if (argc == 1) rb_simple(out, "PONG");
    else rb_bulk(out, A(1));
}

static void c_echo(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)db; (void)argc;
    rb_bulk(out, A(1));
}

static void c_select(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)db; (void)argc;
    long long id;
    if (!resp_str2ll(A(1), &id) || id < INT_MIN || id > INT_MAX) { err_int(out); return; }
    if (id != 0) { rb_error(out, "ERR DB index is out of range"); return; }
    rb_simple(out, "OK");
}

static void c_hello(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)db;
    if (argc >= 2) {
        long long v;
        if (!resp_str2ll(A(1), &v)) {
            rb_error(out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        /* RESP3 is not spoken here: what redis-server answers for a
         * version it does not know. */
        if (v != 2) { rb_error(out, "NOPROTO unsupported protocol version"); return; }
        if (argc > 2) { rb_error(out, "ERR Syntax error in HELLO option"); return; }
    }
    rb_array(out, 14);
    rb_bulk_str(out, "server"); rb_bulk_str(out, "redis");
    rb_bulk_str(out, "version"); rb_bulk_str(out, "7.0.0");
    rb_bulk_str(out, "proto"); rb_int(out, 2);
    rb_bulk_str(out, "id"); rb_int(out, 1);
    rb_bulk_str(out, "mode"); rb_bulk_str(out, "standalone");
    rb_bulk_str(out, "role"); rb_bulk_str(out, "master");
    rb_bulk_str(out, "modules"); rb_array(out, 0);
}

/* redis-cli asks COMMAND DOCS for its hints and takes an empty answer. */
static void c_command(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)db;
    if (argc >= 2 && eq(&argv[1], "COUNT")) {
        unsigned n = 0;
        while (resp_cmd_at(n)) n++;
        rb_int(out, n);
        return;
    }
    rb_array(out, 0);
}

static void c_info(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)argv; (void)argc;
    char s[512];
    int n = snprintf(s, sizeof s,
                     "# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\nserver:ioxide-resp\r\n"
                     "reactors:%u\r\n\r\n# Replication\r\nrole:master\r\nconnected_slaves:0\r\n",
                     db->nreactors);
    rb_bulk(out, s, (size_t)n);
}

/* redis-benchmark asks CONFIG GET save / appendonly before it starts. */
static void c_config(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)db;
    if (argc == 3 && eq(&argv[1], "GET")) {
        if (eq(&argv[2], "save")) { rb_array(out, 2); rb_bulk_str(out, "save"); rb_bulk_str(out, ""); return; }
        if (eq(&argv[2], "appendonly")) { rb_array(out, 2); rb_bulk_str(out, "appendonly"); rb_bulk_str(out, "no"); return; }
        rb_array(out, 0);
        return;
    }
    rb_errorf(out, "ERR unknown subcommand '%.128s'. Try CONFIG HELP.", argc > 1 ? argv[1].p : "");
}

/* ---- one key ---------------------------------------------------------------- */

static void c_get(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)argc;
    struct ks_entry *e = ks_get(&db->ks, A(1), ks_now_ms());
    if (e) rb_bulk(out, e->val, e->vlen);
    else rb_nil(out);
}

enum { SET_NX = 1, SET_XX = 2, SET_EX = 4, SET_PX = 8, SET_KEEPTTL = 16, SET_GET = 32 };

static void c_set(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    /* redis-server's parseExtendedStringArgumentsOrReply: each option
     * refused when a conflicting one came before it; EX and PX take the
     * next argument. */
    unsigned fl = 0;
    const struct resp_arg *exp = NULL;
    for (unsigned j = 3; j < argc; j++) {
        const struct resp_arg *o = &argv[j];
        int next = j + 1 < argc;
        if (eq(o, "NX") && !(fl & SET_XX)) fl |= SET_NX;
        else if (eq(o, "XX") && !(fl & SET_NX)) fl |= SET_XX;
        else if (eq(o, "GET")) fl |= SET_GET;
        else if (eq(o, "KEEPTTL") && !(fl & (SET_EX | SET_PX))) fl |= SET_KEEPTTL;
        else if (eq(o, "EX") && !(fl & (SET_KEEPTTL | SET_PX)) && next) { fl |= SET_EX; exp = &argv[++j]; }
        else if (eq(o, "PX") && !(fl & (SET_KEEPTTL | SET_EX)) && next) { fl |= SET_PX; exp = &argv[++j]; }
        else { err_syntax(out); return; }
    }
    int64_t now = ks_now_ms(), at = 0;
    if (exp) {
        long long v;
        if (!resp_str2ll(exp->p, exp->len, &v)) { err_int(out); return; }
        if (v <= 0 || ((fl & SET_EX) && v > LLONG_MAX / 1000)) {
            rb_error(out, "ERR invalid expire time in 'set' command");
            return;
        }
        if (fl & SET_EX) v *= 1000;
        if (v > LLONG_MAX - now) { rb_error(out, "ERR invalid expire time in 'set' command"); return; }
        at = now + v;
    }
    struct ks_entry *e = ks_get(&db->ks, A(1), now);
    if (fl & SET_GET) {
        if (e) rb_bulk(out, e->val, e->vlen);
        else rb_nil(out);
    }
    if ((fl & SET_NX && e) || (fl & SET_XX && !e)) {
        if (!(fl & SET_GET)) rb_nil(out);
        return;
    }
    if (!ks_set(&db->ks, A(1), A(2), !!(fl & SET_KEEPTTL), at, now)) {
        out->len = 0;
        rb_error(out, "OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    if (!(fl & SET_GET)) rb_simple(out, "OK");
}

static void incr_by(struct resp_db *db, const struct resp_arg *key, long long by, struct rbuf *out)
{
    int64_t now = ks_now_ms();
    struct ks_entry *e = ks_get(&db->ks, key->p, key->len, now);
    long long v = 0;
    if (e && !resp_str2ll(e->val, e->vlen, &v)) { err_int(out); return; }
    if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v)) {
        rb_error(out, "ERR increment or decrement would overflow");
        return;
    }
    v += by;
    char s[24];
    int n = snprintf(s, sizeof s, "%lld", v);
    if (!ks_set(&db->ks, key->p, key->len, s, (size_t)n, 1, 0, now)) {
        rb_error(out, "OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    rb_int(out, v);
}

static void c_incr(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)argc;
    incr_by(db, &argv[1], 1, out);
}

static void c_decr(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)argc;
    incr_by(db, &argv[1], -1, out);
}

static void c_incrby(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)argc;
    long long by;
    if (!resp_str2ll(A(2), &by)) { err_int(out); return; }
    incr_by(db, &argv[1], by, out);
}

static void c_decrby(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)argc;
    long long by;
    if (!resp_str2ll(A(2), &by)) { err_int(out); return; }
    if (by == LLONG_MIN) { rb_error(out, "ERR decrement would overflow"); return; }
    incr_by(db, &argv[1], -by, out);
}

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

static void expire_generic(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out,
                           int unit_s, const char *name)
{
    unsigned fl = 0;
    for (unsigned j = 3; j < argc; j++) {
        if (eq(&argv[j], "NX")) fl |= EXP_NX;
        else if (eq(&argv[j], "XX")) fl |= EXP_XX;
        else if (eq(&argv[j], "GT")) fl |= EXP_GT;
        else if (eq(&argv[j], "LT")) fl |= EXP_LT;
        else { rb_errorf(out, "ERR Unsupported option %.*s", (int)argv[j].len, argv[j].p); return; }
    }
    if ((fl & EXP_NX) && (fl & (EXP_XX | EXP_GT | EXP_LT))) {
        rb_error(out, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((fl & EXP_GT) && (fl & EXP_LT)) {
        rb_error(out, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    long long when;
    if (!resp_str2ll(A(2), &when)) { err_int(out); return; }
    int64_t now = ks_now_ms();
    if (unit_s && (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000)) {
        rb_errorf(out, "ERR invalid expire time in '%s' command", name);
        return;
    }
    if (unit_s) when *= 1000;
    if (when > LLONG_MAX - now) { rb_errorf(out, "ERR invalid expire time in '%s' command", name); return; }
    when += now;
    struct ks_entry *e = ks_get(&db->ks, A(1), now);
    if (!e) { rb_int(out, 0); return; }
    int64_t cur = e->expire_ms;   /* 0: none, which GT/LT treat as infinite */
    if (((fl & EXP_NX) && cur) || ((fl & EXP_XX) && !cur) ||
        ((fl & EXP_GT) && (!cur || when <= cur)) || ((fl & EXP_LT) && cur && when >= cur)) {
        rb_int(out, 0);
        return;
    }
    if (when <= now) ks_del(&db->ks, A(1), now);
    else ks_set_expire(&db->ks, e, when);
    rb_int(out, 1);
}

static void c_expire(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    expire_generic(db, argv, argc, out, 1, "expire");
}

static void c_pexpire(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    expire_generic(db, argv, argc, out, 0, "pexpire");
}

static void ttl_generic(struct resp_db *db, const struct resp_arg *argv, struct rbuf *out, int ms)
{
    int64_t now = ks_now_ms();
    struct ks_entry *e = ks_get(&db->ks, A(1), now);
    if (!e) { rb_int(out, -2); return; }
    if (!e->expire_ms) { rb_int(out, -1); return; }
    long long t = e->expire_ms - now;
    if (t < 0) t = 0;
    rb_int(out, ms ? t : (t + 500) / 1000);
}

static void c_ttl(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)argc;
    ttl_generic(db, argv, out, 0);
}

static void c_pttl(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)argc;
    ttl_generic(db, argv, out, 1);
}

/* ---- parts of multi-key and all-reactor commands ----------------------------- */

static long long p_mget(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    int64_t now = ks_now_ms();
    for (unsigned i = 0; i < argc; i++) {
        struct ks_entry *e = ks_get(&db->ks, A(i), now);
        if (e) rb_bulk(out, e->val, e->vlen);
        else rb_nil(out);
    }
    return 0;
}

static long long p_del(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)out;
    int64_t now = ks_now_ms();
    long long n = 0;
    for (unsigned i = 0; i < argc; i++) n += ks_del(&db->ks, A(i), now);
    return n;
}

static long long p_exists(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)out;
    int64_t now = ks_now_ms();
    long long n = 0;
    for (unsigned i = 0; i < argc; i++) n += ks_get(&db->ks, A(i), now) != NULL;
    return n;
}

static long long p_mset(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    int64_t now = ks_now_ms();
    for (unsigned i = 0; i + 1 < argc; i += 2)
        if (!ks_set(&db->ks, A(i), A(i + 1), 0, 0, now)) out->oom = 1;
    return 0;
}

static long long p_dbsize(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)argv; (void)argc; (void)out;
    return (long long)ks_size(&db->ks);
}

static long long p_flushall(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    (void)argv; (void)argc; (void)out;
    ks_flush(&db->ks);
    return 0;
}

static void d_count(long long sum, struct rbuf *out) { rb_int(out, sum); }
static void d_ok(long long sum, struct rbuf *out) { (void)sum; rb_simple(out, "OK"); }

static const struct resp_cmd table[] = {
    {"get", 2, ROUTE_KEY, 0, c_get, NULL, NULL},
    {"set", -3, ROUTE_KEY, 0, c_set, NULL, NULL},
    {"mget", -2, ROUTE_KEYS, CMD_MGET, NULL, p_mget, NULL},
    {"ping", -1, ROUTE_HERE, 0, c_ping, NULL, NULL},
    {"echo", 2, ROUTE_HERE, 0, c_echo, NULL, NULL},
    {"del", -2, ROUTE_KEYS, 0, NULL, p_del, d_count},
    {"exists", -2, ROUTE_KEYS, 0, NULL, p_exists, d_count},
    {"incr", 2, ROUTE_KEY, 0, c_incr, NULL, NULL},
    {"decr", 2, ROUTE_KEY, 0, c_decr, NULL, NULL},
    {"incrby", 3, ROUTE_KEY, 0, c_incrby, NULL, NULL},
    {"decrby", 3, ROUTE_KEY, 0, c_decrby, NULL, NULL},
    {"mset", -3, ROUTE_PAIRS, 0, NULL, p_mset, d_ok},
    {"expire", -3, ROUTE_KEY, 0, c_expire, NULL, NULL},
    {"pexpire", -3, ROUTE_KEY, 0, c_pexpire, NULL, NULL},
    {"ttl", 2, ROUTE_KEY, 0, c_ttl, NULL, NULL},
    {"pttl", 2, ROUTE_KEY, 0, c_pttl, NULL, NULL},
    {"dbsize", 1, ROUTE_ALL, 0, NULL, p_dbsize, d_count},
    {"flushall", -1, ROUTE_ALL, 0, NULL, p_flushall, d_ok},
    {"flushdb", -1, ROUTE_ALL, 0, NULL, p_flushall, d_ok},
    {"select", 2, ROUTE_HERE, 0, c_select, NULL, NULL},
    {"quit", -1, ROUTE_QUIT, 0, NULL, NULL, NULL},
    {"command", -1, ROUTE_HERE, 0, c_command, NULL, NULL},
    {"info", -1, ROUTE_HERE, 0, c_info, NULL, NULL},
    {"hello", -1, ROUTE_HERE, 0, c_hello, NULL, NULL},
    {"config", -2, ROUTE_HERE, 0, c_config, NULL, NULL},
};
#define NCMD (sizeof table / sizeof *table)

const struct resp_cmd *resp_cmd_find(const char *name, size_t len)
{
    for (unsigned i = 0; i < NCMD; i++)
        if (strlen(table[i].name) == len && strncasecmp(table[i].name, name, len) == 0) return &table[i];
    return NULL;
}

const struct resp_cmd *resp_cmd_at(unsigned i) { return i < NCMD ? &table[i] : NULL; }
unsigned resp_cmd_index(const struct resp_cmd *c) { return (unsigned)(c - table); }

int resp_cmd_check(const struct resp_cmd *c, const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    if ((c->arity > 0 && argc != (unsigned)c->arity) || (c->arity < 0 && argc < (unsigned)-c->arity) ||
        (c->route == ROUTE_PAIRS && argc % 2 == 0)) {
        rb_errorf(out, "ERR wrong number of arguments for '%s' command", c->name);
        return -1;
    }
    if (c->part == p_flushall && (argc > 2 || (argc == 2 && !eq(&argv[1], "ASYNC") && !eq(&argv[1], "SYNC")))) {
        err_syntax(out);
        return -1;
    }
    return 0;
}

void resp_cmd_unknown(const struct resp_arg *argv, unsigned argc, struct rbuf *out)
{
    /* redis-server: the name (at most 128 bytes) and each argument quoted
     * while the list is under 128 bytes, read as C strings. */
    char args[300];
    size_t n = 0;
    args[0] = 0;
    for (unsigned i = 1; i < argc && n < 128; i++) {
        size_t l = strnlen(argv[i].p, argv[i].len);
        if (l > 128 - n) l = 128 - n;
        int w = snprintf(args + n, sizeof args - n, "'%.*s' ", (int)l, argv[i].p);
        if (w > 0) n += (size_t)w;
    }
    size_t nl = strnlen(argv[0].p, argv[0].len);
    rb_errorf(out, "ERR unknown command '%.*s', with args beginning with: %s", (int)(nl > 128 ? 128 : nl),
              argv[0].p, args);
}
