#!/usr/bin/env python3
"""mk/trail.py MODEL.pml — a SPIN counterexample as events and a completion script.

Replays MODEL.pml.trail with `spin -t` (run in the model's directory) and
turns the model's printf markers into what a reader wants:

    trail (http_conn): 6 steps
      1. arm                          (end of turn: arm the recv)
           recv  reading→reading  / consume
      ...
    completion script:
      recv "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
      recv 0
      timeout

`@@c N` is the environment's step N (the `@@script N` table at the end of
the model), `@@t N E` transition N (`@@trans N from to action`) taken on
event E (`@@event E name`). The last lines of spin's output (the failed
assertion, the final values of the model's variables) follow.
With --script only the completion script is printed (one step a line), for
the simulated ring's replay (tests/test_verify.c).
"""
import os
import re
import subprocess
import sys


def tables(pml):
    scripts, trans, events = {}, {}, {}
    with open(pml) as f:
        for line in f:
            m = re.match(r"/\* @@script (\d+) (.*) \*/$", line.rstrip("\n"))
            if m:
                scripts[int(m.group(1))] = m.group(2)
                continue
            m = re.match(r"/\* @@trans (\d+) (\S+) (\S+) (\S+) \*/$", line.strip())
            if m:
                trans[int(m.group(1))] = (m.group(2), m.group(3), m.group(4))
                continue
            m = re.match(r"/\* @@event (\d+) (\S+) \*/$", line.strip())
            if m:
                events[int(m.group(1))] = m.group(2)
    return scripts, trans, events


def main(argv):
    script_only = "--script" in argv
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1:
        print("usage: mk/trail.py [--script] MODEL.pml", file=sys.stderr)
        return 2
    pml = os.path.abspath(args[0])
    d, base = os.path.dirname(pml), os.path.basename(pml)
    name = base[:-4] if base.endswith(".pml") else base
    r = subprocess.run(["spin", "-t", "-v", base], cwd=d, capture_output=True, text=True)
    out = r.stdout.splitlines()
    scripts, trans, events = tables(pml)
    steps, script, tail = [], [], []
    for line in out:
        s = line.strip()
        m = re.match(r"^@@c (\d+)$", s)
        if m:
            sc = scripts.get(int(m.group(1)), f"step {m.group(1)}")
            steps.append([sc, []])
            if not sc.startswith("("):
                script.append(sc)
            continue
        m = re.match(r"^@@t (\d+) (\d+)$", s)
        if m:
            a, b, act = trans.get(int(m.group(1)), ("?", "?", "-"))
            ev = events.get(int(m.group(2)), m.group(2))
            label = f"{ev}  {a}\u2192{b}" + (f"  / {act}" if act != "-" else "")
            if steps:
                steps[-1][1].append(label)
            else:
                steps.append(["(start)", [label]])
            continue
        if re.search(r"assertion violated|invalid end state|acceptance cycle|never claim|"
                     r"<<<<<START OF CYCLE>>>>>|trail ends", s):
            tail.append(s)
    if script_only:
        for sc in script:
            print(sc)
        return 0
    print(f"trail ({name}): {len(steps)} steps")
    keep = int(os.environ.get("VERIFY_TRAIL_MAX", "0") or 0)
    for i, (sc, labels) in enumerate(steps, 1):
        if keep and len(steps) > keep and keep // 3 < i <= len(steps) - (keep - keep // 3):
            if i == keep // 3 + 1:
                print(f"      ... {len(steps) - keep} steps ...")
            continue
        print(f"  {i:2}. {sc}")
        for lb in labels:
            print(f"        {lb}")
    print(f"completion script ({len(script)} lines):")
    for i, sc in enumerate(script):
        if keep and len(script) > keep and keep // 3 <= i < len(script) - (keep - keep // 3):
            if i == keep // 3:
                print(f"  ... {len(script) - keep} lines ...")
            continue
        print(f"  {sc}")
    for t in tail:
        print(f"  spin: {t}")
    # The final values of the model's variables: what the state was.
    vals = [ln.strip() for ln in out if re.match(r"^\s+\w+(\[\d+\])? = -?\d+$", ln)]
    if vals:
        print("  at the end: " + ", ".join(vals))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
