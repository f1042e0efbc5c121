"""Pattern 3: a client with a requests-per-minute and a tokens-per-minute budget. sluice
paces to both (estimating tokens before sending), so the server never has to refuse."""

import asyncio

import sluice
from _target import target


async def main():
    rpm, tpm = 1200, 60_000
    with target(rpm=rpm, tpm=tpm) as (server, sim):
        async with sluice.Client(rpm=rpm, tpm=tpm, burst=0.5, **server) as client:
            results = await client.gather([f"Fact {i} about otters." for i in range(40)],
                                          model="gpt-4o-mini", max_tokens=30)
            print(client.stats)
    assert all(r.ok for r in results)
    if sim:
        assert sim.total_429() == 0, "kept within both limits"
        assert sim.stats()["peak"]["requests_60s"] <= rpm


if __name__ == "__main__":
    asyncio.run(main())
