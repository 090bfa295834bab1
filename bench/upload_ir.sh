#!/bin/sh
# bench/upload_ir.sh — user-space instructions per MiB of a large request
# body, counted by callgrind (like bench/ir.sh): the playground in raw mode
# under valgrind --tool=callgrind (REACTORS=1), a Python client POSTs
# COUNT bodies of MIB MiB each to /echo on one keep-alive connection,
# reading the echo as it sends. One warm-up upload, `callgrind_control
# --zero`, COUNT uploads, `--dump`: Ir per MiB = Ir ÷ (COUNT · MIB). The
# server's environment passes through (IOX_RECV_BUFS, IOX_RECV_BUFSIZE,
# IOX_OP_COUNTS...), so
#   IOX_RECV_BUFS=plain bench/upload_ir.sh; IOX_RECV_BUFS=inc bench/upload_ir.sh
# compares the provided-buffer modes on bulk receives (recv CQEs per byte).
# Environment: PLAYGROUND (build/playground), COUNT (4), MIB (8).
set -eu
PLAYGROUND=${PLAYGROUND:-build/playground}
COUNT=${COUNT:-4}
MIB=${MIB:-8}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d /tmp/upload_ir.XXXXXX)
out=$dir/callgrind.out
REACTORS=1 PORT=$port HOST=127.0.0.1 PLAYGROUND_MODE=raw IOX_MAX_BODY_MB=$((MIB + 1)) \
    valgrind --tool=callgrind --callgrind-out-file="$out" "$PLAYGROUND" >"$dir/server.log" 2>&1 &
vpid=$!
upload() {
    python3 - "$port" "$1" "$MIB" <<'PY'
import socket, sys, threading, time
port, count, mib = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for _ in range(300):
    try:
        s = socket.create_connection(("127.0.0.1", port)); break
    except OSError: time.sleep(0.1)
body = bytes(range(256)) * (mib * 4096)
head = b"POST /echo HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n" % len(body)
for _ in range(count):
    t = threading.Thread(target=lambda: s.sendall(head + body)); t.start()
    got, need, hdr = b"", None, None
    while need is None or len(got) < need:
        k = s.recv(1 << 20)
        if not k: sys.exit("closed")
        got += k
        if hdr is None and b"\r\n\r\n" in got:
            hdr, got = got.split(b"\r\n\r\n", 1)
            if b" 200 " not in hdr.split(b"\r\n")[0]: sys.exit("status: %r" % hdr[:40])
            need = len(body)
    t.join()
    if got != body: sys.exit("echo differs")
PY
}
rc=0
{ upload 1 && callgrind_control --zero "$vpid" >/dev/null 2>&1 && upload "$COUNT" &&
  callgrind_control --dump "$vpid" >/dev/null 2>&1; } || rc=1
sleep 1
kill -TERM "$vpid" 2>/dev/null || true
i=0
while kill -0 "$vpid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -KILL "$vpid" 2>/dev/null || true
wait "$vpid" 2>/dev/null || true
f=$(ls -t "$out".* 2>/dev/null | head -n 1 || true)
if [ $rc != 0 ] || [ -z "$f" ]; then echo "upload_ir.sh: failed (server log: $dir/server.log)" >&2; exit 1; fi
ir=$(sed -n 's/^summary: //p' "$f")
awk -v ir="$ir" -v n="$((COUNT * MIB))" -v m="${IOX_RECV_BUFS:-auto}" \
    'BEGIN { printf "recv_bufs=%s mib=%d ir=%s ir_per_mib=%.0f\n", m, n, ir, ir / n }'
grep -h "provided buffer ring" "$dir/server.log" | sed 's/^/  /' || true
rm -rf "$dir"
