#!/usr/bin/env bash
# make coverage: run the CUnit suite on the gcov build ($BUILD, default
# build/cov, from $COV_BUILD), then report line and branch coverage of runtime/ and
# generated/ (gcovr): per-file tables on stdout, least covered first, and an
# HTML report in build/coverage/. Old counters are removed first so the
# figures are this run's. The suite's result is the target's result: a
# failing test fails `make coverage` too (after the report is written).
set -u
cov=${COV_BUILD:-build/cov}
out=build/coverage
find "$cov/obj" -name '*.gcda' -delete 2>/dev/null
mkdir -p "$out"
# COV_BUILD, not BUILD: suites that run make themselves (install) must
# build their own tree, not this one.
IOX_SRC_DIR=$PWD "$cov/tests" ${TESTS:-} >"$out/tests.log" 2>&1
rc=$?
tail -12 "$out/tests.log"
filters=(-f 'runtime/' -f 'generated/')
# Ragel's generated tables are data, not code: its #line directives point
# back at the .rl files, which is where gcov attributes those lines.
gcovr -r . --object-directory "$cov/obj" "${filters[@]}" --sort-percentage \
  --txt "$out/lines.txt" --html-details "$out/index.html" --print-summary >"$out/summary.txt" 2>"$out/gcovr.err" \
  || { echo "coverage: gcovr failed (see $out/gcovr.err)" >&2; exit 1; }
gcovr -r . --object-directory "$cov/obj" "${filters[@]}" --sort-percentage --branches \
  --txt "$out/branches.txt" >/dev/null 2>>"$out/gcovr.err" \
  || { echo "coverage: gcovr --branches failed (see $out/gcovr.err)" >&2; exit 1; }
echo "== lines, the 15 least covered files (all: $out/lines.txt)"
grep -E '^(runtime|generated)/' "$out/lines.txt" | tail -15 | cut -c1-72
echo "== branches, the 15 least covered files (all: $out/branches.txt)"
grep -E '^(runtime|generated)/' "$out/branches.txt" | tail -15 | cut -c1-72
echo "== totals"
cat "$out/summary.txt"
echo "coverage: HTML report in $out/index.html"
exit $rc
