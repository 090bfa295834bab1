#!/usr/bin/env bash
# mk/run-pg.sh — `make run-pg`: a throwaway PostgreSQL cluster and the
# playground in pg mode against it, in the foreground. Ctrl-C stops both
# and removes the cluster.
#
#   PORT=8080 PG_PORT=54329 REACTORS=2 mk/run-pg.sh
#
# The cluster lives in a temp dir (initdb runs as the `postgres` user when
# we are root: postgres refuses to run as root), listens on 127.0.0.1:PG_PORT
# and its socket dir, and has a role `ioxide` with a SCRAM-SHA-256 password
# over TCP; the playground connects as that role over TCP.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_PORT=${PG_PORT:-54329}
BUILD=${BUILD:-build}
# shellcheck source=pg-cluster.sh
. mk/pg-cluster.sh
trap pgc_stop EXIT
pgc_start iox-run-pg "$PG_PORT" 200 || exit 1
dir=$PGC_DIR
echo "run-pg: PostgreSQL on 127.0.0.1:$PG_PORT (data $dir/data, log $dir/server.log)" >&2
echo "run-pg: playground on :${PORT:-8080} — try: curl http://127.0.0.1:${PORT:-8080}/" >&2
# Not exec: the trap must run after the playground exits.
PLAYGROUND_MODE=pg PORT=${PORT:-8080} PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=ioxide \
  PGPASSWORD=ioxide-pw PGDATABASE=ioxide "$BUILD/playground" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' INT TERM
wait $pid || true
wait $pid 2>/dev/null || true
