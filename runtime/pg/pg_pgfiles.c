/* pg_pgfiles.c — libpq's password and service files (see pg_pgfiles.h).
 * Runs when the conninfo is loaded, off the hot path: stdio is fine here. */
#include "pg_pgfiles.h"
#include "pg_conninfo.h"
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


int iox_pg_home_dir(char *out, size_t cap)
{
    const char *h = getenv("HOME");
    char buf[4096];
    if (!h || !*h) {
        struct passwd pw, *res = NULL;
        if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &res) != 0 || !res || !res->pw_dir) return -ENOENT;
        h = res->pw_dir;
    }
    size_t n = strlen(h);
    if (n >= cap) return -ENAMETOOLONG;
    memcpy(out, h, n + 1);
    return 0;
}

/* libpq's pwdfMatchesString: the field at buf equals token ("*" matches
 * anything; a backslash makes the next character literal). Returns the
 * start of the next field, or NULL. */
static const char *field_matches(const char *buf, const char *token)
{
    if (buf[0] == '*' && buf[1] == ':') return buf + 2;
    const char *t = token;
    int bslash = 0;
    while (*buf) {
        if (*buf == '\\' && !bslash) { buf++; bslash = 1; }
        if (*buf == ':' && !*t && !bslash) return buf + 1;
        bslash = 0;
        if (!*t || *buf != *t) return NULL;
        buf++;
        t++;
    }
    return NULL;
}

int iox_pg_passfile_lookup(const char *path, const char *host, const char *port, const char *dbname,
                           const char *user, char *out, size_t cap, char *warn, size_t warnlen)
{
    struct stat st;
    if (warn && warnlen) warn[0] = 0;
    if (!path || !*path || stat(path, &st) != 0) return 0;     /* libpq: no file, no password, no word */
    if (!S_ISREG(st.st_mode)) {
        pg_errf(0, warn, warnlen, "WARNING: password file \"%s\" is not a plain file", path);
        return 0;
    }
    /* libpq's permission check: a password file others may read is not used. */
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        pg_errf(0, warn, warnlen, "WARNING: password file \"%s\" has group or world access; permissions should be "
             "u=rw (0600) or less", path);
        return 0;
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        pg_errf(0, warn, warnlen, "WARNING: password file \"%s\" cannot be read: %s", path, strerror(errno));
        return 0;
    }
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (line[0] == '#' || len == 0) continue;
        const char *t = line;
        if (!(t = field_matches(t, host)) || !(t = field_matches(t, port)) || !(t = field_matches(t, dbname)) ||
            !(t = field_matches(t, user)))
            continue;
        /* The password runs to the next unescaped ':' or the end. */
        size_t n = 0;
        for (; *t && *t != ':'; t++) {
            if (*t == '\\' && t[1]) t++;
            if (n + 1 >= cap) { rc = -ENAMETOOLONG; break; }
            out[n++] = *t;
        }
        if (rc) break;
        out[n] = 0;
        rc = 1;
        break;
    }
    /* The file held a password: leave none of it in freed memory. */
    if (line) explicit_bzero(line, lcap);
    free(line);
    fclose(f);
    return rc;
}

int iox_pg_service_read(const char *path, const char *service, int *found, iox_pg_service_set_fn set,
                        void *ctx, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    FILE *f = fopen(path, "re");
    if (!f) return pg_errf(-errno, err, errlen, "service file \"%s\" cannot be read: %s", path, strerror(errno));
    char buf[256];      /* libpq's MAXBUFSIZE: longer lines are an error there too */
    int linenr = 0, rc = 0, in = 0;
    size_t slen = strlen(service);
    while (fgets(buf, sizeof buf, f)) {
        linenr++;
        if (strlen(buf) >= sizeof buf - 1) {
            rc = pg_errf(-EINVAL, err, errlen, "service file \"%s\", line %d: line too long (at most %zu bytes)",
                      path, linenr, sizeof buf - 2);
            break;
        }
        size_t len = strlen(buf);
        while (len > 0 && isspace((unsigned char)buf[len - 1])) buf[--len] = 0;
        char *line = buf;
        while (*line && isspace((unsigned char)*line)) line++;
        if (!*line || *line == '#') continue;
        if (*line == '[') {
            if (in) break;          /* the wanted section ended */
            in = strncmp(line + 1, service, slen) == 0 && line[slen + 1] == ']';
            if (in) *found = 1;
            continue;
        }
        if (!in) continue;
        char *val = strchr(line, '=');
        if (!val) {
            rc = pg_errf(-EINVAL, err, errlen, "service file \"%s\", line %d: syntax error (expected keyword=value)",
                      path, linenr);
            break;
        }
        *val++ = 0;
        if (strcmp(line, "service") == 0) {
            rc = pg_errf(-EINVAL, err, errlen, "service file \"%s\", line %d: nested service specifications are not "
                      "supported", path, linenr);
            break;
        }
        char why[256];
        if ((rc = set(ctx, line, val, why, sizeof why))) {
            pg_errf(rc, err, errlen, "service file \"%s\", line %d: %s", path, linenr, why);
            break;
        }
    }
    if (!rc && ferror(f)) rc = pg_errf(-EIO, err, errlen, "service file \"%s\": read error", path);
    fclose(f);
    return rc;
}
