"""Anthropic's Messages stream: SSE events named by their `type`, one chunk per event.

A stream is `message_start`, then per content block `content_block_start`,
`content_block_delta`s and `content_block_stop`, then `message_delta` (the
stop reason and the output usage) and `message_stop`, with `ping`s anywhere
(https://docs.anthropic.com/en/api/messages-streaming). Every event becomes
one `ChatChunk` whose `data` is the event's JSON object and `raw` its exact
text, so a Messages relay forwards the stream as it came; the typed fields
say what the event means in the library's (OpenAI-shaped) terms: text, tool
calls, the finish reason, usage. Events it does not know (thinking and
signature deltas, newer types) stay data-only chunks, never an error.

The SSE rules are `formats.sse`'s; this module only reads the events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from orjson import loads as _fast_loads

from ..chunk import ChatChunk, ToolCallDelta
from ..errors import (
    ProviderError,
    RateLimitError,
    ResponseStatusError,
    StreamError,
    StreamTruncatedError,
    UpstreamError,
)
from .base import BodyKind, StreamDecoder, WireFormat
from .openai_sse import OPENAI_SSE
from .sse import ServerSentEvent, SSEDecoder

__all__ = [
    "ANTHROPIC_SSE",
    "STOP_REASONS",
    "AnthropicSSE",
    "AnthropicSSEDecoder",
    "finish_reason_of",
    "openai_usage",
    "stream_error",
]

#: Anthropic's `stop_reason` -> OpenAI's `finish_reason`.
STOP_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}
#: What a stream sends before anything of the answer: the core holds these back
#: (`StreamDecoder.before_answer`), so a failure right after them is still retried.
_PRELUDE = frozenset({"message_start", "ping", "content_block_start"})
#: The in-stream error types that mean a status the retry policy knows.
_STATUS_OF = {"overloaded_error": 529, "rate_limit_error": 429}
_QUOTE_CHARS = 200
_BOM = b"\xef\xbb\xbf"


def _loads(text: str) -> Any:
    """orjson first (fast), the standard decoder for what it refuses (NaN, big integers)."""
    try:
        return _fast_loads(text)
    except ValueError:
        return json.loads(text)


def _quote(text: str) -> str:
    return repr(text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "...")


def finish_reason_of(stop_reason: Any) -> str | None:
    """OpenAI's finish_reason for Anthropic's stop_reason (an unknown one is kept as it is)."""
    if not isinstance(stop_reason, str) or not stop_reason:
        return None
    return STOP_REASONS.get(stop_reason, stop_reason)


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if type(value) is int and value > 0 else 0


def openai_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic's usage in OpenAI's shape: the prompt counts every input token, cached
    ones included (`prompt_tokens_details.cached_tokens` says how many were read from
    the cache); tokens written to the cache are kept under their own name."""
    read = _count(usage, "cache_read_input_tokens")
    written = _count(usage, "cache_creation_input_tokens")
    prompt = _count(usage, "input_tokens") + read + written
    completion = _count(usage, "output_tokens")
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read},
    }
    if written:
        out["cache_creation_input_tokens"] = written
    return out


def stream_error(payload: Any, raw: str = "") -> ProviderError:
    """The error an `error` event (or a whole error body) reports, as ours.

    `overloaded_error` and `rate_limit_error` become the status errors of a 529 and
    a 429 (`body` is the upstream's JSON), so the retry policy treats them as those
    statuses before the answer began and the gateway answers with them; any other
    type is an `UpstreamError` carrying the upstream's type and message.
    """
    error = payload.get("error") if isinstance(payload, Mapping) else None
    if not isinstance(error, Mapping):
        error = payload if isinstance(payload, Mapping) else {}
    kind = error.get("type")
    kind = kind if isinstance(kind, str) and kind else None
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = raw.strip() or "an error event with no message"
    text = f"upstream error ({kind or 'unknown type'}): {message}"
    status = _STATUS_OF.get(kind or "")
    if status == 429:
        return RateLimitError(text, status=429, body=raw)
    if status is not None:
        return ResponseStatusError(text, status=status, body=raw)
    return UpstreamError(text, type=kind)


class AnthropicSSEDecoder(StreamDecoder):
    """SSE bytes -> Messages events -> one chunk each, until `message_stop`."""

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        #: content block index -> the tool call's position among the tool_use blocks
        self._tools: dict[int, int] = {}
        self._input_usage: dict[str, Any] = {}
        self._events = 0
        self.done = False
        self.before_answer = True
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    def chunks(self, data: bytes) -> Iterator[ChatChunk]:
        for event in self._sse.feed(data):
            chunk = self.chunk_of(event)
            if chunk is None:
                continue
            yield chunk
            if self.done:
                return

    def close(self) -> None:
        self._sse.close()
        discarded = self._sse.discarded
        if not self.done and discarded is not None and _is_stop(discarded):
            self.done = True  # `message_stop` with no blank line after it: finished
        if not self.done:
            raise StreamTruncatedError(
                f"the stream ended without message_stop after {self._events} event(s); "
                "the answer may be cut off"
            )

    def chunk_of(self, event: ServerSentEvent) -> ChatChunk | None:
        """The chunk one event makes; None for a keep-alive with no data."""
        if event.event == "error":
            raise stream_error(_error_payload(event.data), event.data)
        if not event.data.strip():
            return None
        data = _event_object(event)
        kind = data["type"]
        self._events += 1
        if kind == "error":
            raise stream_error(data, event.data)
        read = _READERS.get(kind)
        chunk = ChatChunk(data=data, raw=event.data) if read is None else read(self, data, event)
        if self.before_answer and (kind not in _PRELUDE or chunk.content or chunk.tool_calls):
            self.before_answer = False
        return chunk

    def _message_start(self, data: dict[str, Any], event: ServerSentEvent) -> ChatChunk:
        message = _field(data, "message", dict, event)
        role = message.get("role")
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._input_usage = usage
            self.usage = openai_usage(usage)
        # NOTE: the input usage waits for message_delta's chunk rather than ride on
        # this one: a chunk with usage commits the answer (`commits_answer`), and this
        # opening must not, so a failure right after it can be retried or failed over.
        return ChatChunk(
            role=role if isinstance(role, str) else "assistant", data=data, raw=event.data
        )

    def _block_start(self, data: dict[str, Any], event: ServerSentEvent) -> ChatChunk:
        index = _field(data, "index", int, event)
        block = _field(data, "content_block", dict, event)
        kind = block.get("type")
        if kind == "tool_use":
            position = self._tools.setdefault(index, len(self._tools))
            given = block.get("input")
            call = ToolCallDelta(
                index=position,
                id=_str(block.get("id")),
                type="function",
                name=_str(block.get("name")),
                arguments=json.dumps(given, ensure_ascii=False) if given else "",
            )
            return ChatChunk(tool_calls=[call], data=data, raw=event.data)
        text = block.get("text") if kind == "text" else None
        return ChatChunk(content=_str(text) or None, data=data, raw=event.data)

    def _block_delta(self, data: dict[str, Any], event: ServerSentEvent) -> ChatChunk:
        index = _field(data, "index", int, event)
        delta = _field(data, "delta", dict, event)
        kind = delta.get("type")
        if kind == "text_delta":
            text = _field(delta, "text", str, event, "delta.text")
            return ChatChunk(content=text or None, data=data, raw=event.data)
        if kind == "input_json_delta":
            partial = _field(delta, "partial_json", str, event, "delta.partial_json")
            position = self._tools.get(index)
            if position is None:
                raise StreamError(
                    f"an input_json_delta for content block {index}, which no tool_use "
                    f"content_block_start opened: {_quote(event.data)}"
                )
            call = ToolCallDelta(index=position, arguments=partial)
            return ChatChunk(tool_calls=[call], data=data, raw=event.data)
        return ChatChunk(data=data, raw=event.data)  # thinking, signature, citations...

    def _message_delta(self, data: dict[str, Any], event: ServerSentEvent) -> ChatChunk:
        delta = _field(data, "delta", dict, event)
        finish = finish_reason_of(delta.get("stop_reason"))
        usage = None
        given = data.get("usage")
        if isinstance(given, dict):
            # The counts here are totals so far: they replace message_start's, and
            # those it leaves out (the input, on older servers) stand.
            merged = {**self._input_usage, **{k: v for k, v in given.items() if v is not None}}
            usage = self.usage = openai_usage(merged)
        if finish is not None:
            self.finish_reason = finish
        return ChatChunk(finish_reason=finish, usage=usage, data=data, raw=event.data)

    def _message_stop(self, data: dict[str, Any], event: ServerSentEvent) -> ChatChunk:
        self.done = True
        return ChatChunk(data=data, raw=event.data)


_READERS = {
    "message_start": AnthropicSSEDecoder._message_start,
    "content_block_start": AnthropicSSEDecoder._block_start,
    "content_block_delta": AnthropicSSEDecoder._block_delta,
    "message_delta": AnthropicSSEDecoder._message_delta,
    "message_stop": AnthropicSSEDecoder._message_stop,
}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _field(
    data: Mapping[str, Any], key: str, kind: type, event: ServerSentEvent, name: str = ""
) -> Any:
    """`data[key]`, which must be a `kind`; a StreamError naming it otherwise."""
    value = data.get(key)
    if type(value) is not kind:
        raise StreamError(
            f"a {data.get('type') or event.event} event has no {kind.__name__} "
            f"{name or key}: {_quote(event.data)}"
        )
    return value


def _event_object(event: ServerSentEvent) -> dict[str, Any]:
    """The event's JSON object, whose `type` names it (and agrees with `event:`)."""
    try:
        data = _loads(event.data)
    except (ValueError, RecursionError):
        raise StreamError(f"invalid JSON in a Messages event: {_quote(event.data)}") from None
    if type(data) is not dict:
        raise StreamError(f"a Messages event holds no JSON object: {_quote(event.data)}")
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        raise StreamError(f"a Messages event has no type: {_quote(event.data)}")
    if event.event not in ("message", kind):
        raise StreamError(
            f"an event named {event.event!r} holds a {kind!r} event: {_quote(event.data)}"
        )
    return data


def _error_payload(data: str) -> Any:
    try:
        return _loads(data)
    except (ValueError, RecursionError):
        return {"error": {"message": data.strip() or "event: error with no data"}}


def _is_stop(event: ServerSentEvent) -> bool:
    try:
        data = _loads(event.data)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("type") == "message_stop"


def _whole_message(value: dict[str, Any], body: str) -> ChatChunk:
    """A non-streamed `message` object as one chunk: its text, tool calls, end and usage."""
    content = value.get("content")
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        raise StreamError(f"the message has no list of content blocks: {_quote(body)}")
    texts = [
        b["text"] for b in content if b.get("type") == "text" and isinstance(b.get("text"), str)
    ]
    calls = [
        ToolCallDelta(
            index=position,
            id=_str(block.get("id")),
            type="function",
            name=_str(block.get("name")),
            arguments=json.dumps(block.get("input") or {}, ensure_ascii=False),
        )
        for position, block in enumerate(b for b in content if b.get("type") == "tool_use")
    ]
    usage = value.get("usage")
    role = value.get("role")
    return ChatChunk(
        content="".join(texts) or None,
        role=role if isinstance(role, str) else "assistant",
        tool_calls=calls or None,
        finish_reason=finish_reason_of(value.get("stop_reason")),
        usage=openai_usage(usage) if isinstance(usage, dict) else None,
        data=value,
        raw=body,
    )


class AnthropicSSE(WireFormat):
    """Anthropic's Messages API: an event stream, or one `message` object when not streamed."""

    name = "anthropic-sse"
    stream_media_types = frozenset({"text/event-stream"})
    accept = "text/event-stream, application/json"

    def decoder(self) -> AnthropicSSEDecoder:
        return AnthropicSSEDecoder()

    def parse_whole(self, body: bytes) -> ChatChunk:
        text = body.removeprefix(_BOM).decode("utf-8", "replace")
        try:
            value = _loads(text)
        except (ValueError, RecursionError):
            raise StreamError(f"the answer is not valid JSON: {_quote(text)}") from None
        if not isinstance(value, dict):
            raise StreamError(f"the answer is not a JSON object: {_quote(text)}")
        if value.get("type") == "error":
            raise stream_error(value, text)
        if value.get("type") != "message":
            raise StreamError(f"the answer is not a Messages `message` object: {_quote(text)}")
        return _whole_message(value, text)

    def classify(self, content_type: str, first: bytes, *, final: bool) -> BodyKind | None:
        # The same rules as every SSE format here: the label, then the first bytes.
        return OPENAI_SSE.classify(content_type, first, final=final)


#: The one instance the Anthropic provider uses.
ANTHROPIC_SSE = AnthropicSSE()
