#!/usr/bin/env bash
# mk/verify.sh [--spec SPEC.toml]... [MODEL.pml]...  — model-check machines with SPIN.
#
# `make verify` runs it on every generated/*.pml. With --spec, the spec is
# generated first (into a temp dir) and its model checked: that is how a
# spec that is not committed (tests/data/verify/) is judged.
#
# For each model, two runs of pan (docs/verification.md):
#   safety    spin -a; cc -DNOCLAIM; ./pan: assertion violations (the socket
#             closed once and only when idle, ops completed once, buffers
#             back, the per-machine invariants) and invalid end states.
#   liveness  cc; ./pan -a -f: the claim `ltl ends { <> ended }` under weak
#             fairness — every run ends with the machine final and no op in
#             flight (no acceptance cycle, no run stuck short of the end).
# A failure prints the counterexample as events and a completion script
# (mk/trail.py) and the exit status is 1. The time of each machine is printed.
# Work files go to ${VERIFY_DIR:-build/verify}/NAME/.
#
# Installed (share/ioxide/verify.sh beside iox_gen.py and trail.py; what
# `ioxide-gen verify` runs) it judges a user's specs the same way: paths are
# taken from the caller's directory, work files go to ${VERIFY_DIR:-ioxide-verify}.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$here/iox_gen.py" ]; then      # installed: share/ioxide/
  root=""; gen_py=$here/iox_gen.py; trail_py=$here/trail.py
  out=${VERIFY_DIR:-ioxide-verify}
else                                     # the source tree: mk/
  root=$(cd "$here/.." && pwd); gen_py=$root/gen/iox_gen.py; trail_py=$root/mk/trail.py
  out=${VERIFY_DIR:-$root/build/verify}
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
PAN_CFLAGS=${PAN_CFLAGS:--O0 -w}
DEPTH=${VERIFY_DEPTH:-100000}
# A search that runs longer than this is a model too large for its bounds, or
# one with a loop no bound limits: a failure, not a proof.
LIMIT=${VERIFY_TIMEOUT:-180}

if ! command -v spin >/dev/null; then
  echo "verify: spin is not installed (Debian: apt-get install -y spin)" >&2
  exit 2
fi

models=()
gens=()
trap 'rm -rf "${gens[@]}"' EXIT
while [ $# -gt 0 ]; do
  case "$1" in
    --spec)
      [ $# -ge 2 ] || { echo "usage: mk/verify.sh [--spec SPEC.toml]... [MODEL.pml]..." >&2; exit 2; }
      g=$(mktemp -d "$out/gen.XXXXXX"); gens+=("$g")
      if ! /usr/bin/python3 "$gen_py" --out "$g" "$2" >&2; then
        echo "verify: $2 does not generate" >&2; exit 1
      fi
      for f in "$g"/*.pml; do models+=("$f"); done
      shift 2 ;;
    -h|--help) sed -n "2,22p" "$here/$(basename "$0")"; exit 0 ;;
    *) models+=("$(realpath -m "$1")"); shift ;;
  esac
done
if [ -n "$root" ]; then
  cd "$root"
  [ ${#models[@]} -gt 0 ] || models=(generated/*.pml)
fi
[ ${#models[@]} -gt 0 ] || { echo "usage: verify.sh [--spec SPEC.toml]... [MODEL.pml]..." >&2; exit 2; }

fail=0
total_start=$(date +%s.%N)
for pml in "${models[@]}"; do
  name=$(basename "$pml" .pml)
  d="$out/$name"
  # A passing result is kept with a key: the model, this script, the
  # verifier's settings. The same key again is the same proof (the CUnit
  # suite after `make verify`); VERIFY_FRESH=1 searches anyway.
  key=$({ cat "$pml" "$here/$(basename "$0")" "$trail_py"; echo "$PAN_CFLAGS $DEPTH $LIMIT"; spin -V; } | sha256sum | cut -d' ' -f1)
  if [ "${VERIFY_FRESH:-0}" != 1 ] && [ -f "$d/ok.key" ] && [ "$(cat "$d/ok.key")" = "$key" ]; then
    echo "$(cat "$d/ok.line") (cached: same model and verifier)"
    continue
  fi
  rm -rf "$d"; mkdir -p "$d"
  cp "$pml" "$d/$name.pml"
  start=$(date +%s.%N)
  ok=1; what=""
  (cd "$d" && spin -a "$name.pml" >spin.log 2>&1) || { ok=0; what="spin -a failed"; cat "$d/spin.log" >&2; }
  has_live=0
  grep -q "^ltl ends" "$d/$name.pml" && has_live=1
  if [ $ok = 1 ]; then
    (cd "$d" && cc $PAN_CFLAGS -DNOCLAIM -o pan_safety pan.c >cc.log 2>&1) || { ok=0; what="cc pan.c failed"; cat "$d/cc.log" >&2; }
  fi
  if [ $ok = 1 ] && [ $has_live = 1 ]; then
    (cd "$d" && cc $PAN_CFLAGS -o pan_live pan.c >cc_live.log 2>&1) || { ok=0; what="cc pan.c failed"; cat "$d/cc_live.log" >&2; }
  fi
  # The two searches are independent: they run side by side (a core each).
  if [ $ok = 1 ]; then
    (cd "$d" && timeout "$LIMIT" ./pan_safety -m"$DEPTH" -w24 >safety.log 2>&1
     [ $? = 124 ] && echo "errors: timed out after ${LIMIT}s" >>safety.log) &
    safety_pid=$!
    if [ $has_live = 1 ]; then
      (cd "$d" && timeout "$LIMIT" ./pan_live -a -f -m"$DEPTH" -w24 >liveness.log 2>&1
       [ $? = 124 ] && echo "errors: timed out after ${LIMIT}s" >>liveness.log) &
      wait $!
    fi
    wait $safety_pid
    if ! grep -q "errors: 0" "$d/safety.log"; then ok=0; what="safety"; fi
    if grep -q "max search depth too small" "$d/safety.log"; then ok=0; what="safety: search depth $DEPTH too small (VERIFY_DEPTH)"; fi
  fi
  live="no liveness claim: the spec has no [model] section (docs/verification.md)"
  if [ $ok = 1 ] && [ $has_live = 1 ]; then
    if ! grep -q "errors: 0" "$d/liveness.log"; then ok=0; what="liveness"; fi
    if grep -q "max search depth too small" "$d/liveness.log"; then ok=0; what="liveness: search depth $DEPTH too small (VERIFY_DEPTH)"; fi
    live="liveness $(grep -o '[0-9]* states, stored' "$d/liveness.log" | head -1)"
  fi
  # Which of the spec's transitions the safety search reached (pan lists
  # the statements it never executed): a bound too tight shows up here.
  cover=""
  if [ -f "$d/safety.log" ]; then
    cover=$(/usr/bin/python3 - "$d/$name.pml" "$d/safety.log" "$d/unreached.txt" <<'PY'
import re, sys
pml, log, outp = sys.argv[1:4]
lines = open(pml).read().splitlines()
tr = {}
for i, ln in enumerate(lines, 1):
    m = re.search(r'printf\("@@t %d %d\\n", (\d+), cur\); st = S_(\w+);.*/\* (\S+) \*/', ln)
    if m:
        tr[i] = (int(m.group(1)), m.group(3))
names = {}
for ln in lines:
    m = re.match(r"/\* @@trans (\d+) (\S+) (\S+) (\S+) \*/", ln)
    if m:
        names[int(m.group(1))] = f"{m.group(2)} -> {m.group(3)} / {m.group(4)}"
un = set()
for ln in open(log):
    m = re.search(r"\.pml:(\d+), state \d+, \"st = ", ln)
    if m and int(m.group(1)) in tr:
        un.add(int(m.group(1)))
with open(outp, "w") as f:
    for i in sorted(un):
        f.write(f"{tr[i][1]}: transition {names.get(tr[i][0], tr[i][0])} never taken within the bounds\n")
print(f"{len(tr) - len(un)}/{len(tr)} transitions")
PY
)
  fi
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  states=$(grep -o '[0-9]* states, stored' "$d/safety.log" 2>/dev/null | head -1)
  if [ $ok = 1 ]; then
    printf 'verify: %-14s ok    %6.1fs  (safety %s; %s)\n' "$name" "$secs" "${states:-?}, $cover" "$live" \
      | tee "$d/ok.line"
    echo "$key" >"$d/ok.key"
    rm -f "$d"/pan* "$d"/_spin_nvr.tmp   # the proof is the logs; pan.c is large
  else
    fail=1
    printf 'verify: %-14s FAIL  %6.1fs  (%s)\n' "$name" "$secs" "$what"
    log="$d/safety.log"; [ "$what" = liveness ] && log="$d/liveness.log"
    grep -E "assertion violated|invalid end state|acceptance cycle|depth too small|timed out" "$log" | sed 's/^/  pan: /'
    if [ "$what" = safety ] && [ -f "$d/$name.pml.trail" ]; then
      # A depth-first trail can be long: a breadth-first search finds a
      # shortest one (bounded in time; the first trail stays otherwise).
      mv "$d/$name.pml.trail" "$d/dfs.trail"
      if (cd "$d" && cc $PAN_CFLAGS -DNOCLAIM -DBFS -o pan_bfs pan.c >/dev/null 2>&1 &&
          timeout 60 ./pan_bfs -w24 >bfs.log 2>&1) && [ -f "$d/$name.pml.trail" ]; then
        echo "  (a shortest trail, by breadth-first search)"
      else
        mv "$d/dfs.trail" "$d/$name.pml.trail"
      fi
    fi
    if [ -f "$d/$name.pml.trail" ]; then
      VERIFY_TRAIL_MAX=${VERIFY_TRAIL_MAX:-60} /usr/bin/python3 "$trail_py" "$d/$name.pml" \
        | tee "$d/trail.txt"
      /usr/bin/python3 "$trail_py" --script "$d/$name.pml" >"$d/trail.script"
      echo "  (trail: $d/trail.txt; completion script: $d/trail.script)"
    fi
  fi
done
printf 'verify: total %.1fs\n' "$(echo "$(date +%s.%N) - $total_start" | bc)"
exit $fail
