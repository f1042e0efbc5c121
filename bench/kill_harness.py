#!/usr/bin/env python3
"""Kill -9 harness: runs `sluice run` against `sluice sim`, kills it at random moments,
resumes, and checks the durability guarantee after every final resume.

    cargo build --release
    python3 bench/kill_harness.py [--iterations 200] [--requests 2000] [--seed 1]

For each iteration: a fresh simulator (latency + 2 % 503s), a fresh input, then up to
--max-kills runs killed with SIGKILL after a random 10-400 ms, then a run left to finish.
Checked after the final run:
  * every custom_id of the input is in exactly one of the output and errors files;
  * every line of both files is whole JSON (no torn line);
  * no request that had a record at a kill was sent again afterwards (simulator attempts).
Reported: kills, calls repeated because they were in flight at a kill, and failures.
Only 127.0.0.1 is used.
"""
import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def attempts(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/sim/stats") as r:
        stats = json.load(r)
    return {k: len(v) for k, v in stats["attempts"].items()}, stats["faults"].get("503", 0)


def records(path, complete_only=True):
    out = []
    if not os.path.exists(path):
        return out
    with open(path, "rb") as f:
        data = f.read()
    for line in data.split(b"\n")[:-1]:
        out.append(json.loads(line))
    if not complete_only and data and not data.endswith(b"\n"):
        raise AssertionError(f"{path}: torn last line")
    return out


def recorded_ids(d):
    ids = set()
    for name in ("out.jsonl", "out.errors.jsonl"):
        for r in records(os.path.join(d, name)):
            if r.get("custom_id"):
                ids.add(r["custom_id"])
    return ids


def one_iteration(i, args, rng):
    port = free_port()
    sim = subprocess.Popen([SLUICE, "sim", "--listen", f"127.0.0.1:{port}", "--ttft-ms", "10", "--jitter", "0.9",
                            "--fault", "503=0.02", "--seed", str(i)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert "listening" in sim.stdout.readline()
    d = tempfile.mkdtemp(prefix=f"sluice-kill-{i}-")
    ids = [f"id-{i}-{n:05d}" for n in range(args.requests)]
    with open(os.path.join(d, "in.jsonl"), "w") as f:
        for cid in ids:
            f.write(json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": cid}], "max_tokens": 8}}) + "\n")
    cmd = [SLUICE, "run", os.path.join(d, "in.jsonl"), "-o", os.path.join(d, "out.jsonl"),
           "--base-url", f"http://127.0.0.1:{port}/v1", "--concurrency", "16", "--backoff-base", "0.01", "--backoff-max", "0.05"]
    env = {**os.environ, "OPENAI_API_KEY": "sk-harness"}
    frozen = {}
    kills = 0
    try:
        for round_ in range(args.max_kills + 1):
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if round_ == args.max_kills:
                _, err = p.communicate()
                assert p.returncode in (0, 3), err.decode()
                break
            time.sleep(rng.uniform(0.01, 0.4))
            if p.poll() is not None:
                _, err = p.communicate()
                assert p.returncode in (0, 3), err.decode()
                break
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            seen, _ = attempts(port)
            for cid in recorded_ids(d):
                frozen.setdefault(cid, seen.get(cid, 0))
        ok = [r["custom_id"] for r in records(os.path.join(d, "out.jsonl"), complete_only=False)]
        failed = [r["custom_id"] for r in records(os.path.join(d, "out.errors.jsonl"), complete_only=False)]
        assert sorted(ok + failed) == sorted(ids), "not exactly one record per custom_id"
        seen, retried_503 = attempts(port)
        for cid, then in frozen.items():
            assert seen[cid] == then, f"{cid} had a record and was sent again"
        repeated = sum(n - 1 for n in seen.values()) - retried_503
        return kills, max(repeated, 0)
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait()
        subprocess.run(["rm", "-rf", d])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--max-kills", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not os.path.exists(SLUICE):
        sys.exit("build first: cargo build --release")
    rng = random.Random(args.seed)
    total_kills = total_repeated = failures = 0
    started = time.time()
    for i in range(args.iterations):
        try:
            kills, repeated = one_iteration(i, args, rng)
            total_kills += kills
            total_repeated += repeated
        except AssertionError as e:
            failures += 1
            print(f"iteration {i}: FAILED: {e}", flush=True)
    print(f"| iterations | kills | guarantee violated | calls repeated (in flight at a kill) | per kill | wall s |")
    print(f"|---|---|---|---|---|---|")
    per_kill = total_repeated / total_kills if total_kills else 0
    print(f"| {args.iterations} | {total_kills} | {failures} | {total_repeated} | {per_kill:.1f} | {time.time() - started:.0f} |")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
