"""The default transport (`AiohttpTransport`): the only module that imports aiohttp.

It opens a request, enforces the time limits on each wait, turns every
aiohttp/asyncio exception into one of ours (`translate_error`), and keeps one pooled
`ClientSession` per event loop so repeated requests reuse connections.

Sessions and loops: a session belongs to the loop that made it. We keep one
per running loop and close it when that loop shuts down, by parking a tiny
async generator on the loop: `asyncio.run`, `asyncio.Runner` and
pytest-asyncio all call `loop.shutdown_asyncgens()` before closing, which
finalises it and closes the session -- no background task, no
"Unclosed client session" warning, and no session outliving its loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp

from ..errors import (
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ResponseStatusError,
    StreamTruncatedError,
)
from .base import TransportRequest, timeout_message

__all__ = [
    "AiohttpResponse",
    "AiohttpTransport",
    "aclose_session",
    "get_session",
    "translate_error",
]

#: Connections kept per loop; 1,000 concurrent streams on one loop stay pooled.
POOL_LIMIT = 1024
#: After [DONE], how long to wait for the end of the body so the connection can be reused.
_DRAIN_SECONDS = 0.25
_DRAIN_BYTES = 64 * 1024

_sessions: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, Any]
] = weakref.WeakKeyDictionary()


async def _session_guard(
    loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        # The entry's value holds the loop (the session does), so the weak key
        # alone would never let the loop go: drop the entry ourselves.
        entry = _sessions.get(loop)
        if entry is not None and entry[0] is session:
            del _sessions[loop]
        await session.close()


async def get_session() -> aiohttp.ClientSession:
    """The pooled session of the running loop, made on first use."""
    loop = asyncio.get_running_loop()
    entry = _sessions.get(loop)
    if entry is not None and not entry[0].closed:
        return entry[0]
    for other in [other for other in _sessions if other.is_closed()]:
        del _sessions[other]  # closed without shutdown_asyncgens(): let it be collected
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=POOL_LIMIT, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=None),
        trust_env=False,
    )
    guard = _session_guard(loop, session)
    await guard.__anext__()  # now registered with the loop's shutdown_asyncgens()
    _sessions[loop] = (session, guard)
    return session


async def aclose_session() -> None:
    """Close the running loop's pooled session now (it is remade on next use)."""
    entry = _sessions.pop(asyncio.get_running_loop(), None)
    if entry is not None:
        await entry[1].aclose()


def _host(url: str) -> str:
    try:
        from yarl import URL

        parsed = URL(url)
        return f"{parsed.host}:{parsed.port}" if parsed.host else url
    except (ValueError, TypeError):
        return url


class AiohttpResponse:
    """A response whose body is read piece by piece under our time limits."""

    __slots__ = (
        "_content",
        "_deadline",
        "_expired",
        "_raw",
        "_timer",
        "_waiter",
        "bytes_read",
        "headers",
        "status",
        "url",
    )

    def __init__(self, raw: aiohttp.ClientResponse, url: str) -> None:
        self._raw = raw
        self._content = raw.content
        self.status = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.url = url
        self.bytes_read = 0
        # One lazily re-armed timer per response (see _wait_until).
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Task[Any] | None = None
        self._expired = False

    @property
    def content_type(self) -> str:
        return self._raw.content_type.lower()

    async def read_chunk(self, deadline: float | None, phase: str) -> bytes:
        """The next piece of the body (b"" at its end), waiting at most until `deadline`."""
        content = self._content
        try:
            # Fast path, no timer: bytes already buffered are returned at once.
            data = content.read_nowait()
            if not data and not content.at_eof():
                if deadline is None:
                    data = await content.readany()
                else:
                    data = await self._wait_until(deadline)
        except TimeoutError:
            raise ProviderTimeoutError(timeout_message(phase), phase=phase) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError) as exc:
            raise StreamTruncatedError(
                f"the connection to {_host(self.url)} broke after {self.bytes_read} bytes of the "
                f"stream ({type(exc).__name__}: {exc}); the answer is cut off"
            ) from exc
        self.bytes_read += len(data)
        return data

    async def _wait_until(self, deadline: float) -> bytes:
        """`readany()` that raises TimeoutError at `deadline`.

        Why not `asyncio.timeout_at` per read: that pushes and cancels a timer on
        the loop's heap for every piece, ~10 us per chunk of a paced stream
        (bench/FINDINGS.md). Here one timer serves the whole response: it is armed
        only when none is pending or the deadline moved earlier; when it fires
        early (the deadline moved later) it re-arms once, and when the deadline
        has passed it cancels the waiting task, which we turn into TimeoutError.
        """
        task = asyncio.current_task()
        assert task is not None
        self._deadline = deadline
        self._waiter = task
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)
        cancelling = task.cancelling()
        try:
            return await self._content.readany()
        except asyncio.CancelledError:
            if self._expired:
                self._expired = False
                if task.uncancel() <= cancelling:
                    raise TimeoutError from None
            raise
        finally:
            self._waiter = None

    def _on_timer(self) -> None:
        self._timer = None
        task = self._waiter
        if task is None:
            return  # nobody waits now; the next wait arms a new timer
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._on_timer)
            return
        self._expired = True
        task.cancel()

    async def read_text(self, limit: int, deadline: float | None, head: bytes = b"") -> str:
        """Up to `limit` bytes of the body (after `head`, already read) as text, for errors."""
        parts = [head]
        size = len(head)
        try:
            while size < limit:
                data = await self.read_chunk(deadline, "first_chunk")
                if not data:
                    break
                parts.append(data)
                size += len(data)
        except (ProviderTimeoutError, StreamTruncatedError):
            pass  # an error body that stalls or breaks still tells what we have of it
        # Not `ClientResponse.get_encoding()`: without a charset it wants the whole body read.
        data = b"".join(parts)[:limit]
        try:
            return data.decode(self._raw.charset or "utf-8", "replace")
        except LookupError:  # a charset Python does not know
            return data.decode("utf-8", "replace")

    async def finish(self) -> None:
        """Read the end of a finished stream so the connection goes back to the pool."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _DRAIN_SECONDS
        drained = 0
        try:
            while drained < _DRAIN_BYTES:
                data = await self.read_chunk(deadline, "idle")
                if not data:
                    self._raw.release()
                    return
                drained += len(data)
        except (ProviderTimeoutError, StreamTruncatedError):
            pass
        self.close()

    def close(self) -> None:
        """Drop the connection at once (safe to call twice)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._raw.close()


def translate_error(
    exc: BaseException, url: str, *, phase: str, connect_timeout: float | None = None
) -> ProviderError:
    """The one place an aiohttp/asyncio/OS exception from sending a request becomes ours.

    Order matters: aiohttp's timeout and connector errors are also OSError or
    TimeoutError, so the specific clauses come first.
    """
    if isinstance(exc, aiohttp.ServerTimeoutError):
        # aiohttp's own sock_connect limit (also a TimeoutError).
        return ProviderTimeoutError(
            f"could not connect to {_host(url)} within {connect_timeout}s (connect timeout)",
            phase="connect",
        )
    if isinstance(exc, TimeoutError):
        return ProviderTimeoutError(timeout_message(phase), phase=phase)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return InvalidRequestError(f"invalid URL {url!r}: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProviderConnectionError(f"cannot connect to {_host(url)}: {exc.os_error}")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ProviderConnectionError(
            f"the connection to {_host(url)} failed before a response: {type(exc).__name__}: {exc}"
        )
    if isinstance(exc, ValueError):  # a header aiohttp refuses to send (a newline in it, say)
        return InvalidRequestError(f"cannot send the request: {exc}")
    return ProviderConnectionError(
        f"the request to {_host(url)} failed: {type(exc).__name__}: {exc}"
    )


class AiohttpTransport:
    """The default transport: aiohttp, one pooled session per event loop."""

    async def open(
        self, request: TransportRequest, deadline: float | None, phase: str
    ) -> AiohttpResponse:
        """Send one request and return once the status and headers are in."""
        session = await get_session()
        url = request.url
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=request.connect_timeout)
        try:
            async with asyncio.timeout_at(deadline):
                raw = await session.request(
                    request.method,
                    url,
                    data=request.body or None,
                    headers=request.headers,
                    proxy=request.proxy,
                    timeout=timeout,
                )
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise translate_error(
                exc, url, phase=phase, connect_timeout=request.connect_timeout
            ) from exc
        if raw.history and raw.method != request.method:
            # aiohttp follows 301/302/303 by turning the POST into a bodiless GET: the
            # conversation would be lost without a word. (307/308 keep the POST.)
            moved = raw.history[0]
            raw.close()
            raise ResponseStatusError(
                f"HTTP {moved.status} from {url}: moved to "
                f"{moved.headers.get('Location', '?')!r}; a POST redirected this way loses "
                "its body, so point the client at the new URL",
                status=moved.status,
            )
        return AiohttpResponse(raw, url)
