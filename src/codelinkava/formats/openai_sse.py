"""The seed's wire format (OpenAI's): SSE events whose data are chat-completion chunks.

`data: {chunk}` lines, text in `choices[0].delta.content`, `data: [DONE]` at
the end; `{"error": ...}` or `event: error` carries an upstream failure;
keep-alives (empty data, `event: ping`, comments) are skipped. The SSE rules
live in `codelinkava.sse`, the meaning of each event in `codelinkava.chunks`.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..chunk import ChatChunk
from .base import BodyKind, StreamDecoder, WireFormat, is_html, is_json
from .openai_chunks import ChatStreamParser, parse_whole
from .sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder

__all__ = ["OPENAI_SSE", "OpenAISSE", "OpenAISSEDecoder"]

T = TypeVar("T")
_SSE_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":")
_BOM = codecs.BOM_UTF8
_BLANK = b"\r\n \t"


class OpenAISSEDecoder(StreamDecoder):
    """SSE bytes -> events -> chunks (or text), stopping at `[DONE]`.

    Most streams are made of one-line `data: {...}` events ended by a blank
    line and nothing else; for them a fast path splits each read on blank
    lines and hands each event's data straight to the chunk parser, which
    costs a fifth of the general decoder (bench/FINDINGS.md). Any other event
    -- a comment, a named event, several data lines, no space after the colon
    -- goes through `SSEDecoder` on its own; a CR anywhere, or an event past the
    size limit, hands the rest of the stream to it for good. The result is the
    same event for event: the fast path only skips work the general rules would
    do for nothing.
    """

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._parser = ChatStreamParser()
        self._pending = b""
        self._general = False  # the rest of the stream goes through SSEDecoder
        self.done = False
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    def _sync(self) -> None:
        """Take the parser's view of the end (once per network read, not per event)."""
        parser = self._parser
        self.done = parser.done
        self.finish_reason = parser.finish_reason
        self.usage = parser.usage

    def texts(self, data: bytes) -> Iterator[str]:
        parser = self._parser
        return self._items(data, parser.text_of, parser.feed)

    def chunks(self, data: bytes) -> Iterator[ChatChunk]:
        parser = self._parser
        return self._items(data, parser.chunk_of, parser.feed_chunk)

    def _items(
        self,
        data: bytes,
        of_data: Callable[[str], T | None],
        of_event: Callable[[ServerSentEvent], T | None],
    ) -> Iterator[T]:
        parser = self._parser
        try:
            blocks = self._blocks(data)
            general = self._general  # the whole read is one piece for SSEDecoder
            for block in blocks:
                if not general and block[:6] == b"data: " and b"\n" not in block:
                    item = of_data(block[6:].decode("utf-8", "replace"))
                    if item is not None:
                        yield item
                    elif parser.done:
                        return
                    continue
                for event in self._sse.feed(block if general else block + b"\n\n"):
                    item = of_event(event)
                    if item is not None:
                        yield item
                    elif parser.done:
                        return
        finally:
            self._sync()

    def _blocks(self, data: bytes) -> list[bytes]:
        """The complete events this read finishes, as blocks without their blank line.

        In general mode the whole read (with anything held back) is one piece for
        SSEDecoder, passed on as it is.
        """
        if not self._general:
            buffer = self._pending + data if self._pending else data
            if b"\r" not in buffer and len(buffer) <= DEFAULT_MAX_EVENT_SIZE:
                end = buffer.rfind(b"\n\n")
                if end < 0:
                    self._pending = buffer
                    return []
                self._pending = buffer[end + 2 :]
                return [block for block in buffer[:end].split(b"\n\n") if block]
            self._general = True
            self._pending = b""
            data = buffer
        return [data]

    def close(self) -> None:
        if self._pending:
            self._sse.feed(self._pending)  # no blank line in it: completes no event
            self._pending = b""
        self._sse.close()
        try:
            self._parser.check_end(self._sse.discarded)
        finally:
            self._sync()


class OpenAISSE(WireFormat):
    """The format every HTTP provider here speaks."""

    name = "openai-sse"
    stream_media_types = frozenset({"text/event-stream"})
    accept = "text/event-stream, application/json"

    def decoder(self) -> OpenAISSEDecoder:
        return OpenAISSEDecoder()

    def parse_whole(self, body: bytes) -> ChatChunk:
        return parse_whole(body.removeprefix(_BOM).decode("utf-8", "replace"))

    def classify(self, content_type: str, first: bytes, *, final: bool) -> BodyKind | None:
        if content_type == "text/event-stream":
            # ...unless the body is JSON (an error, most often) or a page under that label
            return "other" if is_html(first) else ("whole" if is_json(first) else "stream")
        # The label may lie: sniff the first bytes.
        sniffed = _looks_like_sse(first)
        if sniffed is None:
            if not final:
                return None
            sniffed = True  # blank lines only: legal SSE, and the decoder is linear
        if sniffed:
            return "stream"
        if content_type == "application/json" or content_type.endswith("+json") or is_json(first):
            return "whole"
        return "other"


def _looks_like_sse(first: bytes) -> bool | None:
    """Whether a body starting with `first` is an event stream; None while too short to tell."""
    head = first.removeprefix(_BOM).lstrip(_BLANK)
    if not head or _BOM.startswith(first):
        return None
    for start in _SSE_STARTS:
        if head.startswith(start):
            return True
        if start.startswith(head):
            return None
    return False


#: The one instance providers use.
OPENAI_SSE = OpenAISSE()
