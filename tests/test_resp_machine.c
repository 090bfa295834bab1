/* test_resp_machine.c — suite `resp_machine`: the example's resp_conn
 * machine is written only by its generated code, like the runtime's
 * machines (gen/check_state_writes.py over examples/resp/src with its spec);
 * a planted write in a copy of conn.c is reported, so the check cannot pass
 * vacuously. The spec also validates with the installed generator's checks
 * (ioxide-gen machines --check). */
#include "iox_test.h"
#include "resp_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC "examples/resp/spec/resp_conn.toml"

IOX_TEST(resp_machine, state_written_only_by_the_machine)
{
    char *out = NULL;
    int rc = ru_sh(&out, "cd '%s' && /usr/bin/python3 gen/check_state_writes.py --spec " SPEC
                   " examples/resp/src/*.h examples/resp/src/*.c 2>&1", iox_test_src_dir());
    CU_ASSERT_EQUAL(rc, 0);
    if (rc) fprintf(stderr, "\n  %s\n", out ? out : "");
    free(out);
}

IOX_TEST(resp_machine, a_planted_write_is_reported)
{
    char *out = NULL;
    int rc = ru_sh(&out, "cd '%s' && t=$(mktemp -d) && "
                   "sed 's|    c->rs = rs;|    c->rs = rs;\\n    c->state = RESP_CONN_S_FAILED;|' examples/resp/src/conn.c > $t/conn.c && "
                   "/usr/bin/python3 gen/check_state_writes.py --spec " SPEC " examples/resp/src/server.h $t/conn.c 2>&1; "
                   "rc=$?; rm -rf $t; exit $rc", iox_test_src_dir());
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT(out && strstr(out, "write of the resp_conn state outside the generated code"));
    free(out);
}

IOX_TEST(resp_machine, spec_validates)
{
    CU_ASSERT_EQUAL(ru_sh(NULL, "cd '%s' && gen/ioxide-gen machines --check --out /tmp " SPEC, iox_test_src_dir()), 0);
}

IOX_SUITE(resp_machine, NULL, NULL);
