"""Pattern 6: an adaptive rate that rises on success and falls on rate-limit errors.
``rpm="auto"`` searches for a limit nobody stated: doubling each second until the first
429, then AIMD; every worker pauses on a 429."""

import asyncio

import sluice
from _target import target


async def main():
    with target(rpm=3000, send_headers=False, latency=0.005) as (server, sim):
        async with sluice.Client(rpm="auto", concurrency=32, **server) as client:
            results = await client.gather([f"item {i}" for i in range(300)], model="gpt-4o-mini", max_tokens=5)
            stats = client.stats
    print(f"{stats.successes} done, {stats.rate_limited} refusals met on the way")
    assert all(r.ok for r in results)
    if sim:
        refused = sim.total_429()
        assert 0 < refused < 0.1 * sim.stats()["received"], refused


if __name__ == "__main__":
    asyncio.run(main())
