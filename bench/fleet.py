#!/usr/bin/env python3
"""Two simulators with different limits as one fleet (issue 15): `sluice run --endpoints`
over both, RUNS times. Reports the achieved rate as a share of the sum of their limits,
measured two ways, and the 429s each simulator sent (0 expected: the limits are known).

- steady share: requests the two simulators admitted in their busiest 60 s windows,
  summed, over the sum of the limits (each simulator measures its own exact windows);
- whole-run share: requests / wall time of the run, over the sum of the limits (includes
  the start and the last partial second, so it reads slightly low).

    cargo build --release
    python3 bench/fleet.py [--runs 3] [--rpm-a 1200] [--rpm-b 2400] [--requests 4200]
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
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rpm-a", type=int, default=1200)
    ap.add_argument("--rpm-b", type=int, default=2400)
    ap.add_argument("--requests", type=int, default=4200)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sluice-fleet-")
    inp = os.path.join(tmp, "in.jsonl")
    R.write_batch(inp, args.requests)
    total_limit = args.rpm_a + args.rpm_b
    rows = []
    for run in range(args.runs):
        a = R.Sim("--rpm", str(args.rpm_a))
        b = R.Sim("--rpm", str(args.rpm_b))
        endpoints = os.path.join(tmp, "endpoints.toml")
        with open(endpoints, "w") as f:
            f.write(f'[[endpoint]]\nname = "a"\nbase_url = "{a.base}"\nno_auth = true\n'
                    f'rpm = {args.rpm_a}\nconcurrency = 32\n\n'
                    f'[[endpoint]]\nname = "b"\nbase_url = "{b.base}"\nno_auth = true\n'
                    f'rpm = {args.rpm_b}\nconcurrency = 32\n')
        out_dir = os.path.join(tmp, f"run{run}")
        os.makedirs(out_dir, exist_ok=True)
        r = R.sluice_run(None, inp, out_dir, "--endpoints", endpoints, "--progress", "off",
                         "--burst-secs", "0.5")
        sa, sb = a.stats(), b.stats()
        a.stop()
        b.stop()
        assert r["ok"] == args.requests, r["text"][-800:]
        peak = sa["peak"]["requests_60s"] + sb["peak"]["requests_60s"]
        rows.append({
            "steady": peak / total_limit,
            "whole": args.requests / r["wall"] * 60 / total_limit,
            "a_share": sa["by_status"].get("200", 0) / args.requests,
            "429": sa["by_status"].get("429", 0) + sb["by_status"].get("429", 0),
            "wall": r["wall"],
        })
        row = rows[-1]
        print(f"run {run + 1}: steady {row['steady']:.3f}  whole-run {row['whole']:.3f}  "
              f"a's share {row['a_share']:.3f} (limit share {args.rpm_a / total_limit:.3f})  "
              f"429s {row['429']}  wall {row['wall']:.1f} s", flush=True)
    med = lambda k: statistics.median(r[k] for r in rows)
    print(f"median: steady {med('steady'):.3f}  whole-run {med('whole'):.3f}  "
          f"429s {sum(r['429'] for r in rows)} in all runs")


if __name__ == "__main__":
    main()
