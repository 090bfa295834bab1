/* pg_conninfo.h — PostgreSQL connection options: libpq-style conninfo
 * strings, the libpq environment variables, and the socket address.
 *
 * Precedence, as in libpq: conninfo keyword > environment variable >
 * default. Defaults: host = Unix socket directory /var/run/postgresql,
 * port 5432, user = the current OS user, dbname = user, application_name
 * "ioxide", connect_timeout_ms 5000, query_timeout_ms 30000.
 *
 * Every libpq keyword and environment variable is known here and is either
 * honoured, ignored (not implemented, and ignoring it cannot make the
 * connection less safe than the user asked for: e.g. sslcrl), or refused: a setting ioxide does
 * not implement that would change where or how it connects or what it
 * trusts (sslcertmode=require, sslnegotiation=direct, gssencmode=require,
 * require_auth, requirepeer on a Unix socket, hostaddr, ...) is an error:
 * one line naming the variable or keyword, its
 * value, why, and what to do. ioxide behaves like libpq built with TLS
 * (pg_tls.c) and without GSSAPI. The full table: docs/pg-client.md, "Connection
 * settings".
 *
 * Honoured: host, port, user, password, dbname, application_name,
 * fallback_application_name, connect_timeout (seconds), options,
 * client_encoding (not "auto"), and the environment-only PGDATESTYLE, PGTZ,
 * PGGEQO (sent in the StartupMessage, as libpq does); plus ioxide's own
 * keywords connect_timeout_ms and query_timeout_ms. libpq's files, as
 * libpq reads them (pg_pgfiles.h): service / PGSERVICE selects a section of
 * PGSERVICEFILE or ~/.pg_service.conf, else PGSYSCONFDIR/pg_service.conf
 * (default /etc/postgresql-common), whose settings come between the string
 * and the environment (a service found nowhere, or a bad line, is an
 * error); without a password, passfile / PGPASSFILE (default ~/.pgpass)
 * gives it, and a password file others may access is ignored with a
 * warning in ci->warning. An empty environment
 * variable for an honoured setting counts as unset. Unknown keywords are
 * errors.
 *
 * Several hosts (libpq's "Specifying Multiple Hosts"): host=a,b,c with
 * port=p (for all) or port=p1,p2,p3 (one per host; an empty element is the
 * default, another count is an error), or a URI
 * postgresql://[user[:password]@]h1[:p1],h2[:p2]/db?key=value&... (also
 * postgres://; percent-encoding; [v6] literals; a host starting with %2F is
 * a socket directory). target_session_attrs (any, read-write, read-only,
 * primary, standby, prefer-standby) and load_balance_hosts (disable,
 * random) are kept in ci->target and ci->load_balance; the pool
 * (pg_pool.c) tries the hosts. ci->host / ci->port are the first host's,
 * and the password file is looked up for it.
 *
 * Name resolution: the ring must never block, so there is no DNS. host
 * must be a Unix socket directory (starts with '/'), a numeric IPv4 or IPv6
 * address, or "localhost" (→ 127.0.0.1 only, not ::1). Any other name is
 * rejected by iox_pg_conninfo_sockaddr with a message saying so.
 *
 * Everything is copied into fixed arrays inside the struct: no allocation,
 * no ownership to track. Error messages go to err[0..errlen) (may be NULL);
 * they are one line (control characters in values are shown as '?').
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

/* One entry of a host list (libpq's "host=a,b port=p1,p2"). */
#define IOX_PG_MAX_HOSTS 16
struct iox_pg_host {
    char host[256];                /* socket directory, numeric address or localhost */
    uint16_t port;
};

/* target_session_attrs (libpq's order of the words). */
enum iox_pg_target {
    IOX_PG_TARGET_ANY, IOX_PG_TARGET_READ_WRITE, IOX_PG_TARGET_READ_ONLY,
    IOX_PG_TARGET_PRIMARY, IOX_PG_TARGET_STANDBY, IOX_PG_TARGET_PREFER_STANDBY,
};

struct iox_pg_conninfo {
    char host[256];                /* the first host of the list (= hosts[0]) */
    uint16_t port;                 /* the first host's port (= hosts[0].port) */
    uint8_t nhosts;                /* 1..IOX_PG_MAX_HOSTS */
    uint8_t target;                /* enum iox_pg_target (target_session_attrs) */
    uint8_t load_balance;          /* load_balance_hosts=random: each attempt shuffles the list */
    struct iox_pg_host hosts[IOX_PG_MAX_HOSTS];
    char user[128];
    char password[256];
    char dbname[128];
    char application_name[128];    /* application_name, else fallback_application_name */
    char options[1024];            /* options / PGOPTIONS, sent as is */
    char client_encoding[64];      /* client_encoding / PGCLIENTENCODING */
    char datestyle[64];            /* PGDATESTYLE (not "default") */
    char timezone[64];             /* PGTZ (not "default") */
    char geqo[16];                 /* PGGEQO (not "default") */
    uint32_t connect_timeout_ms;   /* 0: no limit */
    uint32_t query_timeout_ms;     /* 0: no limit */
    uint8_t password_from_file;    /* password came from the password file */
    /* TLS (pg_tls.c). sslmode: what libpq's sslmode asks; the Unix socket
     * never uses TLS (as libpq). */
    uint8_t sslmode;               /* enum iox_pg_sslmode, default PREFER */
    uint8_t sslsni;                /* send SNI (default 1) */
    uint8_t ssl_min, ssl_max;      /* 0 = no bound, 1..4 = TLSv1 .. TLSv1.3 */
    uint8_t sslroot_system;        /* sslrootcert=system: the OS's CA store */
    uint8_t channel_binding;       /* enum iox_pg_cbind_mode, default PREFER */
    char sslrootcert[256];         /* "" = ~/.postgresql/root.crt */
    char sslcert[256];             /* "" = ~/.postgresql/postgresql.crt if present */
    char sslkey[256];              /* "" = ~/.postgresql/postgresql.key */
    char warning[320];             /* "" or one line to log (an ignored password file) */
};

/* channel_binding (SCRAM-SHA-256-PLUS over TLS, pg_conn.c auth_request). */
enum iox_pg_cbind_mode { IOX_PG_CB_DISABLE = 0, IOX_PG_CB_PREFER, IOX_PG_CB_REQUIRE };

enum iox_pg_sslmode {
    IOX_PG_SSL_DISABLE, IOX_PG_SSL_ALLOW, IOX_PG_SSL_PREFER, IOX_PG_SSL_REQUIRE,
    IOX_PG_SSL_VERIFY_CA, IOX_PG_SSL_VERIFY_FULL,
};

/* The full libpq order: defaults, environment, service file, then conninfo
 * (may be NULL); dbname defaults to the final user; then the password file
 * when no password is given. Reads the service and password files (stdio:
 * call it at startup, not on the hot path). conninfo: "host=/tmp port=5433
 * user='a b'"; values may be single-quoted; inside or outside quotes a
 * backslash takes the next character literally; whitespace around '=' is
 * allowed; a keyword given twice keeps the last value.
 * Returns 0; -EINVAL (syntax, unknown keyword, bad number, a refused
 * setting: err says which); -ENAMETOOLONG (a value does not fit); -ENOENT
 * (no OS user name). *ci is unspecified on error. */
int iox_pg_conninfo_load(struct iox_pg_conninfo *ci, const char *conninfo,
                         char *err, size_t errlen);

/* The StartupMessage parameters after user, database and application_name:
 * name/value pairs of the set ones among options, client_encoding,
 * DateStyle, TimeZone, geqo, NULL-terminated (kv needs 11 slots). The
 * pointers are into *ci. */
#define IOX_PG_STARTUP_EXTRA_SLOTS 11
void iox_pg_conninfo_startup_extra(const struct iox_pg_conninfo *ci,
                                   const char *kv[IOX_PG_STARTUP_EXTRA_SLOTS]);

/* The address to connect to: sockaddr_un "<host>/.s.PGSQL.<port>" for a
 * socket directory, sockaddr_in/in6 for numeric addresses and localhost.
 * *len gets the address length. Returns 0; -EINVAL when host needs DNS (or
 * is empty); -ENAMETOOLONG when the socket path exceeds sun_path. */
int iox_pg_conninfo_sockaddr(const struct iox_pg_conninfo *ci, struct sockaddr_storage *ss,
                             socklen_t *len, char *err, size_t errlen);
/* The same for host i of the list (0 <= i < ci->nhosts; the message names
 * the host). */
int iox_pg_conninfo_host_sockaddr(const struct iox_pg_conninfo *ci, unsigned i, struct sockaddr_storage *ss,
                                  socklen_t *len, char *err, size_t errlen);
/* The libpq word for ci->target ("read-write", ...). */
const char *iox_pg_target_name(unsigned target);

/* Format a message into err (when err and errlen) and return code: the
 * error convention of conninfo and the libpq files (pg_pgfiles.c). */
int pg_errf(int code, char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#endif
