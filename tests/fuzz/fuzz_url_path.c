/* fuzz_url_path.c — libFuzzer target for the URL path normalizer that guards
 * file mode's root.
 *
 * The input is a request path. Invariants on success: the result starts with
 * '/', holds no NUL, control byte or backslash, no empty, "." or ".."
 * segment (so it can never climb out of the root when joined to it), fits
 * the output, and is a fixed point (normalizing it again — after escaping
 * '%' — gives the same bytes). On error the code is one of the named ones
 * and maps to 400 or 414. The input is an exact-size malloc'ed copy so ASan
 * sees any over-read. */
#include "fuzz_common.h"
#include "url_path.h"

static void check_clean(const char *p, int n)
{
    FUZZ_CHECK(n >= 1 && p[0] == '/', "result must start with '/'");
    FUZZ_CHECK(p[n] == 0, "result must be NUL-terminated");
    int seg = 1;
    for (int i = 1; i <= n; i++) {
        if (i == n || p[i] == '/') {
            int len = i - seg;
            FUZZ_CHECK(!(len == 0 && i < n), "empty segment at %d", i);
            FUZZ_CHECK(!(len == 1 && p[seg] == '.'), "'.' segment at %d", seg);
            FUZZ_CHECK(!(len == 2 && p[seg] == '.' && p[seg + 1] == '.'), "'..' segment at %d", seg);
            seg = i + 1;
        } else {
            unsigned char c = (unsigned char)p[i];
            FUZZ_CHECK(c >= 0x20 && c != 0x7f && c != '\\', "byte 0x%02x in the result", c);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (!in) return 0;
    memcpy(in, data, size);
    size_t cap = 1 + (size_t)(size ? data[0] : 0) * 4;   /* small caps too */
    char *out = malloc(cap);
    int n = iox_url_path_normalize(in, size, out, cap);
    if (n < 0) {
        int st = iox_url_error_status(n);
        FUZZ_CHECK(st == 400 || st == 414, "error %d maps to %d", n, st);
        FUZZ_CHECK(iox_url_result_name(n) != NULL, "unnamed error %d", n);
    } else {
        FUZZ_CHECK((size_t)n < cap, "result of %d bytes overflows cap %zu", n, cap);
        check_clean(out, n);
        /* Fixed point: escape '%' so the second pass sees the same bytes. */
        size_t elen = 0;
        char *esc = malloc((size_t)n * 3 + 1);
        for (int i = 0; i < n; i++) {
            if (out[i] == '%') { memcpy(esc + elen, "%25", 3); elen += 3; }
            else esc[elen++] = out[i];
        }
        char *again = malloc((size_t)n + 2);
        int m = iox_url_path_normalize(esc, elen, again, (size_t)n + 2);
        FUZZ_CHECK(m == n && !memcmp(again, out, (size_t)n), "not a fixed point: %d vs %d", m, n);
        free(esc);
        free(again);
    }
    free(out);
    free(in);
    return 0;
}
