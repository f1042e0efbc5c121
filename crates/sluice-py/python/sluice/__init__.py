"""sluice: run large batches of LLM API requests as fast as the provider allows, and never
faster, from asyncio. The engine is Rust (the same as the ``sluice`` command): limits,
adaptive rates, retries with backoff, priorities, statistics and cost, with the GIL
released while it works.

    import sluice

    async with sluice.Client(rpm=500, tpm=200_000) as client:
        text = await client.chat("gpt-4o-mini", "Explain async programming.")
        results = await client.gather(prompts, model="gpt-4o-mini")
        async for result in client.run(requests):
            ...
"""

import atexit

from ._client import Client
from ._errors import (APIConnectionError, APIError, APIStatusError, APITimeoutError,
                      AuthenticationError, BadRequestError, CancelledError,
                      InsufficientQuotaError, InternalServerError, InvalidInputError,
                      NotFoundError, PaymentRequiredError, PermissionDeniedError,
                      RateLimitError, SluiceError, SpendCapError)
from ._file import run_file
from ._sim import Sim
from ._sluice import __version__, settle_before_exit as _settle_before_exit
from ._types import Priority, Result, Stats

__all__ = [
    "Client", "Sim", "Priority", "Result", "Stats", "run_file", "__version__",
    "SluiceError", "APIError", "APIStatusError", "RateLimitError", "InsufficientQuotaError",
    "AuthenticationError", "PermissionDeniedError", "BadRequestError", "NotFoundError",
    "InternalServerError", "PaymentRequiredError", "APIConnectionError", "APITimeoutError",
    "InvalidInputError", "SpendCapError", "CancelledError",
]

# The runtime's threads finish handing results over before the interpreter shuts down.
atexit.register(_settle_before_exit)
