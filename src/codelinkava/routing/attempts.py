"""One try of one deployment: its chunk stream, its lease, and what it streamed.

`Attempt` reads its stream in the caller's task: what a plain (unhedged)
request does, one generator step per batch and nothing more.

`PumpedAttempt` reads it in a task of its own and hands the batches over a
one-place queue, so that two attempts can race for their first chunk and the
loser can be cancelled at once. A generator must stay in the task that
started it (context variables, timeouts), hence a pump rather than handing a
half-read generator from the race to the response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from ..chunk import ChatChunk, commits_answer, usage_counts
from .limits import Lease
from .state import DeploymentState

__all__ = ["Attempt", "PumpedAttempt"]

Batches = AsyncGenerator[list[ChatChunk], None]


class Attempt:
    """A deployment asked for an answer; read in the caller's task."""

    def __init__(
        self,
        state: DeploymentState,
        lease: Lease,
        batches: Batches,
        *,
        probe: bool,
        started: float,
    ) -> None:
        self.state = state
        self.lease = lease
        self.batches = batches
        #: Whether this attempt is the probe that may bring its deployment back.
        self.probe = probe
        #: Loop time when it was sent.
        self.started = started
        #: The chunks up to the first that says something, once they came.
        self.first: list[ChatChunk] = []
        #: Content pieces seen, and the usage the stream reported.
        self.pieces = 0
        self.usage: dict[str, Any] | None = None
        self._closed = False

    def count(self, batch: list[ChatChunk]) -> None:
        for chunk in batch:
            if chunk.content:
                self.pieces += 1
            if chunk.usage is not None:
                self.usage = chunk.usage

    def tokens(self, prompt_estimate: int) -> int:
        """The tokens it used: the upstream's count when it gave one, else ours."""
        prompt, completion = usage_counts(self.usage)
        if completion is None:
            return prompt_estimate + self.pieces
        return completion + (prompt_estimate if prompt is None else prompt)

    async def read_first(self) -> list[ChatChunk]:
        """Wait for the first chunks that say something (see `commits_answer`), with any
        role-only chunks before them; whatever came if the stream ended first."""
        held: list[ChatChunk] = []
        async for batch in self.batches:  # leaving the loop does not close the stream
            self.count(batch)
            held.extend(batch)
            if commits_answer(batch):
                break
        self.first = held
        return held

    def rest(self) -> Batches:
        """The batches after the first."""
        return self.batches

    def mark_closed(self) -> bool:
        """Claim the closing of this attempt: True the first time only."""
        if self._closed:
            return False
        self._closed = True
        return True

    async def close(self) -> None:
        """Stop reading, which closes the upstream response."""
        await self.batches.aclose()


class _End:
    """The stream ended."""


class _Failure:
    """The stream failed after its first batch."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


_END = _End()


class PumpedAttempt(Attempt):
    """An attempt read by a task of its own (`start()` it), so it can race another and lose."""

    #: Done when the first chunks came (its result) or the attempt failed before them.
    first_ready: asyncio.Future[list[ChatChunk]]
    _queue: asyncio.Queue[list[ChatChunk] | _End | _Failure]
    _task: asyncio.Task[None]

    def start(self) -> PumpedAttempt:
        """Start the pump on the running loop."""
        loop = asyncio.get_running_loop()
        self.first_ready = loop.create_future()
        self._queue = asyncio.Queue(1)
        self._task = loop.create_task(self._pump(), name=f"codelinkava-attempt-{self.state.name}")
        return self

    async def _pump(self) -> None:
        first = self.first_ready
        queue = self._queue
        held: list[ChatChunk] = []
        try:
            async with aclosing(self.batches) as batches:
                async for batch in batches:
                    self.count(batch)
                    if first.done():
                        await queue.put(batch)
                        continue
                    held.extend(batch)
                    if commits_answer(batch):
                        self.first = held
                        first.set_result(held)
        except Exception as exc:
            if first.done():
                await queue.put(_Failure(exc))
            else:
                first.set_exception(exc)
            return
        if first.done():
            await queue.put(_END)
        else:
            self.first = held
            first.set_result(held)

    async def read_first(self) -> list[ChatChunk]:
        return await asyncio.shield(self.first_ready)

    async def rest(self) -> Batches:
        queue = self._queue
        while True:
            item = await queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    async def close(self) -> None:
        """Cancel the pump (its generator closes the upstream response) and wait for it."""
        task = self._task
        if not task.done():
            task.cancel()
            # asyncio.wait, not `await task`: the pump's CancelledError is not ours to raise.
            await asyncio.wait([task])
        first = self.first_ready
        if not first.done():
            first.cancel()
        elif not first.cancelled():
            first.exception()  # retrieved: asyncio must not report it as lost
