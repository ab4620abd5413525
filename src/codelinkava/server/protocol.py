"""uvicorn's httptools protocol plus the limits it lacks: head size and read deadlines.

uvicorn waits for ever for a request's headers and body, and keeps headers of
any size: a client sending a byte a second (or nothing) holds a connection for
ever, and a 256 MiB header was accepted and held in RSS. This protocol arms a
timer when a request may begin (connection made, message begun), gives the
headers `header_timeout` seconds and the body `body_timeout` more, and refuses
a request line plus headers over `max_head_bytes` (uvicorn answers 400).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["GuardedHttpToolsProtocol"]


class _HeadTooLarge(Exception):
    """The request line and headers are over the limit."""


_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: 114\r\nconnection: close\r\n\r\n"
    b'{"error": {"message": "the request was not received in time", '
    b'"type": "invalid_request_error", "code": "timeout"}}'
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's `HttpToolsProtocol` with a head-size limit and header and body deadlines."""

    header_timeout = 10.0
    body_timeout = 30.0
    max_head_bytes = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, head=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout, head=True)

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout, head=False)
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_head_bytes:  # a head that came in one read, under the check below
            raise _HeadTooLarge  # httptools re-raises it from feed_data; uvicorn answers 400
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True  # whatever comes next is the head of the next request
        self._head_bytes = 0
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        # NOTE: counted here, not in on_header: httptools gathers a whole header value
        # before calling on_header, so a 64 MiB value would already be held by then.
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        too_large = self._in_head and self._head_bytes > self.max_head_bytes
        if too_large and not self.transport.is_closing():
            self.send_400_response("Request line and headers too large.")

    def _arm(self, seconds: float, *, head: bool) -> None:
        self._disarm()
        self._in_head = head
        self._read_timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._in_head or (cycle is not None and not cycle.response_started):
            self.transport.write(_TIMED_OUT)
        self.transport.close()  # connection_lost tells a waiting app: http.disconnect
