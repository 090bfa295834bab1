# mk/pg-cluster.sh — a throwaway PostgreSQL cluster for scripts (sourced).
# Used by mk/run-pg.sh (make run-pg), bench/run.sh (pg row) and bench/soak.sh.
# The C tests have their own harness (tests/pg_cluster.c).
#
#   source mk/pg-cluster.sh
#   pgc_start PREFIX PORT [MAX_CONNECTIONS]   # sets PGC_DIR; returns non-zero with the log on stderr
#   pgc_stop                                  # immediate stop, removes PGC_DIR (safe to call twice)
#   pgc_as CMD...                             # CMD as the postgres user when we are root
#
# The cluster: listens on 127.0.0.1:PORT and a Unix socket in PGC_DIR,
# fsync off; trust over the Unix socket, scram-sha-256 over TCP; role
# `ioxide` (password `ioxide-pw`, SCRAM) owning database `ioxide`.
# postgres refuses to run as root: as root, every server command runs as the
# `postgres` user, and PGC_DIR (under /tmp, mode 755) belongs to it.

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGC_DIR=

pgc_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pgc_start() {
  local prefix=$1 port=$2 maxconn=${3:-100}
  [ -x "$PGBIN/initdb" ] || { echo "pg-cluster: $PGBIN/initdb not found — apt-get install postgresql" >&2; return 1; }
  PGC_DIR=$(mktemp -d "/tmp/$prefix.XXXXXX") || return 1
  chmod 755 "$PGC_DIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$PGC_DIR"
  pgc_as "$PGBIN/initdb" -D "$PGC_DIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
    >"$PGC_DIR/initdb.log" 2>&1 || { cat "$PGC_DIR/initdb.log" >&2; echo "pg-cluster: initdb failed" >&2; return 1; }
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\nfsync = off\nsynchronous_commit = off\nmax_connections = %s\n" \
    "$port" "$PGC_DIR" "$maxconn" >>"$PGC_DIR/data/postgresql.conf"
  printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$PGC_DIR/data/pg_hba.conf"
  pgc_as "$PGBIN/pg_ctl" -D "$PGC_DIR/data" -l "$PGC_DIR/server.log" -w -t 60 start >/dev/null ||
    { tail -20 "$PGC_DIR/server.log" >&2; echo "pg-cluster: pg_ctl start failed" >&2; return 1; }
  pgc_as "$PGBIN/psql" -X -q -h "$PGC_DIR" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "SET password_encryption = 'scram-sha-256'; CREATE ROLE ioxide LOGIN PASSWORD 'ioxide-pw'" \
    -c "CREATE DATABASE ioxide OWNER ioxide" >/dev/null ||
    { echo "pg-cluster: creating role ioxide failed" >&2; return 1; }
}

pgc_stop() {
  [ -n "$PGC_DIR" ] || return 0
  pgc_as "$PGBIN/pg_ctl" -D "$PGC_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PGC_DIR"
  PGC_DIR=
}
