"""Pattern 8: a priority queue. Requests handed to one batch go out high priority first,
first come first served within a priority; each result comes back beside its input."""

import asyncio

import sluice
from _target import target


async def main():
    jobs = [{"custom_id": f"job-{i}", "priority": [sluice.Priority.LOW, sluice.Priority.NORMAL, sluice.Priority.HIGH][i % 3],
             "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"job {i}"}], "max_tokens": 5}}
            for i in range(30)]
    order = []
    with target(latency=0.01) as (server, _sim):
        async with sluice.Client(concurrency=1, **server) as client:
            async for r in client.run(jobs):
                order.append((r.index, jobs[r.index]["priority"]))
    print("finished in order:", [f"{i}:{p.name}" for i, p in order])
    # The first went out before the others were queued; after it, high, normal, low.
    levels = [p for _, p in order[1:]]
    assert levels == sorted(levels, reverse=True)
    for level in sluice.Priority:
        within = [i for i, p in order[1:] if p == level]
        assert within == sorted(within), "first come first served within a priority"


if __name__ == "__main__":
    asyncio.run(main())
