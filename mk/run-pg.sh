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
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_PORT=${PG_PORT:-54329}
BUILD=${BUILD:-build}
[ -x "$PGBIN/initdb" ] || { echo "run-pg: $PGBIN/initdb not found — apt-get install postgresql" >&2; exit 1; }
dir=$(mktemp -d /tmp/iox-run-pg-XXXXXX)
chmod 755 "$dir"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
max_connections = 200
CONF
cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 scram-sha-256
HBA
as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
  || { tail -20 "$dir/server.log" >&2; exit 1; }
as_pg "$PGBIN/psql" -X -q -h "$dir" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -c "SET password_encryption = 'scram-sha-256'; CREATE ROLE ioxide LOGIN PASSWORD 'ioxide-pw'" \
  -c "CREATE DATABASE ioxide OWNER ioxide" >/dev/null
echo "run-pg: PostgreSQL on 127.0.0.1:$PG_PORT (data $dir/data, log $dir/server.log)" >&2
echo "run-pg: playground on :${PORT:-8080} — try: curl http://127.0.0.1:${PORT:-8080}/" >&2
# Not exec: the trap must run after the playground exits.
PLAYGROUND_MODE=pg PORT=${PORT:-8080} PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=ioxide \
  PGPASSWORD=ioxide-pw PGDATABASE=ioxide "$BUILD/playground" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' INT TERM
wait $pid || true
wait $pid 2>/dev/null || true
