"""Real clients against `codelinkava serve` on the real local model: ours, the seed's, OpenAI's."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

import codelinkava.core.sync
from codelinkava import CodeLinkAva, LocalModel, OpenAICompatible
from support.live_gateway import LiveGateway

from .conftest import API_KEY, MODEL, Gateway

pytestmark = pytest.mark.e2e

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


async def seed_client(
    api_url: str, messages: list[dict[str, str]], **kwargs: Any
) -> AsyncIterator[str]:
    """The seed's `create_async_generator` body, verbatim but for the host (and `cls.url`)."""
    url = "https://ava-ai-ef611.web.app"
    headers = {
        "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36",  # noqa: E501
        "Accept": "*/*",
        "Accept-language": "en,fr-FR;q=0.9,fr;q=0.8,es-ES;q=0.7,es;q=0.6,en-US;q=0.5,am;q=0.4,de;q=0.3",  # noqa: E501
        "Origin": url,
        "Referer": f"{url}/",
        "Sec-Fetch-Dest": "empty",
        "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Site": "same-origin",
    }
    async with aiohttp.ClientSession(headers=headers) as session:
        data = {"messages": messages, "temperature": 0.6, "stream": True, **kwargs}
        async with session.post(api_url, json=data) as response:
            response.raise_for_status()
            async for line in response.content:
                line = line.decode()
                if line.startswith("data: "):
                    if line.startswith("data: [DONE]"):
                        break
                    line = json.loads(line[6:-1])

                    content = line["choices"][0]["delta"].get("content")
                    if content:
                        yield content


def assert_real_answer(pieces: list[str]) -> None:
    assert len(pieces) >= 3, pieces
    assert all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces).strip()


async def test_codelinkava_provider_streams_from_api_chat(gateway: Gateway) -> None:
    pieces: list[str] = []
    async with asyncio.timeout(30):
        async for piece in CodeLinkAva.create_async_generator(
            "", QUESTION, api_url=f"{gateway.url}/api/chat", max_tokens=16
        ):
            pieces.append(piece)
    assert_real_answer(pieces)


async def test_codelinkava_provider_keeps_history(gateway: Gateway) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And of Germany?"},
    ]
    async with asyncio.timeout(30):
        answer = await CodeLinkAva.create_async(
            "", messages, api_url=f"{gateway.url}/api/chat", max_tokens=16
        )
    assert answer.strip()


async def test_seed_client_code_works_unchanged_but_for_the_host(gateway: Gateway) -> None:
    pieces: list[str] = []
    async with asyncio.timeout(30):
        async for piece in seed_client(f"{gateway.url}/api/chat", QUESTION, max_tokens=16):
            pieces.append(piece)
    assert_real_answer(pieces)


def test_codelinkava_provider_sync_bridge(gateway: Gateway) -> None:
    try:
        pieces = list(
            CodeLinkAva.create_completion(
                "", QUESTION, api_url=f"{gateway.url}/api/chat", max_tokens=12, timeout=30
            )
        )
    finally:
        # The bridge keeps its loop and pooled session for the life of the process, by
        # design; stop it so tests that count live sessions start from none.
        codelinkava.core.sync._bridge.shutdown()
    assert_real_answer(pieces)


async def test_openai_compatible_provider(gateway: Gateway) -> None:
    pieces: list[str] = []
    async with asyncio.timeout(30):
        async for piece in OpenAICompatible.create_async_generator(
            MODEL, QUESTION, base_url=f"{gateway.url}/v1", max_tokens=16
        ):
            pieces.append(piece)
    assert_real_answer(pieces)


async def test_openai_compatible_provider_with_key(keyed_gateway: Gateway) -> None:
    async with asyncio.timeout(30):
        answer = await OpenAICompatible.create_async(
            MODEL, QUESTION, base_url=f"{keyed_gateway.url}/v1", api_key=API_KEY, max_tokens=8
        )
    assert answer.strip()


# The official SDK ------------------------------------------------------------------


def check_stream(chunks: list[Any], *, usage: bool) -> str:
    """Role in the first delta, text, finish_reason, then (if asked) a usage-only chunk."""
    assert chunks[0].choices[0].delta.role == "assistant"
    if usage:
        last = chunks[-1]
        assert last.choices == []
        assert last.usage is not None
        assert last.usage.completion_tokens >= 1
        # The local model counts its prompt (chat template included), not a length estimate.
        assert last.usage.prompt_tokens >= 10
        assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
        assert all(c.usage is None for c in chunks[:-1])
        chunks = chunks[:-1]
    else:
        assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.strip()
    assert len(chunks) >= 4
    return text


@pytest.mark.parametrize("usage", [False, True], ids=["plain", "include_usage"])
def test_openai_sdk_sync_stream(gateway: Gateway, usage: bool) -> None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as client:
        options: dict[str, Any] = {"stream_options": {"include_usage": True}} if usage else {}
        with client.chat.completions.create(
            model=MODEL, messages=QUESTION, stream=True, max_tokens=16, timeout=30, **options
        ) as stream:
            chunks = list(stream)
    check_stream(chunks, usage=usage)


def test_openai_sdk_sync_whole(gateway: Gateway) -> None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as client:
        completion = client.chat.completions.create(
            model=MODEL, messages=QUESTION, max_tokens=16, timeout=30
        )
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None and completion.usage.completion_tokens >= 1


@pytest.mark.parametrize("usage", [False, True], ids=["plain", "include_usage"])
async def test_openai_sdk_async_stream(gateway: Gateway, usage: bool) -> None:
    async with (
        asyncio.timeout(30),
        openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0) as client,
    ):
        options: dict[str, Any] = {"stream_options": {"include_usage": True}} if usage else {}
        stream = await client.chat.completions.create(
            model=MODEL, messages=QUESTION, stream=True, max_tokens=16, **options
        )
        async with stream:
            chunks = [chunk async for chunk in stream]
    check_stream(chunks, usage=usage)


async def test_openai_sdk_async_whole(gateway: Gateway) -> None:
    async with (
        asyncio.timeout(30),
        openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0) as client,
    ):
        completion = await client.chat.completions.create(
            model=MODEL, messages=QUESTION, max_tokens=16
        )
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in ("stop", "length")


def test_openai_sdk_models(gateway: Gateway) -> None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as client:
        models = [m.id for m in client.models.list()]
    assert models == [MODEL]


def test_openai_sdk_max_tokens_is_honoured(gateway: Gateway) -> None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as client:
        completion = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Write a long story about a dragon."}],
            max_tokens=5,
            timeout=30,
        )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens <= 5


async def test_health(gateway: Gateway) -> None:
    async with (
        asyncio.timeout(10),
        aiohttp.ClientSession() as session,
        session.get(f"{gateway.url}/health") as response,
    ):
        assert response.status == 200
        health = await response.json()
    assert health["status"] == "ok"
    assert health["provider"] == "local"
    assert health["model"] == MODEL


async def test_engine_gives_prompts_no_more_threads_than_generation() -> None:
    # llama-cpp-python's default (every core for prompts) made a 40-word prompt take
    # 1.5-2.4 s instead of 0.18 s on a shared 2-core machine: see bench/results/local_model.md.
    engine = LocalModel.engine()
    await engine.wait_loaded()
    assert engine._llm.context_params.n_threads_batch == engine._llm.context_params.n_threads


async def test_first_token_is_quick_on_the_in_process_gateway(local_gateway: LiveGateway) -> None:
    questions = [
        "Name three animals that live in the sea.",
        "What colour is the sky on a clear day, and why?",
        "Suggest a name for a small black cat.",
    ]
    waits = []
    async with asyncio.timeout(30), aiohttp.ClientSession() as session:
        for question in questions:  # each a new prompt: nothing cached from the one before
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": question}],
                "stream": True,
                "max_tokens": 4,
            }
            started = time.perf_counter()
            async with session.post(f"{local_gateway.url}/v1/chat/completions", json=body) as r:
                await r.content.readuntil(b"\n\n")
                waits.append(time.perf_counter() - started)
                await r.read()
    # ~0.07 s measured; generous for a busy machine, far below the 1.5-2.4 s of the bug.
    assert sorted(waits)[1] < 0.5, waits
