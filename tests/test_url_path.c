/* test_url_path.c — the request-path normalizer (runtime/http/url_path.c):
 * normal paths, dot-segments, and a traversal corpus that must never yield
 * a path above the root. */
#include "iox_test.h"
#include "url_path.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void up_expect(const char *in, const char *want)
{
    char out[256];
    int n = iox_url_path_normalize(in, strlen(in), out, sizeof out);
    if (n < 0 || strcmp(out, want) != 0)
        fprintf(stderr, "\n  %s → %s (%s), want %s\n", in, n < 0 ? "-" : out, iox_url_result_name(n), want);
    CU_ASSERT_TRUE(n >= 0);
    if (n >= 0) {
        CU_ASSERT_STRING_EQUAL(out, want);
        CU_ASSERT_EQUAL((size_t)n, strlen(want));
    }
}

static void up_reject(const char *in, size_t len, int want)
{
    char out[256];
    int n = iox_url_path_normalize(in, len, out, sizeof out);
    if (n != want)
        fprintf(stderr, "\n  %.*s → %d %s (%s), want %s\n", (int)len, in, n, n >= 0 ? out : "",
                iox_url_result_name(n), iox_url_result_name(want));
    CU_ASSERT_EQUAL(n, want);
}
#define UP_REJECT(s, e) up_reject(s, sizeof(s) - 1, e)

IOX_TEST(url_path, plain_paths)
{
    up_expect("/", "/");
    up_expect("/index.html", "/index.html");
    up_expect("/a/b/c.txt", "/a/b/c.txt");
    up_expect("/dir/", "/dir/");
    up_expect("/a%20b", "/a b");
    up_expect("/%41%62c", "/Abc");
    up_expect("/caf%C3%A9", "/caf\xc3\xa9");
    up_expect("/emoji%F0%9F%98%80", "/emoji\xf0\x9f\x98\x80");
    up_expect("/a;b=c:d@e!$&'()*+,", "/a;b=c:d@e!$&'()*+,");
}

IOX_TEST(url_path, dot_segments)
{
    up_expect("/./", "/");
    up_expect("/.", "/");
    up_expect("/a/./b", "/a/b");
    up_expect("/a/b/../c", "/a/c");
    up_expect("/a/b/..", "/a/");
    up_expect("/a/b/../", "/a/");
    up_expect("/a/..", "/");
    up_expect("/a/b/../../x", "/x");
    up_expect("/a/%2e%2e/x", "/x");
    up_expect("/a/.%2E/x", "/x");
    up_expect("//a///b//", "/a/b/");
    up_expect("//etc/passwd", "/etc/passwd");   /* inside the root: a 404 at most */
    /* Dots that are not whole segments are names (Linux has no trailing-dot
     * folding). */
    up_expect("/...", "/...");
    up_expect("/a./b..", "/a./b..");
    up_expect("/..a", "/..a");
    up_expect("/.hidden", "/.hidden");
}

IOX_TEST(url_path, traversal_corpus)
{
    UP_REJECT("/..", IOX_URL_E_ABOVE_ROOT);
    UP_REJECT("/../", IOX_URL_E_ABOVE_ROOT);
    UP_REJECT("/../etc/passwd", IOX_URL_E_ABOVE_ROOT);
    UP_REJECT("/%2e%2e/", IOX_URL_E_ABOVE_ROOT);
    UP_REJECT("/%2E%2E/etc/passwd", IOX_URL_E_ABOVE_ROOT);
    UP_REJECT("/.%2e", IOX_URL_E_ABOVE_ROOT);
    UP_REJECT("/%2E%2E%2F", IOX_URL_E_ENCODED_SLASH);
    UP_REJECT("/..%2f", IOX_URL_E_ENCODED_SLASH);
    UP_REJECT("/..%2fetc%2fpasswd", IOX_URL_E_ENCODED_SLASH);
    UP_REJECT("/%2f", IOX_URL_E_ENCODED_SLASH);
    UP_REJECT("/%2Fetc/passwd", IOX_URL_E_ENCODED_SLASH);
    UP_REJECT("/..\\", IOX_URL_E_BACKSLASH);
    UP_REJECT("/..\\..\\etc\\passwd", IOX_URL_E_BACKSLASH);
    UP_REJECT("/%5c..%5c", IOX_URL_E_BACKSLASH);
    UP_REJECT("/%c0%ae%c0%ae/", IOX_URL_E_BAD_UTF8);
    UP_REJECT("/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", IOX_URL_E_BAD_UTF8);
    UP_REJECT("/%e0%80%ae", IOX_URL_E_BAD_UTF8);          /* overlong 3-byte '.' */
    UP_REJECT("/%c0%af", IOX_URL_E_BAD_UTF8);             /* overlong '/' */
    UP_REJECT("/%ed%a0%80", IOX_URL_E_BAD_UTF8);          /* surrogate */
    UP_REJECT("/%f4%90%80%80", IOX_URL_E_BAD_UTF8);       /* > U+10FFFF */
    UP_REJECT("/%c3", IOX_URL_E_BAD_UTF8);                /* truncated */
    UP_REJECT("/%80", IOX_URL_E_BAD_UTF8);                /* lone continuation */
    UP_REJECT("/%00", IOX_URL_E_NUL);
    UP_REJECT("/index.html%00.txt", IOX_URL_E_NUL);
    UP_REJECT("/a%0d%0aSet-Cookie:x", IOX_URL_E_NUL);
    UP_REJECT("/a%7f", IOX_URL_E_NUL);
    UP_REJECT("/a\0b", IOX_URL_E_NUL);
    UP_REJECT("/a/b/../../../x", IOX_URL_E_ABOVE_ROOT);
    UP_REJECT("/a/../../x", IOX_URL_E_ABOVE_ROOT);
    UP_REJECT("/./../x", IOX_URL_E_ABOVE_ROOT);
    UP_REJECT("//../x", IOX_URL_E_ABOVE_ROOT);
    UP_REJECT("/%", IOX_URL_E_BAD_ESCAPE);
    UP_REJECT("/%2", IOX_URL_E_BAD_ESCAPE);
    UP_REJECT("/%zz", IOX_URL_E_BAD_ESCAPE);
    UP_REJECT("/%2g", IOX_URL_E_BAD_ESCAPE);
    UP_REJECT("/%%32%65", IOX_URL_E_BAD_ESCAPE);          /* no double decoding */
    UP_REJECT("", IOX_URL_E_NOT_ABSOLUTE);
    UP_REJECT("a/b", IOX_URL_E_NOT_ABSOLUTE);
    UP_REJECT("../x", IOX_URL_E_NOT_ABSOLUTE);
    /* %25 decodes once to '%': the result is a literal name, never re-decoded. */
    up_expect("/%252e%252e/x", "/%2e%2e/x");
}

IOX_TEST(url_path, long_paths)
{
    /* Exactly fitting, one byte over, and a very long path of many segments. */
    char in[300], out[64];
    memset(in, 'a', sizeof in);
    in[0] = '/';
    int n = iox_url_path_normalize(in, 63, out, sizeof out);   /* 63 bytes + NUL */
    CU_ASSERT_EQUAL(n, 63);
    n = iox_url_path_normalize(in, 64, out, sizeof out);
    CU_ASSERT_EQUAL(n, IOX_URL_E_TOO_LONG);
    CU_ASSERT_EQUAL(iox_url_error_status(n), 414);
    /* A directory whose last '/' lands on the buffer's last byte: no room
     * for the NUL (found by fuzz_url_path: it was written past cap). */
    in[63] = '/';
    n = iox_url_path_normalize(in, 64, out, sizeof out);
    CU_ASSERT_EQUAL(n, IOX_URL_E_TOO_LONG);
    in[62] = '/';
    n = iox_url_path_normalize(in, 63, out, sizeof out);   /* "/a…a/" of 63 bytes fits */
    CU_ASSERT_EQUAL(n, 63);
    in[62] = in[63] = 'a';

    size_t big = 1 << 20;
    char *p = malloc(big), *o = malloc(big + 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    /* "/a/b/a/b/.../" then as many "../" as segments: back to "/". */
    size_t k = 0, segs = 0;
    while (5 * (segs + 1) + 8 < big) { p[k++] = '/'; p[k++] = 'x'; segs++; }
    for (size_t s = 0; s < segs; s++) { p[k++] = '/'; p[k++] = '.'; p[k++] = '.'; }
    n = iox_url_path_normalize(p, k, o, big + 2);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_STRING_EQUAL(o, "/");
    p[k++] = '/'; p[k++] = '.'; p[k++] = '.';   /* one more: above the root */
    n = iox_url_path_normalize(p, k, o, big + 2);
    CU_ASSERT_EQUAL(n, IOX_URL_E_ABOVE_ROOT);
    /* Long segment of dots and percent-escaped dots. */
    k = 0;
    p[k++] = '/';
    for (int i = 0; i < 1000; i++) { memcpy(p + k, "%2e", 3); k += 3; }
    n = iox_url_path_normalize(p, k, o, big + 2);
    CU_ASSERT_EQUAL(n, 1001);
    free(p);
    free(o);
}

/* Property: for random inputs over an alphabet rich in '.', '/', '%', the
 * result (when accepted) never contains a ".." or "." segment, never an
 * empty segment, and starts with '/'. */
IOX_TEST(url_path, random_never_escapes)
{
    static const char *atoms[] = {"/", ".", "..", "%2e", "%2E", "a", "%2f", "%", "%c0%ae", "\\", "%00", "b/", "//"};
    unsigned seed = 12345;
    char in[128], out[256];
    for (int iter = 0; iter < 200000; iter++) {
        size_t k = 0;
        in[k++] = '/';
        int natoms = (int)(seed % 10) + 1;
        for (int a = 0; a < natoms; a++) {
            seed = seed * 1103515245u + 12345u;
            const char *t = atoms[(seed >> 16) % (sizeof atoms / sizeof atoms[0])];
            size_t tl = strlen(t);
            if (k + tl >= sizeof in) break;
            memcpy(in + k, t, tl);
            k += tl;
        }
        int n = iox_url_path_normalize(in, k, out, sizeof out);
        if (n < 0) continue;
        CU_ASSERT_EQUAL_FATAL(out[0], '/');
        CU_ASSERT_PTR_NULL_FATAL(strstr(out, "/../"));
        CU_ASSERT_PTR_NULL_FATAL(strstr(out, "/./"));
        CU_ASSERT_PTR_NULL_FATAL(strstr(out, "//"));
        CU_ASSERT_FALSE_FATAL(n >= 3 && strcmp(out + n - 3, "/..") == 0);
        CU_ASSERT_FALSE_FATAL(n >= 2 && strcmp(out + n - 2, "/.") == 0);
        CU_ASSERT_PTR_NULL_FATAL(strchr(out, '\\'));
    }
}

IOX_SUITE(url_path, NULL, NULL);
