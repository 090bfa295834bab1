/* test_regen_fresh.c — suite `regen`: the committed generated/ is fresh.
 *
 * Runs mk/regen.sh into a temp dir and compares it with generated/ by
 * `diff -r`, ignoring nothing: any stale, missing or extra file fails the
 * test and prints the diff. It never rewrites the tree — fix a failure with
 * `make regen` and commit. With no generated/ directory at all (nothing to
 * generate yet), regen must produce nothing. */
#include "iox_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

IOX_TEST(regen, generated_is_fresh)
{
    char d[] = "/tmp/iox-regen-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(d));
    char *cmd;
    CU_ASSERT_FATAL(asprintf(&cmd,
        "cd '%1$s' && mk/regen.sh '%2$s/out' 1>&2"
        " && if [ -d generated ]; then diff -r generated '%2$s/out' 1>&2;"
        " else [ -z \"$(ls -A '%2$s/out')\" ] || { echo 'generated/ is missing; regen produces:' >&2;"
        " ls '%2$s/out' >&2; false; }; fi",
        iox_test_src_dir(), d) >= 0);
    int st = system(cmd);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fprintf(stderr, "\ngenerated/ is stale: run `make regen` and commit\n");
    free(cmd);
    CU_ASSERT_FATAL(asprintf(&cmd, "rm -rf '%s'", d) >= 0);
    CU_ASSERT_EQUAL(system(cmd), 0);
    free(cmd);
}

IOX_SUITE(regen, NULL, NULL);
