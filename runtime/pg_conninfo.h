/* pg_conninfo.h — PostgreSQL connection options: libpq-style conninfo
 * strings, the libpq environment variables, and the socket address.
 *
 * Precedence, as in libpq: conninfo keyword > environment variable >
 * default. Defaults: host = Unix socket directory /var/run/postgresql,
 * port 5432, user = the current OS user, dbname = user, application_name
 * empty, connect_timeout_ms 5000, query_timeout_ms 30000.
 * Environment: PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGAPPNAME
 * PGCONNECT_TIMEOUT (seconds, as libpq).
 * Keywords: host, port, user, password, dbname, application_name,
 * connect_timeout (seconds, libpq), connect_timeout_ms and
 * query_timeout_ms (ioxide's own), and sslmode accepted only as
 * disable/allow/prefer (ioxide never speaks TLS). Any other keyword, a
 * host list ("a,b"), or a URI ("postgresql://") is an error.
 *
 * Name resolution: the ring must never block, so there is no DNS. host
 * must be a Unix socket directory (starts with '/'), a numeric IPv4 or IPv6
 * address, or "localhost" (→ 127.0.0.1 only, not ::1). Any other name is
 * rejected by iox_pg_conninfo_sockaddr with a message saying so.
 *
 * Everything is copied into fixed arrays inside the struct: no allocation,
 * no ownership to track. Error messages go to err[0..errlen) (may be NULL).
 */
#ifndef IOX_PG_CONNINFO_H
#define IOX_PG_CONNINFO_H
#include <stdint.h>
#include <stddef.h>
#include <sys/socket.h>

#define IOX_PG_DEFAULT_SOCKET_DIR "/var/run/postgresql"
#define IOX_PG_DEFAULT_PORT 5432
#define IOX_PG_DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define IOX_PG_DEFAULT_QUERY_TIMEOUT_MS 30000u

struct iox_pg_conninfo {
    char host[256];
    uint16_t port;
    char user[128];
    char password[256];
    char dbname[128];
    char application_name[128];
    uint32_t connect_timeout_ms;   /* 0: no limit */
    uint32_t query_timeout_ms;     /* 0: no limit */
};

/* Fill *ci with the defaults overridden by the environment variables.
 * Returns 0, or -EINVAL (bad PGPORT/PGCONNECT_TIMEOUT, err says which),
 * -ENAMETOOLONG (a value does not fit), -ENOENT (no OS user name). */
int iox_pg_conninfo_from_env(struct iox_pg_conninfo *ci, char *err, size_t errlen);

/* Apply a conninfo string ("host=/tmp port=5433 user='a b'") on top of *ci.
 * Values may be single-quoted; inside or outside quotes a backslash takes
 * the next character literally; whitespace around '=' is allowed. A user
 * set here without dbname also becomes dbname only if dbname was not set
 * from anywhere (call iox_pg_conninfo_load for the full libpq order).
 * Returns 0, -EINVAL (syntax, unknown keyword, bad number) or
 * -ENAMETOOLONG; *ci may be partly updated on error. */
int iox_pg_conninfo_parse(struct iox_pg_conninfo *ci, const char *conninfo,
                          char *err, size_t errlen);

/* The full libpq order: defaults, environment, then conninfo (may be NULL);
 * dbname defaults to the final user. Returns as the two above. */
int iox_pg_conninfo_load(struct iox_pg_conninfo *ci, const char *conninfo,
                         char *err, size_t errlen);

/* The address to connect to: sockaddr_un "<host>/.s.PGSQL.<port>" for a
 * socket directory, sockaddr_in/in6 for numeric addresses and localhost.
 * *len gets the address length. Returns 0; -EINVAL when host needs DNS (or
 * is empty); -ENAMETOOLONG when the socket path exceeds sun_path. */
int iox_pg_conninfo_sockaddr(const struct iox_pg_conninfo *ci, struct sockaddr_storage *ss,
                             socklen_t *len, char *err, size_t errlen);

#endif
