"""Pattern 9: a session as a scoped resource with statistics (requests, successes,
failures, total tokens, average latency, success rate), a per-request timeout, and a
batch whose items fail one by one."""

import asyncio

import sluice
from _target import target


async def main():
    with target(faults={"hang": 0.1}, seed=12) as (server, sim):
        async with sluice.Client(timeout=0.3, max_attempts=1, **server) as client:
            results = await client.gather([f"short answer {i}" for i in range(30)], model="gpt-4o-mini", max_tokens=8)
            s = client.stats
    print(f"requests {s.requests}, successes {s.successes}, failures {s.failures}, tokens {s.total_tokens}, "
          f"average latency {s.avg_latency * 1000:.1f} ms, success rate {s.success_rate:.0%}")
    timed_out = [r for r in results if not r.ok]
    assert all(isinstance(r.error, sluice.APITimeoutError) for r in timed_out)
    assert s.requests == 30 and s.successes + s.failures == 30
    if sim:
        assert len(timed_out) == sim.stats()["faults"].get("hang", 0) > 0


if __name__ == "__main__":
    asyncio.run(main())
