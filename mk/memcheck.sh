#!/usr/bin/env bash
# mk/memcheck.sh — `make memcheck`: the test suites under valgrind memcheck.
#
# 1. Server under valgrind: the integration suites (playground_raw,
#    playground_pg, playground_hop, file_mode, responses) run from the normal runner
#    with IOX_PLAYGROUND_WRAPPER set, so every playground they spawn runs as
#    `valgrind ... build/playground` (tests/http_client.c, hc_server_spawn).
#    IOX_UNDER_VALGRIND=1 scales the helpers' timeouts (hc_slow, ×20).
# 2. Runner under valgrind: the in-process suites (conn_sim through the
#    simulated ring, the parsers, url_path, the pg client pieces and pg_ring,
#    which drives the Postgres ring client on a real ring against a
#    throwaway cluster) with build/tests itself under valgrind.
#
# Valgrind is ~20-50x slower, so the load cases (thousands of connections,
# RSS bounds, pipelined load over many reactors) are not run here — they
# are listed in SKIPPED below and run in `make test` (normal and ASan). Every
# other case of those suites runs: startup, requests in every mode,
# pipelining, malformed requests, limits, resets, idle timeout, SIGTERM exit.
#
# Passes only with zero valgrind errors and no definitely-lost leaks in every
# server and in the runner, and with every selected test passing. Logs:
# $MEMCHECK_DIR (default build/memcheck/), one file per process.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DIR=${MEMCHECK_DIR:-$BUILD/memcheck}
command -v valgrind >/dev/null || { echo "memcheck: valgrind not found — apt-get install valgrind" >&2; exit 1; }
rm -rf "$DIR"; mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
SUPP=()
[ -s tests/valgrind.supp ] && SUPP=(--suppressions="$PWD/tests/valgrind.supp")
VG=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite
    --track-origins=yes --num-callers=30 "${SUPP[@]}")

SERVER_CASES=(
  playground_raw:get_root playground_raw:unknown_path_404 playground_raw:head_then_pipelined_get
  playground_raw:pipeline_16_in_one_send playground_raw:request_byte_by_byte playground_raw:connection_close
  playground_raw:http10_closes_by_default playground_raw:http10_keep_alive
  playground_raw:post_content_length_then_get playground_raw:post_chunked_then_get playground_raw:body_split_across_sends
  playground_raw:malformed_request_line playground_raw:malformed_after_good_pipelined
  playground_raw:content_length_with_transfer_encoding playground_raw:conflicting_content_lengths
  playground_raw:header_block_70k_431 playground_raw:target_over_8k_414 playground_raw:http2_version_505
  playground_raw:bare_lf_400 playground_raw:missing_host_400 playground_raw:reset_mid_request
  playground_raw:idle_timeout playground_raw:backpressure_20000_unread playground_raw:sigterm_with_unread_pipeline
  playground_raw:startup_port_in_use
  playground_pg:get_root_is_db_42 playground_pg:database_down_503_then_recovers playground_pg:sigterm_exits_zero
  playground_hop:one_reactor_hops_to_itself_and_404_elsewhere playground_hop:sigterm_with_hops_in_flight
  file_mode:exact_bytes file_mode:directories_and_missing file_mode:head file_mode:not_modified
  file_mode:ranges file_mode:pipelined file_mode:traversal_corpus file_mode:sighup_resnapshot
  file_mode:sigterm_exits_cleanly responses:corpus stats:counters_from_every_reactor
)
SKIPPED="playground_raw:{load_1000_conns_x_100,tiny_buffer_ring_under_load,backpressure_200000_unread,sigterm_under_load} playground_pg:two_hundred_concurrent playground_hop:{two,four}_reactors_under_pipelined_load file_mode:slow_readers_bounded_memory"
RUNNER_SUITES=(conn_sim pg_sim msg_sim file_sim stream_sim client_sim file_stream router http_parser http_parser_skip pg_parser url_path pg_auth pg_conninfo pg_frontend pg_ring)

status=0
echo "=== memcheck 1/2: playground under valgrind (${#SERVER_CASES[@]} cases; not run here: $SKIPPED) ==="
IOX_UNDER_VALGRIND=1 IOX_SRC_DIR=$PWD \
IOX_PLAYGROUND_WRAPPER="${VG[*]} --log-file=$DIR/server.%p.log" \
  "$BUILD/tests" "${SERVER_CASES[@]}" || { echo "memcheck: test failures with the server under valgrind" >&2; status=1; }

echo "=== memcheck 2/2: test runner under valgrind (${RUNNER_SUITES[*]}) ==="
IOX_UNDER_VALGRIND=1 IOX_SRC_DIR=$PWD IOX_SIM_SEEDS=${IOX_SIM_SEEDS:-300} \
  "${VG[@]}" --log-file="$DIR/runner.%p.log" "$BUILD/tests" "${RUNNER_SUITES[@]}" ||
  { echo "memcheck: the runner under valgrind failed (tests or valgrind errors, see $DIR/runner.*.log)" >&2; status=1; }

# Summaries. A server log without an ERROR SUMMARY did not finish (killed).
summ() {  # LOG → "errors definite indirect possible"
  awk '/ERROR SUMMARY:/{e=$4} /definitely lost:/{d=$4} /indirectly lost:/{i=$4} /possibly lost:/{p=$4}
       END{printf "%s %s %s %s\n", (e==""?"?":e), (d==""?0:d), (i==""?0:i), (p==""?0:p)}' "$1"
}
echo
echo "=== valgrind summary ==="
for kind in server runner; do
  n=0 errs=0 def=0 unfinished=0
  for f in "$DIR"/$kind.*.log; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    read -r e d i p <<<"$(summ "$f")"
    if [ "$e" = "?" ]; then unfinished=$((unfinished + 1)); echo "  $(basename "$f"): no ERROR SUMMARY (a child forked by the runner that exec'd another program, e.g. pg_ctl)"; continue; fi
    d=${d//,/}
    errs=$((errs + e)); def=$((def + d))
    if [ "$e" != 0 ] || [ "$d" != 0 ]; then echo "  $(basename "$f"): $e errors, $d bytes definitely lost"; fi
  done
  echo "$kind: $n process(es) under valgrind, $errs errors, $def bytes definitely lost, $unfinished forked-then-exec children without a summary"
  [ "$errs" = 0 ] && [ "$def" = 0 ] || status=1
done
[ $status = 0 ] && echo "memcheck: PASS" || echo "memcheck: FAIL (logs in $DIR)"
exit $status
