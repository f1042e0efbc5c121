"""``Client``: the asyncio face of the sluice engine."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from typing import (Any, AsyncIterable, AsyncIterator, Callable, Dict, Iterable, List,
                    Optional, Union)

from . import _sluice
from ._errors import SluiceError, error_for
from ._types import Priority, Result, Stats, answer_text

DEFAULT_BASE_URL = "https://api.openai.com/v1"
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"

# Where each provider's SDK reads its key and base URL, and its default base URL.
_PROVIDERS = {
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
    "azure": ("AZURE_OPENAI_API_KEY", None, None),
}
# Anthropic requires max_tokens; what a prompt gets when none is given.
_ANTHROPIC_MAX_TOKENS = 1024

Item = Union[str, Dict[str, Any]]
Items = Union[Iterable[Item], AsyncIterable[Item]]

_ids = itertools.count(1)

# Requests handed to the engine per crossing, and results taken back per crossing.
_CHUNK = 256


def _raise_failed(e: BaseException) -> SluiceError:
    code, status, message, request_id, body, gave_up, attempts = e.args
    return error_for(code, status, message, request_id, body, gave_up, attempts)


async def _aiter(items: Items) -> AsyncIterator[Item]:
    """Any iterable or async iterable, as an async iterator."""
    if hasattr(items, "__aiter__"):
        async for item in items:  # type: ignore[union-attr]
            yield item
    else:
        for item in items:  # type: ignore[union-attr]
            yield item


class Client:
    """Sends requests within limits, retrying what is worth retrying, on the sluice engine
    (the same one as the ``sluice`` command).

    The key comes from ``api_key`` or ``OPENAI_API_KEY``, the server from ``base_url`` or
    ``OPENAI_BASE_URL`` (default ``https://api.openai.com/v1``), as the openai SDK reads
    them. ``rpm`` and ``tpm`` are the requests and tokens per minute to keep within (an
    int, or ``"auto"`` to find the limit); ``concurrency`` the requests in flight at most
    (or ``"auto"``). Every engine setting is a keyword: ``timeout``, ``connect_timeout``,
    ``max_attempts``, ``backoff_base``, ``backoff_max``, ``max_retry_after``, ``seed``,
    ``headers``, ``max_cost``, ``burst`` (seconds of a minute's budget that may go at
    once; default half a second, kept from the first request: a stated limit is the
    truth), ``limiter`` (``"token-bucket"``, a steady rate with a small burst as
    OpenAI counts; or ``"sliding-window"``, fixed shares of 1 s, 10 s and 60 s windows with
    no burst, as Azure counts), ``model`` (the default for ``chat`` and prompt strings).

    ``provider`` says which dialect the server speaks: ``"openai"`` (default; every
    OpenAI-compatible server), ``"anthropic"`` (the Messages API: the key from
    ``ANTHROPIC_API_KEY``, the server from ``ANTHROPIC_BASE_URL`` or
    ``https://api.anthropic.com``; prompts become ``/v1/messages`` requests) or ``"azure"``
    (``base_url`` is the deployment's URL with ``?api-version=...``; the key from
    ``AZURE_OPENAI_API_KEY``). ``itpm`` and ``otpm`` are input and output tokens per minute,
    kept apart as Anthropic limits them (``max_tokens`` is reserved when a request is sent
    and what it did not use is given back).

    Use it as ``async with sluice.Client(...) as client:``; everything sent through it
    shares one set of limits and one set of statistics (``client.stats``).
    """

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        rpm: Union[int, str, None] = None,
        tpm: Union[int, str, None] = None,
        concurrency: Union[int, str] = 64,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        max_attempts: int = 8,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        max_retry_after: float = 120.0,
        seed: Optional[int] = None,
        headers: Optional[Dict[str, str]] = None,
        max_cost: Optional[float] = None,
        model: Optional[str] = None,
        burst: Optional[float] = None,
        limiter: str = "token-bucket",
        provider: str = "openai",
        itpm: Union[int, str, None] = None,
        otpm: Union[int, str, None] = None,
    ) -> None:
        if provider not in _PROVIDERS:
            raise ValueError(f"provider must be openai, anthropic or azure, not {provider!r}")
        key_env, url_env, default_url = _PROVIDERS[provider]
        api_key = api_key if api_key is not None else os.environ.get(key_env)
        base_url = base_url or (os.environ.get(url_env) if url_env else None) or default_url
        if base_url is None:
            raise ValueError("provider='azure' needs base_url: the deployment's URL with ?api-version=...")
        if not api_key and base_url.rstrip("/") == default_url:
            raise SluiceError(f"no API key: pass api_key= or set {key_env}", code="authentication_error")

        def budget(v: Union[int, str, None]) -> "tuple[Optional[int], bool]":
            if v == "auto":
                return None, True
            return (int(v) if v is not None else None), False

        rpm_n, rpm_auto = budget(rpm)
        tpm_n, tpm_auto = budget(tpm)
        itpm_n, itpm_auto = budget(itpm)
        otpm_n, otpm_auto = budget(otpm)
        self.provider = provider
        self._endpoint = MESSAGES if provider == "anthropic" else CHAT
        auto_conc = concurrency == "auto"
        self.model = model
        self.base_url = base_url
        self._native = _sluice.NativeClient(
            base_url, api_key or None,
            rpm=rpm_n, tpm=tpm_n, rpm_auto=rpm_auto, tpm_auto=tpm_auto,
            concurrency=512 if auto_conc else int(concurrency), concurrency_auto=auto_conc,
            timeout=timeout, connect_timeout=connect_timeout, max_attempts=max_attempts,
            backoff_base=backoff_base, backoff_max=backoff_max, max_retry_after=max_retry_after,
            seed=seed, headers=list((headers or {}).items()), max_cost=max_cost, burst=burst,
            limiter=limiter, provider=provider, itpm=itpm_n, otpm=otpm_n,
            itpm_auto=itpm_auto, otpm_auto=otpm_auto,
        )

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Lets go of the connection pool (the client is unusable after)."""
        self._native = None  # type: ignore[assignment]

    # One call ------------------------------------------------------------------------

    async def send(
        self,
        body: Dict[str, Any],
        *,
        endpoint: Optional[str] = None,
        custom_id: Optional[str] = None,
        priority: int = Priority.NORMAL,
    ) -> Dict[str, Any]:
        """Sends one request body (a dict, as the API takes it) and returns the parsed
        answer. Waits for admission, retries what is worth retrying; raises a typed
        ``SluiceError`` (``RateLimitError``, ``BadRequestError``...) when it fails for good."""
        try:
            status, text, request_id, *_ = await self._native.send(
                json.dumps(body).encode(), endpoint or self._endpoint,
                custom_id or f"call-{next(_ids)}", int(priority))
        except _sluice.RequestFailed as e:
            raise _raise_failed(e) from None
        return json.loads(text)

    async def chat(
        self,
        model: str,
        prompt: Optional[str] = None,
        *,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        priority: int = Priority.NORMAL,
        **params: Any,
    ) -> str:
        """Asks ``model`` one chat ``prompt`` and returns the answer's text.

        ``client.chat("gpt-4o-mini", "Explain async programming.")``; with a default
        ``Client(model=...)``, ``client.chat("Explain...")`` works too."""
        if prompt is None:
            if self.model is None:
                raise TypeError("chat() needs a model and a prompt (or Client(model=...))")
            model, prompt = self.model, model
        body = self._chat_body(model, prompt, system, max_tokens, temperature, params)
        answer = await self.send(body, priority=priority)
        return answer_text(answer) or ""

    # Batches -------------------------------------------------------------------------

    async def gather(
        self,
        items: Items,
        *,
        model: Optional[str] = None,
        on_progress: Optional[Callable[[int, int], Any]] = None,
        endpoint: Optional[str] = None,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        window: Optional[int] = None,
        **params: Any,
    ) -> List[Result]:
        """Sends every item in parallel within the client's limits and returns one
        ``Result`` per item, in input order, each a response or an error beside its input;
        it never raises for one bad item. Items are prompt strings (with ``model=``) or
        request bodies (dicts). ``on_progress(done, total)`` is called after each result."""
        items = [x async for x in _aiter(items)]
        out: List[Optional[Result]] = [None] * len(items)
        done = 0
        async for r in self.run(items, model=model, endpoint=endpoint, system=system,
                                max_tokens=max_tokens, window=window, **params):
            out[r.index] = r
            done += 1
            if on_progress is not None:
                on_progress(done, len(items))
        return [r if r is not None else self._unfinished(i, items[i]) for i, r in enumerate(out)]

    async def run(
        self,
        requests: Items,
        *,
        model: Optional[str] = None,
        endpoint: Optional[str] = None,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        window: Optional[int] = None,
        **params: Any,
    ) -> AsyncIterator[Result]:
        """Yields a ``Result`` per request as each finishes (completion order), pulling from
        ``requests`` (any iterable or async iterable) only as fast as they can be sent, so
        memory stays bounded however long it is. Breaking out of the loop, or cancelling
        the task, stops the batch: nothing new is sent, what is in flight finishes."""
        native = self._native.batch(window or 512)
        pending: Dict[int, Any] = {}
        make = self._request_maker(model, endpoint or self._endpoint, system, max_tokens, params)
        pump = asyncio.ensure_future(self._pump(native, requests, make, pending))
        try:
            while True:
                chunk = await native.next_many(_CHUNK)
                if not chunk:
                    break
                for r in chunk:
                    yield self._result(r, pending.pop(r.tag, None))
            await pump
        finally:
            if not pump.done():
                pump.cancel()
            native.stop()

    @property
    def stats(self) -> Stats:
        """Everything sent through this client so far: requests, successes, failures,
        tokens, cost, latency percentiles, success rate."""
        return Stats(**json.loads(self._native.stats_json()))

    # Helpers -------------------------------------------------------------------------

    def _chat_body(self, model: Optional[str], prompt: str, system: Optional[str],
                   max_tokens: Optional[int], temperature: Optional[float],
                   params: Dict[str, Any]) -> Dict[str, Any]:
        model = model or self.model
        if model is None:
            raise TypeError("a prompt needs a model: pass model= (or Client(model=...))")
        if self.provider == "anthropic":
            # The Messages API: the system prompt beside the messages, max_tokens required.
            body = {"model": model, "messages": [{"role": "user", "content": prompt}], **params}
            if system:
                body["system"] = system
            body["max_tokens"] = max_tokens if max_tokens is not None else _ANTHROPIC_MAX_TOKENS
            if temperature is not None:
                body["temperature"] = temperature
            return body
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        body = {"model": model, "messages": messages, **params}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        return body

    def _request_maker(self, model, endpoint, system, max_tokens, params):
        def make(index: int, item: Item):
            priority = 0
            custom_id = f"item-{index}"
            path = endpoint
            if isinstance(item, str):
                body = self._chat_body(model, item, system, max_tokens, None, params)
            elif isinstance(item, dict) and "body" in item and isinstance(item["body"], dict):
                # A Batch API line: {"custom_id", "url", "body"}.
                body = item["body"]
                custom_id = str(item.get("custom_id", custom_id))
                path = item.get("url", endpoint)
                priority = int(item.get("priority", 0))
            elif isinstance(item, dict) and "params" in item and isinstance(item["params"], dict):
                # An Anthropic Message Batches line: {"custom_id", "params"}.
                body = item["params"]
                custom_id = str(item.get("custom_id", custom_id))
                path = MESSAGES
                priority = int(item.get("priority", 0))
            elif isinstance(item, dict):
                body = item
            else:
                raise TypeError(f"item {index}: expected a prompt string or a request dict, got {type(item).__name__}")
            return (json.dumps(body).encode(), path, custom_id, index, priority)
        return make

    async def _pump(self, native, requests: Items, make, pending: Dict[int, Any]) -> None:
        """Feeds the batch in chunks; the batch's bounded queue holds the pace."""
        try:
            chunk = []
            index = 0
            async for item in _aiter(requests):
                pending[index] = item
                chunk.append(make(index, item))
                index += 1
                if len(chunk) >= _CHUNK:
                    await native.push_many(chunk)
                    chunk = []
            if chunk:
                await native.push_many(chunk)
        finally:
            native.close()

    def _result(self, r: Any, item: Any) -> Result:
        error = None
        if r.error_code is not None:
            error = error_for(r.error_code, r.status, r.error_message or "", r.request_id,
                              r.body, r.gave_up, r.attempts)
        return Result(index=r.tag, input=item, custom_id=r.custom_id, error=error,
                      attempts=r.attempts, latency=r.latency, status=r.status,
                      request_id=r.request_id, prompt_tokens=r.prompt_tokens,
                      completion_tokens=r.completion_tokens, cost=r.cost,
                      _body=r.body if error is None else None)

    @staticmethod
    def _unfinished(index: int, item: Any) -> Result:
        from ._errors import CancelledError
        return Result(index=index, input=item, custom_id=f"item-{index}",
                      error=CancelledError("the batch stopped before this item finished", code="cancelled"),
                      attempts=0, latency=0.0, status=None, request_id=None,
                      prompt_tokens=0, completion_tokens=0, cost=None)
