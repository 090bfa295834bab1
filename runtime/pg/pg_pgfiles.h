/* pg_pgfiles.h — libpq's files: the password file (~/.pgpass, PGPASSFILE,
 * passfile=) and the connection service file (~/.pg_service.conf,
 * PGSERVICEFILE, PGSYSCONFDIR/pg_service.conf). Read once, when the
 * conninfo is loaded (pool open, startup checks) — never on the ring's hot
 * path. Formats and lookups as libpq 16 (fe-connect.c) does them; see
 * docs/pg-client.md "Password file" and "Service file". Internal to
 * runtime/pg. */
#ifndef IOX_PG_PGFILES_H
#define IOX_PG_PGFILES_H
#include <stddef.h>

/* libpq's sysconfdir as Debian builds it: where pg_service.conf is looked
 * for without PGSYSCONFDIR. */
#define IOX_PG_SYSCONFDIR "/etc/postgresql-common"

/* The home directory as libpq finds it: $HOME when set and not empty, else
 * the passwd entry of the effective uid. Returns 0, -ENOENT, or
 * -ENAMETOOLONG when it does not fit out. */
int iox_pg_home_dir(char *out, size_t cap);

/* Look up a password in the password file `path`, as libpq's
 * passwordFromFile: lines host:port:dbname:user:password, '#' starts a
 * comment line, each of the first four fields is "*" (any) or matches
 * exactly, "\:" and "\\" escape ':' and '\'; the first matching line wins.
 * A missing file is no password, silently. A file that is not a plain file
 * or that the group or others may access (mode & 077) is ignored with one
 * warning line in warn (libpq's wording), else warn is "". Returns 1 with
 * the password in out, 0 when no line matched (or the file is ignored),
 * -ENAMETOOLONG when the matching password does not fit out. */
int iox_pg_passfile_lookup(const char *path, const char *host, const char *port, const char *dbname,
                           const char *user, char *out, size_t cap, char *warn, size_t warnlen);

/* Called for each key=value of the service's section, in file order. It
 * returns 0, or a negative errno with err set (which ends the read). */
typedef int (*iox_pg_service_set_fn)(void *ctx, const char *key, const char *val, char *err, size_t errlen);

/* Read section [service] of the service file at path, as libpq's
 * parseServiceFile: lines are trimmed of surrounding white space, empty and
 * '#' lines are skipped, "[name]" starts a section, "key=value" in the
 * wanted section calls set (key and value as they are around the first
 * '=': "host = x" has key "host "). *found is set when the section was
 * seen. Returns 0 (also when the file does not exist: *found stays 0), or
 * -EINVAL with err naming the file and line (a line of 255 bytes or more,
 * a line without '=', a nested "service" key, or set's error), or -errno
 * when the file exists but cannot be read. */
int iox_pg_service_read(const char *path, const char *service, int *found, iox_pg_service_set_fn set,
                        void *ctx, char *err, size_t errlen);

#endif
