/* pg_cluster.c — throwaway PostgreSQL cluster for tests (see pg_cluster.h). */
#include "pg_cluster.h"
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PGBIN "/usr/lib/postgresql/15/bin"

/* Run a shell command; as root, as the postgres user. Output to dir/cmd.log;
 * on failure the log is printed. */
static int run(struct iox_pg_cluster *c, const char *fmt, ...)
{
    char cmd[2048], full[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (geteuid() == 0)
        snprintf(full, sizeof full, "cd %s && runuser -u postgres -- sh -c '%s' >%s/cmd.log 2>&1",
                 c->dir, cmd, c->dir);
    else
        snprintf(full, sizeof full, "cd %s && sh -c '%s' >%s/cmd.log 2>&1", c->dir, cmd, c->dir);
    int st = system(full);
    if (st != 0) {
        fprintf(stderr, "pg_cluster: failed (%d): %s\n", st, cmd);
        char cat[600];
        snprintf(cat, sizeof cat, "cat %s/cmd.log >&2; tail -20 %s/server.log >&2 2>/dev/null", c->dir, c->dir);
        if (system(cat)) {}
        return -EIO;
    }
    return 0;
}

static int free_port(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &l)) {
        int e = -errno; close(fd); return e;
    }
    *port = ntohs(a.sin_port);
    close(fd);
    return 0;
}

/* Remove /tmp/iox-pg-* left by test processes that no longer exist. */
static void sweep_leftovers(void)
{
    DIR *d = opendir("/tmp");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "iox-pg-", 7) != 0) continue;
        char path[600], cmd[2000];
        snprintf(path, sizeof path, "/tmp/%s/owner.pid", e->d_name);
        FILE *f = fopen(path, "r");
        long pid = 0;
        if (f) { if (fscanf(f, "%ld", &pid) != 1) pid = 0; fclose(f); }
        if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) continue;  /* still in use */
        snprintf(cmd, sizeof cmd,
                 "if [ -f /tmp/%s/data/postmaster.pid ]; then %s %s/pg_ctl -D /tmp/%s/data -m immediate stop; fi"
                 " >/dev/null 2>&1; rm -rf /tmp/%s",
                 e->d_name, geteuid() == 0 ? "runuser -u postgres --" : "", PGBIN, e->d_name, e->d_name);
        if (system(cmd)) {}
    }
    closedir(d);
}

static int write_file(const char *path, const char *mode, const char *text)
{
    FILE *f = fopen(path, mode);
    if (!f) return -errno;
    fputs(text, f);
    return fclose(f) ? -EIO : 0;
}

/* A fresh temp dir for c with owner.pid (sweep_leftovers reaps dirs whose
 * owner is gone); postgres must own it (socket, data) and everyone
 * traverse it. */
static int make_dir(struct iox_pg_cluster *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->dir, "/tmp/iox-pg-XXXXXX");
    if (!mkdtemp(c->dir)) { int e = -errno; c->dir[0] = 0; return e; }
    snprintf(c->data, sizeof c->data, "%s/data", c->dir);
    char path[256], text[32];
    snprintf(path, sizeof path, "%s/owner.pid", c->dir);
    snprintf(text, sizeof text, "%ld\n", (long)getpid());
    write_file(path, "w", text);
    chmod(c->dir, 0755);
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw) { fprintf(stderr, "pg_cluster: no postgres OS user\n"); return -ENOENT; }
        if (chown(c->dir, pw->pw_uid, pw->pw_gid)) return -errno;
    }
    return 0;
}

int iox_pg_cluster_start(struct iox_pg_cluster *c)
{
    memset(c, 0, sizeof *c);
    if (access(PGBIN "/initdb", X_OK) != 0) {
        fprintf(stderr, "pg_cluster: %s/initdb not found (apt-get install postgresql)\n", PGBIN);
        return -ENOENT;
    }
    sweep_leftovers();
    int r = make_dir(c);
    if (r) goto fail;
    char path[256], text[2048];
    if ((r = run(c, PGBIN "/initdb -D %s -U postgres -A trust -E UTF8 --locale=C --no-sync", c->data)))
        goto fail;
    if ((r = free_port(&c->port))) goto fail;
    snprintf(path, sizeof path, "%s/postgresql.conf", c->data);
    snprintf(text, sizeof text,
             "\n# iox test cluster\nlisten_addresses = '127.0.0.1'\nport = %u\n"
             "unix_socket_directories = '%s'\nfsync = off\nsynchronous_commit = off\n"
             "full_page_writes = off\nmax_connections = 200\nshared_buffers = 16MB\n",
             c->port, c->dir);
    if ((r = write_file(path, "a", text))) goto fail;
    snprintf(path, sizeof path, "%s/pg_hba.conf", c->data);
    if ((r = write_file(path, "w",
                        "local all all trust\n"
                        "local replication all trust\n"     /* iox_pg_cluster_standby's pg_basebackup */
                        "host all scram_user 127.0.0.1/32 scram-sha-256\n"
                        "host all md5_user 127.0.0.1/32 md5\n"
                        "host all clear_user 127.0.0.1/32 password\n"
                        "host all all 127.0.0.1/32 scram-sha-256\n")))
        goto fail;
    if ((r = run(c, PGBIN "/pg_ctl -D %s -l %s/server.log -w -t 60 start", c->data, c->dir))) goto fail;
    c->running = 1;
    r = iox_pg_cluster_psql(c,
        "SET password_encryption = 'scram-sha-256';"
        "CREATE ROLE scram_user LOGIN PASSWORD '" IOX_PG_SCRAM_PW "';"
        "CREATE ROLE clear_user LOGIN PASSWORD '" IOX_PG_CLEAR_PW "';"
        "SET password_encryption = 'md5';"
        "CREATE ROLE md5_user LOGIN PASSWORD '" IOX_PG_MD5_PW "';", NULL, 0);
    if (!r) r = iox_pg_cluster_psql(c, "CREATE DATABASE " IOX_PG_DB " OWNER scram_user", NULL, 0);
    if (r) goto fail;
    return 0;
fail:
    iox_pg_cluster_stop(c);
    return r;
}

int iox_pg_cluster_standby(struct iox_pg_cluster *primary, struct iox_pg_cluster *sb)
{
    int r = make_dir(sb);
    if (r) goto fail;
    /* -R: standby.signal and primary_conninfo (the primary's socket);
     * -X stream: the WAL of the copy comes along. */
    if ((r = run(sb, PGBIN "/pg_basebackup -h %s -p %u -U postgres -D %s -R -X stream -c fast --no-sync",
                 primary->dir, primary->port, sb->data)))
        goto fail;
    if ((r = free_port(&sb->port))) goto fail;
    char path[256], text[512];
    snprintf(path, sizeof path, "%s/postgresql.conf", sb->data);
    snprintf(text, sizeof text, "\n# iox test standby\nport = %u\nunix_socket_directories = '%s'\nhot_standby = on\n",
             sb->port, sb->dir);
    if ((r = write_file(path, "a", text))) goto fail;
    if ((r = run(sb, PGBIN "/pg_ctl -D %s -l %s/server.log -w -t 60 start", sb->data, sb->dir))) goto fail;
    sb->running = 1;
    return 0;
fail:
    iox_pg_cluster_stop(sb);
    return r;
}

int iox_pg_cluster_kill(struct iox_pg_cluster *c)
{
    if (!c->running) return 0;
    c->running = 0;
    return run(c, PGBIN "/pg_ctl -D %s -m immediate -w stop", c->data);
}

int iox_pg_cluster_promote(struct iox_pg_cluster *c)
{
    return run(c, PGBIN "/pg_ctl -D %s -w -t 60 promote", c->data);
}

int iox_pg_cluster_stop(struct iox_pg_cluster *c)
{
    if (!c->dir[0]) return 0;
    int r = 0;
    if (c->running) {
        r = run(c, PGBIN "/pg_ctl -D %s -m immediate -w stop", c->data);
        c->running = 0;
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", c->dir);
    if (system(cmd)) r = -EIO;
    c->dir[0] = 0;
    return r;
}

int iox_pg_cluster_restart(struct iox_pg_cluster *c)
{
    return run(c, PGBIN "/pg_ctl -D %s -l %s/server.log -m fast -w -t 60 restart", c->data, c->dir);
}

int iox_pg_cluster_psql(struct iox_pg_cluster *c, const char *sql, char *out, size_t outlen)
{
    char sqlpath[256], cmd[1024];
    snprintf(sqlpath, sizeof sqlpath, "%s/q.sql", c->dir);
    int r = write_file(sqlpath, "w", sql);
    if (r) return r;
    /* psql -f runs each statement on its own (CREATE DATABASE cannot run in
     * the implicit transaction of a multi-statement -c). Root may use the
     * socket directly: local connections are trusted. */
    snprintf(cmd, sizeof cmd,
             "env -u PGPASSWORD -u PGSERVICE -u PGOPTIONS %s/psql -X -q -At -v ON_ERROR_STOP=1 -h %s -p %u -U postgres -d postgres -f %s 2>&1",
             PGBIN, c->dir, c->port, sqlpath);
    FILE *p = popen(cmd, "r");
    if (!p) return -errno;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    while (n && buf[n - 1] == '\n') buf[--n] = 0;
    if (out && outlen) snprintf(out, outlen, "%s", buf);
    if (st != 0) {
        fprintf(stderr, "pg_cluster: psql failed: %s\n%s\n", sql, buf);
        return -EIO;
    }
    return 0;
}
