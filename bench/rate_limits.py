#!/usr/bin/env python3
"""The five server behaviours of issue 10, each run by an earlier sluice build ("before"),
this build ("after") and the openai SDK peer, against the same simulator settings. Prints
a markdown table: time to finish, 429s the server sent, requests lost. 127.0.0.1 only.

    cargo build --release
    python3 -m venv bench/.venv && bench/.venv/bin/pip install openai
    python3 bench/rate_limits.py --before /path/to/older/sluice

The simulator always comes from this build (the older one lacks its flags).
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import PEER, SLUICE, VENV_PY, Sim, measure, write_batch  # noqa: E402

ENV = {**os.environ, "OPENAI_API_KEY": "sk-bench-key-0123456789"}

GATEWAY = ["--rpm", "30", "--window", "fixed-minute", "--external-load", "20", "--no-headers",
           "--retry-after-prefix", "x-upstream", "--ttft-ms", "20"]

# (name, simulator flags, requests, sluice flags, ideal seconds)
CASES = [
    ("1. gateway: fixed minute, 20 of 30 used by another client, no headers, prefixed retry-after; no limit given",
     GATEWAY, 20, [], 60),
    ("2. the same gateway, --rpm 30 given", GATEWAY, 20, ["--rpm", "30"], 60),
    ("3. 90 a minute over 1 s slices: the opening burst is refused (retry-after ~0.67 s)",
     ["--rpm", "90", "--ttft-ms", "10"], 60, ["--concurrency", "16"], 40),
    ("4. 5 % random 429s, server at 1,200 a minute, run at ~600 (4 at a time, 400 ms)",
     ["--rpm", "1200", "--ttft-ms", "400", "--fault", "429=0.05", "--seed", "11"], 300,
     ["--concurrency", "4"], 30),
    ("5a. a server that allows a minute's burst (60 a minute), told --rpm 60",
     ["--rpm", "60", "--burst-secs", "60", "--ttft-ms", "20"], 100, ["--rpm", "60"], 40),
    ("5b. the same server, told nothing",
     ["--rpm", "60", "--burst-secs", "60", "--ttft-ms", "20"], 100, [], 40),
]


def sluice(binary, sim, inp, out_dir, flags):
    out = os.path.join(out_dir, f"out-{time.monotonic_ns()}.jsonl")
    cmd = [binary, "run", inp, "-o", out, "--base-url", sim.base, *flags]
    text, wall, _, _, code = measure(cmd, env=ENV)
    ok = sum(1 for _ in open(out)) if os.path.exists(out) else 0
    return wall, ok, code, text


def peer(sim, inp, concurrency):
    text, wall, _, _, code = measure([VENV_PY, PEER, "--base-url", sim.base, "--input", inp,
                                      "--concurrency", str(concurrency)], env=ENV)
    ok = next((int(w.split("=")[1]) for w in text.split() if w.startswith("ok=")), 0)
    return wall, ok, code, text


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--before", required=True, help="an earlier sluice binary")
    p.add_argument("--only", type=int, nargs="*", help="case numbers (1-based positions)")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="sluice-rl-")
    print("| server behaviour | ideal s | client | time s | 429s | lost |\n|---|---|---|---|---|---|", flush=True)
    for i, (name, sim_flags, n, flags, ideal) in enumerate(CASES, 1):
        if args.only and i not in args.only:
            continue
        inp = os.path.join(tmp, f"in-{i}.jsonl")
        write_batch(inp, n)
        contenders = [("before", lambda s: sluice(args.before, s, inp, tmp, flags)),
                      ("after", lambda s: sluice(SLUICE, s, inp, tmp, flags))]
        if not flags or flags[0] == "--concurrency":
            conc = int(flags[1]) if flags else 64
            contenders.append(("openai SDK", lambda s, c=conc: peer(s, inp, c)))
        for who, go in contenders:
            sim = Sim(*sim_flags)
            wall, ok, code, text = go(sim)
            st = sim.stats()
            sim.stop()
            refused = sum(st["rate_limited"].values())
            print(f"| {name} | {ideal} | {who} | {wall:.1f} | {refused} | {n - ok} |", flush=True)


if __name__ == "__main__":
    main()
