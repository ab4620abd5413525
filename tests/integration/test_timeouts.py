"""Time limits against servers that stall: before the headers, after them, mid-stream, forever."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from codelinkava import CodeLinkAva, Timeouts, errors
from support.counting import CountingTransport
from support.scripted import MESSAGES, Reply, ScriptedServer, Sleep, Stall, chunk, event, sse


async def run(url: str, out: list[str], **kwargs: Any) -> errors.ProviderTimeoutError:
    """Stream into `out` until the ProviderTimeoutError that must come; a hang fails after 5 s."""
    with pytest.raises(errors.ProviderTimeoutError) as info:
        async with asyncio.timeout(5):
            async for text in CodeLinkAva.create_async_generator(
                "m", MESSAGES, api_url=url, **kwargs
            ):
                out.append(text)
    assert isinstance(info.value, TimeoutError)
    return info.value


@pytest.mark.parametrize("limit", [Timeouts(idle=0.3), 0.3], ids=["Timeouts(idle)", "number"])
async def test_stall_mid_stream_fails_by_the_idle_timeout(
    server: ScriptedServer, limit: Any
) -> None:
    server.reply(Reply(body=[sse("a", "b", done=False), Stall()]))
    out: list[str] = []
    start = time.monotonic()
    exc = await run(server.url(), out, timeout=limit)
    elapsed = time.monotonic() - start
    assert exc.phase == "idle"
    assert out == ["a", "b"]
    assert 0.3 <= elapsed < 1.0
    assert len(server.requests) == 1  # text was seen: never retried
    await server.wait_disconnect()


async def test_idle_timer_restarts_with_every_piece(server: ScriptedServer) -> None:
    # 8 pieces 0.1 s apart: 0.8 s in all, never 0.3 s of silence.
    body = [event(chunk(str(i))) for i in range(8)] + [event("[DONE]")]
    server.reply(Reply(body=body, delay=0.1))
    async with asyncio.timeout(5):
        got = [
            t
            async for t in CodeLinkAva.create_async_generator(
                "m", MESSAGES, api_url=server.url(), timeout=Timeouts(idle=0.3)
            )
        ]
    assert got == [str(i) for i in range(8)]


async def test_stall_before_headers_is_a_first_chunk_timeout(server: ScriptedServer) -> None:
    server.reply(Reply(before=[Stall()]))
    start = time.monotonic()
    exc = await run(server.url(), [], timeout=Timeouts(first_chunk=0.3))
    assert exc.phase == "first_chunk"
    assert 0.3 <= time.monotonic() - start < 1.0
    assert len(server.requests) == 1


async def test_stall_after_headers_is_a_first_chunk_timeout(server: ScriptedServer) -> None:
    server.reply(Reply(body=[Stall()]))
    exc = await run(server.url(), [], timeout=Timeouts(first_chunk=0.3))
    assert exc.phase == "first_chunk"


async def test_first_chunk_limit_runs_from_the_request_not_from_the_headers(
    server: ScriptedServer,
) -> None:
    # Headers after 0.3 s, first byte 0.6 s later: the 0.5 s limit ends at 0.5 s, not 0.8 s.
    server.reply(Reply(before=[Sleep(0.3)], body=[Sleep(0.6), sse("late")]))
    start = time.monotonic()
    exc = await run(server.url(), [], timeout=Timeouts(first_chunk=0.5))
    assert exc.phase == "first_chunk"
    assert 0.5 <= time.monotonic() - start < 0.7


async def test_total_timeout(server: ScriptedServer) -> None:
    body = [event(chunk("x")) for _ in range(100)]
    server.reply(Reply(body=body, delay=0.05))
    out: list[str] = []
    start = time.monotonic()
    exc = await run(server.url(), out, timeout=Timeouts(total=0.5))
    assert exc.phase == "total"
    assert 0.5 <= time.monotonic() - start < 1.0
    assert 3 <= len(out) < 100


async def test_total_timeout_before_headers(server: ScriptedServer) -> None:
    server.reply(Reply(before=[Stall()]))
    exc = await run(server.url(), [], timeout=Timeouts(total=0.3))
    assert exc.phase == "total"


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port whose accept queue is full: a connect to it hangs (SYN dropped)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_connect_timeout_is_a_connect_phase_and_is_retried(
    black_hole: int, fast_backoff: None
) -> None:
    counting = CountingTransport()
    start = time.monotonic()
    exc = await run(
        f"http://127.0.0.1:{black_hole}/api/chat",
        [],
        timeout=Timeouts(connect=0.2),
        max_retries=1,
        transport=counting,
    )
    assert exc.phase == "connect"
    assert counting.attempts == 2
    assert time.monotonic() - start < 1.5


async def test_total_timeout_cuts_a_server_that_never_pauses(server: ScriptedServer) -> None:
    # 4,000 pieces 1 ms apart (bounded): data keeps arriving, so only the total limit can end it.
    body = [event(chunk("x")) for _ in range(4000)] + [event("[DONE]")]
    server.reply(Reply(body=body, delay=0.001))
    out: list[str] = []
    start = time.monotonic()
    exc = await run(server.url(), out, timeout=Timeouts(idle=1, total=0.4))
    assert exc.phase == "total"
    assert 0 < len(out) < 4000
    assert 0.4 <= time.monotonic() - start < 2.0
