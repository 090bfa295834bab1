#!/usr/bin/env python3
"""iox_gen.py — turn ioxide machine specs (TOML) into C state machines.

Usage: gen/iox_gen.py --out DIR [--svg DIR] [--check] SPEC.toml...

For each spec `spec/machines/NAME.toml` whose [machine] name is NAME, writes
DIR/NAME_machine.h, DIR/NAME_machine.c, DIR/NAME_machine.dot and the Promela
model DIR/NAME.pml (gen/iox_model.py; docs/verification.md). The format
and the generated API are described in docs/machine-spec.md.

Every spec is validated first; each problem is printed on stderr as
`path:line: message`, every problem in every spec is reported, and when there
is any, nothing is written and the exit status is 1. Output is deterministic:
spec order is kept, nothing depends on time, host or the output directory, and
spec paths are written as given (an absolute path inside the repository is
shown relative to the repository root).

Needs only the Python 3.11 standard library (tomllib) and Jinja2.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib

import jinja2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iox_model  # noqa: E402  (beside this file, installed with it)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
MAX_FOLLOWUPS = 64

IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IDENT_TOKEN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TRANSITION_RE = re.compile(
    r"^\s*(?P<action>[A-Za-z_][A-Za-z0-9_]*)?\s*(?:->\s*(?P<target>[A-Za-z_][A-Za-z0-9_]*))?\s*$")
C_KEYWORDS = set("""auto break case char const continue default do double else enum
extern float for goto if inline int long register restrict return short signed
sizeof static struct switch typedef union unsigned void volatile while _Bool
_Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn
_Static_assert _Thread_local""".split())
GUARDED_RE = re.compile(
    r"^\s*\[\s*(?P<neg>!)?\s*(?P<guard>[A-Za-z_][A-Za-z0-9_]*)\s*\]\s*(?P<rest>.*)$")
REUSE_RE = re.compile(
    r"^\s*(?P<src>[A-Za-z_][A-Za-z0-9_]*(?:\s*\|\s*[A-Za-z_][A-Za-z0-9_]*)*)?\s*->\s*"
    r"(?P<target>[A-Za-z_][A-Za-z0-9_]*)\s*$")
MACHINE_KEYS = ["name", "doc", "context", "arg", "initial", "final"]
MACHINE_OPTIONAL = ["state_type", "state_field", "dot_edges"]
STATE_TYPES = ("uint8_t", "enum")
DOT_EDGES = ("each", "merged")
TOP_TABLES = ["machine", "events", "guards", "actions", "any", "states", "reuse", "model"]
STATE_RESERVED = ("doc", "ignore")
TRANSITION_FORMS = '"action -> next", "action", "-> next"'
ALT_FORMS = '"[guard] T", "[!guard] T", "T", "ignore"; T is ' + TRANSITION_FORMS
REUSE_FORMS = '"from -> to", "a | b -> to", "-> to"'
# Names a [reuse] function may not take: NAME_<these> are generated already.
REUSE_RESERVED = ("fire", "trace", "is_final", "state_names", "event_names", "bug",
                  "reuse_bug", "state_t")
REUSE_RESERVED_PREFIXES = ("act_", "guard_")


# --------------------------------------------------------------------------
# Line index: tomllib keeps no positions, so scan the raw text for the line of
# every [table] header and every `key =`. It understands comments, strings,
# dotted and quoted keys, and skips the inside of multi-line arrays, inline
# tables and multi-line strings; that is all a machine spec needs.

_BARE_OR_QUOTED = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_KEY_RE = re.compile(r"^\s*(" + _BARE_OR_QUOTED + r"(?:\s*\.\s*" + _BARE_OR_QUOTED + r")*)\s*=(.*)$")
_HEADER_RE = re.compile(r"^\s*\[(?!\[)\s*(" + _BARE_OR_QUOTED + r"(?:\s*\.\s*" + _BARE_OR_QUOTED + r")*)\s*\]")


def _split_key(k):
    parts = re.findall(_BARE_OR_QUOTED, k)
    out = []
    for p in parts:
        if p[0] in "\"'":
            p = p[1:-1]
        out.append(p)
    return tuple(out)


def _scan_value(rest, state):
    """Advance the bracket depth / multi-line string state over `rest`."""
    i, n = 0, len(rest)
    while i < n:
        if state["ml"]:
            j = rest.find(state["ml"], i)
            if j < 0:
                return
            i = j + 3
            state["ml"] = None
            continue
        c = rest[i]
        if c == "#":
            return
        if rest.startswith('"""', i) or rest.startswith("'''", i):
            state["ml"] = rest[i:i + 3]
            i += 3
            continue
        if c == '"':
            i += 1
            while i < n and rest[i] != '"':
                i += 2 if rest[i] == "\\" else 1
            i += 1
            continue
        if c == "'":
            j = rest.find("'", i + 1)
            i = n if j < 0 else j + 1
            continue
        if c in "[{":
            state["depth"] += 1
        elif c in "]}":
            state["depth"] = max(0, state["depth"] - 1)
        i += 1


class LineIndex:
    def __init__(self, text):
        self.lines = text.splitlines()
        self.tables = {}   # ("states", "reading") -> line of its header
        self.keys = {}     # ("states", "reading", "recv") -> line of `recv =`
        self.spans = {}    # same key -> (first, last) line of its value
        cur = ()
        st = {"depth": 0, "ml": None}
        open_key = None
        for n, line in enumerate(self.lines, 1):
            if st["ml"] or st["depth"]:
                _scan_value(line, st)
                if open_key and not st["ml"] and not st["depth"]:
                    self.spans[open_key] = (self.spans[open_key][0], n)
                    open_key = None
                continue
            m = _HEADER_RE.match(line)
            if m:
                cur = _split_key(m.group(1))
                for i in range(1, len(cur) + 1):
                    self.tables.setdefault(cur[:i], n)
                continue
            m = _KEY_RE.match(line)
            if m:
                path = cur + _split_key(m.group(1))
                for i in range(len(cur) + 1, len(path)):
                    self.tables.setdefault(path[:i], n)
                self.keys.setdefault(path, n)
                self.spans[path] = (n, n)
                _scan_value(m.group(2), st)
                if st["ml"] or st["depth"]:
                    open_key = path

    def table(self, *path):
        return self.tables.get(tuple(path), 1)

    def key(self, *path):
        """Line of a key; falls back to its table, then to line 1."""
        path = tuple(path)
        if path in self.keys:
            return self.keys[path]
        if path in self.tables:
            return self.tables[path]
        while path:
            path = path[:-1]
            if path in self.tables:
                return self.tables[path]
        return 1

    def element(self, name, *path):
        """Line of the string `name` inside the (array) value of key `path`."""
        path = tuple(path)
        first, last = self.spans.get(path, (None, None))
        if first is None:
            return self.key(*path)
        pat = re.compile(r"""["']""" + re.escape(name) + r"""["']""")
        for n in range(first, last + 1):
            text = self.lines[n - 1]
            if n == first:
                text = text.split("=", 1)[-1]
            if pat.search(text):
                return n
        return first

    def elements(self, *path):
        """Line of each string element, in order, of the array value of key
        `path` (nested arrays and inline tables are not looked into)."""
        path = tuple(path)
        first, last = self.spans.get(path, (None, None))
        if first is None:
            return []
        out, depth, n = [], 0, first
        text = "\n".join(self.lines[first - 1:last])
        i = text.find("=") + 1
        while i < len(text):
            c = text[i]
            if c == "\n":
                n += 1
            elif c == "#":
                j = text.find("\n", i)
                i = len(text) if j < 0 else j
                continue
            elif c in "[{":
                depth += 1
            elif c in "]}":
                depth -= 1
            elif c in "\"'":
                q = text[i:i + 3] if text.startswith(c * 3, i) else c
                if depth == 1:
                    out.append(n)
                j = i + len(q)
                while j < len(text) and not text.startswith(q, j):
                    if text[j] == "\\" and c == '"':
                        j += 1
                    j += 1
                n += text.count("\n", i, j)
                i = j + len(q)
                continue
            i += 1
        return out


# --------------------------------------------------------------------------
# Model


class Alt:
    """One alternative of a transition: taken when its guard holds (or always,
    when it has none); either a transition proper or an ignore."""
    def __init__(self, text, guard, negate, action, target, ignore, line):
        self.text = text          # as written, for messages
        self.guard = guard        # guard name or None
        self.negate = negate      # [!guard]
        self.action = action      # action name or None
        self.target = target      # state name (None means stay)
        self.ignore = ignore      # "ignore": no action, state unchanged, chain ends
        self.line = line          # spec line of the alternative

    @property
    def cond(self):
        return None if self.guard is None else ("!" if self.negate else "") + self.guard


class Transition:
    def __init__(self, event, alts, line, source):
        self.event = event        # event name
        self.alts = alts          # [Alt], in spec order; the first that holds is taken
        self.line = line          # spec line of the key that made it
        self.source = source      # "state" or "any"

    @property
    def guarded(self):
        """False for the plain forms: one unguarded alternative."""
        return any(a.guard is not None for a in self.alts)


class Reuse:
    """A [reuse] entry: a generated function that sets the state outside the
    dispatch — from one of `sources` (checked), or from anything (sources empty)."""
    def __init__(self, name, sources, target, line):
        self.name = name
        self.sources = sources
        self.target = target
        self.line = line


class State:
    def __init__(self, name, doc, line):
        self.name = name
        self.doc = doc
        self.line = line
        self.final = False
        self.transitions = {}     # event -> Transition (after [any] expansion)
        self.ignored = {}         # event -> line
        self.explicit = {}        # event -> Transition from the state itself


class Machine:
    pass


class Errors:
    def __init__(self, path):
        self.path = path
        self.items = []

    def add(self, line, msg):
        self.items.append((line, msg))

    def sorted(self):
        seen, out = set(), []
        for line, msg in sorted(self.items, key=lambda t: t[0]):
            if (line, msg) not in seen:
                seen.add((line, msg))
                out.append(f"{self.path}:{line}: {msg}")
        return out


def display_path(path):
    """The spec path as given; an absolute path inside the repo is shown
    relative to the repo root so output does not depend on the checkout."""
    p = os.path.normpath(path)
    if os.path.isabs(p):
        for root in (REPO_ROOT, os.getcwd()):
            rel = os.path.relpath(p, root)
            if not rel.startswith(".."):
                p = rel
                break
    return p.replace(os.sep, "/")


def load(path):
    """Parse and validate one spec. Returns (Machine or None, [error lines])."""
    shown = display_path(path)
    err = Errors(shown)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        return None, [f"{shown}:1: cannot read spec: {e.strerror}"]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        return None, [f"{shown}:{line}: spec is not valid UTF-8"]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
        if m:
            line = int(m.group(1))
            msg = msg[:m.start()] + f" (column {m.group(2)})"
        else:
            line = max(1, len(text.splitlines()))
            msg = re.sub(r"\s*\(at end of document\)$", " (at end of document)", msg)
        return None, [f"{shown}:{line}: TOML syntax error: {msg}"]
    idx = LineIndex(text)
    m = validate(doc, idx, err, shown)
    errs = err.sorted()
    return (None if errs else m), errs


def _is_str(v):
    return isinstance(v, str)


def _check_ident(err, line, name, what):
    if not isinstance(name, str) or not IDENT_RE.match(name):
        err.add(line, f"invalid C identifier {name!r} ({what})")
        return False
    if name in C_KEYWORDS:
        err.add(line, f"invalid C identifier {name!r} ({what}): a C keyword")
        return False
    return True


def _doc_table(doc, idx, err, table, what, optional=False):
    """[events] / [guards] / [actions]: name -> one-line doc string, in spec order."""
    out = {}
    if table not in doc:
        if not optional:
            err.add(1, f"missing [{table}] table")
        return out
    t = doc[table]
    if not isinstance(t, dict):
        err.add(idx.key(table), f"[{table}] must be a table")
        return out
    upper = {}
    for name, text in t.items():
        line = idx.key(table, name)
        ok = _check_ident(err, line, name, f"{what} name")
        if not _is_str(text):
            err.add(line, f"{what} '{name}' must have a one-line doc string")
            text = ""
        if ok:
            u = name.upper()
            if u in upper:
                err.add(line, f"{what}s '{upper[u]}' and '{name}' both become {u} in C")
            upper[u] = name
        out[name] = text.strip() if _is_str(text) else ""
    return out


def validate(doc, idx, err, shown):
    for k in doc:
        if k not in TOP_TABLES:
            err.add(idx.key(k), f"unknown top-level key or table '{k}' (expected one of: {', '.join(TOP_TABLES)})")

    m = Machine()
    m.spec = shown

    # [machine]
    mt = doc.get("machine")
    if not isinstance(mt, dict):
        err.add(idx.key("machine"), "missing [machine] table")
        mt = {}
    mline = idx.table("machine")
    for k in MACHINE_KEYS:
        if k not in mt:
            err.add(mline, f"[machine] is missing required key '{k}'")
    for k in mt:
        if k not in MACHINE_KEYS and k not in MACHINE_OPTIONAL:
            err.add(idx.key("machine", k), f"unknown key '{k}' in [machine] (expected one of: "
                    f"{', '.join(MACHINE_KEYS + MACHINE_OPTIONAL)})")
    for k in ("name", "context", "arg"):
        if k in mt:
            _check_ident(err, idx.key("machine", k), mt[k], f"machine.{k}")
    for k in ("doc", "initial"):
        if k in mt and not _is_str(mt[k]):
            err.add(idx.key("machine", k), f"machine.{k} must be a string")
    final = mt.get("final", [])
    if "final" in mt and (not isinstance(final, list) or not final or not all(_is_str(x) for x in final)):
        err.add(idx.key("machine", "final"), "machine.final must be a non-empty list of state names")
        final = []
    m.name = mt.get("name", "machine") if _is_str(mt.get("name")) else "machine"
    m.doc = mt.get("doc", "") if _is_str(mt.get("doc")) else ""
    m.context = mt.get("context", "void") if _is_str(mt.get("context")) else "void"
    m.arg = mt.get("arg", "void") if _is_str(mt.get("arg")) else "void"
    m.initial = mt.get("initial") if _is_str(mt.get("initial")) else None
    m.upper = m.name.upper()
    m.state_type = mt.get("state_type", "uint8_t")
    if m.state_type not in STATE_TYPES:
        err.add(idx.key("machine", "state_type"),
                f"machine.state_type must be one of: {', '.join(repr(t) for t in STATE_TYPES)} (got {m.state_type!r})")
        m.state_type = "uint8_t"
    m.typed = m.state_type == "enum"
    # The C type the instance holds its state in, and fire()/reuse functions point at.
    m.state_ctype = f"{m.name}_state_t" if m.typed else "uint8_t"
    m.state_field = None
    if "state_field" in mt and _check_ident(err, idx.key("machine", "state_field"), mt["state_field"],
                                            "machine.state_field"):
        m.state_field = mt["state_field"]
    m.dot_edges = mt.get("dot_edges", "each")
    if m.dot_edges not in DOT_EDGES:
        err.add(idx.key("machine", "dot_edges"),
                f"machine.dot_edges must be one of: {', '.join(repr(t) for t in DOT_EDGES)} (got {m.dot_edges!r})")
        m.dot_edges = "each"

    # [events], [actions]
    m.events = _doc_table(doc, idx, err, "events", "event")
    for name in m.events:
        if name.lower() == "none" or name in STATE_RESERVED:
            err.add(idx.key("events", name), f"event name '{name}' is reserved")
    m.guards = _doc_table(doc, idx, err, "guards", "guard", optional=True)
    m.actions = _doc_table(doc, idx, err, "actions", "action")
    if "ignore" in m.actions:
        err.add(idx.key("actions", "ignore"),
                "action name 'ignore' is reserved (the alternative \"ignore\" ignores the event)")

    # [states]
    st = doc.get("states")
    if not isinstance(st, dict) or not st:
        err.add(idx.key("states"), "missing [states.NAME] tables: a machine needs states")
        st = {}
    m.states = {}
    upper = {}
    for name, body in st.items():
        line = idx.table("states", name)
        if _check_ident(err, line, name, "state name"):
            u = name.upper()
            if u in upper:
                err.add(line, f"states '{upper[u]}' and '{name}' both become {u} in C")
            upper[u] = name
        if not isinstance(body, dict):
            err.add(idx.key("states", name), f"state '{name}' must be a table ([states.{name}])")
            body = {}
        sdoc = body.get("doc", "")
        if not _is_str(sdoc):
            err.add(idx.key("states", name, "doc"), f"state '{name}': doc must be a string")
            sdoc = ""
        m.states[name] = State(name, sdoc.strip(), line)
    if len(m.states) > 255:
        err.add(idx.key("states"), f"{len(m.states)} states: the state is stored in a uint8_t, at most 255")

    def known_state(name, line, where):
        if name not in m.states:
            err.add(line, f"unknown state '{name}' ({where})")
            return False
        return True

    if m.initial is not None:
        known_state(m.initial, idx.key("machine", "initial"), "machine.initial")
    m.final = []
    for f in final:
        if known_state(f, idx.element(f, "machine", "final"), "machine.final") and f not in m.final:
            m.final.append(f)
            m.states[f].final = True

    used_actions = {}
    used_guards = {}
    maybe_used = set()   # names inside malformed transitions
    # A malformed transition or an unknown target hides edges: the graph
    # checks would then report states as unreachable that are not, so they
    # are skipped until those errors are fixed (the event still counts as
    # handled for the coverage check).
    broken = {"edges": False}

    def parse_alt(text, line, key, where, in_list):
        """One alternative: `[guard] T`, `[!guard] T`, `T` or `ignore`, where T
        is a transition. Returns an Alt, or None (reported) when malformed."""
        gm = GUARDED_RE.match(text)
        rest, guard, negate = text, None, False
        if gm:
            rest, guard, negate = gm.group("rest"), gm.group("guard"), bool(gm.group("neg"))
        if rest.strip() == "ignore":
            return Alt(text, guard, negate, None, None, True, line)
        tm = TRANSITION_RE.match(rest)
        if (text.lstrip().startswith("[") and not gm) or not tm or \
                not (tm.group("action") or tm.group("target")) or ("->" in rest and not tm.group("target")):
            if in_list or text.lstrip().startswith("["):
                err.add(line, f"malformed alternative '{text}' for event '{key}' in {where} (forms: {ALT_FORMS})")
            else:
                err.add(line, f"malformed transition '{text}' for event '{key}' in {where} (forms: {TRANSITION_FORMS})")
            return None
        return Alt(text, guard, negate, tm.group("action"), tm.group("target"), False, line)

    def check_alts(alts, line, key, where):
        """Order of a transition's alternatives: the first that holds is taken,
        so every one must be takeable, and a guarded list needs a default."""
        seen, default, covered = {}, None, None
        for a in alts:
            if default is not None:
                err.add(a.line, f"alternative '{a.text}' for '{key}' in {where} comes after the unguarded "
                        f"default '{default.text}': it is never taken")
                continue
            if covered is not None:
                err.add(a.line, f"alternative '{a.text}' for '{key}' in {where} is never taken: "
                        f"[{covered}] and [!{covered}] before it cover every case")
                continue
            if a.guard is None:
                default = a
                continue
            if a.cond in seen:
                err.add(a.line, f"duplicate alternative '{a.text}' for '{key}' in {where}: [{a.cond}] is "
                        f"already tested by '{seen[a.cond].text}' (line {seen[a.cond].line}), so it is never taken")
                continue
            seen[a.cond] = a
            other = a.guard if a.negate else "!" + a.guard
            if other in seen:
                covered = a.guard
        if default is not None or not alts:
            return
        last = alts[-1]
        if covered is None:
            err.add(line, f"guarded transition for '{key}' in {where} has no default: end the list with an "
                    f"unguarded alternative (a transition, or \"ignore\")")
        elif last.guard == covered:
            # [g] a, [!g] b: exhaustive, but the spec asks for the plain form.
            err.add(line, f"guarded transition for '{key}' in {where} has no default: write its last "
                    f"alternative without a guard ('{last.text}' as '{last.text.split(']', 1)[-1].strip()}')")

    def parse_block(body, path, where, owner):
        """Transitions and ignores of one [states.X] or [any] table."""
        trans, ignored, bad = {}, {}, set()
        for key, val in body.items():
            if key == "doc" and path[0] == "states":
                continue
            line = idx.key(*path, key)
            if key == "ignore":
                if not isinstance(val, list) or not all(_is_str(x) for x in val):
                    err.add(line, f"ignore in {where} must be a list of event names")
                    continue
                for ev in val:
                    eline = idx.element(ev, *path, "ignore")
                    if ev not in m.events:
                        err.add(eline, f"unknown event '{ev}' in ignore list of {where}")
                    elif ev in ignored:
                        err.add(eline, f"event '{ev}' is listed twice in ignore list of {where}")
                    else:
                        ignored[ev] = eline
                continue
            if key not in m.events:
                err.add(line, f"unknown event '{key}' in {where}")
                continue
            if _is_str(val):
                texts, lines, in_list = [val], [line], False
            elif isinstance(val, list) and val and all(_is_str(x) for x in val):
                texts, in_list = val, True
                lines = idx.elements(*path, key)
                if len(lines) != len(val):
                    lines = [line] * len(val)
            else:
                err.add(line, f"malformed transition for event '{key}' in {where}: expected a string or a "
                        f"non-empty list of strings (forms: {ALT_FORMS})")
                if isinstance(val, list):
                    maybe_used.update(*(IDENT_TOKEN_RE.findall(x) for x in val if _is_str(x)))
                broken["edges"] = True
                bad.add(key)
                continue
            alts = [parse_alt(t, ln, key, where, in_list) for t, ln in zip(texts, lines)]
            if any(a is None for a in alts):
                # The names in it may be the uses of an action or guard:
                # "never used" would be noise until it is fixed.
                maybe_used.update(*(IDENT_TOKEN_RE.findall(t) for t in texts))
                broken["edges"] = True
                bad.add(key)
                continue
            for a in alts:
                if a.target is not None:
                    if not known_state(a.target, a.line, f"target of '{key}' in {where}"):
                        broken["edges"] = True
                if a.action is not None:
                    if a.action not in m.actions:
                        err.add(a.line, f"missing action '{a.action}': used on '{key}' in {where} but not "
                                f"declared in [actions]")
                    used_actions.setdefault(a.action, a.line)
                if a.guard is not None:
                    if a.guard not in m.guards:
                        err.add(a.line, f"unknown guard '{a.guard}': used on '{key}' in {where} but not "
                                f"declared in [guards]")
                    used_guards.setdefault(a.guard, a.line)
            check_alts(alts, line, key, where)
            trans[key] = Transition(key, alts, line, owner)
        for ev, eline in ignored.items():
            if ev in trans or ev in bad:
                err.add(eline, f"event '{ev}' is both handled and ignored in {where}")
        return trans, ignored, bad

    anyt = doc.get("any", {})
    if not isinstance(anyt, dict):
        err.add(idx.key("any"), "[any] must be a table")
        anyt = {}
    any_trans, any_ignored, any_bad = parse_block(anyt, ("any",), "[any]", "any")

    for name, s in m.states.items():
        body = st[name] if isinstance(st[name], dict) else {}
        trans, ignored, bad = parse_block(body, ("states", name), f"state '{name}'", "state")
        s.explicit = trans
        if s.final:
            for ev, t in trans.items():
                err.add(t.line, f"final state '{name}' has a transition on '{ev}'; every event is ignored in a final state")
            s.transitions = {}
            s.ignored = {ev: s.line for ev in m.events}
            s.ignored.update(ignored)
            continue
        s.ignored = dict(ignored)
        s.transitions = dict(trans)
        for ev, t in any_trans.items():
            if ev not in s.transitions and ev not in s.ignored:
                s.transitions[ev] = t
        for ev, eline in any_ignored.items():
            if ev not in s.transitions and ev not in s.ignored:
                s.ignored[ev] = eline
        missing = [ev for ev in m.events if ev not in s.transitions and ev not in s.ignored
                   and ev not in bad and ev not in any_bad]
        if missing:
            err.add(s.line, f"state '{name}' neither handles nor ignores events: {', '.join(missing)}")

    for a in m.actions:
        if a not in used_actions and a not in maybe_used and a != "ignore":
            err.add(idx.key("actions", a), f"action '{a}' is declared but never used")
    for g in m.guards:
        if g not in used_guards and g not in maybe_used:
            err.add(idx.key("guards", g), f"guard '{g}' is declared but never used")

    # [reuse]: the sanctioned writes of the state outside the dispatch.
    m.reuse = []
    rt = doc.get("reuse", {})
    if not isinstance(rt, dict):
        err.add(idx.key("reuse"), "[reuse] must be a table")
        rt = {}
    for name, val in rt.items():
        line = idx.key("reuse", name)
        if not _check_ident(err, line, name, "reuse name"):
            continue
        if name in REUSE_RESERVED or name.startswith(REUSE_RESERVED_PREFIXES):
            err.add(line, f"reuse name '{name}' is reserved: {m.name}_{name} would clash with generated code")
            continue
        rm = REUSE_RE.match(val) if _is_str(val) else None
        if not rm:
            err.add(line, f"malformed reuse {val!r} for '{name}' (forms: {REUSE_FORMS})")
            broken["edges"] = True
            continue
        sources = [x.strip() for x in rm.group("src").split("|")] if rm.group("src") else []
        ok = known_state(rm.group("target"), line, f"target of reuse '{name}'")
        seen = []
        for x in sources:
            if not known_state(x, line, f"source of reuse '{name}'"):
                ok = False
            elif x in seen:
                err.add(line, f"state '{x}' is listed twice in reuse '{name}'")
            else:
                seen.append(x)
        if not ok:
            broken["edges"] = True
            continue
        m.reuse.append(Reuse(name, seen, rm.group("target"), line))

    # Graph checks, only over resolvable edges: every alternative of every
    # transition is an edge, and so is every checked reuse; an unchecked
    # reuse ("-> to") is another way in, like the initial state.
    def succ(s):
        out = []
        for t in s.transitions.values():
            for a in t.alts:
                if a.ignore:
                    continue
                tgt = a.target or s.name
                if tgt in m.states:
                    out.append(tgt)
        for r in m.reuse:
            if s.name in r.sources:
                out.append(r.target)
        return out

    # [model]: what the actions do to the ring, for the Promela model.
    m.model = iox_model.parse(doc, idx, err, m)

    if broken["edges"]:
        return m
    if m.initial in m.states:
        roots = [m.initial] + [r.target for r in m.reuse if not r.sources]
        seen, todo = set(roots), list(roots)
        while todo:
            for nx in succ(m.states[todo.pop()]):
                if nx not in seen:
                    seen.add(nx)
                    todo.append(nx)
        for name, s in m.states.items():
            if name not in seen:
                err.add(s.line, f"state '{name}' is unreachable from initial state '{m.initial}'")
    if m.final:
        pred = {n: set() for n in m.states}
        for s in m.states.values():
            for nx in succ(s):
                pred[nx].add(s.name)
        seen, todo = set(m.final), list(m.final)
        while todo:
            for p in pred[todo.pop()]:
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        for name, s in m.states.items():
            if name not in seen:
                err.add(s.line, f"state '{name}' has no path to a final state")
    return m


# --------------------------------------------------------------------------
# Emission


def c_comment(text):
    return text.replace("*/", "* /")


def dot_escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot_edges(m):
    """The .dot's edges: one per alternative that is not an ignore, in spec
    order, as (from, to, label); with dot_edges = "merged", one per (from,
    to) pair, where it first appears, carrying every label of the pair."""
    edges = []
    for s in m.states.values():
        for ev in m.events:
            t = s.transitions.get(ev)
            if t is None:
                continue
            for a in t.alts:
                if a.ignore:
                    continue
                label = ev
                if t.guarded:
                    label += f" [{a.cond or 'else'}]"
                if a.action:
                    label += f" / {a.action}"
                edges.append((s.name, a.target or s.name, [label]))
    if m.dot_edges != "merged":
        return edges
    merged = {}
    for src, tgt, labels in edges:
        if (src, tgt) in merged:
            merged[(src, tgt)][2].extend(labels)
        else:
            merged[(src, tgt)] = (src, tgt, list(labels))
    return list(merged.values())


def render(m, env):
    st = list(m.states.values())
    ctx = {
        "dot_edges": dot_edges(m),
        "m": m,
        "states": st,
        "events": list(m.events.items()),
        "actions": list(m.actions.items()),
        "guards": list(m.guards.items()),
        "event_order": list(m.events),
        "max_followups": MAX_FOLLOWUPS,
        "generator": "gen/iox_gen.py",
    }
    out = {}
    for ext in ("h", "c", "dot"):
        out[f"{m.name}_machine.{ext}"] = env.get_template(f"machine.{ext}.j2").render(**ctx)
    out[f"{m.name}.pml"] = iox_model.render(m)
    return out


def make_env():
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["c_comment"] = c_comment
    env.filters["dot"] = dot_escape
    return env


def write_if_changed(path, text):
    data = text.encode("utf-8")
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv=None, prog="gen/iox_gen.py"):
    ap = argparse.ArgumentParser(prog=prog,
                                 description="Generate C state machines from ioxide machine specs (TOML).")
    ap.add_argument("--out", help="directory for NAME_machine.{h,c,dot}")
    ap.add_argument("--svg", help="also render NAME_machine.svg here with `dot -Tsvg` (when graphviz is installed)")
    ap.add_argument("--check", action="store_true", help="validate only, write nothing")
    ap.add_argument("specs", nargs="+", metavar="SPEC.toml")
    a = ap.parse_args(argv)
    if not a.out and not a.check:
        ap.error("--out DIR is required (or --check)")

    machines, errors, names = [], [], {}
    for path in a.specs:
        m, errs = load(path)
        errors.extend(errs)
        if m is None:
            continue
        if m.name in names:
            errors.append(f"{m.spec}:1: machine name '{m.name}' is also used by {names[m.name]}")
            continue
        names[m.name] = m.spec
        machines.append(m)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"iox_gen: {len(errors)} error(s); nothing written", file=sys.stderr)
        return 1
    if a.check:
        return 0

    env = make_env()
    os.makedirs(a.out, exist_ok=True)
    rendered = {}
    for m in machines:
        rendered.update(render(m, env))
    for fname in sorted(rendered):
        write_if_changed(os.path.join(a.out, fname), rendered[fname])

    if a.svg:
        dot = shutil.which("dot")
        if not dot:
            print("iox_gen: graphviz `dot` not found; SVGs not rendered", file=sys.stderr)
        else:
            os.makedirs(a.svg, exist_ok=True)
            for fname in sorted(rendered):
                if fname.endswith(".dot"):
                    svg = os.path.join(a.svg, fname[:-4] + ".svg")
                    r = subprocess.run([dot, "-Tsvg", "-o", svg], input=rendered[fname].encode())
                    if r.returncode != 0:
                        print(f"iox_gen: dot failed on {fname}", file=sys.stderr)
                        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
