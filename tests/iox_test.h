/* iox_test.h — CUnit suite auto-registration for the ioxide test runner.
 *
 * Every tests/test_*.c file declares its suites with IOX_SUITE and its cases
 * with IOX_TEST; a constructor adds them to one list that tests/test_main.c
 * hands to CUnit. No central list to edit when a test file is added.
 *
 *   IOX_TEST(http_parser, minimal_get) { CU_ASSERT_EQUAL(...); }
 *   IOX_SUITE(http_parser, NULL, NULL);   // after its tests, once per file
 *
 * Helpers shared by tests: iox_test_bin_dir() is the directory of the running
 * test binary (build/ or build/asan/), so integration tests start the matching
 * build/playground; iox_test_src_dir() is the source tree root.
 */
#ifndef IOX_TEST_H
#define IOX_TEST_H
#include <CUnit/CUnit.h>
#include <stddef.h>
#include <stdint.h>

struct iox_test_case {
    const char *suite;
    const char *name;
    void (*fn)(void);
    struct iox_test_case *next;
};
struct iox_test_suite {
    const char *name;
    int (*init)(void);
    int (*clean)(void);
    struct iox_test_suite *next;
};
void iox_test_add_case(struct iox_test_case *c);
void iox_test_add_suite(struct iox_test_suite *s);

#define IOX_TEST(suite_, name_)                                               \
    static void iox_t_##suite_##_##name_(void);                               \
    static struct iox_test_case iox_tc_##suite_##_##name_ = {                 \
        #suite_, #name_, iox_t_##suite_##_##name_, NULL};                     \
    __attribute__((constructor)) static void iox_tr_##suite_##_##name_(void)  \
    { iox_test_add_case(&iox_tc_##suite_##_##name_); }                        \
    static void iox_t_##suite_##_##name_(void)

#define IOX_SUITE(suite_, init_, clean_)                                      \
    static struct iox_test_suite iox_ts_##suite_ = {#suite_, init_, clean_,   \
                                                    NULL};                    \
    __attribute__((constructor)) static void iox_tsr_##suite_(void)           \
    { iox_test_add_suite(&iox_ts_##suite_); }

/* Seeded simulations: run(seed, arg) for the seeds the environment picks —
 * IOX_SEED=<n> replays that one seed, IOX_SIM_SEEDS=<count> runs seeds
 * 1..count (default `dflt`). run returns non-zero for a failed seed (and
 * prints it with its replay line). Stops after 5 failures; returns how many
 * failed. */
unsigned iox_test_run_seeds(int (*run)(uint64_t seed, void *arg), void *arg, uint64_t dflt);

/* Directory holding the running test binary, without trailing slash. */
const char *iox_test_bin_dir(void);
/* Root of the source tree (cwd when make runs the tests, or $IOX_SRC_DIR). */
const char *iox_test_src_dir(void);

#endif
