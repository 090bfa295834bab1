/* script_runner.c — the core of the completion-script runner; see
 * script_runner.h for the format. */
#include "script_runner.h"
#include "iox_test.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SR_MAXS = 64 };
static unsigned char took[SR_MAXS][SR_MAXS];     /* this replay */
static unsigned char reached[SR_MAXS];           /* this corpus */
static unsigned long long pairs[SR_MAXS][SR_MAXS];   /* this corpus */

void sr_took(int from, int event, int to)
{
    if (from < 0 || from >= SR_MAXS || event < 0 || event >= SR_MAXS || to < 0 || to >= SR_MAXS) return;
    took[from][event] = 1;
    pairs[from][event]++;
    reached[from] = reached[to] = 1;
}

int sr_quoted(const char **p, struct sbuf *out)
{
    const char *s = *p;
    if (*s != '"') return -1;
    s++;
    const char *b = s;
    while (*s && *s != '"') s += (*s == '\\' && s[1]) ? 2 : 1;
    if (*s != '"') return -1;
    sb_unescape(out, b, (size_t)(s - b));
    if (!out->s) sb_put(out, "", 0);
    *p = s + 1;
    return 0;
}

static int find_name(const char *const *names, int n, const char *nm)
{
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(names[i], nm)) return i;
    return -1;
}

/* The core's expectations; 1 when st is one, 0 when not, -1 malformed. */
static int parse_core(const struct sr_vocab *v, struct sr_step *st, char *why, size_t wl)
{
    if (strcmp(st->verb, "expect")) return 0;
    char nm[SR_WORD * 2];
    if (!strcmp(st->arg, "state")) {
        if (sscanf(st->rest, "state %95s", nm) != 1) { snprintf(why, wl, "expect state NAME"); return -1; }
        if ((st->state = find_name(v->state_names, v->nstates, nm)) < 0) {
            snprintf(why, wl, "no state \"%s\" in %s", nm, v->machine);
            return -1;
        }
        return 1;
    }
    if (!strcmp(st->arg, "took")) {
        char *sl;
        if (sscanf(st->rest, "took %95s", nm) != 1 || !(sl = strchr(nm, '/'))) {
            snprintf(why, wl, "expect took FROM/EVENT");
            return -1;
        }
        *sl = 0;
        if ((st->from = find_name(v->state_names, v->nstates, nm)) < 0) {
            snprintf(why, wl, "no state \"%s\" in %s", nm, v->machine);
            return -1;
        }
        if ((st->event = find_name(v->event_names, v->nevents, sl + 1)) < 0) {
            snprintf(why, wl, "no event \"%s\" in %s", sl + 1, v->machine);
            return -1;
        }
        return 1;
    }
    return 0;
}

static int run_core(const struct sr_vocab *v, void *w, const struct sr_step *st, char *why, size_t wl)
{
    if (!strcmp(st->arg, "state")) {
        int s = v->state(w);
        if (s != st->state) {
            snprintf(why, wl, "state %s, want %s", s < 0 ? "(gone)" : v->state_names[s], v->state_names[st->state]);
            return SR_FAIL;
        }
        return SR_OK;
    }
    if (!took[st->from][st->event]) {
        snprintf(why, wl, "transition %s/%s not taken", v->state_names[st->from], v->event_names[st->event]);
        return SR_FAIL;
    }
    return SR_OK;
}

static void mark_state(const struct sr_vocab *v, void *w)
{
    int s = v->state(w);
    if (s >= 0 && s < SR_MAXS) reached[s] = 1;
}

/* Parse one line into a new step of sc. 0, or -1 with why. */
static int add_step(const struct sr_vocab *v, struct sr_script *sc, const char *line, int ln, int lenient,
                    char *why, size_t wl)
{
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? sc->cap * 2 : 32;
        sc->st = realloc(sc->st, (size_t)sc->cap * sizeof *sc->st);
        if (!sc->st) abort();
    }
    struct sr_step *st = &sc->st[sc->n];
    memset(st, 0, sizeof *st);
    st->line = ln;
    st->lenient = lenient;
    st->text = strdup(line);
    if (sscanf(line, "%47s %47s", st->verb, st->arg) < 1) { free(st->text); snprintf(why, wl, "empty step"); return -1; }
    const char *r = strchr(st->text, ' ');
    st->rest = r ? r + 1 : st->text + strlen(st->text);
    int k = parse_core(v, st, why, wl);
    if (k == 0) k = v->parse(st, why, wl) ? -1 : 1;
    if (k < 0) { free(st->text); free(st->data.s); return -1; }
    sc->n++;
    return 0;
}

static void free_script(struct sr_script *sc)
{
    for (int i = 0; i < sc->n; i++) { free(sc->st[i].text); free(sc->st[i].data.s); }
    sc->n = 0;
}

static int is_core(const struct sr_step *st)
{
    return !strcmp(st->verb, "expect") && (!strcmp(st->arg, "state") || !strcmp(st->arg, "took"));
}

/* Replay once; split_step/split_at choose the cut. 0, or -1 with why and
 * the failing line in *line. *skipped counts lenient steps skipped. */
static int replay(const struct sr_vocab *v, const struct sr_script *sc, int split_step, size_t split_at, int *line,
                  unsigned *skipped, char *why, size_t wl)
{
    memset(took, 0, sizeof took);
    *line = sc->line;
    void *w = v->open(sc, why, wl);
    if (!w) return -1;
    mark_state(v, w);
    int rc = 0;
    for (int i = 0; i < sc->n && !rc; i++) {
        const struct sr_step *st = &sc->st[i];
        *line = st->line;
        int k = is_core(st) ? run_core(v, w, st, why, wl) : v->step(w, st, i == split_step ? split_at : 0, why, wl);
        if (k == SR_SKIP && st->lenient) { (*skipped)++; k = SR_OK; }
        rc = k == SR_OK ? 0 : -1;
        mark_state(v, w);
    }
    if (!rc) {
        *line = sc->line;
        rc = v->finish(w, why, wl);
    }
    v->close(w);
    return rc;
}

/* One case whole and at every cut; 1 when it failed. */
static unsigned run_case(const struct sr_vocab *v, struct sr_script *sc, unsigned *runs)
{
    char why[600];
    int line;
    unsigned skipped = 0;
    if (replay(v, sc, -1, 0, &line, &skipped, why, sizeof why)) {
        fprintf(stderr, "\n  %s:%d: %s: %s\n", sc->file, line, sc->name, why);
        CU_FAIL("a case failed (file.md:line above)");
        return 1;
    }
    (*runs)++;
    for (int i = 0; i < sc->n; i++) {
        if (!sc->st[i].split) continue;
        for (size_t k = 1; k < sc->st[i].data.n; k++) {
            (*runs)++;
            if (replay(v, sc, i, k, &line, &skipped, why, sizeof why)) {
                fprintf(stderr, "\n  %s:%d: %s (line %d cut at byte %zu): %s\n", sc->file, line, sc->name,
                        sc->st[i].line, k, why);
                CU_FAIL("a cut of a case failed (file.md:line above)");
                return 1;
            }
        }
    }
    CU_PASS("case passes whole and at every cut");
    return 0;
}

unsigned sr_run_file(const struct sr_vocab *v, const char *path, const char *rel, unsigned *cases, unsigned *runs)
{
    FILE *fp = fopen(path, "r");
    if (!fp) { fprintf(stderr, "\n  %s: cannot open\n", rel); return 1; }
    struct sr_script sc;
    memset(&sc, 0, sizeof sc);
    sc.file = rel;
    unsigned failures = 0;
    char buf[8192];
    int ln = 0, in_script = 0, have = 0, bad = 0;
    while (fgets(buf, sizeof buf, fp)) {
        ln++;
        buf[strcspn(buf, "\n")] = 0;
        if (!strncmp(buf, "## ", 3)) {
            if (have) { (*cases)++; failures += bad ? 0 : run_case(v, &sc, runs); free_script(&sc); }
            snprintf(sc.name, sizeof sc.name, "%.150s", buf + 3);
            sc.line = ln;
            have = 1;
            bad = 0;
            continue;
        }
        if (!strncmp(buf, "```script", 9)) {
            if (!have) { fprintf(stderr, "\n  %s:%d: a script before any ## case\n", rel, ln); failures++; }
            in_script = 1;
            continue;
        }
        if (!strncmp(buf, "```", 3)) { in_script = 0; continue; }
        if (!in_script) continue;
        char *s = buf;
        while (*s == ' ') s++;
        if (!*s || *s == '#') continue;
        char why[200];
        if (add_step(v, &sc, s, ln, 0, why, sizeof why)) {
            fprintf(stderr, "\n  %s:%d: %s\n", rel, ln, why);
            failures++;
            bad = 1;
        }
    }
    if (have) { (*cases)++; failures += bad ? 0 : run_case(v, &sc, runs); free_script(&sc); }
    fclose(fp);
    free(sc.st);
    return failures;
}

unsigned sr_run_corpus(const struct sr_vocab *v, unsigned *cases, unsigned *runs)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/tests/data/machines/%s", iox_test_src_dir(), v->machine);
    char *names[64];
    int nf = corpus_md_files(dir, names, 64);
    if (nf <= 0) { fprintf(stderr, "\n  %s: no corpus\n", dir); return 1; }
    memset(reached, 0, sizeof reached);
    memset(pairs, 0, sizeof pairs);
    unsigned failures = 0;
    for (int f = 0; f < nf; f++) {
        char path[PATH_MAX + 80], rel[200];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        snprintf(rel, sizeof rel, "tests/data/machines/%s/%s", v->machine, names[f]);
        failures += sr_run_file(v, path, rel, cases, runs);
        free(names[f]);
    }
    /* Every state some case reached, but those the vocabulary excuses. */
    unsigned npairs = 0;
    for (int a = 0; a < v->nstates && a < SR_MAXS; a++)
        for (int e = 0; e < v->nevents && e < SR_MAXS; e++) npairs += pairs[a][e] != 0;
    for (int s = 0; s < v->nstates && s < SR_MAXS; s++) {
        if (reached[s]) continue;
        int ok = 0;
        for (const char *const *u = v->unreached_ok; u && *u; u++) ok |= !strcmp(*u, v->state_names[s]);
        if (!ok) {
            fprintf(stderr, "\n  tests/data/machines/%s: no case reaches state %s\n", v->machine, v->state_names[s]);
            failures++;
        }
    }
    fprintf(stderr, " [%s: %u cases, %u replays, %u transitions] ", v->machine, *cases, *runs, npairs);
    if (getenv("IOX_SIM_STATS")) {
        fprintf(stderr, "\n  %s transitions taken:", v->machine);
        for (int a = 0; a < v->nstates && a < SR_MAXS; a++)
            for (int e = 0; e < v->nevents && e < SR_MAXS; e++)
                if (pairs[a][e]) fprintf(stderr, " %s/%s", v->state_names[a], v->event_names[e]);
        fprintf(stderr, "\n");
    }
    return failures;
}

int sr_run_trail(const struct sr_vocab *v, const char *rel, unsigned *applied, unsigned *skipped)
{
    char path[PATH_MAX];
    if (rel[0] == '/') snprintf(path, sizeof path, "%s", rel);
    else snprintf(path, sizeof path, "%s/%s", iox_test_src_dir(), rel);
    FILE *fp = fopen(path, "r");
    if (!fp) { fprintf(stderr, "\n  %s: cannot open\n", rel); return -1; }
    struct sr_script sc;
    memset(&sc, 0, sizeof sc);
    sc.file = rel;
    snprintf(sc.name, sizeof sc.name, "trail");
    sc.line = 1;
    /* mk/trail.py's report: the lines under "completion script"; a bare
     * script (trail.py --script): every line. */
    char buf[8192];
    int ln = 0, report = 0, in_script = 0, rc = 0;
    while (fgets(buf, sizeof buf, fp)) {
        ln++;
        buf[strcspn(buf, "\n")] = 0;
        if (buf[0] == '#') continue;
        if (!report && !sc.n && !strncmp(buf, "trail (", 7)) { report = 1; continue; }
        if (report && !in_script) { in_script = !strncmp(buf, "completion script", 17); continue; }
        char *s = buf;
        while (*s == ' ') s++;
        if (report && (!strncmp(s, "spin:", 5) || !strncmp(s, "at the end:", 11) || !strncmp(s, "...", 3))) continue;
        if (!*s || *s == '#') continue;
        char line[8192], why[200];
        if (!v->from_trail(s, line, sizeof line)) continue;
        if (add_step(v, &sc, line, ln, 1, why, sizeof why)) {
            fprintf(stderr, "\n  %s:%d: \"%s\" → \"%s\": %s\n", rel, ln, s, line, why);
            rc = -1;
        }
    }
    fclose(fp);
    if (!rc) {
        int fl;
        char why[600];
        unsigned sk = 0;
        if (replay(v, &sc, -1, 0, &fl, &sk, why, sizeof why)) {
            fprintf(stderr, "\n  %s:%d: trail replay: %s\n", rel, fl, why);
            rc = -1;
        }
        *skipped = sk;
        *applied = (unsigned)sc.n - sk;
    }
    free_script(&sc);
    free(sc.st);
    return rc;
}
