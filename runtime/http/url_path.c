/* url_path.c — request path decoding and normalization; see url_path.h. */
#include "url_path.h"
#include <stdint.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when it is
 * invalid: overlong, surrogate, above U+10FFFF, truncated (RFC 3629 §4). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xc2 || c > 0xf4) return 0;          /* continuation, overlong 2-byte, > U+10FFFF */
    size_t k = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && s[1] < 0xa0) return 0;      /* overlong 3-byte */
    if (c == 0xed && s[1] > 0x9f) return 0;      /* surrogates */
    if (c == 0xf0 && s[1] < 0x90) return 0;      /* overlong 4-byte */
    if (c == 0xf4 && s[1] > 0x8f) return 0;      /* > U+10FFFF */
    return k;
}

int iox_url_path_normalize(const char *in, size_t len, char *out, size_t cap)
{
    if (len == 0 || in[0] != '/') return IOX_URL_E_NOT_ABSOLUTE;
    if (cap < 2) return IOX_URL_E_TOO_LONG;
    /* out holds the result so far: "/" followed by kept segments, each
     * ending in '/'. o is its length; the root "/" is never popped. */
    size_t o = 1;
    out[0] = '/';
    size_t i = 1;
    int dir = 1;   /* the result names a directory (ends with '/') */
    while (i <= len) {
        /* Decode one segment, up to a raw '/' or the end, onto out + o. */
        size_t seg = o;
        while (i < len && in[i] != '/') {
            unsigned char b = (unsigned char)in[i];
            int from_escape = 0;
            if (b == '%') {
                if (i + 2 >= len) return IOX_URL_E_BAD_ESCAPE;
                int h = hexval((unsigned char)in[i + 1]), l = hexval((unsigned char)in[i + 2]);
                if (h < 0 || l < 0) return IOX_URL_E_BAD_ESCAPE;
                b = (unsigned char)(h << 4 | l);
                i += 3;
                from_escape = 1;
            } else {
                i++;
            }
            if (b == 0 || b < 0x20 || b == 0x7f) return IOX_URL_E_NUL;
            if (b == '\\') return IOX_URL_E_BACKSLASH;
            if (b == '/' && from_escape) return IOX_URL_E_ENCODED_SLASH;
            if (o + 2 > cap) return IOX_URL_E_TOO_LONG;   /* room for '/' and NUL */
            out[o++] = (char)b;
        }
        size_t slen = o - seg;
        i++;   /* past the '/' (or the end) */
        if (slen == 0) {                       /* empty segment: "//" or trailing '/' */
            dir = 1;
            continue;
        }
        if (slen == 1 && out[seg] == '.') {    /* "." */
            o = seg;
            dir = 1;
            continue;
        }
        if (slen == 2 && out[seg] == '.' && out[seg + 1] == '.') {   /* ".." */
            o = seg;
            if (o == 1) return IOX_URL_E_ABOVE_ROOT;
            o--;                                   /* the '/' ending the previous segment */
            while (o > 0 && out[o - 1] != '/') o--;
            dir = 1;
            continue;
        }
        for (size_t k = seg; k < o;) {
            size_t n = utf8_len((const unsigned char *)out + k, o - k);
            if (!n) return IOX_URL_E_BAD_UTF8;
            k += n;
        }
        out[o++] = '/';   /* fits: each byte above left room for one more */
        dir = 0;
    }
    /* Every kept segment ended in '/': drop the last one's unless the path
     * named a directory. */
    if (!dir && o > 1) o--;
    /* A directory result keeps its last '/', which may have taken the NUL's
     * place (found by fuzz_url_path: the NUL was written one past cap). */
    if (o >= cap) return IOX_URL_E_TOO_LONG;
    out[o] = 0;
    return (int)o;
}

const char *iox_url_result_name(int res)
{
    switch (res) {
    case IOX_URL_E_NOT_ABSOLUTE: return "E_NOT_ABSOLUTE";
    case IOX_URL_E_BAD_ESCAPE: return "E_BAD_ESCAPE";
    case IOX_URL_E_NUL: return "E_NUL";
    case IOX_URL_E_ENCODED_SLASH: return "E_ENCODED_SLASH";
    case IOX_URL_E_BACKSLASH: return "E_BACKSLASH";
    case IOX_URL_E_BAD_UTF8: return "E_BAD_UTF8";
    case IOX_URL_E_ABOVE_ROOT: return "E_ABOVE_ROOT";
    case IOX_URL_E_TOO_LONG: return "E_TOO_LONG";
    default: return res >= 0 ? "OK" : "E_UNKNOWN";
    }
}

int iox_url_error_status(int res)
{
    return res == IOX_URL_E_TOO_LONG ? 414 : 400;
}
