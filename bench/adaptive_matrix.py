#!/usr/bin/env python3
"""The matrix of server behaviours of issue 28 (docs/ADAPTIVE.md) over HTTP: each row runs
`sluice run` against `sluice sim` with the row's flags and prints the measured value
beside the target, medians of --repeat runs (default 3). 127.0.0.1 only.

    cargo build --release
    python3 bench/adaptive_matrix.py                 # every row, medians of 3
    python3 bench/adaptive_matrix.py --only 1 5 --repeat 1

The same rows run on paused time in crates/sluice/tests/matrix.rs.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import SLUICE, Sim, measure, write_batch  # noqa: E402

ENV = {**os.environ, "OPENAI_API_KEY": "sk-bench-key-0123456789",
       "ANTHROPIC_API_KEY": "sk-ant-bench-0123456789"}


def rpm_between(times, start, end):
    n = sum(1 for t in times if start <= t < end)
    return n * 60.0 / max(end - start, 1e-9)


def write_messages(path, n):
    with open(path, "w") as f:
        for i in range(n):
            body = {"model": "claude-haiku-4-5", "max_tokens": 16,
                    "messages": [{"role": "user", "content": f"q {i}"}]}
            f.write(json.dumps({"custom_id": f"m{i}", "method": "POST", "url": "/v1/messages",
                                "body": body}) + "\n")


def run_row(sim_flags, n, flags, tmp, messages=False, during=None, max_tokens=None):
    """One run: returns (wall s, arrivals relative to the simulator's start, stats, ok)."""
    inp = os.path.join(tmp, f"in-{time.monotonic_ns()}.jsonl")
    if messages:
        write_messages(inp, n)
    else:
        write_batch(inp, n)
        if max_tokens:
            lines = [json.loads(x) for x in open(inp)]
            with open(inp, "w") as f:
                for r in lines:
                    r["body"]["max_tokens"] = max_tokens
                    f.write(json.dumps(r) + "\n")
    sim = Sim(*sim_flags, ids=True)
    base = sim.base[:-3] if messages else sim.base
    timer = None
    if during:
        at, change = during
        def post():
            req = urllib.request.Request(f"http://127.0.0.1:{sim.port}/sim/limits",
                                         data=json.dumps(change).encode(), method="POST",
                                         headers={"content-type": "application/json"})
            urllib.request.urlopen(req).read()
        timer = threading.Timer(at, post)
        timer.start()
    out = os.path.join(tmp, f"out-{time.monotonic_ns()}.jsonl")
    text, wall, _, _, code = measure([SLUICE, "run", inp, "-o", out, "--base-url", base, *flags],
                                     env=ENV)
    if timer:
        timer.cancel()
    times = sim.arrivals()
    st = sim.stats()
    sim.stop()
    ok = 0
    if os.path.exists(out):
        for line in open(out):
            rec = json.loads(line)
            ok += rec.get("error") is None and (rec.get("response") or {}).get("status_code") == 200
    return wall, times, st, ok


def refused(st):
    by = st.get("by_status", {})
    return by.get("429", 0) + by.get("529", 0)


def row1(tmp):
    w, t, st, ok = run_row(["--rpm", "3000", "--tpm", "600000", "--ttft-ms", "20"], 1500,
                           ["--rpm", "3000", "--tpm", "600000"], tmp)
    return {"429s": refused(st), "% of limit": 100 * rpm_between(t, t[0], t[-1] + 1e-9) / 3000}


def row2(tmp):
    w, t, st, ok = run_row(["--rpm", "1200", "--ttft-ms", "20"], 1200,
                           ["--rpm", "2400", "--tpm", "4000000"], tmp)
    return {"429s": refused(st), "% of limit": 100 * rpm_between(t, t[0], t[-1] + 1e-9) / 1200}


def row3(tmp):
    w, t, st, ok = run_row(["--rpm", "1200", "--ttft-ms", "20"], 1200, ["--rpm", "auto"], tmp)
    span = t[-1] - t[0]
    return {"% 429s": 100 * refused(st) / st["received"],
            "% of limit": 100 * rpm_between(t, t[0], t[-1] + 1e-9) / 1200,
            "% late half": 100 * rpm_between(t, t[0] + span / 2, t[-1]) / 1200}


def row4(tmp):
    w, t, st, ok = run_row(["--rpm", "1200", "--ttft-ms", "20"], 1200, [], tmp)
    return {"% 429s": 100 * refused(st) / st["received"],
            "% of limit": 100 * rpm_between(t, t[0], t[-1] + 1e-9) / 1200}


def scattered(tmp, p, headers):
    base = ["--rpm", "60000", "--ttft-ms", "20", "--seed", "7"] + ([] if headers else ["--no-headers"])
    clean, _, _, _ = run_row(base, 3000, ["--concurrency", "32"], tmp)
    faulty, _, st, ok = run_row(base + ["--fault", f"429={p}"], 3000, ["--concurrency", "32"], tmp)
    return clean / faulty, st, ok


def row5(tmp):
    out = {}
    for p in (0.01, 0.05, 0.10):
        ratio, _, _ = scattered(tmp, p, True)
        out[f"x clean P={p}"] = ratio
    return out


def row6(tmp):
    ratio, st, ok = scattered(tmp, 0.05, False)
    return {"x clean": ratio, "% 429s of attempts": 100 * refused(st) / st["received"]}


def row7(tmp):
    w, t, st, ok = run_row(["--rpm", "120", "--window", "fixed-minute", "--no-headers",
                            "--retry-after-prefix", "upstream", "--external-load", "60",
                            "--ttft-ms", "50"], 120, [], tmp)
    worst = max((len(v) - 1 for v in st["attempts"].values()), default=0)
    return {"answered": ok, "x ideal": w / 120.0, "most 429s a request": worst}


def row8(tmp):
    w, t, st, ok = run_row(["--rpm", "2000", "--external-load", "1000",
                            "--external-load-after", "20", "--ttft-ms", "20"], 2000, [], tmp)
    return {"rpm from 10 s after": rpm_between(t, 30, t[-1] - 1),
            "% 429s": 100 * refused(st) / st["received"]}


def row9(tmp):
    w, t, st, ok = run_row(["--rpm", "1000", "--ttft-ms", "20"], 3000, ["--rpm", "auto"], tmp,
                           during=(20.0, {"rpm": 3000}))
    return {"% of new limit 30 s after": 100 * rpm_between(t, 50, t[-1] - 1) / 3000}


def row10(tmp):
    w, t, st, ok = run_row(["--rpm", "1200", "--ttft-ms", "20", "--fault-window", "529=0.3@30-40"],
                           2000, ["--provider", "anthropic"], tmp, messages=True)
    before, after = rpm_between(t, 10, 30), rpm_between(t, 50, t[-1] - 1)
    return {"answered": ok, "% of rate 10 s after": 100 * after / max(before, 1e-9)}


def row11(tmp):
    w, t, st, ok = run_row(["--tpm", "200000", "--output-tokens", "40", "--ttft-ms", "20"], 1000,
                           ["--tpm", "200000"], tmp, max_tokens=400)
    minutes = (t[-1] - t[0]) / 60
    return {"429s": refused(st),
            "% TPM as charged": 100 * st["charged_tokens"] / minutes / 200000,
            "% TPM really used": 100 * (st["prompt_tokens"] + st["completion_tokens"]) / minutes / 200000}


def row12(tmp):
    best = 0.0
    for c in (4, 8, 16, 32, 64):
        w, _, _, _ = run_row(["--max-concurrency", "16", "--ttft-ms", "20"], 2000,
                             ["--concurrency", str(c)], tmp)
        best = max(best, 2000 / w)
    w, _, _, _ = run_row(["--max-concurrency", "16", "--ttft-ms", "20"], 2000,
                         ["--concurrency", "auto"], tmp)
    return {"% of best fixed": 100 * (2000 / w) / best}


ROWS = [
    (1, "--rpm 3000 --tpm 600000; same limits given", "0 429s, >= 97 %", row1),
    (2, "--rpm 1200; told --rpm 2400", "<= 10 429s, >= 95 %", row2),
    (3, "--rpm 1200; --rpm auto", "<= 1 %, >= 90 %, >= 95 % late", row3),
    (4, "--rpm 1200 headers; nothing given", "<= 1 %, >= 90 %", row4),
    (5, "--rpm 60000 --fault 429=P, c 32", ">= 0.95 / 0.85 / 0.75 x clean", row5),
    (6, "as 5, --no-headers, P 0.05", ">= 0.70 x, <= 6 %", row6),
    (7, "gateway fixed minute, external 60", "120/120, <= 1.6 x, <= 3", row7),
    (8, "--rpm 2000, external 1000 from 20 s", "~1000 within 10 s, <= 2 %", row8),
    (9, "--rpm 1000 -> 3000 at 20 s; --rpm auto", ">= 90 % within 30 s", row9),
    (10, "Anthropic, 529 30 % for 10 s", "2000/2000, >= 90 %", row10),
    (11, "--tpm 200000, answers 1/10 of max_tokens", ">= 90 % real, 0 429s", row11),
    (12, "--max-concurrency 16; --concurrency auto", ">= 95 % of best fixed", row12),
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--only", type=int, nargs="*")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="sluice-matrix-")
    print("| # | server; run | target | measured (median of %d) |\n|---|---|---|---|" % args.repeat,
          flush=True)
    for num, name, target, fn in ROWS:
        if args.only and num not in args.only:
            continue
        runs = [fn(tmp) for _ in range(args.repeat)]
        cells = ", ".join(f"{k} {statistics.median(r[k] for r in runs):.2f}" for k in runs[0])
        print(f"| {num} | {name} | {target} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
