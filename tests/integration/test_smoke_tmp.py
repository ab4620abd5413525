from __future__ import annotations
import asyncio
import pytest
from codelinkava import CodeLinkAva, errors
from .scripted import MESSAGES, Reply, Reset, Close, Stall, sse

async def collect(**kw):
    out = []
    async for t in CodeLinkAva.create_async_generator("gpt-3.5-turbo", MESSAGES, **kw):
        out.append(t)
    return out

async def test_basic(server):
    async with asyncio.timeout(5):
        assert await collect(api_url=server.url()) == ["Hello", ", world"]
    print(server.requests[0])

async def test_raw(server):
    server.reply(Reply(raw=True, body=[sse("a", "b")]))
    async with asyncio.timeout(5):
        assert await collect(api_url=server.url()) == ["a", "b"]

async def test_raw_trunc(server):
    server.reply(Reply(raw=True, body=[sse("a", "b", done=False)]))
    async with asyncio.timeout(5):
        with pytest.raises(errors.StreamTruncatedError):
            await collect(api_url=server.url())

async def test_reset(server):
    server.reply(Reply(body=[sse("a", done=False), Reset()]))
    async with asyncio.timeout(5):
        with pytest.raises(errors.StreamTruncatedError) as ei:
            await collect(api_url=server.url())
    print(ei.value)

async def test_close(server):
    server.reply(Reply(body=[sse("a", done=False), Close()]))
    async with asyncio.timeout(5):
        with pytest.raises(errors.StreamTruncatedError) as ei:
            await collect(api_url=server.url())
    print(ei.value)
