#!/usr/bin/env python3
"""CPU cost of the live progress view: 50,000 requests against the simulator at zero
latency, concurrency 64, `--progress off` against `--progress live` (in a pseudo-terminal
made by `script`, since the live view draws only on a terminal), 5 alternating runs.

    cargo build --release && python3 bench/progress_cost.py
"""
import os
import shlex
import statistics
import sys
import tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R
tmp=tempfile.mkdtemp()
inp=os.path.join(tmp,'in.jsonl'); R.write_batch(inp, 50000)
env={**os.environ,'OPENAI_API_KEY':'sk-bench-0123456789'}
sim=R.Sim()
res={'off':[], 'live':[]}
for i in range(5):
    for mode in (['off','live'] if i%2==0 else ['live','off']):
        out=os.path.join(tmp,f'o-{mode}-{i}.jsonl')
        cmd=[R.SLUICE,'run',inp,'-o',out,'--base-url',sim.base,'--concurrency','64','--progress',mode]
        if mode=='live':
            cmd=['script','-qec',' '.join(shlex.quote(c) for c in cmd),'/dev/null']
        text,wall,cpu,rss,code=R.measure(cmd,env=env)
        assert code==0,(mode,text[-300:])
        res[mode].append(cpu/50000*1e6)
sim.stop()
for k,v in res.items(): print(k,'cpu us/req',[round(x,2) for x in v],'median',round(statistics.median(v),2))
print('per-run live/off', [round(res['live'][i]/res['off'][i],3) for i in range(5)])
