/* pg_conninfo.c — conninfo strings, libpq environment, socket addresses
 * (see pg_conninfo.h; the decisions per setting: docs/pg-client.md).
 *
 * Loading works as libpq's conninfo_add_defaults: the conninfo string is
 * parsed into one slot per known keyword, then every slot it left empty
 * takes its environment variable, then each setting is checked and applied
 * with both sources handled by the same code. A message names the setting
 * the way the user gave it: "PGSSLMODE=verify-full" or
 * "sslmode=verify-full". */
#include "pg_conninfo.h"
#include "pg_pgfiles.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

int pg_errf(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Every libpq connection keyword and environment variable of PostgreSQL 17,
 * plus 18's min/max_protocol_version (newer keywords are unknown: errors).
 * key NULL: environment only; env NULL: keyword only. H: honoured — an
 * empty environment value counts as unset. The others are checked by
 * check_settings(), where an empty value is what libpq makes of it. */
enum {
    K_HOST, K_HOSTADDR, K_PORT, K_DBNAME, K_USER, K_PASSWORD, K_PASSFILE,
    K_REQUIRE_AUTH, K_CHANNEL_BINDING, K_CONNECT_TIMEOUT, K_CLIENT_ENCODING,
    K_OPTIONS, K_APPNAME, K_FALLBACK_APPNAME, K_KEEPALIVES, K_KEEPALIVES_IDLE,
    K_KEEPALIVES_INTERVAL, K_KEEPALIVES_COUNT, K_TCP_USER_TIMEOUT, K_REPLICATION,
    K_GSSENCMODE, K_SSLMODE, K_SSLNEGOTIATION, K_SSLCOMPRESSION, K_SSLCERT,
    K_SSLKEY, K_SSLCERTMODE, K_SSLPASSWORD, K_SSLROOTCERT, K_SSLCRL, K_SSLCRLDIR,
    K_SSLSNI, K_REQUIREPEER, K_SSL_MIN_PROTOCOL, K_SSL_MAX_PROTOCOL,
    K_MIN_PROTOCOL, K_MAX_PROTOCOL, K_KRBSRVNAME, K_GSSLIB, K_GSSDELEGATION,
    K_SERVICE, K_TARGET_SESSION_ATTRS, K_LOAD_BALANCE_HOSTS,
    K_CONNECT_TIMEOUT_MS, K_QUERY_TIMEOUT_MS,               /* ioxide's own */
    E_REQUIRESSL, E_DATESTYLE, E_TZ, E_GEQO, E_SERVICEFILE, E_SYSCONFDIR,
    E_LOCALEDIR,
    K_N
};

#define H 1
static const struct { const char *key, *env; int honoured; } kw[K_N] = {
    [K_HOST] = {"host", "PGHOST", H},
    [K_HOSTADDR] = {"hostaddr", "PGHOSTADDR", 0},
    [K_PORT] = {"port", "PGPORT", H},
    [K_DBNAME] = {"dbname", "PGDATABASE", H},
    [K_USER] = {"user", "PGUSER", H},
    [K_PASSWORD] = {"password", "PGPASSWORD", H},
    [K_PASSFILE] = {"passfile", "PGPASSFILE", 0},
    [K_REQUIRE_AUTH] = {"require_auth", "PGREQUIREAUTH", 0},
    [K_CHANNEL_BINDING] = {"channel_binding", "PGCHANNELBINDING", 0},
    [K_CONNECT_TIMEOUT] = {"connect_timeout", "PGCONNECT_TIMEOUT", H},
    [K_CLIENT_ENCODING] = {"client_encoding", "PGCLIENTENCODING", H},
    [K_OPTIONS] = {"options", "PGOPTIONS", H},
    [K_APPNAME] = {"application_name", "PGAPPNAME", H},
    [K_FALLBACK_APPNAME] = {"fallback_application_name", NULL, H},
    [K_KEEPALIVES] = {"keepalives", NULL, 0},
    [K_KEEPALIVES_IDLE] = {"keepalives_idle", NULL, 0},
    [K_KEEPALIVES_INTERVAL] = {"keepalives_interval", NULL, 0},
    [K_KEEPALIVES_COUNT] = {"keepalives_count", NULL, 0},
    [K_TCP_USER_TIMEOUT] = {"tcp_user_timeout", NULL, 0},
    [K_REPLICATION] = {"replication", NULL, 0},
    [K_GSSENCMODE] = {"gssencmode", "PGGSSENCMODE", 0},
    [K_SSLMODE] = {"sslmode", "PGSSLMODE", 0},
    [K_SSLNEGOTIATION] = {"sslnegotiation", "PGSSLNEGOTIATION", 0},
    [K_SSLCOMPRESSION] = {"sslcompression", "PGSSLCOMPRESSION", 0},
    [K_SSLCERT] = {"sslcert", "PGSSLCERT", 0},
    [K_SSLKEY] = {"sslkey", "PGSSLKEY", 0},
    [K_SSLCERTMODE] = {"sslcertmode", "PGSSLCERTMODE", 0},
    [K_SSLPASSWORD] = {"sslpassword", NULL, 0},
    [K_SSLROOTCERT] = {"sslrootcert", "PGSSLROOTCERT", 0},
    [K_SSLCRL] = {"sslcrl", "PGSSLCRL", 0},
    [K_SSLCRLDIR] = {"sslcrldir", "PGSSLCRLDIR", 0},
    [K_SSLSNI] = {"sslsni", "PGSSLSNI", 0},
    [K_REQUIREPEER] = {"requirepeer", "PGREQUIREPEER", 0},
    [K_SSL_MIN_PROTOCOL] = {"ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION", 0},
    [K_SSL_MAX_PROTOCOL] = {"ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION", 0},
    [K_MIN_PROTOCOL] = {"min_protocol_version", "PGMINPROTOCOLVERSION", 0},
    [K_MAX_PROTOCOL] = {"max_protocol_version", "PGMAXPROTOCOLVERSION", 0},
    [K_KRBSRVNAME] = {"krbsrvname", "PGKRBSRVNAME", 0},
    [K_GSSLIB] = {"gsslib", "PGGSSLIB", 0},
    [K_GSSDELEGATION] = {"gssdelegation", "PGGSSDELEGATION", 0},
    [K_SERVICE] = {"service", "PGSERVICE", 0},
    [K_TARGET_SESSION_ATTRS] = {"target_session_attrs", "PGTARGETSESSIONATTRS", 0},
    [K_LOAD_BALANCE_HOSTS] = {"load_balance_hosts", "PGLOADBALANCEHOSTS", 0},
    [K_CONNECT_TIMEOUT_MS] = {"connect_timeout_ms", NULL, H},
    [K_QUERY_TIMEOUT_MS] = {"query_timeout_ms", NULL, H},
    [E_REQUIRESSL] = {NULL, "PGREQUIRESSL", 0},
    [E_DATESTYLE] = {NULL, "PGDATESTYLE", H},
    [E_TZ] = {NULL, "PGTZ", H},
    [E_GEQO] = {NULL, "PGGEQO", H},
    [E_SERVICEFILE] = {NULL, "PGSERVICEFILE", 0},
    [E_SYSCONFDIR] = {NULL, "PGSYSCONFDIR", 0},
    [E_LOCALEDIR] = {NULL, "PGLOCALEDIR", 0},
};
#undef H

enum { FROM_STRING, FROM_ENV, FROM_SERVICE };
/* The settings as given: val[k] NULL when neither the conninfo string nor
 * the environment has it. Conninfo values are unescaped into store. */
struct given {
    const char *val[K_N];
    unsigned char env[K_N];     /* FROM_STRING, FROM_ENV or FROM_SERVICE */
    size_t used;
    char store[8192];
};

/* "PGSSLMODE=verify-full" or "sslmode=verify-full", one line and bounded:
 * control characters become '?', long values are cut with "...". */
struct shown { char s[160]; };
static struct shown show(const struct given *g, int k)
{
    struct shown o;
    const char *name = g->env[k] == FROM_ENV ? kw[k].env : kw[k].key;
    const char *v = g->val[k] ? g->val[k] : "";
    size_t n = (size_t)snprintf(o.s, sizeof o.s, "%s=", name);
    if (!*v && n + 2 < sizeof o.s) { memcpy(o.s + n, "\"\"", 3); return o; }
    for (; *v && n + 4 < sizeof o.s; v++) o.s[n++] = (unsigned char)*v < 0x20 || *v == 0x7f ? '?' : *v;
    if (*v) memcpy(o.s + n, "...", 4); else o.s[n] = 0;
    return o;
}
#define SHOW(k) (show(g, (k)).s)
/* What to do about a refused setting. */
#define DROP(k) (g->env[k] == FROM_ENV ? "unset it" : g->env[k] == FROM_SERVICE ? "remove it from the service file" \
                                                                           : "remove it from the connection string")

static int one_of(const char *v, const char *const *allowed)
{
    for (; *allowed; allowed++) if (strcmp(v, *allowed) == 0) return 1;
    return 0;
}

static int set(char *dst, size_t cap, const struct given *g, int k, char *err, size_t errlen)
{
    const char *v = g->val[k];
    size_t n = strlen(v);
    if (n >= cap)
        return pg_errf(-ENAMETOOLONG, err, errlen, "%s: the value is too long (max %zu bytes)",
                    g->env[k] == FROM_ENV ? kw[k].env : kw[k].key, cap - 1);
    memcpy(dst, v, n + 1);
    return 0;
}

static int number(const char *v, unsigned long max, unsigned long *out)
{
    if (!*v) return -EINVAL;
    unsigned long x = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9') return -EINVAL;
        x = x * 10 + (unsigned long)(*p - '0');
        if (x > max) return -EINVAL;
    }
    *out = x;
    return 0;
}

/* ---- parsing the conninfo string into g ---- */

static int find_key(const char *key)
{
    for (int k = 0; k < K_N; k++)
        if (kw[k].key && strcmp(kw[k].key, key) == 0) return k;
    return -1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* ---- connection URIs (libpq's conninfo_uri_parse_options) ----
 * postgresql://[user[:password]@][host[:port]][,host[:port]...][/dbname][?key=value&...]
 * Every component is percent-decoded; a host in brackets is an IPv6
 * literal; the hosts and ports become host= and port= lists (an empty port
 * element is the default, as libpq), the query's pairs are keywords
 * (ssl=true is sslmode=require, as libpq). */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Append [s, s+n) to g->store, percent-decoded when decode; *out gets the
 * NUL-terminated copy. */
static int uri_put(struct given *g, const char *s, size_t n, int decode, const char **out, char *err, size_t errlen)
{
    char *dst = g->store + g->used;
    size_t cap = sizeof g->store - g->used, vn = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (decode && ch == '%') {
            if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                return pg_errf(-EINVAL, err, errlen, "invalid percent-encoded token in the connection URI");
            ch = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            if (!ch) return pg_errf(-EINVAL, err, errlen, "forbidden value %%00 in the connection URI");
            i += 2;
        }
        if (vn + 1 >= cap) return pg_errf(-ENAMETOOLONG, err, errlen, "connection URI too long");
        dst[vn++] = ch;
    }
    dst[vn] = 0;
    g->used += vn + 1;
    *out = dst;
    return 0;
}

static int find_key(const char *key);

static int parse_uri(struct given *g, const char *s, char *err, size_t errlen)
{
    const char *p = s + (strncmp(s, "postgresql://", 13) == 0 ? 13 : 11);
    const char *v;
    int r;
    /* user[:password]@ — only when an '@' comes before the path. */
    const char *at = p;
    while (*at && *at != '@' && *at != '/' && *at != '?') at++;
    if (*at == '@') {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *uend = colon ? colon : at;
        if (uend > p) {
            if ((r = uri_put(g, p, (size_t)(uend - p), 1, &v, err, errlen))) return r;
            g->val[K_USER] = v; g->env[K_USER] = FROM_STRING;
        }
        if (colon) {
            if ((r = uri_put(g, colon + 1, (size_t)(at - colon - 1), 1, &v, err, errlen))) return r;
            g->val[K_PASSWORD] = v; g->env[K_PASSWORD] = FROM_STRING;
        }
        p = at + 1;
    }
    /* host[:port] list: decoded element by element into "h1,h2" / "p1,p2". */
    char hosts[2048], ports[512];
    size_t hn = 0, pn = 0;
    int any = 0;
    for (;;) {
        const char *h0 = p, *h1;
        if (*p == '[') {
            const char *close = strchr(p, ']');
            if (!close) return pg_errf(-EINVAL, err, errlen, "connection URI: missing \"]\" after the IPv6 host \"%.40s\"", p);
            h0 = p + 1; h1 = close; p = close + 1;
            if (h1 == h0) return pg_errf(-EINVAL, err, errlen, "connection URI: IPv6 host address may not be empty");
        } else {
            while (*p && *p != ':' && *p != '/' && *p != '?' && *p != ',') p++;
            h1 = p;
        }
        const char *hv = "";
        if (h1 > h0 && (r = uri_put(g, h0, (size_t)(h1 - h0), 1, &hv, err, errlen))) return r;
        size_t l = strlen(hv);
        if (hn + l + 2 > sizeof hosts) return pg_errf(-ENAMETOOLONG, err, errlen, "connection URI: host list too long");
        if (any) hosts[hn++] = ',';
        memcpy(hosts + hn, hv, l); hn += l;
        if (any) ports[pn++] = ',';
        if (*p == ':') {
            const char *q0 = ++p;
            while (*p && *p != '/' && *p != '?' && *p != ',') p++;
            if ((size_t)(p - q0) + pn + 2 > sizeof ports) return pg_errf(-ENAMETOOLONG, err, errlen, "connection URI: port list too long");
            memcpy(ports + pn, q0, (size_t)(p - q0)); pn += (size_t)(p - q0);
        } else if (*p && *p != '/' && *p != '?' && *p != ',') {
            return pg_errf(-EINVAL, err, errlen, "connection URI: unexpected character \"%c\" after host \"%.60s\"",
                           (unsigned char)*p < 0x20 ? '?' : *p, hv);
        }
        any = 1;
        if (*p != ',') break;
        p++;
    }
    hosts[hn] = 0; ports[pn] = 0;
    if (hn) {
        if ((r = uri_put(g, hosts, hn, 0, &v, err, errlen))) return r;
        g->val[K_HOST] = v; g->env[K_HOST] = FROM_STRING;
    }
    int have_port = 0;
    for (size_t i = 0; i < pn; i++) if (ports[i] != ',') have_port = 1;
    if (have_port) {
        if ((r = uri_put(g, ports, pn, 0, &v, err, errlen))) return r;
        g->val[K_PORT] = v; g->env[K_PORT] = FROM_STRING;
    }
    if (*p == '/') {
        const char *d0 = ++p;
        while (*p && *p != '?') p++;
        if (p > d0) {
            if ((r = uri_put(g, d0, (size_t)(p - d0), 1, &v, err, errlen))) return r;
            g->val[K_DBNAME] = v; g->env[K_DBNAME] = FROM_STRING;
        }
    }
    if (*p == '?') {
        p++;
        while (*p) {
            const char *k0 = p;
            while (*p && *p != '&') p++;
            const char *eq = memchr(k0, '=', (size_t)(p - k0));
            if (p == k0) { p += *p == '&'; continue; }
            if (!eq) return pg_errf(-EINVAL, err, errlen, "connection URI: missing \"=\" in the query parameter \"%.*s\"",
                                    (int)((p - k0) > 60 ? 60 : p - k0), k0);
            const char *key, *val;
            if ((r = uri_put(g, k0, (size_t)(eq - k0), 1, &key, err, errlen)) ||
                (r = uri_put(g, eq + 1, (size_t)(p - eq - 1), 1, &val, err, errlen)))
                return r;
            int k;
            if (strcmp(key, "ssl") == 0 && strcmp(val, "true") == 0) { k = K_SSLMODE; val = "require"; }
            else if ((k = find_key(key)) < 0)
                return pg_errf(-EINVAL, err, errlen, "invalid URI query parameter: \"%.60s\" (not a libpq keyword ioxide "
                               "knows; see docs/pg-client.md)", key);
            g->val[k] = val;
            g->env[k] = FROM_STRING;
            if (*p == '&') p++;
        }
    }
    if (*p) return pg_errf(-EINVAL, err, errlen, "connection URI: unexpected \"%.40s\"", p);
    return 0;
}

static int parse(struct given *g, const char *s, char *err, size_t errlen)
{
    if (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0)
        return parse_uri(g, s, err, errlen);
    char key[64];
    const char *p = s;
    for (;;) {
        while (is_space(*p)) p++;
        if (!*p) return 0;
        size_t kn = 0;
        while (*p && *p != '=' && !is_space(*p)) {
            if (kn + 1 >= sizeof key) return pg_errf(-EINVAL, err, errlen, "connection option name too long");
            key[kn++] = (unsigned char)*p < 0x20 ? '?' : *p;
            p++;
        }
        key[kn] = 0;
        while (is_space(*p)) p++;
        if (*p != '=')
            return pg_errf(-EINVAL, err, errlen, "missing \"=\" after \"%s\" in connection info string", key);
        p++;
        while (is_space(*p)) p++;
        char *val = g->store + g->used;
        size_t cap = sizeof g->store - g->used, vn = 0;
        if (*p == '\'') {
            p++;
            for (;;) {
                if (!*p) return pg_errf(-EINVAL, err, errlen, "unterminated quoted string in connection info string");
                if (*p == '\'') { p++; break; }
                if (*p == '\\' && p[1]) p++;
                if (vn + 1 >= cap) return pg_errf(-ENAMETOOLONG, err, errlen, "connection info string too long");
                val[vn++] = *p++;
            }
        } else {
            while (*p && !is_space(*p)) {
                if (*p == '\\' && p[1]) p++;
                if (vn + 1 >= cap) return pg_errf(-ENAMETOOLONG, err, errlen, "connection info string too long");
                val[vn++] = *p++;
            }
        }
        val[vn] = 0;
        int k = find_key(key);
        if (k < 0)
            return pg_errf(-EINVAL, err, errlen, "invalid connection option \"%s\" (not a libpq keyword ioxide knows; "
                        "see docs/pg-client.md)", key);
        g->val[k] = val;
        g->env[k] = 0;
        g->used += vn + 1;
    }
}

/* Every slot the conninfo string left empty takes its environment variable. */
static void add_env(struct given *g)
{
    for (int k = 0; k < K_N; k++) {
        if (g->val[k] || !kw[k].env) continue;
        const char *v = getenv(kw[k].env);
        if (!v || (kw[k].honoured && !*v)) continue;
        g->val[k] = v;
        g->env[k] = FROM_ENV;
    }
}

/* ---- the settings ioxide does not implement: ignore or refuse ---- */

static int invalid(const struct given *g, int k, const char *valid, char *err, size_t errlen)
{
    return pg_errf(-EINVAL, err, errlen, "%s is not a valid %s value (valid: %s)", SHOW(k), kw[k].key, valid);
}

/* TLS protocol version: "" (no bound) or TLSv1, TLSv1.1, TLSv1.2, TLSv1.3
 * (case-insensitive, as libpq). Returns 0..4 (0 = no bound), -1 invalid. */
static int tls_version(const char *v)
{
    static const char *const names[] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
    if (!v || !*v) return 0;
    for (int i = 0; i < 4; i++) if (strcasecmp(v, names[i]) == 0) return i + 1;
    return -1;
}

static const char *const targets[] = {"any", "read-write", "read-only", "primary", "standby", "prefer-standby", NULL};

const char *iox_pg_target_name(unsigned target)
{
    return target <= IOX_PG_TARGET_PREFER_STANDBY ? targets[target] : "?";
}

static int check_settings(const struct given *g, const char *host, char *err, size_t errlen)
{
    static const char *const sslmodes[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full", NULL};
    const char *v;
#define GIVEN(k) ((v = g->val[k]) != NULL)

    /* sslmode / PGSSLMODE: checked here, applied by apply_tls. */
    if (GIVEN(K_SSLMODE) && !one_of(v, sslmodes))
        return invalid(g, K_SSLMODE, "disable, allow, prefer, require, verify-ca, verify-full", err, errlen);
    /* sslrootcert=system: libpq allows it only with verify-full (and makes
     * that the default). */
    if (GIVEN(K_SSLROOTCERT) && strcmp(v, "system") == 0 && g->val[K_SSLMODE] &&
        strcmp(g->val[K_SSLMODE], "verify-full") != 0)
        return pg_errf(-EINVAL, err, errlen, "weak %s may not be used with %s (use sslmode=verify-full)",
                    SHOW(K_SSLMODE), SHOW(K_SSLROOTCERT));
    if (GIVEN(K_SSLCERTMODE)) {
        if (!one_of(v, (const char *const[]){"disable", "allow", "require", NULL}))
            return invalid(g, K_SSLCERTMODE, "disable, allow, require", err, errlen);
        if (strcmp(v, "require") == 0)
            return pg_errf(-EINVAL, err, errlen, "%s (fail unless the server asked for a client certificate) is not "
                        "implemented by ioxide; %s or use sslcertmode=disable/allow",
                        SHOW(K_SSLCERTMODE), DROP(K_SSLCERTMODE));
    }
    if (GIVEN(K_SSLNEGOTIATION)) {
        if (!one_of(v, (const char *const[]){"postgres", "direct", NULL}))
            return invalid(g, K_SSLNEGOTIATION, "postgres, direct", err, errlen);
        if (strcmp(v, "direct") == 0)
            return pg_errf(-EINVAL, err, errlen, "%s (TLS without the SSLRequest) is not implemented by ioxide; "
                        "%s or use sslnegotiation=postgres", SHOW(K_SSLNEGOTIATION), DROP(K_SSLNEGOTIATION));
    }
    int tmin = tls_version(g->val[K_SSL_MIN_PROTOCOL] ? g->val[K_SSL_MIN_PROTOCOL] : "TLSv1.2");
    int tmax = tls_version(g->val[K_SSL_MAX_PROTOCOL]);
    if (tmin < 0) return invalid(g, K_SSL_MIN_PROTOCOL, "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3", err, errlen);
    if (tmax < 0) return invalid(g, K_SSL_MAX_PROTOCOL, "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3", err, errlen);
    if (tmin && tmax && tmin > tmax)
        return pg_errf(-EINVAL, err, errlen, "%s is below the minimum TLS version (%s), an invalid range; %s",
                    SHOW(K_SSL_MAX_PROTOCOL), g->val[K_SSL_MIN_PROTOCOL] ? SHOW(K_SSL_MIN_PROTOCOL) : "TLSv1.2 by default",
                    DROP(K_SSL_MAX_PROTOCOL));

    /* channel_binding: SCRAM-SHA-256-PLUS over TLS (pg_conn.c); the
     * combinations that can never bind are refused in apply_tls. */
    if (GIVEN(K_CHANNEL_BINDING)) {
        if (!one_of(v, (const char *const[]){"disable", "prefer", "require", NULL}))
            return invalid(g, K_CHANNEL_BINDING, "disable, prefer, require", err, errlen);
    }
    /* gssencmode: no GSSAPI here; prefer falls back to plaintext in libpq
     * too. krbsrvname, gsslib, gssdelegation only matter for GSSAPI, which
     * ioxide never does (a server asking for it fails the session) — ignored. */
    if (GIVEN(K_GSSENCMODE)) {
        if (!one_of(v, (const char *const[]){"disable", "prefer", "require", NULL}))
            return invalid(g, K_GSSENCMODE, "disable, prefer, require", err, errlen);
        if (strcmp(v, "require") == 0)
            return pg_errf(-EINVAL, err, errlen, "%s requires GSSAPI encryption, which this build of ioxide does not "
                        "support; %s or use gssencmode=disable/prefer", SHOW(K_GSSENCMODE), DROP(K_GSSENCMODE));
    }
    /* require_auth: "" restricts nothing (libpq); anything else restricts
     * which authentication the server may ask for — not enforced here. */
    if (GIVEN(K_REQUIRE_AUTH) && *v)
        return pg_errf(-EINVAL, err, errlen, "%s restricts the server's authentication methods, which ioxide does not "
                    "enforce (it accepts trust, password, md5 and scram-sha-256); %s",
                    SHOW(K_REQUIRE_AUTH), DROP(K_REQUIRE_AUTH));
    /* requirepeer: libpq checks it on Unix sockets only. */
    if (GIVEN(K_REQUIREPEER) && *v && host[0] == '/')
        return pg_errf(-EINVAL, err, errlen, "%s requires checking the OS user of the server process on the Unix socket, "
                    "which ioxide does not do; %s", SHOW(K_REQUIREPEER), DROP(K_REQUIREPEER));
    /* service: read before the environment (load_service); passfile: read
     * after apply (load_passfile). */
    if (GIVEN(K_HOSTADDR) && *v)
        return pg_errf(-EINVAL, err, errlen, "%s is not supported (ioxide would connect to host instead); %s and put "
                    "the numeric address in PGHOST or host=", SHOW(K_HOSTADDR), DROP(K_HOSTADDR));
    /* target_session_attrs and load_balance_hosts: checked here, applied
     * by apply (the pool checks each session, pg_conn.c). */
    if (GIVEN(K_TARGET_SESSION_ATTRS) && !one_of(v, targets))
        return invalid(g, K_TARGET_SESSION_ATTRS, "any, read-write, read-only, primary, standby, prefer-standby",
                       err, errlen);
    if (GIVEN(K_LOAD_BALANCE_HOSTS) && !one_of(v, (const char *const[]){"disable", "random", NULL}))
        return invalid(g, K_LOAD_BALANCE_HOSTS, "disable, random", err, errlen);
    /* replication: a false value is an ordinary session. */
    if (GIVEN(K_REPLICATION) && *v && strcasecmp(v, "false") && strcasecmp(v, "off") && strcasecmp(v, "no") &&
        strcmp(v, "0"))
        return pg_errf(-EINVAL, err, errlen, "%s asks for a replication connection, which ioxide does not support; %s",
                    SHOW(K_REPLICATION), DROP(K_REPLICATION));
    /* min_protocol_version: ioxide speaks protocol 3.0 only; any
     * max_protocol_version allows 3.0. */
    if (GIVEN(K_MIN_PROTOCOL) && *v && strcmp(v, "3.0") != 0)
        return pg_errf(-EINVAL, err, errlen, "%s: ioxide speaks only protocol version 3.0; %s or use "
                    "min_protocol_version=3.0", SHOW(K_MIN_PROTOCOL), DROP(K_MIN_PROTOCOL));
    if (GIVEN(K_CLIENT_ENCODING) && strcmp(v, "auto") == 0)
        return pg_errf(-EINVAL, err, errlen, "%s (the encoding of the locale) is not supported by ioxide; %s or name "
                    "the encoding, e.g. client_encoding=UTF8", SHOW(K_CLIENT_ENCODING), DROP(K_CLIENT_ENCODING));
    /* Ignored, whatever the value: keepalives*, tcp_user_timeout (liveness;
     * ioxide has connect_timeout and query_timeout_ms), sslcompression,
     * sslcert, sslkey, sslpassword, sslcrl, sslcrldir, sslsni, krbsrvname,
     * gsslib, gssdelegation, max_protocol_version,
     * PGLOCALEDIR (message translations). PGSERVICEFILE and PGSYSCONFDIR
     * are read by load_service. */
#undef GIVEN
    return 0;
}

/* ---- the settings ioxide implements ---- */

static int os_user(char *out, size_t cap, char *err, size_t errlen)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &res) != 0 || !res)
        return pg_errf(-ENOENT, err, errlen, "could not look up the OS user name for uid %u", (unsigned)geteuid());
    size_t n = strlen(res->pw_name);
    if (n >= cap) return pg_errf(-ENAMETOOLONG, err, errlen, "the OS user name is too long (max %zu bytes)", cap - 1);
    memcpy(out, res->pw_name, n + 1);
    return 0;
}

/* A GUC from the environment, sent unless "default" (libpq). */
static int env_guc(char *dst, size_t cap, const struct given *g, int k, char *err, size_t errlen)
{
    if (!g->val[k] || strcasecmp(g->val[k], "default") == 0) return 0;
    return set(dst, cap, g, k, err, errlen);
}

/* host=a,b,c and port=p or port=p1,p2,p3 (libpq: one port for every host,
 * or one per host; an empty element is the default). */
static int apply_hosts(struct iox_pg_conninfo *ci, const struct given *g, char *err, size_t errlen)
{
    const char *hv = g->val[K_HOST] ? g->val[K_HOST] : "", *s = hv, *e;
    unsigned n = 0;
    for (;; s = e + 1) {
        e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (n == IOX_PG_MAX_HOSTS)
            return pg_errf(-EINVAL, err, errlen, "%s: more than %d hosts", SHOW(K_HOST), IOX_PG_MAX_HOSTS);
        struct iox_pg_host *h = &ci->hosts[n++];
        if (!len) snprintf(h->host, sizeof h->host, "%s", IOX_PG_DEFAULT_SOCKET_DIR);
        else if (len >= sizeof h->host)
            return pg_errf(-ENAMETOOLONG, err, errlen, "%s: host %u is too long (max %zu bytes)",
                           g->env[K_HOST] == FROM_ENV ? kw[K_HOST].env : kw[K_HOST].key, n, sizeof h->host - 1);
        else { memcpy(h->host, s, len); h->host[len] = 0; }
        h->port = IOX_PG_DEFAULT_PORT;
        if (!e) break;
    }
    ci->nhosts = (uint8_t)n;
    const char *pv = g->val[K_PORT];
    if (pv) {
        unsigned m = 1;
        for (const char *q = pv; *q; q++) m += *q == ',';
        if (m != 1 && m != n)
            return pg_errf(-EINVAL, err, errlen, "%s: could not match %u port numbers to %u hosts (give one port for "
                           "every host, or one per host)", SHOW(K_PORT), m, n);
        s = pv;
        for (unsigned i = 0;; i++, s = e + 1) {
            e = strchr(s, ',');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            char num[16];
            unsigned long x = IOX_PG_DEFAULT_PORT;
            if (len) {
                if (len >= sizeof num) x = 0;
                else { memcpy(num, s, len); num[len] = 0; if (number(num, 65535, &x)) x = 0; }
                if (!x) return pg_errf(-EINVAL, err, errlen, "%s: invalid port number%s", SHOW(K_PORT),
                                       m > 1 ? " in the list" : "");
            }
            if (m == 1) { for (unsigned j = 0; j < n; j++) ci->hosts[j].port = (uint16_t)x; break; }
            ci->hosts[i].port = (uint16_t)x;
            if (!e) break;
        }
    }
    memcpy(ci->host, ci->hosts[0].host, sizeof ci->host);
    ci->port = ci->hosts[0].port;
    return 0;
}

static int apply(struct iox_pg_conninfo *ci, const struct given *g, char *err, size_t errlen)
{
    int r = 0;
    unsigned long n;
    const char *v;
#define GIVEN(k) ((v = g->val[k]) != NULL)
#define SET(field, k) if (GIVEN(k) && (r = set(ci->field, sizeof ci->field, g, k, err, errlen))) return r
    if ((r = apply_hosts(ci, g, err, errlen))) return r;
    SET(user, K_USER);
    SET(password, K_PASSWORD);
    SET(dbname, K_DBNAME);
    SET(application_name, K_FALLBACK_APPNAME);
    SET(application_name, K_APPNAME);
    SET(options, K_OPTIONS);
    SET(client_encoding, K_CLIENT_ENCODING);
#undef SET
    if ((r = env_guc(ci->datestyle, sizeof ci->datestyle, g, E_DATESTYLE, err, errlen)) ||
        (r = env_guc(ci->timezone, sizeof ci->timezone, g, E_TZ, err, errlen)) ||
        (r = env_guc(ci->geqo, sizeof ci->geqo, g, E_GEQO, err, errlen)))
        return r;
    if (GIVEN(K_TARGET_SESSION_ATTRS))
        for (int i = 0; targets[i]; i++) if (strcmp(v, targets[i]) == 0) ci->target = (uint8_t)i;
    ci->load_balance = GIVEN(K_LOAD_BALANCE_HOSTS) && strcmp(v, "random") == 0;
    if (GIVEN(K_CONNECT_TIMEOUT)) {
        if (number(v, 4000000, &n))
            return pg_errf(-EINVAL, err, errlen, "%s: invalid connect_timeout (whole seconds, 0 = no limit)",
                        SHOW(K_CONNECT_TIMEOUT));
        ci->connect_timeout_ms = (uint32_t)(n * 1000);
    }
    if (GIVEN(K_CONNECT_TIMEOUT_MS)) {      /* more precise: wins over connect_timeout */
        if (number(v, 0xffffffffu, &n)) return pg_errf(-EINVAL, err, errlen, "%s: invalid number", SHOW(K_CONNECT_TIMEOUT_MS));
        ci->connect_timeout_ms = (uint32_t)n;
    }
    if (GIVEN(K_QUERY_TIMEOUT_MS)) {
        if (number(v, 0xffffffffu, &n)) return pg_errf(-EINVAL, err, errlen, "%s: invalid number", SHOW(K_QUERY_TIMEOUT_MS));
        ci->query_timeout_ms = (uint32_t)n;
    }
#undef GIVEN
    return 0;
}

/* sslmode (else PGREQUIRESSL=1 → require; else verify-full with
 * sslrootcert=system; else prefer), the files, sslsni, the versions. */
static int apply_tls(struct iox_pg_conninfo *ci, const struct given *g, char *err, size_t errlen)
{
    static const char *const modes[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full", NULL};
    const char *v;
    int r;
    ci->sslmode = IOX_PG_SSL_PREFER;
    ci->sslsni = 1;
    ci->sslroot_system = (v = g->val[K_SSLROOTCERT]) && strcmp(v, "system") == 0;
    if ((v = g->val[K_SSLMODE])) {
        for (int i = 0; modes[i]; i++) if (strcmp(v, modes[i]) == 0) ci->sslmode = (uint8_t)i;
    } else if ((v = g->val[E_REQUIRESSL]) && v[0] == '1') {
        ci->sslmode = IOX_PG_SSL_REQUIRE;
    } else if (ci->sslroot_system) {
        ci->sslmode = IOX_PG_SSL_VERIFY_FULL;
    }
    if (g->val[K_SSLROOTCERT] && !ci->sslroot_system &&
        (r = set(ci->sslrootcert, sizeof ci->sslrootcert, g, K_SSLROOTCERT, err, errlen)))
        return r;
    if (g->val[K_SSLCERT] && (r = set(ci->sslcert, sizeof ci->sslcert, g, K_SSLCERT, err, errlen))) return r;
    if (g->val[K_SSLKEY] && (r = set(ci->sslkey, sizeof ci->sslkey, g, K_SSLKEY, err, errlen))) return r;
    if ((v = g->val[K_SSLSNI]) && strcmp(v, "1") != 0) ci->sslsni = 0;     /* libpq: "1" sends it */
    ci->ssl_min = (uint8_t)tls_version(g->val[K_SSL_MIN_PROTOCOL] ? g->val[K_SSL_MIN_PROTOCOL] : "TLSv1.2");
    ci->ssl_max = (uint8_t)tls_version(g->val[K_SSL_MAX_PROTOCOL]);
    /* verify-ca / verify-full need the root certificate (libpq checks it
     * when connecting; here it is one line at startup). A Unix socket never
     * uses TLS (libpq ignores sslmode there). */
    int tcp = 0;
    for (unsigned i = 0; i < ci->nhosts; i++) tcp |= ci->hosts[i].host[0] != '/';
    if (ci->sslmode >= IOX_PG_SSL_VERIFY_CA && !ci->sslroot_system && tcp) {
        char path[4096], home[3072];
        if (ci->sslrootcert[0]) snprintf(path, sizeof path, "%s", ci->sslrootcert);
        else if (iox_pg_home_dir(home, sizeof home) == 0) snprintf(path, sizeof path, "%s/.postgresql/root.crt", home);
        else snprintf(path, sizeof path, "~/.postgresql/root.crt");
        if (access(path, R_OK) != 0)
            return pg_errf(-EINVAL, err, errlen, "%s: root certificate file \"%s\" does not exist or cannot be read "
                        "(%s); provide it with sslrootcert=, use sslrootcert=system, or %s", SHOW(K_SSLMODE), path,
                        strerror(errno), DROP(K_SSLMODE));
    }
    /* channel_binding: prefer binds whenever TLS and the server allow it;
     * require fails a session that did not bind (pg_conn.c), and is one
     * line at startup where TLS can never be used. */
    ci->channel_binding = IOX_PG_CB_PREFER;
    if ((v = g->val[K_CHANNEL_BINDING])) {
        ci->channel_binding = strcmp(v, "disable") == 0 ? IOX_PG_CB_DISABLE
                            : strcmp(v, "require") == 0 ? IOX_PG_CB_REQUIRE : IOX_PG_CB_PREFER;
        if (ci->channel_binding == IOX_PG_CB_REQUIRE && (ci->sslmode == IOX_PG_SSL_DISABLE || !tcp))
            return pg_errf(-EINVAL, err, errlen, "%s needs TLS (SCRAM-SHA-256-PLUS binds to the TLS channel), but %s; "
                        "use sslmode=require (or verify-ca/verify-full) over TCP, or %s",
                        SHOW(K_CHANNEL_BINDING),
                        !tcp ? "a Unix socket never uses TLS" : "sslmode=disable never negotiates it",
                        DROP(K_CHANNEL_BINDING));
    }
    return 0;
}

/* ---- libpq's files ---- */

/* A key=value of the service's section: a known keyword the conninfo string
 * (or an earlier line) left unset takes it, as libpq (which also keeps the
 * first of two lines with the same keyword). */
static int service_set(void *ctx, const char *key, const char *val, char *err, size_t errlen)
{
    struct given *g = ctx;
    int k = find_key(key);
    if (k < 0 || k == K_SERVICE) {
        char shown[64];
        size_t n = 0;
        for (; key[n] && n + 1 < sizeof shown; n++) shown[n] = (unsigned char)key[n] < 0x20 ? '?' : key[n];
        shown[n] = 0;
        return pg_errf(-EINVAL, err, errlen, "invalid connection option \"%s\" (not a libpq keyword ioxide knows; "
                    "note that libpq allows no spaces around '=')", shown);
    }
    if (g->val[k]) return 0;
    size_t vn = strlen(val);
    if (vn + 1 > sizeof g->store - g->used) return pg_errf(-ENAMETOOLONG, err, errlen, "the service is too long");
    char *dst = g->store + g->used;
    memcpy(dst, val, vn + 1);
    g->used += vn + 1;
    g->val[k] = dst;
    g->env[k] = FROM_SERVICE;
    return 0;
}

/* libpq's parseServiceInfo: service= (else PGSERVICE, even empty) names a
 * section of PGSERVICEFILE or ~/.pg_service.conf, else of
 * PGSYSCONFDIR/pg_service.conf; its settings fill what the string left
 * unset, before the environment does. A service found nowhere is an error. */
static int load_service(struct given *g, char *err, size_t errlen)
{
    if (!g->val[K_SERVICE]) {
        const char *e = getenv("PGSERVICE");
        if (!e) return 0;
        g->val[K_SERVICE] = e;
        g->env[K_SERVICE] = FROM_ENV;
    }
    const char *name = g->val[K_SERVICE];
    char user_file[4096], sys_file[4096], home[3072];
    const char *e = getenv("PGSERVICEFILE");
    if (e) snprintf(user_file, sizeof user_file, "%s", e);
    else if (iox_pg_home_dir(home, sizeof home) == 0) snprintf(user_file, sizeof user_file, "%s/.pg_service.conf", home);
    else user_file[0] = 0;
    e = getenv("PGSYSCONFDIR");
    snprintf(sys_file, sizeof sys_file, "%s/pg_service.conf", e ? e : IOX_PG_SYSCONFDIR);
    int found = 0, r;
    if (user_file[0] && (r = iox_pg_service_read(user_file, name, &found, service_set, g, err, errlen))) return r;
    if (!found && (r = iox_pg_service_read(sys_file, name, &found, service_set, g, err, errlen))) return r;
    if (!found) {
        struct shown sh = show(g, K_SERVICE);      /* "PGSERVICE=name", bounded, one line */
        const char *shown_name = strchr(sh.s, '=') + 1;
        return pg_errf(-EINVAL, err, errlen, "%s: definition of service %s not found (looked in \"%s\" and \"%s\"); "
                    "%s or add a [%s] section to one of them", sh.s, shown_name, user_file, sys_file, DROP(K_SERVICE),
                    shown_name);
    }
    return 0;
}

/* libpq's passwordFromFile, used only when no password is given: passfile=
 * (or PGPASSFILE), else ~/.pgpass; the default socket directory matches as
 * "localhost". A warning (permissions) goes to ci->warning. */
static int load_passfile(struct iox_pg_conninfo *ci, const struct given *g, char *err, size_t errlen)
{
    if (ci->password[0]) return 0;
    char path[4096], home[3072], port[8];
    const char *pf = g->val[K_PASSFILE];
    if (pf && *pf) snprintf(path, sizeof path, "%s", pf);
    else if (iox_pg_home_dir(home, sizeof home) == 0) snprintf(path, sizeof path, "%s/.pgpass", home);
    else return 0;
    const char *host = ci->host[0] && strcmp(ci->host, IOX_PG_DEFAULT_SOCKET_DIR) != 0 ? ci->host : "localhost";
    snprintf(port, sizeof port, "%u", ci->port);
    int r = iox_pg_passfile_lookup(path, host, port, ci->dbname, ci->user, ci->password, sizeof ci->password,
                                   ci->warning, sizeof ci->warning);
    if (r == -ENAMETOOLONG)
        return pg_errf(r, err, errlen, "password file \"%s\": the matching password is too long (max %zu bytes)", path,
                    sizeof ci->password - 1);
    ci->password_from_file = r == 1;
    return 0;
}

int iox_pg_conninfo_load(struct iox_pg_conninfo *ci, const char *conninfo, char *err, size_t errlen)
{
    struct given g;
    int r;
    memset(&g, 0, sizeof g);
    memset(ci, 0, sizeof *ci);
    strcpy(ci->host, IOX_PG_DEFAULT_SOCKET_DIR);
    ci->port = IOX_PG_DEFAULT_PORT;
    ci->connect_timeout_ms = IOX_PG_DEFAULT_CONNECT_TIMEOUT_MS;
    ci->query_timeout_ms = IOX_PG_DEFAULT_QUERY_TIMEOUT_MS;
    if (conninfo && (r = parse(&g, conninfo, err, errlen))) return r;
    if ((r = load_service(&g, err, errlen))) return r;
    add_env(&g);
    if ((r = apply(ci, &g, err, errlen))) return r;
    if (!ci->user[0] && (r = os_user(ci->user, sizeof ci->user, err, errlen))) return r;
    /* dbname defaults to the final user, unless PGDATABASE or dbname= set it. */
    if (!ci->dbname[0]) memcpy(ci->dbname, ci->user, sizeof ci->dbname);
    /* requirepeer is refused when any host is a socket directory. */
    const char *host = ci->hosts[0].host;
    for (unsigned i = 0; i < ci->nhosts; i++) if (ci->hosts[i].host[0] == '/') host = ci->hosts[i].host;
    if ((r = check_settings(&g, host, err, errlen))) return r;
    if ((r = apply_tls(ci, &g, err, errlen))) return r;
    return load_passfile(ci, &g, err, errlen);
}

void iox_pg_conninfo_startup_extra(const struct iox_pg_conninfo *ci, const char *kv[IOX_PG_STARTUP_EXTRA_SLOTS])
{
    size_t n = 0;
#define ADD(name, field) if (ci->field[0]) { kv[n++] = name; kv[n++] = ci->field; }
    ADD("options", options);
    ADD("client_encoding", client_encoding);
    ADD("DateStyle", datestyle);
    ADD("TimeZone", timezone);
    ADD("geqo", geqo);
#undef ADD
    kv[n] = NULL;
}

static int addr_of(const char *h, uint16_t port, struct sockaddr_storage *ss, socklen_t *len, char *err, size_t errlen);

int iox_pg_conninfo_sockaddr(const struct iox_pg_conninfo *ci, struct sockaddr_storage *ss,
                             socklen_t *len, char *err, size_t errlen)
{
    return addr_of(ci->host[0] ? ci->host : IOX_PG_DEFAULT_SOCKET_DIR, ci->port, ss, len, err, errlen);
}

int iox_pg_conninfo_host_sockaddr(const struct iox_pg_conninfo *ci, unsigned i, struct sockaddr_storage *ss,
                                  socklen_t *len, char *err, size_t errlen)
{
    if (i >= ci->nhosts) return pg_errf(-EINVAL, err, errlen, "host %u: the list has %u", i, ci->nhosts);
    return addr_of(ci->hosts[i].host[0] ? ci->hosts[i].host : IOX_PG_DEFAULT_SOCKET_DIR, ci->hosts[i].port, ss, len,
                   err, errlen);
}

static int addr_of(const char *h, uint16_t port, struct sockaddr_storage *ss, socklen_t *len, char *err, size_t errlen)
{
    memset(ss, 0, sizeof *ss);
    if (h[0] == '/') {
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        un->sun_family = AF_UNIX;
        int n = snprintf(un->sun_path, sizeof un->sun_path, "%s/.s.PGSQL.%u", h, port);
        if (n < 0 || (size_t)n >= sizeof un->sun_path)
            return pg_errf(-ENAMETOOLONG, err, errlen, "Unix socket path \"%s/.s.PGSQL.%u\" is longer than %zu bytes",
                        h, port, sizeof un->sun_path - 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
        return 0;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    if (strcmp(h, "localhost") == 0 || inet_pton(AF_INET, h, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        if (h[0] == 'l') in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = sizeof *in4;
        return 0;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof *in6;
        return 0;
    }
    return pg_errf(-EINVAL, err, errlen,
                "host \"%s\" would need a DNS lookup, which ioxide does not do on the ring; "
                "use a numeric address, localhost, or a Unix socket directory", h);
}
