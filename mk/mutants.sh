#!/usr/bin/env bash
# make mutants — apply each deliberate fault of tests/mutants/*.md to a
# scratch copy of the tree, rebuild incrementally, run the suites the mutant
# names, and require that they fail ("killed"). A mutant the named suites do
# not kill is tried once more against the whole normal suite (minus the
# freshness, install and mutants_list suites, which would kill any edit of generated/ (or any mutant) for
# the wrong reason) before it is reported as a survivor.
#
# Usage: mk/mutants.sh [name-regex]     (grep -E on the names; MUTANT_FULL=1: always the whole suite)
# Exit: 0 when every mutant is killed; 1 with the list of survivors, or when
# a mutant's `find` text no longer occurs exactly once in its file (the list
# is data about the code: it must be kept in step with it).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
scratch=$here/build/mutants/src
log=$here/build/mutants/log
only=${1:-}
mkdir -p "$scratch" "$log"
# The scratch copy: the tree's files (tracked and new, not ignored) with
# their mtimes, so a second run rebuilds only what changed; files gone from
# the tree are removed from the copy (tests/*.c is a wildcard).
(cd "$here" && git ls-files -co --exclude-standard -z | sort -z >"$log/files") || { echo "mutants: git ls-files failed" >&2; exit 1; }
(cd "$here" && tar --null -T "$log/files" -cf -) | (cd "$scratch" && tar -xf -) || { echo "mutants: copying the tree failed" >&2; exit 1; }
cd "$scratch" || exit 1
find . -path ./build -prune -o -type f -print0 | sed -z 's|^\./||' | sort -z | comm -z -23 - "$log/files" | xargs -0 -r rm -f
echo "mutants: baseline build in $scratch"
make -s -j2 all >"$log/baseline.log" 2>&1 || { echo "mutants: the unmutated tree does not build (see $log/baseline.log)" >&2; exit 1; }

# Parse the corpus: one "## name" heading per mutant, then lines
#   file: path          find: text          replace: text
#   suites: a b c       why: one sentence
# `find` and `replace` are literal, except escapes: \n newline, \t tab,
# \\ one backslash (so C's "\r\n" is written "\\r\\n").
mapfile -t specs < <(/usr/bin/python3 - $(ls "$here"/tests/mutants/*.md | grep -v /README.md) <<'PY'
import sys, json, re
for path in sys.argv[1:]:
    cur = None
    for n, line in enumerate(open(path), 1):
        if line.startswith('## '):
            if cur: print(json.dumps(cur))
            cur = {'name': line[3:].strip(), 'at': f'{path.split("/tests/")[-1]}:{n}'}
        elif cur is not None and ':' in line and line.split(':', 1)[0] in ('file', 'find', 'replace', 'suites', 'why'):
            k, v = line.split(':', 1)
            cur[k] = re.sub(r'\\(.)', lambda m: {'n': '\n', 't': '\t'}.get(m.group(1), m.group(1)), v.strip())
    if cur: print(json.dumps(cur))
PY
)
all_suites=$(grep -ho 'IOX_TEST([a-z_]*' tests/*.c | sed 's/IOX_TEST(//' | sort -u | grep -vx -e regen -e install -e mutants_list | tr '\n' ' ')
# A kill means something only if the unmutated tree passes the same suites.
echo "mutants: baseline run of the whole suite on the unmutated copy"
# The whole suite, since a survivor of its own suites is judged by it.
base_suites=$all_suites
if ! IOX_SRC_DIR="$scratch" build/tests $base_suites >"$log/baseline.run" 2>&1; then
  echo "mutants: the unmutated tree fails its own suites ($base_suites) — see $log/baseline.run" >&2; exit 1
fi
killed=0; survived=(); broken=(); total=0
t0=$(date +%s)
for js in "${specs[@]}"; do
  name=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["name"])' "$js")
  [ -n "$only" ] && ! grep -qE -- "$only" <<<"$name" && continue
  total=$((total+1))
  eval "$(/usr/bin/python3 - "$js" <<'PY'
import json, sys, shlex
m = json.loads(sys.argv[1])
for k in ('name', 'at', 'file', 'suites', 'why'):
    print(f'm_{k}={shlex.quote(m.get(k, ""))}')
PY
)"
  # Apply: the find text must occur exactly once.
  if ! /usr/bin/python3 - "$js" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
p = m['file']; s = open(p).read(); n = s.count(m['find'])
if n != 1:
    print(f"{m['at']}: mutant '{m['name']}': find text occurs {n} times in {p} (must be exactly once)", file=sys.stderr)
    sys.exit(1)
open(p + '.orig', 'w').write(s)
open(p, 'w').write(s.replace(m['find'], m['replace']))
PY
  then broken+=("$m_at $m_name"); continue; fi
  result=survived
  if ! make -s -j2 all >"$log/$total.build" 2>&1; then
    # A fault the compiler refuses proves nothing about the tests.
    result=broken
  else
    suites=$m_suites; [ "${MUTANT_FULL:-0}" = 1 ] && suites=$all_suites
    if ! timeout 300 env IOX_SRC_DIR="$scratch" build/tests $suites >"$log/$total.run" 2>&1; then
      result="killed by: $suites"
    elif [ "$suites" != "$all_suites" ] && ! timeout 600 env IOX_SRC_DIR="$scratch" build/tests $all_suites >"$log/$total.full" 2>&1; then
      result="killed by the whole suite (not by its own: $suites)"
    fi
  fi
  mv "$m_file.orig" "$m_file"; touch "$m_file"
  if [ "$result" = broken ]; then broken+=("$m_at $m_name: does not compile (see $log/$total.build)"); echo "BROKEN   $m_name"
  elif [ "$result" = survived ]; then survived+=("$m_at $m_name — $m_why"); echo "SURVIVED $m_name ($m_at)"
  else killed=$((killed+1)); echo "killed   $m_name: ${result#killed }"; fi
done
make -s -j2 all >/dev/null 2>&1
echo "mutants: $killed of $total killed in $(( $(date +%s) - t0 )) s; logs in $log"
for b in "${broken[@]}"; do echo "NOT RUN  $b" >&2; done
for s in "${survived[@]}"; do echo "SURVIVOR $s" >&2; done
[ ${#survived[@]} -eq 0 ] && [ ${#broken[@]} -eq 0 ]
