"""The clients under test, each an async generator of text pieces.

Every client gets a `base` URL from the source server (`http://127.0.0.1:P/{n}/{delay}`)
and yields what its library hands a caller. Only aiohttp and the standard
library are imported at the top: the rest is imported on first use, so the
same module serves the project's virtualenv and `bench/.venv-peers`.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["CLIENTS", "Client", "State"]

MESSAGES = [{"role": "user", "content": "Tell me about streams."}]
MODEL = "gpt-3.5-turbo"
API_KEY = "sk-bench-not-a-real-key"


class State:
    """Per-process objects a client reuses across calls, as a real program would."""

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.openai: dict[str, Any] = {}  # one AsyncOpenAI per base URL

    def http(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self.session

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()
        for client in self.openai.values():
            await client.close()


Stream = Callable[[State, str], AsyncIterator[Any]]


@dataclass(frozen=True)
class Client:
    name: str
    label: str
    stream: Stream
    venv: str = "main"  # "main" (the project's .venv) or "peers" (bench/.venv-peers)
    yields_bytes: bool = False  # the raw reference: checked against the body bytes
    reference: bool = False  # not a real client: shown, left out of the ratios


# ---- the floors ---------------------------------------------------------------


async def raw(state: State, base: str) -> AsyncIterator[bytes]:
    """aiohttp, reading the body's bytes and nothing else."""
    async with state.http().post(base + "/api/chat", json={"messages": MESSAGES}) as resp:
        async for data in resp.content.iter_any():
            yield data


async def floor(state: State, base: str) -> AsyncIterator[str]:
    """The least a correct client does: split events, json.loads, take delta.content."""
    loads = json.loads
    async with state.http().post(base + "/api/chat", json={"messages": MESSAGES}) as resp:
        buf = b""
        async for data in resp.content.iter_any():
            *events, buf = (buf + data).split(b"\n\n")
            for event in events:
                payload = event[6:]
                if payload == b"[DONE]":
                    return
                content = loads(payload)["choices"][0]["delta"].get("content")
                if content:
                    yield content


# ---- the seed's algorithm -----------------------------------------------------

_SEED_HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36"
    ),
    "Accept": "*/*",
    "Accept-language": "en,fr-FR;q=0.9,fr;q=0.8,es-ES;q=0.7,es;q=0.6,en-US;q=0.5,am;q=0.4,de;q=0.3",
    "Origin": "https://ava-ai-ef611.web.app",
    "Referer": "https://ava-ai-ef611.web.app/",
    "Sec-Fetch-Dest": "empty",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Site": "same-origin",
}


async def seed(state: State, base: str) -> AsyncIterator[str]:
    """The seed's loop as written (a session per call, line iteration, line[6:-1])."""
    async with aiohttp.ClientSession(headers=_SEED_HEADERS) as session:
        data = {"messages": MESSAGES, "temperature": 0.6, "stream": True}
        async with session.post(base + "/api/chat", json=data) as response:
            response.raise_for_status()
            async for line in response.content:
                line = line.decode()
                if line.startswith("data: "):
                    if line.startswith("data: [DONE]"):
                        break
                    chunk = json.loads(line[6:-1])
                    content = chunk["choices"][0]["delta"].get("content")
                    if content:
                        yield content


# ---- codelinkava --------------------------------------------------------------


async def codelinkava(state: State, base: str) -> AsyncIterator[str]:
    from codelinkava import CodeLinkAva

    async for text in CodeLinkAva.create_async_generator(
        MODEL, MESSAGES, api_url=base + "/api/chat"
    ):
        yield text


async def codelinkava_openai(state: State, base: str) -> AsyncIterator[str]:
    from codelinkava import OpenAICompatible

    async for text in OpenAICompatible.create_async_generator(
        MODEL, MESSAGES, base_url=base + "/v1", api_key=API_KEY
    ):
        yield text


# ---- the peers ----------------------------------------------------------------


async def openai_sdk(state: State, base: str) -> AsyncIterator[str]:
    """The official SDK, one AsyncOpenAI per base URL, reused as programs do."""
    client = state.openai.get(base)
    if client is None:
        from openai import AsyncOpenAI

        client = state.openai[base] = AsyncOpenAI(
            api_key=API_KEY, base_url=base + "/v1", max_retries=0
        )
    stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    async for chunk in stream:
        if chunk.choices:
            content = chunk.choices[0].delta.content
            if content:
                yield content


async def litellm(state: State, base: str) -> AsyncIterator[str]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm as _litellm

    _litellm.telemetry = False
    response = await _litellm.acompletion(
        model="openai/" + MODEL, messages=MESSAGES, api_base=base + "/v1", api_key=API_KEY,
        stream=True,
    )
    async for chunk in response:
        if chunk.choices:
            content = chunk.choices[0].delta.content
            if content:
                yield content


async def g4f(state: State, base: str) -> AsyncIterator[str]:
    """gpt4free's OpenAI-compatible provider (`Custom`, an `OpenaiTemplate`)."""
    from g4f.Provider import Custom

    async for item in Custom.create_async_generator(
        MODEL, MESSAGES, base_url=base + "/v1", api_key=API_KEY, stream=True
    ):
        if isinstance(item, str):  # the rest are g4f's metadata objects
            yield item


CLIENTS: dict[str, Client] = {
    c.name: c
    for c in (
        Client("raw", "raw aiohttp bytes (reference)", raw, yields_bytes=True, reference=True),
        Client("floor", "the floor (split + json.loads)", floor),
        Client("seed", "the seed's algorithm", seed),
        Client("codelinkava", "codelinkava CodeLinkAva", codelinkava),
        Client("codelinkava_openai", "codelinkava OpenAICompatible", codelinkava_openai),
        Client("openai", "openai SDK (AsyncOpenAI)", openai_sdk),
        Client("litellm", "LiteLLM acompletion", litellm, venv="peers"),
        Client("g4f", "gpt4free Custom (OpenaiTemplate)", g4f, venv="peers"),
    )
}
