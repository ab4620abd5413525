"""Responses close at once however the consumer leaves, and connections are pooled per loop."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable
from typing import Any

import pytest

import codelinkava.transports.aiohttp
from codelinkava import CodeLinkAva, OpenAICompatible, errors
from support.scripted import MESSAGES, Reply, ScriptedServer, Stall, chunk, event, sse

STALLING = Reply(body=[sse("first", done=False), Stall()])


async def until(condition: Callable[[], bool]) -> None:
    """Poll: the server runs on another thread, so there is no asyncio.Event to wait on."""
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.005)


def stream(server: ScriptedServer, **kwargs: Any) -> Any:
    return CodeLinkAva.create_async_generator("m", MESSAGES, api_url=server.url(), **kwargs)


async def test_break_closes_the_response(server: ScriptedServer) -> None:
    server.reply(STALLING)
    async with asyncio.timeout(5):
        async for text in stream(server):
            assert text == "first"
            break
        await server.wait_disconnect(within=1.0)


async def test_aclose_closes_the_response(server: ScriptedServer) -> None:
    server.reply(STALLING)
    async with asyncio.timeout(5):
        gen = stream(server)
        assert await gen.__anext__() == "first"
        await gen.aclose()
        await server.wait_disconnect(within=1.0)


@pytest.mark.parametrize("where", ["mid-stream", "before-headers", "before-first-chunk"])
async def test_cancelling_the_task_closes_the_response(server: ScriptedServer, where: str) -> None:
    server.reply(
        {
            "mid-stream": STALLING,
            "before-headers": Reply(before=[Stall()]),
            "before-first-chunk": Reply(body=[Stall()]),
        }[where]
    )
    got: list[str] = []

    async def consume() -> None:
        async for text in stream(server):
            got.append(text)

    async with asyncio.timeout(5):
        task = asyncio.create_task(consume())
        await until(lambda: bool(server.requests) and (where != "mid-stream" or bool(got)))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await server.wait_disconnect(within=1.0)


async def test_cancelling_during_backoff_sends_nothing_more(server: ScriptedServer) -> None:
    server.reply(Reply(status=503, headers={"Retry-After": "5"}))

    async def consume() -> None:
        async for _ in stream(server):
            pass

    async with asyncio.timeout(5):
        task = asyncio.create_task(consume())
        await until(lambda: bool(server.requests))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(server.requests) == 1


async def test_exiting_with_an_exception_closes_the_response(server: ScriptedServer) -> None:
    server.reply(STALLING)
    with pytest.raises(KeyError):
        async with asyncio.timeout(5):
            async for _ in stream(server):
                raise KeyError("consumer failed")
    await server.wait_disconnect(within=1.0)


@pytest.mark.parametrize("provider", [CodeLinkAva, OpenAICompatible])
async def test_connection_reused_across_sequential_requests(
    server: ScriptedServer, provider: Any
) -> None:
    server.reply(Reply(body=[sse("a", "b", finish=True)]))
    key = "api_url" if provider is CodeLinkAva else "base_url"
    url = server.url() if provider is CodeLinkAva else server.url("/v1")
    async with asyncio.timeout(5):
        for _ in range(5):
            gen = provider.create_async_generator("m", MESSAGES, **{key: url})
            assert [t async for t in gen] == ["a", "b"]
    assert len(server.requests) == 5
    assert len(server.peer_ports) == 1


async def test_connection_reused_after_done_without_body_end(server: ScriptedServer) -> None:
    # [DONE] and then the server keeps the response open: the stream still ends promptly.
    server.reply(Reply(body=[sse("a"), Stall()]))
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(5):
        start = loop.time()
        assert [t async for t in stream(server)] == ["a"]
        assert loop.time() - start < 0.5
        await server.wait_disconnect(within=1.0)


async def test_broken_connection_is_not_reused(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("a", done=False)], raw=True), Reply(body=[sse("b")]))
    async with asyncio.timeout(5):
        with pytest.raises(errors.StreamTruncatedError):
            async for _ in stream(server):
                pass
        assert [t async for t in stream(server)] == ["b"]
    assert len(server.peer_ports) == 2


async def test_concurrent_streams_on_one_loop(server: ScriptedServer) -> None:
    server.handler = lambda rec: Reply(
        body=[event(chunk(rec.json()["messages"][0]["content"])), event("[DONE]")], delay=0.01
    )

    async def one(i: int) -> str:
        msgs = [{"role": "user", "content": f"n{i}"}]
        gen = CodeLinkAva.create_async_generator("m", msgs, api_url=server.url())
        return "".join([t async for t in gen])

    async with asyncio.timeout(10):
        got = await asyncio.gather(*(one(i) for i in range(50)))
    assert got == [f"n{i}" for i in range(50)]


def test_sessions_do_not_outlive_their_loops(server: ScriptedServer) -> None:
    async def once() -> str:
        return "".join([t async for t in stream(server)])

    gc.collect()
    # Loops alive before (the sync bridge's, if an earlier test used it) keep their session.
    before = len(codelinkava.transports.aiohttp._sessions)
    for _ in range(3):
        assert asyncio.run(once()) == "Hello, world"
    gc.collect()
    assert len(codelinkava.transports.aiohttp._sessions) == before


def test_each_thread_loop_gets_its_own_session(server: ScriptedServer) -> None:
    results: list[str] = []

    def worker() -> None:
        async def once() -> str:
            return "".join([t async for t in stream(server)])

        results.append(asyncio.run(once()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == ["Hello, world"] * 4


async def test_aclose_session_then_new_requests(server: ScriptedServer) -> None:
    async with asyncio.timeout(5):
        assert "".join([t async for t in stream(server)]) == "Hello, world"
        await codelinkava.transports.aiohttp.aclose_session()
        await codelinkava.transports.aiohttp.aclose_session()  # twice is fine
        assert "".join([t async for t in stream(server)]) == "Hello, world"
    assert len(server.peer_ports) == 2
