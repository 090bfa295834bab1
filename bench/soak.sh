#!/usr/bin/env bash
# bench/soak.sh — `make soak`: a bounded soak of the playground (issue 7 §4).
#
# Starts a throwaway PostgreSQL cluster, a FILE_ROOT with three files (1 KiB,
# 64 KiB, 1 MiB; bytes written by `build/soak --make-files`), and three
# playground processes — raw, pg, file, one mode each, on three ports — then
# runs build/soak against them (see bench/soak.c for what it checks): an
# idle-connection phase per server, then SOAK_SECONDS of mixed traffic over
# SOAK_CONNS connections with injected resets, slowloris clients and a
# `pg_ctl restart -m fast` at half time. Figures go to stdout and into the
# section <!-- bench:soak:begin -->…<!-- bench:soak:end --> of bench/RESULTS.md
# (only that section is replaced). Exits non-zero on any non-injected error,
# an fd count that does not return to its baseline, a dead server, or a
# server that does not exit 0 on SIGTERM afterwards.
#
# Environment (defaults in brackets):
#   SOAK_SECONDS       length of the mixed phase [60]
#   SOAK_CONNS         concurrent client connections in total [10000]
#   SOAK_IDLE_CONNS    idle keep-alive connections per server, idle phase [10000]
#   SOAK_SOURCES       client source addresses 127.0.0.2… [8]
#   SOAK_IDLE_TIMEOUT_MS  the servers' IDLE_TIMEOUT_MS [5000]
#   SOAK_SLOWLORIS     slowloris connections, split over the servers [60]
#   SOAK_RESET_PERMILLE  requests cut by a RST, per mille [5]
#   SOAK_THREADS       client threads, each its own epoll and share [4]
#   REACTORS           reactors per server [online CPUs]
#   RESULTS            results file [bench/RESULTS.md]; RESULTS=- writes none
set -euo pipefail

ORIG_PWD=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
abspath() { case $1 in /*|-) printf '%s\n' "$1" ;; *) printf '%s\n' "$ORIG_PWD/$1" ;; esac; }

SOAK_SECONDS=${SOAK_SECONDS:-60}
SOAK_CONNS=${SOAK_CONNS:-10000}
SOAK_IDLE_CONNS=${SOAK_IDLE_CONNS:-10000}
SOAK_SOURCES=${SOAK_SOURCES:-8}
SOAK_IDLE_TIMEOUT_MS=${SOAK_IDLE_TIMEOUT_MS:-5000}
SOAK_SLOWLORIS=${SOAK_SLOWLORIS:-60}
SOAK_RESET_PERMILLE=${SOAK_RESET_PERMILLE:-5}
SOAK_THREADS=${SOAK_THREADS:-4}
REACTORS=${REACTORS:-$(nproc)}
PLAYGROUND=${PLAYGROUND:-$ROOT/build/playground}
SOAK=${SOAK:-$ROOT/build/soak}
RESULTS=$(abspath "${RESULTS:-$ROOT/bench/RESULTS.md}")
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

die()  { printf 'soak: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'soak: %s\n' "$*" >&2; }

[[ $SOAK_SECONDS =~ ^[0-9]+$ && $SOAK_SECONDS -ge 10 ]] || die "SOAK_SECONDS must be whole seconds >= 10 (got '$SOAK_SECONDS')"
[ -x "$PLAYGROUND" ] || die "$PLAYGROUND not found (run make)"
[ -x "$SOAK" ] || die "$SOAK not found (run make build/soak)"
[ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb not found (apt-get install postgresql)"
command -v curl >/dev/null || die "curl not found"

# Each server needs ~SOAK_IDLE_CONNS fds (plus its rings, pool, listeners);
# the tool raises its own limit. Root may raise the hard limit.
NOFILE=$(( (SOAK_CONNS > SOAK_IDLE_CONNS ? SOAK_CONNS : SOAK_IDLE_CONNS) + 4096 ))
ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge "$NOFILE" ] || die "open-file limit $(ulimit -n) < $NOFILE; raise the hard limit (ulimit -Hn) or run as root"
# Per reactor: the kernel may put every connection on one reactor.
MAX_CONNS=$(( (SOAK_CONNS > SOAK_IDLE_CONNS ? SOAK_CONNS : SOAK_IDLE_CONNS) + 1024 ))

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ioxide-soak.XXXXXX")
PIDS=()
PG_DIR=
# shellcheck source=../mk/pg-cluster.sh
. "$ROOT/mk/pg-cluster.sh"
cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  pgc_stop
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM

port_in_use() { [ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]; }
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 20000))
    port_in_use "$p" || { printf '%s\n' "$p"; return 0; }
  done
  die "no free TCP port found"
}

# ---- PostgreSQL (mk/pg-cluster.sh) ----
PG_PORT=$(free_port)
pgc_start ioxide-soak-pg "$PG_PORT" 100 || die "starting the soak cluster failed"
PG_DIR=$PGC_DIR
if [ "$(id -u)" = 0 ]; then
  RESTART_CMD="runuser -u postgres -- $PGBIN/pg_ctl -D $PG_DIR/data -l $PG_DIR/server.log -m fast -w -t 60 restart >/dev/null"
else
  RESTART_CMD="$PGBIN/pg_ctl -D $PG_DIR/data -l $PG_DIR/server.log -m fast -w -t 60 restart >/dev/null"
fi

# ---- files ----
WWW=$TMP/www
mkdir -p "$WWW"
"$SOAK" --make-files "$WWW"

# ---- servers ----
COMMON=(REACTORS="$REACTORS" IDLE_TIMEOUT_MS="$SOAK_IDLE_TIMEOUT_MS" IOX_MAX_CONNS="$MAX_CONNS" HOST=127.0.0.1)
declare -A PORT PID CMD
start() {  # MODE PATH BODY [VAR=VALUE...]
  local mode=$1 path=$2 want=$3; shift 3
  local port log i
  port=$(free_port)
  log=$TMP/playground-$mode.log
  env "${COMMON[@]}" PORT="$port" PLAYGROUND_MODE="$mode" "$@" "$PLAYGROUND" >"$log" 2>&1 &
  PID[$mode]=$!; PORT[$mode]=$port; PIDS+=("$!")
  CMD[$mode]="${COMMON[*]} PORT=$port PLAYGROUND_MODE=$mode $* ${PLAYGROUND#"$ROOT"/}"
  for ((i = 0; i < 100; i++)); do
    kill -0 "${PID[$mode]}" 2>/dev/null || { sed 's/^/  | /' "$log" >&2; die "playground ($mode) exited at startup"; }
    [ "$(curl -s --max-time 1 "http://127.0.0.1:$port$path" | head -c 16 | od -An -tx1 | tr -d ' \n')" = "$want" ] && return 0
    sleep 0.1
  done
  sed 's/^/  | /' "$log" >&2
  die "playground ($mode) did not answer GET $path with '$want' within 10 s"
}
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
start raw / "$(hex ok)"
# PG_POOL_MIN=PG_POOL_SIZE: the pool grows by load and never shrinks, so a
# pool that starts small ends the soak with more sessions (sockets) than it
# had at the baseline; full from the start, the fd count must come back.
start pg / "$(hex db=42)" PGHOST=127.0.0.1 PGPORT="$PG_PORT" PGUSER=ioxide PGPASSWORD=ioxide-pw PGDATABASE=ioxide \
  PG_POOL_SIZE=8 PG_POOL_MIN=8 PG_QUEUE_MAX=65536
start file /1k.bin "$(head -c 16 "$WWW/1k.bin" | od -An -tx1 | tr -d ' \n')" FILE_ROOT="$WWW"
note "raw pid ${PID[raw]} :${PORT[raw]}, pg pid ${PID[pg]} :${PORT[pg]}, file pid ${PID[file]} :${PORT[file]}; PostgreSQL :$PG_PORT"

# ---- the soak ----
SOAK_ARGV=("$SOAK" --raw "${PORT[raw]}:${PID[raw]}" --pg "${PORT[pg]}:${PID[pg]}" --file "${PORT[file]}:${PID[file]}"
           --conns "$SOAK_CONNS" --idle-conns "$SOAK_IDLE_CONNS" --seconds "$SOAK_SECONDS" --sources "$SOAK_SOURCES"
           --idle-timeout-ms "$SOAK_IDLE_TIMEOUT_MS" --slowloris "$SOAK_SLOWLORIS"
           --reset-permille "$SOAK_RESET_PERMILLE" --threads "$SOAK_THREADS" --restart-cmd "$RESTART_CMD" --report "$TMP/report.md")
"${SOAK_ARGV[@]}" && soak_rc=0 || soak_rc=$?
[ -s "$TMP/report.md" ] || die "build/soak exited with status $soak_rc and wrote no report"

# ---- servers must still exit 0 on SIGTERM ----
declare -A EXIT
stop_rc=0
for mode in raw pg file; do
  pid=${PID[$mode]}
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then EXIT[$mode]="still running 6 s after SIGTERM"; kill -KILL "$pid"; stop_rc=1
  else wait "$pid" && EXIT[$mode]=0 || { EXIT[$mode]=$?; stop_rc=1; }; fi
  # server-side complaints, for the record
  grep -E 'error|warn|ERROR|WARN' "$TMP/playground-$mode.log" | sort | uniq -c | sort -rn | head -5 | sed "s/^/  $mode log: /" >&2 || true
done
PIDS=()

# ---- results ----
cpu_model() { awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo; }
block=$TMP/section.md
{
  echo "<!-- bench:soak:begin -->"
  echo "## make soak (raw, pg, file under 10 000 connections with injected faults)"
  echo
  echo "Written by \`bench/soak.sh\` (\`make soak\`); rerunning replaces this section only."
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Machine: $(nproc) CPUs, Linux $(uname -r), $(cpu_model), $(awk '/MemTotal/{printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo); load tool, three servers and PostgreSQL all on this machine (unpinned)"
  echo "- Settings: SOAK_SECONDS=$SOAK_SECONDS SOAK_CONNS=$SOAK_CONNS SOAK_IDLE_CONNS=$SOAK_IDLE_CONNS SOAK_SOURCES=$SOAK_SOURCES SOAK_IDLE_TIMEOUT_MS=$SOAK_IDLE_TIMEOUT_MS SOAK_SLOWLORIS=$SOAK_SLOWLORIS SOAK_RESET_PERMILLE=$SOAK_RESET_PERMILLE SOAK_THREADS=$SOAK_THREADS REACTORS=$REACTORS"
  echo "- Traffic: keep-alive loops (one request in flight each), split raw 40% / pg 25% / file 35% (file: /1k.bin, /64k.bin, /1m.bin at random, every byte checked); clients bound to 127.0.0.2–127.0.0.$((SOAK_SOURCES + 1)). Injected: resets (SO_LINGER {1,0} close after half the request or before the answer), slowloris clients (one header byte every 2 s; the server must close them after IDLE_TIMEOUT_MS), \`pg_ctl restart -m fast\` at half time (pg: 503 allowed from its start until 5 s after it finished, 200 required after that). Before the soak, per server: SOAK_IDLE_CONNS keep-alive connections make one request and stay open; memory per idle connection = (RSS with them open − RSS before) ÷ count."
  echo "- Servers after the soak, SIGTERM → exit status: raw ${EXIT[raw]}, pg ${EXIT[pg]}, file ${EXIT[file]}"
  echo
  echo "Commands:"
  echo
  echo '```sh'
  echo "make soak    # = bench/soak.sh"
  for mode in raw pg file; do echo "${CMD[$mode]}"; done
  echo "${SOAK_ARGV[*]}" | sed -e "s#$ROOT/##g" -e "s#$PG_DIR#PGDIR#g" -e "s#$TMP#TMP#g" -e 's#PGPASSWORD=[^ ]*#PGPASSWORD=...#'
  echo '```'
  echo
  cat "$TMP/report.md"
  echo "<!-- bench:soak:end -->"
} >"$block"
sed -i -e 's#PGPASSWORD=ioxide-pw#PGPASSWORD=...#g' -e "s#$PG_DIR#PGDIR#g" -e "s#$TMP#TMP#g" "$block"
cat "$block"

if [ "$RESULTS" != - ]; then
  # shellcheck source=results-section.sh
  . "$ROOT/bench/results-section.sh"
  results_write_section "$RESULTS" soak "$block" || die "cannot write section 'soak' of $RESULTS"
  note "wrote section 'soak' of ${RESULTS#"$ROOT"/}"
fi
[ "$soak_rc" = 0 ] && [ "$stop_rc" = 0 ] || { note "FAILED (soak exit $soak_rc, server exits: raw ${EXIT[raw]} pg ${EXIT[pg]} file ${EXIT[file]})"; exit 1; }
note "passed"
