"""`MockTransport`: a transport that answers from a function, with no socket.

So client logic -- retries, time limits, decoding, errors -- can be tested on
its own, the way httpx's `MockTransport` tests a client without a server.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProviderTimeoutError, StreamTruncatedError
from .base import TransportRequest, timeout_message

__all__ = ["MockResponse", "MockTransport"]


Piece = bytes | BaseException | float
"""A body piece: bytes, an exception raised by that read, or a pause in seconds."""


@dataclass
class MockResponse:
    """A scripted answer: a status, headers and the body as pieces.

    `body` may be bytes (one piece), an iterable of pieces, or an async
    iterable of bytes. A float in the pieces is a pause of that many seconds
    (the read waits under its deadline, as a real one would); an exception
    is raised by the read that reaches it.
    """

    status: int = 200
    headers: Mapping[str, str] = field(
        default_factory=lambda: {"content-type": "text/event-stream"}
    )
    body: bytes | Iterable[Piece] | AsyncIterable[bytes] = b""
    url: str = ""
    closed: bool = field(default=False, init=False)
    finished: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._sync: list[Piece] | None = None
        self._async: Any = None
        if isinstance(self.body, bytes | bytearray):
            self._sync = [bytes(self.body)] if self.body else []
        elif isinstance(self.body, AsyncIterable):
            self._async = aiter(self.body)
        else:
            self._sync = list(self.body)
        self.bytes_read = 0

    @property
    def content_type(self) -> str:
        for name, value in self.headers.items():
            if name.lower() == "content-type":
                return value.partition(";")[0].strip().lower()
        return ""

    async def _next(self) -> bytes:
        if self._async is not None:
            return bytes(await anext(self._async, b""))
        assert self._sync is not None
        while self._sync:
            piece = self._sync.pop(0)
            if isinstance(piece, BaseException):
                raise piece
            if isinstance(piece, float | int):
                await asyncio.sleep(piece)
                continue
            return piece
        return b""

    async def read_chunk(self, deadline: float | None, phase: str) -> bytes:
        if self.closed:
            raise StreamTruncatedError("the mock response was closed")
        try:
            async with asyncio.timeout_at(deadline):
                data = await self._next()
        except TimeoutError:
            raise ProviderTimeoutError(timeout_message(phase), phase=phase) from None
        self.bytes_read += len(data)
        return data

    async def read_text(self, limit: int, deadline: float | None, head: bytes = b"") -> str:
        parts = [head]
        while sum(map(len, parts)) < limit:
            data = await self.read_chunk(deadline, "first_chunk")
            if not data:
                break
            parts.append(data)
        return b"".join(parts)[:limit].decode("utf-8", "replace")

    async def finish(self) -> None:
        self.finished = True
        self.closed = True

    def close(self) -> None:
        self.closed = True


Handler = Callable[[TransportRequest], "MockResponse | Awaitable[MockResponse]"]


class MockTransport:
    """A transport that answers each request by calling `handler(request)`, no socket.

    The handler returns a `MockResponse` (or awaits to make one) or raises one
    of our errors (a `ProviderConnectionError` to play a refused connection).
    Every request is kept in `requests`, every response in `responses`.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[TransportRequest] = []
        self.responses: list[MockResponse] = []

    async def open(
        self, request: TransportRequest, deadline: float | None, phase: str
    ) -> MockResponse:
        self.requests.append(request)
        try:
            async with asyncio.timeout_at(deadline):
                answer = self.handler(request)
                if inspect.isawaitable(answer):
                    answer = await answer
        except TimeoutError:
            raise ProviderTimeoutError(timeout_message(phase), phase=phase) from None
        assert isinstance(answer, MockResponse), "a MockTransport handler returns a MockResponse"
        answer.url = answer.url or request.url
        self.responses.append(answer)
        return answer
