# bench/results-section.sh — replace one section of bench/RESULTS.md (sourced
# by bench/run.sh and bench/soak.sh, so every writer keeps the others' work).
#
#   results_write_section FILE ROW BLOCKFILE
#
# The section is delimited by `<!-- bench:ROW:begin -->` and
# `<!-- bench:ROW:end -->`; BLOCKFILE holds it, delimiters included. A
# missing section is appended; a begin without its end is an error (1).
results_write_section() {
  local file=$1 begin="<!-- bench:$2:begin -->" end="<!-- bench:$2:end -->" block=$3
  if [ -f "$file" ] && grep -qxF "$begin" "$file"; then
    grep -qxF "$end" "$file" || { echo "$file has '$begin' but no '$end'; fix the file by hand" >&2; return 1; }
    awk -v b="$begin" -v e="$end" -v f="$block" '
      $0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
      skip && $0 == e { skip = 0; next }
      !skip { print }' "$file" >"$file.tmp.$$"
    mv "$file.tmp.$$" "$file"
  else
    [ -f "$file" ] || printf '# ioxide benchmark results\n' >"$file"
    { printf '\n'; cat "$block"; } >>"$file"
  fi
}
