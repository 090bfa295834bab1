/* ioxide/log.h — one-line diagnostics to stderr.
 *
 * Every line names the reactor (thread) it came from, so a log of a
 * multi-reactor process reads as per-core stories. Not for the hot path:
 * logging is for errors, startup and shutdown. A line is written with one
 * write(2) so lines from reactors never interleave mid-line. */
#ifndef IOX_LOG_H
#define IOX_LOG_H

enum iox_log_level { IOX_LOG_ERROR = 0, IOX_LOG_WARN, IOX_LOG_INFO, IOX_LOG_DEBUG };

/* Current threshold (default INFO; IOX_LOG=debug|info|warn|error overrides). */
extern int iox_log_level;
/* Tag printed at the start of lines from this thread ("r0", "main"). */
void iox_log_set_thread_tag(const char *tag);
void iox_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define IOX_ERROR(...) iox_log(IOX_LOG_ERROR, __VA_ARGS__)
#define IOX_WARN(...)  iox_log(IOX_LOG_WARN, __VA_ARGS__)
#define IOX_INFO(...)  iox_log(IOX_LOG_INFO, __VA_ARGS__)
#define IOX_DEBUG(...) do { if (iox_log_level >= IOX_LOG_DEBUG) iox_log(IOX_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
