"""Relaying an answer over HTTP, the way a proxy should.

- From an upstream that speaks OpenAI's chunks, each chunk reaches the client
  as the upstream sent it: its JSON text untouched (tool-call deltas,
  logprobs, `system_fingerprint`, usage), still checked on the way by the
  wire format's decoder (errors, truncation, `[DONE]`). A whole answer is
  the upstream's whole answer.
- From any other provider (the local model), typed chunks are rendered as
  OpenAI chunks here; text-only chunks from a prefix and a suffix computed
  once per response, so each token costs one `json.dumps` of its text.
- `/api/chat` (the seed's wire) carries text deltas only, whatever the upstream.
- Each batch (the chunks of one upstream read) is one ASGI send; uvicorn writes
  it straight to the socket and `X-Accel-Buffering: no` asks proxies not to
  hold it either.
- The client's disconnect is watched for the whole life of the response and
  cancels the generation behind it at once.
- An error before the first chunk is a real HTTP error; after it, the stream
  carries `data: {"error": ...}` and then `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from codelinkava import errors
from codelinkava.chunk import AnswerBuilder, ChatChunk, commits_answer

from .backend import Call
from .errors import error_payload, provider_error_response, public_message, status_for
from .outcome import Outcome

__all__ = ["ChunkEncoder", "CompletionResponse", "EventStreamResponse"]

log = logging.getLogger("codelinkava.server")

DONE = b"data: [DONE]\n\n"
_ASGI = tuple[Scope, Receive, Send]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class ChunkEncoder:
    """Renders `chat.completion.chunk` events for one response."""

    def __init__(self, model: str, *, include_usage: bool = False) -> None:
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        head = _compact(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": model,
            }
        )[:-1]
        self._head = f'data: {head},"choices":[{{"index":0,"delta":'.encode()
        tail = ',"logprobs":null,"finish_reason":null}]' + (
            ',"usage":null' if include_usage else ""
        )
        self._text_prefix = self._head + b'{"content":'
        self._text_suffix = ("}" + tail + "}\n\n").encode()
        self._tail = tail

    def role(self, first_text: str) -> bytes:
        """The first chunk: the role, with the first piece of text."""
        return (
            self._head
            + f'{{"role":"assistant","content":{_compact(first_text)}}}{self._tail}}}\n\n'.encode()
        )

    def text(self, piece: str) -> bytes:
        return self._text_prefix + _compact(piece).encode() + self._text_suffix

    def chunk(self, chunk: ChatChunk) -> bytes:
        """Any typed chunk: tool-call deltas, refusal, logprobs, finish_reason."""
        delta: dict[str, Any] = {}
        if chunk.role:
            delta["role"] = chunk.role
        if chunk.content is not None:
            delta["content"] = chunk.content
        if chunk.refusal is not None:
            delta["refusal"] = chunk.refusal
        if chunk.tool_calls:
            delta["tool_calls"] = [call.to_wire() for call in chunk.tool_calls]
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": chunk.index,
                    "delta": delta,
                    "logprobs": chunk.logprobs,
                    "finish_reason": chunk.finish_reason,
                }
            ],
        }
        if self.include_usage:
            body["usage"] = None
        return f"data: {_compact(body)}\n\n".encode()

    def finish(self, reason: str) -> bytes:
        usage = ',"usage":null' if self.include_usage else ""
        return (
            self._head
            + (f'{{}},"logprobs":null,"finish_reason":{_compact(reason)}}}]{usage}}}\n\n').encode()
        )

    def usage(self, usage: dict[str, Any]) -> bytes:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage,
        }
        return f"data: {_compact(chunk)}\n\n".encode()

    @staticmethod
    def error(exc: errors.ProviderError) -> bytes:
        _status, kind, code, _headers = status_for(exc)
        return f"data: {_compact(error_payload(public_message(exc), kind, code))}\n\n".encode()


def _provider_error(exc: Exception) -> errors.ProviderError:
    """The error to tell the client: ours as it is, anything else as a logged internal error."""
    if isinstance(exc, errors.ProviderError):
        return exc
    log.error("the provider failed unexpectedly", exc_info=exc)
    return errors.ProviderError("internal error while generating the answer")


def make_usage(usage: dict[str, Any] | None, pieces: int, prompt_estimate: int) -> dict[str, Any]:
    """The provider's usage if it reported one, else our own count."""
    if usage and isinstance(usage.get("completion_tokens"), int):
        usage = dict(usage)
    else:
        usage = {"prompt_tokens": prompt_estimate, "completion_tokens": pieces}
    usage.setdefault("prompt_tokens", prompt_estimate)
    usage["total_tokens"] = int(usage.get("prompt_tokens") or 0) + int(
        usage.get("completion_tokens") or 0
    )
    return usage


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

    It owns the call: closes its batches however the response ends, records
    the outcome, and calls `on_close(outcome)` exactly once.
    """

    def __init__(
        self,
        call: Callable[[], Call],
        encoder: ChunkEncoder,
        outcome: Outcome,
        on_close: Callable[[Outcome], None],
        *,
        prompt_estimate: int = 0,
        text_only: bool = False,
    ) -> None:
        self.call = call
        self.background = None
        self.status_code = 200
        self.encoder = encoder
        self.outcome = outcome
        self.on_close = on_close
        self.prompt_estimate = prompt_estimate
        self.text_only = text_only
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome = self.outcome
        loop = asyncio.get_running_loop()
        watch = _DisconnectWatch(receive)
        try:
            call = self.call()
        except Exception as exc:
            watch.stop()
            await self._fail_before_start(scope, receive, send, _provider_error(exc))
            outcome.ended = loop.time()
            self.on_close(outcome)
            return
        outcome.deployment = call.deployment
        try:
            async with aclosing(call.batches) as batches:
                await self._respond(call, batches, (scope, receive, send))
        except asyncio.CancelledError:
            if not watch.absorb():
                raise
            outcome.error = outcome.error or "client_disconnected"
        except OSError:
            outcome.error = outcome.error or "client_disconnected"  # went away mid-write
        finally:
            watch.stop()
            outcome.ended = loop.time()
            outcome.deployment = call.deployment  # a router names the one that answered as it goes
            outcome.attempts = call.attempts
            outcome.fallback = call.fallback
            outcome.rate_limited = call.rate_limited
            outcome.hedge_tokens = call.hedge_tokens
            self._count_tokens()
            self.on_close(outcome)

    def _count_tokens(self) -> None:
        usage = self.usage
        if usage:
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            self.outcome.prompt_tokens = prompt if isinstance(prompt, int) else None
            self.outcome.completion_tokens = completion if isinstance(completion, int) else None
        else:
            self.outcome.completion_tokens = self.outcome.pieces

    def _note(self, batch: list[ChatChunk]) -> None:
        """Keep what the outcome and the closing chunks need from a batch."""
        for chunk in batch:
            if chunk.finish_reason:
                self.finish_reason = chunk.finish_reason
            if chunk.usage is not None:
                self.usage = chunk.usage

    async def _fail_before_start(
        self, scope: Scope, receive: Receive, send: Send, exc: errors.ProviderError
    ) -> None:
        answer = provider_error_response(exc)
        self.outcome.status = answer.status_code
        self.outcome.error = status_for(exc)[2]
        await answer(scope, receive, send)

    async def _respond(
        self, call: Call, batches: AsyncGenerator[list[ChatChunk], None], asgi: _ASGI
    ) -> None:
        raise NotImplementedError


class EventStreamResponse(_ChatResponse):
    """`stream: true`: the chunks as SSE, then `[DONE]`."""

    async def _respond(
        self, call: Call, batches: AsyncGenerator[list[ChatChunk], None], asgi: _ASGI
    ) -> None:
        send = asgi[2]
        loop = asyncio.get_running_loop()
        outcome = self.outcome
        raw = call.relays_openai_chunks and not self.text_only
        render = self._render_raw if raw else self._render
        try:
            first = await _first_substance(batches)
        except Exception as exc:
            await self._fail_before_start(*asgi, _provider_error(exc))
            return
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        outcome.first_chunk = loop.time()
        self._started = False
        self._note(first)
        await send({"type": "http.response.body", "body": render(first), "more_body": True})
        times = outcome.batch_times
        try:
            async for batch in batches:
                self._note(batch)
                body = render(batch)
                times.append(loop.time())
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
        except Exception as exc:
            if isinstance(exc, OSError) and not isinstance(exc, errors.ProviderError):
                raise  # from `send`: the client went away
            error = _provider_error(exc)
            outcome.error = status_for(error)[2]
            tail = self.encoder.error(error) + DONE
            await send({"type": "http.response.body", "body": tail, "more_body": False})
            return
        await send({"type": "http.response.body", "body": self._closing(raw), "more_body": False})

    def _render_raw(self, batch: list[ChatChunk]) -> bytes:
        """The upstream's own chunks, their JSON as it was sent."""
        parts = []
        for chunk in batch:
            if chunk.content:
                self.outcome.pieces += 1
            if chunk.raw is not None:
                parts.append(b"data: " + chunk.raw.encode() + b"\n\n")
            else:  # a chunk a router or wrapper made itself
                parts.append(self.encoder.chunk(chunk))
        return b"".join(parts)

    def _render(self, batch: list[ChatChunk]) -> bytes:
        """Typed chunks rendered here; plain text chunks by the fast path."""
        encoder = self.encoder
        parts = []
        for chunk in batch:
            content = chunk.content
            if content:
                self.outcome.pieces += 1
            plain = (
                chunk.tool_calls is None
                and chunk.refusal is None
                and chunk.logprobs is None
                and chunk.finish_reason is None
            )
            if plain or self.text_only:
                if content:
                    if self._started:
                        parts.append(encoder.text(content))
                    else:
                        self._started = True
                        parts.append(encoder.role(content))
                continue
            if chunk.finish_reason and not (
                content or chunk.tool_calls or chunk.logprobs or chunk.refusal
            ):
                continue  # the closing chunk says it, after every other chunk
            if not self._started:
                self._started = True
                chunk = _with_role(chunk)
            parts.append(encoder.chunk(_without_finish(chunk)))
        return b"".join(parts)

    def _closing(self, raw: bool) -> bytes:
        """After the last chunk: ours when we rendered them, then `[DONE]`."""
        encoder = self.encoder
        if raw:
            if encoder.include_usage and self.usage is None:
                # The client asked for usage and the upstream sent none: our count, so the
                # promise of `include_usage` holds.
                usage = make_usage(None, self.outcome.pieces, self.prompt_estimate)
                return encoder.usage(usage) + DONE
            return DONE
        tail = b"" if self._started else encoder.role("")
        tail += encoder.finish(self.finish_reason or "stop")
        if encoder.include_usage and not self.text_only:
            tail += encoder.usage(make_usage(self.usage, self.outcome.pieces, self.prompt_estimate))
        return tail + DONE


async def _first_substance(batches: AsyncGenerator[list[ChatChunk], None]) -> list[ChatChunk]:
    """The chunks up to the first that says something (text, a tool call, the end).

    A role-only opening chunk is held back with them, so an upstream that fails
    right after it still gets the client a real HTTP error, not a 200 stream.
    """
    held: list[ChatChunk] = []
    async for batch in batches:
        held.extend(batch)
        if commits_answer(batch):
            return held
    return held


def _with_role(chunk: ChatChunk) -> ChatChunk:
    from dataclasses import replace

    return replace(chunk, role=chunk.role or "assistant")


def _without_finish(chunk: ChatChunk) -> ChatChunk:
    if chunk.finish_reason is None:
        return chunk
    from dataclasses import replace

    return replace(chunk, finish_reason=None)


class CompletionResponse(_ChatResponse):
    """`stream: false`: one `chat.completion` JSON object."""

    async def _respond(
        self, call: Call, batches: AsyncGenerator[list[ChatChunk], None], asgi: _ASGI
    ) -> None:
        send = asgi[2]
        answer = AnswerBuilder()
        whole: ChatChunk | None = None
        try:
            async for batch in batches:
                for chunk in batch:
                    if chunk.data is not None and chunk.data.get("object") == "chat.completion":
                        whole = chunk
                    if chunk.content:
                        self.outcome.pieces += 1
                    answer.add(chunk)
        except Exception as exc:
            await self._fail_before_start(*asgi, _provider_error(exc))
            return
        self.outcome.first_chunk = asyncio.get_running_loop().time()
        self.usage = answer.usage
        if whole is not None and whole.raw is not None and call.relays_openai_chunks:
            body = whole.raw.encode()  # the upstream's whole answer, as it sent it
        else:
            body = self._render(answer)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _render(self, answer: AnswerBuilder) -> bytes:
        encoder = self.encoder
        choice: dict[str, Any] = {
            "index": 0,
            "message": answer.message(),
            "logprobs": {"content": answer.logprobs} if answer.logprobs else None,
            "finish_reason": answer.finish_reason or "stop",
        }
        return json.dumps(
            {
                "id": encoder.id,
                "object": "chat.completion",
                "created": encoder.created,
                "model": encoder.model,
                "choices": [choice],
                "usage": make_usage(answer.usage, self.outcome.pieces, self.prompt_estimate),
            },
            ensure_ascii=False,
        ).encode()
