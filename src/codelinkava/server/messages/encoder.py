"""One answer in Anthropic's Messages wire: its stream of events, or the whole `message`.

From a provider whose chunks are an Anthropic upstream's own events
(`call.relays_anthropic_events`), each chunk goes out as the upstream sent it,
`event: {type}` over its JSON text, and a whole answer as its JSON text.

From any other provider the typed chunks are rendered, in the order Anthropic
documents (https://docs.anthropic.com/en/api/messages-streaming):
`message_start` (an empty message, the prompt's tokens as far as known), one
`ping`, then per content block a `content_block_start`, its deltas
(`text_delta`; `input_json_delta` for a tool call, whose block carries its id,
`toolu_...`, and name) and a `content_block_stop`, then `message_delta` (the
stop reason, the usage) and `message_stop`. A failure after the stream
started ends it with `event: error`. Blocks are never interleaved: a new text
or tool call closes the open block (upstreams send tool calls one after
another). Text deltas are written from a prefix computed once per block, so a
token costs one `json.dumps` of its text, as on the chat route.

Usage goes back Anthropic's way: `input_tokens` without the cached tokens,
`cache_read_input_tokens` and `cache_creation_input_tokens` when the upstream
reported them, `output_tokens`; our own count where the upstream gave none.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from codelinkava import errors
from codelinkava.chunk import AnswerBuilder, ChatChunk

from ..backend import Call
from ..encoders import make_usage
from ..errors import provider_error_response
from .errors import ANTHROPIC_ERRORS, stream_error_event

__all__ = ["MessagesEncoder", "anthropic_usage", "stop_reason", "tool_use_id"]

_SSE = b"text/event-stream; charset=utf-8"
_PING = b'event: ping\ndata: {"type": "ping"}\n\n'
_TEXT_SUFFIX = b"}}\n\n"
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
_EVENT_NAME = re.compile(r"[a-z_]{1,64}")
_STOP_REASONS = {
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


#: A JSON string literal, non-ASCII kept (what `json.dumps(text, ensure_ascii=False)`
#: writes), by the C encoder without dumps' set-up: the text fast path's one cost.
_quote: Callable[[str], str] = json.encoder.encode_basestring


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {_compact(payload)}\n\n".encode()


def tool_use_id(upstream_id: str | None) -> str:
    """A tool call's id in Anthropic's style: the upstream's behind `toolu_`, so the
    tool_result that comes back names a call the upstream can match."""
    if not upstream_id:
        return f"toolu_{secrets.token_hex(12)}"
    return upstream_id if upstream_id.startswith("toolu_") else f"toolu_{upstream_id}"


def stop_reason(
    finish: str | None, *, tools: bool, stop_sequence: str | None, refused: bool
) -> str:
    """Anthropic's stop_reason for an OpenAI finish_reason."""
    mapped = _STOP_REASONS.get(finish or "")
    if mapped is not None:
        return mapped
    if stop_sequence is not None:
        return "stop_sequence"
    if tools:  # some upstreams say "stop" after a tool call; the client loops on tool_use
        return "tool_use"
    return "refusal" if refused else "end_turn"


def anthropic_usage(
    usage: dict[str, Any] | None, pieces: int, prompt_estimate: int
) -> dict[str, Any]:
    """Anthropic's usage from OpenAI-shaped usage (ours where the upstream sent none)."""
    counted = make_usage(usage, pieces, prompt_estimate)
    details = (usage or {}).get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    creation = (usage or {}).get("cache_creation_input_tokens")
    cached = cached if isinstance(cached, int) else None
    creation = creation if isinstance(creation, int) else None
    prompt = int(counted.get("prompt_tokens") or 0)
    out: dict[str, Any] = {"input_tokens": max(0, prompt - (cached or 0) - (creation or 0))}
    if creation is not None:
        out["cache_creation_input_tokens"] = creation
    if cached is not None:
        out["cache_read_input_tokens"] = cached
    out["output_tokens"] = int(counted.get("completion_tokens") or 0)
    return out


def _parse_input(arguments: str) -> Any:
    """A tool call's input: its arguments as JSON, `{}` for none, the text itself (as the
    model wrote it) when it is not JSON."""
    if not arguments.strip():
        return {}
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def _upstream_stop(chunk: ChatChunk | None, stops: Sequence[str]) -> str | None:
    """The stop sequence that ended the answer, where the upstream says (vLLM's
    `choices[0].stop_reason`) and it is one the request gave."""
    data = chunk.data if chunk is not None else None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not stops or not isinstance(choices, list) or not choices:
        return None
    first = choices[0]
    reason = first.get("stop_reason") if isinstance(first, dict) else None
    return reason if isinstance(reason, str) and reason in stops else None


@dataclass
class _ToolCall:
    """One tool call of the answer, as its deltas arrive."""

    id: str | None = None
    name: str | None = None
    block: int = -1  # its content block, once opened
    pending: list[str] = field(default_factory=list)  # arguments before its name came


class MessagesEncoder:
    """Anthropic's Messages wire for one response (an `AnswerEncoder`)."""

    def __init__(
        self,
        model: str,
        *,
        prompt_estimate: int = 0,
        stop_sequences: Sequence[str] = (),
        request_id: str = "",
    ) -> None:
        self.id = f"msg_{secrets.token_hex(12)}"
        self.model = model
        self.prompt_estimate = prompt_estimate
        self.stop_sequences = tuple(stop_sequences)
        self.request_id = request_id.encode()
        #: Whether the call's chunks are an Anthropic upstream's own events (`raw`).
        self.relay = False
        self.pieces = 0
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.stop_sequence: str | None = None
        self.refused = False
        self._started = False
        self._open = -1  # the open block's index, -1 for none
        self._open_text = False
        self._blocks = 0
        self._text_prefix = b""
        self._calls: dict[int, _ToolCall] = {}

    def bind(self, call: Call) -> None:
        self.relay = call.relays_anthropic_events

    # streams ------------------------------------------------------------------------

    def stream_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", _SSE),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
            (b"request-id", self.request_id),
        ]

    def stream_batch(self, batch: list[ChatChunk]) -> bytes:
        if self.relay:
            return self._relayed(batch)
        parts = [] if self._started else [self._opening(batch)]
        for chunk in batch:
            content = chunk.content
            if (
                content
                and chunk.tool_calls is None
                and chunk.finish_reason is None
                and chunk.usage is None
                and chunk.refusal is None
            ):
                self.pieces += 1
                if not self._open_text:
                    parts.append(self._start_text())
                parts.append(self._text_prefix + _quote(content).encode() + _TEXT_SUFFIX)
            else:
                self._render(chunk, parts)
        return b"".join(parts)

    def _relayed(self, batch: list[ChatChunk]) -> bytes:
        """The upstream's own events, each its JSON text as it was sent."""
        parts = []
        for chunk in batch:
            if chunk.content:
                self.pieces += 1
            if chunk.usage is not None:
                self.usage = {**(self.usage or {}), **chunk.usage}
            data, raw = chunk.data, chunk.raw
            if raw is None or "\n" in raw or "\r" in raw:  # one data line per event
                if data is None:
                    continue  # nothing of the upstream's to relay
                raw = _compact(data)
            name = data.get("type") if data is not None else None
            if not isinstance(name, str) or not _EVENT_NAME.fullmatch(name):
                name = "message"  # never a line break into the stream
            parts.append(b"event: " + name.encode() + b"\ndata: " + raw.encode() + b"\n\n")
        return b"".join(parts)

    def _opening(self, batch: list[ChatChunk]) -> bytes:
        """`message_start` (an empty message) and a `ping`, as Anthropic opens a stream."""
        self._started = True
        usage = next((c.usage for c in batch if c.usage is not None), None)
        prompt = usage.get("prompt_tokens") if usage else None
        start_usage = (
            anthropic_usage(usage, 0, self.prompt_estimate)
            if isinstance(prompt, int)
            else {"input_tokens": self.prompt_estimate, "output_tokens": 0}
        )
        start_usage["output_tokens"] = 0
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        }
        return _event("message_start", {"type": "message_start", "message": message}) + _PING

    def _render(self, chunk: ChatChunk, parts: list[bytes]) -> None:
        """Any chunk but plain text: tool-call deltas, a refusal, the finish, usage."""
        if chunk.content:
            self.pieces += 1
            if not self._open_text:
                parts.append(self._start_text())
            parts.append(self._text_prefix + _compact(chunk.content).encode() + _TEXT_SUFFIX)
        if chunk.refusal:
            self.refused = True
            if not self._open_text:
                parts.append(self._start_text())
            parts.append(self._text_prefix + _compact(chunk.refusal).encode() + _TEXT_SUFFIX)
        for delta in chunk.tool_calls or ():
            self._tool_delta(delta.index, delta.id, delta.name, delta.arguments, parts)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
            self.stop_sequence = _upstream_stop(chunk, self.stop_sequences)

    def _tool_delta(
        self,
        index: int,
        id: str | None,
        name: str | None,
        arguments: str | None,
        parts: list[bytes],
    ) -> None:
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _ToolCall()
        call.id = call.id or id
        call.name = call.name or name
        if call.block < 0:
            if arguments:
                call.pending.append(arguments)
            if call.name:
                self._start_tool(call, parts)
        elif arguments:
            parts.append(self._json_delta(call.block, arguments))

    def _start_tool(self, call: _ToolCall, parts: list[bytes]) -> None:
        parts.append(self._stop_open())
        call.block = self._open = self._blocks
        self._blocks += 1
        block = {
            "type": "tool_use",
            "id": tool_use_id(call.id),
            "name": call.name or "",
            "input": {},
        }
        start = {"type": "content_block_start", "index": call.block, "content_block": block}
        parts.append(_event("content_block_start", start))
        if call.pending:
            parts.append(self._json_delta(call.block, "".join(call.pending)))
            call.pending = []

    @staticmethod
    def _json_delta(index: int, arguments: str) -> bytes:
        delta = {"type": "input_json_delta", "partial_json": arguments}
        return _event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )

    def _start_text(self) -> bytes:
        closing = self._stop_open()
        index = self._open = self._blocks
        self._blocks += 1
        self._open_text = True
        self._text_prefix = (
            'event: content_block_delta\ndata: {"type":"content_block_delta",'
            f'"index":{index},"delta":{{"type":"text_delta","text":'
        ).encode()
        start = {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "text", "text": ""},
        }
        return closing + _event("content_block_start", start)

    def _stop_open(self) -> bytes:
        """`content_block_stop` for the open block, if one is."""
        if self._open < 0:
            return b""
        index, self._open, self._open_text = self._open, -1, False
        return _event("content_block_stop", {"type": "content_block_stop", "index": index})

    def stream_end(self) -> bytes:
        """The open block's stop, `message_delta` (stop reason, usage), `message_stop`."""
        if self.relay:
            return b""  # the upstream's own message_stop went out with its events
        parts = [] if self._started else [self._opening([])]
        for call in self._calls.values():
            if call.block < 0:  # it never got a name: open it now, name and all
                self._start_tool(call, parts)
        parts.append(self._stop_open())
        reason = stop_reason(
            self.finish_reason,
            tools=bool(self._calls),
            stop_sequence=self.stop_sequence,
            refused=self.refused,
        )
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": self.stop_sequence},
            "usage": anthropic_usage(self.usage, self.pieces, self.prompt_estimate),
        }
        parts.append(_event("message_delta", delta))
        parts.append(_MESSAGE_STOP)
        return b"".join(parts)

    def stream_error(self, exc: errors.ProviderError) -> bytes:
        return stream_error_event(exc)

    # whole answers ------------------------------------------------------------------

    def whole(self, answer: AnswerBuilder, upstream: ChatChunk | None) -> bytes:
        self.usage = answer.usage
        if self.relay and upstream is not None and upstream.raw is not None:
            return upstream.raw.encode()  # the upstream's own message, as it sent it
        content: list[dict[str, Any]] = []
        text = answer.text + "".join(answer.refusal_parts)
        if text:
            content.append({"type": "text", "text": text})
        calls = answer.tool_calls
        for call in calls:
            content.append(
                {
                    "type": "tool_use",
                    "id": tool_use_id(call.id),
                    "name": call.name,
                    "input": _parse_input(call.arguments),
                }
            )
        stop = _upstream_stop(upstream, self.stop_sequences)
        message = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason(
                answer.finish_reason,
                tools=bool(calls),
                stop_sequence=stop,
                refused=bool(answer.refusal_parts),
            ),
            "stop_sequence": stop,
            "usage": anthropic_usage(answer.usage, self.pieces, self.prompt_estimate),
        }
        return json.dumps(message, ensure_ascii=False).encode()

    def whole_headers(self, body: bytes) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"request-id", self.request_id),
        ]

    def error_response(self, exc: errors.ProviderError) -> Response:
        response = provider_error_response(exc, ANTHROPIC_ERRORS)
        return response

    async def settle(self) -> None:
        return None
