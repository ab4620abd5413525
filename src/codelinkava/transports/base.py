"""The transport seam: how the core sends one request and reads its answer.

The streaming core never imports aiohttp; it talks to a `Transport` it is
given (`transport=` per call, or a provider's default), the way httpx takes
`transport=`. The implementations: aiohttp's (`transports/aiohttp.py`, the
default, imported on first use) and `MockTransport` (`transports/mock.py`).

A transport raises only our errors: `ProviderConnectionError`,
`ProviderTimeoutError` (with its phase), `InvalidRequestError`; a response's
`read_chunk` raises `StreamTruncatedError` when the connection breaks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Response", "Transport", "TransportRequest", "timeout_message"]


@dataclass(frozen=True, slots=True)
class TransportRequest:
    """One request on the wire."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    proxy: str | None = None
    #: aiohttp's socket-connect limit, in seconds (None: none).
    connect_timeout: float | None = None


@runtime_checkable
class Response(Protocol):
    """An answer whose status and headers are in, and whose body is read piece by piece."""

    status: int
    headers: Mapping[str, str]
    url: str

    @property
    def content_type(self) -> str:
        """The media type, lower case, without parameters ('' when none)."""

    async def read_chunk(self, deadline: float | None, phase: str) -> bytes:
        """The next piece of the body (b"" at its end), waiting at most until `deadline`
        (loop time); raises ProviderTimeoutError(phase) then, StreamTruncatedError on a
        broken connection."""

    async def read_text(self, limit: int, deadline: float | None, head: bytes = b"") -> str:
        """Up to `limit` bytes of the body after `head` as text, for error messages."""

    async def finish(self) -> None:
        """The stream is done: drain what is left so the connection can be reused."""

    def close(self) -> None:
        """Drop the connection now (safe to call twice)."""


class Transport(Protocol):
    """Sends a request; returns once the status line and headers are in."""

    async def open(self, request: TransportRequest, deadline: float | None, phase: str) -> Response:
        """Raise ProviderConnectionError / ProviderTimeoutError(phase) / InvalidRequestError."""


def timeout_message(phase: str) -> str:
    return {
        "connect": "could not connect in time (connect timeout)",
        "first_chunk": "no answer arrived in time (first-chunk timeout)",
        "idle": "the stream went silent for longer than the idle timeout",
        "total": "the answer took longer than the total timeout",
    }.get(phase, "timed out")
