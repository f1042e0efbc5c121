"""Pattern 10: the full batch processor. A lazily generated input (bounded memory), a
few urgent items at high priority, an adaptive rate, backoff with jitter on 503s, live
progress, statistics, and a graceful stop on Ctrl-C: the batch stops sending, what is in
flight finishes. On the simulator it stops itself after 250 results, as Ctrl-C would."""

import asyncio
import signal

import sluice
from _target import target

TOTAL = 400


async def main():
    def items():
        for i in range(TOTAL):
            yield {"custom_id": f"item-{i}", "priority": sluice.Priority.HIGH if i % 50 == 7 else sluice.Priority.NORMAL,
                   "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"line about {i}"}],
                            "max_tokens": 16}}

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    written = 0
    with target(rpm=9000, send_headers=False, faults={"503": 0.03}, latency=0.015, seed=21) as (server, sim):
        async with sluice.Client(rpm="auto", concurrency=32, backoff_base=0.05, backoff_max=2.0, **server) as client:
            try:
                async for r in client.run(items(), window=128):
                    written += 1
                    if written % 50 == 0:
                        print(f"progress: {written}/{TOTAL}, {client.stats.retries} retries")
                    if sim and written == 250:
                        stopping.set()  # what Ctrl-C does
                    if stopping.is_set():
                        break  # leaving the loop stops the batch: nothing new is sent
            finally:
                loop.remove_signal_handler(signal.SIGINT)
            await asyncio.sleep(0.2)  # what was in flight finishes
            s = client.stats
    print(f"{written} written; {s.successes} ok, {s.failures} failed, {s.retries} retries, "
          f"{s.total_tokens} tokens, success rate {s.success_rate:.1%}")
    if sim:
        assert written == 250 and s.retries > 0
        assert s.requests < TOTAL, "stopped before the end"


if __name__ == "__main__":
    asyncio.run(main())
