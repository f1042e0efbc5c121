#!/usr/bin/env python3
"""One runtime per thread against sluice's two-thread runtime (issue 12): would oha's
design (independent single-thread loops, no hand-off between threads) lift the rate?
Each round, against one simulator at zero latency: oha; two `sluice run --threads 1
--concurrency 32` processes side by side, each on half of the requests; one `sluice run
--concurrency 64` process on all of them. Wall times are the launcher's (process start
included); prints each contender's rate against oha's in the same round, and the medians.

    cargo build --release && cargo install oha --locked
    python3 bench/threads_ab.py [--requests 50000] [--runs 5]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R


def timed(cmds):
    """Starts every command at once; the wall time until the last has finished."""
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
    start = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env) for c in cmds]
    codes = [p.wait() for p in procs]
    assert codes == [0] * len(codes), codes
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    n = args.requests
    with tempfile.TemporaryDirectory() as d:
        whole = os.path.join(d, "all.jsonl")
        R.write_batch(whole, n)
        halves = [os.path.join(d, f"half{i}.jsonl") for i in range(2)]
        with open(whole) as f:
            lines = f.readlines()
        for i, path in enumerate(halves):
            with open(path, "w") as f:
                f.writelines(lines[i::2])
        sim = R.Sim()
        try:
            run = lambda inp, out, *flags: [R.SLUICE, "run", inp, "-o", os.path.join(d, out),
                                            "--base-url", sim.base, "--restart", *flags]
            two, one = [], []
            for _ in range(args.runs):
                oha_wall = timed([["oha", "-n", str(n), "-c", "64", "--no-tui", "-m", "POST",
                                   "-H", "content-type: application/json", "-d", R.json.dumps(R.BODY),
                                   f"{sim.base}/chat/completions"]])
                two_wall = timed([run(h, f"out{i}.jsonl", "--threads", "1", "--concurrency", "32")
                                  for i, h in enumerate(halves)])
                one_wall = timed([run(whole, "out.jsonl", "--concurrency", "64")])
                two.append(oha_wall / two_wall)
                one.append(oha_wall / one_wall)
        finally:
            sim.stop()
    pct = lambda xs: ", ".join(f"{x:.0%}" for x in xs)
    print(f"rate against oha's, {n:,} requests, {args.runs} rounds")
    print(f"two single-thread processes: {pct(two)}; median {statistics.median(two):.0%}")
    print(f"one two-thread process:      {pct(one)}; median {statistics.median(one):.0%}")


if __name__ == "__main__":
    main()
