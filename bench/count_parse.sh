#!/usr/bin/env bash
# bench/count_parse.sh [BUILD] — instructions per request (callgrind) for each
# input of bench_parse.c and each parser: the inclusive cost of the parse entry
# point divided by the requests it parsed. Repeatable, unlike the ns figures.
set -euo pipefail
build=${1:-build}
bin=${BIN:-$build/bench_parse}
n=2000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '| input | ioxide instr/req | picohttpparser instr/req |\n|---|---:|---:|\n'
for shape in a b c; do
  reqs=1; [ $shape = c ] && reqs=16
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$shape" "$bin" --count $n $shape \
    >/dev/null 2>&1
  row="| ($shape)"
  for fn in iox_http_parse_head phr_parse_request; do
    ir=$(callgrind_annotate --inclusive=yes "$tmp/cg.$shape" 2>/dev/null |
         grep -E "[^A-Za-z_]$fn( |$)" | head -1 | awk '{gsub(",","",$1); print $1}')
    row="$row | $(awk -v ir="${ir:-0}" -v k=$((n * reqs)) 'BEGIN{printf "%.1f", ir/k}')"
  done
  echo "$row |"
done
