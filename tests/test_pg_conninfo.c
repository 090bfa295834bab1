/* test_pg_conninfo.c — conninfo strings, libpq environment and defaults,
 * socket addresses. */
#include "iox_test.h"
#include "pg_conninfo.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static const char *vars[] = {"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE",
                             "PGAPPNAME", "PGCONNECT_TIMEOUT"};
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
    setenv("PGPORT", "notaport", 1);
    CU_ASSERT_EQUAL(iox_pg_conninfo_load(&ci, NULL, err, sizeof err), -EINVAL);
    CU_ASSERT(strstr(err, "PGPORT") != NULL);
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

IOX_SUITE(pg_conninfo, save_env, restore_env);
