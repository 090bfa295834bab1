/* pg_cluster.h — a throwaway PostgreSQL 15 cluster for tests (a helper, not
 * a suite).
 *
 * iox_pg_cluster_start() makes /tmp/iox-pg-XXXXXX, runs initdb as the
 * `postgres` OS user when the tests run as root (postgres refuses root),
 * picks a free TCP port on 127.0.0.1, writes postgresql.conf / pg_hba.conf,
 * starts the server with `pg_ctl -w start`, and creates:
 *   role scram_user / password IOX_PG_SCRAM_PW  (stored as SCRAM-SHA-256)
 *   role md5_user   / password IOX_PG_MD5_PW    (stored as MD5)
 *   role clear_user / password IOX_PG_CLEAR_PW  (hba method "password")
 *   database IOX_PG_DB
 * pg_hba: local all all trust; host <role> 127.0.0.1/32 <method> per role;
 * host all all 127.0.0.1/32 scram-sha-256. The Unix socket is in the temp
 * dir itself. Leftovers of earlier runs whose test process is gone are
 * stopped and removed first. All functions return 0 or a negative errno
 * and print the failing command's log to stderr.
 */
#ifndef IOX_PG_CLUSTER_H
#define IOX_PG_CLUSTER_H
#include <stddef.h>
#include <stdint.h>

#define IOX_PG_SCRAM_PW "scram-pw-1"
#define IOX_PG_MD5_PW   "md5-pw-1"
#define IOX_PG_CLEAR_PW "clear-pw-1"
#define IOX_PG_DB       "ioxdb"

struct iox_pg_cluster {
    char dir[128];        /* temp dir; also the Unix socket directory */
    char data[160];       /* dir/data */
    uint16_t port;
    int running;
};

int iox_pg_cluster_start(struct iox_pg_cluster *c);
/* pg_ctl stop -m immediate, then remove the temp dir. Safe to call twice. */
int iox_pg_cluster_stop(struct iox_pg_cluster *c);
/* pg_ctl -m fast -w restart (all sessions are cut). */
int iox_pg_cluster_restart(struct iox_pg_cluster *c);
/* A streaming standby of primary in a temp dir of its own: pg_basebackup
 * -R -X stream from the primary's socket (its pg_hba has "local replication
 * all trust"), its own free port and socket directory, hot_standby on,
 * started with pg_ctl -w (it accepts read-only sessions when this returns).
 * Stop it with iox_pg_cluster_stop. */
int iox_pg_cluster_standby(struct iox_pg_cluster *primary, struct iox_pg_cluster *standby);
/* pg_ctl stop -m immediate (a crash: sessions are cut, nothing is flushed),
 * keeping the temp dir (stop removes it later). */
int iox_pg_cluster_kill(struct iox_pg_cluster *c);
/* pg_ctl promote -w: a standby becomes a primary (read-write). */
int iox_pg_cluster_promote(struct iox_pg_cluster *c);
/* Run sql with psql over the Unix socket as postgres (-At, ON_ERROR_STOP);
 * its stdout (trimmed of the final newline) into out (may be NULL). */
int iox_pg_cluster_psql(struct iox_pg_cluster *c, const char *sql, char *out, size_t outlen);

#endif
