"""A transport that counts the requests it passes on to the real one (aiohttp's)."""

from __future__ import annotations

from codelinkava.transports import Response, Transport, TransportRequest, default_transport


class CountingTransport:
    """Wraps a transport; `attempts` is how many requests went out."""

    def __init__(self, inner: Transport | None = None) -> None:
        self.inner = inner or default_transport()
        self.attempts = 0

    async def open(self, request: TransportRequest, deadline: float | None, phase: str) -> Response:
        self.attempts += 1
        return await self.inner.open(request, deadline, phase)
