#!/usr/bin/env bash
# Stand-in for build/playground, for developing the bench harness before the
# real server exists. Honours the raw-mode part of the playground contract
# (GET / -> 200 "ok", other paths -> 404) using nginx: one process, in the
# foreground, exec'd so the pid bench/run.sh started is the one doing the work.
#
#   PLAYGROUND=bench/standin/nginx-playground.sh bench/run.sh
#
# Reads PORT and PLAYGROUND_MODE (raw only); ignores REACTORS. Its files go in
# $BENCH_TMPDIR (set by run.sh, removed by run.sh's cleanup).
set -eu
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/nginx-conf.sh
. "$here/nginx-conf.sh"
port=${PORT:-8080}
mode=${PLAYGROUND_MODE:-raw}
if [ "$mode" != raw ]; then
  echo "nginx-playground stand-in: only PLAYGROUND_MODE=raw is implemented (got '$mode')" >&2
  exit 2
fi
dir=${BENCH_TMPDIR:?set BENCH_TMPDIR (bench/run.sh does)}/standin-$port
write_nginx_conf "$dir" "$port" 'location = / { return 200 "ok"; } location / { return 404; }'
exec "${NGINX:-/usr/sbin/nginx}" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf"
