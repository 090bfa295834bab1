/* test_main.c — the single CUnit runner for every tests/test_*.c suite.
 *
 * Usage: build/tests [suite[:case]]... — with arguments, only the named
 * suites (or single cases) run. Exit status is non-zero when any assertion
 * fails or any suite cannot be set up, so `make test` fails with it. */
#include "iox_test.h"
#include <CUnit/Basic.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

static struct iox_test_case *cases;
static struct iox_test_suite *suites;

void iox_test_add_case(struct iox_test_case *c) { c->next = cases; cases = c; }
void iox_test_add_suite(struct iox_test_suite *s) { s->next = suites; suites = s; }

const char *iox_test_bin_dir(void)
{
    static char dir[PATH_MAX];
    if (!dir[0]) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n < 0) { perror("readlink /proc/self/exe"); exit(2); }
        exe[n] = 0;
        snprintf(dir, sizeof dir, "%s", dirname(exe));
    }
    return dir;
}

unsigned iox_test_run_seeds(int (*run)(uint64_t seed, void *arg), void *arg, uint64_t dflt)
{
    const char *one = getenv("IOX_SEED");
    const char *many = getenv("IOX_SIM_SEEDS");
    uint64_t first = one ? strtoull(one, NULL, 10) : 1;
    uint64_t nseeds = one ? 1 : many ? strtoull(many, NULL, 10) : dflt;
    unsigned failures = 0;
    for (uint64_t seed = first; seed < first + nseeds && failures <= 5; seed++)
        failures += run(seed, arg) != 0;
    return failures;
}

const char *iox_test_src_dir(void)
{
    const char *e = getenv("IOX_SRC_DIR");
    return e && *e ? e : ".";
}

static int selected(int argc, char **argv, const char *suite, const char *name)
{
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++) {
        size_t sl = strlen(suite);
        if (strcmp(argv[i], suite) == 0) return 1;
        if (name && strncmp(argv[i], suite, sl) == 0 && argv[i][sl] == ':' &&
            strcmp(argv[i] + sl + 1, name) == 0) return 1;
    }
    return 0;
}

/* Constructors run in link order and prepend: reverse for source order. */
static void *reverse(void *head, size_t off)
{
    void *prev = NULL;
    while (head) {
        void **nextp = (void **)((char *)head + off);
        void *next = *nextp;
        *nextp = prev;
        prev = head;
        head = next;
    }
    return prev;
}

int main(int argc, char **argv)
{
    /* A peer closing a socket must not kill the runner. */
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    cases = reverse(cases, offsetof(struct iox_test_case, next));
    suites = reverse(suites, offsetof(struct iox_test_suite, next));
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    for (struct iox_test_suite *s = suites; s; s = s->next) {
        if (!selected(argc, argv, s->name, NULL)) {
            int any = 0;
            for (struct iox_test_case *c = cases; c; c = c->next)
                if (strcmp(c->suite, s->name) == 0 && selected(argc, argv, c->suite, c->name)) any = 1;
            if (!any) continue;
        }
        CU_pSuite cs = CU_add_suite(s->name, s->init, s->clean);
        if (!cs) return 2;
        for (struct iox_test_case *c = cases; c; c = c->next)
            if (strcmp(c->suite, s->name) == 0 && selected(argc, argv, c->suite, c->name))
                CU_add_test(cs, c->name, c->fn);
    }
    for (struct iox_test_case *c = cases; c; c = c->next) {
        int found = 0;
        for (struct iox_test_suite *s = suites; s; s = s->next)
            if (strcmp(s->name, c->suite) == 0) found = 1;
        if (!found) {
            fprintf(stderr, "test %s:%s has no IOX_SUITE(%s, ...)\n", c->suite, c->name, c->suite);
            return 2;
        }
    }
    CU_basic_set_mode(getenv("IOX_TEST_VERBOSE") ? CU_BRM_VERBOSE : CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed() +
                      CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    printf("\n");
    return failed ? 1 : 0;
}
