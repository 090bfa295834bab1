#!/usr/bin/env python3
"""iox_gen.py — turn ioxide machine specs (TOML) into C state machines.

Usage: gen/iox_gen.py --out DIR [--svg DIR] [--check] SPEC.toml...

For each spec `spec/machines/NAME.toml` whose [machine] name is NAME, writes
DIR/NAME_machine.h, DIR/NAME_machine.c and DIR/NAME_machine.dot. The format
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

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
MAX_FOLLOWUPS = 64

IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TRANSITION_RE = re.compile(
    r"^\s*(?P<action>[A-Za-z_][A-Za-z0-9_]*)?\s*(?:->\s*(?P<target>[A-Za-z_][A-Za-z0-9_]*))?\s*$")
C_KEYWORDS = set("""auto break case char const continue default do double else enum
extern float for goto if inline int long register restrict return short signed
sizeof static struct switch typedef union unsigned void volatile while _Bool
_Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn
_Static_assert _Thread_local""".split())
MACHINE_KEYS = ["name", "doc", "context", "arg", "initial", "final"]
TOP_TABLES = ["machine", "events", "actions", "any", "states"]
STATE_RESERVED = ("doc", "ignore")
TRANSITION_FORMS = '"action -> next", "action", "-> next"'


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


# --------------------------------------------------------------------------
# Model


class Transition:
    def __init__(self, event, action, target, line, source):
        self.event = event        # event name
        self.action = action      # action name or None
        self.target = target      # state name (resolved: None means stay)
        self.line = line          # spec line of the key that made it
        self.source = source      # "state" or "any"


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
        rel = os.path.relpath(p, REPO_ROOT)
        if not rel.startswith(".."):
            p = rel
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


def _doc_table(doc, idx, err, table, what):
    """[events] / [actions]: name -> one-line doc string, in spec order."""
    out = {}
    if table not in doc:
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
        if k not in MACHINE_KEYS:
            err.add(idx.key("machine", k), f"unknown key '{k}' in [machine] (expected one of: {', '.join(MACHINE_KEYS)})")
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

    # [events], [actions]
    m.events = _doc_table(doc, idx, err, "events", "event")
    for name in m.events:
        if name.lower() == "none" or name in STATE_RESERVED:
            err.add(idx.key("events", name), f"event name '{name}' is reserved")
    m.actions = _doc_table(doc, idx, err, "actions", "action")

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
    # A malformed transition or an unknown target hides edges: the graph
    # checks would then report states as unreachable that are not, so they
    # are skipped until those errors are fixed (the event still counts as
    # handled for the coverage check).
    broken = {"edges": False}

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
            if not _is_str(val):
                err.add(line, f"malformed transition for event '{key}' in {where}: expected a string ({TRANSITION_FORMS})")
                broken["edges"] = True
                bad.add(key)
                continue
            tm = TRANSITION_RE.match(val)
            if not tm or not (tm.group("action") or tm.group("target")) or \
                    ("->" in val and not tm.group("target")):
                err.add(line, f"malformed transition '{val}' for event '{key}' in {where} (forms: {TRANSITION_FORMS})")
                broken["edges"] = True
                bad.add(key)
                continue
            action, target = tm.group("action"), tm.group("target")
            if target is not None:
                if not known_state(target, line, f"target of '{key}' in {where}"):
                    broken["edges"] = True
            if action is not None:
                if action not in m.actions:
                    err.add(line, f"missing action '{action}': used on '{key}' in {where} but not declared in [actions]")
                used_actions.setdefault(action, line)
            trans[key] = Transition(key, action, target, line, owner)
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
        if a not in used_actions:
            err.add(idx.key("actions", a), f"action '{a}' is declared but never used")

    # Graph checks, only over resolvable edges.
    def succ(s):
        out = []
        for t in s.transitions.values():
            tgt = t.target or s.name
            if tgt in m.states:
                out.append(tgt)
        return out

    if broken["edges"]:
        return m
    if m.initial in m.states:
        seen, todo = {m.initial}, [m.initial]
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


def render(m, env):
    st = list(m.states.values())
    ctx = {
        "m": m,
        "states": st,
        "events": list(m.events.items()),
        "actions": list(m.actions.items()),
        "event_order": list(m.events),
        "max_followups": MAX_FOLLOWUPS,
        "generator": "gen/iox_gen.py",
    }
    out = {}
    for ext in ("h", "c", "dot"):
        out[f"{m.name}_machine.{ext}"] = env.get_template(f"machine.{ext}.j2").render(**ctx)
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


def main(argv=None):
    ap = argparse.ArgumentParser(prog="gen/iox_gen.py",
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
