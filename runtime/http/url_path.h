/* url_path.h — decode and normalize the path of a request target into the
 * key a static-file table is looked up by. A pure function: no allocation,
 * no file system access, output into the caller's buffer.
 *
 * Policy (docs/file-mode.md):
 *  - The input is the path part of an origin-form target (the query is
 *    already cut off by the HTTP parser); it must start with '/'.
 *  - Percent escapes are decoded first (RFC 3986 §2.1); an escape that is not
 *    '%' + two hex digits is an error. After decoding these bytes are errors:
 *    NUL and other C0 controls and DEL, '\\' (raw or encoded), and '/' that
 *    came from an escape (%2F: it would let one segment name a path).
 *  - The decoded path must be valid UTF-8 (no overlong forms such as
 *    %C0%AE for '.', no surrogates, nothing above U+10FFFF).
 *  - Then dot-segments are removed (RFC 3986 §5.2.4) on the decoded segments:
 *    "." is dropped, ".." drops the previous segment, and a ".." with
 *    nothing left to drop (it would climb above the root) is an error rather
 *    than being clamped to "/". Empty segments ("//") collapse.
 *  - The result starts with '/', has no empty, "." or ".." segment, and ends
 *    with '/' when the input named a directory (trailing '/', "/." or "/..").
 *
 * Every error maps to 400 except IOX_URL_E_TOO_LONG (414). */
#ifndef IOX_URL_PATH_H
#define IOX_URL_PATH_H
#include <stddef.h>

enum iox_url_result {
    IOX_URL_E_NOT_ABSOLUTE = -1,  /* does not start with '/' */
    IOX_URL_E_BAD_ESCAPE = -2,    /* '%' not followed by two hex digits */
    IOX_URL_E_NUL = -3,           /* a NUL or other control byte */
    IOX_URL_E_ENCODED_SLASH = -4, /* %2F */
    IOX_URL_E_BACKSLASH = -5,     /* '\\' or %5C */
    IOX_URL_E_BAD_UTF8 = -6,      /* invalid or overlong UTF-8 after decoding */
    IOX_URL_E_ABOVE_ROOT = -7,    /* ".." past the root */
    IOX_URL_E_TOO_LONG = -8,      /* the result does not fit in `cap` */
};

/* Normalize in[0, len) into out (capacity cap, NUL-terminated on success).
 * Returns the length of the result (>= 1), or an IOX_URL_E_* value; out is
 * then unspecified. */
int iox_url_path_normalize(const char *in, size_t len, char *out, size_t cap);
/* Stable short name of a result ("E_ABOVE_ROOT"); "OK" for >= 0. */
const char *iox_url_result_name(int res);
/* HTTP status for an error: 414 for E_TOO_LONG, else 400. */
int iox_url_error_status(int res);

#endif
