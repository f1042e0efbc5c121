"""Ctrl-C in a plain script (asyncio.run) stops the batch gracefully: nothing new is sent."""

import signal
import subprocess
import sys
import time

SCRIPT = r'''
import asyncio, faulthandler, signal, sys, time, sluice
# Ctrl-C as at a terminal: a shell that starts the tests in the background (`cmd &`
# without job control) has its children ignore SIGINT, and Python keeps ignoring it.
signal.signal(signal.SIGINT, signal.default_int_handler)
# Should it ever hang, every thread's Python stack goes to stderr and the test shows it.
faulthandler.dump_traceback_later(20, exit=True)
sim = sluice.Sim(latency=0.05)
async def main():
    async with sluice.Client(base_url=sim.base_url, api_key="k", concurrency=8) as client:
        n = 0
        async for r in client.run((f"item {i}" for i in range(100_000)), model="gpt-4o-mini"):
            n += 1
            if n == 20:
                print("running", flush=True)
try:
    asyncio.run(main())
except KeyboardInterrupt:
    time.sleep(0.3)  # what was already on its way arrives
    first = sim.stats()["received"]
    time.sleep(0.5)
    print("stopped", first, sim.stats()["received"], flush=True)
'''


def test_ctrl_c_stops_the_batch_and_nothing_more_is_sent():
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "running"
    time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    words = out.split()
    assert words[:1] == ["stopped"], (out, err)
    first, later = int(words[1]), int(words[2])
    # A few in flight may still have been answered; nothing is sent after the stop.
    assert later == first and first < 1_000, (out, err)
