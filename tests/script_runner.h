/* script_runner.h — completion scripts as data (issue 15 §2), generic over
 * the machine: the core reads a markdown corpus, replays each case through
 * a vocabulary that knows one machine, and cuts every splittable step
 * (a recv's bytes) at every byte.
 *
 * A corpus is tests/data/machines/MACHINE/NAME.md. A case is a "## heading",
 * one sentence on why it exists, and a ```script block, one step a line
 * (blank lines and lines starting with # are skipped; text outside the
 * blocks is prose). What a step means is the vocabulary's; the core only
 * splits a line into its first two words (verb, arg) and keeps the rest.
 * Two steps are the core's, for every machine:
 *   expect state NAME     the machine's state, by its generated name
 *                         (MACHINE_state_names); NAME must exist
 *   expect took FROM/EVENT  that transition ran since the case began
 *                         (counted by the vocabulary's trace hook)
 * Every case is replayed whole, then once per byte boundary of each step
 * the vocabulary marked splittable (st->split with data of n bytes: n - 1
 * replays cutting that step's bytes in two deliveries with a loop turn
 * between). After the last step the vocabulary's `finish` checks the books
 * (every op ended, every buffer back, the socket closed once ...).
 * A failure prints "file.md:line: case: why" (and which cut broke it).
 *
 * Trails: a SPIN counterexample's completion script (what `make verify`
 * prints, mk/trail.py) replays through the same vocabulary (sr_run_trail):
 * each trail line is translated by the vocabulary into a script line (or
 * dropped: the turn completes cancels and closes), run leniently (a step
 * whose op is not in flight in the real machine is skipped and counted),
 * then the books are checked as for a case. */
#ifndef IOX_TEST_SCRIPT_RUNNER_H
#define IOX_TEST_SCRIPT_RUNNER_H
#include "sbuf.h"
#include <stddef.h>

enum { SR_WORD = 48 };

struct sr_step {
    int line;
    char verb[SR_WORD], arg[SR_WORD];  /* the first two words */
    char *text;                /* the whole line (owned) */
    const char *rest;          /* text after the verb (in text) */
    struct sbuf data;          /* bytes the vocabulary built (recv, answers) */
    int has_data;              /* the vocabulary's flag */
    int split;                 /* cut data at every byte on replays */
    int lenient;               /* from a trail: "not in flight" is a skip */
    long num, num2;            /* the vocabulary's numbers */
    int state;                 /* expect state: the index */
    int from, event;           /* expect took */
};

struct sr_script {
    const char *file;
    char name[160];
    int line;
    struct sr_step *st;
    int n, cap;
};

/* SR_SKIP from a lenient step: nothing to apply it to (counted). */
enum { SR_OK = 0, SR_FAIL = -1, SR_SKIP = 1 };

struct sr_vocab {
    const char *machine;       /* the corpus directory: tests/data/machines/<machine> */
    const char *const *state_names;
    int nstates;
    const char *const *event_names;
    int nevents;
    /* Fill st (verb, arg, rest, text, line are set) for the vocabulary's
     * steps; 0, or -1 with why. The core's expectations never reach it. */
    int (*parse)(struct sr_step *st, char *why, size_t wl);
    /* A fresh world for one replay of sc (a vocabulary may read its first
     * steps: a configuration), or NULL with why. */
    void *(*open)(const struct sr_script *sc, char *why, size_t wl);
    /* One step; split cuts its data ([0, split) then the rest; 0: whole).
     * SR_OK, SR_FAIL with why, or SR_SKIP (lenient steps only). */
    int (*step)(void *w, const struct sr_step *st, size_t split, char *why, size_t wl);
    /* The machine's current state (an index into state_names), or -1 when
     * it is gone (its slot freed). */
    int (*state)(void *w);
    /* After the last step: end what is left, check the books. 0 or -1. */
    int (*finish)(void *w, char *why, size_t wl);
    void (*close)(void *w);
    /* A trail line → a script line in out (1), or 0 to drop it. */
    int (*from_trail)(const char *trail_line, char *out, size_t cap);
    /* States no case needs to reach (NULL-terminated; with the reason in
     * the vocabulary's comment), for the coverage check. */
    const char *const *unreached_ok;
};

/* Transitions the running world took (the vocabulary's trace hook calls
 * sr_took); reset at each replay. */
void sr_took(int from, int event, int to);

/* Parse a quoted string with \r \n \t \0 \\ \" \xHH escapes at *p into out;
 * advances *p past it. 0, or -1. */
int sr_quoted(const char **p, struct sbuf *out);

/* Replay every case of tests/data/machines/<v->machine>/NAME.md. Returns the
 * failures (printed); *cases, *runs count the cases and the replays. The
 * states the cases reached are checked against v->state_names: a state no
 * case reached (and not in unreached_ok) is a failure too. */
unsigned sr_run_corpus(const struct sr_vocab *v, unsigned *cases, unsigned *runs);
/* Replay one markdown file (path; rel names it in messages). */
unsigned sr_run_file(const struct sr_vocab *v, const char *path, const char *rel, unsigned *cases, unsigned *runs);
/* Replay a trail file (tests/data/machines/<machine>/trails/NAME.trail:
 * mk/trail.py's output — what `make verify` prints for a failing spec —
 * or just its completion script; lines starting with # are comments;
 * rel is under the source tree, or an absolute path).
 * Returns 0 when the
 * real machine ends with its books balanced; *applied, *skipped count the
 * steps. */
int sr_run_trail(const struct sr_vocab *v, const char *rel, unsigned *applied, unsigned *skipped);

#endif
