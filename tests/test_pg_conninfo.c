/* test_pg_conninfo.c — conninfo strings, libpq environment and defaults,
 * socket addresses; what is honoured, ignored and refused of every libpq
 * setting (docs/pg-client.md "Connection settings"), environment and
 * keyword alike, and their precedence; and the integration path: the
 * playground in pg mode with PGSSLMODE=verify-full exits 1 with one line on
 * stderr before serving. No database needed. */
#include "iox_test.h"
#include "http_client.h"
#include "pg_conninfo.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* Every libpq environment variable: the suite clears them all, so neither
 * the developer's environment nor one case leaks into another. */
static const char *vars[] = {
    "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGPASSFILE",
    "PGREQUIREAUTH", "PGCHANNELBINDING", "PGSERVICE", "PGSERVICEFILE", "PGOPTIONS", "PGAPPNAME",
    "PGSSLMODE", "PGREQUIRESSL", "PGSSLNEGOTIATION", "PGSSLCOMPRESSION", "PGSSLCERT", "PGSSLKEY",
    "PGSSLCERTMODE", "PGSSLROOTCERT", "PGSSLCRL", "PGSSLCRLDIR", "PGSSLSNI", "PGREQUIREPEER",
    "PGSSLMINPROTOCOLVERSION", "PGSSLMAXPROTOCOLVERSION", "PGMINPROTOCOLVERSION",
    "PGMAXPROTOCOLVERSION", "PGGSSENCMODE", "PGKRBSRVNAME", "PGGSSLIB", "PGGSSDELEGATION",
    "PGCONNECT_TIMEOUT", "PGCLIENTENCODING", "PGTARGETSESSIONATTRS", "PGLOADBALANCEHOSTS",
    "PGDATESTYLE", "PGTZ", "PGGEQO", "PGSYSCONFDIR", "PGLOCALEDIR",
};
#define NVARS (sizeof vars / sizeof vars[0])
static char *saved[NVARS];

static int save_env(void)
{
    for (size_t i = 0; i < NVARS; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    return 0;
}
static int restore_env(void)
{
    for (size_t i = 0; i < NVARS; i++) {
        if (saved[i]) { setenv(vars[i], saved[i], 1); free(saved[i]); saved[i] = NULL; }
        else unsetenv(vars[i]);
    }
    return 0;
}
static void clear_env(void) { for (size_t i = 0; i < NVARS; i++) unsetenv(vars[i]); }
static int starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

IOX_TEST(pg_conninfo, defaults)
{
    clear_env();
    struct iox_pg_conninfo ci;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    struct passwd *pw = getpwuid(geteuid());
    CU_ASSERT_STRING_EQUAL(ci.host, "/var/run/postgresql");
    CU_ASSERT_EQUAL(ci.port, 5432);
    CU_ASSERT_STRING_EQUAL(ci.user, pw->pw_name);
    CU_ASSERT_STRING_EQUAL(ci.dbname, pw->pw_name);
    CU_ASSERT_STRING_EQUAL(ci.password, "");
    CU_ASSERT_EQUAL(ci.connect_timeout_ms, IOX_PG_DEFAULT_CONNECT_TIMEOUT_MS);
    const char *kv[IOX_PG_STARTUP_EXTRA_SLOTS];
    iox_pg_conninfo_startup_extra(&ci, kv);
    CU_ASSERT_PTR_NULL(kv[0]);
    struct sockaddr_storage ss; socklen_t len;
    CU_ASSERT_EQUAL(iox_pg_conninfo_sockaddr(&ci, &ss, &len, err, sizeof err), 0);
    struct sockaddr_un *un = (struct sockaddr_un *)&ss;
    CU_ASSERT_EQUAL(un->sun_family, AF_UNIX);
    CU_ASSERT_STRING_EQUAL(un->sun_path, "/var/run/postgresql/.s.PGSQL.5432");
}

IOX_TEST(pg_conninfo, environment_then_string)
{
    clear_env();
    setenv("PGHOST", "127.0.0.1", 1);
    setenv("PGPORT", "6543", 1);
    setenv("PGUSER", "envuser", 1);
    setenv("PGPASSWORD", "envpw", 1);
    struct iox_pg_conninfo ci;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.host, "127.0.0.1");
    CU_ASSERT_EQUAL(ci.port, 6543);
    CU_ASSERT_STRING_EQUAL(ci.user, "envuser");
    CU_ASSERT_STRING_EQUAL(ci.password, "envpw");
    CU_ASSERT_STRING_EQUAL(ci.dbname, "envuser");
    setenv("PGDATABASE", "envdb", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "user=struser port=7000", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.user, "struser");
    CU_ASSERT_STRING_EQUAL(ci.dbname, "envdb");
    CU_ASSERT_EQUAL(ci.port, 7000);
    /* an empty variable of an honoured setting counts as unset */
    setenv("PGPORT", "", 1);
    setenv("PGUSER", "", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.port, 5432);
    CU_ASSERT_STRING_EQUAL(ci.user, getpwuid(geteuid())->pw_name);
    setenv("PGPORT", "notaport", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), -EINVAL);
    CU_ASSERT(strstr(err, "PGPORT=notaport") != NULL);
    /* the string's port wins, so the bad PGPORT is never looked at */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "port=7001", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.port, 7001);
    clear_env();
}

IOX_TEST(pg_conninfo, string_syntax)
{
    clear_env();
    struct iox_pg_conninfo ci;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci,
        "  host = /tmp/x  port=5433 user='a b' password='it\\'s \\\\ ok' dbname=d\\ b "
        "application_name=app connect_timeout=3 query_timeout_ms=1500 sslmode=disable",
        err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.host, "/tmp/x");
    CU_ASSERT_EQUAL(ci.port, 5433);
    CU_ASSERT_STRING_EQUAL(ci.user, "a b");
    CU_ASSERT_STRING_EQUAL(ci.password, "it's \\ ok");
    CU_ASSERT_STRING_EQUAL(ci.dbname, "d b");
    CU_ASSERT_STRING_EQUAL(ci.application_name, "app");
    CU_ASSERT_EQUAL(ci.connect_timeout_ms, 3000);
    CU_ASSERT_EQUAL(ci.query_timeout_ms, 1500);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "password=''", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "");
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "port=1 port=2", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.port, 2);                      /* the last one wins */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "connect_timeout_ms=250 connect_timeout=9", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.connect_timeout_ms, 250);      /* the precise one wins */

    const char *bad[] = {"host", "port=0", "port=65536", "port=12x", "bogus=1", "user='open",
                         "sslmode=require", "host=a,b", "postgresql://localhost/db",
                         "connect_timeout=-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, bad[i], err, sizeof err), -EINVAL);
        CU_ASSERT(err[0] != 0);
    }
    char longv[400] = "user=";
    memset(longv + 5, 'u', 300);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, longv, err, sizeof err), -ENAMETOOLONG);
}

IOX_TEST(pg_conninfo, unknown_keyword_is_one_clear_error)
{
    clear_env();
    struct iox_pg_conninfo ci;
    char err[256] = "";
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=/tmp sslmdoe=disable", err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "invalid connection option \"sslmdoe\""));
    CU_ASSERT_PTR_NULL(strchr(err, '\n'));
    /* newer libpq keywords ioxide does not know are unknown, not ignored */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "oauth_issuer=https://x", err, sizeof err), -EINVAL);
    CU_ASSERT(strstr(err, "\"oauth_issuer\"") != NULL);
    /* environment-only names are not keywords */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "PGSSLMODE=disable", err, sizeof err), -EINVAL);
    CU_ASSERT(strstr(err, "\"PGSSLMODE\"") != NULL);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "bad\001key=1", err, sizeof err), -EINVAL);
    CU_ASSERT(strstr(err, "\"bad?key\"") != NULL);
}

/* ---- refused, ignored, honoured: each through the environment and the
 * string, which must decide the same ---- */

struct setting { const char *key, *env, *value, *why; };

/* Refused: load fails with -EINVAL, err is one line that starts with
 * "NAME=value" (or NAME="" for an empty value) and says why. */
static const struct setting refused[] = {
    {"sslmode", "PGSSLMODE", "require", "requires TLS, which this build of ioxide does not support"},
    {"sslmode", "PGSSLMODE", "verify-ca", "requires TLS"},
    {"sslmode", "PGSSLMODE", "verify-full", "requires TLS"},
    {"sslmode", "PGSSLMODE", "Disable", "not a valid sslmode value"},
    {"sslmode", "PGSSLMODE", "", "not a valid sslmode value"},
    {"sslrootcert", "PGSSLROOTCERT", "system", "verify-full"},
    {"sslcertmode", "PGSSLCERTMODE", "require", "requires TLS"},
    {"sslcertmode", "PGSSLCERTMODE", "sometimes", "not a valid sslcertmode value"},
    {"sslnegotiation", "PGSSLNEGOTIATION", "direct", "requires TLS"},
    {"sslnegotiation", "PGSSLNEGOTIATION", "tls", "not a valid sslnegotiation value"},
    {"ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION", "TLSv9", "not a valid ssl_min_protocol_version value"},
    {"ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION", "TLSv1.1", "below the minimum TLS version"},
    {"ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION", "1.3", "not a valid ssl_max_protocol_version value"},
    {"channel_binding", "PGCHANNELBINDING", "require", "channel binding"},
    {"channel_binding", "PGCHANNELBINDING", "", "not a valid channel_binding value"},
    {"gssencmode", "PGGSSENCMODE", "require", "GSSAPI encryption"},
    {"gssencmode", "PGGSSENCMODE", "on", "not a valid gssencmode value"},
    {"require_auth", "PGREQUIREAUTH", "scram-sha-256", "does not enforce"},
    {"require_auth", "PGREQUIREAUTH", "!password", "does not enforce"},
    {"require_auth", "PGREQUIREAUTH", "none", "does not enforce"},
    {"requirepeer", "PGREQUIREPEER", "postgres", "Unix socket"},   /* the default host is a socket */
    {"service", "PGSERVICE", "mydb", "service file"},
    {"service", "PGSERVICE", "", "service file"},
    {"passfile", "PGPASSFILE", "/nonexistent/pgpass", "password file"},   /* no password given */
    {"hostaddr", "PGHOSTADDR", "10.0.0.5", "connect to host instead"},
    {"target_session_attrs", "PGTARGETSESSIONATTRS", "read-write", "what kind of server"},
    {"target_session_attrs", "PGTARGETSESSIONATTRS", "read-only", "what kind of server"},
    {"target_session_attrs", "PGTARGETSESSIONATTRS", "primary", "what kind of server"},
    {"target_session_attrs", "PGTARGETSESSIONATTRS", "standby", "what kind of server"},
    {"target_session_attrs", "PGTARGETSESSIONATTRS", "prefer-standby", "what kind of server"},
    {"target_session_attrs", "PGTARGETSESSIONATTRS", "master", "not a valid target_session_attrs value"},
    {"load_balance_hosts", "PGLOADBALANCEHOSTS", "yes", "not a valid load_balance_hosts value"},
    {"min_protocol_version", "PGMINPROTOCOLVERSION", "3.2", "only protocol version 3.0"},
    {"min_protocol_version", "PGMINPROTOCOLVERSION", "latest", "only protocol version 3.0"},
    {"client_encoding", "PGCLIENTENCODING", "auto", "name the encoding"},
    {"replication", NULL, "database", "replication connection"},
    {"replication", NULL, "true", "replication connection"},
    {"replication", NULL, "1", "replication connection"},
    {NULL, "PGREQUIRESSL", "1", "means sslmode=require"},
    {NULL, "PGREQUIRESSL", "1yes", "means sslmode=require"},
};

/* Accepted and ignored: load succeeds and nothing ioxide uses changes. */
static const struct setting ignored[] = {
    {"sslmode", "PGSSLMODE", "disable", NULL},
    {"sslmode", "PGSSLMODE", "allow", NULL},
    {"sslmode", "PGSSLMODE", "prefer", NULL},
    {NULL, "PGREQUIRESSL", "0", NULL},
    {NULL, "PGREQUIRESSL", "", NULL},
    {NULL, "PGREQUIRESSL", "yes", NULL},          /* libpq: only a leading '1' counts */
    {"sslcompression", "PGSSLCOMPRESSION", "1", NULL},
    {"sslcert", "PGSSLCERT", "/nonexistent/client.crt", NULL},
    {"sslkey", "PGSSLKEY", "/nonexistent/client.key", NULL},
    {"sslpassword", NULL, "secret", NULL},
    {"sslrootcert", "PGSSLROOTCERT", "/nonexistent/root.crt", NULL},
    {"sslcrl", "PGSSLCRL", "/nonexistent/root.crl", NULL},
    {"sslcrldir", "PGSSLCRLDIR", "/nonexistent/crl", NULL},
    {"sslsni", "PGSSLSNI", "0", NULL},
    {"sslcertmode", "PGSSLCERTMODE", "disable", NULL},
    {"sslcertmode", "PGSSLCERTMODE", "allow", NULL},
    {"sslnegotiation", "PGSSLNEGOTIATION", "postgres", NULL},
    {"ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION", "TLSv1.3", NULL},
    {"ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION", "tlsv1.3", NULL},
    {"channel_binding", "PGCHANNELBINDING", "disable", NULL},
    {"channel_binding", "PGCHANNELBINDING", "prefer", NULL},
    {"gssencmode", "PGGSSENCMODE", "disable", NULL},
    {"gssencmode", "PGGSSENCMODE", "prefer", NULL},
    {"krbsrvname", "PGKRBSRVNAME", "postgres", NULL},
    {"gsslib", "PGGSSLIB", "gssapi", NULL},
    {"gssdelegation", "PGGSSDELEGATION", "1", NULL},
    {"require_auth", "PGREQUIREAUTH", "", NULL},
    {"requirepeer", "PGREQUIREPEER", "", NULL},
    {"passfile", "PGPASSFILE", "", NULL},
    {"hostaddr", "PGHOSTADDR", "", NULL},
    {"target_session_attrs", "PGTARGETSESSIONATTRS", "any", NULL},
    {"load_balance_hosts", "PGLOADBALANCEHOSTS", "disable", NULL},
    {"load_balance_hosts", "PGLOADBALANCEHOSTS", "random", NULL},
    {"min_protocol_version", "PGMINPROTOCOLVERSION", "3.0", NULL},
    {"max_protocol_version", "PGMAXPROTOCOLVERSION", "3.2", NULL},
    {"max_protocol_version", "PGMAXPROTOCOLVERSION", "latest", NULL},
    {"keepalives", NULL, "0", NULL},
    {"keepalives_idle", NULL, "30", NULL},
    {"keepalives_interval", NULL, "5", NULL},
    {"keepalives_count", NULL, "3", NULL},
    {"tcp_user_timeout", NULL, "10000", NULL},
    {"replication", NULL, "false", NULL},
    {"replication", NULL, "off", NULL},
    {"replication", NULL, "0", NULL},
    {NULL, "PGSERVICEFILE", "/nonexistent/pg_service.conf", NULL},
    {NULL, "PGSYSCONFDIR", "/nonexistent", NULL},
    {NULL, "PGLOCALEDIR", "/nonexistent", NULL},
};

/* Load with the setting in the environment (via=0) or the string (via=1). */
static int load_one(const struct setting *s, int via, struct iox_pg_conninfo *ci, char *err, size_t errlen)
{
    clear_env();
    char str[256];
    if (via) snprintf(str, sizeof str, "%s='%s'", s->key, s->value);
    else setenv(s->env, s->value, 1);
    err[0] = 0;
    int rc = iox_pg_conninfo_load(ci, via ? str : NULL, err, errlen);
    clear_env();
    return rc;
}

IOX_TEST(pg_conninfo, refused_settings_are_one_clear_line)
{
    struct iox_pg_conninfo ci;
    char err[512], want[160];
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const struct setting *s = &refused[i];
        for (int via = 0; via < 2; via++) {
            const char *name = via ? s->key : s->env;
            if (!name) continue;
            int rc = load_one(s, via, &ci, err, sizeof err);
            snprintf(want, sizeof want, "%s=%s", name, s->value[0] ? s->value : "\"\"");
            /* an invalid value is told what is valid; a refused one what to do */
            const char *todo = strstr(s->why, "not a valid") ? "(valid: " : via ? "remove it" : "unset it";
            int ok = rc == -EINVAL && strncmp(err, want, strlen(want)) == 0 && strstr(err, s->why) &&
                     strstr(err, todo) && !strchr(err, '\n');
            if (!ok) fprintf(stderr, "\n  refused %s: rc %d, err \"%s\"", want, rc, err);
            CU_ASSERT(ok);
        }
    }
    /* The brief's exact line. */
    setenv("PGSSLMODE", "verify-full", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), -EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "PGSSLMODE=verify-full requires TLS, which this build of ioxide does not support; "
                                "unset it or use sslmode=disable/allow/prefer");
    clear_env();
}

IOX_TEST(pg_conninfo, ignored_settings_change_nothing)
{
    struct iox_pg_conninfo base, ci;
    char err[512];
    clear_env();
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&base, NULL, err, sizeof err), 0);
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        const struct setting *s = &ignored[i];
        for (int via = 0; via < 2; via++) {
            const char *name = via ? s->key : s->env;
            if (!name) continue;
            int rc = load_one(s, via, &ci, err, sizeof err);
            int same = rc == 0 && memcmp(&ci, &base, sizeof ci) == 0;
            if (!same) fprintf(stderr, "\n  ignored %s=%s: rc %d, err \"%s\"", name, s->value, rc, err);
            CU_ASSERT(same);
        }
    }
}

IOX_TEST(pg_conninfo, conninfo_wins_over_environment)
{
    struct iox_pg_conninfo ci;
    char err[512];
    clear_env();
    /* a refused value in the environment is overridden by the string ... */
    setenv("PGSSLMODE", "verify-full", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "sslmode=disable", err, sizeof err), 0);
    /* ... and a refused value in the string is reported as the string's */
    setenv("PGSSLMODE", "disable", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "sslmode=verify-full", err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "sslmode=verify-full requires TLS"));
    clear_env();
    /* PGREQUIRESSL=1 yields to sslmode from anywhere (PGSSLMODE since 9.3) */
    setenv("PGREQUIRESSL", "1", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "sslmode=prefer", err, sizeof err), 0);
    setenv("PGSSLMODE", "allow", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    setenv("PGSSLMODE", "require", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "PGSSLMODE=require"));
    clear_env();
    setenv("PGCHANNELBINDING", "require", 1);
    setenv("PGGSSENCMODE", "require", 1);
    setenv("PGTARGETSESSIONATTRS", "primary", 1);
    setenv("PGREQUIREAUTH", "md5", 1);
    setenv("PGMINPROTOCOLVERSION", "3.2", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "channel_binding=prefer gssencmode=disable target_session_attrs=any "
                                         "require_auth='' min_protocol_version=3.0", err, sizeof err), 0);
    clear_env();
    /* requirepeer is checked on Unix sockets only, whichever source the host has */
    setenv("PGREQUIREPEER", "postgres", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1", err, sizeof err), 0);
    setenv("PGHOST", "127.0.0.1", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=/tmp", err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "PGREQUIREPEER=postgres"));
    clear_env();
    /* passfile is read by libpq only without a password, from either source */
    setenv("PGPASSFILE", "/nonexistent/pgpass", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "password=pw", err, sizeof err), 0);
    setenv("PGPASSWORD", "pw", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "password=''", err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "PGPASSFILE=/nonexistent/pgpass names a password file"));
    clear_env();
    /* honoured settings: the string's value is the one used */
    setenv("PGOPTIONS", "-c search_path=env", 1);
    setenv("PGAPPNAME", "envapp", 1);
    setenv("PGCLIENTENCODING", "auto", 1);            /* refused, but overridden */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "options='-c search_path=str' application_name=strapp "
                                         "client_encoding=UTF8", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.options, "-c search_path=str");
    CU_ASSERT_STRING_EQUAL(ci.application_name, "strapp");
    CU_ASSERT_STRING_EQUAL(ci.client_encoding, "UTF8");
    clear_env();
}

IOX_TEST(pg_conninfo, startup_parameters)
{
    struct iox_pg_conninfo ci;
    char err[512];
    const char *kv[IOX_PG_STARTUP_EXTRA_SLOTS];
    clear_env();
    setenv("PGOPTIONS", "-c statement_timeout=5s", 1);
    setenv("PGCLIENTENCODING", "LATIN1", 1);
    setenv("PGDATESTYLE", "SQL, DMY", 1);
    setenv("PGTZ", "Asia/Tokyo", 1);
    setenv("PGGEQO", "off", 1);
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    iox_pg_conninfo_startup_extra(&ci, kv);
    const char *want[] = {"options", "-c statement_timeout=5s", "client_encoding", "LATIN1",
                          "DateStyle", "SQL, DMY", "TimeZone", "Asia/Tokyo", "geqo", "off", NULL};
    for (int i = 0; i < 11; i++) {
        if (!want[i]) { CU_ASSERT_PTR_NULL(kv[i]); break; }
        CU_ASSERT_PTR_NOT_NULL_FATAL(kv[i]);
        CU_ASSERT_STRING_EQUAL(kv[i], want[i]);
    }
    /* "default" (any case) means: do not send it, as libpq */
    setenv("PGDATESTYLE", "DEFAULT", 1);
    setenv("PGTZ", "default", 1);
    unsetenv("PGGEQO");
    unsetenv("PGOPTIONS");
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    iox_pg_conninfo_startup_extra(&ci, kv);
    CU_ASSERT_STRING_EQUAL(kv[0], "client_encoding");
    CU_ASSERT_PTR_NULL(kv[2]);
    clear_env();
    /* fallback_application_name is used only without application_name */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "fallback_application_name=fb", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.application_name, "fb");
    setenv("PGAPPNAME", "envapp", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "fallback_application_name=fb", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.application_name, "envapp");
    clear_env();
}

IOX_TEST(pg_conninfo, values_in_messages_stay_on_one_line)
{
    struct iox_pg_conninfo ci;
    char err[512];
    clear_env();
    setenv("PGSSLMODE", "verify-full\nINJECTED", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), -EINVAL);
    CU_ASSERT_PTR_NULL(strchr(err, '\n'));
    CU_ASSERT(starts(err, "PGSSLMODE=verify-full?INJECTED is not a valid sslmode"));
    char longv[600];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    setenv("PGSSLMODE", longv, 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), -EINVAL);
    CU_ASSERT(strstr(err, "x... is not a valid sslmode") != NULL);
    CU_ASSERT(strlen(err) < 300);
    clear_env();
}

IOX_TEST(pg_conninfo, sockaddr)
{
    clear_env();
    struct iox_pg_conninfo ci;
    char err[256] = "";
    struct sockaddr_storage ss; socklen_t len;
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "host=localhost port=5440", err, sizeof err), 0);
    CU_ASSERT_EQUAL(iox_pg_conninfo_sockaddr(&ci, &ss, &len, err, sizeof err), 0);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    CU_ASSERT_EQUAL(in4->sin_family, AF_INET);
    CU_ASSERT_EQUAL(ntohs(in4->sin_port), 5440);
    CU_ASSERT_EQUAL(ntohl(in4->sin_addr.s_addr), INADDR_LOOPBACK);
    CU_ASSERT_EQUAL(len, sizeof(struct sockaddr_in));

    iox_pg_conninfo_load(&ci, "host=10.1.2.3", err, sizeof err);
    CU_ASSERT_EQUAL(iox_pg_conninfo_sockaddr(&ci, &ss, &len, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ntohl(in4->sin_addr.s_addr), 0x0a010203u);
    CU_ASSERT_EQUAL(ntohs(in4->sin_port), 5432);

    iox_pg_conninfo_load(&ci, "host=::1 port=1", err, sizeof err);
    CU_ASSERT_EQUAL(iox_pg_conninfo_sockaddr(&ci, &ss, &len, err, sizeof err), 0);
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    CU_ASSERT_EQUAL(in6->sin6_family, AF_INET6);
    CU_ASSERT(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
    CU_ASSERT_EQUAL(len, sizeof(struct sockaddr_in6));

    iox_pg_conninfo_load(&ci, "host=db.example.com", err, sizeof err);
    CU_ASSERT_EQUAL(iox_pg_conninfo_sockaddr(&ci, &ss, &len, err, sizeof err), -EINVAL);
    CU_ASSERT(strstr(err, "DNS") != NULL);

    char longhost[200] = "host=/";
    memset(longhost + 6, 'd', 150);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, longhost, err, sizeof err), 0);
    CU_ASSERT_EQUAL(iox_pg_conninfo_sockaddr(&ci, &ss, &len, err, sizeof err), -ENAMETOOLONG);

    iox_pg_conninfo_load(&ci, "host=/tmp/s port=6000", err, sizeof err);
    CU_ASSERT_EQUAL(iox_pg_conninfo_sockaddr(&ci, &ss, &len, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(((struct sockaddr_un *)&ss)->sun_path, "/tmp/s/.s.PGSQL.6000");
}

/* ---- the integration path: build/playground (or build/asan/playground) ---- */

IOX_TEST(pg_conninfo, playground_refuses_verify_full_before_serving)
{
    clear_env();
    /* Nothing listens on the database port: with a plaintext-allowed mode
     * the server must start anyway (the pool retries), which shows the exit
     * below is the refusal and not a start-up failure of another kind. */
    char pgport[32];
    snprintf(pgport, sizeof pgport, "PGPORT=%u", hc_free_port());
    const char *refuse[] = {"PLAYGROUND_MODE=pg", "REACTORS=1", "PGHOST=127.0.0.1", pgport,
                            "PGSSLMODE=verify-full", NULL};
    struct hc_server s;
    uint16_t port = hc_free_port();
    CU_ASSERT_FATAL(hc_server_spawn(&s, refuse, port) == 0);
    int st = hc_server_wait_exit(&s, hc_slow(5000));
    CU_ASSERT_EQUAL(st, 1);
    char *e = hc_server_stderr(&s);
    CU_ASSERT_STRING_EQUAL(e, "playground: pg mode: PGSSLMODE=verify-full requires TLS, which this build of ioxide "
                              "does not support; unset it or use sslmode=disable/allow/prefer\n");
    if (st != 1) fprintf(stderr, "\n  playground stderr: %s", e);
    free(e);
    hc_server_free(&s);

    const char *allow[] = {"PLAYGROUND_MODE=pg", "REACTORS=1", "PGHOST=127.0.0.1", pgport,
                           "PGSSLMODE=prefer", NULL};
    CU_ASSERT_FATAL(hc_server_start(&s, allow) == 0);
    struct hc_conn c;
    struct hc_response r;
    CU_ASSERT_FATAL(hc_connect(&c, s.port, hc_slow(2000)) == 0);
    CU_ASSERT_EQUAL(hc_roundtrip(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", &r, 0), HC_OK);
    CU_ASSERT_EQUAL(r.status, 503);
    hc_response_free(&r);
    hc_close(&c);
    CU_ASSERT_EQUAL(hc_server_stop(&s, NULL), 0);
    hc_server_free(&s);

    /* An unknown keyword cannot come from the playground's environment, but
     * a bad value of a known variable does, the same way. */
    const char *svc[] = {"PLAYGROUND_MODE=pg", "REACTORS=1", "PGSERVICE=prod", NULL};
    CU_ASSERT_FATAL(hc_server_spawn(&s, svc, hc_free_port()) == 0);
    CU_ASSERT_EQUAL(hc_server_wait_exit(&s, hc_slow(5000)), 1);
    e = hc_server_stderr(&s);
    CU_ASSERT(starts(e, "playground: pg mode: PGSERVICE=prod selects an entry of a connection service file"));
    CU_ASSERT_PTR_NOT_NULL(strchr(e, '\n'));
    CU_ASSERT(strchr(e, '\n') && strchr(e, '\n')[1] == 0);    /* exactly one line */
    free(e);
    hc_server_free(&s);
}

IOX_SUITE(pg_conninfo, save_env, restore_env);
