/* check.h — CHECK(cond, fmt, ...): a CUnit assertion whose failure message
 * is formatted (CUnit copies the text), reported at the caller's file and
 * line. One definition for the suites that need a message with values. */
#ifndef IOX_TEST_CHECK_H
#define IOX_TEST_CHECK_H
#include <CUnit/CUnit.h>
#include <stdarg.h>
#include <stdio.h>

static inline __attribute__((format(printf, 4, 5))) void iox_check(int ok, int line, const char *file,
                                                                    const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg, file, "", CU_FALSE);
}
#define CHECK(cond, ...) iox_check(!!(cond), __LINE__, __FILE__, __VA_ARGS__)
/* The same, reported at `line` (a helper asserting for its caller). */
#define CHECK_AT(line, cond, ...) iox_check(!!(cond), (line), __FILE__, __VA_ARGS__)

#endif
