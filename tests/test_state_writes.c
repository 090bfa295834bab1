/* test_state_writes.c — suite `state_writes`: no code writes a machine's
 * state outside the generated dispatch.
 *
 * gen/check_state_writes.py (docs/machine-spec.md) runs over the runtime
 * files of every machine adopted so far and must report nothing: the state
 * is set only by NAME_fire() and the spec's [reuse] functions, all in
 * generated/ (passed too: the generator's banner makes the checker skip
 * those files, so they are allowed, not left out). The headers that define
 * the context structs go first, so `x->conns[i].state` and friends are
 * recognised through the members' declared types.
 *
 * Machines covered: pg_conn (runtime/pg/ files, pg_internal.h), file_stream
 * (runtime/file/file_stream.c, ioxide/file_stream.h), and the stream layer's
 * stream_conn and stream_client (runtime/stream/, its internal headers). http_conn joins when
 * runtime/http/conn files set its state through [reuse] functions only: add its
 * files to CHECKED.
 *
 * So that the check cannot pass vacuously (a spec losing its state_field,
 * a header no longer declaring the context), `planted_writes_are_reported`
 * copies pg_pool.c and file_stream.c with one write each planted at the end
 * and requires the checker to report exactly those two. */
#include "iox_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define CHECKER "/usr/bin/python3 gen/check_state_writes.py"
#define STREAM_HDRS "runtime/stream/stream_internal.h runtime/stream/client_internal.h"
#define CHECKED                                                               \
    "runtime/pg/pg_internal.h include/ioxide/file_stream.h "                        \
    "runtime/pg/*.c runtime/file/*.c "                                   \
    "generated/pg_conn_machine.c generated/pg_conn_machine.h "                \
    "generated/file_stream_machine.c generated/file_stream_machine.h "        \
    STREAM_HDRS " runtime/stream/*.c "                                        \
    "generated/stream_conn_machine.c generated/stream_conn_machine.h "        \
    "generated/stream_client_machine.c generated/stream_client_machine.h"

/* `sh -c cmd` from the source root: exit status (-1 when it did not exit),
 * stdout+stderr in *out (malloc'd). */
static int run(const char *cmd, char **out)
{
    char *full;
    if (asprintf(&full, "cd '%s' && { %s; } 2>&1", iox_test_src_dir(), cmd) < 0) return -1;
    FILE *p = popen(full, "r");
    free(full);
    if (!p) return -1;
    size_t len = 0, cap = 4096, n;
    char *buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

IOX_TEST(state_writes, runtime_writes_only_through_the_machines)
{
    char *out = NULL;
    int rc = run(CHECKER " " CHECKED, &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    if (rc != 0 || out[0])
        fprintf(stderr, "\n  gen/check_state_writes.py (exit %d): set these states with NAME_fire() or a "
                "[reuse] function of the spec:\n%s", rc, out);
    free(out);
}

IOX_TEST(state_writes, planted_writes_are_reported)
{
    char dir[] = "/tmp/iox-state-writes-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char *cmd, *out = NULL;
    CU_ASSERT_FATAL(asprintf(&cmd,
        "cp runtime/pg/pg_pool.c runtime/file/file_stream.c '%s'/ && "
        "printf 'void planted_pg(struct iox_pg_conn *c) { c->state = PG_CONN_S_DOWN; }\\n' >> '%s'/pg_pool.c && "
        "printf 'void planted_fs(struct iox_file_streams *fs) { fs->s[0].state = FILE_STREAM_S_IDLE; }\\n' >> '%s'/file_stream.c && "
        "L1=$(wc -l < '%s'/pg_pool.c) && L2=$(wc -l < '%s'/file_stream.c) && "
        CHECKER " runtime/pg/pg_internal.h include/ioxide/file_stream.h '%s'/pg_pool.c '%s'/file_stream.c; "
        "echo \"rc=$? lines $L1 $L2\"",
        dir, dir, dir, dir, dir, dir, dir) >= 0);
    int rc = run(cmd, &out);
    CU_ASSERT_EQUAL(rc, 0);
    /* Both planted lines, nothing else. */
    int l1 = 0, l2 = 0;
    const char *tail = strstr(out, "rc=");
    CU_ASSERT_PTR_NOT_NULL_FATAL(tail);
    CU_ASSERT_EQUAL(sscanf(tail, "rc=%d lines %d %d", &rc, &l1, &l2), 3);
    CU_ASSERT_EQUAL(rc, 1);
    char want[1024];
    snprintf(want, sizeof want,
             "%s/pg_pool.c:%d: write of the pg_conn state outside the generated code: c->state = "
             "(use pg_conn_fire() or a [reuse] function)\n"
             "%s/file_stream.c:%d: write of the file_stream state outside the generated code: fs->s[0].state = "
             "(use file_stream_fire() or a [reuse] function)\n"
             "check_state_writes: 2 write(s) of a machine state outside the generated code\n",
             dir, l1, dir, l2);
    CU_ASSERT_EQUAL(strncmp(out, want, strlen(want)), 0);
    CU_ASSERT_EQUAL((size_t)(tail - out), strlen(want));
    if (strncmp(out, want, strlen(want)) || (size_t)(tail - out) != strlen(want))
        fprintf(stderr, "\nexpected:\n%s--- got:\n%s---\n", want, out);
    free(out);
    free(cmd);
    CU_ASSERT_FATAL(asprintf(&cmd, "rm -rf '%s'", dir) >= 0);
    CU_ASSERT_EQUAL(run(cmd, &out), 0);
    free(out);
    free(cmd);
}

/* The same for the stream layer's two machines: a write through a stream
 * pointer and one through the pool's connection table are reported, and
 * nothing else. */
IOX_TEST(state_writes, planted_stream_writes_are_reported)
{
    char dir[] = "/tmp/iox-state-writes-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char *cmd, *out = NULL;
    CU_ASSERT_FATAL(asprintf(&cmd,
        "cp runtime/stream/stream_conn.c runtime/stream/client_pool.c '%1$s'/ && "
        "printf 'void planted(struct iox_stream *s) { s->state = 0; }\\n' >> '%1$s'/stream_conn.c && "
        "printf 'void planted(struct iox_client_pool *p) { p->conns[1].state = 0; }\\n' >> '%1$s'/client_pool.c && "
        "L1=$(wc -l < '%1$s'/stream_conn.c) && L2=$(wc -l < '%1$s'/client_pool.c) && "
        CHECKER " " STREAM_HDRS " '%1$s'/client_pool.c '%1$s'/stream_conn.c; "
        "echo \"rc=$? lines $L1 $L2\"", dir) >= 0);
    int rc = run(cmd, &out);
    CU_ASSERT_EQUAL(rc, 0);
    int l1 = 0, l2 = 0;
    const char *tail = strstr(out, "rc=");
    CU_ASSERT_PTR_NOT_NULL_FATAL(tail);
    CU_ASSERT_EQUAL(sscanf(tail, "rc=%d lines %d %d", &rc, &l1, &l2), 3);
    CU_ASSERT_EQUAL(rc, 1);
    char want[1024];
    snprintf(want, sizeof want,
             "%s/client_pool.c:%d: write of the stream_client state outside the generated code: p->conns[1].state = "
             "(use stream_client_fire() or a [reuse] function)\n"
             "%s/stream_conn.c:%d: write of the stream_conn state outside the generated code: s->state = "
             "(use stream_conn_fire() or a [reuse] function)\n"
             "check_state_writes: 2 write(s) of a machine state outside the generated code\n",
             dir, l2, dir, l1);
    CU_ASSERT_EQUAL(strncmp(out, want, strlen(want)), 0);
    CU_ASSERT_EQUAL((size_t)(tail - out), strlen(want));
    if (strncmp(out, want, strlen(want)) || (size_t)(tail - out) != strlen(want))
        fprintf(stderr, "\nexpected:\n%s--- got:\n%s---\n", want, out);
    free(out);
    free(cmd);
    CU_ASSERT_FATAL(asprintf(&cmd, "rm -rf '%s'", dir) >= 0);
    CU_ASSERT_EQUAL(run(cmd, &out), 0);
    free(out);
    free(cmd);
}

IOX_SUITE(state_writes, NULL, NULL);
