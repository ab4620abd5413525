"""`create_completion` and `create_async` against a real server, from every kind of caller."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import pytest

from codelinkava import CodeLinkAva, OpenAICompatible, errors
from support.scripted import MESSAGES, Recorded, Reply, ScriptedServer, Stall, chunk, event, sse


def echo(rec: Recorded) -> Reply:
    said = rec.json()["messages"][-1]["content"]
    return Reply(body=[event(chunk(said)), event(chunk("!")), event("[DONE]")], delay=0.01)


def test_from_plain_sync_code(server: ScriptedServer) -> None:
    pieces = list(CodeLinkAva.create_completion("m", MESSAGES, api_url=server.url()))
    assert pieces == ["Hello", ", world"]


@pytest.mark.timeout(15)
async def test_from_inside_a_running_event_loop(server: ScriptedServer) -> None:
    asyncio.get_running_loop()  # we are on a running loop and call the sync API anyway
    pieces = list(CodeLinkAva.create_completion("m", MESSAGES, api_url=server.url()))
    assert pieces == ["Hello", ", world"]
    joined = list(CodeLinkAva.create_completion("m", MESSAGES, stream=False, api_url=server.url()))
    assert joined == ["Hello, world"]


@pytest.mark.timeout(20)
def test_from_eight_threads_at_once(server: ScriptedServer) -> None:
    server.handler = echo
    barrier = threading.Barrier(8)

    def ask(i: int) -> str:
        barrier.wait(5)
        msgs = [{"role": "user", "content": f"thread {i}"}]
        return "".join(CodeLinkAva.create_completion("m", msgs, api_url=server.url()))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8)))
    assert answers == [f"thread {i}!" for i in range(8)]


@pytest.mark.timeout(15)
def test_breaking_out_closes_the_response(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("first", done=False), Stall()]))
    for text in CodeLinkAva.create_completion("m", MESSAGES, api_url=server.url()):
        assert text == "first"
        break
    server.wait_disconnect_sync(within=1.0)


@pytest.mark.timeout(15)
def test_closing_the_generator_closes_the_response(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("first", done=False), Stall()]))
    gen = cast(
        "Generator[str, None, None]",
        CodeLinkAva.create_completion("m", MESSAGES, api_url=server.url()),
    )
    assert next(gen) == "first"
    gen.close()
    server.wait_disconnect_sync(within=1.0)


def test_stream_false_yields_one_joined_string(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("a", "b", "c")]))
    assert list(
        CodeLinkAva.create_completion("m", MESSAGES, stream=False, api_url=server.url())
    ) == ["abc"]
    # `stream` is the sync API's own: the body still asks for a stream
    assert server.requests[0].json()["stream"] is True


def test_errors_keep_their_class_through_the_bridge(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("a", done=False)]))
    got: list[str] = []
    with pytest.raises(errors.StreamTruncatedError):
        for text in CodeLinkAva.create_completion("m", MESSAGES, api_url=server.url()):
            got.append(text)
    assert got == ["a"]
    server.reply(Reply(status=401, body=[b'{"error": {"message": "bad key"}}']))
    with pytest.raises(errors.AuthenticationError, match="bad key"):
        list(OpenAICompatible.create_completion("m", MESSAGES, base_url=server.url("/v1")))


def test_idle_timeout_through_the_bridge(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("a", done=False), Stall()]))
    with pytest.raises(errors.ProviderTimeoutError):
        list(CodeLinkAva.create_completion("m", MESSAGES, api_url=server.url(), timeout=0.3))


def test_sync_calls_reuse_connections(server: ScriptedServer) -> None:
    for _ in range(3):
        assert (
            "".join(CodeLinkAva.create_completion("m", MESSAGES, api_url=server.url()))
            == "Hello, world"
        )
    assert len(server.peer_ports) == 1


async def test_create_async_returns_the_joined_text(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("Par", "is", ".")]))
    async with asyncio.timeout(5):
        assert await CodeLinkAva.create_async("m", MESSAGES, api_url=server.url()) == "Paris."
        assert (
            await OpenAICompatible.create_async("m", MESSAGES, base_url=server.url("/v1"))
            == "Paris."
        )
