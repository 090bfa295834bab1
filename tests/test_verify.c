/* test_verify.c — suite `verify`: SPIN over the machines (mk/verify.sh,
 * docs/verification.md).
 *
 * - every committed spec verifies (safety and liveness);
 * - a mutated spec (tests/data/verify/) is rejected, and the failure prints
 *   its counterexample as events (`event from→to / action`) and a
 *   completion script;
 * - that completion script replays in the simulated ring against the real
 *   http_conn, which handles it: the socket closed exactly once, every
 *   buffer back, no op left (what the mutant broke, the real code keeps).
 *
 * mk/verify.sh keeps a passing result per model (build/verify/NAME/) and
 * reuses it while the model and the verifier are unchanged, so the run
 * after `make verify` (in `make test`) costs nothing; VERIFY_FRESH=1
 * forces a new search. Needs spin (Debian: spin); without it the cases
 * fail with that message. */
#include "iox_test.h"
#include "script_runner.h"
#include "sim_world.h"
#include <ioxide/http_conn.h>
#include <ioxide/reactor.h>
#include <ioxide/seam_sim.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run a shell command in the source tree; its output (stdout and stderr)
 * into *out (malloc'd). Returns the exit status, or -1. */
static int run(const char *cmd, char **out)
{
    char *full;
    if (asprintf(&full, "cd '%s' && { %s; } 2>&1", iox_test_src_dir(), cmd) < 0) return -1;
    FILE *p = popen(full, "r");
    free(full);
    if (!p) return -1;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) { pclose(p); return -1; }
    size_t k;
    while ((k = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (cap - n < 4096) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) break;
            buf = nb;
        }
    }
    buf[n] = 0;
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *tmpdir(void)
{
    static char d[64];
    snprintf(d, sizeof d, "/tmp/iox-verify-XXXXXX");
    return mkdtemp(d);
}

IOX_TEST(verify, committed_specs_verify)
{
    glob_t g;
    char *pat;
    CU_ASSERT_FATAL(asprintf(&pat, "%s/spec/machines/*.toml", iox_test_src_dir()) >= 0);
    CU_ASSERT_FATAL(glob(pat, 0, NULL, &g) == 0);
    free(pat);
    CU_ASSERT(g.gl_pathc >= 3);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char *cmd, *out = NULL;
        CU_ASSERT_FATAL(asprintf(&cmd, "mk/verify.sh --spec '%s'", g.gl_pathv[i]) >= 0);
        int st = run(cmd, &out);
        CU_ASSERT_EQUAL(st, 0);
        CU_ASSERT_PTR_NOT_NULL(out && strstr(out, " ok "));
        if (st != 0) fprintf(stderr, "\n%s: verification failed:\n%s\n", g.gl_pathv[i], out ? out : "");
        free(cmd);
        free(out);
    }
    globfree(&g);
}

/* A mutant must fail, and say how: the failed property, the trail as
 * events, the completion script. `needle` is one line the trail must hold. */
static char *reject(const char *spec, const char *dir, const char *needle)
{
    char *cmd, *out = NULL;
    CU_ASSERT_FATAL(asprintf(&cmd, "VERIFY_DIR='%s' mk/verify.sh --spec %s", dir, spec) >= 0);
    int st = run(cmd, &out);
    free(cmd);
    CU_ASSERT_EQUAL(st, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "FAIL"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "assertion violated"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "completion script"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, needle));
    if (st != 1 || !strstr(out, needle))
        fprintf(stderr, "\n%s: expected a failure with a trail holding \"%s\"; got (status %d):\n%s\n",
                spec, needle, st, out);
    return out;
}

IOX_TEST(verify, mutated_specs_fail_with_a_trail)
{
    char *d = tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    /* The socket is never closed: lingering frees the slot on EOF. */
    char *out = reject("tests/data/verify/http_conn_leak.toml", d, "recv_eof  lingering\u2192closed  / release");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "trail (http_conn)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "(sock!=1)&&(sock!=2)"));   /* the socket is closed */
    free(out);
    /* The stream is never released: a failed read skips abort. */
    out = reject("tests/data/verify/file_stream_unreleased.toml", d, "read_error  reading\u2192failed");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "released==1"));
    free(out);
    /* A stream lingers (SHUT_WR) with an answer still unsent. */
    out = reject("tests/data/verify/stream_conn_linger_owed.toml", d, "close  reading\u2192lingering  / linger");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "trail (stream_conn)"));
    free(out);
    /* A client connection closes its socket while an op is in flight. */
    out = reject("tests/data/verify/stream_client_early_close.toml", d, "op_done  closing\u2192closing_socket  / close_socket");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "trail (stream_client)"));
    free(out);
    char *cmd;
    CU_ASSERT_FATAL(asprintf(&cmd, "rm -rf '%s'", d) >= 0);
    CU_ASSERT_EQUAL(system(cmd), 0);
    free(cmd);
}

/* ---- replaying a trail's completion script in the simulated ring ---- */

#define FD 7

static int app_request(struct iox_conn *c, const struct iox_http_request *req, void *ctx)
{
    (void)req; (void)ctx;
    iox_resp_simple(c, 200, "text/plain", "ok", 2);
    return IOX_HANDLED;
}

static const struct iox_http_app app = {app_request};

struct h {
    struct sim_world w;        /* tests/sim_world.h: simulator, reactor, clock */
    struct iox_http_config hcfg;
    struct iox_http_server *hs;
};

/* One loop turn, with the completions that need no decision (cancel,
 * close, shutdown) — the model's "(end of turn)" steps and `cancel 0`,
 * `close 0`, `shutdown(SHUT_WR) 0`. */
static void turn(struct h *h) { sw_turn(&h->w); }

/* `recv "GET / HTTP/1.1\r\n..."`: the quoted bytes, C escapes undone. */
static size_t unquote(const char *p, char *out, size_t cap)
{
    size_t n = 0;
    const char *q = strchr(p, '"');
    if (!q) return 0;
    for (q++; *q && *q != '"' && n < cap; q++) {
        if (*q != '\\') { out[n++] = *q; continue; }
        q++;
        out[n++] = *q == 'r' ? '\r' : *q == 'n' ? '\n' : *q == '0' ? '\0' : *q;
    }
    return n;
}

/* One line of a completion script. The real machine need not be where the
 * mutant was: a step for an op that is not in flight is skipped (and
 * counted). Returns 1 when applied. */
static int step(struct h *h, const char *line)
{
    char data[512];
    int applied = 1;
    if (!strncmp(line, "recv \"", 6)) {
        size_t n = unquote(line, data, sizeof data);
        applied = iox_sim_recv(h->w.sim, FD, data, n, n) >= 0;
    } else if (!strncmp(line, "recv ", 5)) {
        int res = !strcmp(line + 5, "0") ? 0 : !strcmp(line + 5, "-ENOBUFS") ? -ENOBUFS
                : !strcmp(line + 5, "-ECANCELED") ? -ECANCELED : -ECONNRESET;
        applied = res == -ECANCELED ? 1 : iox_sim_recv_end(h->w.sim, FD, res) == 0;
    } else if (!strcmp(line, "send all")) {
        applied = iox_sim_send(h->w.sim, FD, 0) == 0;
    } else if (!strncmp(line, "send ", 5) && strchr(line, '/')) {
        applied = iox_sim_send(h->w.sim, FD, atoi(line + 5)) == 0;
    } else if (!strncmp(line, "send -", 6)) {
        applied = !strcmp(line, "send -ECANCELED") ? 1 : iox_sim_send(h->w.sim, FD, -EPIPE) == 0;
    } else if (!strcmp(line, "shutdown")) {
        iox_reactor_begin_stop(&h->w.r);
    } else if (!strcmp(line, "timeout")) {
        h->w.now += 10000;
        iox_reactor_advance_clock(&h->w.r, h->w.now);
    } else if (!strcmp(line, "reply")) {
        applied = 0;   /* this app answers every request synchronously */
    }   /* cancel 0, close 0, shutdown(SHUT_WR) 0: the turn completes them */
    turn(h);
    return applied;
}

IOX_TEST(verify, trail_replays_in_the_simulated_ring)
{
    char *d = tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    char *cmd, *out = NULL;
    CU_ASSERT_FATAL(asprintf(&cmd, "VERIFY_DIR='%s' mk/verify.sh --spec tests/data/verify/http_conn_leak.toml"
                             " >/dev/null; cat '%s/http_conn/trail.script'", d, d) >= 0);
    CU_ASSERT_EQUAL(run(cmd, &out), 0);
    free(cmd);
    /* The mutant's counterexample: the server stops, the peer shuts its side. */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "recv 0"));

    struct h h;
    memset(&h, 0, sizeof h);
    h.hcfg.idle_timeout_ms = 1000;
    h.hcfg.linger_ms = 100;
    h.hcfg.max_conns = 4;
    h.hcfg.app = &app;
    CU_ASSERT_FATAL(sw_open(&h.w, 8, 512, 500) == 0);
    CU_ASSERT_FATAL(h.w.r.seam == iox_sim_seam(h.w.sim));   /* the reactor runs on the simulator */
    CU_ASSERT_FATAL(iox_http_server_open(&h.w.r, &h.hcfg, 0, &h.hs) == 0);
    CU_ASSERT_FATAL(iox_http_adopt(h.hs, FD) != NULL);
    turn(&h);

    unsigned lines = 0, applied = 0;
    for (char *save = NULL, *ln = strtok_r(out, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        lines++;
        applied += (unsigned)step(&h, ln);
    }
    CU_ASSERT(lines >= 2);
    CU_ASSERT(applied >= 2);   /* the shutdown and the EOF landed */
    /* The real machine closes the socket (the mutant did not). Past the
     * script: the linger deadline, and any send still owed. */
    for (int k = 0; k < 8 && h.hs->nconns; k++) {
        while (iox_sim_has_op(h.w.sim, IOX_OP_SEND, FD)) { iox_sim_send(h.w.sim, FD, 0); turn(&h); }
        h.w.now += 10000;
        iox_reactor_advance_clock(&h.w.r, h.w.now);
        turn(&h);
    }
    CU_ASSERT_EQUAL(iox_sim_closes(h.w.sim, FD), 1);
    CU_ASSERT_EQUAL(iox_sim_bufs_lent(h.w.sim), 0);
    CU_ASSERT_EQUAL(iox_sim_live_ops(h.w.sim, FD), 0);
    CU_ASSERT_EQUAL(iox_sim_violations(h.w.sim), 0);
    CU_ASSERT_EQUAL(h.hs->nconns, 0);
    if (iox_sim_closes(h.w.sim, FD) != 1 || h.hs->nconns)
        fprintf(stderr, "\n  replay: closes=%u live=%u conns=%u violation=%s\n", iox_sim_closes(h.w.sim, FD),
                iox_sim_live_ops(h.w.sim, FD), h.hs->nconns, iox_sim_last_violation(h.w.sim));
    free(out);
    iox_http_server_close(h.hs);
    sw_close(&h.w);
    /* The same trail through the generic completion-script runner (the
     * http_conn vocabulary of machine_scripts; tests/script_runner.h). */
    extern const struct sr_vocab http_conn_vocab;
    char *script;
    CU_ASSERT_FATAL(asprintf(&script, "%s/http_conn/trail.script", d) >= 0);
    unsigned sr_applied = 0, sr_skipped = 0;
    CU_ASSERT_EQUAL(sr_run_trail(&http_conn_vocab, script, &sr_applied, &sr_skipped), 0);
    CU_ASSERT(sr_applied >= 2);
    free(script);
    CU_ASSERT_FATAL(asprintf(&cmd, "rm -rf '%s'", d) >= 0);
    CU_ASSERT_EQUAL(system(cmd), 0);
    free(cmd);
}

IOX_SUITE(verify, NULL, NULL);
