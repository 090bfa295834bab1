/* test_pg_conninfo.c — conninfo strings, libpq environment and defaults,
 * socket addresses; what is honoured, ignored and refused of every libpq
 * setting (docs/pg-client.md "Connection settings"), environment and
 * keyword alike, and their precedence; and the integration path: the
 * playground in pg mode with PGSSLMODE=verify-full and no root certificate exits 1 with one line on
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
#include <sys/stat.h>
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

/* HOME points at an empty temp dir for the suite: ~/.pgpass and
 * ~/.pg_service.conf are the test's, never the developer's. */
static char *saved_home;
static char home[64];

static int save_env(void)
{
    for (size_t i = 0; i < NVARS; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    const char *h = getenv("HOME");
    saved_home = h ? strdup(h) : NULL;
    strcpy(home, "/tmp/iox-pgci-XXXXXX");
    if (!mkdtemp(home)) return -1;
    setenv("HOME", home, 1);
    return 0;
}
static int restore_env(void)
{
    for (size_t i = 0; i < NVARS; i++) {
        if (saved[i]) { setenv(vars[i], saved[i], 1); free(saved[i]); saved[i] = NULL; }
        else unsetenv(vars[i]);
    }
    if (saved_home) { setenv("HOME", saved_home, 1); free(saved_home); saved_home = NULL; }
    else unsetenv("HOME");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    return system(cmd) == 0 ? 0 : -1;
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
                         "sslmode=required", "host=a,b port=1,2,3", "postgresql://localhost/db?bogus=1",
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
    {"sslmode", "PGSSLMODE", "Disable", "not a valid sslmode value"},
    {"sslmode", "PGSSLMODE", "", "not a valid sslmode value"},
    {"sslcertmode", "PGSSLCERTMODE", "require", "not implemented"},
    {"sslcertmode", "PGSSLCERTMODE", "sometimes", "not a valid sslcertmode value"},
    {"sslnegotiation", "PGSSLNEGOTIATION", "direct", "not implemented"},
    {"sslnegotiation", "PGSSLNEGOTIATION", "tls", "not a valid sslnegotiation value"},
    {"ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION", "TLSv9", "not a valid ssl_min_protocol_version value"},
    {"ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION", "TLSv1.1", "below the minimum TLS version"},
    {"ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION", "1.3", "not a valid ssl_max_protocol_version value"},
    {"channel_binding", "PGCHANNELBINDING", "require", "needs TLS (SCRAM-SHA-256-PLUS"},   /* a Unix socket */
    {"channel_binding", "PGCHANNELBINDING", "", "not a valid channel_binding value"},
    {"gssencmode", "PGGSSENCMODE", "require", "GSSAPI encryption"},
    {"gssencmode", "PGGSSENCMODE", "on", "not a valid gssencmode value"},
    {"require_auth", "PGREQUIREAUTH", "scram-sha-256", "does not enforce"},
    {"require_auth", "PGREQUIREAUTH", "!password", "does not enforce"},
    {"require_auth", "PGREQUIREAUTH", "none", "does not enforce"},
    {"requirepeer", "PGREQUIREPEER", "postgres", "Unix socket"},   /* the default host is a socket */
    {"service", "PGSERVICE", "mydb", "definition of service mydb not found"},
    {"service", "PGSERVICE", "", "definition of service \"\" not found"},
    {"hostaddr", "PGHOSTADDR", "10.0.0.5", "connect to host instead"},
    {"target_session_attrs", "PGTARGETSESSIONATTRS", "master", "not a valid target_session_attrs value"},
    {"load_balance_hosts", "PGLOADBALANCEHOSTS", "yes", "not a valid load_balance_hosts value"},
    {"min_protocol_version", "PGMINPROTOCOLVERSION", "3.2", "only protocol version 3.0"},
    {"min_protocol_version", "PGMINPROTOCOLVERSION", "latest", "only protocol version 3.0"},
    {"client_encoding", "PGCLIENTENCODING", "auto", "name the encoding"},
    {"replication", NULL, "database", "replication connection"},
    {"replication", NULL, "true", "replication connection"},
    {"replication", NULL, "1", "replication connection"},
};

/* Accepted and ignored: load succeeds and nothing ioxide uses changes. */
static const struct setting ignored[] = {
    {"sslmode", "PGSSLMODE", "prefer", NULL},      /* the default */
    {NULL, "PGREQUIRESSL", "0", NULL},
    {NULL, "PGREQUIRESSL", "", NULL},
    {NULL, "PGREQUIRESSL", "yes", NULL},          /* libpq: only a leading '1' counts */
    {"sslcompression", "PGSSLCOMPRESSION", "1", NULL},
    {"sslpassword", NULL, "secret", NULL},
    {"sslcrl", "PGSSLCRL", "/nonexistent/root.crl", NULL},
    {"sslcrldir", "PGSSLCRLDIR", "/nonexistent/crl", NULL},
    {"sslcertmode", "PGSSLCERTMODE", "disable", NULL},
    {"sslcertmode", "PGSSLCERTMODE", "allow", NULL},
    {"sslnegotiation", "PGSSLNEGOTIATION", "postgres", NULL},
    {"ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION", "TLSv1.2", NULL},     /* the default */
    {"channel_binding", "PGCHANNELBINDING", "prefer", NULL},      /* the default */
    {"gssencmode", "PGGSSENCMODE", "disable", NULL},
    {"gssencmode", "PGGSSENCMODE", "prefer", NULL},
    {"krbsrvname", "PGKRBSRVNAME", "postgres", NULL},
    {"gsslib", "PGGSSLIB", "gssapi", NULL},
    {"gssdelegation", "PGGSSDELEGATION", "1", NULL},
    {"require_auth", "PGREQUIREAUTH", "", NULL},
    {"requirepeer", "PGREQUIREPEER", "", NULL},
    {"passfile", "PGPASSFILE", "", NULL},
    {"passfile", "PGPASSFILE", "/nonexistent/pgpass", NULL},     /* libpq: no file, no password, no word */
    {"hostaddr", "PGHOSTADDR", "", NULL},
    {"target_session_attrs", "PGTARGETSESSIONATTRS", "any", NULL},
    {"load_balance_hosts", "PGLOADBALANCEHOSTS", "disable", NULL},
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
    /* verify-* over TCP need the root certificate: one line at startup */
    setenv("PGSSLMODE", "verify-full", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 sslrootcert=/nonexistent/root.crt", err, sizeof err),
                    -EINVAL);
    CU_ASSERT(starts(err, "PGSSLMODE=verify-full: root certificate file \"/nonexistent/root.crt\" does not exist"));
    CU_ASSERT(strstr(err, "unset it") != NULL);
    /* ~/.postgresql/root.crt by default */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1", err, sizeof err), -EINVAL);
    CU_ASSERT(strstr(err, "/.postgresql/root.crt\" does not exist") != NULL);
    /* a Unix socket never uses TLS (libpq ignores sslmode there) */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=/tmp", err, sizeof err), 0);
    clear_env();
    /* sslrootcert=system: verify-full by default, a weaker sslmode is an error (libpq) */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 sslrootcert=system", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.sslmode, IOX_PG_SSL_VERIFY_FULL);
    CU_ASSERT_EQUAL(ci.sslroot_system, 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "sslmode=require sslrootcert=system", err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "weak sslmode=require may not be used with sslrootcert=system"));
    clear_env();
}

IOX_TEST(pg_conninfo, channel_binding_modes)
{
    struct iox_pg_conninfo ci;
    char err[512];
    clear_env();
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.channel_binding, IOX_PG_CB_PREFER);
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 channel_binding=disable", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.channel_binding, IOX_PG_CB_DISABLE);
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 channel_binding=require", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.channel_binding, IOX_PG_CB_REQUIRE);
    setenv("PGCHANNELBINDING", "require", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 sslmode=disable", err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "PGCHANNELBINDING=require needs TLS"));
    CU_ASSERT(strstr(err, "unset it") != NULL);
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
    setenv("PGSSLMODE", "verify-fill", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "sslmode=disable", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.sslmode, IOX_PG_SSL_DISABLE);
    /* ... and a refused value in the string is reported as the string's */
    setenv("PGSSLMODE", "disable", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "sslmode=verify-fill", err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "sslmode=verify-fill is not a valid sslmode value"));
    clear_env();
    /* PGREQUIRESSL=1 means require, and yields to sslmode from anywhere (PGSSLMODE since 9.3) */
    setenv("PGREQUIRESSL", "1", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.sslmode, IOX_PG_SSL_REQUIRE);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "sslmode=prefer", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.sslmode, IOX_PG_SSL_PREFER);
    setenv("PGSSLMODE", "allow", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.sslmode, IOX_PG_SSL_ALLOW);
    setenv("PGREQUIRESSL", "yes", 1);      /* libpq: only a leading '1' counts */
    unsetenv("PGSSLMODE");
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.sslmode, IOX_PG_SSL_PREFER);
    clear_env();
    /* the TLS files and knobs are taken as given */
    setenv("PGSSLCERT", "/c/client.crt", 1);
    setenv("PGSSLKEY", "/c/client.key", 1);
    setenv("PGSSLSNI", "0", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "sslrootcert=/c/root.crt sslmode=require "
                                         "ssl_min_protocol_version=TLSv1.3", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.sslcert, "/c/client.crt");
    CU_ASSERT_STRING_EQUAL(ci.sslkey, "/c/client.key");
    CU_ASSERT_STRING_EQUAL(ci.sslrootcert, "/c/root.crt");
    CU_ASSERT_EQUAL(ci.sslsni, 0);
    CU_ASSERT_EQUAL(ci.ssl_min, 4);
    CU_ASSERT_EQUAL(ci.sslmode, IOX_PG_SSL_REQUIRE);
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

/* ---- libpq's files: the password file and the service file ---- */

/* Write text to dir/name with mode; returns the path (static buffer). */
static const char *put_file(const char *name, mode_t mode, const char *text)
{
    static char path[4][128];
    static int turn;
    char *pth = path[turn++ & 3];
    snprintf(pth, 128, "%s/%s", home, name);
    FILE *f = fopen(pth, "w");
    if (!f) return pth;
    fputs(text, f);
    fclose(f);
    chmod(pth, mode);
    return pth;
}

/* The other cases run with an empty home (no ~/.pgpass, no ~/.pg_service.conf). */
static void clean_home(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/* '%s'/.pg*", home, home);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

IOX_TEST(pg_conninfo, pgpass_lookup_as_libpq)
{
    struct iox_pg_conninfo ci;
    char err[512] = "";
    clear_env();
    put_file(".pgpass", 0600,
             "# comment line: host:port:db:user:password\n"
             "10.0.0.1:5432:*:*:wrong-host\n"
             "127.0.0.1:5433:appdb:alice:alice-5433\n"
             "127.0.0.1:*:appdb:alice:alice-any-port\n"
             "127.0.0.1:*:*:b\\:ob:colon\\:user\\\\pw:ignored-after-colon\r\n"
             "localhost:5432:*:carol:carol-socket\n"
             "*:*:*:*:catch-all\n");
    /* ~/.pgpass (HOME) by default; the first matching line wins */
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 port=5433 user=alice dbname=appdb", err,
                                               sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "alice-5433");
    CU_ASSERT_EQUAL(ci.password_from_file, 1);
    CU_ASSERT_STRING_EQUAL(ci.warning, "");
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 port=6000 user=alice dbname=appdb", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "alice-any-port");
    /* escapes: "\:" in a field, "\:" and "\\" in the password, which ends at an unescaped ':' (CRLF stripped) */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 user=b:ob", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "colon:user\\pw");
    /* the default socket directory matches as "localhost"; another directory does not */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "user=carol", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "carol-socket");
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=/tmp user=carol", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "catch-all");
    /* dbname defaults to the user before the lookup: "alice" is not appdb */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 port=5433 user=alice", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "catch-all");
    /* a given password wins: the file is not read (PGPASSWORD or password=) */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 user=alice password=given", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "given");
    CU_ASSERT_EQUAL(ci.password_from_file, 0);
    setenv("PGPASSWORD", "envpw", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 user=alice", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "envpw");
    clear_env();
    /* PGPASSFILE and passfile= name another file (the string's wins); no match is no password */
    const char *other = put_file("other.pgpass", 0600, "*:*:*:alice:from-other\n");
    const char *third = put_file("third.pgpass", 0400, "*:*:*:alice:from-third\n");
    setenv("PGPASSFILE", other, 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 user=alice", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "from-other");
    char str[256];
    snprintf(str, sizeof str, "host=127.0.0.1 user=alice passfile=%s", third);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, str, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "from-third");
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 user=dave", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "");
    CU_ASSERT_EQUAL(ci.password_from_file, 0);
    /* libpq's permission check: group or world access → ignored, one warning line */
    chmod(other, 0640);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 user=alice", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "");
    char want[400];
    snprintf(want, sizeof want, "WARNING: password file \"%s\" has group or world access; permissions should be "
             "u=rw (0600) or less", other);
    CU_ASSERT_STRING_EQUAL(ci.warning, want);
    chmod(other, 0604);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 user=alice", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "");
    CU_ASSERT_STRING_EQUAL(ci.warning, want);
    /* not a plain file: ignored with a warning */
    setenv("PGPASSFILE", home, 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 user=alice", err, sizeof err), 0);
    CU_ASSERT(strstr(ci.warning, "is not a plain file") != NULL);
    /* an empty passfile means the default ~/.pgpass */
    setenv("PGPASSFILE", "", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1 port=5433 user=alice dbname=appdb", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "alice-5433");
    clear_env();
    clean_home();
}

IOX_TEST(pg_conninfo, service_file_as_libpq)
{
    struct iox_pg_conninfo ci;
    char err[512] = "";
    char str[256];
    clear_env();
    const char *sysdir_file = put_file("pg_service.conf", 0644,
                                       "[sysonly]\nport=7001\n[both]\nport=7002\n");
    (void)sysdir_file;
    setenv("PGSYSCONFDIR", home, 1);
    put_file(".pg_service.conf", 0644,
             "# the user's file\n"
             "[other]\n"
             "port=1111\n"
             "\n"
             "  [prod]  \n"
             "   host=127.0.0.1   \n"
             "port=6543\n"
             "user=svcuser\n"
             "dbname=svcdb\n"
             "port=9999\n"                   /* a second port: the first one stays, as libpq */
             "application_name=svc app\n"
             "[both]\n"
             "port=7003\n");
    /* service= names a section of ~/.pg_service.conf */
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "service=prod", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.host, "127.0.0.1");
    CU_ASSERT_EQUAL(ci.port, 6543);
    CU_ASSERT_STRING_EQUAL(ci.user, "svcuser");
    CU_ASSERT_STRING_EQUAL(ci.dbname, "svcdb");
    CU_ASSERT_STRING_EQUAL(ci.application_name, "svc app");
    /* the string wins over the service, the service over the environment */
    setenv("PGPORT", "5555", 1);
    setenv("PGUSER", "envuser", 1);
    setenv("PGPASSWORD", "envpw", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "service=prod user=struser", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.port, 6543);
    CU_ASSERT_STRING_EQUAL(ci.user, "struser");
    CU_ASSERT_STRING_EQUAL(ci.password, "envpw");     /* the service sets none */
    clear_env();
    /* PGSERVICE works like service= */
    setenv("PGSYSCONFDIR", home, 1);
    setenv("PGSERVICE", "prod", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.port, 6543);
    unsetenv("PGSERVICE");
    /* the user's file first; the system file (PGSYSCONFDIR) only for a section it lacks */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "service=both", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.port, 7003);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "service=sysonly", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.port, 7001);
    /* PGSERVICEFILE replaces ~/.pg_service.conf */
    const char *alt = put_file("alt.conf", 0644, "[prod]\nport=4321\n");
    setenv("PGSERVICEFILE", alt, 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "service=prod", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.port, 4321);
    /* a service found nowhere: one line naming both files */
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "service=nope", err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "service=nope: definition of service nope not found (looked in \""));
    CU_ASSERT(strstr(err, alt) != NULL);
    CU_ASSERT(strstr(err, "remove it from the connection string") != NULL);
    CU_ASSERT_PTR_NULL(strchr(err, '\n'));
    /* syntax errors name the file and the line */
    static const struct { const char *text, *why; } bad[] = {
        {"[s]\nport=1\nhost\n", "line 3: syntax error"},
        {"[s]\nhots=127.0.0.1\n", "line 2: invalid connection option \"hots\""},
        {"[s]\nhost = 127.0.0.1\n", "line 2: invalid connection option \"host \""},
        {"[s]\nservice=prod\n", "line 2: nested service"},
        {"[s]\nPGPORT=1\n", "line 2: invalid connection option \"PGPORT\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("PGSERVICEFILE", put_file("bad.conf", 0644, bad[i].text), 1);
        err[0] = 0;
        int rc = iox_pg_conninfo_load(&ci, "service=s", err, sizeof err);
        int ok = rc == -EINVAL && starts(err, "service file \"") && strstr(err, bad[i].why) && !strchr(err, '\n');
        if (!ok) fprintf(stderr, "\n  bad service file %zu: rc %d, err \"%s\"", i, rc, err);
        CU_ASSERT(ok);
    }
    /* a line of 255 bytes or more is an error, as libpq's 256-byte buffer makes it */
    char longline[400];
    snprintf(longline, sizeof longline, "[s]\napplication_name=%0300d\n", 0);
    setenv("PGSERVICEFILE", put_file("bad.conf", 0644, longline), 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "service=s", err, sizeof err), -EINVAL);
    CU_ASSERT(strstr(err, "line 2: line too long") != NULL);
    /* errors in other sections are not looked at; a refused setting from the service says where it is */
    setenv("PGSERVICEFILE", put_file("bad.conf", 0644, "[x]\nnonsense\n[s]\nhost=127.0.0.1\nsslmode=verify-ca\n"), 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "service=s", err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "sslmode=verify-ca: root certificate file"));
    CU_ASSERT(strstr(err, "remove it from the service file") != NULL);
    /* the service may carry the password file */
    const char *pf = put_file("svc.pgpass", 0600, "*:*:*:*:svc-pw\n");
    snprintf(str, sizeof str, "[s]\npassfile=%s\n", pf);
    setenv("PGSERVICEFILE", put_file("svc.conf", 0644, str), 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "service=s", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.password, "svc-pw");
    clear_env();
    clean_home();
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
    CU_ASSERT(starts(e, "playground: pg mode: PGSSLMODE=verify-full: root certificate file \""));
    CU_ASSERT(strstr(e, "/.postgresql/root.crt\" does not exist") != NULL);
    CU_ASSERT(strchr(e, '\n') && strchr(e, '\n')[1] == 0);    /* exactly one line */
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
    CU_ASSERT(starts(e, "playground: pg mode: PGSERVICE=prod: definition of service prod not found"));
    CU_ASSERT_PTR_NOT_NULL(strchr(e, '\n'));
    CU_ASSERT(strchr(e, '\n') && strchr(e, '\n')[1] == 0);    /* exactly one line */
    free(e);
    hc_server_free(&s);
}

/* ---- several hosts (libpq's "Specifying Multiple Hosts") ---- */

IOX_TEST(pg_conninfo, host_and_port_lists)
{
    clear_env();
    struct iox_pg_conninfo ci;
    char err[512] = "";
    /* one port for every host */
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1,/tmp/pg,::1 port=6000", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.nhosts, 3);
    CU_ASSERT_STRING_EQUAL(ci.hosts[0].host, "127.0.0.1");
    CU_ASSERT_STRING_EQUAL(ci.hosts[1].host, "/tmp/pg");
    CU_ASSERT_STRING_EQUAL(ci.hosts[2].host, "::1");
    for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(ci.hosts[i].port, 6000);
    CU_ASSERT_STRING_EQUAL(ci.host, "127.0.0.1");      /* the first host */
    CU_ASSERT_EQUAL(ci.port, 6000);
    /* one port per host; an empty element is the default */
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1,,localhost port=1,2,", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.nhosts, 3);
    CU_ASSERT_EQUAL(ci.hosts[0].port, 1);
    CU_ASSERT_STRING_EQUAL(ci.hosts[1].host, "/var/run/postgresql");
    CU_ASSERT_EQUAL(ci.hosts[1].port, 2);
    CU_ASSERT_EQUAL(ci.hosts[2].port, 5432);
    /* the addresses, one per host */
    struct sockaddr_storage ss; socklen_t len;
    CU_ASSERT_EQUAL(iox_pg_conninfo_host_sockaddr(&ci, 0, &ss, &len, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ss.ss_family, AF_INET);
    CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in *)&ss)->sin_port), 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_host_sockaddr(&ci, 1, &ss, &len, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(((struct sockaddr_un *)&ss)->sun_path, "/var/run/postgresql/.s.PGSQL.2");
    CU_ASSERT_EQUAL(iox_pg_conninfo_host_sockaddr(&ci, 3, &ss, &len, err, sizeof err), -EINVAL);
    /* from the environment too */
    setenv("PGHOST", "127.0.0.2,127.0.0.3", 1);
    setenv("PGPORT", "7,8", 1);
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.nhosts, 2);
    CU_ASSERT_EQUAL(ci.hosts[1].port, 8);
    /* mismatched counts: one line naming the keyword */
    setenv("PGPORT", "7,8,9", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "PGPORT=7,8,9: could not match 3 port numbers to 2 hosts"));
    CU_ASSERT(!strchr(err, '\n'));
    clear_env();
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=a1,a2,a3 port=1,2", err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "port=1,2: could not match 2 port numbers to 3 hosts"));
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1,127.0.0.2 port=1,x", err, sizeof err), -EINVAL);
    CU_ASSERT(starts(err, "port=1,x: invalid port number"));
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, "host=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", err, sizeof err), -EINVAL);
    CU_ASSERT(strstr(err, "more than 16 hosts") != NULL);
    /* one host is the list of one */
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.nhosts, 1);
    CU_ASSERT_STRING_EQUAL(ci.hosts[0].host, "/var/run/postgresql");
    /* a name that needs DNS is still refused, naming that host */
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "host=127.0.0.1,db.example", err, sizeof err), 0);
    CU_ASSERT_EQUAL(iox_pg_conninfo_host_sockaddr(&ci, 1, &ss, &len, err, sizeof err), -EINVAL);
    CU_ASSERT(strstr(err, "\"db.example\" would need a DNS lookup") != NULL);
}

IOX_TEST(pg_conninfo, uris)
{
    clear_env();
    struct iox_pg_conninfo ci;
    char err[512] = "";
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "postgresql://u%40x:p%3Aw@127.0.0.1:6001,[::1]:6002,localhost/my%20db"
                                               "?target_session_attrs=read-write&application_name=a%26b&connect_timeout=2",
                                               err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.user, "u@x");
    CU_ASSERT_STRING_EQUAL(ci.password, "p:w");
    CU_ASSERT_STRING_EQUAL(ci.dbname, "my db");
    CU_ASSERT_EQUAL(ci.nhosts, 3);
    CU_ASSERT_STRING_EQUAL(ci.hosts[0].host, "127.0.0.1");
    CU_ASSERT_EQUAL(ci.hosts[0].port, 6001);
    CU_ASSERT_STRING_EQUAL(ci.hosts[1].host, "::1");
    CU_ASSERT_EQUAL(ci.hosts[1].port, 6002);
    CU_ASSERT_STRING_EQUAL(ci.hosts[2].host, "localhost");
    CU_ASSERT_EQUAL(ci.hosts[2].port, 5432);
    CU_ASSERT_EQUAL(ci.target, IOX_PG_TARGET_READ_WRITE);
    CU_ASSERT_STRING_EQUAL(ci.application_name, "a&b");
    CU_ASSERT_EQUAL(ci.connect_timeout_ms, 2000);
    /* postgres://, a socket directory percent-encoded, no port */
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "postgres://%2Ftmp%2Fpg,127.0.0.1:7/?ssl=true", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.nhosts, 2);
    CU_ASSERT_STRING_EQUAL(ci.hosts[0].host, "/tmp/pg");
    CU_ASSERT_EQUAL(ci.hosts[0].port, 5432);
    CU_ASSERT_EQUAL(ci.hosts[1].port, 7);
    CU_ASSERT_EQUAL(ci.sslmode, IOX_PG_SSL_REQUIRE);        /* ssl=true, as libpq */
    /* nothing but the scheme: the defaults */
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "postgresql://", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ci.host, "/var/run/postgresql");
    CU_ASSERT_EQUAL(ci.nhosts, 1);
    /* errors: one line each */
    static const struct { const char *uri, *why; } bad[] = {
        {"postgresql://h/db?nosuch=1", "invalid URI query parameter: \"nosuch\""},
        {"postgresql://h/db?port", "missing \"=\" in the query parameter \"port\""},
        {"postgresql://[::1/db", "missing \"]\""},
        {"postgresql://127.0.0.1/d%zz", "invalid percent-encoded token"},
        {"postgresql://127.0.0.1/d%00", "forbidden value %00"},
        {"postgresql://127.0.0.1:99999/", "port=99999: invalid port number"},
        {"postgresql://127.0.0.1/?target_session_attrs=master", "target_session_attrs=master is not a valid"},
        {"postgresql://[::1]x/", "unexpected character \"x\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int rc = iox_pg_conninfo_load(&ci, bad[i].uri, err, sizeof err);
        int ok = rc == -EINVAL && strstr(err, bad[i].why) && !strchr(err, '\n');
        if (!ok) fprintf(stderr, "\n  %s: rc %d, err \"%s\"", bad[i].uri, rc, err);
        CU_ASSERT(ok);
    }
}

IOX_TEST(pg_conninfo, target_session_attrs_and_load_balance)
{
    clear_env();
    struct iox_pg_conninfo ci;
    char err[512] = "";
    static const char *const words[] = {"any", "read-write", "read-only", "primary", "standby", "prefer-standby"};
    for (unsigned i = 0; i < 6; i++) {
        char s[96];
        snprintf(s, sizeof s, "target_session_attrs=%s", words[i]);
        CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, s, err, sizeof err), 0);
        CU_ASSERT_EQUAL(ci.target, i);
        CU_ASSERT_STRING_EQUAL(iox_pg_target_name(ci.target), words[i]);
        setenv("PGTARGETSESSIONATTRS", words[i], 1);
        CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
        CU_ASSERT_EQUAL(ci.target, i);
        clear_env();
    }
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.target, IOX_PG_TARGET_ANY);
    CU_ASSERT_EQUAL(ci.load_balance, 0);
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "load_balance_hosts=random", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.load_balance, 1);
    setenv("PGLOADBALANCEHOSTS", "random", 1);
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, "load_balance_hosts=disable", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.load_balance, 0);      /* the string wins */
    CU_ASSERT_EQUAL_FATAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ci.load_balance, 1);
    clear_env();
}

IOX_SUITE(pg_conninfo, save_env, restore_env);
