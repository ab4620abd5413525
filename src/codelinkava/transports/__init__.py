"""How the core sends a request and reads its answer: the `Transport` seam and its
implementations, as httpx arranges its own.

- `base`: the protocol (`Transport`, `Response`, `TransportRequest`), no I/O;
- `aiohttp`: `AiohttpTransport`, the default, the only module that imports aiohttp;
- `mock`: `MockTransport`, answers from a function, for tests.

`default_transport()` makes aiohttp's on first use, so importing the library
does not import aiohttp.
"""

from __future__ import annotations

from .base import Response, Transport, TransportRequest, timeout_message
from .mock import MockResponse, MockTransport

__all__ = [
    "MockResponse",
    "MockTransport",
    "Response",
    "Transport",
    "TransportRequest",
    "default_transport",
    "timeout_message",
]

_default: Transport | None = None


def default_transport() -> Transport:
    """aiohttp's transport, made on first use (keeps `import codelinkava` light)."""
    global _default
    if _default is None:
        from .aiohttp import AiohttpTransport

        _default = AiohttpTransport()
    return _default
