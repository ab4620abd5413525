"""The encoder seam: how one response's answer is written in one API's wire format.

`streaming.py` drives a response -- holds back the chunks until one commits the
answer, watches the client, sends each batch as one ASGI message, records the
outcome -- and asks an `AnswerEncoder` for the bytes. A new API (Responses,
Messages) is a wire model, a translator of it into a `ChatAsk`, an encoder, and
one `ChatRoute` line in `routes.py`.

Two encoders ship:

- `OpenAIChatEncoder`: `chat.completion.chunk` events and `chat.completion`
  answers. From an upstream that speaks OpenAI's chunks (`relay=True`) each chunk
  goes out as the JSON text the upstream sent; typed chunks from anyone else are
  rendered here, plain text ones from a prefix and a suffix computed once per
  response, so each token costs one `json.dumps` of its text.
- The same class with `text_only=True` for `/api/chat`, the seed's CodeLinkAva
  wire: text deltas, the finish, `[DONE]`; never usage, tool calls or logprobs.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import replace
from typing import Any, Protocol

from starlette.responses import Response

from codelinkava import errors
from codelinkava.chunk import AnswerBuilder, ChatChunk, usage_counts

from .backend import Call
from .errors import error_payload, provider_error_response, public_message, status_for

__all__ = ["DONE", "AnswerEncoder", "ChunkEncoder", "OpenAIChatEncoder", "make_usage"]

DONE = b"data: [DONE]\n\n"
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_JSON = b"application/json"


class AnswerEncoder(Protocol):
    """One response's answer in one API's wire format; it keeps the response's state."""

    #: Text pieces (content chunks) written so far: the token count when no usage came.
    pieces: int
    #: The usage the upstream reported, once it did.
    usage: dict[str, Any] | None

    def bind(self, call: Call) -> None:
        """The call that answers is open: learn what its chunks are (the upstream's own
        JSON to relay untouched, or typed chunks to render)."""

    def stream_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers of a 200 event stream."""

    def stream_batch(self, batch: list[ChatChunk]) -> bytes:
        """The bytes of one upstream read's chunks (may be empty)."""

    def stream_end(self) -> bytes:
        """What closes a stream that ended well (the finish, usage, the terminator)."""

    def stream_error(self, exc: errors.ProviderError) -> bytes:
        """What closes a stream that broke after it started."""

    def whole(self, answer: AnswerBuilder, upstream: ChatChunk | None) -> bytes:
        """A non-streamed answer's body; `upstream`: the upstream's own whole answer, if any."""

    def whole_headers(self, body: bytes) -> list[tuple[bytes, bytes]]:
        """The headers of a non-streamed answer."""

    def error_response(self, exc: errors.ProviderError) -> Response:
        """An HTTP error in this API's shape, for a failure before anything was sent."""

    async def settle(self) -> None:
        """Before the last bytes go out: keep what must outlive the response (a stored
        Response), so a client that reads the end and asks for it at once finds it."""


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def make_usage(usage: dict[str, Any] | None, pieces: int, prompt_estimate: int) -> dict[str, Any]:
    """The provider's usage if it reported one (with its other fields), else our own
    count; `total_tokens` always the sum."""
    prompt, completion = usage_counts(usage)
    if completion is None or usage is None:
        usage, completion = {}, pieces
    usage = dict(usage)
    usage["prompt_tokens"] = prompt_estimate if prompt is None else prompt
    usage["completion_tokens"] = completion
    usage["total_tokens"] = usage["prompt_tokens"] + completion
    return usage


class ChunkEncoder:
    """Renders `chat.completion.chunk` events for one response: the bytes, no state."""

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


class OpenAIChatEncoder:
    """OpenAI's chat completions (and, `text_only`, the seed's CodeLinkAva wire)."""

    def __init__(
        self,
        model: str,
        *,
        include_usage: bool,
        text_only: bool = False,
        prompt_estimate: int = 0,
    ) -> None:
        self.chunks = ChunkEncoder(model, include_usage=include_usage)
        #: Whether the call's chunks carry an OpenAI upstream's own JSON (`raw`), which a
        #: whole answer forwards as it is, and a stream too unless it is text only.
        self.relay = False
        self.text_only = text_only
        self.prompt_estimate = prompt_estimate
        self.pieces = 0
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self._started = False

    def bind(self, call: Call) -> None:
        self.relay = call.relays_openai_chunks

    def stream_headers(self) -> list[tuple[bytes, bytes]]:
        return _SSE_HEADERS

    def stream_batch(self, batch: list[ChatChunk]) -> bytes:
        for chunk in batch:  # what the closing chunks need
            if chunk.finish_reason:
                self.finish_reason = chunk.finish_reason
            if chunk.usage is not None:
                self.usage = chunk.usage
        relayed = self.relay and not self.text_only
        return self._relayed(batch) if relayed else self._rendered(batch)

    def _relayed(self, batch: list[ChatChunk]) -> bytes:
        """The upstream's own chunks, their JSON as it was sent."""
        parts = []
        for chunk in batch:
            if chunk.content:
                self.pieces += 1
            if chunk.raw is not None:
                parts.append(b"data: " + chunk.raw.encode() + b"\n\n")
            else:  # a chunk a router or wrapper made itself
                parts.append(self.chunks.chunk(chunk))
        return b"".join(parts)

    def _rendered(self, batch: list[ChatChunk]) -> bytes:
        """Typed chunks rendered here; plain text chunks by the fast path."""
        encoder = self.chunks
        parts = []
        for chunk in batch:
            content = chunk.content
            if content:
                self.pieces += 1
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
                chunk = replace(chunk, role=chunk.role or "assistant")
            if chunk.finish_reason is not None:
                chunk = replace(chunk, finish_reason=None)
            parts.append(encoder.chunk(chunk))
        return b"".join(parts)

    def stream_end(self) -> bytes:
        """Ours when we rendered the chunks, then `[DONE]`."""
        encoder = self.chunks
        if self.relay and not self.text_only:
            if encoder.include_usage and self.usage is None:
                # The client asked for usage and the upstream sent none: our count, so the
                # promise of `include_usage` holds.
                usage = make_usage(None, self.pieces, self.prompt_estimate)
                return encoder.usage(usage) + DONE
            return DONE
        tail = b"" if self._started else encoder.role("")
        tail += encoder.finish(self.finish_reason or "stop")
        if encoder.include_usage and not self.text_only:
            tail += encoder.usage(make_usage(self.usage, self.pieces, self.prompt_estimate))
        return tail + DONE

    def stream_error(self, exc: errors.ProviderError) -> bytes:
        return self.chunks.error(exc) + DONE

    def whole(self, answer: AnswerBuilder, upstream: ChatChunk | None) -> bytes:
        self.usage = answer.usage
        if upstream is not None and upstream.raw is not None and self.relay:
            return upstream.raw.encode()  # the upstream's whole answer, as it sent it
        encoder = self.chunks
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
                "usage": make_usage(answer.usage, self.pieces, self.prompt_estimate),
            },
            ensure_ascii=False,
        ).encode()

    def whole_headers(self, body: bytes) -> list[tuple[bytes, bytes]]:
        return [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())]

    def error_response(self, exc: errors.ProviderError) -> Response:
        return provider_error_response(exc)

    async def settle(self) -> None:
        return None
