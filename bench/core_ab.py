#!/usr/bin/env python3
"""The engine before and after a change, side by side (issue 13's re-measure): two sluice
binaries run the same batches against one simulator, alternating, RUNS times each:

- overhead: N short chat requests, concurrency 64, no budget (the engine's own cost);
- tpm: the same with a TPM budget far above the run's use (token estimation on);
- paced: a batch paced by --rpm (admission's accuracy: the rate reached, 429s);
- resume (with --resume): time to the first request when 900,000 of 1,000,000 lines are
  done, each run from the same kept records.

Prints medians and the per-run ratio new/old for requests/s, CPU per request and peak RSS.
The simulator is the NEW binary's in every run, so both clients meet the same server.

    cargo build --release
    python3 bench/core_ab.py OLD_BINARY [--new target/release/sluice] [--runs 5] [--requests 50000]
"""
import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("--new", default=R.SLUICE)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    new = os.path.abspath(args.new)
    tmp = tempfile.mkdtemp(prefix="sluice-ab-")
    inp = os.path.join(tmp, "in.jsonl")
    R.write_batch(inp, args.requests)
    paced_inp = os.path.join(tmp, "paced.jsonl")
    R.write_batch(paced_inp, 3000)
    cases = {
        "overhead": (inp, ["--concurrency", "64", "--progress", "off"]),
        "tpm": (inp, ["--concurrency", "64", "--progress", "off", "--tpm", "1000000000"]),
        "paced 60k rpm": (paced_inp, ["--concurrency", "64", "--progress", "off", "--rpm", "60000"]),
    }
    results = {c: {"old": [], "new": []} for c in cases}
    R.SLUICE = new
    sim = R.Sim()
    for run in range(args.runs):
        order = ["old", "new"] if run % 2 == 0 else ["new", "old"]
        for case, (path, flags) in cases.items():
            for who in order:
                binary = args.old if who == "old" else new
                R.SLUICE = binary
                out_dir = os.path.join(tmp, who)
                os.makedirs(out_dir, exist_ok=True)
                r = R.sluice_run(sim.base, path, out_dir, *flags)
                R.SLUICE = new
                assert r["ok"] > 0, r["text"][-800:]
                r["cpu_us"] = r["cpu"] / r["ok"] * 1e6
                results[case][who].append(r)
    sim.stop()
    print(f"\n### Engine before and after ({args.runs} alternating runs each; ratio = new / old per run)\n")
    print("| case | old requests/s | new requests/s | per-run ratios | old CPU µs/req | new CPU µs/req | old RSS MiB | new RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for case in cases:
        o, n = results[case]["old"], results[case]["new"]
        ratios = [b["rps"] / a["rps"] for a, b in zip(o, n)]
        med = lambda rs, k: statistics.median(r[k] for r in rs)
        print(f"| {case} | {med(o, 'rps'):,.0f} | {med(n, 'rps'):,.0f} | "
              f"{', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f}) | "
              f"{med(o, 'cpu_us'):.1f} | {med(n, 'cpu_us'):.1f} | {med(o, 'rss'):.1f} | {med(n, 'rss'):.1f} |")

    if args.resume:
        resume(args, new, tmp)


def resume(args, new, tmp):
    import shutil
    import subprocess
    big = os.path.join(tmp, "big.jsonl")
    R.write_batch(big, 1_000_000)
    work = os.path.join(tmp, "resume")
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, "results.jsonl")
    sim = R.Sim()
    r = R.sluice_run(sim.base, big, work, "--concurrency", "64", "--progress", "off")
    sim.stop()
    assert r["ok"] == 1_000_000, r["text"][-800:]
    kept = os.path.join(tmp, "kept.jsonl")
    subprocess.run(f"head -n 900000 {out} > {kept}", shell=True, check=True)
    firsts = {"old": [], "new": []}
    for run in range(args.runs):
        for who in (["old", "new"] if run % 2 == 0 else ["new", "old"]):
            shutil.copyfile(kept, out)
            open(os.path.join(work, "results.errors.jsonl"), "w").close()
            sim = R.Sim()
            u0 = sim.stats()["uptime_us"]
            R.SLUICE = args.old if who == "old" else new
            r = R.sluice_run(sim.base, big, work, "--concurrency", "64", "--progress", "off", restart=False)
            R.SLUICE = new
            st = sim.stats()
            sim.stop()
            assert st["received"] >= 100_000, r["text"][-800:]
            firsts[who].append((st["first_received_us"] - u0) / 1e6)
    ratios = [n / o for o, n in zip(firsts["old"], firsts["new"])]
    print("\n| resume, 900,000 of 1,000,000 done | old first request s | new first request s | per-run ratios |")
    print("|---|---|---|---|")
    print(f"| time to first request | {statistics.median(firsts['old']):.2f} ({', '.join(f'{x:.2f}' for x in firsts['old'])}) | "
          f"{statistics.median(firsts['new']):.2f} ({', '.join(f'{x:.2f}' for x in firsts['new'])}) | "
          f"{', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f}) |")


if __name__ == "__main__":
    main()
