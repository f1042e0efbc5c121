#!/usr/bin/env python3
"""The Python API against the openai SDK and the CLI (issue 14), side by side in one run:
N chat requests at concurrency 64 to the simulator at zero latency, each contender in its
own process, RUNS rotating runs. Reports requests/s, CPU seconds per 1,000 requests and
peak RSS (wait4 of each process), medians, and the per-run ratios that set the targets:
the Python API's requests per CPU-second over the openai SDK's, and its requests/s
against the CLI's.

    cargo build --release
    (cd crates/sluice-py && maturin build --release --out /tmp/relwheels)
    python3 -m venv /tmp/relvenv && /tmp/relvenv/bin/pip install /tmp/relwheels/sluice_llm-*.whl
    python3 bench/python_api.py --sluice-python /tmp/relvenv/bin/python [--requests 20000] [--runs 3]

The openai SDK runs from bench/.venv (see bench/run.py), with ../shared/bench/openai_sdk_peer.py.
"""
import argparse
import os
import re
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R

GATHER = r'''
import asyncio, json, sys, time, sluice
async def main():
    base, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        bodies = [json.loads(l)["body"] for l in f]
    start = time.perf_counter()
    async with sluice.Client(base_url=base, api_key="sk-bench", concurrency=64) as client:
        results = await client.gather(bodies)
    ok = sum(r.ok for r in results)
    print(f"ok {ok} rps {ok / (time.perf_counter() - start):.1f}")
asyncio.run(main())
'''

RUN = r'''
import asyncio, json, sys, time, sluice
async def main():
    base, path = sys.argv[1], sys.argv[2]
    def lines():
        with open(path) as f:
            for l in f:
                yield json.loads(l)["body"]
    start = time.perf_counter()
    ok = 0
    async with sluice.Client(base_url=base, api_key="sk-bench", concurrency=64) as client:
        async for r in client.run(lines()):
            ok += r.ok
    print(f"ok {ok} rps {ok / (time.perf_counter() - start):.1f}")
asyncio.run(main())
'''


def python_run(py, code, base, inp, n):
    text, wall, cpu, rss, rc = R.measure([py, "-c", code, base, inp])
    m = re.search(r"ok (\d+) rps ([\d.]+)", text)
    assert m and int(m.group(1)) == n, text[-1500:]
    return {"rps": float(m.group(2)), "cpu": cpu, "rss": rss, "wall": wall}


def peer_run(base, inp, n):
    text, wall, cpu, rss, rc = R.measure([R.VENV_PY, R.PEER, "--base-url", base, "--input", inp, "--concurrency", "64"])
    return {"rps": n / wall, "cpu": cpu, "rss": rss, "wall": wall, "text": text}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice-python", required=True, help="a Python with the sluice-llm wheel installed")
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    n = args.requests
    tmp = tempfile.mkdtemp(prefix="sluice-py-bench-")
    inp = os.path.join(tmp, "in.jsonl")
    R.write_batch(inp, n)
    rows = {"openai SDK (gather + Semaphore)": [], "sluice Python client.gather": [],
            "sluice Python async for client.run": [], "sluice CLI": []}
    sim = R.Sim()
    for run in range(args.runs):
        order = list(rows)
        order = order[run % len(order):] + order[:run % len(order)]
        for who in order:
            if who.startswith("openai"):
                r = peer_run(sim.base, inp, n)
            elif who.endswith("gather"):
                r = python_run(args.sluice_python, GATHER, sim.base, inp, n)
            elif who.endswith("client.run"):
                r = python_run(args.sluice_python, RUN, sim.base, inp, n)
            else:
                r = R.sluice_run(sim.base, inp, tmp, "--concurrency", "64", "--progress", "off")
                assert r["ok"] == n, r["text"][-800:]
            r["cpu_per_1000"] = r["cpu"] / n * 1000
            r["per_cpu_second"] = n / r["cpu"]
            rows[who].append(r)
    sim.stop()
    med = lambda rs, k: statistics.median(x[k] for x in rs)
    print(f"\n### Python API, openai SDK and CLI: {n:,} chat requests, concurrency 64, zero latency, {args.runs} runs\n")
    print("| client | requests/s | CPU s per 1,000 requests | requests per CPU-second | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for who, rs in rows.items():
        print(f"| {who} | {med(rs, 'rps'):,.0f} | {med(rs, 'cpu_per_1000'):.3f} | {med(rs, 'per_cpu_second'):,.0f} | {med(rs, 'rss'):.0f} |")
    sdk = rows["openai SDK (gather + Semaphore)"]
    cli = rows["sluice CLI"]
    for who in ("sluice Python client.gather", "sluice Python async for client.run"):
        per_cpu = [a["per_cpu_second"] / b["per_cpu_second"] for a, b in zip(rows[who], sdk)]
        vs_cli = [a["rps"] / b["rps"] for a, b in zip(rows[who], cli)]
        print(f"\n{who}: requests per CPU-second over the openai SDK's, per run: "
              f"{', '.join(f'{x:.1f}x' for x in per_cpu)} (median {statistics.median(per_cpu):.1f}x); "
              f"requests/s against the CLI's: {', '.join(f'{x:.2f}' for x in vs_cli)} (median {statistics.median(vs_cli):.2f})")


if __name__ == "__main__":
    main()
