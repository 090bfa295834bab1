/* test_layers.c — suite `layers`: dependencies point down only
 * (docs/architecture.md, "Layers"; ../shared/ARCHITECTURE.md §2).
 *
 * The core (runtime/core), the seam (runtime/seam) and their public
 * headers (include/ioxide/reactor.h, seam.h, seam_sim.h, ud.h, log.h,
 * logfile.h) must
 * neither include nor name anything of a protocol: no header but their own
 * layer's and the system's, and — comments and string literals stripped —
 * no identifier that mentions http, pg, file_stream, iox_conn or a
 * generated machine. A protocol that needs something of the core gets it
 * through the registry, never by the core knowing it.
 *
 * The stream layer (runtime/stream, include/ioxide/stream.h,
 * stream_client.h, stream_core.h and stream_dial.h, its generated machines) is held to the same rule: it
 * may include its own headers and name its own machines, nothing of http,
 * pg or file. */
#include "iox_test.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Headers the lower layers may include (besides <system> ones): the core's
 * and the seam's (seam_slices.h: the seam's own slice books), and — for runtime/stream only (checked apart below) — the
 * stream layer's own, its generated machines among them. */
static const char *const allowed_includes[] = {
    "ioxide/reactor.h", "ioxide/seam.h", "ioxide/seam_sim.h", "ioxide/ud.h", "ioxide/log.h", "ioxide/logfile.h",
    "core_internal.h", "seam_slices.h",
};
static const char *const stream_includes[] = {
    "ioxide/stream.h", "ioxide/stream_client.h", "ioxide/stream_core.h", "ioxide/stream_dial.h", "stream_internal.h", "client_internal.h",
    "stream_conn_machine.h", "stream_client_machine.h",
};
/* The stream layer names its own machines (stream_conn_machine.h, ...). */
static const char *const stream_words[] = {"stream_conn_machine", "stream_client_machine"};
static int stream_layer;   /* check_file is looking at runtime/stream or its headers */

/* Words that belong to a protocol layer (matched case-insensitively inside
 * identifiers). */
static const char *const protocol_words[] = {"http", "pg_", "_pg", "file_stream", "iox_conn", "_machine", "resp_"};

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[n] = 0; *len = (size_t)n; }
    return b;
}

/* Blank out comments and string/char literals, keeping newlines (for line
 * numbers) and #include lines' targets (checked separately first). */
static void strip(char *s)
{
    for (char *p = s; *p; p++) {
        if (p[0] == '/' && p[1] == '*') {
            for (; *p && !(p[0] == '*' && p[1] == '/'); p++) if (*p != '\n') *p = ' ';
            if (*p) { p[0] = p[1] = ' '; p++; }
        } else if (p[0] == '/' && p[1] == '/') {
            for (; *p && *p != '\n'; p++) *p = ' ';
            if (!*p) break;
        } else if (*p == '"' || *p == '\'') {
            char q = *p;
            for (p++; *p && *p != q && *p != '\n'; p++) {
                if (*p == '\\' && p[1]) *p++ = ' ';
                *p = ' ';
            }
            if (!*p) break;
        }
    }
}

static unsigned line_of(const char *base, const char *at)
{
    unsigned n = 1;
    for (const char *p = base; p < at; p++) n += *p == '\n';
    return n;
}

/* Report every violation in one file; returns how many. */
static unsigned check_file(const char *path)
{
    size_t len;
    char *s = slurp(path, &len);
    if (!s) { fprintf(stderr, "\n  %s: cannot read\n", path); return 1; }
    unsigned bad = 0;
    /* Includes, on the raw text. */
    for (char *p = s; (p = strstr(p, "#include")) != NULL; p++) {
        char *q = p + 8;
        while (*q == ' ' || *q == '\t') q++;
        if (*q == '<' && strncmp(q + 1, "ioxide/", 7)) continue;   /* a system header */
        char open = *q, close = open == '<' ? '>' : '"';
        if (open != '<' && open != '"') continue;
        char *e = strchr(q + 1, close);
        if (!e) continue;
        size_t n = (size_t)(e - q - 1);
        int ok = 0;
        for (size_t i = 0; i < sizeof allowed_includes / sizeof *allowed_includes; i++)
            if (strlen(allowed_includes[i]) == n && !strncmp(q + 1, allowed_includes[i], n)) ok = 1;
        for (size_t i = 0; stream_layer && i < sizeof stream_includes / sizeof *stream_includes; i++)
            if (strlen(stream_includes[i]) == n && !strncmp(q + 1, stream_includes[i], n)) ok = 1;
        if (!ok) {
            fprintf(stderr, "\n  %s:%u: includes %.*s (not of this layer)", path, line_of(s, p), (int)n, q + 1);
            bad++;
        }
    }
    /* Identifiers, with comments and literals gone. */
    strip(s);
    for (char *p = s; *p;) {
        if (!(isalpha((unsigned char)*p) || *p == '_')) { p++; continue; }
        char *w = p;
        while (isalnum((unsigned char)*p) || *p == '_') p++;
        size_t n = (size_t)(p - w);
        char id[128];
        if (n >= sizeof id) continue;
        for (size_t i = 0; i < n; i++) id[i] = (char)tolower((unsigned char)w[i]);
        id[n] = 0;
        int own = 0;
        for (size_t i = 0; stream_layer && i < sizeof stream_words / sizeof *stream_words; i++)
            if (strstr(id, stream_words[i])) own = 1;
        for (size_t i = 0; !own && i < sizeof protocol_words / sizeof *protocol_words; i++) {
            if (strstr(id, protocol_words[i])) {
                fprintf(stderr, "\n  %s:%u: names %.*s (a protocol's)", path, line_of(s, w), (int)n, w);
                bad++;
                break;
            }
        }
    }
    free(s);
    return bad;
}

static unsigned check_dir(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", iox_test_src_dir(), dir);
    DIR *d = opendir(path);
    if (!d) { fprintf(stderr, "\n  %s: cannot open\n", path); return 1; }
    unsigned bad = 0, files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 3 || (strcmp(e->d_name + l - 2, ".c") && strcmp(e->d_name + l - 2, ".h"))) continue;
        char f[4096 + 256];
        snprintf(f, sizeof f, "%s/%s", path, e->d_name);
        bad += check_file(f);
        files++;
    }
    closedir(d);
    CU_ASSERT(files > 0);
    return bad;
}

IOX_TEST(layers, core_and_seam_know_no_protocol)
{
    unsigned bad = check_dir("runtime/core") + check_dir("runtime/seam");
    static const char *const pub[] = {"reactor.h", "seam.h", "seam_sim.h", "ud.h", "log.h", "logfile.h"};
    for (size_t i = 0; i < sizeof pub / sizeof *pub; i++) {
        char f[4096];
        snprintf(f, sizeof f, "%s/include/ioxide/%s", iox_test_src_dir(), pub[i]);
        bad += check_file(f);
    }
    CU_ASSERT_EQUAL(bad, 0);
    if (bad) fprintf(stderr, "\n  %u layering violation(s): the core and the seam must not know any protocol\n", bad);
}

/* The stream layer (runtime/stream: the stream connection and the client
 * kit) sits on the core like a protocol, but knows none: the same check,
 * with its own headers and machines allowed. */
IOX_TEST(layers, stream_knows_no_protocol)
{
    stream_layer = 1;
    unsigned bad = check_dir("runtime/stream");
    static const char *const pub[] = {"stream.h", "stream_client.h", "stream_core.h", "stream_dial.h"};
    for (size_t i = 0; i < sizeof pub / sizeof *pub; i++) {
        char f[4096];
        snprintf(f, sizeof f, "%s/include/ioxide/%s", iox_test_src_dir(), pub[i]);
        bad += check_file(f);
    }
    /* The generated machines of the layer too (their banner and the spec
     * path name nothing of a protocol). */
    static const char *const gen[] = {"stream_conn_machine.h", "stream_conn_machine.c",
                                      "stream_client_machine.h", "stream_client_machine.c"};
    for (size_t i = 0; i < sizeof gen / sizeof *gen; i++) {
        char f[4096];
        snprintf(f, sizeof f, "%s/generated/%s", iox_test_src_dir(), gen[i]);
        bad += check_file(f);
    }
    stream_layer = 0;
    CU_ASSERT_EQUAL(bad, 0);
    if (bad) fprintf(stderr, "\n  %u layering violation(s): the stream layer must not know any protocol\n", bad);
}

/* A protocol's name in the stream layer is caught, its own machine is not. */
IOX_TEST(layers, stream_checker_catches_a_violation)
{
    char path[] = "/tmp/iox-layers-XXXXXX.c";
    int fd = mkstemps(path, 2);
    CU_ASSERT_FATAL(fd >= 0);
    static const char bad[] =
        "#include \"stream_conn_machine.h\"\n"     /* allowed: its own machine */
        "#include \"http_conn_machine.h\"\n"       /* 1 */
        "int f(void) { return STREAM_CONN_S_CLOSED + iox_http_x; }\n";   /* 2: iox_http_x */
    CU_ASSERT_FATAL(write(fd, bad, sizeof bad - 1) == (ssize_t)(sizeof bad - 1));
    close(fd);
    fprintf(stderr, "\n  (expected violations follow)");
    stream_layer = 1;
    CU_ASSERT_EQUAL(check_file(path), 2);
    stream_layer = 0;
    fprintf(stderr, "\n");
    unlink(path);
}

/* The checker itself catches what it is for (else the test above could
 * never fail). */
IOX_TEST(layers, checker_catches_a_violation)
{
    char path[] = "/tmp/iox-layers-XXXXXX.c";
    int fd = mkstemps(path, 2);
    CU_ASSERT_FATAL(fd >= 0);
    static const char bad[] =
        "#include <stdio.h>\n"
        "#include <ioxide/reactor.h>\n"
        "#include \"conn_internal.h\"\n"            /* 1: a protocol's header */
        "/* http in a comment is fine */\n"
        "static const char *s = \"HTTP in a string is fine\";\n"
        "void f(struct iox_conn *c);\n"             /* 2: names iox_conn */
        "int g(void) { return HTTP_CONN_S_CLOSED; }\n"; /* 3 */
    CU_ASSERT_FATAL(write(fd, bad, sizeof bad - 1) == (ssize_t)(sizeof bad - 1));
    close(fd);
    fprintf(stderr, "\n  (expected violations follow)");
    CU_ASSERT_EQUAL(check_file(path), 3);
    fprintf(stderr, "\n");
    unlink(path);
}

IOX_SUITE(layers, NULL, NULL);
