#!/usr/bin/env python3
"""Benchmarks for sluice, side by side on one machine. Prints markdown tables.

    cargo build --release
    cargo install oha --locked                                  # for sim / overhead
    python3 -m venv bench/.venv && bench/.venv/bin/pip install openai   # for peer
    python3 bench/run.py [sim] [overhead] [peer] [utilization] [memory] [durability] [rss] [resume] [adaptive] [sweep] [--runs 3] [--baseline OLD_SLUICE]

Every figure is the median of --runs runs, measured in the same invocation so the
machine's noise hits all contenders alike. CPU seconds and peak RSS come from wait4() of
each process. Nothing here talks to anything but 127.0.0.1.
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")
PEER = os.path.join(os.path.dirname(ROOT), "shared", "bench", "openai_sdk_peer.py")
VENV_PY = os.path.join(ROOT, "bench", ".venv", "bin", "python")
BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Summarize the plot of Hamlet in one sentence."}],
    "max_tokens": 32,
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sim:
    """`sluice sim` in its own process."""

    def __init__(self, *flags, ids=False):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [SLUICE, "sim", "--listen", f"127.0.0.1:{self.port}", *([] if ids else ["--no-id-stats"]), *flags],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert "listening on" in line, line
        self.base = f"http://127.0.0.1:{self.port}/v1"

    def stats(self, attempts=False):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/sim/stats?attempts={str(attempts).lower()}") as r:
            return json.load(r)

    def arrivals(self, prefix=""):
        """Sorted arrival times in seconds of every attempt whose id starts with prefix."""
        st = self.stats(attempts=True)
        return sorted(t / 1e6 for cid, ts in st["attempts"].items() if cid.startswith(prefix) for t in ts)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


def measure(cmd, env=None, timeout=None):
    """Runs cmd; returns (stdout+stderr text, wall s, cpu s, peak RSS MiB)."""
    out = tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    text = out.read().decode(errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    return text, wall, cpu, usage.ru_maxrss / 1024.0, proc.returncode


def write_batch(path, n, body=BODY, vary=True):
    with open(path, "w") as f:
        for i in range(n):
            b = dict(body)
            if vary:
                b = json.loads(json.dumps(body))
                b["messages"][-1]["content"] = f"{body['messages'][-1]['content']} (#{i})"
            f.write(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": b}) + "\n")


def sluice_run(base, inp, out_dir, *flags, restart=True, binary=None):
    """Runs sluice (or another build of it, `binary`); a fresh run unless restart=False
    (then it resumes what is there)."""
    out = os.path.join(out_dir, "results.jsonl")
    text, wall, cpu, rss, code = measure(
        [binary or SLUICE, "run", inp, "-o", out, *(["--base-url", base] if base else []), *flags,
         *(["--restart"] if restart else [])],
        env={**os.environ, "OPENAI_API_KEY": "sk-bench"})
    m = re.search(r"\(([\d.]+) requests/s", text)
    ok = re.search(r"^\s+ok\s+(\d+)$", text, re.M)  # the summary's line, not a progress line
    return {"rps": float(m.group(1)) if m else 0.0, "wall": wall, "cpu": cpu, "rss": rss,
            "ok": int(ok.group(1)) if ok else 0, "code": code, "text": text}


def oha(url, n, conc):
    text, wall, cpu, rss, code = measure(
        ["oha", "-n", str(n), "-c", str(conc), "--no-tui", "-m", "POST",
         "-H", "content-type: application/json", "-d", json.dumps(BODY), url])
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    return {"rps": float(m.group(1)) if m else 0.0, "wall": wall, "cpu": cpu, "rss": rss}


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def bench_sim(args):
    print("\n### Simulator throughput (zero latency, no limits, oha -c 64, 10 s)\n")
    rates = []
    for _ in range(args.runs):
        sim = Sim()
        text, *_ = measure(["oha", "-z", "10s", "-c", "64", "--no-tui", "-m", "POST",
                            "-H", "content-type: application/json", "-d", json.dumps(BODY),
                            f"{sim.base}/chat/completions"])
        sim.stop()
        rates.append(float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)))
    print("| runs | requests/s (median) | min | max |\n|---|---|---|---|")
    print(f"| {len(rates)} | {statistics.median(rates):,.0f} | {min(rates):,.0f} | {max(rates):,.0f} |")


def bench_overhead(args, with_peer):
    n = args.requests
    print(f"\n### Overhead: {n:,} chat requests, concurrency 64, simulator at zero latency, no limits\n")
    tmp = tempfile.mkdtemp(prefix="sluice-bench-")
    inp = os.path.join(tmp, "requests.jsonl")
    write_batch(inp, n)
    rows = {"oha": [], "sluice": [], "baseline": [], "openai-sdk": []}
    def run_oha():
        sim = Sim()
        rows["oha"].append(oha(f"{sim.base}/chat/completions", n, 64))
        sim.stop()

    def run_sluice():
        sim = Sim()
        r = sluice_run(sim.base, inp, tmp, "--concurrency", "64")
        assert r["ok"] == n, r["text"]
        rows["sluice"].append(r)
        sim.stop()

    def run_baseline():
        sim = Sim()
        r = sluice_run(sim.base, inp, tmp, "--concurrency", "64", binary=args.baseline)
        assert r["ok"] == n, r["text"]
        rows["baseline"].append(r)
        sim.stop()

    contenders = [run_oha, run_sluice, *([run_baseline] if args.baseline else [])]
    for run in range(args.runs):
        # Rotate which goes first, so that none always gets the quieter moment.
        for contender in contenders[run % len(contenders):] + contenders[:run % len(contenders)]:
            contender()
        if with_peer and run == 0:
            # The Python client is two orders of magnitude slower: one run of it is enough.
            sim = Sim()
            text, wall, cpu, rss, code = measure(
                [VENV_PY, PEER, "--base-url", sim.base, "--input", inp, "--concurrency", "64"])
            sim.stop()
            m = re.search(r"req_per_s=([\d.]+)", text)
            rows["openai-sdk"].append({"rps": float(m.group(1)) if m else 0.0, "wall": wall, "cpu": cpu, "rss": rss})
    print("| client | requests/s | wall s | CPU s | requests per CPU s | peak RSS MiB |\n|---|---|---|---|---|---|")
    for name, runs in rows.items():
        if not runs:
            continue
        rps, cpu = med(runs, "rps"), med(runs, "cpu")
        print(f"| {name} | {rps:,.0f} | {med(runs, 'wall'):.2f} | {cpu:.2f} | {n / cpu:,.0f} | {med(runs, 'rss'):.1f} |")
    # Each run pairs an oha and a sluice measurement taken back to back: the median of the
    # per-run ratios cancels most of the machine's drift between runs.
    ratios = sorted(s["rps"] / o["rps"] for s, o in zip(rows["sluice"], rows["oha"]))
    print(f"\nsluice / oha per run: {', '.join(f'{r:.0%}' for r in ratios)}; median {statistics.median(ratios):.0%} (target at least 90%)")
    if rows["baseline"]:
        base = sorted(b["rps"] / o["rps"] for b, o in zip(rows["baseline"], rows["oha"]))
        print(f"baseline / oha per run: {', '.join(f'{r:.0%}' for r in base)}; median {statistics.median(base):.0%}")
        cpu = sorted(s["cpu"] / b["cpu"] for s, b in zip(rows["sluice"], rows["baseline"]))
        print(f"sluice CPU / baseline CPU per run: {', '.join(f'{r:.2f}' for r in cpu)}; median {statistics.median(cpu):.2f}")
    if rows["openai-sdk"]:
        ratio = (n / med(rows["sluice"], "cpu")) / (n / med(rows["openai-sdk"], "cpu"))
        print(f"sluice requests per CPU second / openai-sdk's = {ratio:.1f}x (target at least 10x)")


def bench_utilization(args):
    secs = args.utilization_secs
    rpm, tpm = 6000, 1_000_000
    n = int(rpm * secs / 60)
    print(f"\n### Utilization: simulator and sluice at --rpm {rpm} --tpm {tpm}, 50 ms latency, {n:,} requests (~{secs} s)\n")
    tmp = tempfile.mkdtemp(prefix="sluice-bench-")
    inp = os.path.join(tmp, "requests.jsonl")
    write_batch(inp, n, body={**BODY, "max_tokens": 100})
    sim = Sim("--rpm", str(rpm), "--tpm", str(tpm), "--ttft-ms", "50")
    r = sluice_run(sim.base, inp, tmp, "--rpm", str(rpm), "--tpm", str(tpm), "--concurrency", "64")
    st = sim.stats()
    sim.stop()
    minutes = r["wall"] / 60
    got_rpm = st["admitted"] / minutes
    got_tpm = st["charged_tokens"] / minutes
    share = max(got_rpm / rpm, got_tpm / tpm)
    print("| achieved RPM | share of RPM | achieved TPM (charged) | share of TPM | 429s | binding share |\n|---|---|---|---|---|---|")
    print(f"| {got_rpm:,.0f} | {got_rpm / rpm:.1%} | {got_tpm:,.0f} | {got_tpm / tpm:.1%} | {st['by_status'].get('429', 0)} | {share:.1%} |")
    print(f"\nbusiest 1 s window: {st['peak']['requests_1s']} requests, {st['peak']['tokens_1s']} tokens; "
          f"busiest 60 s: {st['peak']['requests_60s']} requests, {st['peak']['tokens_60s']} tokens")


def bench_memory(args):
    n = args.memory_requests
    print(f"\n### Memory: {n:,} requests, simulator at zero latency, concurrency 64\n")
    tmp = tempfile.mkdtemp(prefix="sluice-bench-")
    inp = os.path.join(tmp, "requests.jsonl")
    write_batch(inp, n)
    runs = []
    for _ in range(args.runs):
        sim = Sim()
        r = sluice_run(sim.base, inp, tmp, "--concurrency", "64")
        sim.stop()
        assert r["ok"] == n, r["text"]
        runs.append(r)
    print("| requests | input MiB | peak RSS MiB (median) | requests/s |\n|---|---|---|---|")
    print(f"| {n:,} | {os.path.getsize(inp) / 2**20:.1f} | {med(runs, 'rss'):.1f} | {med(runs, 'rps'):,.0f} |")


def write_big_batch(path, n, pad):
    """n Batch lines of about `pad` + 200 bytes each (a long system prompt)."""
    system = ("You are a careful assistant. " * (pad // 29 + 1))[:pad]
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": {
                "model": "gpt-4o-mini", "max_tokens": 16,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": f"Question {i}"}]}}) + "\n")


def bench_rss_scale(args):
    print("\n### Memory against input size (about 1 KB a line, zero latency, concurrency 64)\n")
    tmp = tempfile.mkdtemp(prefix="sluice-bench-")
    rows = []
    for n in (100_000, 1_000_000):
        inp = os.path.join(tmp, f"in-{n}.jsonl")
        write_big_batch(inp, n, 800)
        runs = []
        for _ in range(args.runs):
            sim = Sim()
            r = sluice_run(sim.base, inp, tmp, "--concurrency", "64")
            sim.stop()
            assert r["ok"] == n, r["text"][-2000:]
            runs.append(r)
        rows.append((n, os.path.getsize(inp) / 2**20, runs))
        if n == 1_000_000:
            args._big = (inp, os.path.join(tmp, "results.jsonl"))
        else:
            os.remove(inp)
    print("| requests | input MiB | peak RSS MiB (median) | runs | requests/s |\n|---|---|---|---|---|")
    for n, mib, runs in rows:
        each = ", ".join(f"{r['rss']:.1f}" for r in runs)
        print(f"| {n:,} | {mib:,.0f} | {med(runs, 'rss'):.1f} | {each} | {med(runs, 'rps'):,.0f} |")
    print(f"\npeak RSS 1M / 100k (medians) = {med(rows[1][2], 'rss') / med(rows[0][2], 'rss'):.2f}")


def bench_resume(args):
    """Keeps the first 900,000 records of the 1M run and resumes."""
    if not getattr(args, "_big", None):
        bench_rss_scale(args)
    inp, out = args._big
    errors = out.replace("results.jsonl", "results.errors.jsonl")
    kept = os.path.join(os.path.dirname(out), "kept.jsonl")
    subprocess.run(f"head -n 900000 {out} > {kept} && mv {kept} {out} && : > {errors}", shell=True, check=True)
    print("\n### Resume start-up: 900,000 of 1,000,000 done\n")
    sim = Sim()
    u0 = sim.stats()["uptime_us"]
    r = sluice_run(sim.base, inp, os.path.dirname(out), "--concurrency", "64", restart=False)
    st = sim.stats()
    sim.stop()
    first = (st["first_received_us"] - u0) / 1e6
    print("| lines done | sent on resume | time to first request s | resume wall s | peak RSS MiB |\n|---|---|---|---|---|")
    print(f"| 900,000 | {st['received']:,} | {first:.2f} | {r['wall']:.1f} | {r['rss']:.1f} |")


def bench_durability(args):
    n = args.requests
    print(f"\n### Durability cost: {n:,} requests at zero latency, concurrency 64, by --sync policy\n")
    tmp = tempfile.mkdtemp(prefix="sluice-bench-")
    inp = os.path.join(tmp, "requests.jsonl")
    write_batch(inp, n)
    rows = {"never": [], "1s": [], "always": []}
    for _ in range(args.runs):
        for policy in rows:
            sim = Sim()
            for f in os.listdir(tmp):
                if f.startswith("results"):
                    os.remove(os.path.join(tmp, f))
            r = sluice_run(sim.base, inp, tmp, "--concurrency", "64", "--sync", policy)
            sim.stop()
            assert r["ok"] == n, r["text"][-2000:]
            rows[policy].append(r)
    print("| --sync | requests/s (median) | vs never |\n|---|---|---|")
    base = med(rows["never"], "rps")
    for policy, runs in rows.items():
        print(f"| {policy}{' (default)' if policy == '1s' else ''} | {med(runs, 'rps'):,.0f} | {med(runs, 'rps') / base:.0%} |")


def rate_in(times, start, end):
    return sum(1 for t in times if start <= t < end) / (end - start)


def convergence(times, target, window=5.0):
    """Seconds from the first arrival until a `window`-second rate first reaches target."""
    t0 = times[0]
    t = t0
    while t + window <= times[-1]:
        if rate_in(times, t, t + window) >= target:
            return t - t0
        t += 0.5
    return float("nan")


def bench_adaptive(args):
    tmp = tempfile.mkdtemp(prefix="sluice-bench-")
    print("\n### Adaptive control (50 ms latency; rates from the simulator's arrival times)\n")
    print("| case | limit (rpm) | sluice told | requests | 429s | converged after s (5 s rate at 90 %) | share of limit after convergence |")
    print("|---|---|---|---|---|---|---|")
    cases = [
        ("unknown limit, no headers", 3000, "auto", ["--no-headers"], 3000),
        ("wrong limit (told 2x), headers", 6000, "12000", [], 3000),
    ]
    for name, limit, told, sim_flags, n in cases:
        inp = os.path.join(tmp, "in.jsonl")
        write_batch(inp, n)
        sim = Sim("--rpm", str(limit), "--ttft-ms", "50", *sim_flags, ids=True)
        sluice_run(sim.base, inp, tmp, "--rpm", told, "--concurrency", "64")
        times, st = sim.arrivals(), sim.stats()
        sim.stop()
        conv = convergence(times, 0.9 * limit / 60)
        share = rate_in(times, times[0] + conv, times[-1]) / (limit / 60) if conv == conv else float("nan")
        print(f"| {name} | {limit:,} | {told} | {n:,} | {st['by_status'].get('429', 0)} | {conv:.1f} | {share:.1%} |")
    # Two jobs on one key.
    limit, n = 6000, 1500
    sim = Sim("--rpm", str(limit), "--ttft-ms", "50", ids=True)
    procs = []
    for job in ("a", "b"):
        inp = os.path.join(tmp, f"in-{job}.jsonl")
        with open(inp, "w") as f:
            for i in range(n):
                f.write(json.dumps({"custom_id": f"{job}{i}", "method": "POST", "url": "/v1/chat/completions", "body": BODY}) + "\n")
        out = os.path.join(tmp, f"out-{job}.jsonl")
        procs.append(subprocess.Popen([SLUICE, "run", inp, "-o", out, "--base-url", sim.base, "--rpm", str(limit), "--restart"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OPENAI_API_KEY": "sk-bench"}))
    for p in procs:
        p.wait()
    a, b, st = sim.arrivals("a"), sim.arrivals("b"), sim.stats()
    sim.stop()
    both = sorted(a + b)
    span = both[-1] - both[0]
    print(f"\nTwo jobs on one key ({limit:,} rpm, each told {limit:,}, {n:,} requests each): together "
          f"{len(both) / span:.1f} requests/s of {limit / 60:.0f} ({len(both) / span / (limit / 60):.0%}); "
          f"job a finished after {a[-1] - both[0]:.1f} s, job b after {b[-1] - both[0]:.1f} s; "
          f"429s: {st['by_status'].get('429', 0)} of {st['received']:,} requests; busiest 60 s: {st['peak']['requests_60s']}.")


def bench_sweep(args):
    n = 4000
    print(f"\n### Concurrency sweep: simulator --max-concurrency 32, 20 ms a request, {n:,} requests\n")
    tmp = tempfile.mkdtemp(prefix="sluice-bench-")
    inp = os.path.join(tmp, "requests.jsonl")
    write_batch(inp, n)
    print("| --concurrency | requests/s | p50 ms | p99 ms |\n|---|---|---|---|")
    for c in ["8", "16", "32", "64", "128", "auto"]:
        sim = Sim("--max-concurrency", "32", "--ttft-ms", "20", "--jitter", "0.1")
        r = sluice_run(sim.base, inp, tmp, "--concurrency", c)
        sim.stop()
        m = re.search(r"p50 ([\d.]+) ms\s+p90 [\d.]+ ms\s+p99 ([\d.]+) ms", r["text"])
        p50, p99 = (float(m.group(1)), float(m.group(2))) if m else (float("nan"), float("nan"))
        print(f"| {c} | {r['rps']:,.0f} | {p50:.1f} | {p99:.1f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("which", nargs="*", default=["sim", "overhead", "peer", "utilization", "memory"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--baseline", help="overhead: another sluice binary (an earlier build) to run beside this one")
    ap.add_argument("--utilization-secs", type=int, default=120)
    ap.add_argument("--memory-requests", type=int, default=100_000)
    args = ap.parse_args()
    if not os.path.exists(SLUICE):
        sys.exit("build first: cargo build --release")
    print(f"machine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}")
    if "sim" in args.which:
        bench_sim(args)
    if "overhead" in args.which or "peer" in args.which:
        bench_overhead(args, with_peer="peer" in args.which and os.path.exists(VENV_PY))
    if "utilization" in args.which:
        bench_utilization(args)
    if "memory" in args.which:
        bench_memory(args)
    if "durability" in args.which:
        bench_durability(args)
    if "rss" in args.which:
        bench_rss_scale(args)
    if "resume" in args.which:
        bench_resume(args)
    if "adaptive" in args.which:
        bench_adaptive(args)
    if "sweep" in args.which:
        bench_sweep(args)


if __name__ == "__main__":
    main()
