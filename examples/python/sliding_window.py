"""Pattern 4: at most N requests in any window of T seconds. The engine's token bucket
(``rpm``) is the usual way; for an exact N-per-window rule around any call, an asyncio
sliding log is a few lines, with the sluice call inside it."""

import asyncio
import collections
import time

import sluice
from _target import target


class SlidingWindow:
    """At most ``n`` acquisitions in any ``window`` seconds, served in order."""

    def __init__(self, n, window):
        self.n, self.window, self.times, self.lock = n, window, collections.deque(), asyncio.Lock()

    async def acquire(self):
        async with self.lock:
            while len(self.times) >= self.n:
                wait = self.times[0] + self.window - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.times.popleft()
            self.times.append(time.monotonic())


async def main():
    window = SlidingWindow(10, 1.0)
    went = []
    with target() as (server, _sim):
        async with sluice.Client(**server) as client:
            async def call(i):
                await window.acquire()
                went.append(time.monotonic())
                return await client.chat("gpt-4o-mini", f"ping {i}", max_tokens=5)
            answers = await asyncio.gather(*(call(i) for i in range(25)))
    went.sort()
    most = max(sum(1 for u in went[i:] if u - t < 1.0) for i, t in enumerate(went))
    print(f"{len(answers)} answers; at most {most} in any second")
    assert most <= 10 and went[-1] - went[0] >= 2.0


if __name__ == "__main__":
    asyncio.run(main())
