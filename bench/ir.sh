#!/bin/sh
# bench/ir.sh — user-space instructions per request of a server, counted by
# callgrind: a deterministic stand-in for "server CPU per request" that can
# be measured on a busy machine (issue 14 §2). Timing benchmarks stay
# `make bench`'s; this counts what the server executes, not how long it takes.
#
#   bench/ir.sh BIN [MODE [DEPTH]]   one figure: BIN under callgrind, MODE is
#                                    PLAYGROUND_MODE (default raw), DEPTH the
#                                    requests per write (1 = keep-alive, the
#                                    default; 16 = pipelined)
#   bench/ir.sh --table              the table of `make bench-ir`: PLAYGROUND
#                                    (build/playground) and MINIMAL
#                                    (build/minimal) at depths 1 and 16, with
#                                    the ratio playground ÷ minimal
#
# Method: the server runs under `valgrind --tool=callgrind` (REACTORS=1, a
# free port on 127.0.0.1). build/ir_client drives CONNS keep-alive
# connections in lock step, DEPTH requests per write, every answer read
# before the next write: first WARM requests per connection (not counted),
# then `callgrind_control --zero`, N requests, `--dump` (Ir₁), `--zero`, 2·N
# requests, `--dump` (Ir₂). Ir/request = (Ir₂ − Ir₁) ÷ (N · CONNS): each
# window holds one client's connection set-up and teardown, and those cancel.
# Every thread is counted. The ticks (idle_timeout/4, 7.5 s by default) are
# too rare to matter. The server is then stopped (SIGTERM, SIGKILL after
# 10 s: valgrind 3.19 does not deliver a signal to a thread blocked in
# io_uring_enter, so build/minimal, which has no signal thread, needs it).
#
# Environment: N (default 2000), WARM (200), CONNS (1), IR_CLIENT
# (build/ir_client), PLAYGROUND, MINIMAL (for --table), KEEP=1 keeps the
# callgrind dumps (their paths are printed) for callgrind_annotate.
# Output: one line per figure, ending `ir_per_req=X`; --table prints
# markdown. Exit non-zero if a run fails (client error, no dump).
set -eu

N=${N:-2000}
WARM=${WARM:-200}
CONNS=${CONNS:-1}
IR_CLIENT=${IR_CLIENT:-build/ir_client}
PLAYGROUND=${PLAYGROUND:-build/playground}
MINIMAL=${MINIMAL:-build/minimal}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# dump PID FILE → prints the Ir of the window since the last zero
dump() {
    before=$(ls "$2".* 2>/dev/null | wc -l)
    callgrind_control --dump "$1" >/dev/null 2>&1
    f=$(ls -t "$2".* 2>/dev/null | head -n 1)
    if [ "$(ls "$2".* 2>/dev/null | wc -l)" -le "$before" ] || [ -z "$f" ]; then
        echo "ir.sh: callgrind_control --dump $1 wrote no file" >&2
        return 1
    fi
    sed -n 's/^summary: //p' "$f"
}

# drive PORT DEPTH REQUESTS
drive() {
    "$IR_CLIENT" "$1" "$CONNS" "$2" "$3" >/dev/null || {
        echo "ir.sh: the client failed" >&2
        return 1
    }
}

# measure BIN MODE DEPTH → one line ending ir_per_req=X
measure() {
    depth=$3
    n=$(( (N + depth - 1) / depth * depth ))
    warm=$(( (WARM + depth - 1) / depth * depth ))
    dir=$(mktemp -d /tmp/ir.XXXXXX)
    out=$dir/callgrind.out
    port=$(free_port)
    REACTORS=1 PORT=$port PLAYGROUND_MODE=$2 \
        valgrind --tool=callgrind --callgrind-out-file="$out" "$1" >"$dir/server.log" 2>&1 &
    vpid=$!
    rc=0
    { drive "$port" "$depth" "$warm" &&
      callgrind_control --zero "$vpid" >/dev/null 2>&1 &&
      drive "$port" "$depth" "$n" && ir1=$(dump "$vpid" "$out") &&
      callgrind_control --zero "$vpid" >/dev/null 2>&1 &&
      drive "$port" "$depth" $((2 * n)) && ir2=$(dump "$vpid" "$out"); } || rc=1
    kill -TERM "$vpid" 2>/dev/null || true
    i=0
    while kill -0 "$vpid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$vpid" 2>/dev/null || true
    wait "$vpid" 2>/dev/null || true
    if [ $rc != 0 ] || [ -z "${ir1:-}" ] || [ -z "${ir2:-}" ]; then
        echo "ir.sh: measuring $1 failed (server log: $dir/server.log)" >&2
        return 1
    fi
    per=$(awk -v a="$ir1" -v b="$ir2" -v n="$((n * CONNS))" 'BEGIN { printf "%.1f", (b - a) / n }')
    echo "bin=$1 mode=$2 depth=$depth conns=$CONNS n=$((n * CONNS)) ir1=$ir1 ir2=$ir2 ir_per_req=$per"
    if [ "${KEEP:-0}" = 1 ]; then echo "callgrind dumps: $(ls "$out".* | tr '\n' ' ')" >&2
    else rm -rf "$dir"; fi
}

if [ "${1:-}" = "--table" ]; then
    for f in "$PLAYGROUND" "$MINIMAL" "$IR_CLIENT"; do
        [ -x "$f" ] || { echo "ir.sh: $f not built (make $f)" >&2; exit 1; }
    done
    echo "Ir per request (callgrind, REACTORS=1, CONNS=$CONNS, N=$N, WARM=$WARM)"
    echo
    echo "| shape | $PLAYGROUND | $MINIMAL | ratio |"
    echo "|---|---:|---:|---:|"
    for d in 1 16; do
        a=$(measure "$PLAYGROUND" raw "$d" | sed 's/.*ir_per_req=//')
        b=$(measure "$MINIMAL" raw "$d" | sed 's/.*ir_per_req=//')
        shape=keep-alive; [ "$d" = 1 ] || shape="pipelined ($d deep)"
        awk -v s="$shape" -v a="$a" -v b="$b" 'BEGIN { printf "| %s | %s | %s | %.2f× |\n", s, a, b, a / b }'
    done
    exit 0
fi

if [ $# -lt 1 ]; then
    sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
[ -x "$IR_CLIENT" ] || { echo "ir.sh: $IR_CLIENT not built (make $IR_CLIENT)" >&2; exit 1; }
measure "$1" "${2:-raw}" "${3:-1}"
