"""Pattern 2: many prompts in parallel; each result is a response or an error beside its
prompt, in input order. One bad item never fails the rest."""

import asyncio

import sluice
from _target import target


async def main():
    prompts = [f"What is {i} squared?" for i in range(1, 41)]
    with target(faults={"bad-request": 0.1}, seed=3) as (server, sim):
        async with sluice.Client(concurrency=16, **server) as client:
            results = await client.gather(prompts, model="gpt-4o-mini", max_tokens=20)
    for r in results:
        print(r.input, "->", r.text if r.ok else f"{type(r.error).__name__}: {r.error.message}")
    assert [r.input for r in results] == prompts
    if sim:
        failed = sum(not r.ok for r in results)
        assert failed == sim.stats()["faults"].get("bad-request", 0) > 0


if __name__ == "__main__":
    asyncio.run(main())
