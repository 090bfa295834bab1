/* http_cond.c — entity tags, IMF-fixdate, byte ranges; see http_cond.h. */
#include "http_cond.h"
#include <string.h>
#include <time.h>

static int ows(char c) { return c == ' ' || c == '\t'; }

/* The opaque part of a tag without W/ (weak comparison): [*p, *n). */
static void strip_weak(const char **p, size_t *n)
{
    if (*n >= 2 && (*p)[0] == 'W' && (*p)[1] == '/') { *p += 2; *n -= 2; }
}

int iox_http_etag_match(const char *list, size_t len, const char *etag, size_t etag_len)
{
    strip_weak(&etag, &etag_len);
    size_t i = 0;
    while (i < len && ows(list[i])) i++;
    if (len - i == 1 && list[i] == '*') return 1;
    while (i < len) {
        while (i < len && (ows(list[i]) || list[i] == ',')) i++;
        if (i >= len) break;
        size_t s = i;
        if (len - i >= 2 && list[i] == 'W' && list[i + 1] == '/') i += 2;
        if (i >= len || list[i] != '"') return 0;   /* malformed: no match */
        i++;
        while (i < len && list[i] != '"') i++;
        if (i >= len) return 0;
        i++;
        const char *t = list + s;
        size_t tl = i - s;
        strip_weak(&t, &tl);
        if (tl == etag_len && memcmp(t, etag, tl) == 0) return 1;
        while (i < len && ows(list[i])) i++;
        if (i < len && list[i] != ',') return 0;
    }
    return 0;
}

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int num(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int iox_http_date_parse(const char *s, size_t len, int64_t *out)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return -1;
    int wd = -1, mon = -1;
    for (int i = 0; i < 7; i++) if (!memcmp(s, days[i], 3)) wd = i;
    for (int i = 0; i < 12; i++) if (!memcmp(s + 8, months[i], 3)) mon = i;
    int day = num(s + 5, 2), year = num(s + 12, 4), h = num(s + 17, 2), m = num(s + 20, 2), sec = num(s + 23, 2);
    if (wd < 0 || mon < 0 || day < 1 || day > 31 || year < 1970 || h > 23 || m > 59 || sec > 60 ||
        h < 0 || m < 0 || sec < 0)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = year - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = day;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    *out = (int64_t)timegm(&tm);
    return 0;
}

void iox_http_date_format(int64_t t, char *buf)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    /* By hand, not strftime: the names must not follow the locale. */
    memcpy(buf, days[tm.tm_wday], 3);
    buf[3] = ',';
    buf[4] = ' ';
    buf[5] = (char)('0' + tm.tm_mday / 10);
    buf[6] = (char)('0' + tm.tm_mday % 10);
    buf[7] = ' ';
    memcpy(buf + 8, months[tm.tm_mon], 3);
    buf[11] = ' ';
    int y = tm.tm_year + 1900;
    if (y < 0) y = 0;
    if (y > 9999) y = 9999;
    buf[12] = (char)('0' + y / 1000);
    buf[13] = (char)('0' + y / 100 % 10);
    buf[14] = (char)('0' + y / 10 % 10);
    buf[15] = (char)('0' + y % 10);
    buf[16] = ' ';
    buf[17] = (char)('0' + tm.tm_hour / 10);
    buf[18] = (char)('0' + tm.tm_hour % 10);
    buf[19] = ':';
    buf[20] = (char)('0' + tm.tm_min / 10);
    buf[21] = (char)('0' + tm.tm_min % 10);
    buf[22] = ':';
    buf[23] = (char)('0' + tm.tm_sec / 10);
    buf[24] = (char)('0' + tm.tm_sec % 10);
    memcpy(buf + 25, " GMT", 5);
}

/* Digits at v[*i] into *out, saturating at UINT64_MAX. 0 when there are none. */
static int digits(const char *v, size_t len, size_t *i, uint64_t *out)
{
    size_t s = *i;
    uint64_t x = 0;
    while (*i < len && v[*i] >= '0' && v[*i] <= '9') {
        unsigned d = (unsigned)(v[*i] - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
        (*i)++;
    }
    *out = x;
    return *i > s;
}

int iox_http_range_parse(const char *v, size_t len, uint64_t size,
                         uint64_t *first, uint64_t *last)
{
    if (len < 6 || strncasecmp(v, "bytes", 5) != 0) return IOX_RANGE_NONE;
    size_t i = 5;
    while (i < len && ows(v[i])) i++;
    if (i >= len || v[i] != '=') return IOX_RANGE_NONE;
    i++;
    while (i < len && ows(v[i])) i++;
    if (memchr(v + i, ',', len - i)) return IOX_RANGE_NONE;   /* several ranges: send 200 */
    uint64_t a = 0, b = 0;
    int has_a = digits(v, len, &i, &a);
    if (i >= len || v[i] != '-') return IOX_RANGE_NONE;
    i++;
    int has_b = digits(v, len, &i, &b);
    while (i < len && ows(v[i])) i++;
    if (i != len || (!has_a && !has_b)) return IOX_RANGE_NONE;
    if (!has_a) {                          /* suffix: the last b bytes */
        if (b == 0 || size == 0) return IOX_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return IOX_RANGE_OK;
    }
    if (has_b && b < a) return IOX_RANGE_NONE;   /* invalid range-spec */
    if (a >= size) return IOX_RANGE_UNSATISFIABLE;
    *first = a;
    *last = !has_b || b >= size ? size - 1 : b;
    return IOX_RANGE_OK;
}
