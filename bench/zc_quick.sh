#!/usr/bin/env bash
# bench/zc_quick.sh — a rough side-by-side of file mode's ways to send a big
# file (issue 14 §3): FILE_SEND=splice, zc (READ_FIXED + SEND_ZC) and read,
# each a playground (REACTORS=1) serving one 1 MiB file, `wrk -c64 -d3s`,
# server CPU per response from /proc/PID/stat (utime+stime, every thread:
# io-wq workers included), ROUNDS alternating rounds (A B C A B C …).
# Indicative only: the machine is shared and the load generator runs on
# the same cores; `make bench` (row file1m, sides ioxide / ioxide-read /
# ioxide-zc) is the measurement.
#   bench/zc_quick.sh [ROUNDS] [SIDE=ENV…]   default sides: splice zc read
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; shift || true
sides=("$@")
[ ${#sides[@]} -gt 0 ] || sides=("splice=FILE_SEND=splice" "zc=FILE_SEND=zc" "read=FILE_SEND=read")
PLAYGROUND=${PLAYGROUND:-build/playground}
[ -x "$PLAYGROUND" ] || { echo "zc_quick: $PLAYGROUND not built (make)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/iox-zcq-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
head -c 1048576 /dev/urandom >"$tmp/1m.bin"
hz=$(getconf CLK_TCK)
port=$((20000 + RANDOM % 20000))
ticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; set -- $s; echo $(( ${12} + ${13} )); }
declare -A res
for r in $(seq 1 "$rounds"); do
  for side in "${sides[@]}"; do
    name=${side%%=*}; envs=${side#*=}
    # shellcheck disable=SC2086
    env PLAYGROUND_MODE=file REACTORS=1 PORT=$port FILE_ROOT="$tmp" $envs "$PLAYGROUND" >"$tmp/$name.log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/1m.bin" && break; sleep 0.1; done
    cmp -s <(curl -s "http://127.0.0.1:$port/1m.bin") "$tmp/1m.bin" || { echo "zc_quick: $name: wrong bytes" >&2; kill $pid; exit 1; }
    t0=$(ticks $pid)
    out=$(wrk -t1 -c64 -d3s "http://127.0.0.1:$port/1m.bin")
    t1=$(ticks $pid)
    kill -TERM $pid; wait $pid || true
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    errs=$(grep -c "Non-2xx\|Socket errors" <<<"$out" || true)
    us=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$n" 'BEGIN { printf "%.0f", d * 1e6 / hz / n }')
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    echo "round $r  $name: $n responses, $rps/s, server CPU $us µs/response${errs:+ }$( [ "$errs" != 0 ] && echo "(wrk reported errors: discard)")"
    res[$name]="${res[$name]:-} $us"
    port=$((port + 1))
  done
done
for side in "${sides[@]}"; do
  name=${side%%=*}
  echo "$name µs/response:${res[$name]}  median $(tr ' ' '\n' <<<"${res[$name]}" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
done
