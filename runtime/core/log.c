/* iox_log.c — see ioxide/log.h. */
#include <ioxide/log.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int iox_log_level = IOX_LOG_INFO;
static __thread char thread_tag[16] = "main";

__attribute__((constructor)) static void iox_log_init(void)
{
    const char *e = getenv("IOX_LOG");
    if (!e) return;
    if (!strcmp(e, "debug")) iox_log_level = IOX_LOG_DEBUG;
    else if (!strcmp(e, "info")) iox_log_level = IOX_LOG_INFO;
    else if (!strcmp(e, "warn")) iox_log_level = IOX_LOG_WARN;
    else if (!strcmp(e, "error")) iox_log_level = IOX_LOG_ERROR;
}

void iox_log_set_thread_tag(const char *tag)
{
    snprintf(thread_tag, sizeof thread_tag, "%s", tag);
}

void iox_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if (level > iox_log_level) return;
    char line[1024];
    int n = snprintf(line, sizeof line, "ioxide[%s] %s: ", thread_tag,
                     names[level < 0 ? 0 : level > 3 ? 3 : level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    /* Best effort: a failed diagnostic write has nowhere else to go. */
    ssize_t w = write(2, line, len);
    (void)w;
}
