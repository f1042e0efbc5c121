#!/usr/bin/env python3
"""CPU cost of the live progress view and of the metrics endpoint: 50,000 requests
against the simulator at zero latency, concurrency 64, `--progress off` against
`--progress live` (in a pseudo-terminal made by `script`, since the live view draws only
on a terminal) and against `--progress off --metrics-addr` scraped once a second, 5
rotating runs.

    cargo build --release && python3 bench/progress_cost.py
"""
import os
import shlex
import statistics
import sys
import tempfile
import threading
import urllib.request
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R
tmp=tempfile.mkdtemp()
inp=os.path.join(tmp,'in.jsonl'); R.write_batch(inp, 50000)
env={**os.environ,'OPENAI_API_KEY':'sk-bench-0123456789'}
sim=R.Sim()
METRICS='127.0.0.1:19464'
def scrape(stop):
    while not stop.is_set():
        try: urllib.request.urlopen(f'http://{METRICS}/metrics', timeout=1).read()
        except Exception: pass
        stop.wait(1.0)
modes=['off','live','metrics']
res={m:[] for m in modes}
for i in range(5):
    for mode in modes[i%3:]+modes[:i%3]:
        out=os.path.join(tmp,f'o-{mode}-{i}.jsonl')
        cmd=[R.SLUICE,'run',inp,'-o',out,'--base-url',sim.base,'--concurrency','64','--progress','live' if mode=='live' else 'off']
        if mode=='live':
            cmd=['script','-qec',' '.join(shlex.quote(c) for c in cmd),'/dev/null']
        stop=threading.Event()
        if mode=='metrics':
            cmd+=['--metrics-addr',METRICS]
            threading.Thread(target=scrape,args=(stop,),daemon=True).start()
        text,wall,cpu,rss,code=R.measure(cmd,env=env)
        stop.set()
        assert code==0,(mode,text[-300:])
        res[mode].append(cpu/50000*1e6)
sim.stop()
for k,v in res.items(): print(k,'cpu us/req',[round(x,2) for x in v],'median',round(statistics.median(v),2))
for m in ('live','metrics'):
    print(f'per-run {m}/off', [round(res[m][i]/res['off'][i],3) for i in range(5)])
