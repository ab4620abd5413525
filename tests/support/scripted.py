"""A scripted HTTP server on 127.0.0.1 for the client's integration tests.

Each test gets its own `aiohttp.web` server, running on a thread with its own
event loop (so a test that blocks its own loop -- `create_completion` called
from `async def` -- still gets answers). The test scripts the replies: status,
headers, and the body as a list of steps -- byte pieces written one by one,
pauses, a stall, a reset (`transport.abort()`), an early close. The server
records every request (method, path, raw headers, raw body, peer port) and
notes when the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

# The wire builders, where the suites have always found them beside the server.
from .builders import chunk, event, split_every, sse  # noqa: F401

# Body steps -------------------------------------------------------------------


@dataclass(frozen=True)
class Sleep:
    """Pause before the next step."""

    seconds: float


@dataclass(frozen=True)
class Stall:
    """Send nothing more until the client leaves (or the server stops)."""


@dataclass(frozen=True)
class Reset:
    """Drop the connection at once: `transport.abort()`, no clean end."""


@dataclass(frozen=True)
class Close:
    """Close the connection cleanly (FIN) wherever the body is."""


class _Dropped(Exception):
    """The handler ended the connection itself; aiohttp must send nothing more."""


Step = bytes | Sleep | Stall | Reset | Close

_REASONS = {int(status): status.phrase for status in HTTPStatus}

SSE_HEADERS: Mapping[str, str] = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


@dataclass
class Reply:
    """What the server answers to one request.

    `before` runs before the status line (a stall or a reset there means no
    response at all). `body` pieces are written one by one, `delay` seconds
    apart. `raw=True` writes the status line, the headers and the body
    straight to the socket -- no chunked framing, the body ends when the
    connection closes (or after `Content-Length`, if given in `headers`).
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=lambda: dict(SSE_HEADERS))
    body: Sequence[Step] = ()
    delay: float = 0.0
    before: Sequence[Step] = ()
    raw: bool = False


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    raw_headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    peer_port: int
    disconnected: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def headers(self) -> CIMultiDict[str]:
        return CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw_headers)

    def json(self) -> Any:
        return json.loads(self.body)


# The server ---------------------------------------------------------------------


class ScriptedServer:
    """An aiohttp.web server on its own thread that answers from a script."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: list[Reply] = []
        self.handler: Callable[[Recorded], Reply] | None = None
        self.port = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # scripting

    def reply(self, *replies: Reply) -> None:
        """The n-th request gets the n-th reply; the last one repeats."""
        self.script = list(replies)

    def url(self, path: str = "/api/chat") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def peer_ports(self) -> set[int]:
        return {r.peer_port for r in self.requests}

    async def wait_disconnect(self, index: int = -1, within: float = 1.0) -> float:
        """Seconds until the client of request `index` left; fails after `within` seconds."""
        start = time.monotonic()
        while time.monotonic() - start < within:
            if self.requests and self.requests[index].disconnected.is_set():
                return time.monotonic() - start
            await asyncio.sleep(0.002)
        raise AssertionError(f"the server did not see the client leave within {within}s")

    def wait_disconnect_sync(self, index: int = -1, within: float = 1.0) -> None:
        assert self.requests[index].disconnected.wait(within), "no disconnect seen"

    # the thread

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None and server.sockets
            self.port = server.sockets[0].getsockname()[1]
            self._runner = runner
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="scripted-server", daemon=True)
        self._thread.start()
        assert ready.wait(5), "the scripted server did not start"

    def stop(self) -> None:
        self._stop.set()
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            assert not self._thread.is_alive(), "the scripted server did not stop"

    # the handler

    def _next_reply(self, recorded: Recorded) -> Reply:
        if self.handler is not None:
            return self.handler(recorded)
        if not self.script:
            return Reply(body=[sse("Hello", ", world")])
        index = len(self.requests) - 1
        return self.script[min(index, len(self.script) - 1)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        recorded = Recorded(
            method=request.method,
            path=request.path_qs,
            raw_headers=tuple(request.raw_headers),
            body=await request.read(),
            peer_port=transport.get_extra_info("peername")[1],
        )
        self.requests.append(recorded)
        try:
            return await self._answer(request, transport, recorded, self._next_reply(recorded))
        except _Dropped:  # aiohttp takes a CancelledError as "client gone" and logs nothing
            raise asyncio.CancelledError from None
        except OSError:  # the client went away while we wrote
            recorded.disconnected.set()
            raise asyncio.CancelledError from None
        except Exception as exc:  # a bug in the script or in this server
            self.errors.append(exc)
            raise
        finally:
            recorded.finished.set()

    async def _steps(
        self,
        steps: Sequence[Step],
        delay: float,
        transport: asyncio.Transport,
        recorded: Recorded,
        write: Callable[[bytes], Any],
    ) -> bool:
        """Run the steps; False when the connection was dropped on purpose."""
        for number, step in enumerate(steps):
            if isinstance(step, bytes):
                if delay and number:
                    await asyncio.sleep(delay)
                if transport.is_closing():
                    recorded.disconnected.set()
                    raise ConnectionResetError("the client has gone")
                await write(step)
            elif isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Stall):
                while not self._stop.is_set():
                    if transport.is_closing():
                        recorded.disconnected.set()
                        raise ConnectionResetError("the client has gone")
                    await asyncio.sleep(0.002)
                return False
            elif isinstance(step, Reset):
                transport.abort()
                return False
            elif isinstance(step, Close):
                transport.close()
                return False
        return True

    async def _answer(
        self, request: web.Request, transport: asyncio.Transport, recorded: Recorded, reply: Reply
    ) -> web.StreamResponse:
        async def raw_write(data: bytes) -> None:
            transport.write(data)

        if not await self._steps(reply.before, 0.0, transport, recorded, raw_write):
            raise _Dropped
        if reply.raw:
            reason = _REASONS.get(reply.status, "Whatever")
            head = [f"HTTP/1.1 {reply.status} {reason}"]
            head += [f"{k}: {v}" for k, v in reply.headers.items()]
            if not any(k.lower() == "connection" for k in reply.headers):
                head.append("Connection: close")
            transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            if await self._steps(reply.body, reply.delay, transport, recorded, raw_write):
                transport.close()
            raise _Dropped  # the reply is written: aiohttp must not add its own
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        await response.prepare(request)
        if not await self._steps(reply.body, reply.delay, transport, recorded, response.write):
            raise _Dropped
        await response.write_eof()
        return response


MESSAGES = [{"role": "user", "content": "Hello, how are you?"}]


@contextlib.contextmanager
def running_server(*, check: bool = False) -> Iterator[ScriptedServer]:
    """A started `ScriptedServer`, stopped on the way out; `check`: fail the test if
    the server itself failed (a handler raised) while it ran."""
    server = ScriptedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
    if check:
        assert server.errors == [], "the scripted server failed"
