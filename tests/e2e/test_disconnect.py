"""A consumer that goes away stops the generation behind it within one token.

The engine records each job (`Engine.last_job`): how many tokens it generated,
and how many after its stop flag was set. These tests leave mid-answer in
every way a consumer can -- break, cancel, close the HTTP connection -- and
read that record.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import openai
import pytest

from codelinkava import LocalModel
from codelinkava.providers._llama_engine import Job
from support.live_gateway import LiveGateway, wait_until

from .conftest import MODEL, Gateway

pytestmark = pytest.mark.e2e

LONG = [{"role": "user", "content": "Write a very long story about a dragon and a knight."}]
MAX_TOKENS = 1000  # far more than the few tokens read before leaving


async def stopped_job(previous: Job | None, within: float = 5.0) -> tuple[Job, float]:
    """The job started after `previous`, once it has ended; and how long the wait was."""
    engine = LocalModel.engine()
    started = time.perf_counter()
    await wait_until(lambda: engine.last_job not in (None, previous), within)
    job: Job = engine.last_job
    async with asyncio.timeout(within):
        await asyncio.to_thread(job.done.wait, within)
    assert job.done.is_set()
    return job, time.perf_counter() - started


def assert_stopped_early(job: Job, read: int) -> None:
    assert job.stop.is_set()
    assert job.finish_reason is None  # it did not end on its own
    assert job.tokens_after_stop <= 1
    # What was generated is what was read, plus what was in flight: a handful, not hundreds.
    assert read <= job.tokens <= read + 8, (read, job.tokens)


async def test_break_out_of_async_for_stops_the_job() -> None:
    engine = LocalModel.engine()
    await engine.wait_loaded()
    previous = engine.last_job
    read = 0
    async with asyncio.timeout(30):
        async for _piece in LocalModel.create_async_generator("", LONG, max_tokens=MAX_TOKENS):
            read += 1
            if read == 3:
                break
    job, waited = await stopped_job(previous)
    assert_stopped_early(job, read)
    assert waited < 0.5


async def test_cancelling_the_task_stops_the_job() -> None:
    engine = LocalModel.engine()
    await engine.wait_loaded()
    previous = engine.last_job
    got_three = asyncio.Event()
    read = 0

    async def consume() -> None:
        nonlocal read
        async for _piece in LocalModel.create_async_generator("", LONG, max_tokens=MAX_TOKENS):
            read += 1
            if read == 3:
                got_three.set()
                await asyncio.sleep(3600)

    async with asyncio.timeout(30):
        task = asyncio.create_task(consume())
        await got_three.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    job, waited = await stopped_job(previous)
    assert_stopped_early(job, read)
    assert waited < 0.5


async def test_closing_the_generator_stops_the_job() -> None:
    previous = LocalModel.engine().last_job
    agen: Any = LocalModel.create_async_generator("", LONG, max_tokens=MAX_TOKENS)
    async with asyncio.timeout(30):
        for _ in range(3):
            await anext(agen)
        await agen.aclose()
    job, waited = await stopped_job(previous)
    assert_stopped_early(job, 3)
    assert waited < 0.5


async def read_events_then_close(url: str, body: dict[str, Any], events: int) -> float:
    """POST, read `events` SSE data events, drop the connection; return when it was dropped."""
    async with aiohttp.ClientSession() as session:
        response = await session.post(url, json=body)
        assert response.status == 200
        seen = 0
        async for line in response.content:
            if line.startswith(b"data: {"):
                seen += 1
                if seen == events:
                    break
        response.close()  # closes the socket, mid-stream
        return time.perf_counter()


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
async def test_client_disconnect_stops_the_generation(
    local_gateway: LiveGateway, path: str
) -> None:
    previous = LocalModel.engine().last_job
    body = {"model": MODEL, "messages": LONG, "stream": True, "max_tokens": MAX_TOKENS}
    async with asyncio.timeout(30):
        closed_at = await read_events_then_close(local_gateway.url + path, body, 3)
        job, _ = await stopped_job(previous)
    stopped_after = time.perf_counter() - closed_at
    assert_stopped_early(job, 3)
    assert stopped_after < 0.5
    await wait_until(lambda: local_gateway.app.state.gateway.gate.in_flight == 0)


async def test_non_streaming_client_that_leaves_stops_the_generation(
    local_gateway: LiveGateway,
) -> None:
    previous = LocalModel.engine().last_job
    body = {"model": MODEL, "messages": LONG, "stream": False, "max_tokens": MAX_TOKENS}
    async with asyncio.timeout(30), aiohttp.ClientSession() as session:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await session.post(local_gateway.url + "/v1/chat/completions", json=body)
        job, _ = await stopped_job(previous)
    assert job.stop.is_set()
    assert job.finish_reason is None
    assert job.tokens_after_stop <= 1
    assert job.tokens < MAX_TOKENS // 4


async def test_openai_sdk_closing_the_stream_stops_the_generation(
    local_gateway: LiveGateway,
) -> None:
    previous = LocalModel.engine().last_job
    async with (
        asyncio.timeout(30),
        openai.AsyncOpenAI(
            base_url=f"{local_gateway.url}/v1", api_key="x", max_retries=0
        ) as client,
    ):
        stream = await client.chat.completions.create(
            model=MODEL, messages=LONG, stream=True, max_tokens=MAX_TOKENS
        )
        read = 0
        async for _chunk in stream:
            read += 1
            if read == 3:
                break
        await stream.close()
        job, waited = await stopped_job(previous)
    assert_stopped_early(job, read)
    assert waited < 0.5


async def test_subprocess_gateway_frees_its_slot_when_the_client_leaves(gateway: Gateway) -> None:
    body = {"model": MODEL, "messages": LONG, "stream": True, "max_tokens": MAX_TOKENS}
    async with asyncio.timeout(30):
        await read_events_then_close(f"{gateway.url}/v1/chat/completions", body, 3)
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(f"{gateway.url}/health") as response:
                    health = json.loads(await response.read())
                if health["in_flight"] == 0:
                    break
                await asyncio.sleep(0.01)
        # The model is free again at once: the next answer starts without waiting out the
        # thousand-token story.
        started = time.perf_counter()
        async with aiohttp.ClientSession() as session:
            short = {"model": MODEL, "messages": LONG, "stream": False, "max_tokens": 4}
            async with session.post(f"{gateway.url}/v1/chat/completions", json=short) as response:
                assert response.status == 200
        assert time.perf_counter() - started < 2.0


async def test_queued_request_whose_client_leaves_is_never_generated(
    local_gateway: LiveGateway,
) -> None:
    engine = LocalModel.engine()
    previous = engine.last_job
    url = local_gateway.url + "/v1/chat/completions"
    body = {"model": MODEL, "messages": LONG, "stream": True, "max_tokens": MAX_TOKENS}
    async with (
        asyncio.timeout(30),
        aiohttp.ClientSession() as first,
        aiohttp.ClientSession() as second,
    ):
        running = await first.post(url, json=body)
        await running.content.readuntil(b"\n\n")
        job_a = engine.last_job
        assert job_a is not previous and job_a is not None
        queued = asyncio.create_task(second.post(url, json=body))  # waits behind the first
        await wait_until(lambda: local_gateway.app.state.gateway.gate.in_flight == 2)
        queued.cancel()  # its client leaves while it is still queued
        with pytest.raises(asyncio.CancelledError):
            await queued
        await asyncio.sleep(0.1)
        running.close()
        job_b, _ = await stopped_job(job_a)
    assert job_a.stop.is_set() and job_a.tokens_after_stop <= 1
    assert job_b.stop.is_set()
    assert job_b.tokens == 0  # skipped: never reached llama.cpp
    await wait_until(lambda: local_gateway.app.state.gateway.gate.in_flight == 0)


async def test_concurrent_requests_are_all_answered_in_turn(local_gateway: LiveGateway) -> None:
    url = local_gateway.url + "/v1/chat/completions"

    async def ask(session: aiohttp.ClientSession, question: str) -> str:
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": question}],
            "max_tokens": 8,
        }
        async with session.post(url, json=body) as response:
            assert response.status == 200
            answer = await response.json()
        return str(answer["choices"][0]["message"]["content"])

    async with asyncio.timeout(30), aiohttp.ClientSession() as session:
        answers = await asyncio.gather(
            *(ask(session, q) for q in ("Hi!", "Name a colour.", "What is 2 + 2?", "Say yes."))
        )
    assert all(a.strip() for a in answers)
