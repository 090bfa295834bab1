/* fuzz_common.h — small helpers shared by the libFuzzer targets.
 *
 * Every target follows the same contract: a broken invariant prints what
 * broke (FUZZ_CHECK names the expression and the line) and calls abort(), so
 * libFuzzer writes the input as a crash artifact. Nothing here allocates
 * except the growable log, which every target frees before returning (the
 * fuzzer runs with LeakSanitizer on). */
#ifndef IOX_FUZZ_COMMON_H
#define IOX_FUZZ_COMMON_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "\nFUZZ INVARIANT %s:%d: %s\n  ", __FILE__,       \
                    __LINE__, #cond);                                          \
            fprintf(stderr, "" __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                             \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* An event log: what one run observed, compared byte for byte between runs. */
struct fz_log { char *s; size_t n, cap; };

static inline void fz_put(struct fz_log *b, const void *d, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) abort();
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, d, n);
    b->n += n;
    b->s[b->n] = 0;
}

__attribute__((format(printf, 2, 3)))
static inline void fz_printf(struct fz_log *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    fz_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Bytes as one printable word (for logs a human may have to diff). */
static inline void fz_escape(struct fz_log *b, const char *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c > 0x20 && c < 0x7f && c != '\\') fz_put(b, &c, 1);
        else fz_printf(b, "\\x%02x", c);
    }
}

static inline void fz_log_free(struct fz_log *b) { free(b->s); b->s = NULL; b->n = b->cap = 0; }

/* Exact-size heap copy: the byte after the last one is ASan's redzone, so a
 * one-byte over-read is reported (picohttpparser's guard page, in heap form).
 * n == 0 still gives a distinct pointer with no readable byte. */
static inline char *fz_dup(const void *src, size_t n)
{
    char *p = malloc(n ? n : 1);
    if (!p) abort();
    if (n) memcpy(p, src, n);
    return p;
}

/* The view [p, p+n) lies inside [base, base+len). */
static inline int fz_inside(const void *p, size_t n, const void *base, size_t len)
{
    const char *a = p, *b = base;
    return n == 0 || (a && a >= b && n <= len && (size_t)(a - b) <= len - n);
}

/* Split points derived from the input's first bytes: up to `max` sorted,
 * distinct positions in (0, n). Returns how many. */
static inline size_t fz_cuts(const uint8_t *seed, size_t nseed, size_t n, size_t *cuts, size_t max)
{
    size_t k = 0;
    if (n < 2) return 0;
    for (size_t i = 0; i + 1 < nseed && k < max; i += 2) {
        size_t c = 1 + (((size_t)seed[i] << 8 | seed[i + 1]) % (n - 1));
        size_t j = k;
        while (j > 0 && cuts[j - 1] > c) { cuts[j] = cuts[j - 1]; j--; }
        if (j > 0 && cuts[j - 1] == c) {   /* duplicate: undo the shift */
            for (; j < k; j++) cuts[j] = cuts[j + 1];
            continue;
        }
        cuts[j] = c;
        k++;
    }
    return k;
}

#endif
