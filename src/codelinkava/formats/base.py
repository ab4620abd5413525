"""The wire-format seam: what a format must say for the core to stream it.

The core (`codelinkava._chat`) sends a request, checks its status, and hands
the body's bytes to the provider's `WireFormat`. A new format -- NDJSON, an
`event:`-typed stream, anything -- is one module with a `WireFormat` and its
`StreamDecoder`, plus a provider that names it in its `ChatRequest`; the core
does not change (docs/architecture.md walks through one).

Both classes are pure: bytes in, chunks out, no I/O, no clock.
"""

from __future__ import annotations

import codecs
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, Literal

from ..chunk import ChatChunk

__all__ = ["BodyKind", "StreamDecoder", "WireFormat", "is_html", "is_json"]

BodyKind = Literal["stream", "whole", "other"]
_BOM = codecs.BOM_UTF8
_BLANK = b"\r\n \t"


def _head(first: bytes) -> bytes:
    return first[:64].removeprefix(_BOM).lstrip(_BLANK)


def is_json(first: bytes) -> bool:
    """The body starts like a JSON object (after a BOM and blank space)."""
    return _head(first)[:1] == b"{"


def is_html(first: bytes) -> bool:
    """The body starts like markup: an error page, most often."""
    return _head(first)[:1] == b"<"


class StreamDecoder(ABC):
    """Turns one streamed body into chunks, piece by piece; made fresh per response.

    `chunks` is the whole view; `texts` the text-only view, which a format may
    make cheaper (the seed's `create_async_generator` uses it). Both raise our
    `StreamError` family for a body that breaks the format, after yielding
    everything that came before the fault.
    """

    #: The format's own end marker was seen (`[DONE]`): read no further.
    done: bool = False
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    #: True while the stream has carried nothing of the answer (Anthropic's
    #: `message_start` and `ping`). The core holds such chunks back, so a status the
    #: stream reports meanwhile (a `ResponseStatusError`: overloaded, rate limited) is
    #: retried like that status; nothing had reached the caller yet.
    before_answer: bool = False

    @abstractmethod
    def chunks(self, data: bytes) -> Iterator[ChatChunk]:
        """The chunks completed by this piece of the body."""

    def texts(self, data: bytes) -> Iterator[str]:
        """The text the chunks completed by this piece carry (non-empty pieces only)."""
        for chunk in self.chunks(data):
            if chunk.content:
                yield chunk.content

    @abstractmethod
    def close(self) -> None:
        """End of input: raise StreamTruncatedError unless the stream said it had finished."""


class WireFormat(ABC):
    """A wire format: how to recognise an answer in it and how to decode one."""

    #: A short name for messages and docs.
    name: str = "format"
    #: Content types that label a stream of this format.
    stream_media_types: frozenset[str] = frozenset()
    #: What the request's `Accept` header should say.
    accept: str = "*/*"

    @abstractmethod
    def decoder(self) -> StreamDecoder:
        """A fresh decoder for one streamed body."""

    @abstractmethod
    def parse_whole(self, body: bytes) -> ChatChunk:
        """A non-streamed answer (one JSON document) as one chunk; raises StreamError."""

    def classify(self, content_type: str, first: bytes, *, final: bool) -> BodyKind | None:
        """What a 2xx body starting with `first` is: a stream, a whole answer, or neither.

        None means too few bytes to tell; the core reads more and asks again,
        with `final=True` once it will read no more before deciding. The
        default trusts the label, then takes a JSON object as a whole answer.
        """
        if content_type in self.stream_media_types and not is_html(first):
            return "stream"
        if content_type == "application/json" or content_type.endswith("+json"):
            return "whole"
        if not first.strip() and not final:
            return None
        return "whole" if is_json(first) else "other"
