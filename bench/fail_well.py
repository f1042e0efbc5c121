#!/usr/bin/env python3
"""Reproduces the failures of issue 9 against the release build and prints what happened,
as a markdown table for docs/RELIABILITY.md. Everything talks to 127.0.0.1 only.

    cargo build --release
    python3 bench/fail_well.py [--big-line-mib 1024] [--lines 20000]
"""
import argparse
import base64
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import SLUICE, Sim, free_port, measure, write_batch  # noqa: E402

ENV = {**os.environ, "OPENAI_API_KEY": "sk-bench-key-0123456789"}
ROWS = []


def row(what, result, figure):
    ROWS.append((what, result, figure))
    print(f"| {what} | {result} | {figure} |", flush=True)


def run(args, env=ENV, timeout=None):
    return measure([SLUICE, *args], env=env, timeout=timeout)


class Raw(threading.Thread):
    """A hostile HTTP server: `handler(n, sock)` answers the n-th request."""

    def __init__(self, handler):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.handler, self.count = handler, 0
        self.start()

    def run(self):
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        f = conn.makefile("rb")
        try:
            while True:
                length = 0
                while True:
                    line = f.readline()
                    if not line:
                        return
                    if line == b"\r\n":
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                f.read(length)
                n, self.count = self.count, self.count + 1
                self.handler(n, conn)
        except OSError:
            return


def two_runs(tmp, lines):
    inp = os.path.join(tmp, "two.jsonl")
    write_batch(inp, lines)
    out = os.path.join(tmp, "two-out.jsonl")
    sim = Sim("--ttft-ms", "20", ids=True)
    first = subprocess.Popen([SLUICE, "run", inp, "-o", out, "--base-url", sim.base], env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not os.path.exists(out) or os.path.getsize(out) == 0:
        time.sleep(0.02)
    text, wall, _, _, code = run(["run", inp, "-o", out, "--base-url", sim.base])
    status = subprocess.run([SLUICE, "status", out], capture_output=True, text=True)
    first.wait()
    st = sim.stats(attempts=True)
    sim.stop()
    records = sum(1 for _ in open(out))
    repeated = sum(len(t) - 1 for t in st["attempts"].values())
    row(f"two runs on one output ({lines:,} lines)",
        f"second exits {code} in {wall * 1000:.0f} ms; status exits {status.returncode} (running); first exits {first.returncode}",
        f"{records:,} records, {st['received']:,} calls, {repeated} repeated")


def huge_bodies(tmp):
    def claims_2gib(_, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2147483648\r\n\r\n{")
        try:
            for _ in range(64):
                conn.sendall(b" " * (1 << 20))
        except OSError:
            pass

    def endless(_, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
        chunk = b"x" * (1 << 16)
        try:
            while True:
                conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except OSError:
            pass

    for name, handler, flags in [("2 GiB body (content-length)", claims_2gib, []),
                                 ("endless chunked body, default 256 MiB cap", endless, []),
                                 ("endless chunked body, --max-response-bytes 8MiB", endless, ["--max-response-bytes", "8MiB"])]:
        server = Raw(handler)
        inp = os.path.join(tmp, "body.jsonl")
        write_batch(inp, 4)
        out = os.path.join(tmp, f"body-{free_port()}.jsonl")
        text, wall, _, rss, code = run(["run", inp, "-o", out, "--base-url", server.base, "--concurrency", "1", *flags])
        errors = out.replace(".jsonl", ".errors.jsonl")
        longest = max((len(l) for l in open(errors)), default=0)
        row(name, f"exit {code}, {server.count} requests (none retried), {wall:.1f} s",
            f"peak RSS {rss:.0f} MiB; longest error record {longest} bytes")


def key_leaks(tmp):
    key = "sk-canary-0123456789abcdef"
    header = "hdr-secret-0123456789"

    def echo(n, conn):
        forms = [key, key.replace("-", "\\u002d"), key.replace("-", "%2D"),
                 base64.b64encode(f"Bearer {key}".encode()).decode(), header.replace("-", "\\u002d")]
        body = json.dumps({"error": {"message": "bad key " + " ".join(forms)}}).replace("\\\\u002d", "\\u002d")
        status = b"400 Bad Request" if n < 3 else b"401 Unauthorized"
        conn.sendall(b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body.encode())

    server = Raw(echo)
    inp = os.path.join(tmp, "keys.jsonl")
    write_batch(inp, 10)
    out = os.path.join(tmp, "keys-out.jsonl")
    env = {**ENV, "OPENAI_API_KEY": f"  {key}\t", "RUST_LOG": "trace"}
    text, _, _, _, code = run(["run", inp, "-o", out, "--base-url", server.base, "--concurrency", "1",
                               "--header", f"X-Api-Key: {header}"], env=env)
    files = text
    for f in os.listdir(tmp):
        if f.startswith("keys-out"):
            files += open(os.path.join(tmp, f), errors="replace").read()
    decoded = files
    for line in files.splitlines():
        try:
            decoded += json.dumps(json.loads(line), ensure_ascii=False)
        except ValueError:
            pass
    found = [s for s in (key, header, base64.b64encode(key.encode()).decode()[:16]) if s in decoded]
    row("key echoed literally, JSON-escaped, percent-encoded, in base64; key with spaces; secret --header",
        f"exit {code}; stdout, stderr (RUST_LOG=trace), output, errors and state searched, JSON decoded",
        f"{len(found)} leaks")


def same_files(tmp):
    sim = Sim()
    inp = os.path.join(tmp, "same.jsonl")
    write_batch(inp, 5)
    before = open(inp, "rb").read()
    os.link(inp, os.path.join(tmp, "same-link.jsonl"))
    out = os.path.join(tmp, "same-out.jsonl")
    cases = [["-o", inp], ["-o", os.path.join(tmp, "same-link.jsonl")], ["-o", out, "--errors", inp],
             ["-o", out, "--errors", out], ["-o", out, "--errors", os.path.join(tmp, "same-out.sluice-state.json")]]
    codes = []
    for c in cases:
        _, _, _, _, code = run(["run", inp, *c, "--base-url", sim.base, "--restart"])
        codes.append(code)
    received = sim.stats()["received"]
    sim.stop()
    row("-o / --errors pointing at the input (also a hard link), the output or the state file, with --restart",
        f"exit codes {sorted(set(codes))} for {len(cases)} cases; input {'unchanged' if open(inp, 'rb').read() == before else 'CHANGED'}",
        f"{received} requests sent")


def long_line(tmp, mib):
    inp = os.path.join(tmp, "long.jsonl")
    with open(inp, "w") as f:
        f.write(json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}}) + "\n")
        f.write('{"custom_id":"huge","priority":5,"x":"')
        block = "x" * (1 << 20)
        for _ in range(mib):
            f.write(block)
        f.write('"}\n')
    sim = Sim()
    _, vwall, _, vrss, vcode = run(["validate", inp])
    _, rwall, _, rrss, rcode = run(["run", inp, "-o", os.path.join(tmp, "long-out.jsonl"), "--base-url", sim.base])
    sim.stop()
    os.remove(inp)
    row(f"a {mib:,} MiB line (limit 16 MiB)", f"validate exit {vcode} in {vwall:.1f} s; run exit {rcode} in {rwall:.1f} s",
        f"peak RSS validate {vrss:.0f} MiB, run {rrss:.0f} MiB")


def auto_format(tmp):
    sim = Sim()
    results = []
    for name, first in [("invalid JSON", "{oops"), ("no custom_id", '{"url":"/v1/chat/completions","body":{}}'),
                        ("nested 300 deep", '{"d":' + "[" * 300 + "]" * 300 + "}")]:
        inp = os.path.join(tmp, f"auto-{free_port()}.jsonl")
        write_batch(inp, 100)
        with open(inp) as f:
            rest = f.read()
        with open(inp, "w") as f:
            f.write(first + "\n" + rest)
        out = inp.replace(".jsonl", "-out.jsonl")
        run(["run", inp, "-o", out, "--base-url", sim.base])
        ok = sum(1 for _ in open(out))
        v = subprocess.run([SLUICE, "validate", inp], capture_output=True, text=True).stdout.splitlines()[0]
        results.append(f"{name}: run {ok} ok, validate \"{v}\"")
    sim.stop()
    row("a bad first line before 100 valid lines (--format auto)", "; ".join(results), "run and validate agree")


def nul_block(tmp):
    sim = Sim(ids=True)
    inp = os.path.join(tmp, "nul.jsonl")
    write_batch(inp, 1000)
    out = os.path.join(tmp, "nul-out.jsonl")
    run(["run", inp, "-o", out, "--base-url", sim.base])
    data = bytearray(open(out, "rb").read())
    a, b = len(data) // 3, len(data) // 3 + 65536
    data[a:b] = bytes(b - a)
    open(out, "wb").write(data)
    status = subprocess.run([SLUICE, "status", out], capture_output=True, text=True)
    text, _, _, _, code = run(["run", inp, "-o", out, "--base-url", sim.base])
    said = [l for l in text.splitlines() if "resuming" in l]
    lines = [json.loads(l)["line"] for l in open(out)]
    resent = sum(len(t) - 1 for t in sim.stats(attempts=True)["attempts"].values())
    sim.stop()
    row("64 KiB of NULs over the middle of a 1,000-record output",
        f"status exits {status.returncode}; resume exits {code}: \"{said[0].split(': ', 1)[1] if said else ''}\"",
        f"{len(lines)} records, {len(set(lines))} distinct lines; {resent} requests sent again")


def stop_early(tmp):
    inp = os.path.join(tmp, "halt.jsonl")
    write_batch(inp, 10_000)
    sim = Sim("--require-key", "sk-right-key-123456", ids=True)
    cases = [("wrong key (401)", sim.base, ENV, []),
             ("unknown path (404)", sim.base.replace("/v1", "/v2"), ENV, [])]
    closed = free_port()
    cases.append(("nothing listening (default 30 s)", f"http://127.0.0.1:{closed}/v1", ENV, []))
    for name, base, env, flags in cases:
        out = os.path.join(tmp, f"halt-{free_port()}.jsonl")
        before = sim.stats()["received"]
        text, wall, _, _, code = run(["run", inp, "-o", out, "--base-url", base, *flags], env=env)
        sent = sim.stats()["received"] - before
        said = [l for l in text.splitlines() if l.startswith("sluice: stopped early")]
        again, w2, _, _, code2 = run(["run", inp, "-o", out, "--base-url", sim.base],
                                     env={**ENV, "OPENAI_API_KEY": "sk-right-key-123456"})
        done = sum(1 for _ in open(out))
        row(f"10,000 lines, {name}", f"exit {code} after {wall:.1f} s, {sent} requests sent; \"{said[0][len('sluice: stopped early: '):][:90] if said else ''}…\"",
            f"fixed and run again: exit {code2}, {done:,} records")
    sim.stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--big-line-mib", type=int, default=1024)
    p.add_argument("--lines", type=int, default=20_000)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="sluice-fail-")
    print("| tried | what sluice did | figure |\n|---|---|---|")
    two_runs(tmp, args.lines)
    huge_bodies(tmp)
    key_leaks(tmp)
    same_files(tmp)
    long_line(tmp, args.big_line_mib)
    auto_format(tmp)
    nul_block(tmp)
    stop_early(tmp)


if __name__ == "__main__":
    main()
