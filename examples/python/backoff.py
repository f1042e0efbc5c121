"""Pattern 5: exponential backoff with jitter, retrying only what is worth retrying. The
engine does it for every request: ``backoff_base`` (the first delay's ceiling),
``backoff_max``, ``max_attempts``, full jitter, the server's retry-after honoured; a 400
is never retried. Here half the answers are 503s."""

import asyncio

import sluice
from _target import target


async def main():
    with target(faults={"503": 0.5, "bad-request": 0.05}, seed=8) as (server, sim):
        async with sluice.Client(backoff_base=0.05, backoff_max=0.5, max_attempts=8, **server) as client:
            results = await client.gather([f"question {i}" for i in range(30)], model="gpt-4o-mini", max_tokens=5)
            stats = client.stats
    print(f"{stats.successes} answered, {stats.failures} refused for good, {stats.retries} retries")
    for r in results:
        if not r.ok:
            assert isinstance(r.error, sluice.BadRequestError), "only a 400 fails for good"
    if sim:
        faults = sim.stats()["faults"]
        assert stats.retries > 0 and stats.retries == faults.get("503", 0), "every 503 retried"
        assert stats.failures == faults.get("bad-request", 0), "no 400 retried"


if __name__ == "__main__":
    asyncio.run(main())
