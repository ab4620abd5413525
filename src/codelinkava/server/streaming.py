"""Relaying a provider's text as OpenAI chunks over SSE, the way a proxy should.

- Each chunk is sent the moment the provider yields it (uvicorn writes each
  ASGI body message straight to the socket; `X-Accel-Buffering: no` asks
  nginx-style proxies not to hold it either).
- The client's disconnect is watched for the whole life of the response, not
  only when we next write, and cancels the generation behind it at once.
- An error before the first chunk is a real HTTP error; after it, the stream
  carries `data: {"error": ...}` and then `data: [DONE]`.
- Chunk JSON is rendered from a prefix and a suffix computed once per
  response, so each token costs one `json.dumps` of its text (measured in
  bench/: pydantic per chunk would cost more than the whole relay).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import Response

from codelinkava import errors
from codelinkava.providers.base import StreamInfo, capture_stream_info

from .errors import error_payload, public_message, status_for
from .middleware import Receive, Scope, Send, send_error

__all__ = ["ChunkEncoder", "CompletionResponse", "EventStreamResponse"]

log = logging.getLogger("codelinkava.server")

DONE = b"data: [DONE]\n\n"
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


def make_usage(info: StreamInfo, pieces: int, prompt_estimate: int) -> dict[str, Any]:
    """The provider's usage if it reported one, else our own count."""
    if info.usage and isinstance(info.usage.get("completion_tokens"), int):
        usage = dict(info.usage)
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


class _BaseResponse(Response):
    """A Starlette Response (so FastAPI passes it through) that writes its own ASGI messages."""

    def __init__(
        self,
        start: Callable[[], AsyncIterator[list[str]]],
        encoder: ChunkEncoder,
        *,
        prompt_estimate: int,
        on_close: Callable[[], None],
    ) -> None:
        self.start = start
        self.background = None
        self.status_code = 200
        self.encoder = encoder
        self.prompt_estimate = prompt_estimate
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The provider reports finish_reason/usage into the context of the task
        # that iterates it, so the capture is opened here, around the iteration.
        with capture_stream_info() as info:
            batches = self.start()
            watch = _DisconnectWatch(receive)
            try:
                await self._respond(batches, info, send)
            except asyncio.CancelledError:
                if not watch.absorb():
                    raise
            except OSError:
                pass  # the client went away mid-write
            finally:
                watch.stop()
                try:
                    aclose = getattr(batches, "aclose", None)
                    if aclose is not None:
                        await aclose()
                finally:
                    self.on_close()

    async def _respond(
        self, batches: AsyncIterator[list[str]], info: StreamInfo, send: Send
    ) -> None:
        raise NotImplementedError

    @staticmethod
    async def _send_provider_error(send: Send, exc: errors.ProviderError) -> None:
        status, kind, code, headers = status_for(exc)
        await send_error(send, status, public_message(exc), kind, code, headers)


class EventStreamResponse(_BaseResponse):
    """`stream: true`: role chunk, text chunks, finish chunk, usage chunk if asked, [DONE]."""

    async def _respond(
        self, batches: AsyncIterator[list[str]], info: StreamInfo, send: Send
    ) -> None:
        # One ASGI send per batch (the pieces of one upstream read): on a fast upstream
        # this halved the gateway's CPU per chunk; a paced one gives one piece a batch.
        encoder = self.encoder
        text = encoder.text
        try:
            first = await anext(batches, None) or [""]
        except Exception as exc:
            await self._send_provider_error(send, _provider_error(exc))
            return
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        body = encoder.role(first[0])
        if len(first) > 1:
            body += b"".join([text(piece) for piece in first[1:]])
        await send({"type": "http.response.body", "body": body, "more_body": True})
        count = len(first) if first[0] else 0
        try:
            async for batch in batches:
                count += len(batch)
                body = text(batch[0]) if len(batch) == 1 else b"".join([text(p) for p in batch])
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except Exception as exc:
            if isinstance(exc, OSError) and not isinstance(exc, errors.ProviderError):
                raise  # from `send`: the client went away
            await send(
                {
                    "type": "http.response.body",
                    "body": encoder.error(_provider_error(exc)) + DONE,
                    "more_body": False,
                }
            )
            return
        tail = encoder.finish(info.finish_reason or "stop")
        if encoder.include_usage:
            tail += encoder.usage(make_usage(info, count, self.prompt_estimate))
        await send({"type": "http.response.body", "body": tail + DONE, "more_body": False})


class CompletionResponse(_BaseResponse):
    """`stream: false`: one `chat.completion` JSON object."""

    async def _respond(
        self, batches: AsyncIterator[list[str]], info: StreamInfo, send: Send
    ) -> None:
        parts: list[str] = []
        try:
            async for batch in batches:
                parts.extend(batch)
        except Exception as exc:
            await self._send_provider_error(send, _provider_error(exc))
            return
        encoder = self.encoder
        body = json.dumps(
            {
                "id": encoder.id,
                "object": "chat.completion",
                "created": encoder.created,
                "model": encoder.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(parts)},
                        "logprobs": None,
                        "finish_reason": info.finish_reason or "stop",
                    }
                ],
                "usage": make_usage(info, len(parts), self.prompt_estimate),
            },
            ensure_ascii=False,
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
