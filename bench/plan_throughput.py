#!/usr/bin/env python3
"""`sluice plan` throughput: writes a file of chat requests of about SIZE bytes (1 GB by
default; a system message and a 60-word user message each, max_tokens 64), then plans it
RUNS times and prints MB/s, CPU and peak RSS per run.

    cargo build --release && python3 bench/plan_throughput.py [SIZE_BYTES] [RUNS]
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R

size = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000_000
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
path = os.path.join(tempfile.mkdtemp(prefix="sluice-plan-"), "requests.jsonl")
random.seed(2)
words = ("the quick brown fox jumps over a lazy dog while seven tired engineers count "
         "tokens per minute in batches").split()
with open(path, "w") as f:
    written, i = 0, 0
    while written < size:
        content = " ".join(random.choice(words) for _ in range(60))
        line = json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                           "body": {"model": "gpt-4o-mini", "messages": [
                               {"role": "system", "content": "You are concise."},
                               {"role": "user", "content": content}], "max_tokens": 64}}) + "\n"
        f.write(line)
        written += len(line)
        i += 1
print(f"{written:,} bytes, {i:,} requests in {path}")
for _ in range(runs):
    out = subprocess.run(["/usr/bin/time", "-f", "%e %P %M", R.SLUICE, "plan", path, "--tpm", "2000000"],
                         capture_output=True, text=True)
    wall, cpu, rss = out.stderr.strip().splitlines()[-1].split()
    mbps = re.search(r"\((\d+) MB/s\)", out.stdout).group(1)
    print(f"{mbps} MB/s, {wall} s wall, {cpu} CPU, {int(rss) / 1024:.0f} MiB peak RSS")
os.remove(path)
