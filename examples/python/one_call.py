"""Pattern 1: one async completion."""

import asyncio

import sluice
from _target import target


async def main():
    with target() as (server, _sim):
        async with sluice.Client(**server) as client:
            text = await client.chat("gpt-4o-mini", "Explain async programming in one sentence.", max_tokens=60)
            print(text)
            assert text


if __name__ == "__main__":
    asyncio.run(main())
