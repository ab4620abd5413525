"""How a stream ended (finish_reason, usage), for callers that need more than its text.

A provider's `create_async_generator` yields only text (the seed's contract), so
this side channel carries the rest to callers of that generator; the typed chunk
API (`create_async_chunk_batches`) carries it in the chunks themselves. It lives
below the providers and the core so both can report into it;
`codelinkava.providers.base` re-exports it as the public place to import from.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["StreamInfo", "capture_stream_info", "report_stream_info"]


@dataclass
class StreamInfo:
    """How an answer ended, for callers that need more than its text (the gateway)."""

    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


_stream_info: ContextVar[StreamInfo | None] = ContextVar("codelinkava_stream_info", default=None)


@contextmanager
def capture_stream_info() -> Iterator[StreamInfo]:
    """Collect the finish_reason and usage of the streams iterated inside the block.

    Providers yield only text (the contract), so this side channel carries the
    rest: an async generator runs in its consumer's context and fills in the
    object the consumer set up.
    """
    info = StreamInfo()
    token = _stream_info.set(info)
    try:
        yield info
    finally:
        _stream_info.reset(token)


def report_stream_info(*, finish_reason: str | None, usage: dict[str, Any] | None) -> None:
    """Called by a provider when its stream ends; a no-op unless someone is capturing."""
    info = _stream_info.get()
    if info is not None:
        info.finish_reason = finish_reason
        if usage is not None:
            info.usage = usage
