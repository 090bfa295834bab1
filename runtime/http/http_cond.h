/* http_cond.h — pure helpers for conditional and range requests (RFC 9110
 * §8.8.3 entity tags, §5.6.7 dates, §13.1 preconditions, §14 ranges), used
 * by static-file serving. No allocation; inputs are header values as the
 * parser hands them out (pointer + length, OWS already trimmed). */
#ifndef IOX_HTTP_COND_H
#define IOX_HTTP_COND_H
#include <stddef.h>
#include <stdint.h>

/* If-None-Match: 1 when `list` ("*", or a comma list of entity tags, each
 * optionally W/) matches `etag` (a quoted tag, e.g. "\"1a-2b\"") by the weak
 * comparison; 0 otherwise, also for a malformed list. */
int iox_http_etag_match(const char *list, size_t len, const char *etag, size_t etag_len);

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") ↔ seconds since the epoch.
 * parse: 0, or -1 when the value is not an IMF-fixdate (the obsolete RFC 850
 * and asctime forms are not accepted: the condition is then ignored).
 * format: writes 29 bytes and a NUL into buf (at least 30 bytes). */
int iox_http_date_parse(const char *s, size_t len, int64_t *out);
void iox_http_date_format(int64_t t, char *buf);

/* Range header against a representation of `size` bytes.
 *   IOX_RANGE_NONE   ignore the header and send 200: not "bytes=", invalid
 *                    syntax, last < first, or more than one range (RFC 9110
 *                    §14.2 lets a server ignore Range; multipart is not made)
 *   IOX_RANGE_OK     *first .. *last inclusive, within [0, size)
 *   IOX_RANGE_UNSATISFIABLE  416 with "Content-Range: bytes *\/size" */
enum { IOX_RANGE_NONE = 0, IOX_RANGE_OK = 1, IOX_RANGE_UNSATISFIABLE = 2 };
int iox_http_range_parse(const char *v, size_t len, uint64_t size,
                         uint64_t *first, uint64_t *last);

#endif
