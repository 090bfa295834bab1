/* test_generator.c — suite `generator`: gen/iox_gen.py validation and output.
 *
 * Bad specs: each tests/data/gen/bad_*.toml holds one error class; the test
 * runs the generator on it and requires a non-zero exit, exactly the expected
 * `path:line: message` lines on stderr, and no output directory written.
 * Good spec: tests/data/gen/good.toml is generated into a temp dir, compiled
 * with -Wall -Wextra -Werror, linked with good_driver.c (its hand-written
 * actions and guards), run, and its log compared — transitions, and which
 * guards were asked in which order, so the guarded alternative taken is
 * checked —; the endless follow-up chain and a reopen from the wrong state
 * must abort(); a second run must produce byte-identical files. good_u8.toml
 * (guards and [reuse] on a uint8_t state) is compiled too.
 * State writes: gen/check_state_writes.py must report every write in
 * writes_bad.c, and nothing in writes_clean.c, writes_generated.c and the
 * driver. */
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
#define ALT_FORMS "(forms: \"[guard] T\", \"[!guard] T\", \"T\", \"ignore\"; " \
    "T is \"action -> next\", \"action\", \"-> next\")"

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

/* [model] (docs/verification.md): every key checked against the machine. */
IOX_TEST(generator, bad_model)
{
    expect_errors(P "bad_model.toml",
        P "bad_model.toml:24: model.socket must be one of: 'none', 'open', 'later'\n"
        P "bad_model.toml:25: model.bounds.data must be a number 0..255\n"
        P "bad_model.toml:26: unknown key 'colour' in [model] (expected one of: doc, decls, bounds, counters, socket, idle_event, invariants, at_end, ops, actions, guards, env)\n"
        P "bad_model.toml:29: model.ops.recv.cqe[0]: unknown event 'gone'\n"
        P "bad_model.toml:29: model.ops.recv.cqe[0]: budget 'nothing' is not in model.bounds\n"
        P "bad_model.toml:32: model.actions: unknown action 'frob'\n"
        P "bad_model.toml:33: model.actions.act: raises unknown event 'nope'\n"
        P "bad_model.toml:36: model.guards: unknown guard 'ready'\n"
        P "bad_model.toml:38: model.env.stop: budget 'none' is not in model.bounds\n"
        "iox_gen: 9 error(s); nothing written\n");
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

IOX_TEST(generator, bad_unknown_guard)
{
    expect_errors(P "bad_unknown_guard.toml",
        P "bad_unknown_guard.toml:21: unknown guard 'nope': used on 'go' in state 'a' "
        "but not declared in [guards]\n"
        "iox_gen: 1 error(s); nothing written\n");
}

IOX_TEST(generator, bad_unused_guard)
{
    expect_errors(P "bad_unused_guard.toml",
        P "bad_unused_guard.toml:16: guard 'spare' is declared but never used\n"
        "iox_gen: 1 error(s); nothing written\n");
}

/* A guarded list must end with an unguarded default, even when its guards
 * are exhaustive ([g] then [!g]): the error says how to write it. */
IOX_TEST(generator, bad_guard_no_default)
{
    expect_errors(P "bad_guard_no_default.toml",
        P "bad_guard_no_default.toml:22: guarded transition for 'go' in state 'a' has no default: "
        "end the list with an unguarded alternative (a transition, or \"ignore\")\n"
        P "bad_guard_no_default.toml:25: guarded transition for 'stop' in state 'a' has no default: "
        "write its last alternative without a guard ('[!ready] act' as 'act')\n"
        P "bad_guard_no_default.toml:26: guarded transition for 'halt' in state 'a' has no default: "
        "end the list with an unguarded alternative (a transition, or \"ignore\")\n"
        "iox_gen: 3 error(s); nothing written\n");
}

/* Lines are those of the alternatives, also in a multi-line list. */
IOX_TEST(generator, bad_guard_duplicate)
{
    expect_errors(P "bad_guard_duplicate.toml",
        P "bad_guard_duplicate.toml:22: duplicate alternative '[ready] -> z' for 'go' in state 'a': "
        "[ready] is already tested by '[ready] act -> z' (line 22), so it is never taken\n"
        P "bad_guard_duplicate.toml:25: duplicate alternative '[!busy] -> z' for 'stop' in state 'a': "
        "[!busy] is already tested by '[!busy] -> z' (line 24), so it is never taken\n"
        "iox_gen: 2 error(s); nothing written\n");
}

IOX_TEST(generator, bad_guard_unreachable)
{
    expect_errors(P "bad_guard_unreachable.toml",
        P "bad_guard_unreachable.toml:22: alternative '[ready] -> z' for 'go' in state 'a' comes after "
        "the unguarded default 'act -> z': it is never taken\n"
        P "bad_guard_unreachable.toml:23: alternative '-> z' for 'stop' in state 'a' is never taken: "
        "[ready] and [!ready] before it cover every case\n"
        P "bad_guard_unreachable.toml:24: alternative '-> z' for 'halt' in state 'a' comes after "
        "the unguarded default 'act': it is never taken\n"
        "iox_gen: 3 error(s); nothing written\n");
}

/* Malformed alternatives; names used only inside them are not reported as
 * unused ('ready', 'act'), and "ignore" cannot be an action. */
IOX_TEST(generator, bad_guard_malformed)
{
    expect_errors(P "bad_guard_malformed.toml",
        P "bad_guard_malformed.toml:22: action name 'ignore' is reserved "
        "(the alternative \"ignore\" ignores the event)\n"
        P "bad_guard_malformed.toml:25: malformed alternative '[ready act -> z' for event 'go' in state 'a' "
        ALT_FORMS "\n"
        P "bad_guard_malformed.toml:26: malformed transition for event 'stop' in state 'a': "
        "expected a string or a non-empty list of strings " ALT_FORMS "\n"
        P "bad_guard_malformed.toml:27: malformed alternative '[!] -> z' for event 'halt' in state 'a' "
        ALT_FORMS "\n"
        P "bad_guard_malformed.toml:28: malformed alternative '[ready] act ->' for event 'quit' in state 'a' "
        ALT_FORMS "\n"
        P "bad_guard_malformed.toml:29: malformed transition for event 'leave' in state 'a': "
        "expected a string or a non-empty list of strings " ALT_FORMS "\n"
        "iox_gen: 6 error(s); nothing written\n");
}

IOX_TEST(generator, bad_reuse)
{
    expect_errors(P "bad_reuse.toml",
        P "bad_reuse.toml:9: machine.state_type must be one of: 'uint8_t', 'enum' (got 'short')\n"
        P "bad_reuse.toml:10: invalid C identifier 'my-state' (machine.state_field)\n"
        P "bad_reuse.toml:11: machine.dot_edges must be one of: 'each', 'merged' (got 'tangled')\n"
        P "bad_reuse.toml:26: reuse name 'fire' is reserved: m_fire would clash with generated code\n"
        P "bad_reuse.toml:27: reuse name 'act_x' is reserved: m_act_x would clash with generated code\n"
        P "bad_reuse.toml:28: unknown state 'nowhere' (target of reuse 'again')\n"
        P "bad_reuse.toml:29: state 'z' is listed twice in reuse 'twice'\n"
        P "bad_reuse.toml:30: malformed reuse 'z a' for 'bad' (forms: \"from -> to\", \"a | b -> to\", \"-> to\")\n"
        P "bad_reuse.toml:31: malformed reuse 3 for 'worse' (forms: \"from -> to\", \"a | b -> to\", \"-> to\")\n"
        "iox_gen: 9 error(s); nothing written\n");
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

/* "  ? g: r" is a guard asked (in the order asked), "  a --e--> b" a traced
 * transition, "fire e -> s" the state fire() returned. */
static const char expected_log[] =
    "init -> closed\n"
    "open -> reading\n"
    /* reading.recv = ["[oversized] ...", "[paused] stash", "parse"]: the default */
    "  ? oversized (n=2): 0\n"
    "  ? paused: 0\n"
    "  reading --recv--> reading\n"
    "  reading --idle--> reading\n"
    "fire recv -> reading\n"
    "fire sent -> reading\n"
    /* paused: the second alternative, stash */
    "  ? oversized (n=5): 0\n"
    "  ? paused: 1\n"
    "  reading --recv--> reading\n"
    "fire recv -> reading\n"
    /* [any] timeout = ["[!paused] begin_close -> closing", "rearm"] */
    "  ? paused: 1\n"
    "  reading --timeout--> reading\n"
    "fire timeout -> reading\n"
    "  ? oversized (n=3): 0\n"
    "  ? paused: 0\n"
    "  reading --recv--> reading\n"
    "  reading --output--> writing\n"
    "fire recv -> writing\n"
    /* writing.recv = ["[!paused] stash", "ignore"] */
    "  ? paused: 0\n"
    "  writing --recv--> writing\n"
    "fire recv -> writing\n"
    "  ? paused: 1\n"
    "fire recv -> writing\n"
    "  writing --sent--> reading\n"
    "fire sent -> reading\n"
    "fire none -> reading\n"
    "  ? paused: 0\n"
    "  reading --timeout--> closing\n"
    "fire timeout -> closing\n"
    "fire timeout -> closing\n"
    "  closing --closed--> closed\n"
    "fire closed -> closed\n"
    "fire recv -> closed\n"
    /* [reuse] open: closed -> reading; then the first alternative holds and
     * the second guard is not asked */
    "open -> reading\n"
    "  ? oversized (n=100): 1\n"
    "  reading --recv--> closing\n"
    "fire recv -> closing\n"
    "  closing --closed--> closed\n"
    "fire closed -> closed\n"
    "final=1 replies=1 rearms=2 closes=2 stashed=6 state_size=1\n";

/* `haystack` contains `needle`; prints both when not. */
static void expect_in(const char *haystack, const char *needle)
{
    CU_ASSERT_PTR_NOT_NULL(strstr(haystack, needle));
    if (!strstr(haystack, needle)) fprintf(stderr, "\nmissing: %s\nin:\n%s\n", needle, haystack);
}

IOX_TEST(generator, good_compiles_and_runs)
{
    char *d = tmpdir(), *cmd, *out = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_FATAL(asprintf(&cmd,
        GEN " --out '%1$s' " P "good.toml"
        " && ls '%1$s'"
        " && cc -std=gnu11 -Wall -Wextra -Werror -c '%1$s/echo_conn_machine.c' -o '%1$s/m.o'"
        " && cc -std=gnu11 -Wall -Wextra -Werror -I'%1$s' -c " P "good_driver.c -o '%1$s/d.o'"
        " && cc -o '%1$s/driver' '%1$s/m.o' '%1$s/d.o' 1>&2"
        " && " GEN " --out '%1$s/u8' " P "good_u8.toml"
        " && cc -std=gnu11 -Wall -Wextra -Werror -c '%1$s/u8/tiny_machine.c' -o '%1$s/u8/t.o' 1>&2", d) >= 0);
    int rc = run(cmd, &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out, "echo_conn.pml\necho_conn_machine.c\necho_conn_machine.dot\necho_conn_machine.h\n");
    free(cmd);
    free(out);
    if (rc != 0) { rmtree(d); return; }

    /* Guards on the .dot edges: `event [guard] / action`, [else] for the default. */
    CU_ASSERT_FATAL(asprintf(&cmd, "cat '%s/echo_conn_machine.dot'", d) >= 0);
    CU_ASSERT_EQUAL(run(cmd, &out), 0);
    expect_in(out, "reading -> closing [label=\"recv [oversized] / begin_close\"];\n"
                   "    reading -> reading [label=\"recv [paused] / stash\"];\n"
                   "    reading -> reading [label=\"recv [else] / parse\"];\n");
    expect_in(out, "writing -> writing [label=\"recv [!paused] / stash\"];\n"
                   "    writing -> reading [label=\"sent\"];\n");
    expect_in(out, "reading -> writing [label=\"output / send_reply\"];\n");
    free(cmd);
    free(out);
    /* dot_edges = "merged": one edge per pair of states, its labels one per
     * line; a pair with one label is drawn as before. */
    CU_ASSERT_FATAL(asprintf(&cmd, "cat '%s/u8/tiny_machine.dot'", d) >= 0);
    CU_ASSERT_EQUAL(run(cmd, &out), 0);
    expect_in(out, "    idle -> busy [label=\"go / work\"];\n"
                   "    busy -> busy [label=\"go / work\"];\n"
                   "    busy -> done [label=\"end [ok]\\lskip\\l\"];\n"
                   "    busy -> failed [label=\"end [else]\"];\n}\n");
    free(cmd);
    free(out);

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

    /* A checked [reuse] from a state it does not leave: abort(). */
    CU_ASSERT_FATAL(asprintf(&cmd, "'%s/driver' badopen 2>&1 >/dev/null; echo \"rc=$?\"", d) >= 0);
    rc = run(cmd, &out);
    CU_ASSERT_EQUAL(rc, 0);
    expect_in(out, "echo_conn_open: called in state reading; the spec allows it only from: closed\n");
    expect_in(out, "rc=134\n"); /* 128 + SIGABRT */
    free(cmd);
    free(out);
    rmtree(d);
}

#define CHECK "/usr/bin/python3 gen/check_state_writes.py --spec " P "good.toml "
#define USE "(use echo_conn_fire() or a [reuse] function)"

/* Every write of the state outside the generated code is reported, with its
 * line: through a context variable, a context member, a constant assigned,
 * ++/--/compound assignments, a designated initializer, and a pointer to the
 * state handed to anything but fire() and the [reuse] functions. */
IOX_TEST(generator, state_writes_reported)
{
    char *out = NULL;
    int rc = run(CHECK P "writes_bad.c 2>&1 >/dev/null", &out);
    CU_ASSERT_EQUAL(rc, 1);
    const char *expected =
        P "writes_bad.c:14: write of the echo_conn state outside the generated code: c->state = " USE "\n"
        P "writes_bad.c:20: write of the echo_conn state outside the generated code: t->s[i].state = " USE "\n"
        P "writes_bad.c:25: write of the echo_conn state outside the generated code: h->conn->state = " USE "\n"
        P "writes_bad.c:30: write of the echo_conn state outside the generated code: c->state++ " USE "\n"
        P "writes_bad.c:31: write of the echo_conn state outside the generated code: --c->state " USE "\n"
        P "writes_bad.c:32: write of the echo_conn state outside the generated code: c->state |= " USE "\n"
        P "writes_bad.c:37: address of the echo_conn state taken outside echo_conn_fire() and the "
        "[reuse] functions: &c->state (passed to poke())\n"
        P "writes_bad.c:38: address of the echo_conn state taken outside echo_conn_fire() and the "
        "[reuse] functions: &c->state\n"
        P "writes_bad.c:45: write of the echo_conn state outside the generated code: a.state = " USE "\n"
        P "writes_bad.c:46: write of the echo_conn state outside the generated code: b[1].state = " USE "\n"
        P "writes_bad.c:51: write of the echo_conn state outside the generated code: "
        "((struct echo_ctx*)x)->state = " USE "\n"
        P "writes_bad.c:55: write of the echo_conn state outside the generated code: .state = " USE "\n"
        "check_state_writes: 12 write(s) of a machine state outside the generated code\n";
    CU_ASSERT_STRING_EQUAL(out, expected);
    if (strcmp(out, expected) != 0) fprintf(stderr, "\nexpected:\n%s--- got:\n%s---\n", expected, out);
    free(out);
}

/* Reads, fire() and [reuse] calls, unrelated `state` fields, comments and
 * strings, generated files, and the good driver: nothing to report. */
IOX_TEST(generator, state_writes_clean)
{
    char *out = NULL;
    int rc = run(CHECK P "writes_clean.c " P "writes_generated.c " P "good_driver.c 2>&1", &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    free(out);
}

/* The runtime itself, for the http_conn machine: no code outside generated/
 * writes a connection's state — the slot table, iox_conn_open, the server,
 * the file stream and the playground reach it only through http_conn_fire()
 * and the spec's [reuse] functions (http_conn_free, http_conn_open). The
 * headers go first, so `hs->conns[i].state` is recognised through the
 * member's declared type. Only http_conn's spec is given: pg_conn and
 * file_stream are checked by their own case. */
#define HTTP_WRITES "/usr/bin/python3 gen/check_state_writes.py --spec spec/machines/http_conn.toml " \
                    "include/ioxide/*.h runtime/http/*.h "

IOX_TEST(generator, machine_state_writes_http)
{
    char *out = NULL;
    int rc = run(HTTP_WRITES "runtime/http/*.c runtime/file/*.c examples/playground/*.c 2>&1", &out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    if (rc != 0 || out[0])
        fprintf(stderr, "\n  gen/check_state_writes.py (exit %d): set the http_conn state with "
                "http_conn_fire() or a [reuse] function of spec/machines/http_conn.toml:\n%s", rc, out);
    free(out);
}

/* So that the case above cannot pass vacuously (the spec losing its
 * state_field, the headers no longer declaring the context): copies of
 * conn.c and http_server.c with a write planted at the end of each — through
 * a context pointer and through the table's member, neither naming one of
 * the machine's constants — must be reported, and nothing else. */
IOX_TEST(generator, machine_state_writes_http_planted)
{
    char *d = tmpdir(), *cmd, *out = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_FATAL(asprintf(&cmd,
        "cp runtime/http/conn.c runtime/http/http_server.c '%1$s'/"
        " && printf 'void planted(struct iox_conn *c) { c->state = 0; }\\n' >> '%1$s'/conn.c"
        " && printf 'void planted(struct iox_http_server *hs) { hs->conns[1].state = 0; }\\n' >> '%1$s'/http_server.c"
        " && echo \"lines $(wc -l < '%1$s'/conn.c) $(wc -l < '%1$s'/http_server.c)\""
        " && " HTTP_WRITES "'%1$s'/conn.c '%1$s'/http_server.c 2>&1; echo \"rc=$?\"", d) >= 0);
    int rc = run(cmd, &out);
    CU_ASSERT_EQUAL(rc, 0);
    int l1 = 0, l2 = 0;
    CU_ASSERT_EQUAL_FATAL(sscanf(out, "lines %d %d", &l1, &l2), 2);
    char *want;
    CU_ASSERT_FATAL(asprintf(&want,
        "lines %2$d %3$d\n"
        "%1$s/conn.c:%2$d: write of the http_conn state outside the generated code: c->state = "
        "(use http_conn_fire() or a [reuse] function)\n"
        "%1$s/http_server.c:%3$d: write of the http_conn state outside the generated code: "
        "hs->conns[1].state = (use http_conn_fire() or a [reuse] function)\n"
        "check_state_writes: 2 write(s) of a machine state outside the generated code\n"
        "rc=1\n", d, l1, l2) >= 0);
    CU_ASSERT_STRING_EQUAL(out, want);
    if (strcmp(out, want) != 0) fprintf(stderr, "\nexpected:\n%s--- got:\n%s---\n", want, out);
    free(want);
    free(out);
    free(cmd);
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
        " && for f in echo_conn_machine.h echo_conn_machine.c echo_conn_machine.dot echo_conn.pml;"
        " do cmp '%s'/$f '%s'/$f || exit 1; done"
        " && ! grep -l -e '%s' -e \"$PWD\" '%s'/*",
        a, b, a, b, a, a) >= 0);
    CU_ASSERT_EQUAL(run(cmd, NULL), 0);
    free(cmd);
    rmtree(a);
    rmtree(b);
}

IOX_SUITE(generator, NULL, NULL);
