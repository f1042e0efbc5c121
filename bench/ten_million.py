#!/usr/bin/env python3
"""Ten million lines (issue 12): a run of N short chat requests (10,000,000 by default;
2.3 GB of input, 6.5 GB of results) against the simulator, its peak RSS, then the output
cut to its first 90 % of records and the same command run again, RESUMES times: time to
the first request and peak RSS. Needs about 10 GB of free disk under DIR.

    cargo build --release && python3 bench/ten_million.py [--lines N] [--resumes 2] [--dir DIR]
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R

def cut_after_lines(path, n):
    """Truncates path after its n-th line, in place: a copy of the kept 90 % (as `head`
    would make) needs another 7 GB of disk at ten million lines."""
    with open(path, "rb") as f:
        at, seen = 0, 0
        while seen < n:
            block = f.read(1 << 24)
            assert block, f"{path} has fewer than {n} lines"
            count = block.count(b"\n")
            if seen + count < n:
                seen, at = seen + count, at + len(block)
                continue
            end = -1
            for _ in range(n - seen):
                end = block.index(b"\n", end + 1)
            at, seen = at + end + 1, n
    os.truncate(path, at)


ap = argparse.ArgumentParser()
ap.add_argument("--lines", type=int, default=10_000_000)
ap.add_argument("--resumes", type=int, default=2)
ap.add_argument("--dir", default=None)
args = ap.parse_args()
d = args.dir or tempfile.mkdtemp(prefix="sluice-10m-")
os.makedirs(d, exist_ok=True)
inp = os.path.join(d, "in.jsonl")
out = os.path.join(d, "results.jsonl")
R.write_batch(inp, args.lines)
sim = R.Sim()
r = R.sluice_run(sim.base, inp, d, "--concurrency", "64", "--progress", "off")
sim.stop()
assert r["ok"] == args.lines, r["text"][-1500:]
print(f"{args.lines:,} lines: {r['rps']:,.0f} requests/s, peak RSS {r['rss']:.1f} MiB")
keep = args.lines * 9 // 10
for _ in range(args.resumes):
    cut_after_lines(out, keep)
    open(os.path.join(d, "results.errors.jsonl"), "w").close()
    sim = R.Sim()
    u0 = sim.stats()["uptime_us"]
    r = R.sluice_run(sim.base, inp, d, "--concurrency", "64", "--progress", "off", restart=False)
    st = sim.stats()
    sim.stop()
    print(f"resume with {keep:,} done: first request after {(st['first_received_us'] - u0) / 1e6:.2f} s, "
          f"wall {r['wall']:.1f} s, peak RSS {r['rss']:.1f} MiB, sent {st['received']:,}")
if not args.dir:
    shutil.rmtree(d)
