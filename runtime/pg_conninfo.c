/* pg_conninfo.c — conninfo strings, libpq environment, socket addresses
 * (see pg_conninfo.h). */
#include "pg_conninfo.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int set(char *dst, size_t cap, const char *v, const char *what, char *err, size_t errlen)
{
    size_t n = strlen(v);
    if (n >= cap) return fail(-ENAMETOOLONG, err, errlen, "%s is too long (max %zu bytes)", what, cap - 1);
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

/* One keyword=value. */
static int apply(struct iox_pg_conninfo *ci, const char *k, const char *v, char *err, size_t errlen)
{
    unsigned long n;
#define S(field, name) if (strcmp(k, name) == 0) return set(ci->field, sizeof ci->field, v, name, err, errlen)
    if (strcmp(k, "host") == 0 && strchr(v, ','))
        return fail(-EINVAL, err, errlen, "host lists are not supported: \"%s\"", v);
    S(host, "host");
    S(user, "user");
    S(password, "password");
    S(dbname, "dbname");
    S(application_name, "application_name");
#undef S
    if (strcmp(k, "port") == 0) {
        if (number(v, 65535, &n) || n == 0) return fail(-EINVAL, err, errlen, "invalid port number: \"%s\"", v);
        ci->port = (uint16_t)n;
        return 0;
    }
    if (strcmp(k, "connect_timeout") == 0) {
        if (number(v, 4000000, &n)) return fail(-EINVAL, err, errlen, "invalid connect_timeout: \"%s\"", v);
        ci->connect_timeout_ms = (uint32_t)(n * 1000);
        return 0;
    }
    if (strcmp(k, "connect_timeout_ms") == 0 || strcmp(k, "query_timeout_ms") == 0) {
        if (number(v, 0xffffffffu, &n)) return fail(-EINVAL, err, errlen, "invalid %s: \"%s\"", k, v);
        if (k[0] == 'c') ci->connect_timeout_ms = (uint32_t)n; else ci->query_timeout_ms = (uint32_t)n;
        return 0;
    }
    if (strcmp(k, "sslmode") == 0) {
        if (strcmp(v, "disable") == 0 || strcmp(v, "allow") == 0 || strcmp(v, "prefer") == 0) return 0;
        return fail(-EINVAL, err, errlen, "sslmode \"%s\" needs TLS, which ioxide does not support", v);
    }
    return fail(-EINVAL, err, errlen, "invalid connection option \"%s\"", k);
}

static int os_user(char *out, size_t cap, char *err, size_t errlen)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &res) != 0 || !res)
        return fail(-ENOENT, err, errlen, "could not look up the OS user name for uid %u", (unsigned)geteuid());
    return set(out, cap, res->pw_name, "user", err, errlen);
}

int iox_pg_conninfo_from_env(struct iox_pg_conninfo *ci, char *err, size_t errlen)
{
    memset(ci, 0, sizeof *ci);
    strcpy(ci->host, IOX_PG_DEFAULT_SOCKET_DIR);
    ci->port = IOX_PG_DEFAULT_PORT;
    ci->connect_timeout_ms = IOX_PG_DEFAULT_CONNECT_TIMEOUT_MS;
    ci->query_timeout_ms = IOX_PG_DEFAULT_QUERY_TIMEOUT_MS;
    int r = os_user(ci->user, sizeof ci->user, err, errlen);
    if (r) return r;
    static const struct { const char *env, *key; } map[] = {
        {"PGHOST", "host"}, {"PGPORT", "port"}, {"PGUSER", "user"},
        {"PGPASSWORD", "password"}, {"PGDATABASE", "dbname"},
        {"PGAPPNAME", "application_name"}, {"PGCONNECT_TIMEOUT", "connect_timeout"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *v = getenv(map[i].env);
        if (!v || !*v) continue;
        if ((r = apply(ci, map[i].key, v, err, errlen))) {
            if (err && errlen) {
                char tmp[256];
                snprintf(tmp, sizeof tmp, "%s", err);
                snprintf(err, errlen, "%s: %s", map[i].env, tmp);
            }
            return r;
        }
    }
    return 0;
}

int iox_pg_conninfo_parse(struct iox_pg_conninfo *ci, const char *s, char *err, size_t errlen)
{
    if (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0)
        return fail(-EINVAL, err, errlen, "connection URIs are not supported; use key=value pairs");
    char key[64], val[1024];
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v') p++;
        if (!*p) return 0;
        size_t kn = 0;
        while (*p && *p != '=' && *p != ' ' && *p != '\t' && *p != '\n') {
            if (kn + 1 >= sizeof key) return fail(-EINVAL, err, errlen, "connection option name too long");
            key[kn++] = *p++;
        }
        key[kn] = 0;
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (*p != '=')
            return fail(-EINVAL, err, errlen, "missing \"=\" after \"%s\" in connection info string", key);
        p++;
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        size_t vn = 0;
        if (*p == '\'') {
            p++;
            for (;;) {
                if (!*p) return fail(-EINVAL, err, errlen, "unterminated quoted string in connection info string");
                if (*p == '\'') { p++; break; }
                if (*p == '\\' && p[1]) p++;
                if (vn + 1 >= sizeof val) return fail(-ENAMETOOLONG, err, errlen, "value of \"%s\" too long", key);
                val[vn++] = *p++;
            }
        } else {
            while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\f' && *p != '\v') {
                if (*p == '\\' && p[1]) p++;
                if (vn + 1 >= sizeof val) return fail(-ENAMETOOLONG, err, errlen, "value of \"%s\" too long", key);
                val[vn++] = *p++;
            }
        }
        val[vn] = 0;
        int r = apply(ci, key, val, err, errlen);
        if (r) return r;
    }
}

int iox_pg_conninfo_load(struct iox_pg_conninfo *ci, const char *conninfo, char *err, size_t errlen)
{
    int r = iox_pg_conninfo_from_env(ci, err, errlen);
    if (r) return r;
    if (conninfo && (r = iox_pg_conninfo_parse(ci, conninfo, err, errlen))) return r;
    /* dbname defaults to the final user, unless PGDATABASE or dbname= set it. */
    if (!ci->dbname[0]) memcpy(ci->dbname, ci->user, sizeof ci->dbname);
    return 0;
}

int iox_pg_conninfo_sockaddr(const struct iox_pg_conninfo *ci, struct sockaddr_storage *ss,
                             socklen_t *len, char *err, size_t errlen)
{
    memset(ss, 0, sizeof *ss);
    const char *h = ci->host[0] ? ci->host : IOX_PG_DEFAULT_SOCKET_DIR;
    if (h[0] == '/') {
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        un->sun_family = AF_UNIX;
        int n = snprintf(un->sun_path, sizeof un->sun_path, "%s/.s.PGSQL.%u", h, ci->port);
        if (n < 0 || (size_t)n >= sizeof un->sun_path)
            return fail(-ENAMETOOLONG, err, errlen, "Unix socket path \"%s/.s.PGSQL.%u\" is longer than %zu bytes",
                        h, ci->port, sizeof un->sun_path - 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
        return 0;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    if (strcmp(h, "localhost") == 0 || inet_pton(AF_INET, h, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(ci->port);
        if (h[0] == 'l') in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = sizeof *in4;
        return 0;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(ci->port);
        *len = sizeof *in6;
        return 0;
    }
    return fail(-EINVAL, err, errlen,
                "host \"%s\" would need a DNS lookup, which ioxide does not do on the ring; "
                "use a numeric address, localhost, or a Unix socket directory", h);
}
