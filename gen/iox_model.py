"""iox_model.py — the optional [model] section of a machine spec, and the
Promela model (NAME.pml) the generator emits for every machine.

The model is the machine itself (its states, events, guarded transitions and
follow-up chains, exactly as NAME_machine.c runs them) inside a closed world:
the ring's ops in flight, the provided buffers held, the socket, and ghost
counters the spec's [model] section declares, plus an environment that may
deliver any completion the ring can deliver for an op in flight, and the
external events (shutdown, replies, timeouts...) within bounds. SPIN checks it
(mk/verify.sh, `make verify`); docs/verification.md has the whole story.

Without a [model] section every guard is a free choice and no action touches
anything: the model still proves the machine has no invalid end state under
an environment that can send any event at any time (bounded).

Kept apart from iox_gen.py (which validates and emits the C) because it is
one job: the translation of a validated machine into Promela.
"""
import re

MODEL_KEYS = ["doc", "decls", "bounds", "counters", "socket", "idle_event", "invariants", "at_end",
              "ops", "actions", "guards", "env"]
OP_KEYS = ["doc", "max", "cqe", "socket_op"]
CQE_KEYS = ["script", "events", "more", "budget", "when", "pre", "post", "buffer", "idle"]
ACTION_KEYS = ["do", "raises", "always"]
ENV_KEYS = ["event", "when", "budget", "quiet", "do", "post", "script"]
SOCKET_MODES = ("none", "open", "later")
MAX_CHAIN = 64
CALL_RE = re.compile(r"\b(submit|arm|cancel|inflight|cancelled|raise)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")


class Model:
    """The [model] section, checked; defaults when the spec has none."""
    def __init__(self):
        self.present = False
        self.doc = ""
        self.decls = ""        # Promela declarations and inlines the annotations use
        self.bounds = {}       # name -> count (environment budgets)
        self.counters = {}     # name -> initial value (ghost counters)
        self.socket = "none"   # none: no socket; open: there from the start; later: open_sock() opens it
        self.idle_event = None
        self.invariants = {}   # name -> expr, asserted after every step
        self.at_end = {}       # name -> expr, asserted once the machine is final and idle
        self.ops = {}          # name -> dict(max, cqe=[...])
        self.actions = {}      # name -> dict(do, raises, always)
        self.guards = {}       # name -> expr
        self.env = {}          # name -> dict(event, when, budget, quiet, do, script)


def parse(doc, idx, err, m):
    """Check doc["model"] against the machine m; returns a Model."""
    md = Model()
    t = doc.get("model")
    if t is None:
        return md
    md.present = True
    line = idx.table("model") or idx.key("model")
    if not isinstance(t, dict):
        err.add(line, "[model] must be a table")
        return md

    def where(*path):
        """The line of the deepest key (or table) of path that the index
        knows: keys inside inline tables are not indexed, their table is."""
        for n in range(len(path), 0, -1):
            p = ("model",) + tuple(path[:n])
            if p in idx.keys:
                return idx.keys[p]
            if p in idx.tables:
                return idx.tables[p]
        return line

    for k in t:
        if k not in MODEL_KEYS:
            err.add(where(k), f"unknown key '{k}' in [model] (expected one of: {', '.join(MODEL_KEYS)})")

    def str_of(v, path, what):
        if not isinstance(v, str):
            err.add(where(*path), f"model.{'.'.join(path)} must be a string ({what})")
            return ""
        return v

    def int_table(key):
        out = {}
        v = t.get(key, {})
        if not isinstance(v, dict):
            err.add(where(key), f"model.{key} must be a table of name = number")
            return out
        for n, x in v.items():
            if not re.match(r"^[a-z][a-z0-9_]*$", n):
                err.add(where(key, n), f"model.{key}: {n!r} must be a lower-case identifier")
            elif not isinstance(x, int) or isinstance(x, bool) or not 0 <= x <= 255:
                err.add(where(key, n), f"model.{key}.{n} must be a number 0..255")
            else:
                out[n] = x
        return out

    def expr_table(key):
        v = t.get(key, {})
        if not isinstance(v, dict):
            err.add(where(key), f"model.{key} must be a table of name = \"expression\"")
            return {}
        return {n: str_of(x, (key, n), "a Promela expression") for n, x in v.items()}

    md.doc = t.get("doc", "") if isinstance(t.get("doc", ""), str) else ""
    md.decls = str_of(t.get("decls", ""), ("decls",), "Promela declarations and inlines")
    md.bounds = int_table("bounds")
    md.counters = int_table("counters")
    md.socket = t.get("socket", "none")
    if md.socket not in SOCKET_MODES:
        err.add(where("socket"), f"model.socket must be one of: {', '.join(repr(s) for s in SOCKET_MODES)}")
        md.socket = "none"
    md.idle_event = t.get("idle_event")
    if md.idle_event is not None and md.idle_event not in m.events:
        err.add(where("idle_event"), f"model.idle_event: unknown event {md.idle_event!r}")
        md.idle_event = None
    md.invariants = expr_table("invariants")
    md.at_end = expr_table("at_end")

    ops = t.get("ops", {})
    if not isinstance(ops, dict):
        err.add(where("ops"), "model.ops must be a table of [model.ops.NAME] tables")
        ops = {}
    for name, o in ops.items():
        if not re.match(r"^[a-z][a-z0-9_]*$", name):
            err.add(where("ops", name), f"model op {name!r} must be a lower-case identifier")
            continue
        if not isinstance(o, dict):
            err.add(where("ops", name), f"model.ops.{name} must be a table")
            continue
        for k in o:
            if k not in OP_KEYS:
                err.add(where("ops", name, k), f"unknown key '{k}' in model.ops.{name} (expected one of: {', '.join(OP_KEYS)})")
        op = {"max": o.get("max", 1), "cqe": [], "doc": o.get("doc", ""), "socket_op": bool(o.get("socket_op", True))}
        cq = o.get("cqe", [])
        if not isinstance(cq, list) or not cq:
            err.add(where("ops", name, "cqe"), f"model.ops.{name}.cqe must be a non-empty list of completions")
            cq = []
        for i, c in enumerate(cq):
            if not isinstance(c, dict):
                err.add(where("ops", name, "cqe"), f"model.ops.{name}.cqe[{i}] must be an inline table")
                continue
            for k in c:
                if k not in CQE_KEYS:
                    err.add(where("ops", name, "cqe"), f"unknown key '{k}' in model.ops.{name}.cqe[{i}] "
                            f"(expected one of: {', '.join(CQE_KEYS)})")
            evs = c.get("events", [])
            if not isinstance(evs, list) or not all(isinstance(e, str) for e in evs):
                err.add(where("ops", name, "cqe"), f"model.ops.{name}.cqe[{i}].events must be a list of events")
                evs = []
            for e in evs:
                if e not in m.events:
                    err.add(where("ops", name, "cqe"), f"model.ops.{name}.cqe[{i}]: unknown event {e!r}")
            b = c.get("budget")
            if b is not None and b not in md.bounds:
                err.add(where("ops", name, "cqe"), f"model.ops.{name}.cqe[{i}]: budget {b!r} is not in model.bounds")
            op["cqe"].append({
                "script": str(c.get("script", f"{name} completes")),
                "events": evs, "more": bool(c.get("more", False)), "budget": b,
                "when": c.get("when", ""), "pre": c.get("pre", ""), "post": c.get("post", ""),
                "buffer": bool(c.get("buffer", False)), "idle": bool(c.get("idle", True)),
            })
        md.ops[name] = op

    acts = t.get("actions", {})
    for name, a in (acts.items() if isinstance(acts, dict) else []):
        if name not in m.actions:
            err.add(where("actions", name), f"model.actions: unknown action {name!r}")
            continue
        if isinstance(a, str):
            a = {"do": a}
        if not isinstance(a, dict):
            err.add(where("actions", name), f"model.actions.{name} must be a string or an inline table")
            continue
        for k in a:
            if k not in ACTION_KEYS:
                err.add(where("actions", name), f"unknown key '{k}' in model.actions.{name} (expected one of: {', '.join(ACTION_KEYS)})")
        raises = a.get("raises", [])
        if not isinstance(raises, list) or not all(isinstance(e, str) for e in raises):
            err.add(where("actions", name), f"model.actions.{name}.raises must be a list of \"EVENT\" or \"EVENT if EXPR\"")
            raises = []
        parsed = []
        for r in raises:
            e, _, cond = r.partition(" if ")
            e = e.strip()
            parsed.append((e, cond.strip()))
            if e not in m.events:
                err.add(where("actions", name), f"model.actions.{name}: raises unknown event {e!r}")
        md.actions[name] = {"do": a.get("do", ""), "raises": parsed, "always": bool(a.get("always", False))}

    gds = t.get("guards", {})
    for name, g in (gds.items() if isinstance(gds, dict) else []):
        if name not in m.guards:
            err.add(where("guards", name), f"model.guards: unknown guard {name!r}")
            continue
        md.guards[name] = str_of(g, ("guards", name), "a Promela expression")

    env = t.get("env", {})
    for name, e in (env.items() if isinstance(env, dict) else []):
        if not isinstance(e, dict):
            err.add(where("env", name), f"model.env.{name} must be a table")
            continue
        for k in e:
            if k not in ENV_KEYS:
                err.add(where("env", name, k), f"unknown key '{k}' in model.env.{name} (expected one of: {', '.join(ENV_KEYS)})")
        ev = e.get("event", name if name in m.events else None)
        if ev is not None and ev not in m.events:
            err.add(where("env", name), f"model.env.{name}: unknown event {ev!r}")
        b = e.get("budget")
        if b is not None and b not in md.bounds:
            err.add(where("env", name), f"model.env.{name}: budget {b!r} is not in model.bounds")
        md.env[name] = {"event": ev, "when": e.get("when", ""), "budget": b, "quiet": bool(e.get("quiet", False)),
                        "do": e.get("do", ""), "post": e.get("post", ""), "script": str(e.get("script", name))}
    return md


# --------------------------------------------------------------------------
# Promela emission


def _rw(code):
    """Helper calls name ops and events by their spec names: submit(recv) ->
    submit(OP_recv), raise(fail) -> raise(E_fail)."""
    if not code:
        return ""

    def sub(mt):
        fn, arg = mt.group(1), mt.group(2)
        pre = "E_" if fn == "raise" else "OP_"
        if arg.startswith(("OP_", "E_")):
            return mt.group(0)
        return f"{fn}({pre}{arg})"
    return CALL_RE.sub(sub, code)


def _stmt(code):
    code = _rw(code).strip()
    return code.rstrip(";") if code else "skip"


def _cond(code):
    code = _rw(code).strip()
    return f"({code})" if code else "true"


def render(m):
    md = m.model
    ev_ids = {e: i + 1 for i, e in enumerate(m.events)}
    st_ids = {s: i for i, s in enumerate(m.states)}
    ops = list(md.ops)
    scripts = []      # index -> completion-script line
    trans = []        # index -> "event from->to"
    out = []
    w = out.append

    w(f"/* {m.name}.pml — GENERATED by: gen/iox_gen.py --out DIR {m.spec} -- do not edit.")
    w(f" * The Promela model of {m.name} for SPIN (mk/verify.sh, `make verify`; docs/verification.md).")
    w(" * Its states, events and transitions are the spec's; guards are free choices unless")
    w(" * [model.guards] makes them predicates; the ring, the socket and the environment")
    w(" * come from [model]. */")
    w("")
    for s, i in st_ids.items():
        w(f"#define S_{s} {i}")
    w("#define E_none 0")
    for e, i in ev_ids.items():
        w(f"#define E_{e} {i}")
    for i, o in enumerate(ops):
        w(f"#define OP_{o} {i}")
    nops = max(1, len(ops))
    w(f"#define NOPS {nops}")
    w("#define SOCK_NONE 0")
    w("#define SOCK_OPEN 1")
    w("#define SOCK_CLOSING 2")
    w("#define SOCK_CLOSED 3")
    w("")
    w("byte st = S_%s;     /* the machine's state */" % m.initial)
    w("byte cur;           /* the event being handled */")
    w("byte fu;            /* the follow-up an action raised */")
    w("byte chain;         /* follow-ups in this chain (the C aborts past %d) */" % MAX_CHAIN)
    w("bool gv;            /* the guard being asked */")
    w("byte op_n[NOPS];    /* ops in flight, per kind */")
    w("bool op_cx[NOPS];   /* a cancel was asked for the kind's op in flight */")
    w("byte op_sub[NOPS];  /* ops submitted, per kind */")
    w("byte op_fin[NOPS];  /* ops completed (their last CQE), per kind */")
    w("byte bufs;          /* provided buffers held */")
    w("byte sock = %s;" % ("SOCK_OPEN" if md.socket == "open" else "SOCK_NONE"))
    w("byte opens = %d;    /* sockets opened */" % (1 if md.socket == "open" else 0))
    w("byte closes;        /* sockets closed */")
    w("bool ended;         /* the machine is final with nothing in flight */")
    for b, n in md.bounds.items():
        w(f"byte b_{b} = {n};  /* budget: {b} */")
    for c, n in md.counters.items():
        w(f"byte {c} = {n};")
    w("")
    busy = " + ".join(f"op_n[{i}]" for i in range(len(ops))) or "0"
    w(f"#define busy() ({busy})")
    w("#define inflight(k) (op_n[k])")
    w("#define cancelled(k) (op_cx[k])")
    w("#define in_final() (%s)" % (" || ".join(f"st == S_{f}" for f in m.final)))
    w("")
    w("inline raise(e) { fu = e }")
    sock_ops = [o for o in ops if md.ops[o]["socket_op"]]
    w("inline submit(k) {")
    w("  assert(op_n[k] < 255);")
    if md.socket != "none" and sock_ops:
        conds = " || ".join(f"k == OP_{o}" for o in sock_ops)
        w(f"  if :: ({conds}) && k != OP_close_if_any -> assert(sock == SOCK_OPEN) /* no op on a closed socket */ :: else -> skip fi;")
    w("  op_n[k]++; op_sub[k]++")
    w("}")
    w("inline arm(k) { if :: op_n[k] == 0 -> submit(k) :: else -> skip fi }")
    has_cancel = "cancel" in md.ops
    w("inline cancel(k) {")
    w("  if")
    w("  :: op_n[k] > 0 && !op_cx[k] -> op_cx[k] = 1%s" % ("; submit(OP_cancel)" if has_cancel else ""))
    w("  :: else -> skip")
    w("  fi")
    w("}")
    w("inline cancel_all() {")
    w("  if")
    w("  :: busy() > 0 ->")
    for o in ops:
        if o != "cancel":
            w(f"     if :: op_n[OP_{o}] > 0 -> op_cx[OP_{o}] = 1 :: else -> skip fi;")
    w("     %s" % ("submit(OP_cancel)" if has_cancel else "skip"))
    w("  :: else -> skip")
    w("  fi")
    w("}")
    w("inline open_sock() {")
    w("  assert(sock != SOCK_OPEN && sock != SOCK_CLOSING); /* one socket at a time */")
    w("  sock = SOCK_OPEN; opens++")
    w("}")
    w("inline close_sock() {")
    w("  assert(sock == SOCK_OPEN);  /* closed exactly once */")
    w("  assert(busy() == 0);        /* and only after its last op ended */")
    w("  closes++;")
    if "close" in md.ops:
        w("  sock = SOCK_CLOSING; op_n[OP_close]++; op_sub[OP_close]++")
    else:
        w("  sock = SOCK_CLOSED")
    w("}")
    w("inline sock_closed() { assert(sock == SOCK_CLOSING); sock = SOCK_CLOSED }")
    w("")
    if md.decls.strip():
        w("/* [model] decls */")
        w(_rw(md.decls.strip("\n")))
        w("")

    # Actions: each expanded once, run by number after the transition (the
    # state is stored first, as in C), so the model stays small to compile.
    act_ids = {a: i + 1 for i, a in enumerate(m.actions)}
    for a, i in act_ids.items():
        w(f"#define A_{a} {i}")
    w("byte act;          /* the action the transition asked for */")
    w("")
    w("inline run_action() {")
    w("  if")
    for a in m.actions:
        ma = md.actions.get(a, {"do": "", "raises": [], "always": False})
        w(f"  :: act == A_{a} ->")
        w(f"     {_stmt(ma['do'])};")
        if ma["raises"]:
            w("     if")
            for e, cond in ma["raises"]:
                w(f"     :: fu == E_none && {_cond(cond)} -> fu = E_{e}")
            if not ma["always"]:
                w("     :: fu == E_none -> skip")
            w("     :: else -> skip")
            w("     fi")
        else:
            w("     skip")
    w("  :: else -> skip")
    w("  fi;")
    w("  act = 0")
    w("}")
    # Guards.
    for g in m.guards:
        if g in md.guards and md.guards[g].startswith("maybe "):
            w(f"inline guard_{g}() {{ if :: gv = 1 :: gv = 0 fi; gv = gv && {_cond(md.guards[g][6:])} }}")
        elif g in md.guards:
            w(f"inline guard_{g}() {{ gv = {_cond(md.guards[g])} }}")
        else:
            w(f"inline guard_{g}() {{ if :: gv = 1 :: gv = 0 fi }}   /* a free choice */")
    w("")

    def take(a, s, ind):
        if a.ignore:
            return [f"{ind}skip /* ignored: {m.spec}:{a.line} */"]
        tgt = a.target or s.name
        tid = len(trans)
        trans.append((s.name, tgt, a.action))
        act = f"act = A_{a.action}" if a.action else "skip"
        return [f"{ind}printf(\"@@t %d %d\\n\", {tid}, cur); st = S_{tgt}; {act}  /* {m.spec}:{a.line} */"]

    def alts(rest, s, ind):
        a = rest[0]
        if a.guard is None:
            return take(a, s, ind)
        neg = "!" if a.negate else ""
        lines = [f"{ind}guard_{a.guard}();", f"{ind}if", f"{ind}:: {neg}gv ->"]
        lines.extend(take(a, s, ind + "   "))
        lines.append(f"{ind}:: else ->")
        lines.extend(alts(rest[1:], s, ind + "   "))
        lines.append(f"{ind}fi")
        return lines

    w("/* One event from the current state: the transition's alternatives, in")
    w(" * spec order; the state is stored before the action runs (as in C). */")
    w("inline step() {")
    w("  if")
    for s in m.states.values():
        if s.final:
            continue
        w(f"  :: st == S_{s.name} ->")
        w("     if")
        for e in m.events:
            t = s.transitions.get(e)
            if t is None:
                continue
            w(f"     :: cur == E_{e} ->")
            for ln in alts(t.alts, s, "        "):
                w(ln)
        w("     :: else -> skip /* ignored */")
        w("     fi")
    w("  :: else -> skip /* a final state ignores every event */")
    w("  fi;")
    w("  run_action()")
    w("}")
    w("")
    w("inline check() {")
    w("  assert(bufs <= 1)")
    for n, x in md.invariants.items():
        w(f"  ; assert({_cond(x)}) /* invariant {n} */")
    w("}")
    w("")

    # The environment: one option per completion kind and external event.
    # Each sets up the events to deliver (q0, q1), then one shared dispatch
    # runs them with their follow-up chains, returns the buffer, runs the
    # completion's post-step, and raises the idle event when no op is left.
    posts = []
    opts = []
    for o in ops:
        op = md.ops[o]
        for c in op["cqe"]:
            sid = len(scripts)
            scripts.append(c["script"])
            guard = [f"op_n[OP_{o}] > 0"]
            if c["budget"]:
                guard.append(f"b_{c['budget']} > 0")
            if c["when"]:
                guard.append(_cond(c["when"]))
            body = []
            if c["budget"]:
                body.append(f"b_{c['budget']}--")
            body.append(f"printf(\"@@c %d\\n\", {sid})")
            if not c["more"]:
                body.append(f"op_n[OP_{o}]--; op_fin[OP_{o}]++")
                body.append(f"if :: op_n[OP_{o}] == 0 -> op_cx[OP_{o}] = 0 :: else -> skip fi")
            if c["pre"]:
                body.append(_stmt(c["pre"]))
            if c["buffer"]:
                body.append("bufs++; pbuf = 1")
            evs = c["events"]
            body.append(f"q0 = {('E_' + evs[0]) if len(evs) > 0 else 'E_none'}; "
                        f"q1 = {('E_' + evs[1]) if len(evs) > 1 else 'E_none'}")
            if c["post"]:
                posts.append(c["post"])
                body.append(f"post = {len(posts)}")
            if md.idle_event and c["idle"]:
                body.append("idle = 1")
            opts.append((guard, body))
    for name, e in md.env.items():
        sid = len(scripts)
        scripts.append(e["script"])
        guard = ["!in_final()"]   # external events stop at the end; completions still come
        if e["quiet"]:
            guard.insert(0, "timeout")
            if e["event"]:
                handled = [f"st == S_{s.name}" for s in m.states.values()
                           if not s.final and e["event"] in s.transitions]
                guard.append("(" + (" || ".join(handled) or "false") + ")")
        if e["budget"]:
            guard.append(f"b_{e['budget']} > 0")
        if e["when"]:
            guard.append(_cond(e["when"]))
        body = []
        if e["budget"]:
            body.append(f"b_{e['budget']}--")
        body.append(f"printf(\"@@c %d\\n\", {sid})")
        if e["do"]:
            body.append(_stmt(e["do"]))
        body.append(f"q0 = {('E_' + e['event']) if e['event'] else 'E_none'}; q1 = E_none")
        if e["post"]:
            posts.append(e["post"])
            body.append(f"post = {len(posts)}")
        opts.append((guard, body))
    if not md.present:
        # No [model]: any event the machine does not raise itself may come
        # at any time, a few of them; then the run stops where it is.
        raised = set()
        sid = len(scripts)
        for e in m.events:
            scripts.append(e)
            opts.append(([f"!in_final() && b_events > 0"],
                         ["b_events--", f"printf(\"@@c %d\\n\", {len(scripts) - 1})", f"q0 = E_{e}; q1 = E_none"]))
    w("byte q0, q1;        /* the events a completion delivers, in order */")
    w("bool pbuf;          /* it holds a provided buffer until its events are handled */")
    w("byte post;          /* its post-step */")
    w("bool idle;          /* it may leave no op in flight: raise the idle event */")
    if not md.present:
        w("byte b_events = 4;  /* no [model]: this many events, any of them */")
    w("")
    w("active proctype ring() {")
    w("  do")
    w("  :: atomic {")
    w("     if")
    for guard, body in opts:
        w(f"     :: {' && '.join(guard)} ->")
        w("        " + ";\n        ".join(body))
    w("     fi;")
    w("     /* dispatch: each event with its follow-ups (NAME_fire) */")
    w("     do")
    w("     :: q0 != E_none ->")
    w("        fu = q0; q0 = q1; q1 = E_none; chain = 0;")
    w("        do")
    w("        :: fu == E_none -> break")
    w(f"        :: else -> cur = fu; fu = E_none; chain++; assert(chain <= {MAX_CHAIN}); step()")
    w("        od")
    w("     :: else ->")
    w("        if :: pbuf -> bufs--; pbuf = 0 :: else -> skip fi;  /* the glue returns the buffer after the events */")
    w("        if")
    for i, ptxt in enumerate(posts):
        w(f"        :: post == {i + 1} -> {_stmt(ptxt)}")
    w("        :: else -> skip")
    w("        fi;")
    w("        post = 0;")
    w("        if")
    if md.idle_event:
        w(f"        :: idle && busy() == 0 -> idle = 0; q0 = E_{md.idle_event}   /* then the idle event */")
    w("        :: else -> idle = 0; break")
    w("        fi")
    w("     od;")
    w("     check()")
    w("     }")
    if md.present:
        w("  :: atomic { in_final() && busy() == 0 -> ended = true; break }")
    else:
        w("  :: atomic { (in_final() || b_events == 0) && busy() == 0 -> ended = true; break }")
    w("  od;")
    w("  /* The end: every op submitted completed once, every buffer is back,")
    w("   * the socket (if any) is closed. */")
    for i, o in enumerate(ops):
        w(f"  assert(op_sub[OP_{o}] == op_fin[OP_{o}]);")
    w("  assert(bufs == 0);")
    if md.socket != "none":
        w("  assert(sock != SOCK_OPEN && sock != SOCK_CLOSING); /* the socket is closed */")
        w("  assert(closes == opens);                           /* exactly once per socket */")
    for n, x in md.at_end.items():
        w(f"  assert({_cond(x)}); /* at_end {n} */")
    w("end: skip")
    w("}")
    w("")
    if md.present:
        w("/* Liveness: every run ends with the machine final and no op in flight")
        w(" * (checked with pan -a -f: weak fairness, acceptance cycles). */")
        w("ltl ends { <> ended }")
    else:
        w("/* No [model]: no liveness claim (any event may come, or none: the run")
        w(" * stops where it is). Annotate the spec (docs/verification.md). */")
    w("")
    w("/* Tables for mk/trail.py: @@c N is the completion-script line N, @@t N E")
    w(" * the transition N taken on event E. */")
    for i, sc in enumerate(scripts):
        w(f"/* @@script {i} {sc.replace('*/', '* /')} */")
    for i, (a, b, act) in enumerate(trans):
        w(f"/* @@trans {i} {a} {b} {act or '-'} */")
    for e, i in ev_ids.items():
        w(f"/* @@event {i} {e} */")
    w("")
    text = "\n".join(out)
    return text.replace("k != OP_close_if_any", "k != OP_close" if "close" in md.ops else "true")
