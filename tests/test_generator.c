/* test_generator.c — suite `generator`: gen/iox_gen.py validation and output.
 *
 * Bad specs: each tests/data/gen/bad_*.toml holds one error class; the test
 * runs the generator on it and requires a non-zero exit, exactly the expected
 * `path:line: message` lines on stderr, and no output directory written.
 * Good spec: tests/data/gen/good.toml is generated into a temp dir, compiled
 * with -Wall -Wextra -Werror, linked with good_driver.c (its hand-written
 * actions), run, and its transition log compared; the endless follow-up chain
 * must abort(); a second run must produce byte-identical files. */
#include "iox_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define GEN "/usr/bin/python3 gen/iox_gen.py"

/* Run `sh -c cmd` from the source root; returns its exit status (-1 when it
 * did not exit normally) and its stdout in *out (malloc'd, NUL-terminated). */
static int run(const char *cmd, char **out)
{
    char *full;
    if (asprintf(&full, "cd '%s' && %s", iox_test_src_dir(), cmd) < 0) return -1;
    FILE *p = popen(full, "r");
    free(full);
    if (!p) return -1;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int st = pclose(p);
    if (out) *out = buf; else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/iox-gen-XXXXXX");
    if (!mkdtemp(d)) { free(d); return NULL; }
    return d;
}

static void rmtree(char *d)
{
    char *cmd;
    if (d && asprintf(&cmd, "rm -rf '%s'", d) >= 0) {
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", d);
        free(cmd);
    }
    free(d);
}

/* Generate `spec` (relative to the source root) and expect failure with
 * exactly `expected` on stderr (the error lines plus the summary line). */
static void expect_errors(const char *spec, const char *expected)
{
    char *d = tmpdir(), *cmd, *err = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_FATAL(asprintf(&cmd, GEN " --out '%s/out' %s 2>&1 >/dev/null", d, spec) >= 0);
    int rc = run(cmd, &err);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_STRING_EQUAL(err, expected);
    if (strcmp(err, expected) != 0)
        fprintf(stderr, "\n%s: expected:\n%s--- got:\n%s---\n", spec, expected, err);
    char *out;
    CU_ASSERT_FATAL(asprintf(&out, "%s/out", d) >= 0);
    CU_ASSERT_NOT_EQUAL(access(out, F_OK), 0); /* nothing written */
    free(out);
    free(err);
    free(cmd);
    rmtree(d);
}

#define P "tests/data/gen/"
#define FORMS "(forms: \"action -> next\", \"action\", \"-> next\")"

IOX_TEST(generator, bad_syntax)
{
    expect_errors(P "bad_syntax.toml",
        P "bad_syntax.toml:19: TOML syntax error: Illegal character '\\n' (column 13)\n"
        "iox_gen: 1 error(s); nothing written\n");
}

IOX_TEST(generator, bad_unknown_state)
{
    expect_errors(P "bad_unknown_state.toml",
        P "bad_unknown_state.toml:18: unknown state 'nowhere' (target of 'go' in state 'a')\n"
        "iox_gen: 1 error(s); nothing written\n");
}

IOX_TEST(generator, bad_unknown_event)
{
    expect_errors(P "bad_unknown_event.toml",
        P "bad_unknown_event.toml:20: unknown event 'bogus' in state 'a'\n"
        P "bad_unknown_event.toml:21: unknown event 'nope' in ignore list of state 'a'\n"
        "iox_gen: 2 error(s); nothing written\n");
}

IOX_TEST(generator, bad_unreachable)
{
    expect_errors(P "bad_unreachable.toml",
        P "bad_unreachable.toml:21: state 'orphan' is unreachable from initial state 'a'\n"
        "iox_gen: 1 error(s); nothing written\n");
}

IOX_TEST(generator, bad_unhandled)
{
    expect_errors(P "bad_unhandled.toml",
        P "bad_unhandled.toml:21: state 'b' neither handles nor ignores events: stop\n"
        "iox_gen: 1 error(s); nothing written\n");
}

IOX_TEST(generator, bad_missing_action)
{
    expect_errors(P "bad_missing_action.toml",
        P "bad_missing_action.toml:19: missing action 'frob': used on 'stop' in state 'a' "
        "but not declared in [actions]\n"
        "iox_gen: 1 error(s); nothing written\n");
}

IOX_TEST(generator, bad_unused_action)
{
    expect_errors(P "bad_unused_action.toml",
        P "bad_unused_action.toml:15: action 'spare' is declared but never used\n"
        "iox_gen: 1 error(s); nothing written\n");
}

IOX_TEST(generator, bad_no_final)
{
    expect_errors(P "bad_no_final.toml",
        P "bad_no_final.toml:21: state 'trap' has no path to a final state\n"
        "iox_gen: 1 error(s); nothing written\n");
}

IOX_TEST(generator, bad_handled_ignored)
{
    expect_errors(P "bad_handled_ignored.toml",
        P "bad_handled_ignored.toml:20: event 'go' is both handled and ignored in state 'a'\n"
        "iox_gen: 1 error(s); nothing written\n");
}

IOX_TEST(generator, bad_malformed)
{
    expect_errors(P "bad_malformed.toml",
        P "bad_malformed.toml:20: malformed transition 'act ->' for event 'stop' in state 'a' " FORMS "\n"
        P "bad_malformed.toml:21: malformed transition 'act z' for event 'halt' in state 'a' " FORMS "\n"
        "iox_gen: 2 error(s); nothing written\n");
}

IOX_TEST(generator, bad_missing_key)
{
    expect_errors(P "bad_missing_key.toml",
        P "bad_missing_key.toml:2: [machine] is missing required key 'arg'\n"
        P "bad_missing_key.toml:2: [machine] is missing required key 'initial'\n"
        "iox_gen: 2 error(s); nothing written\n");
}

IOX_TEST(generator, bad_identifier)
{
    expect_errors(P "bad_identifier.toml",
        P "bad_identifier.toml:3: invalid C identifier 'http-conn' (machine.name)\n"
        P "bad_identifier.toml:12: invalid C identifier '2fast' (event name)\n"
        "iox_gen: 2 error(s); nothing written\n");
}

/* Every error in a spec is reported, not just the first; and errors from
 * several specs on one command line are all reported too. */
IOX_TEST(generator, bad_many_all_reported)
{
    expect_errors(P "bad_many.toml " P "bad_unused_action.toml",
        P "bad_many.toml:7: unknown state 'start' (machine.initial)\n"
        P "bad_many.toml:8: unknown state 'nope' (machine.final)\n"
        P "bad_many.toml:15: action 'spare' is declared but never used\n"
        P "bad_many.toml:19: unknown event 'oops' in state 'a'\n"
        P "bad_unused_action.toml:15: action 'spare' is declared but never used\n"
        "iox_gen: 5 error(s); nothing written\n");
}

static const char expected_log[] =
    "  reading --recv--> reading\n"
    "  reading --idle--> reading\n"
    "fire recv -> reading\n"
    "fire sent -> reading\n"
    "  reading --recv--> reading\n"
    "  reading --output--> writing\n"
    "fire recv -> writing\n"
    "fire recv -> writing\n"
    "  writing --sent--> reading\n"
    "fire sent -> reading\n"
    "fire none -> reading\n"
    "  reading --timeout--> closing\n"
    "fire timeout -> closing\n"
    "fire timeout -> closing\n"
    "  closing --closed--> closed\n"
    "fire closed -> closed\n"
    "fire recv -> closed\n"
    "final=1 replies=1 rearms=1 closes=1\n";

IOX_TEST(generator, good_compiles_and_runs)
{
    char *d = tmpdir(), *cmd, *out = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_FATAL(asprintf(&cmd,
        GEN " --out '%1$s' " P "good.toml"
        " && ls '%1$s'"
        " && cc -std=gnu11 -Wall -Wextra -Werror -c '%1$s/echo_conn_machine.c' -o '%1$s/m.o'"
        " && cc -std=gnu11 -Wall -Wextra -Werror -I'%1$s' -c " P "good_driver.c -o '%1$s/d.o'"
        " && cc -o '%1$s/driver' '%1$s/m.o' '%1$s/d.o' 1>&2", d) >= 0);
    int rc = run(cmd, &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out, "echo_conn_machine.c\necho_conn_machine.dot\necho_conn_machine.h\n");
    free(cmd);
    free(out);
    if (rc != 0) { rmtree(d); return; }

    /* The transition log: tracer lines ("  a --e--> b") and fire() results. */
    CU_ASSERT_FATAL(asprintf(&cmd, "'%s/driver'", d) >= 0);
    rc = run(cmd, &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out, expected_log);
    if (strcmp(out, expected_log) != 0) fprintf(stderr, "\ndriver log:\n%s", out);
    free(cmd);
    free(out);

    /* An action that always returns a follow-up: abort() after 64. */
    CU_ASSERT_FATAL(asprintf(&cmd, "'%s/driver' spin 2>&1; echo \"rc=$?\"", d) >= 0);
    rc = run(cmd, &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "echo_conn_fire: more than 64 follow-up events in one chain"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "rc=134")); /* 128 + SIGABRT */
    free(cmd);
    free(out);
    rmtree(d);
}

/* Same inputs, byte-identical outputs, whatever the output directory and
 * however the spec path is spelled (relative, or absolute inside the repo). */
IOX_TEST(generator, deterministic)
{
    char *a = tmpdir(), *b = tmpdir(), *cmd;
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_FATAL(asprintf(&cmd,
        GEN " --out '%s' " P "good.toml && " GEN " --out '%s' \"$PWD/" P "good.toml\""
        " && for f in echo_conn_machine.h echo_conn_machine.c echo_conn_machine.dot;"
        " do cmp '%s'/$f '%s'/$f || exit 1; done"
        " && ! grep -l -e '%s' -e \"$PWD\" '%s'/*",
        a, b, a, b, a, a) >= 0);
    CU_ASSERT_EQUAL(run(cmd, NULL), 0);
    free(cmd);
    rmtree(a);
    rmtree(b);
}

IOX_SUITE(generator, NULL, NULL);
