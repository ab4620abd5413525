"""Relaying an answer over HTTP, the way a proxy should, in whatever API the route speaks.

The bytes are an `AnswerEncoder`'s (`encoders.py`: the wire format of the route);
this module is what every route shares:

- The chunks are held back until one commits the answer (`commits_answer`), so an
  error before it is a real HTTP error in the API's shape; after it, the stream
  carries the encoder's in-stream error and ends.
- Each batch (the chunks of one upstream read) is one ASGI send; uvicorn writes
  it straight to the socket and `X-Accel-Buffering: no` asks proxies not to
  hold it either.
- The client's disconnect is watched for the whole life of the response and
  cancels the generation behind it at once.
- However it ends, the call's batches are closed and the outcome is recorded once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from codelinkava import errors
from codelinkava.chunk import AnswerBuilder, ChatChunk, commits_answer, usage_counts

from .backend import Call
from .encoders import AnswerEncoder
from .errors import status_for
from .outcome import Outcome

__all__ = ["CompletionResponse", "EventStreamResponse"]

log = logging.getLogger("codelinkava.server")

_ASGI = tuple[Scope, Receive, Send]


def _provider_error(exc: Exception) -> errors.ProviderError:
    """The error to tell the client: ours as it is, anything else as a logged internal error."""
    if isinstance(exc, errors.ProviderError):
        return exc
    log.error("the provider failed unexpectedly", exc_info=exc)
    return errors.ProviderError("internal error while generating the answer")


class _DisconnectWatch:
    """Cancels the responding task when the client goes away; tells afterwards whether it did."""

    def __init__(self, receive: Receive) -> None:
        self.disconnected = False
        self._receive = receive
        self._task = asyncio.current_task()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                if self._task is not None:
                    self._task.cancel()
                return

    def stop(self) -> None:
        self._watcher.cancel()

    def absorb(self) -> bool:
        """In an `except CancelledError`: True (and the cancel undone) if it was our disconnect."""
        if self.disconnected and self._task is not None:
            self._task.uncancel()
            return True
        return False


class _ChatResponse(Response):
    """A Starlette Response (so FastAPI passes it through) that writes its own ASGI messages.

    It owns the call: opens it when the response starts, closes its batches however
    the response ends, records the outcome, and calls `on_close(outcome)` exactly once.
    """

    def __init__(
        self,
        call: Callable[[], Call],
        encoder: AnswerEncoder,
        outcome: Outcome,
        on_close: Callable[[Outcome], None],
    ) -> None:
        self.call = call
        self.background = None
        self.status_code = 200
        self.encoder = encoder
        self.outcome = outcome
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome = self.outcome
        loop = asyncio.get_running_loop()
        watch = _DisconnectWatch(receive)
        try:
            call = self.call()
        except Exception as exc:
            watch.stop()
            await self._fail_before_start((scope, receive, send), _provider_error(exc))
            outcome.ended = loop.time()
            self.on_close(outcome)
            return
        outcome.deployment = call.deployment
        self.encoder.bind(call)
        try:
            async with aclosing(call.batches) as batches:
                await self._respond(batches, (scope, receive, send))
        except asyncio.CancelledError:
            if not watch.absorb():
                raise
            outcome.error = outcome.error or "client_disconnected"
        except OSError:
            outcome.error = outcome.error or "client_disconnected"  # went away mid-write
        finally:
            watch.stop()
            outcome.ended = loop.time()
            outcome.take_report(call)  # a router names the one that answered as it goes
            self._count_tokens()
            self.on_close(outcome)

    def _count_tokens(self) -> None:
        outcome, usage = self.outcome, self.encoder.usage
        outcome.pieces = self.encoder.pieces
        if usage:
            outcome.prompt_tokens, outcome.completion_tokens = usage_counts(usage)
        else:
            outcome.completion_tokens = outcome.pieces

    async def _fail_before_start(self, asgi: _ASGI, exc: errors.ProviderError) -> None:
        answer = self.encoder.error_response(exc)
        self.outcome.status = answer.status_code
        self.outcome.error = status_for(exc)[2]
        await answer(*asgi)

    async def _respond(self, batches: AsyncGenerator[list[ChatChunk], None], asgi: _ASGI) -> None:
        raise NotImplementedError


class EventStreamResponse(_ChatResponse):
    """`stream: true`: the encoder's events, batch by batch."""

    async def _respond(self, batches: AsyncGenerator[list[ChatChunk], None], asgi: _ASGI) -> None:
        send = asgi[2]
        loop = asyncio.get_running_loop()
        outcome, encoder = self.outcome, self.encoder
        try:
            first = await _until_committed(batches)
        except Exception as exc:
            await self._fail_before_start(asgi, _provider_error(exc))
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": encoder.stream_headers()}
        )
        outcome.first_chunk = loop.time()
        body = encoder.stream_batch(first)
        await send({"type": "http.response.body", "body": body, "more_body": True})
        times = outcome.batch_times
        try:
            async for batch in batches:
                body = encoder.stream_batch(batch)
                times.append(loop.time())
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
        except Exception as exc:
            if isinstance(exc, OSError) and not isinstance(exc, errors.ProviderError):
                raise  # from `send`: the client went away
            error = _provider_error(exc)
            outcome.error = status_for(error)[2]
            tail = encoder.stream_error(error)
            await encoder.settle()
            await send({"type": "http.response.body", "body": tail, "more_body": False})
            return
        tail = encoder.stream_end()
        await encoder.settle()
        await send({"type": "http.response.body", "body": tail, "more_body": False})


async def _until_committed(batches: AsyncGenerator[list[ChatChunk], None]) -> list[ChatChunk]:
    """The chunks up to the first batch that commits the answer (`commits_answer`).

    A role-only opening chunk is held back with them, so an upstream that fails
    right after it still gets the client a real HTTP error, not a 200 stream.
    """
    held: list[ChatChunk] = []
    async for batch in batches:
        held.extend(batch)
        if commits_answer(batch):
            return held
    return held


class CompletionResponse(_ChatResponse):
    """`stream: false`: the whole answer as one body."""

    async def _respond(self, batches: AsyncGenerator[list[ChatChunk], None], asgi: _ASGI) -> None:
        send = asgi[2]
        answer = AnswerBuilder()
        upstream: ChatChunk | None = None
        encoder = self.encoder
        try:
            async for batch in batches:
                for chunk in batch:
                    if _is_whole_answer(chunk):
                        upstream = chunk
                    if chunk.content:
                        encoder.pieces += 1
                    answer.add(chunk)
        except Exception as exc:
            await self._fail_before_start(asgi, _provider_error(exc))
            return
        self.outcome.first_chunk = asyncio.get_running_loop().time()
        body = encoder.whole(answer, upstream)
        headers = encoder.whole_headers(body)
        await encoder.settle()
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _is_whole_answer(chunk: ChatChunk) -> bool:
    """Whether the chunk is an upstream's whole non-streamed answer: OpenAI's
    `chat.completion` or Anthropic's `message` (the encoder relays it if it speaks it)."""
    data = chunk.data
    if data is None:
        return False
    return data.get("object") == "chat.completion" or (
        data.get("type") == "message" and "content" in data
    )
