"""The Python API against the simulator: limits kept, results matched to inputs, errors
typed, cancellation drains, memory bounded, statistics right."""

import asyncio
import json
import os
import socket
import subprocess
import sys

import pytest

import sluice


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_chat_and_send_return_the_answer():
    with sluice.Sim() as sim:
        async with sluice.Client(base_url=sim.base_url, api_key="sk-test") as client:
            text = await client.chat("gpt-4o-mini", "Explain async programming.", max_tokens=12)
            assert text.startswith("sim-reply")
            answer = await client.send({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
            assert answer["choices"][0]["message"]["content"]
            assert client.stats.successes == 2
        assert sim.stats()["received"] == 2


async def test_gather_keeps_input_order_and_each_error_beside_its_input():
    prompts = [f"question {i}" for i in range(120)]
    with sluice.Sim(faults={"bad-request": 0.1, "503": 0.05}, latency=0.01, seed=5) as sim:
        async with sluice.Client(base_url=sim.base_url, api_key="k", concurrency=16,
                                 backoff_base=0.01, backoff_max=0.05) as client:
            seen = []
            results = await client.gather(prompts, model="gpt-4o-mini",
                                          on_progress=lambda done, total: seen.append((done, total)))
        stats = sim.stats()
    assert [r.index for r in results] == list(range(120))
    assert [r.input for r in results] == prompts
    failed = [r for r in results if not r.ok]
    assert len(failed) == stats["faults"].get("bad-request", 0) > 0
    for r in failed:
        assert isinstance(r.error, sluice.BadRequestError)
        assert r.error.status == 400 and r.response is None
    for r in results:
        if r.ok:
            # The simulator's reply names the request it answers.
            assert f"id={r.custom_id}" in r.text
    assert seen[-1] == (120, 120) and len(seen) == 120


async def test_limits_are_kept_with_no_429():
    # A stated limit is kept from the first request, with the default burst.
    with sluice.Sim(rpm=1200, tpm=60_000) as sim:
        async with sluice.Client(base_url=sim.base_url, api_key="k", rpm=1200, tpm=60_000) as client:
            results = await client.gather([f"fact {i}" for i in range(40)], model="gpt-4o-mini", max_tokens=20)
        stats = sim.stats()
    assert all(r.ok for r in results)
    assert sim.total_429() == 0
    assert stats["peak"]["requests_60s"] <= 1200


async def test_errors_are_typed_with_status_code_and_reason():
    # A rate limit whose retry-after (1 s) is longer than the client accepts.
    with sluice.Sim(faults={"429": 1.0}) as sim:
        async with sluice.Client(base_url=sim.base_url, api_key="k", max_retry_after=0.5) as client:
            with pytest.raises(sluice.RateLimitError) as caught:
                await client.chat("gpt-4o-mini", "second")
    assert caught.value.status == 429
    assert caught.value.gave_up == "retry_after_too_long"
    # Nothing listening.
    async with sluice.Client(base_url=f"http://127.0.0.1:{closed_port()}/v1", api_key="k",
                             max_attempts=1) as client:
        with pytest.raises(sluice.APIConnectionError):
            await client.chat("gpt-4o-mini", "hello")
    # A hang cut off by the timeout.
    with sluice.Sim(faults={"hang": 1.0}) as sim:
        async with sluice.Client(base_url=sim.base_url, api_key="k", timeout=0.2, max_attempts=1) as client:
            with pytest.raises(sluice.APITimeoutError):
                await client.chat("gpt-4o-mini", "hello")
    # Every engine kind maps to the class an openai SDK user expects.
    assert isinstance(sluice._errors.error_for("authentication_error", 401, "no"), sluice.AuthenticationError)
    assert isinstance(sluice._errors.error_for("authentication_error", 403, "no"), sluice.PermissionDeniedError)
    assert isinstance(sluice._errors.error_for("server_error", 503, "busy"), sluice.InternalServerError)


async def test_cancelling_the_task_stops_sending_and_drains():
    with sluice.Sim(latency=0.05) as sim:
        async with sluice.Client(base_url=sim.base_url, api_key="k", concurrency=8) as client:
            got = []

            async def consume():
                async for r in client.run((f"item {i}" for i in range(10_000)), model="gpt-4o-mini"):
                    got.append(r)

            task = asyncio.ensure_future(consume())
            while len(got) < 20:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.3)  # what was in flight finishes
            sent = sim.stats()["received"]
            await asyncio.sleep(0.3)
            assert sim.stats()["received"] == sent, "nothing new is sent after cancelling"
            assert sent < 200, sent


async def test_memory_is_bounded_over_a_100k_item_async_generator():
    produced = 0
    consumed = 0
    most_ahead = 0

    async def items():
        nonlocal produced, most_ahead
        for i in range(100_000):
            produced += 1
            most_ahead = max(most_ahead, produced - consumed)
            yield {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"x{i}"}], "max_tokens": 2}

    with sluice.Sim() as sim:
        async with sluice.Client(base_url=sim.base_url, api_key="k", concurrency=64) as client:
            async for r in client.run(items(), window=512):
                assert r.ok
                consumed += 1
    assert consumed == 100_000
    # Pulled only as fast as sent: the queue's window, a chunk being handed over, the
    # engine's read-ahead and results not yet read, never the whole input.
    assert most_ahead < 4_000, most_ahead


async def test_stats_add_up():
    with sluice.Sim(faults={"bad-request": 0.2}, seed=3) as sim:
        async with sluice.Client(base_url=sim.base_url, api_key="k") as client:
            results = await client.gather([f"p{i}" for i in range(50)], model="gpt-4o-mini")
            s = client.stats
    ok = sum(r.ok for r in results)
    assert s.requests == 50 and s.successes == ok and s.failures == 50 - ok
    assert abs(s.success_rate - ok / 50) < 1e-9
    assert s.total_tokens == s.prompt_tokens + s.completion_tokens > 0
    assert s.avg_latency > 0 and s.latency_p99 >= s.latency_p50


def test_run_file_is_the_durable_cli_run(tmp_path):
    inp = tmp_path / "requests.jsonl"
    with inp.open("w") as f:
        for i in range(30):
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}]}
            f.write(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n")
    out = tmp_path / "results.jsonl"
    with sluice.Sim() as sim:
        os.environ["OPENAI_API_KEY"] = "sk-test"
        try:
            code = sluice.run_file(inp, out, base_url=sim.base_url, rpm=6000)
        finally:
            del os.environ["OPENAI_API_KEY"]
    assert code == 0
    ids = sorted(json.loads(line)["custom_id"] for line in out.read_text().splitlines())
    assert ids == sorted(f"r{i}" for i in range(30))


def test_the_package_installs_the_sluice_command():
    out = subprocess.run([sys.executable, "-m", "sluice", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "sluice" in out.stdout


async def test_the_anthropic_provider_sends_messages_requests_and_reads_their_text():
    with sluice.Sim() as sim:
        async with sluice.Client(provider="anthropic", base_url=sim.base_url, api_key="sk-ant",
                                 itpm=100_000, otpm=20_000) as client:
            text = await client.chat("claude-haiku-4-5", "Explain async programming.",
                                     system="Be brief.", max_tokens=20)
            assert text.startswith("sim-reply")
            lines = [{"custom_id": f"q{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 16,
                      "messages": [{"role": "user", "content": f"Question {i}"}]}} for i in range(30)]
            results = await client.gather(lines)
            assert [r.custom_id for r in results] == [f"q{i}" for i in range(30)]
            assert all(r.ok and r.response["type"] == "message" for r in results)
            assert all(r.text and r.text.startswith("sim-reply") for r in results)
        stats = sim.stats()
        assert stats["by_status"].get("200") == 31
        assert stats["received"] == 31


def test_azure_needs_its_deployment_url_and_an_unknown_provider_is_refused():
    with pytest.raises(ValueError):
        sluice.Client(provider="azure", api_key="k")
    with pytest.raises(ValueError):
        sluice.Client(provider="gemini", api_key="k")
