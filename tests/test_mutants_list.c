/* test_mutants_list.c — suite `mutants_list`: every deliberate fault of
 * tests/mutants/ (one .md per layer) still applies to the code (its find text occurs once
 * in its file), checked by mk/mutants_check.py. `make mutants` itself is
 * long and runs apart; this keeps its list in step with every change. */
#include "iox_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

IOX_TEST(mutants_list, every_find_text_occurs_once)
{
    char *cmd;
    CU_ASSERT_FATAL(asprintf(&cmd, "/usr/bin/python3 '%1$s/mk/mutants_check.py' '%1$s' 1>&2", iox_test_src_dir()) >= 0);
    int st = system(cmd);
    free(cmd);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

IOX_SUITE(mutants_list, NULL, NULL);
