"""Pattern 4: a sliding window: at most N requests in any window. ``limiter="sliding-window"``
keeps each second (and each 10 s and 60 s) within its share of ``rpm``, with no burst on
top, as Azure counts; here 600 a minute is at most 10 in any second."""

import asyncio
import time

import sluice
from _target import target


async def main():
    went = []
    with target() as (server, sim):
        async with sluice.Client(rpm=600, limiter="sliding-window", **server) as client:
            async def call(i):
                answer = await client.chat("gpt-4o-mini", f"ping {i}", max_tokens=5)
                went.append(time.monotonic())
                return answer
            answers = await asyncio.gather(*(call(i) for i in range(25)))
    print(f"{len(answers)} answers over {went[-1] - min(went):.1f} s")
    if sim:
        arrivals = sorted(t / 1e6 for ts in sim.stats()["attempts"].values() for t in ts)
        # Within any window a hair under a second (the requests leave in groups exactly a
        # second apart, and transit time shifts each by microseconds).
        most = max(sum(1 for u in arrivals[i:] if u - t < 0.99) for i, t in enumerate(arrivals))
        print(f"at most {most} reached the server in any second")
        assert most <= 10, most
    assert max(went) - min(went) >= 1.0, "25 at 10 a second take over two seconds"


if __name__ == "__main__":
    asyncio.run(main())
