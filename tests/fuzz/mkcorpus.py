#!/usr/bin/env python3
"""tests/fuzz/mkcorpus.py — (re)write the seed corpora in tests/fuzz/corpus/.

Seeds are generated, not hand-edited, so the input layouts of the targets
(documented at the top of each tests/fuzz/fuzz_*.c) live in one place:

  fuzz_http_parser  10-byte header + request stream; streams come from the
                    ```http blocks of tests/data/http/*.md (up to 4 KiB)
  fuzz_pg_parser    10-byte header + backend message stream
  fuzz_http_conn    config byte + op program
  fuzz_pg_conn      two config bytes + op program
  fuzz_file_stream  config byte + op program (requests encoded as add_request
                    in tests/file_sim_harness.h draws them)

Run from the repository root: python3 tests/fuzz/mkcorpus.py
"""
import glob
import hashlib
import os
import re
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def unescape(s):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            e = s[i + 1]
            i += 2
            if e == "r": out += b"\r"
            elif e == "n": out += b"\n"
            elif e == "t": out += b"\t"
            elif e == "0": out += b"\0"
            elif e == "\\": out += b"\\"
            elif e == "x": out.append(int(s[i:i + 2], 16)); i += 2
            else: out += e.encode()
            continue
        out += c.encode()
        i += 1
    return bytes(out)


def http_cases():
    """(slug, bytes, has_limits) for every ```http block of tests/data/http."""
    for md in sorted(glob.glob("tests/data/http/*.md")):
        text = open(md).read()
        base = os.path.splitext(os.path.basename(md))[0]
        for sec in re.split(r"^## ", text, flags=re.M)[1:]:
            title = sec.splitlines()[0]
            m = re.search(r"```http\n(.*?)```", sec, re.S)
            if not m:
                continue
            data = bytearray()
            for line in m.group(1).splitlines():
                r = re.match(r"@repeat (\d+) (.*)", line)
                data += unescape(r.group(2)) * int(r.group(1)) if r else unescape(line)
            slug = base + "-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40]
            yield slug, bytes(data), "```limits" in sec


# Header: limits byte, four split points, chunk size.
def hdr(mode=0, cuts=(3, 17, 40, 90), chunk=7):
    return bytes([mode]) + b"".join(struct.pack(">H", c) for c in cuts) + bytes([chunk])


def http_parser():
    n = 0
    for slug, data, limited in http_cases():
        if len(data) > 4096:
            continue
        write("fuzz_http_parser", slug, hdr(1 if limited else 0) + data)
        n += 1
    # The same pipeline under small and derived limits.
    pipe = (b"GET /1?q=a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n")
    write("fuzz_http_parser", "pipeline-small-limits", hdr(1) + pipe)
    write("fuzz_http_parser", "pipeline-derived-limits", hdr(0x42) + pipe)
    write("fuzz_http_parser", "pipeline-huge-body-limit", hdr(3, chunk=1) + pipe)
    return n + 3


def pg_msg(t, body):
    return t + struct.pack(">I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def pg_parser():
    i16 = lambda v: struct.pack(">h", v)
    i32 = lambda v: struct.pack(">i", v)
    startup = (pg_msg(b"R", i32(0)) + pg_msg(b"S", cstr("server_version") + cstr("15.6")) +
               pg_msg(b"K", i32(1234) + i32(5678)) + pg_msg(b"Z", b"I"))
    rowdesc = pg_msg(b"T", i16(2) +
                     cstr("id") + i32(16384) + i16(1) + i32(23) + i16(4) + i32(-1) + i16(0) +
                     cstr("name") + i32(16384) + i16(2) + i32(25) + i16(-1) + i32(-1) + i16(0))
    rows = pg_msg(b"D", i16(2) + i32(1) + b"1" + i32(5) + b"hello") + pg_msg(b"D", i16(2) + i32(-1) + i32(0))
    query = rowdesc + rows + pg_msg(b"C", cstr("SELECT 2")) + pg_msg(b"Z", b"I")
    error = pg_msg(b"E", b"SERROR\0VERROR\0C42P01\0Mrelation does not exist\0P15\0Fparse.c\0L123\0Rfoo\0\0")
    notice = pg_msg(b"N", b"SNOTICE\0C00000\0Mhi\0Xunknown\0\0") + pg_msg(b"Z", b"T")
    sasl = pg_msg(b"R", i32(10) + cstr("SCRAM-SHA-256-PLUS") + cstr("SCRAM-SHA-256") + b"\0")
    sasl_more = pg_msg(b"R", i32(11) + b"r=abc,s=salt,i=4096") + pg_msg(b"R", i32(12) + b"v=sig")
    md5 = pg_msg(b"R", i32(5) + b"\x01\x02\x03\x04")
    extended = (pg_msg(b"1", b"") + pg_msg(b"t", i16(2) + i32(23) + i32(25)) + pg_msg(b"n", b"") +
                pg_msg(b"2", b"") + rows + pg_msg(b"s", b"") + pg_msg(b"3", b"") + pg_msg(b"I", b"") +
                pg_msg(b"A", i32(42) + cstr("chan") + cstr("payload")) + pg_msg(b"Z", b"E"))
    bad = {
        "bad-length": b"Z\0\0\0\x02I",
        "unknown-type": pg_msg(b"W", b"x"),
        "unterminated": pg_msg(b"S", b"abc"),
        "trailing": pg_msg(b"Z", b"II"),
        "bad-count": pg_msg(b"D", i16(-1)),
        "bad-column": pg_msg(b"D", i16(1) + i32(-2)),
        "truncated-rowdesc": pg_msg(b"T", i16(1) + cstr("id") + i32(1)),
        "ready-bad-status": pg_msg(b"Z", b"Q"),
    }
    seeds = {"startup": startup, "query": startup + query, "error": error + notice,
             "sasl": sasl + sasl_more + pg_msg(b"R", i32(0)), "md5": md5, "extended": extended}
    for name, body in seeds.items():
        write("fuzz_pg_parser", name, hdr(0, cuts=(2, 9, 30, 77), chunk=5) + body)
    write("fuzz_pg_parser", "query-cap-64", hdr(1, chunk=3) + query)
    for name, body in bad.items():
        write("fuzz_pg_parser", name, hdr(0) + startup + body)
    return len(seeds) + 1 + len(bad)


# fuzz_http_conn ops (the enum in fuzz_http_conn.c).
RECV, TMPL, DELIVER, SEND, SENDERR, TURN, ASYNC, EOF, RESET, CLOCK, STOP, STALE = range(12)
# (T_GET_BIG, not T_BIG: fuzz_file_stream's T_BIG below is another template,
# and a module-level name read inside http_conn() is the last one bound.)
T_GET, T_POST, T_CHUNKED, T_ASYNC, T_GET_BIG, T_CLOSE, T_HEAD, T_10, T_BAD, T_STREAM, \
    T_POST_ASYNC, T_ABORT, T_EXPECT, T_ASYNC10, T_CHUNK_HEAD, T_CHUNK_BODY, T_CRLF = range(17)


def conf(nbufs_log2=3, bsz=3, cap=0, small=0):
    return bytes([nbufs_log2 | bsz << 2 | cap << 4 | small << 6])


def recv(data, chunk=0):
    out = bytearray()
    while data:
        part, data = data[:256], data[256:]
        out += bytes([RECV, len(part) - 1, chunk]) + part
    return bytes(out)


GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def _paced(data, step):
    """data in RECVs of `step` bytes, each followed by turns and a DELIVER of
    what the ring had no buffer for."""
    out = bytearray()
    while data:
        part, data = data[:step], data[step:]
        out += recv(part) + bytes([TURN, DELIVER, 0, TURN, DELIVER, 0, TURN])
    return bytes(out)


def http_conn():
    prog = {
        "get-then-eof": conf() + bytes([TMPL, T_GET, 0, TURN, SEND, 0, TURN, EOF, TURN]),
        "pipeline-short-sends": conf(1, 0) + bytes([TMPL, T_GET, 5, TMPL, T_POST, 3, TMPL, T_CHUNKED, 0,
                                                    TURN, SEND, 10, TURN, SEND, 1, TURN, SEND, 0, TURN, EOF]),
        "enobufs": conf(0, 0) + bytes([TMPL, T_GET_BIG, 4, TMPL, T_GET, 4, DELIVER, 4, TURN, DELIVER, 16, TURN,
                                       SEND, 0, TURN, SEND, 0, TURN, DELIVER, 0, TURN, EOF]),
        "async-pipelined": conf() + bytes([TMPL, T_ASYNC, 0, TMPL, T_GET, 0, TURN, ASYNC, 0, TURN,
                                           SEND, 0, TURN, EOF]),
        "stream": conf() + bytes([TMPL, T_STREAM, 0, TURN, ASYNC, 0, TURN, SEND, 30, TURN, SEND, 0,
                                  TURN, SEND, 0, TURN, SEND, 0, TURN, ASYNC, 0, TURN, SEND, 0, TURN]),
        "abort": conf() + bytes([TMPL, T_ABORT, 0, TURN, ASYNC, 0, TURN]),
        "reset-mid-send": conf() + bytes([TMPL, T_GET_BIG, 0, TURN, SEND, 100, RESET, TURN]),
        "send-error": conf() + bytes([TMPL, T_GET, 0, TURN, SENDERR, 0, TURN]),
        "timeout-mid-request": conf() + recv(b"GET / HT") + bytes([TURN, CLOCK, 60, TURN, CLOCK, 60, TURN]),
        "shutdown-busy": conf() + bytes([TMPL, T_ASYNC, 0, TURN, STOP, TURN, ASYNC, 0, TURN, SEND, 0, TURN]),
        "backpressure": conf(3, 3, 2) + bytes([TMPL, T_GET_BIG, 0, TMPL, T_GET_BIG, 0, TMPL, T_GET, 0, TURN,
                                               SEND, 200, TURN, SEND, 0, TURN, SEND, 0, TURN, EOF]),
        "malformed": conf() + bytes([TMPL, T_GET, 0, TMPL, T_BAD, 0, TURN, SEND, 0, TURN, TMPL, T_GET, 0,
                                     TURN, CLOCK, 20, TURN, EOF]),
        "raw-bytes-small-limits": conf(2, 1, 0, 1) + recv(
            b"POST /p?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbodyGET / HTTP/1.0\r\n\r\n", 7)
            + bytes([TURN, SEND, 0, TURN, EOF]),
        "stale-cqes": conf() + bytes([STALE, 0, STALE, 1, TMPL, T_GET, 0, STALE, 2, TURN, EOF]),
        "async-body-and-http10": conf() + bytes([TMPL, T_POST_ASYNC, 3, TMPL, T_ASYNC10, 0, TURN, ASYNC, 0,
                                                 TURN, ASYNC, 1, TURN, SEND, 0, TURN, EOF]),
        "chunked-split-expect": conf(1, 1) + bytes([TMPL, T_CHUNK_HEAD, 0, TURN, TMPL, T_CHUNK_BODY, 3,
                                                    TMPL, T_EXPECT, 0, TMPL, T_HEAD, 0, TMPL, T_CRLF, 0,
                                                    TMPL, T_CLOSE, 0, TURN, SEND, 0, TURN]),
        # The machine's rarer states (spec/machines/http_conn.toml). An async
        # request at the front and 32 GETs behind it fill the response ring
        # (waiting); the stash then grows past half the carry limit (small
        # limits: ~2.6 KiB) and reading stops (waiting_throttled); the reply
        # resumes parsing through throttled.
        "paused-stash-throttle": conf(3, 3, 0, 1) + bytes([TMPL, T_ASYNC, 0, TURN])
            + _paced(GET * 140, 1024)
            + bytes([SEND, 0, TURN, ASYNC, 0, TURN, SEND, 0, TURN, SEND, 0, TURN, DELIVER, 0, TURN, EOF]),
        # Over the 1 KiB cap with answers in side buffers behind two async
        # requests (throttled); short sends bring the output under the cap
        # while reading is still stopped, and the second reply resumes
        # parsing (committed, not over the cap: reading).
        "throttled-reply-under-cap": conf(3, 3, 1) + bytes(
            [TMPL, T_ASYNC, 0, TURN] + [TMPL, T_GET, 0, TURN] * 5 + [TMPL, T_ASYNC, 0, TURN]
            + [TMPL, T_GET, 0, TURN] * 5 + [ASYNC, 0, TURN, SEND, 255, TURN, SEND, 255, TURN, ASYNC, 1, TURN,
                                          SEND, 0, TURN, SEND, 0, TURN, EOF]),
        # Paused behind the async request when the peer's EOF arrives: the
        # reply resumes in half_closed, which finishes once all is answered.
        "paused-then-eof": conf() + bytes([TMPL, T_ASYNC, 0, TURN]) + _paced(GET * 34, 512)
            + bytes([SEND, 0, TURN, EOF, TURN, ASYNC, 0, TURN, SEND, 0, TURN, SEND, 0, TURN]),
    }
    for name, p in prog.items():
        write("fuzz_http_conn", name, p)
    return len(prog)


# fuzz_pg_conn ops (the enum in fuzz_pg_conn.c).
(P_SOCKET, P_CONNECT, P_SEND, P_SERVE, P_SUBMIT, P_TICK, P_TURN, P_RESET, P_EOF, P_FATAL, P_GARBAGE,
 P_SENDFAIL, P_STALL, P_NOISE, P_FLOOD, P_AUTHFAIL, P_STOP) = range(17)
A_TRUST, A_CLEAR, A_MD5 = range(3)


def pgconf(size=1, auth=A_TRUST, resubmit=0, no_qtimeout=0, pipeline=4, queue=2):
    return bytes([(size - 1) | auth << 2 | resubmit << 4 | no_qtimeout << 5, (pipeline - 1) | queue << 3])


def up(k=0, auth=A_TRUST):
    """Bring the next socket up: socket, connect, startup sent and answered
    (and the password exchange)."""
    ops = [P_SOCKET, 1, P_CONNECT, k, 2, P_SEND, k, 0, P_SERVE, k, 0, 255]
    if auth != A_TRUST:
        ops += [P_TURN, P_SEND, k, 0, P_SERVE, k, 0, 255]
    return ops


def pg_conn():
    serve = [P_SEND, 0, 0, P_SERVE, 0, 0, 255]
    prog = {
        "trust-queries": pgconf() + bytes(up() + [P_SUBMIT, 2, 3] + serve + [P_SUBMIT, 1, 1] + serve),
        "md5-two-conns-short-sends": pgconf(2, A_MD5) + bytes(
            up(0, A_MD5) + up(1, A_MD5) + [P_SUBMIT, 7, 3, P_SEND, 0, 5, P_SEND, 0, 0, P_SEND, 1, 3,
                                           P_SEND, 1, 0, P_SERVE, 0, 0, 0, P_SERVE, 1, 40, 2, P_SERVE, 1, 0, 6]),
        "cleartext-split-replies": pgconf(1, A_CLEAR) + bytes(
            up(0, A_CLEAR) + [P_SUBMIT, 3, 1, P_SEND, 0, 0, P_SERVE, 0, 17, 0, P_SERVE, 0, 9, 3,
                              P_SERVE, 0, 0, 1]),
        "queue-full-then-drain": pgconf(1, pipeline=2, queue=3) + bytes(
            up() + [P_FLOOD, P_TURN] + serve + serve + serve),
        "big-params-waiting": pgconf(1, pipeline=1, queue=4) + bytes(
            up() + [P_SUBMIT, 3, 2 | 40 << 2, P_SUBMIT, 0, 0 | 30 << 2] + serve + serve + serve),
        "reset-mid-pipeline": pgconf(2) + bytes(
            up(0) + up(1) + [P_SUBMIT, 7, 3, P_SEND, 0, 0, P_RESET, 0, P_TICK, 20] + up(1)),
        "eof-mid-message": pgconf(1) + bytes(up() + [P_SUBMIT, 4, 1, P_SEND, 0, 0, P_EOF, 0, 30, 4]),
        "fatal-mid-pipeline": pgconf(1, resubmit=1) + bytes(up() + [P_SUBMIT, 5, 3, P_SEND, 0, 0, P_FATAL, 0, 11]),
        "garbage": pgconf(1) + bytes(up() + [P_SUBMIT, 2, 1, P_SEND, 0, 0, P_GARBAGE, 0, 3, 2, P_TICK, 15]
                                     + up() + [P_SUBMIT, 1, 0, P_SEND, 0, 0, P_GARBAGE, 0, 12, 255]),
        "connect-refused-backoff": pgconf(2) + bytes(
            [P_SOCKET, 0, P_SOCKET, 1, P_CONNECT, 0, 0, P_TICK, 10, P_SOCKET, 1, P_CONNECT, 0, 8,
             P_TICK, 30, P_SUBMIT, 0, 1]),
        "query-timeout": pgconf(1) + bytes(up() + [P_SUBMIT, 1, 1, P_SEND, 0, 0, P_STALL, 0,
                                                 P_TICK, 100, P_TICK, 100]),
        "connect-timeout": pgconf(1) + bytes([P_SOCKET, 1, P_CONNECT, 0, 1, P_TICK, 120, P_TICK, 0]),
        "auth-failed": pgconf(1, A_MD5) + bytes([P_SOCKET, 1, P_CONNECT, 0, 2, P_SEND, 0, 0, P_SERVE, 0, 0, 255,
                                                 P_AUTHFAIL, 0, P_TICK, 20]),
        "send-fail": pgconf(1) + bytes(up() + [P_SENDFAIL, 0, P_SUBMIT, 2, 3, P_SEND, 0, 0]),
        "noise": pgconf(1) + bytes(up() + [P_NOISE, 0, 0, P_SUBMIT, 2, 1, P_SEND, 0, 0, P_NOISE, 0, 1,
                                           P_SERVE, 0, 0, 4, P_NOISE, 0, 2, P_SERVE, 0, 0, 255]),
        # A query that waited in the queue keeps its submission deadline: sent
        # 150 ms before the tick, it is "overdue" and drops a healthy session.
        "queue-wait-counts-toward-query-timeout": pgconf(1, pipeline=1, queue=2) + bytes(
            up() + [P_SUBMIT, 2, 1, P_SEND, 0, 0, P_TICK, 140, P_SERVE, 0, 0, 255, P_SEND, 0, 0, P_TICK, 15]),
        "stop-in-flight": pgconf(3, resubmit=1) + bytes(up(0) + [P_SOCKET, 1, P_SUBMIT, 6, 3, P_FLOOD,
                                                                 P_SEND, 0, 7, P_STOP]),
    }
    for name, p in prog.items():
        write("fuzz_pg_conn", name, p)
    return len(prog)


# fuzz_file_stream ops (the enum in fuzz_file_stream.c).
(F_REQ, F_DELIVER, F_READ, F_SEND, F_SENDERR, F_TURN, F_RESET, F_EOF, F_CLOCK, F_STOP, F_NOSQE,
 F_SIGHUP, F_STALE) = range(13)
# Targets: the files of tests/file_sim_harness.h (sizes), then missing, "/d/", "/d".
FSIZES = [0, 1, 1000, 4095, 4096, 4097, 9000, 65536, 150001, 5000]
T_EMPTY, T_ONE, T_SMALL, T_4095, T_4096, T_4097, T_MID, T_64K, T_BIG, T_INDEX, T_MISSING, T_DIR, T_DIR301 = range(13)
(K_WHOLE, K_AB, K_AFROM, K_SUFFIX, K_MULTI, K_PAST, K_INVALID, K_LONGSUFFIX, K_ZERO,
 K_UNIT) = 0, 3, 4, 5, 6, 7, 8, 9, 10, 11


def fconf(bake=0, chunk=0, nconns=1, bufs=0):
    """bake/chunk/bufs: indices (0 4096 9000 65536 / 4096 5000 16384 65536 / 64 128 256 bytes)."""
    return bytes([bake | chunk << 2 | (nconns - 1) << 4 | bufs << 6])


def enc(v, bound):
    assert 0 <= v < bound
    return bytes([v]) if bound <= 256 else v.to_bytes(3, "big")


def req(c, t, kind=K_WHOLE, head=False, a=0, b=0):
    """REQ op: the bytes add_request draws, in its order. a, b: the range's
    numbers as the kind takes them (a-b: first, last; a-: first; suffix:
    its length, or 0 for the unsatisfiable a-; past: first, overshoot;
    invalid: high, gap; long suffix: extra)."""
    out = bytes([F_REQ, c, 0 if head else 1, t])
    if t in (T_MISSING, T_DIR301):
        return out
    size = FSIZES[T_INDEX if t == T_DIR else t]
    out += bytes([kind])
    if kind == K_AB and size:
        out += enc(a, size) + enc(b - a, size - a)
    elif kind == K_AFROM and size:
        out += enc(a, size)
    elif kind == K_SUFFIX:
        if not size:
            out += enc(0, 3)
        elif a == 0:
            out += enc(0, 3) + enc(b % 3, 3)
        else:
            out += enc(1, 3) + enc(a - 1, size)
    elif kind == K_PAST and size:
        out += enc(a, size) + enc(b, 70000)
    elif kind == K_INVALID:
        out += enc(a - 1, 200000) + enc(b, a)
    elif kind == K_LONGSUFFIX and size:
        out += enc(a, 70000)
    return out


def fs_read(k=0, fate=0, n=0):
    """fate: 0 full, 4 short at 1 + n*(len-1)/256, 6 -EIO, 7 early EOF."""
    return bytes([F_READ, k, fate, n])


def file_stream():
    deliver = lambda c=0, m=0, k=0: bytes([F_DELIVER, c, m, k])
    send = lambda c=0, s=0: bytes([F_SEND, c, s])
    turn = bytes([F_TURN])
    pump = lambda c=0, n=4: (fs_read() + send(c)) * n
    prog = {
        "stream-big-4k-chunks": fconf(0, 0) + req(0, T_BIG) + deliver() + pump(0, 6),
        "pipeline-baked-and-streamed": fconf(1, 1, 1, 1) + req(0, T_SMALL) + req(0, T_MID, K_AB, a=100, b=8000)
            + req(0, T_4097, head=True) + req(0, T_DIR) + req(0, T_MISSING) + req(0, T_DIR301)
            + req(0, T_BIG, K_AFROM, a=140000) + deliver(0, 0, 7) + fs_read(0, 4, 9) + send(0, 3)
            + fs_read(0, 4, 200) + send(0, 200) + pump(0, 6),
        "range-forms": fconf(2, 2) + req(0, T_64K, K_SUFFIX, a=70000 - 69999) + req(0, T_64K, K_SUFFIX, a=0, b=2)
            + req(0, T_64K, K_MULTI) + req(0, T_64K, K_PAST, a=65000, b=12) + req(0, T_64K, K_INVALID, a=300, b=5)
            + req(0, T_64K, K_LONGSUFFIX, a=9) + req(0, T_64K, K_ZERO) + req(0, T_64K, K_UNIT)
            + req(0, T_EMPTY, K_AB) + req(0, T_ONE, K_SUFFIX, a=1) + req(0, T_EMPTY, K_LONGSUFFIX)
            + deliver(0, 90, 50) + deliver() + pump(0, 4),
        "short-reads-and-sends": fconf(0, 1, 1, 2) + req(0, T_4097) + req(0, T_4096, head=True) + req(0, T_MID)
            + deliver(0, 0, 3) + (fs_read(0, 4, 1) + send(0, 1) + send(0, 129)) * 6,
        "read-eio-mid-pipeline": fconf(0, 0) + req(0, T_MID) + req(0, T_SMALL) + deliver() + fs_read()
            + send() + fs_read(0, 6),
        "read-early-eof": fconf(0, 0) + req(0, T_BIG) + deliver() + fs_read(0, 7),
        "nosqe-at-start-and-mid": fconf(0, 0, 2) + bytes([F_NOSQE, 0]) + req(0, T_4097) + req(1, T_MID)
            + deliver(0) + turn + bytes([F_NOSQE, 1]) + deliver(1) + fs_read() + send(1),
        "reset-mid-stream": fconf(1, 0) + req(0, T_BIG) + req(0, T_SMALL) + deliver() + fs_read() + send(0, 130)
            + bytes([F_RESET, 0]) + fs_read(),
        "send-error-mid-stream": fconf(0, 2) + req(0, T_BIG) + deliver() + fs_read() + bytes([F_SENDERR, 0]),
        "eof-with-stream-and-pipeline": fconf(0, 0) + req(0, T_MID) + req(0, T_4097, K_AB, a=1, b=4096)
            + req(0, T_SMALL) + deliver() + bytes([F_EOF, 0]) + pump(0, 2),
        "idle-clock": fconf(0, 0, 2) + req(0, T_BIG) + req(1, T_SMALL) + deliver(0) + deliver(1, 10)
            + bytes([F_CLOCK, 50, F_CLOCK, 60]) + fs_read(),
        "stop-mid-stream": fconf(0, 0, 2) + req(0, T_BIG) + req(1, T_MID) + deliver(0) + deliver(1) + fs_read()
            + bytes([F_STOP]) + fs_read() + send(0) + send(1),
        "sighup-mid-stream": fconf(2, 0) + req(0, T_BIG) + req(0, T_64K, K_AB, a=1000, b=20000) + deliver()
            + fs_read() + bytes([F_SIGHUP]) + send() + fs_read() + bytes([F_SIGHUP, F_SIGHUP]) + pump(0, 3),
        "stale-reads": fconf(0, 0) + bytes([F_STALE, 0, 0, 5]) + req(0, T_MID) + deliver() + fs_read()
            + bytes([F_STALE, 0, 1, 200, F_STALE, 2, 2, 0]),
        "three-conns-interleaved": fconf(0, 3, 3, 0) + req(0, T_BIG) + req(1, T_64K, K_AFROM, a=3)
            + req(2, T_MID, head=True) + req(2, T_BIG, K_SUFFIX, a=5000) + deliver(2, 30, 9) + deliver(0)
            + deliver(1) + deliver(2) + fs_read(1, 4, 77) + fs_read(0) + send(1, 140) + send(0) + fs_read(1)
            + send(2) + fs_read(2, 0) + send(2),
    }
    for name, p in prog.items():
        write("fuzz_file_stream", name, p)
    return len(prog)


if __name__ == "__main__":
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    for t in ("fuzz_http_parser", "fuzz_pg_parser", "fuzz_http_conn", "fuzz_pg_conn", "fuzz_file_stream"):
        for f in glob.glob(os.path.join(ROOT, t, "*")):
            os.remove(f)
    print("fuzz_http_parser:", http_parser(), "seeds")
    print("fuzz_pg_parser:", pg_parser(), "seeds")
    print("fuzz_http_conn:", http_conn(), "seeds")
    print("fuzz_pg_conn:", pg_conn(), "seeds")
    print("fuzz_file_stream:", file_stream(), "seeds")
