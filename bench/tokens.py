#!/usr/bin/env python3
"""Token estimation at wire speed (issue 12): oha, sluice and sluice with a TPM budget
(`--tpm`, far above what the run uses, so it costs estimation and never waits), side by
side in one invocation, for short prompts and for 2,000-token prompts. Simulator at zero
latency, concurrency 64, RUNS rotating runs; prints medians and per-run ratios.

    cargo build --release && cargo install oha --locked
    python3 bench/tokens.py [--requests 50000] [--long-requests 20000] [--runs 5]
"""
import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R

WORDS = ("river mountain quietly seven engineering history planet margin lantern copper "
         "harvest signal orbit fabric nimble quantum ledger meadow pioneer thunder cascade "
         "velvet anchor summit glacier compass ember horizon mosaic prairie").split()


def long_body(tokens=2000):
    rnd = random.Random(4)
    text = " ".join(rnd.choice(WORDS) for _ in range(tokens))
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "max_tokens": 32}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50000)
    ap.add_argument("--long-requests", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    have_oha = shutil.which("oha") is not None
    tmp = tempfile.mkdtemp(prefix="sluice-tokens-")
    for label, body, n in (("short prompts (~15 tokens)", R.BODY, args.requests),
                           ("2,000-token prompts", long_body(), args.long_requests)):
        if n == 0:
            continue
        inp = os.path.join(tmp, "in.jsonl")
        R.write_batch(inp, n, body=body)
        rows = {"oha": [], "sluice": [], "sluice --tpm": []}

        def run_oha():
            sim = R.Sim()
            old = R.BODY
            R.BODY = body
            try:
                rows["oha"].append(R.oha(f"{sim.base}/chat/completions", n, 64))
            finally:
                R.BODY = old
                sim.stop()

        def run_sluice(tpm):
            sim = R.Sim()
            flags = ["--concurrency", "64"] + (["--tpm", "100000000000"] if tpm else [])
            r = R.sluice_run(sim.base, inp, tmp, *flags)
            sim.stop()
            assert r["ok"] == n, r["text"][-1500:]
            r["cpu_us"] = r["cpu"] / n * 1e6
            rows["sluice --tpm" if tpm else "sluice"].append(r)

        order = ([run_oha] if have_oha else []) + [lambda: run_sluice(False), lambda: run_sluice(True)]
        for i in range(args.runs):
            for f in order[i % len(order):] + order[:i % len(order)]:
                f()
        print(f"\n### {label}: {n:,} chat requests, concurrency 64, simulator at zero latency\n")
        print("| client | requests/s (median) | CPU µs per request | peak RSS MiB |\n|---|---|---|---|")
        for name, runs in rows.items():
            if runs:
                print(f"| {name} | {R.med(runs, 'rps'):,.0f} | {R.med(runs, 'cpu') / n * 1e6:.1f} | {R.med(runs, 'rss'):.1f} |")
        tpm = [t["rps"] / s["rps"] for t, s in zip(rows["sluice --tpm"], rows["sluice"])]
        print(f"\nsluice --tpm / sluice per run: {', '.join(f'{r:.0%}' for r in tpm)}; median {statistics.median(tpm):.0%}")
        if have_oha:
            for name in ("sluice", "sluice --tpm"):
                r = [s["rps"] / o["rps"] for s, o in zip(rows[name], rows["oha"])]
                print(f"{name} / oha per run: {', '.join(f'{x:.0%}' for x in r)}; median {statistics.median(r):.0%}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
