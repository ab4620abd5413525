"""1,000 streams abandoned at random points leave no tasks, sockets or warnings behind."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import codelinkava.transports.aiohttp
from support.abandoning import FAST_STREAM, run_many, sockets
from support.scripted import ScriptedServer


async def settle(check: Any, within: float = 3.0) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while loop.time() < end:
        gc.collect()
        if check():
            return True
        await asyncio.sleep(0.02)
    return bool(check())


async def test_thousand_abandoned_streams_leak_nothing(server: ScriptedServer) -> None:
    server.handler = lambda _: FAST_STREAM
    await codelinkava.transports.aiohttp.aclose_session()
    before_tasks = asyncio.all_tasks()
    before_sockets = sockets()

    async with asyncio.timeout(40):
        await run_many(server, 1000, concurrency=50)
        assert await settle(lambda: asyncio.all_tasks() == before_tasks), (
            asyncio.all_tasks() - before_tasks
        )
        pooled = await codelinkava.transports.aiohttp.get_session()
        connector: Any = pooled.connector
        assert not connector._acquired, "connections still checked out of the pool"
        await codelinkava.transports.aiohttp.aclose_session()
        assert await settle(lambda: sockets() <= before_sockets), sockets() - before_sockets
        assert await settle(lambda: all(r.finished.is_set() for r in server.requests))
    # Some streams are cancelled before their request leaves; every other one reached the server.
    assert 600 < len(server.requests) <= 1000


SCRIPT = """
import asyncio, gc, sys
sys.path.insert(0, {tests!r})
from support.abandoning import FAST_STREAM, run_many
from support.scripted import ScriptedServer

async def main():
    server = ScriptedServer()
    server.handler = lambda _: FAST_STREAM
    server.start()
    try:
        await run_many(server, 300, concurrency=30)
        await asyncio.sleep(0.1)
        gc.collect()
        # the pooled session is deliberately left for asyncio.run to close
    finally:
        server.stop()

asyncio.run(main())
gc.collect()
print("ok")
"""


def test_abandoned_streams_warn_nothing_in_a_fresh_interpreter(tmp_path: Path) -> None:
    script = tmp_path / "leaks.py"
    script.write_text(textwrap.dedent(SCRIPT.format(tests=str(Path(__file__).parent.parent))))
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::ResourceWarning",
            "-W",
            "error::RuntimeWarning",
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.stdout.strip() == "ok", result.stderr
    assert result.stderr == ""
