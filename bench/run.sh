#!/usr/bin/env bash
# bench/run.sh — `make bench`: the ioxide playground against nginx, interleaved.
#
# Method (ARCHITECTURE.md §5): server pinned to one core, wrk to the other;
# for each round, for each shape, every side of the row in turn (A B A B …);
# per run, server CPU = delta of utime+stime from /proc/<pid>/stat, divided by
# the requests wrk completed. A run with socket errors or non-2xx/3xx answers
# is discarded. Medians over the kept runs go to stdout and, as one section per
# row, into bench/RESULTS.md (only that section is replaced).
#
# Environment knobs (defaults in brackets):
#   BENCH_ROWS      rows to run, space/comma separated [raw]; rows: raw pg
#                   file1k file1m hop resp baseline (baseline needs BASELINE=binary)
#                   minimal latency churn memory (need build/minimal and
#                   build/loadgen: make bench builds them)
#   RESP_BIN        ioxide-resp binary, row resp [build/ioxide-resp]
#   REDIS_SERVER    redis-server binary, row resp [redis-server]
#   RESP_REQUESTS   requests per redis-benchmark run, row resp [200000]
#   DURATION        seconds per measured run [5]
#   ROUNDS          rounds (runs per cell) [3]
#   WARMUP          seconds of warm-up per server and shape, 0 = none [1]
#   CONNS           wrk connections [64]
#   PIPELINE_DEPTH  requests in flight per connection, pipelined shape [16]
#   PLAYGROUND      server A binary [build/playground]
#   PLAYGROUND_CMD  shell command run instead of $PLAYGROUND (it gets the same
#                   env; it must exec into the server, one process, foreground)
#   NGINX           nginx binary [/usr/sbin/nginx]
#   SERVER_CPU      core for servers [1]     WRK_CPU  core for wrk [0]
#   RESULTS         results file [bench/RESULTS.md]; RESULTS=- writes none
#   pg row: PG_BENCH_CONNS [4], PG_PIPE_DEPTHS [1 16 64] (the libpq
#   pipeline-mode ceiling build/pg_pipeline, one Sync per query),
#   PG_PIPE [build/pg_pipeline], PG_BASELINE (another playground as side base)
#
# Adding a row: write row_<name>() (see row_raw below) and list <name> in
# BENCH_ROWS. A shape is shape_<name>() that sets LOAD_ARGV and LOAD_PARSER.
set -euo pipefail

ORIG_PWD=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
abspath() { case $1 in /*|-) printf '%s\n' "$1" ;; *) printf '%s\n' "$ORIG_PWD/$1" ;; esac; }

PLAYGROUND=$(abspath "${PLAYGROUND:-$ROOT/build/playground}")
PLAYGROUND_CMD=${PLAYGROUND_CMD:-}
NGINX=${NGINX:-/usr/sbin/nginx}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-64}
PIPELINE_DEPTH=${PIPELINE_DEPTH:-16}
BENCH_ROWS=${BENCH_ROWS:-raw}
SERVER_CPU=${SERVER_CPU:-1}
WRK_CPU=${WRK_CPU:-0}
RESULTS=$(abspath "${RESULTS:-$ROOT/bench/RESULTS.md}")
CLK_TCK=$(getconf CLK_TCK)
MINIMAL=$(abspath "${MINIMAL:-$ROOT/build/minimal}")
LOADGEN=$(abspath "${LOADGEN:-$ROOT/build/loadgen}")
CHURN_CONNS=${CHURN_CONNS:-16}
IDLE_CONNS=${IDLE_CONNS:-10000}

cd "$ROOT"
. bench/nginx-conf.sh

die()  { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'bench: %s\n' "$*" >&2; }

for tool in wrk taskset curl awk; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (make bench installs wrk via mk/deps.sh --bench)"
done
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 ]] || die "DURATION must be whole seconds >= 1 (got '$DURATION')"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "ROUNDS must be >= 1 (got '$ROUNDS')"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be whole seconds (got '$WARMUP')"
# Servers and the load tools inherit this: 10 000 idle connections (row
# memory) need more descriptors than the usual soft limit of 1024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || note "could not raise the open-files soft limit to $(ulimit -Hn)"
[ "$(nproc)" -ge 2 ] || note "warning: $(nproc) CPU(s) online; server and wrk will share a core"

# ---------------------------------------------------------------- lifecycle --
BENCH_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/ioxide-bench.XXXXXX")
export BENCH_TMPDIR
SERVER_PIDS=()

# stop_pids PID... — SIGTERM, up to 5 s to exit, then SIGKILL.
stop_pids() {
  local pid i
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      note "pid $pid ignored SIGTERM for 5 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}

cleanup() {
  trap - EXIT INT TERM
  stop_pids "${SERVER_PIDS[@]}"
  declare -F stop_pg_cluster >/dev/null && stop_pg_cluster
  rm -rf "$BENCH_TMPDIR"
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM

port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ] && return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 20000))
    port_in_use "$p" || { printf '%s\n' "$p"; return 0; }
  done
  die "found no free TCP port in 20000-39999"
}

# wait_port NAME PID PORT LOG — poll until something answers HTTP on PORT.
wait_port() {
  local name=$1 pid=$2 port=$3 log=$4 i rc
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null && rc=0 || rc=$?
      printf 'bench: error: %s (pid %s) exited with status %s before answering on port %s; its output:\n' \
        "$name" "$pid" "$rc" "$port" >&2
      sed 's/^/  | /' "$log" >&2 || true
      exit 1
    fi
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && return 0
    sleep 0.1
  done
  printf 'bench: error: %s (pid %s) did not answer on 127.0.0.1:%s within 10 s; its output:\n' \
    "$name" "$pid" "$port" >&2
  sed 's/^/  | /' "$log" >&2 || true
  exit 1
}

# check_answer NAME URL BODY — the server must answer 200 with exactly BODY;
# BODY "@FILE" means the bytes of FILE.
check_answer() {
  local name=$1 url=$2 want=$3 code ok=0
  code=$(curl -s --max-time 5 -o "$BENCH_TMPDIR/body" -w '%{http_code}' "$url") || true
  if [[ $want == @* ]]; then
    [ "$code" = 200 ] && cmp -s "$BENCH_TMPDIR/body" "${want#@}" && ok=1
    want="the bytes of ${want#@}"
  else
    [ "$code" = 200 ] && [ "$(cat "$BENCH_TMPDIR/body")" = "$want" ] && ok=1
  fi
  [ "$ok" = 1 ] || die "$name: GET $url answered $code '$(head -c 80 "$BENCH_TMPDIR/body" 2>/dev/null | tr -c '[:print:]' '?')', expected 200 with $want"
}

# After start_*: SERVER_PID, SERVER_PORT, SERVER_CMD (the exact command).

# start_server_playground MODE [VAR=VALUE ...] — server A, pinned to SERVER_CPU.
start_server_playground() {
  local mode=$1; shift
  local port log
  port=$(free_port)
  log=$BENCH_TMPDIR/playground-$mode-$port.log
  local envs=(REACTORS=1 "PORT=$port" "PLAYGROUND_MODE=$mode" "$@")
  if [ -n "$PLAYGROUND_CMD" ]; then
    env "${envs[@]}" taskset -c "$SERVER_CPU" bash -c "exec $PLAYGROUND_CMD" >"$log" 2>&1 &
    SERVER_CMD="${envs[*]} taskset -c $SERVER_CPU $PLAYGROUND_CMD"
  else
    [ -x "$PLAYGROUND" ] || die "$PLAYGROUND not found or not executable (run make, or set PLAYGROUND=/path or PLAYGROUND_CMD)"
    env "${envs[@]}" taskset -c "$SERVER_CPU" "$PLAYGROUND" >"$log" 2>&1 &
    SERVER_CMD="${envs[*]} taskset -c $SERVER_CPU ${PLAYGROUND#"$ROOT"/}"
  fi
  SERVER_PID=$! SERVER_PORT=$port
  SERVER_PIDS+=("$SERVER_PID")
  wait_port "playground ($mode)" "$SERVER_PID" "$port" "$log"
}

# start_nginx SNIPPET — server B: one nginx process, pinned to SERVER_CPU,
# config and all its files in a fresh directory under BENCH_TMPDIR.
NGINX_CONFS=()
start_nginx() {
  local snippet=$1 port dir
  [ -x "$NGINX" ] || die "$NGINX not found (apt-get install nginx-light, or set NGINX=)"
  port=$(free_port)
  dir=$BENCH_TMPDIR/nginx-$port
  write_nginx_conf "$dir" "$port" "$snippet"
  taskset -c "$SERVER_CPU" "$NGINX" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" \
    >"$dir/stdout.log" 2>&1 &
  SERVER_PID=$! SERVER_PORT=$port
  SERVER_PIDS+=("$SERVER_PID")
  SERVER_CMD="taskset -c $SERVER_CPU $NGINX -p DIR/ -e DIR/error.log -c DIR/nginx.conf"
  NGINX_CONFS+=("$dir/nginx.conf")
  wait_port nginx "$SERVER_PID" "$port" "$dir/error.log"
  local pidfile
  pidfile=$(cat "$dir/nginx.pid" 2>/dev/null || true)
  [ "$pidfile" = "$SERVER_PID" ] ||
    die "nginx pid file says '$pidfile' but we started $SERVER_PID; the measured pid would be wrong"
}

# ------------------------------------------------------------------ shapes --
# shape_<name> URL SECONDS sets LOAD_ARGV (the load command) and LOAD_PARSER.
# shape_label_<name> prints the human label.
shape_keepalive() {
  LOAD_ARGV=(taskset -c "$WRK_CPU" wrk -t1 "-c$CONNS" "-d${2}s" "$1")
  LOAD_PARSER=parse_wrk
}
shape_label_keepalive() { printf 'keep-alive (c%s, 1 in flight)' "$CONNS"; }

shape_pipelined() {
  LOAD_ARGV=(taskset -c "$WRK_CPU" wrk -t1 "-c$CONNS" "-d${2}s" -s bench/pipeline.lua "$1" -- "$PIPELINE_DEPTH")
  LOAD_PARSER=parse_wrk
}
shape_label_pipelined() { printf 'pipelined (c%s, %s deep)' "$CONNS" "$PIPELINE_DEPTH"; }

# parse_<tool> OUTFILE STATUS prints "REQUESTS REQ_PER_S" on success, or
# "discard REASON" when the run does not count.
parse_wrk() {
  local out=$1 rc=$2 reqs rps
  [ "$rc" = 0 ] || { echo "discard wrk exited with status $rc"; return; }
  if grep -q 'Socket errors:' "$out"; then
    echo "discard $(grep -m1 'Socket errors:' "$out" | sed 's/^ *//')"; return
  fi
  if grep -q 'Non-2xx or 3xx responses:' "$out"; then
    echo "discard $(grep -m1 'Non-2xx or 3xx responses:' "$out" | sed 's/^ *//')"; return
  fi
  reqs=$(awk '/ requests in /{print $1; exit}' "$out")
  rps=$(awk '/^Requests\/sec:/{print $2; exit}' "$out")
  [[ $reqs =~ ^[0-9]+$ && $reqs -gt 0 && -n $rps ]] ||
    { echo "discard could not read a request count from wrk's output"; return; }
  echo "$reqs $rps"
}

# --------------------------------------------------------------- measuring --
# CPU of a process: utime+stime in clock ticks, /proc/<pid>/stat fields 14+15
# (the whole process: live threads and those that have exited).
proc_cpu_ticks() {
  local s a
  s=$(<"/proc/$1/stat") || return 1
  s=${s##*) }                    # drop "pid (comm) "; fields from #3 onward
  read -ra a <<<"$s"
  echo $((a[11] + a[12]))
}
# Cross-check: ns on CPU, summed over live threads' /proc/<pid>/task/*/schedstat.
proc_sched_ns() {
  local f v sum=0
  for f in /proc/"$1"/task/*/schedstat; do
    read -r v _ <"$f" 2>/dev/null && sum=$((sum + v))
  done
  echo "$sum"
}

RUNS_TSV=  # set per row: row round shape side status reqs rps ticks us_req sched_us_req reason

# measure NAME PID URL SHAPE — one run; appends a line to RUNS_TSV.
# A row may measure its own way: measure_<row> with the same arguments.
measure() {
  if declare -F "measure_$CUR_ROW" >/dev/null; then "measure_$CUR_ROW" "$@"; return; fi
  local name=$1 pid=$2 url=$3 shape=$4
  local out=$BENCH_TMPDIR/wrk.out rc t0 t1 s0 s1 parsed
  "shape_$shape" "$url" "$DURATION"
  kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) is gone"
  t0=$(proc_cpu_ticks "$pid"); s0=$(proc_sched_ns "$pid")
  "${LOAD_ARGV[@]}" >"$out" 2>&1 && rc=0 || rc=$?
  sleep 0.2   # let the server finish the closes wrk just caused
  kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) died during the $shape run; wrk said: $(tr '\n' ' ' <"$out")"
  t1=$(proc_cpu_ticks "$pid"); s1=$(proc_sched_ns "$pid")
  cp "$out" "$BENCH_TMPDIR/wrk-$CUR_ROUND-$shape-${name// /_}.out"
  parsed=$("$LOAD_PARSER" "$out" "$rc")
  if [[ $parsed == discard* ]]; then
    printf '%s\t%s\t%s\t%s\tdiscarded\t-\t-\t%s\t-\t-\t%s\n' "$CUR_ROW" "$CUR_ROUND" "$shape" "$name" \
      "$((t1 - t0))" "${parsed#discard }" >>"$RUNS_TSV"
    printf '  round %s  %-28s %-14s DISCARDED: %s\n' "$CUR_ROUND" "$("shape_label_$shape")" "$name" "${parsed#discard }"
    return 0
  fi
  local reqs=${parsed% *} rps=${parsed#* }
  local us sus
  us=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN{printf "%.3f", t*1e6/hz/n}')
  sus=$(awk -v d="$((s1 - s0))" -v n="$reqs" 'BEGIN{printf "%.3f", d/1e3/n}')
  printf '%s\t%s\t%s\t%s\tkept\t%s\t%s\t%s\t%s\t%s\t\n' "$CUR_ROW" "$CUR_ROUND" "$shape" "$name" \
    "$reqs" "$rps" "$((t1 - t0))" "$us" "$sus" >>"$RUNS_TSV"
  printf '  round %s  %-28s %-14s %10s req/s  %9s req  %5s ticks  %7s us/req (schedstat %s)\n' \
    "$CUR_ROUND" "$("shape_label_$shape")" "$name" "$rps" "$reqs" "$((t1 - t0))" "$us" "$sus"
}

warmup() {
  local name=$1 url=$2 shape
  [ "$WARMUP" -gt 0 ] || return 0
  if declare -F "warmup_$CUR_ROW" >/dev/null; then "warmup_$CUR_ROW" "$@"; return; fi
  for shape in $ROW_SHAPES; do
    "shape_$shape" "$url" "$WARMUP"
    "${LOAD_ARGV[@]}" >/dev/null 2>&1 || note "warm-up of $name ($shape) failed; measuring anyway"
  done
}

# -------------------------------------------------------------------- rows --
# A row function starts its servers and calls add_side for each (first side
# is the one the ratios are about), and sets ROW_TITLE, ROW_SHAPES, ROW_NOTES.
SIDE_NAMES=() SIDE_PIDS=() SIDE_URLS=() SIDE_CMDS=()
add_side() {  # NAME PATH EXPECTED_BODY (or @FILE) — uses SERVER_* from the last start_*
  local url="http://127.0.0.1:$SERVER_PORT$2"
  check_answer "$1" "$url" "$3"
  SIDE_NAMES+=("$1") SIDE_PIDS+=("$SERVER_PID") SIDE_URLS+=("$url") SIDE_CMDS+=("$SERVER_CMD")
}

row_raw() {
  ROW_TITLE="raw vs nginx"
  ROW_SHAPES="keepalive pipelined"
  ROW_NOTES="Both servers answer GET / with 200 and the 2-byte body \`ok\`."
  start_server_playground raw
  add_side ioxide / ok
  start_nginx 'location = / { return 200 "ok"; }'
  add_side nginx / ok
}

# pg: the playground in pg mode (HTTP → SELECT 42 as a prepared statement on
# its pool → response) under wrk keep-alive, beside pgbench running the same
# prepared SELECT 42 with as many DB connections as the pool has. Both sides
# talk to one throwaway cluster. Per run: queries/s, the DB client's CPU per
# query (the playground process — HTTP included — or the pgbench process),
# and PostgreSQL's CPU per query (postmaster utime+stime+cutime+cstime —
# cutime/cstime hold the backends that exited, e.g. pgbench's — plus the
# live children's utime+stime, from /proc; all of the cluster's processes).
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_BENCH_CONNS=${PG_BENCH_CONNS:-4}
PG_DIR= PG_PORT= PG_PM_PID=

# The cluster itself: mk/pg-cluster.sh (shared with make run-pg and make soak).
# shellcheck source=../mk/pg-cluster.sh
. "$ROOT/mk/pg-cluster.sh"
pg_as() { pgc_as "$@"; }

stop_pg_cluster() {
  pgc_stop
  PG_DIR=
}

start_pg_cluster() {
  command -v pgbench >/dev/null || die "pgbench not found (apt-get install postgresql-contrib or postgresql-client)"
  PG_PORT=$(free_port)
  pgc_start ioxide-bench-pg "$PG_PORT" 100 || die "starting the bench cluster failed"
  PG_DIR=$PGC_DIR   # postgres must traverse it: not under BENCH_TMPDIR (0700)
  PG_PM_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
  printf 'SELECT 42;\n' >"$BENCH_TMPDIR/select42.sql"
}

# All of the cluster's CPU so far, in clock ticks.
pg_cluster_ticks() {
  local s a sum pid
  s=$(<"/proc/$PG_PM_PID/stat"); s=${s##*) }; read -ra a <<<"$s"
  sum=$((a[11] + a[12] + a[13] + a[14]))
  for pid in $(ps -o pid= --ppid "$PG_PM_PID"); do
    s=$(<"/proc/$pid/stat") 2>/dev/null || continue
    s=${s##*) }; read -ra a <<<"$s"
    sum=$((sum + a[11] + a[12]))
  done
  echo "$sum"
}

shape_pgload() {  # the ioxide side's load (pgbench is its own load)
  LOAD_ARGV=(taskset -c "$WRK_CPU" wrk -t1 "-c$CONNS" "-d${2}s" "$1")
  LOAD_PARSER=parse_wrk
}
shape_label_pgload() { printf 'load on ioxide (wrk c%s; %s DB conns)' "$CONNS" "$PG_BENCH_CONNS"; }

pgbench_argv() {  # SECONDS
  PGBENCH_ARGV=(taskset -c "$WRK_CPU" pgbench -n -M prepared -f "$BENCH_TMPDIR/select42.sql" -c "$PG_BENCH_CONNS" -j 1
                -T "$1" -h 127.0.0.1 -p "$PG_PORT" -U ioxide ioxide)
}

# The ceiling: bench/pg_pipeline.c (libpq pipeline mode, one Sync per query,
# PG_BENCH_CONNS connections, DEPTH queries in flight on each), pinned like
# pgbench.
PG_PIPE=${PG_PIPE:-$ROOT/build/pg_pipeline}
PG_PIPE_DEPTHS=${PG_PIPE_DEPTHS:-1 16 64}
pipeline_argv() {  # DEPTH SECONDS
  PIPELINE_ARGV=(taskset -c "$WRK_CPU" "$PG_PIPE" "$PG_BENCH_CONNS" "$1" "$2")
}

warmup_pg() {
  local name=$1 url=$2
  if [[ $name == pipe-d* ]]; then
    pipeline_argv "${name#pipe-d}" "$WARMUP"
    PGPASSWORD=ioxide-pw PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=ioxide PGDATABASE=ioxide \
      "${PIPELINE_ARGV[@]}" >/dev/null 2>&1 || note "pg_pipeline warm-up failed"
  elif [ "$name" = pgbench ]; then
    pgbench_argv "$WARMUP"; PGPASSWORD=ioxide-pw "${PGBENCH_ARGV[@]}" >/dev/null 2>&1 || note "pgbench warm-up failed"
  else
    taskset -c "$WRK_CPU" wrk -t1 "-c$CONNS" "-d${WARMUP}s" "$url" >/dev/null 2>&1 || note "wrk warm-up failed"
  fi
}

# TSV columns as elsewhere, except: col 8 = client CPU ticks, col 9 = client
# µs/query, col 10 = PostgreSQL µs/query.
measure_pg() {
  local name=$1 pid=$2 url=$3 shape=$4
  local out=$BENCH_TMPDIR/load.out rc c0 c1 p0 p1 parsed reqs rps
  p0=$(pg_cluster_ticks)
  if [[ $name == pipe-d* ]]; then
    pipeline_argv "${name#pipe-d}" "$DURATION"
    PGPASSWORD=ioxide-pw PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=ioxide PGDATABASE=ioxide \
      /usr/bin/time -f '%U %S' -o "$BENCH_TMPDIR/pgbench.time" "${PIPELINE_ARGV[@]}" >"$out" 2>&1 && rc=0 || rc=$?
    sleep 0.5   # let the postmaster reap the backends
    p1=$(pg_cluster_ticks)
    c0=0
    c1=$(awk -v hz="$CLK_TCK" '{printf "%d", ($1 + $2) * hz + 0.5}' "$BENCH_TMPDIR/pgbench.time" 2>/dev/null || echo 0)
    if [ "$rc" != 0 ]; then parsed="discard pg_pipeline exited with status $rc: $(head -c 200 "$out" | tr '\n' ' ')"
    else
      parsed=$(awk '/^queries /{ if ($2 > 0) print $2, $6; else print "discard no queries"; exit }' "$out")
      [ -n "$parsed" ] || parsed="discard no result line from pg_pipeline"
    fi
  elif [ "$name" = pgbench ]; then
    pgbench_argv "$DURATION"
    PGPASSWORD=ioxide-pw /usr/bin/time -f '%U %S' -o "$BENCH_TMPDIR/pgbench.time" "${PGBENCH_ARGV[@]}" >"$out" 2>&1 && rc=0 || rc=$?
    sleep 0.5   # let the postmaster reap the backends (their CPU moves to its cutime)
    p1=$(pg_cluster_ticks)
    c0=0
    c1=$(awk -v hz="$CLK_TCK" '{printf "%d", ($1 + $2) * hz + 0.5}' "$BENCH_TMPDIR/pgbench.time" 2>/dev/null || echo 0)
    if [ "$rc" != 0 ]; then parsed="discard pgbench exited with status $rc"
    elif grep -Eq 'number of failed transactions: [1-9]' "$out"; then parsed="discard $(grep -m1 'failed transactions' "$out")"
    else
      reqs=$(awk -F': ' '/number of transactions actually processed/{split($2, x, "/"); print x[1]; exit}' "$out")
      rps=$(awk '/^tps = /{print $3; exit}' "$out")
      [[ $reqs =~ ^[0-9]+$ && $reqs -gt 0 ]] && parsed="$reqs $rps" || parsed="discard no transaction count in pgbench's output"
    fi
  else
    kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) is gone"
    c0=$(proc_cpu_ticks "$pid")
    shape_pgload "$url" "$DURATION"
    "${LOAD_ARGV[@]}" >"$out" 2>&1 && rc=0 || rc=$?
    sleep 0.2
    kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) died during the run; wrk said: $(tr '\n' ' ' <"$out")"
    c1=$(proc_cpu_ticks "$pid")
    p1=$(pg_cluster_ticks)
    parsed=$(parse_wrk "$out" "$rc")
  fi
  cp "$out" "$BENCH_TMPDIR/pg-$CUR_ROUND-$name.out"
  if [[ $parsed == discard* ]]; then
    printf '%s\t%s\t%s\t%s\tdiscarded\t-\t-\t%s\t-\t-\t%s\n' "$CUR_ROW" "$CUR_ROUND" "$shape" "$name" \
      "$((c1 - c0))" "${parsed#discard }" >>"$RUNS_TSV"
    printf '  round %s  %-14s DISCARDED: %s\n' "$CUR_ROUND" "$name" "${parsed#discard }"
    return 0
  fi
  reqs=${parsed% *} rps=${parsed#* }
  local us pus
  us=$(awk -v t="$((c1 - c0))" -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN{printf "%.3f", t*1e6/hz/n}')
  pus=$(awk -v t="$((p1 - p0))" -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN{printf "%.3f", t*1e6/hz/n}')
  printf '%s\t%s\t%s\t%s\tkept\t%s\t%s\t%s\t%s\t%s\t\n' "$CUR_ROW" "$CUR_ROUND" "$shape" "$name" \
    "$reqs" "$rps" "$((c1 - c0))" "$us" "$pus" >>"$RUNS_TSV"
  printf '  round %s  %-14s %10s q/s  %9s queries  client %7s us/q  postgres %7s us/q\n' \
    "$CUR_ROUND" "$name" "$rps" "$reqs" "$us" "$pus"
}

print_table_pg() {
  local i rps us pus a_rps a_us a_pus
  echo "| side | queries/s (median) | DB client CPU µs/query (median) | PostgreSQL CPU µs/query (median) | runs kept |"
  echo "|---|---:|---:|---:|---:|"
  for i in "${!SIDE_NAMES[@]}"; do
    rps=$(cell pgload "${SIDE_NAMES[i]}" 7); us=$(cell pgload "${SIDE_NAMES[i]}" 9); pus=$(cell pgload "${SIDE_NAMES[i]}" 10)
    echo "| ${SIDE_NAMES[i]} | $(fmt_rps "$rps") | $(fmt_us "$us") | $(fmt_us "$pus") | $(kept pgload "${SIDE_NAMES[i]}") |"
  done
  a_rps=$(cell pgload "${SIDE_NAMES[0]}" 7); a_us=$(cell pgload "${SIDE_NAMES[0]}" 9); a_pus=$(cell pgload "${SIDE_NAMES[0]}" 10)
  for ((i = 1; i < ${#SIDE_NAMES[@]}; i++)); do
    rps=$(cell pgload "${SIDE_NAMES[i]}" 7); us=$(cell pgload "${SIDE_NAMES[i]}" 9); pus=$(cell pgload "${SIDE_NAMES[i]}" 10)
    echo "| **${SIDE_NAMES[0]}/${SIDE_NAMES[i]}** | $(ratio "$a_rps" "$rps") | $(ratio "$a_us" "$us") | $(ratio "$a_pus" "$pus") | |"
  done
  # Issue 14's targets: PostgreSQL CPU per query ≤ 1.3× the depth-16
  # ceiling's, and req/s ≥ 1.5× the 63 336 of the row before pool depth.
  if [[ " ${SIDE_NAMES[*]} " == *" pipe-d16 "* ]]; then
    pus=$(cell pgload pipe-d16 10)
    echo
    echo "Targets (issue 14): ioxide PostgreSQL CPU/query ÷ pipe-d16's = $(ratio "$a_pus" "$pus") (target ≤ 1.30×); ioxide queries/s ÷ 63336 (before this change) = $(ratio "$a_rps" 63336) (target ≥ 1.50×)."
  fi
}

# hop: the playground in hop mode beside raw mode, one reactor each pinned to
# the server core: every hop request takes the MSG_RING round trip (to the
# reactor itself with REACTORS=1: two extra CQEs and two extra SQEs per
# request), so CPU(hop) - CPU(raw) is the cost of a hop. Cross-core hops
# need REACTORS>=2, which would put a reactor on the load generator's core.
# before/after: the raw playground built from another commit (BASELINE, a
# binary path, e.g. from `git worktree add /tmp/base <commit> && make -C
# /tmp/base build/playground`) beside this tree's, same shapes; BASELINE_MODE
# raw (default) or hop. For a change that must not cost CPU per request
# (issue 11 §5). Both modes write the section "baseline": use RESULTS=- for
# the one not to keep.
row_baseline() {
  [ -n "${BASELINE:-}" ] || die "row baseline needs BASELINE=/path/to/playground (the other commit's build)"
  [ -x "$BASELINE" ] || die "BASELINE=$BASELINE is not an executable"
  local mode=${BASELINE_MODE:-raw} body=ok
  [ "$mode" = hop ] && body='hop=0->0'
  [ "$mode" = raw ] || [ "$mode" = hop ] || die "BASELINE_MODE=$mode: raw or hop"
  ROW_TITLE="$mode: this tree vs baseline"
  ROW_SHAPES="keepalive pipelined"
  ROW_NOTES="Both sides are the $mode playground (GET / → \`$body\`): side now is this tree's build, side base is BASELINE=${BASELINE_LABEL:-$BASELINE}."
  start_server_playground "$mode"
  add_side now / "$body"
  local keep=$PLAYGROUND
  PLAYGROUND=$(abspath "$BASELINE")
  start_server_playground "$mode"
  PLAYGROUND=$keep
  add_side base / "$body"
}

row_hop() {
  ROW_TITLE="hop vs raw"
  ROW_SHAPES="keepalive pipelined"
  ROW_NOTES="Side hop answers GET / with \`hop=0->0\` produced through IORING_OP_MSG_RING (REACTORS=1: the message goes to the same reactor's ring and back); side raw answers \`ok\` inline. The difference in CPU µs/request is the cost of a hop."
  start_server_playground hop
  add_side hop / 'hop=0->0'
  start_server_playground raw
  add_side raw / ok
}

row_pg() {
  ROW_TITLE="pg: HTTP → SELECT 42 → response vs pgbench"
  ROW_SHAPES="pgload"
  start_pg_cluster
  ROW_NOTES="ioxide: wrk keep-alive c$CONNS → playground pg mode (REACTORS=1, PG_POOL_SIZE=$PG_BENCH_CONNS: at most that many sessions, opened by load — PG_POOL_DEPTH 32 in flight on one before the next, so c64 runs on about 2), each request one prepared SELECT 42, pipelined on the pool; its CPU includes HTTP. pgbench: the same prepared SELECT 42 with $PG_BENCH_CONNS connections, one query in flight each, pinned to core $WRK_CPU. pipe-dN (the ceiling): build/pg_pipeline, libpq pipeline mode with one Sync per query (PQsendQueryPrepared + PQpipelineSync), $PG_BENCH_CONNS connections with N queries in flight on each, one thread, pinned to core $WRK_CPU; its client CPU is that program's. PostgreSQL CPU = every process of the cluster (postmaster utime+stime+cutime+cstime + live children), unpinned. For this row the schedstat column of 'Every run' holds PostgreSQL µs/query."
  start_server_playground pg PGHOST=127.0.0.1 "PGPORT=$PG_PORT" PGUSER=ioxide PGPASSWORD=ioxide-pw PGDATABASE=ioxide \
    "PG_POOL_SIZE=$PG_BENCH_CONNS"
  local i
  for ((i = 0; i < 100; i++)); do
    [ "$(curl -s --max-time 1 "http://127.0.0.1:$SERVER_PORT/")" = db=42 ] && break
    sleep 0.1
  done
  add_side ioxide / db=42
  if [ -n "${PG_BASELINE:-}" ]; then
    # Another build's playground (e.g. before a change) as a further side.
    local keep=$PLAYGROUND
    PLAYGROUND=$(abspath "$PG_BASELINE")
    start_server_playground pg PGHOST=127.0.0.1 "PGPORT=$PG_PORT" PGUSER=ioxide PGPASSWORD=ioxide-pw PGDATABASE=ioxide \
      "PG_POOL_SIZE=$PG_BENCH_CONNS"
    PLAYGROUND=$keep
    for ((i = 0; i < 100; i++)); do
      [ "$(curl -s --max-time 1 "http://127.0.0.1:$SERVER_PORT/")" = db=42 ] && break
      sleep 0.1
    done
    add_side base / db=42
  fi
  pgbench_argv DURATION
  SIDE_NAMES+=(pgbench) SIDE_PIDS+=(0) SIDE_URLS+=(-) SIDE_CMDS+=("PGPASSWORD=... ${PGBENCH_ARGV[*]}")
  local d
  [ -x "$PG_PIPE" ] || die "$PG_PIPE not found (make build/pg_pipeline; needs libpq-dev)"
  for d in $PG_PIPE_DEPTHS; do
    pipeline_argv "$d" DURATION
    SIDE_NAMES+=("pipe-d$d") SIDE_PIDS+=(0) SIDE_URLS+=(-)
    SIDE_CMDS+=("PGPASSWORD=... PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=ioxide PGDATABASE=ioxide ${PIPELINE_ARGV[*]}")
  done
}
# file mode vs nginx (sendfile on), the same bytes from the same directory.
# Two rows, one per size: 1 KiB is baked by the playground (one memcpy per
# GET), 1 MiB is streamed (64 KiB positional reads on the ring).
file_row() {  # SIZE_LABEL BYTES
  local name=$1 bytes=$2 www=$BENCH_TMPDIR/www
  ROW_TITLE="file $name vs nginx"
  ROW_SHAPES="keepalive"
  ROW_NOTES="All serve $www/$name.bin ($bytes random bytes); nginx with \`sendfile on\` (nginx-ofc: plus \`open_file_cache\`), the playground with FILE_ROOT=$www (FILE_BAKE_MAX default 64 KiB: 1k is baked, 1m is streamed: side ioxide by splice file → pipe → socket, FILE_SPLICE_MIN default 64 KiB, 1 MiB pipes; side ioxide-read with FILE_SPLICE_MIN=0, 64 KiB ring reads into the write buffer then sends; side ioxide-zc with FILE_SEND=zc, READ_FIXED into registered chunks (FILE_ZC_CHUNKS × FILE_ZC_CHUNK, defaults) then SEND_ZC, splice when no chunk is free)."
  mkdir -p "$www"
  [ -f "$www/$name.bin" ] || head -c "$bytes" /dev/urandom >"$www/$name.bin"
  start_server_playground file "FILE_ROOT=$www"
  add_side ioxide "/$name.bin" "@$www/$name.bin"
  # Streamed sizes: the same playground with the splice path off
  # (FILE_SPLICE_MIN=0: positional reads into the write buffer, then send),
  # the measurement the FILE_SPLICE_MIN default is chosen by.
  if [ "$bytes" -gt 65536 ]; then
    start_server_playground file "FILE_ROOT=$www" FILE_SPLICE_MIN=0
    add_side ioxide-read "/$name.bin" "@$www/$name.bin"
    # And the zero-copy path (issue 14 §3: "measure both"): registered
    # chunks, READ_FIXED then SEND_ZC, no io-wq worker per send.
    start_server_playground file "FILE_ROOT=$www" FILE_SEND=zc
    add_side ioxide-zc "/$name.bin" "@$www/$name.bin"
  fi
  start_nginx "location / { root $www; sendfile on; tcp_nopush on; }"
  add_side nginx "/$name.bin" "@$www/$name.bin"
  # nginx with its descriptor cache: no open/fstat/close per request, the
  # closest to file mode's snapshot.
  start_nginx "open_file_cache max=1000 inactive=600s; open_file_cache_valid 600s; location / { root $www; sendfile on; tcp_nopush on; }"
  add_side nginx-ofc "/$name.bin" "@$www/$name.bin"
}
row_file1k() { file_row 1k 1024; }
row_file1m() { file_row 1m 1048576; }

# ------------------------------------------- minimal, latency, churn, memory --
# minimal (issue 14 §2): the raw playground beside bench/ref/minimal.c, a
# bare liburing responder (multishot accept, multishot recv on a provided
# buffer ring, "\r\n\r\n" counted, one send per recv batch, SINGLE_ISSUER +
# DEFER_TASKRUN; no parser, no machines): what the kernel path costs.
need_tool() {  # PATH — a binary make bench builds
  [ -x "$1" ] || die "$1 not found: make bench builds it (or make ${1#"$ROOT"/})"
}
row_minimal() {
  need_tool "$MINIMAL"
  ROW_TITLE="raw vs minimal liburing server"
  ROW_SHAPES="keepalive pipelined"
  ROW_NOTES="Side minimal is bench/ref/minimal.c (build/minimal): no parser, no machines, a fixed \`200 ok\` (Content-Type and Content-Length, no Date or Server header) per \"\\r\\n\\r\\n\"; ioxide is the raw playground. The ratio is ioxide ÷ minimal (target ≤ 1.0×)."
  start_server_playground raw
  add_side ioxide / ok
  local keep=$PLAYGROUND
  PLAYGROUND=$MINIMAL
  start_server_playground minimal
  PLAYGROUND=$keep
  add_side minimal / ok
}

# parse_loadgen OUTFILE STATUS KEY — the value of KEY= on loadgen's last line.
lg_field() { awk -v k="$2" '{for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) v = kv[2] }} END{print v}' "$1"; }
url_port() { local u=${1#http://127.0.0.1:}; printf '%s\n' "${u%%/*}"; }

# churn (issue 14 §5b): one request per TCP connection (`Connection: close`),
# CHURN_CONNS connections at a time; CPU per connection.
shape_churn() {
  LOAD_ARGV=(taskset -c "$WRK_CPU" "$LOADGEN" churn "$(url_port "$1")" / "$CHURN_CONNS" "$2")
  LOAD_PARSER=parse_churn
}
shape_label_churn() { printf 'churn (%s at a time, 1 request per connection)' "$CHURN_CONNS"; }
parse_churn() {
  local out=$1 rc=$2 n rps e
  [ "$rc" = 0 ] || { echo "discard loadgen exited with status $rc"; return; }
  n=$(lg_field "$out" connections); rps=$(lg_field "$out" conn_per_s); e=$(lg_field "$out" errors)
  [[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || { echo "discard no connection count in loadgen's output"; return; }
  [ "$e" = 0 ] || { echo "discard $e connection(s) failed"; return; }
  echo "$n $rps"
}
row_churn() {
  need_tool "$LOADGEN"
  ROW_TITLE="connection churn vs nginx"
  ROW_SHAPES="churn"
  ROW_NOTES="build/loadgen churn: $CHURN_CONNS connections at a time, each connect → \`GET /\` with \`Connection: close\` → the answer → the server's close → close. req/s is connections/s, CPU µs/req is server CPU per connection (target ioxide ≤ 0.8× nginx). Any failed connection discards the run."
  start_server_playground raw
  add_side ioxide / ok
  start_nginx 'location = / { return 200 "ok"; }'
  add_side nginx / ok
}

# latency (issue 14 §5a): p50/p99/p99.9 at a constant offered rate of
# LAT_PCTS percent (default 50 and 80) of nginx's keep-alive maximum,
# measured with wrk (c$CONNS, DURATION) in this run before the rounds.
# build/loadgen rate: CONNS connections, each on its own schedule, latency
# from the scheduled send time (no coordinated omission).
LAT_PCTS=${LAT_PCTS:-50 80}
NGINX_MAX_RPS=
row_latency() {
  need_tool "$LOADGEN"
  ROW_TITLE="latency at fixed rates vs nginx"
  local p
  ROW_SHAPES=
  for p in $LAT_PCTS; do ROW_SHAPES+="rate$p "; eval "shape_rate$p() { shape_rate $p \"\$@\"; }; shape_label_rate$p() { shape_label_rate $p; }"; done
  start_server_playground raw
  add_side ioxide / ok
  start_nginx 'location = / { return 200 "ok"; }'
  add_side nginx / ok
  local out=$BENCH_TMPDIR/max.out url="http://127.0.0.1:$SERVER_PORT/"
  [ "$WARMUP" -gt 0 ] && { taskset -c "$WRK_CPU" wrk -t1 "-c$CONNS" "-d${WARMUP}s" "$url" >/dev/null 2>&1 || true; }
  taskset -c "$WRK_CPU" wrk -t1 "-c$CONNS" "-d${DURATION}s" "$url" >"$out" 2>&1 || die "wrk (nginx maximum) failed: $(tr '\n' ' ' <"$out")"
  NGINX_MAX_RPS=$(awk '/^Requests\/sec:/{printf "%d", $2; exit}' "$out")
  [[ $NGINX_MAX_RPS =~ ^[0-9]+$ && $NGINX_MAX_RPS -gt 0 ]] || die "no Requests/sec from wrk against nginx: $(tr '\n' ' ' <"$out")"
  note "nginx keep-alive maximum: $NGINX_MAX_RPS req/s (wrk -c$CONNS, ${DURATION}s)"
  ROW_NOTES="nginx's keep-alive maximum, measured first in this run: **$NGINX_MAX_RPS req/s** (\`wrk -t1 -c$CONNS -d${DURATION}s\`). Then build/loadgen rate at $(for p in $LAT_PCTS; do printf '%s%% ' "$p"; done)of it: $CONNS connections, one request in flight each, each connection on its own fixed schedule; latency from the scheduled send time (coordinated-omission free), log-linear histogram (~1.6% buckets). Target: ioxide p99 and p99.9 ≤ nginx's at both rates. A run that achieved < 98% of the offered rate or had errors is discarded."
}
shape_rate() {  # PCT URL SECONDS
  local rate=$((NGINX_MAX_RPS * $1 / 100))
  LOAD_ARGV=(taskset -c "$WRK_CPU" "$LOADGEN" rate "$(url_port "$2")" / "$CONNS" "$rate" "$3")
  LOAD_PARSER=parse_rate
}
shape_label_rate() { printf '%s%% of nginx max (%s req/s)' "$1" "$((NGINX_MAX_RPS * $1 / 100))"; }
parse_rate() {
  local out=$1 rc=$2 n a o e
  [ "$rc" = 0 ] || { echo "discard loadgen exited with status $rc"; return; }
  n=$(lg_field "$out" requests); a=$(lg_field "$out" achieved); o=$(lg_field "$out" offered); e=$(lg_field "$out" errors)
  [[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || { echo "discard no request count in loadgen's output"; return; }
  [ "$e" = 0 ] || { echo "discard $e error(s)"; return; }
  awk -v a="$a" -v o="$o" 'BEGIN{exit !(a >= 0.98 * o)}' || { echo "discard achieved $a of $o req/s offered"; return; }
  echo "$n $a"
}
warmup_latency() {
  local name=$1 url=$2
  taskset -c "$WRK_CPU" wrk -t1 "-c$CONNS" "-d${WARMUP}s" "$url" >/dev/null 2>&1 || note "warm-up of $name failed"
}
# TSV as elsewhere, except col 10 = p50 µs, col 12 = p99 µs, col 13 = p99.9 µs.
measure_latency() {
  local name=$1 pid=$2 url=$3 shape=$4 out=$BENCH_TMPDIR/lat.out rc t0 t1 parsed
  "shape_$shape" "$url" "$DURATION"
  kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) is gone"
  t0=$(proc_cpu_ticks "$pid")
  "${LOAD_ARGV[@]}" >"$out" 2>&1 && rc=0 || rc=$?
  sleep 0.2
  t1=$(proc_cpu_ticks "$pid")
  parsed=$(parse_rate "$out" "$rc")
  local p50 p99 p999
  p50=$(lg_field "$out" p50_us); p99=$(lg_field "$out" p99_us); p999=$(lg_field "$out" p999_us)
  if [[ $parsed == discard* ]]; then
    printf '%s\t%s\t%s\t%s\tdiscarded\t-\t-\t%s\t-\t-\t%s\t-\t-\n' "$CUR_ROW" "$CUR_ROUND" "$shape" "$name" \
      "$((t1 - t0))" "${parsed#discard }" >>"$RUNS_TSV"
    printf '  round %s  %-34s %-8s DISCARDED: %s\n' "$CUR_ROUND" "$("shape_label_$shape")" "$name" "${parsed#discard }"
    return 0
  fi
  local reqs=${parsed% *} rps=${parsed#* } us
  us=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN{printf "%.3f", t*1e6/hz/n}')
  printf '%s\t%s\t%s\t%s\tkept\t%s\t%s\t%s\t%s\t%s\t\t%s\t%s\n' "$CUR_ROW" "$CUR_ROUND" "$shape" "$name" \
    "$reqs" "$rps" "$((t1 - t0))" "$us" "$p50" "$p99" "$p999" >>"$RUNS_TSV"
  printf '  round %s  %-34s %-8s %8s req/s  p50 %7s us  p99 %7s us  p99.9 %7s us  %6s us/req CPU\n' \
    "$CUR_ROUND" "$("shape_label_$shape")" "$name" "$rps" "$p50" "$p99" "$p999" "$us"
}
print_table_latency() {
  local shape i label
  echo "| offered rate | server | achieved req/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/req | runs kept |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for shape in $ROW_SHAPES; do
    label=$("shape_label_$shape")
    for i in "${!SIDE_NAMES[@]}"; do
      echo "| $label | ${SIDE_NAMES[i]} | $(fmt_rps "$(cell "$shape" "${SIDE_NAMES[i]}" 7)") | $(fmt_us "$(cell "$shape" "${SIDE_NAMES[i]}" 10)") | $(fmt_us "$(cell "$shape" "${SIDE_NAMES[i]}" 12)") | $(fmt_us "$(cell "$shape" "${SIDE_NAMES[i]}" 13)") | $(fmt_us "$(cell "$shape" "${SIDE_NAMES[i]}" 9)") | $(kept "$shape" "${SIDE_NAMES[i]}") |"
    done
    echo "| $label | **${SIDE_NAMES[0]}/${SIDE_NAMES[1]}** | | $(ratio "$(cell "$shape" "${SIDE_NAMES[0]}" 10)" "$(cell "$shape" "${SIDE_NAMES[1]}" 10)") | $(ratio "$(cell "$shape" "${SIDE_NAMES[0]}" 12)" "$(cell "$shape" "${SIDE_NAMES[1]}" 12)") | $(ratio "$(cell "$shape" "${SIDE_NAMES[0]}" 13)" "$(cell "$shape" "${SIDE_NAMES[1]}" 13)") | $(ratio "$(cell "$shape" "${SIDE_NAMES[0]}" 9)" "$(cell "$shape" "${SIDE_NAMES[1]}" 9)") | |"
  done
}
print_runs_latency() {
  echo "| round | offered rate | server | status | requests | achieved req/s | CPU ticks | µs/req | p50 µs | p99 µs | p99.9 µs |"
  echo "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' '{ st = ($5=="kept") ? "kept" : "discarded: " $11;
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $2, $3, $4, st, $6, $7, $8, $9, $10, $12, $13 }' "$RUNS_TSV"
}

# memory (issue 14 §6): server RSS with IDLE_CONNS idle keep-alive
# connections (each has served one request), REACTORS=1 and 2, and nginx.
# Per side: RSS before its first round (VmRSS, after the warm-up); per round: build/loadgen
# idle opens the connections and holds them, RSS after (1 s after every
# answer came), then they close. Kernel socket memory is not in RSS.
row_memory() {
  need_tool "$LOADGEN"
  ROW_TITLE="memory per idle connection"
  ROW_SHAPES="idle"
  ROW_NOTES="build/loadgen idle opens $IDLE_CONNS keep-alive connections, one \`GET /\` on each, and holds them; server VmRSS is read before and 1 s after the last answer. per-connection = (after − before) ÷ $IDLE_CONNS (what one more connection costs); all-in = after ÷ $IDLE_CONNS. The playground preallocates its per-slot tables for IOX_MAX_CONNS (default 16384 per reactor) at start, so they are in *before*. Kernel socket buffers are not in RSS. Target: ≤ 1 KiB per idle connection."
  start_server_playground raw
  add_side ioxide-r1 / ok
  start_server_playground raw REACTORS=2
  add_side ioxide-r2 / ok
  # nginx closes idle keep-alive connections once fewer than 1/16 of
  # worker_connections are free: give it twice what is held.
  NGINX_WORKER_CONNECTIONS=$((2 * IDLE_CONNS + 256)) start_nginx 'location = / { return 200 "ok"; }'
  add_side nginx / ok
}
shape_idle() { LOAD_ARGV=("$LOADGEN" idle "$(url_port "$1")" / "$IDLE_CONNS"); LOAD_PARSER=:; }
shape_label_idle() { printf '%s idle keep-alive connections' "$IDLE_CONNS"; }
warmup_memory() { curl -s -o /dev/null "$2" || true; }
declare -A MEM_BASE=()
proc_rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
# TSV: col 6 = connections held, col 7 = RSS before kB, col 8 = RSS after kB,
# col 9 = bytes per connection (delta), col 10 = bytes per connection (all-in).
measure_memory() {
  local name=$1 pid=$2 url=$3 shape=$4 fifo=$BENCH_TMPDIR/idle.fifo out=$BENCH_TMPDIR/idle.out
  local before after lg line i
  "shape_$shape" "$url" 0
  kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) is gone"
  # "before" is the side's RSS before its first round: pages a round
  # touched stay resident, so later rounds measure against the same base.
  [ -n "${MEM_BASE[$name]:-}" ] || MEM_BASE[$name]=$(proc_rss_kb "$pid")
  before=${MEM_BASE[$name]}
  rm -f "$fifo"; mkfifo "$fifo"
  # stdin from a FIFO we hold open: closing it ends the hold.
  taskset -c "$WRK_CPU" "${LOAD_ARGV[@]}" <"$fifo" >"$out" 2>&1 &
  lg=$!
  exec 7>"$fifo"
  for ((i = 0; i < 600; i++)); do
    grep -q '^ready' "$out" 2>/dev/null && break
    kill -0 "$lg" 2>/dev/null || break
    sleep 0.1
  done
  local ok=0
  grep -q '^ready' "$out" && ok=1
  sleep 1
  after=$(proc_rss_kb "$pid")
  exec 7>&-
  [ "$ok" = 1 ] || kill "$lg" 2>/dev/null || true
  wait "$lg" 2>/dev/null || true
  # A connection the server closed while held is an error too.
  [ "$ok" = 1 ] && [ "$(lg_field "$out" errors)" != 0 ] && ok=0
  sleep 1   # let the server close them before the next side
  if [ "$ok" != 1 ]; then
    printf '%s\t%s\t%s\t%s\tdiscarded\t-\t-\t-\t-\t-\t%s\n' "$CUR_ROW" "$CUR_ROUND" "$shape" "$name" \
      "not every connection was answered: $(tr '\n' ' ' <"$out")" >>"$RUNS_TSV"
    printf '  round %s  %-10s DISCARDED: %s\n' "$CUR_ROUND" "$name" "$(tr '\n' ' ' <"$out")"
    return 0
  fi
  local per all
  per=$(awk -v a="$after" -v b="$before" -v n="$IDLE_CONNS" 'BEGIN{printf "%.0f", (a-b)*1024/n}')
  all=$(awk -v a="$after" -v n="$IDLE_CONNS" 'BEGIN{printf "%.0f", a*1024/n}')
  printf '%s\t%s\t%s\t%s\tkept\t%s\t%s\t%s\t%s\t%s\t\n' "$CUR_ROW" "$CUR_ROUND" "$shape" "$name" \
    "$IDLE_CONNS" "$before" "$after" "$per" "$all" >>"$RUNS_TSV"
  printf '  round %s  %-10s RSS %7s kB -> %7s kB with %s idle: %6s B/conn (all-in %s B/conn)\n' \
    "$CUR_ROUND" "$name" "$before" "$after" "$IDLE_CONNS" "$per" "$all"
}
print_table_memory() {
  local i
  echo "| server | RSS before kB | RSS with $IDLE_CONNS idle kB | bytes per idle connection | all-in bytes per connection | runs kept |"
  echo "|---|---:|---:|---:|---:|---:|"
  for i in "${!SIDE_NAMES[@]}"; do
    echo "| ${SIDE_NAMES[i]} | $(fmt_rps "$(cell idle "${SIDE_NAMES[i]}" 7)") | $(fmt_rps "$(cell idle "${SIDE_NAMES[i]}" 8)") | $(fmt_rps "$(cell idle "${SIDE_NAMES[i]}" 9)") | $(fmt_rps "$(cell idle "${SIDE_NAMES[i]}" 10)") | $(kept idle "${SIDE_NAMES[i]}") |"
  done
}
print_runs_memory() {
  echo "| round | server | status | connections | RSS before kB | RSS after kB | bytes/conn | all-in bytes/conn |"
  echo "|---:|---|---|---:|---:|---:|---:|---:|"
  awk -F'\t' '{ st = ($5=="kept") ? "kept" : "discarded: " $11;
                printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $2, $4, st, $6, $7, $8, $9, $10 }' "$RUNS_TSV"
}

# resp: ioxide-resp (REACTORS=1) vs redis-server, both pinned to the server
# core, under redis-benchmark on the load core: SET and GET, 1 and 16
# requests in flight per connection. redis-benchmark runs a fixed count
# (RESP_REQUESTS), not a duration; CPU per operation = the server's
# utime+stime delta over the run ÷ that count. A run whose redis-benchmark
# fails or prints no rate is discarded.
RESP_BIN=$(abspath "${RESP_BIN:-$ROOT/build/ioxide-resp}")
REDIS_SERVER=${REDIS_SERVER:-redis-server}
RESP_REQUESTS=${RESP_REQUESTS:-200000}

resp_port_of() { local u=${1#*://}; u=${u%%/*}; printf '%s\n' "${u##*:}"; }
resp_shape() {  # TEST DEPTH URL
  LOAD_ARGV=(taskset -c "$WRK_CPU" redis-benchmark -h 127.0.0.1 -p "$(resp_port_of "$3")" -c "$CONNS"
             -n "$RESP_REQUESTS" -P "$2" -t "$1" --csv)
  LOAD_PARSER=parse_redis_benchmark
}
shape_set_p1()  { resp_shape set 1 "$1"; }
shape_get_p1()  { resp_shape get 1 "$1"; }
shape_set_p16() { resp_shape set 16 "$1"; }
shape_get_p16() { resp_shape get 16 "$1"; }
shape_label_set_p1()  { printf 'SET -P 1 (c%s)' "$CONNS"; }
shape_label_get_p1()  { printf 'GET -P 1 (c%s)' "$CONNS"; }
shape_label_set_p16() { printf 'SET -P 16 (c%s)' "$CONNS"; }
shape_label_get_p16() { printf 'GET -P 16 (c%s)' "$CONNS"; }

# redis-benchmark --csv: a header, then "TEST","rps",... per test.
parse_redis_benchmark() {
  local out=$1 rc=$2 rps
  [ "$rc" = 0 ] || { echo "discard redis-benchmark exited with status $rc"; return; }
  rps=$(awk -F'"' '$2 ~ /^(SET|GET)$/ {print $4; exit}' "$out")
  [[ $rps =~ ^[0-9.]+$ ]] || { echo "discard no rate in redis-benchmark's output: $(head -c 120 "$out" | tr '\n' ' ')"; return; }
  echo "$RESP_REQUESTS $rps"
}

# wait_resp NAME PID PORT LOG — until PING answers PONG.
wait_resp() {
  local name=$1 pid=$2 port=$3 log=$4 i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { sed 's/^/  | /' "$log" >&2; die "$name (pid $pid) exited before answering on port $port"; }
    [ "$(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  sed 's/^/  | /' "$log" >&2
  die "$name (pid $pid) did not answer PING on 127.0.0.1:$port within 10 s"
}

# add_resp_side NAME — SET then GET must round-trip on the last started server.
add_resp_side() {
  redis-cli -h 127.0.0.1 -p "$SERVER_PORT" SET bench:check ok >/dev/null 2>&1 || true
  [ "$(redis-cli -h 127.0.0.1 -p "$SERVER_PORT" GET bench:check 2>/dev/null)" = ok ] ||
    die "$1: SET/GET bench:check did not round-trip on port $SERVER_PORT"
  SIDE_NAMES+=("$1") SIDE_PIDS+=("$SERVER_PID") SIDE_URLS+=("resp://127.0.0.1:$SERVER_PORT") SIDE_CMDS+=("$SERVER_CMD")
}

warmup_resp() {  # a short run of every shape
  local keep=$RESP_REQUESTS shape
  RESP_REQUESTS=20000
  for shape in $ROW_SHAPES; do
    "shape_$shape" "$2" 0
    "${LOAD_ARGV[@]}" >/dev/null 2>&1 || note "warm-up of $1 ($shape) failed; measuring anyway"
  done
  RESP_REQUESTS=$keep
}

row_resp() {
  command -v redis-benchmark >/dev/null || die "redis-benchmark not found (apt-get install redis-tools)"
  command -v "$REDIS_SERVER" >/dev/null || die "$REDIS_SERVER not found (apt-get install redis-server)"
  [ -x "$RESP_BIN" ] || die "$RESP_BIN not found (run make, or set RESP_BIN=)"
  ROW_TITLE="resp: ioxide-resp vs redis-server"
  ROW_SHAPES="set_p1 get_p1 set_p16 get_p16"
  ROW_NOTES="redis-benchmark -t set|get -n $RESP_REQUESTS -c $CONNS -P 1|16 --csv on core $WRK_CPU; ioxide-resp with REACTORS=1 and redis-server (no persistence), each pinned to core $SERVER_CPU; req/s is redis-benchmark's, CPU µs/req is the server's utime+stime over the run ÷ $RESP_REQUESTS."
  local port log dir
  port=$(free_port); log=$BENCH_TMPDIR/ioxide-resp-$port.log
  env REACTORS=1 "PORT=$port" HOST=127.0.0.1 taskset -c "$SERVER_CPU" "$RESP_BIN" >"$log" 2>&1 &
  SERVER_PID=$! SERVER_PORT=$port SERVER_CMD="REACTORS=1 PORT=$port HOST=127.0.0.1 taskset -c $SERVER_CPU ${RESP_BIN#"$ROOT"/}"
  SERVER_PIDS+=("$SERVER_PID")
  wait_resp ioxide-resp "$SERVER_PID" "$port" "$log"
  add_resp_side ioxide-resp
  port=$(free_port); dir=$BENCH_TMPDIR/redis-$port; mkdir -p "$dir"
  taskset -c "$SERVER_CPU" "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --daemonize no >"$dir/log" 2>&1 &
  SERVER_PID=$! SERVER_PORT=$port
  SERVER_CMD="taskset -c $SERVER_CPU $REDIS_SERVER --port $port --bind 127.0.0.1 --save '' --appendonly no --dir DIR --daemonize no"
  SERVER_PIDS+=("$SERVER_PID")
  wait_resp redis-server "$SERVER_PID" "$port" "$dir/log"
  add_resp_side redis-server
}

# ----------------------------------------------------------------- summary --
median() { sort -g | awk '{v[NR]=$1} END{ if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2 }'; }

fmt_rps() { awk -v x="$1" 'BEGIN{ if (x=="-") print "-"; else printf "%.0f", x }'; }
fmt_us()  { awk -v x="$1" 'BEGIN{ if (x=="-") print "-"; else printf "%.2f", x }'; }
ratio()   { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="-"||b=="-"||b==0) print "n/a"; else printf "%.2f×", a/b }'; }

# cell SHAPE SIDE COLUMN — median of COLUMN over kept runs of the cell.
cell() { awk -F'\t' -v s="$1" -v n="$2" -v c="$3" '$3==s && $4==n && $5=="kept"{print $c}' "$RUNS_TSV" | median; }
kept() { awk -F'\t' -v s="$1" -v n="$2" '$3==s && $4==n && $5=="kept"{k++} $3==s && $4==n{t++} END{printf "%d/%d", k, t}' "$RUNS_TSV"; }

print_table() {
  if declare -F "print_table_$CUR_ROW" >/dev/null; then "print_table_$CUR_ROW"; return; fi
  local shape i a_rps a_us rps us label
  echo "| shape | server | req/s (median) | server CPU µs/req (median) | runs kept |"
  echo "|---|---|---:|---:|---:|"
  for shape in $ROW_SHAPES; do
    label=$("shape_label_$shape")
    for i in "${!SIDE_NAMES[@]}"; do
      rps=$(cell "$shape" "${SIDE_NAMES[i]}" 7); us=$(cell "$shape" "${SIDE_NAMES[i]}" 9)
      if [ "$rps" = - ]; then
        echo "| $label | ${SIDE_NAMES[i]} | all runs discarded | all runs discarded | $(kept "$shape" "${SIDE_NAMES[i]}") |"
      else
        echo "| $label | ${SIDE_NAMES[i]} | $(fmt_rps "$rps") | $(fmt_us "$us") | $(kept "$shape" "${SIDE_NAMES[i]}") |"
      fi
    done
    a_rps=$(cell "$shape" "${SIDE_NAMES[0]}" 7); a_us=$(cell "$shape" "${SIDE_NAMES[0]}" 9)
    for ((i = 1; i < ${#SIDE_NAMES[@]}; i++)); do
      rps=$(cell "$shape" "${SIDE_NAMES[i]}" 7); us=$(cell "$shape" "${SIDE_NAMES[i]}" 9)
      echo "| $label | **${SIDE_NAMES[0]}/${SIDE_NAMES[i]}** | $(ratio "$a_rps" "$rps") | $(ratio "$a_us" "$us") | |"
    done
  done
}

print_runs() {
  echo "| round | shape | server | status | requests | req/s | CPU ticks | µs/req | µs/req (schedstat) |"
  echo "|---:|---|---|---|---:|---:|---:|---:|---:|"
  awk -F'\t' '{ st = ($5=="kept") ? "kept" : "discarded: " $11;
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $2, $3, $4, st, $6, $7, $8, $9, $10 }' "$RUNS_TSV"
}

cpu_model() { awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo; }

# shellcheck source=results-section.sh
. "$ROOT/bench/results-section.sh"
write_section() {  # ROW BLOCKFILE
  results_write_section "$RESULTS" "$1" "$2" || die "cannot write section '$1' of $RESULTS"
}

report_row() {
  local row=$1 i shape conf
  local block=$BENCH_TMPDIR/section-$row.md
  {
    echo "<!-- bench:$row:begin -->"
    echo "## make bench ($ROW_TITLE)"
    echo
    echo "Written by \`bench/run.sh\` (row \`$row\`); rerunning replaces this section only."
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Machine: $(nproc) CPUs, Linux $(uname -r), $(cpu_model)"
    echo "- Settings: DURATION=$DURATION ROUNDS=$ROUNDS WARMUP=$WARMUP CONNS=$CONNS PIPELINE_DEPTH=$PIPELINE_DEPTH; servers on core $SERVER_CPU, wrk on core $WRK_CPU; CLK_TCK=$CLK_TCK"
    echo "- Order: for each round, for each shape: $(IFS=' '; echo "${SIDE_NAMES[*]}") (interleaved). Warm-up: ${WARMUP} s per server and shape before round 1, not counted."
    echo "- Server CPU = delta of utime+stime (/proc/<pid>/stat fields 14+15) over the run, ÷ requests wrk completed. Runs with wrk socket errors or non-2xx/3xx answers are discarded and not in the medians."
    [ -n "$ROW_NOTES" ] && echo "- $ROW_NOTES"
    [ -n "$PLAYGROUND_CMD" ] && echo "- **Side ${SIDE_NAMES[0]} was a stand-in: PLAYGROUND_CMD=\`$PLAYGROUND_CMD\`, not build/playground.**"
    [ -z "$PLAYGROUND_CMD" ] && [ "$PLAYGROUND" != "$ROOT/build/playground" ] &&
      echo "- **Side ${SIDE_NAMES[0]} ran PLAYGROUND=\`$PLAYGROUND\`, not build/playground.**"
    echo
    echo "Commands:"
    echo
    echo '```sh'
    for i in "${!SIDE_NAMES[@]}"; do echo "# ${SIDE_NAMES[i]}"; echo "${SIDE_CMDS[i]}"; done
    for shape in $ROW_SHAPES; do
      "shape_$shape" "http://127.0.0.1:PORT/" "$DURATION"
      echo "# $("shape_label_$shape")"; echo "${LOAD_ARGV[*]}"
    done
    echo '```'
    for conf in "${NGINX_CONFS[@]}"; do
      echo
      echo "nginx.conf (DIR is a fresh temp dir; PORT a free port):"
      echo
      echo '```nginx'
      sed -e "s#$(dirname "$conf")#DIR#g" -e "s#127\.0\.0\.1:[0-9]*#127.0.0.1:PORT#" "$conf"
      echo '```'
    done
    echo
    print_table
    echo
    echo "<details><summary>Every run</summary>"
    echo
    if declare -F "print_runs_$CUR_ROW" >/dev/null; then "print_runs_$CUR_ROW"; else print_runs; fi
    echo
    echo "</details>"
    echo "<!-- bench:$row:end -->"
  } >"$block"
  if [ "$RESULTS" = - ]; then
    note "RESULTS=-: not writing a results file"
  else
    write_section "$row" "$block"
    note "wrote section '$row' of ${RESULTS#"$ROOT"/}"
  fi
}

# -------------------------------------------------------------------- main --
run_row() {
  local row=$1 i shape
  CUR_ROW=$row ROW_TITLE=$row ROW_SHAPES="keepalive pipelined" ROW_NOTES=
  SIDE_NAMES=() SIDE_PIDS=() SIDE_URLS=() SIDE_CMDS=() NGINX_CONFS=()
  RUNS_TSV=$BENCH_TMPDIR/runs-$row.tsv; : >"$RUNS_TSV"
  local first_pid=${#SERVER_PIDS[@]}
  "row_$row"
  echo "== row $row: $ROW_TITLE"
  [ -n "$PLAYGROUND_CMD" ] && note "side ${SIDE_NAMES[0]} is PLAYGROUND_CMD=$PLAYGROUND_CMD (a stand-in, not build/playground)"
  for i in "${!SIDE_NAMES[@]}"; do
    echo "  ${SIDE_NAMES[i]}: pid ${SIDE_PIDS[i]}, ${SIDE_URLS[i]}"
    warmup "${SIDE_NAMES[i]}" "${SIDE_URLS[i]}"
  done
  for ((CUR_ROUND = 1; CUR_ROUND <= ROUNDS; CUR_ROUND++)); do
    for shape in $ROW_SHAPES; do
      for i in "${!SIDE_NAMES[@]}"; do
        measure "${SIDE_NAMES[i]}" "${SIDE_PIDS[i]}" "${SIDE_URLS[i]}" "$shape"
      done
    done
  done
  echo
  echo "## make bench ($ROW_TITLE)"
  echo
  print_table
  local ndisc
  ndisc=$(awk -F'\t' '$5=="discarded"' "$RUNS_TSV" | wc -l)
  echo
  if [ "$ndisc" -gt 0 ]; then
    echo "Discarded (not reported in the medians): $ndisc run(s):"
    awk -F'\t' '$5=="discarded"{printf "  round %s, %s, %s: %s\n", $2, $3, $4, $11}' "$RUNS_TSV"
  else
    echo "No runs discarded."
  fi
  echo
  report_row "$row"
  # Stop this row's servers before the next row starts its own.
  stop_pids "${SERVER_PIDS[@]:first_pid}"
  SERVER_PIDS=("${SERVER_PIDS[@]:0:first_pid}")
}

read -ra ROWS <<<"${BENCH_ROWS//,/ }"
[ ${#ROWS[@]} -gt 0 ] || die "BENCH_ROWS is empty"
for row in "${ROWS[@]}"; do
  declare -F "row_$row" >/dev/null ||
    die "unknown row '$row' in BENCH_ROWS (known: $(declare -F | awk '$3 ~ /^row_/{sub(/^row_/, "", $3); print $3}' | tr '\n' ' '| sed 's/ $//'))"
done
for row in "${ROWS[@]}"; do
  run_row "$row"
done
