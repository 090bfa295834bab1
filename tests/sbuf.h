/* sbuf.h — helpers of the tests' data-driven corpora (tests/data/http/,
 * tests/data/responses/): a growing byte buffer (append, printf, escape
 * bytes as one word, decode the escapes of a markdown input block) and the
 * sorted list of a corpus directory's .md files. */
#ifndef IOX_TEST_SBUF_H
#define IOX_TEST_SBUF_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>

struct sbuf { char *s; size_t n, cap; };

static inline __attribute__((unused)) void sb_put(struct sbuf *b, const void *d, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) abort();
    }
    memcpy(b->s + b->n, d, n);
    b->n += n;
    b->s[b->n] = 0;
}
static inline __attribute__((unused)) void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
/* Bytes as one word: printable except space and backslash kept, rest escaped. */
static inline __attribute__((unused)) void sb_escape(struct sbuf *b, const char *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '\r') sb_put(b, "\\r", 2);
        else if (c == '\n') sb_put(b, "\\n", 2);
        else if (c == '\t') sb_put(b, "\\t", 2);
        else if (c == '\\') sb_put(b, "\\\\", 2);
        else if (c <= 0x20 || c >= 0x7f) sb_printf(b, "\\x%02x", c);
        else sb_put(b, &c, 1);
    }
}
/* Decode the escapes of the markdown input block. */
static inline __attribute__((unused)) void sb_unescape(struct sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            char e = s[++i];
            if (e == 'r') c = '\r';
            else if (e == 'n') c = '\n';
            else if (e == 't') c = '\t';
            else if (e == '0') c = 0;
            else if (e == '\\') c = '\\';
            else if (e == 'x' && i + 2 < n) {
                char h[3] = {s[i + 1], s[i + 2], 0};
                c = (char)strtol(h, NULL, 16);
                i += 2;
            } else c = e;
        }
        sb_put(b, &c, 1);
    }
}

static inline int corpus_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .md files of dir, sorted (strdup'ed: free each); at most max. -1
 * when dir cannot be opened. */
static inline __attribute__((unused)) int corpus_md_files(const char *dir, char **names, int max)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t l = strlen(e->d_name);
        if (l > 3 && !strcmp(e->d_name + l - 3, ".md")) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], corpus_cmp_str);
    return n;
}

#endif
