"""The seed's wire format (OpenAI's): SSE events whose data are chat-completion chunks.

`data: {chunk}` lines, text in `choices[0].delta.content`, `data: [DONE]` at
the end; `{"error": ...}` or `event: error` carries an upstream failure;
keep-alives (empty data, `event: ping`, comments) are skipped. The SSE rules
live in `codelinkava.sse`, the meaning of each event in `codelinkava.chunks`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..chunk import ChatChunk
from ..chunks import ChatStreamParser, parse_whole
from ..sse import SSEDecoder
from .base import BodyKind, StreamDecoder, WireFormat, is_html, is_json

__all__ = ["OPENAI_SSE", "OpenAISSE", "OpenAISSEDecoder"]

_SSE_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":")
_BOM = b"\xef\xbb\xbf"
_BLANK = b"\r\n \t"


class OpenAISSEDecoder(StreamDecoder):
    """SSE bytes -> events -> chunks (or text), stopping at `[DONE]`."""

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._parser = ChatStreamParser()
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
        feed = parser.feed
        try:
            for event in self._sse.feed(data):
                text = feed(event)
                if text is not None:
                    yield text
                elif parser.done:
                    return
        finally:
            self._sync()

    def chunks(self, data: bytes) -> Iterator[ChatChunk]:
        parser = self._parser
        feed = parser.feed_chunk
        try:
            for event in self._sse.feed(data):
                chunk = feed(event)
                if chunk is not None:
                    yield chunk
                elif parser.done:
                    return
        finally:
            self._sync()

    def close(self) -> None:
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
