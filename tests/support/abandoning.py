"""Streams abandoned at random points: shared by the leak test and its fresh-interpreter twin."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from typing import Any

from codelinkava import CodeLinkAva

from .scripted import MESSAGES, Reply, ScriptedServer, chunk, event

PIECES = 30
FAST_STREAM = Reply(
    body=[event(chunk(f"{i} ")) for i in range(PIECES)] + [event("[DONE]")], delay=0.0005
)


def sockets() -> set[str]:
    """The sockets this process holds open, by inode."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(f"{fd}:{target}")
    return found


async def consume(gen: Any) -> None:
    async for _ in gen:
        pass


async def abandon(server: ScriptedServer, rng: random.Random, how: str) -> None:
    """One stream, left after a random number of pieces in the way `how` says."""
    stop_after = rng.randrange(PIECES + 2)
    gen = CodeLinkAva.create_async_generator("m", MESSAGES, api_url=server.url())
    if how == "cancel":
        task = asyncio.create_task(consume(gen))
        del gen
        await asyncio.sleep(rng.random() * 0.02)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return
    seen = 0
    async for _ in gen:
        seen += 1
        if seen >= stop_after:
            break
    if how == "aclose":
        await gen.aclose()
    # "break": the generator is simply dropped


async def run_many(server: ScriptedServer, count: int, concurrency: int) -> None:
    rng = random.Random(1234)
    hows = ["break", "aclose", "cancel"]
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with limit:
            await abandon(server, rng, hows[i % 3])

    await asyncio.gather(*(one(i) for i in range(count)))
