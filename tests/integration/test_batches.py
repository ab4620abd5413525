"""`create_async_batches`: the pieces of one network read travel together, as the gateway sends."""

from __future__ import annotations

import asyncio

import pytest

from codelinkava import CodeLinkAva, OpenAICompatible, errors
from support.scripted import MESSAGES, Reply, ScriptedServer, chunk, event


async def collect(server: ScriptedServer, provider: type = CodeLinkAva) -> list[list[str]]:
    url = {"api_url": server.url()} if provider is CodeLinkAva else {"base_url": server.url("/v1")}
    async with asyncio.timeout(5):
        return [b async for b in provider.create_async_batches("m", MESSAGES, **url)]


async def test_one_write_is_one_batch(server: ScriptedServer) -> None:
    burst = b"".join(event(chunk(t)) for t in ("a", "b", "c")) + event("[DONE]")
    server.reply(Reply(body=[burst]))
    assert await collect(server) == [["a", "b", "c"]]


async def test_paced_writes_are_separate_batches(server: ScriptedServer) -> None:
    body = [event(chunk(t)) for t in ("a", "b", "c")] + [event("[DONE]")]
    server.reply(Reply(body=body, delay=0.05))
    assert await collect(server, OpenAICompatible) == [["a"], ["b"], ["c"]]


async def test_text_before_an_error_in_the_same_read_still_arrives(server: ScriptedServer) -> None:
    burst = event(chunk("a")) + event(chunk("b")) + event({"error": {"message": "overloaded"}})
    server.reply(Reply(body=[burst]))
    got: list[list[str]] = []
    with pytest.raises(errors.UpstreamError, match="overloaded"):
        async with asyncio.timeout(5):
            async for batch in CodeLinkAva.create_async_batches(
                "m", MESSAGES, api_url=server.url()
            ):
                got.append(batch)
    assert got == [["a", "b"]]


async def test_the_joined_text_is_the_same_as_piece_by_piece(server: ScriptedServer) -> None:
    burst = b"".join(event(chunk(t)) for t in ("x", "y")) + event("[DONE]")
    server.reply(Reply(body=[burst]), Reply(body=[burst]))
    batches = await collect(server)
    async with asyncio.timeout(5):
        pieces = [
            p async for p in CodeLinkAva.create_async_generator("m", MESSAGES, api_url=server.url())
        ]
    assert [p for b in batches for p in b] == pieces == ["x", "y"]


async def test_a_large_read_is_handed_over_in_bounded_batches(server: ScriptedServer) -> None:
    # 100 pieces in one write: the first text must not wait for the hundredth to be parsed.
    burst = b"".join(event(chunk(str(i))) for i in range(100)) + event("[DONE]")
    server.reply(Reply(body=[burst]))
    batches = await collect(server)
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    assert [p for b in batches for p in b] == [str(i) for i in range(100)]
