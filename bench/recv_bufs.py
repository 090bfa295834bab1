#!/usr/bin/env python3
"""bench/recv_bufs.py — the provided-buffer modes (IOX_RECV_BUFS) on bulk
receives, by counts: for each mode the playground (raw, REACTORS=1, pinned
to CPU 1) takes COUNT uploads of MIB MiB to /echo on one keep-alive
connection (the client reads the echo as it sends, pinned to CPU 0); then
its /stats counters give reaped CQEs and io_uring_enter calls per MiB, and
/proc its CPU time per MiB (a timing: noisy on a shared machine, label it).
A pipelined row does the same with DEPTH-deep pipelined `GET /` (requests
per CQE). Usage: bench/recv_bufs.py [plain inc ...]; env PLAYGROUND,
COUNT (8), MIB (8), DEPTH (64), ROUNDS (2000)."""
import os, socket, subprocess, sys, threading, time

PG = os.environ.get("PLAYGROUND", "build/playground")
COUNT, MIB = int(os.environ.get("COUNT", 8)), int(os.environ.get("MIB", 8))
DEPTH, ROUNDS = int(os.environ.get("DEPTH", 64)), int(os.environ.get("ROUNDS", 2000))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def cpu_ms(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1000 / os.sysconf("SC_CLK_TCK")

def stats(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /stats HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
    out = b""
    while True:
        k = s.recv(65536)
        if not k: break
        out += k
    vals = {}
    for line in out.decode().splitlines():
        if line.startswith("ioxide_reactor_") and " " in line:
            name, v = line.rsplit(" ", 1)
            name = name.split("{")[0]
            vals[name] = vals.get(name, 0) + float(v)
    return vals

def uploads(port):
    s = socket.create_connection(("127.0.0.1", port))
    body = bytes(range(256)) * (MIB * 4096)
    head = b"POST /echo HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n" % len(body)
    for _ in range(COUNT):
        t = threading.Thread(target=lambda: s.sendall(head + body)); t.start()
        got, need = 0, None
        buf = b""
        while need is None or got < need:
            k = s.recv(1 << 20)
            if not k: sys.exit("closed")
            if need is None:
                buf += k
                if b"\r\n\r\n" in buf:
                    h, rest = buf.split(b"\r\n\r\n", 1)
                    need, got = len(body), len(rest)
            else:
                got += len(k)
        t.join()
    s.close()

def pipelined(port):
    s = socket.create_connection(("127.0.0.1", port))
    req = b"GET / HTTP/1.1\r\nHost: b\r\n\r\n" * DEPTH
    for _ in range(ROUNDS):
        s.sendall(req)
        n = 0
        while n < DEPTH:
            n += s.recv(1 << 20).count(b"HTTP/1.1 200")
    s.close()

def measure(mode, fn, units):
    port = free_port()
    env = dict(os.environ, IOX_RECV_BUFS=mode, PORT=str(port), HOST="127.0.0.1", REACTORS="1",
               PLAYGROUND_MODE="raw", IOX_STATS_PATH="/stats", IOX_MAX_BODY_MB=str(MIB + 1), IOX_PIN="0")
    p = subprocess.Popen(["taskset", "-c", "1", PG], env=env, stderr=subprocess.PIPE)
    for _ in range(100):
        try: socket.create_connection(("127.0.0.1", port)).close(); break
        except OSError: time.sleep(0.05)
    os.sched_setaffinity(0, {0})
    a, c0 = stats(port), cpu_ms(p.pid)
    fn(port)
    c1, b = cpu_ms(p.pid), stats(port)
    p.terminate(); p.wait()
    d = lambda k: b.get(k, 0) - a.get(k, 0)
    return (d("ioxide_reactor_cqes_total") / units, d("ioxide_reactor_enters_total") / units, (c1 - c0) / units)

modes = sys.argv[1:] or ["plain", "inc"]
print(f"| mode | upload: CQEs/MiB | enters/MiB | CPU ms/MiB | pipelined {DEPTH}: CQEs/1k req | enters/1k req | CPU µs/req |")
print("|---|---:|---:|---:|---:|---:|---:|")
for m in modes:
    u = measure(m, uploads, COUNT * MIB)
    q = measure(m, pipelined, DEPTH * ROUNDS / 1000)
    print(f"| {m} | {u[0]:.0f} | {u[1]:.0f} | {u[2]:.2f} | {q[0]:.1f} | {q[1]:.1f} | {q[2]:.3f} |")
