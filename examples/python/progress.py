"""Pattern 7: a batch with a concurrency cap and a progress callback (done, total)."""

import asyncio

import sluice
from _target import target


async def main():
    reports = []

    def on_progress(done, total):
        reports.append(done)
        if done % 10 == 0:
            print(f"{done}/{total}")

    with target(latency=0.02) as (server, sim):
        async with sluice.Client(concurrency=8, **server) as client:
            results = await client.gather([f"summarise {i}" for i in range(60)], model="gpt-4o-mini",
                                          max_tokens=10, on_progress=on_progress)
    assert len(results) == 60 and reports == list(range(1, 61))
    if sim:
        assert sim.stats()["max_in_flight"] <= 8


if __name__ == "__main__":
    asyncio.run(main())
