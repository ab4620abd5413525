"""The source server: streams pre-rendered chat-completion chunks on 127.0.0.1.

Run as its own process (`python -m bench.source`), so it shares neither the
event loop nor the GIL with the client being measured. It prints its port on
stdout and stops when its standard input closes (so it never outlives the
bench), or after `--lifetime` seconds.

The path says what to stream: `/{n}/{delay_us}/api/chat` or
`/{n}/{delay_us}/v1/chat/completions` (any path ending in `/api/chat` or
`/chat/completions`; without the two numbers, n=20 and no delay).
`delay_us == 0` is the fast mode: the whole body, framed one HTTP chunk per
SSE event as a real server flushes them, is handed to the socket at once and
goes out as fast as the socket takes it. Otherwise each event is written
`delay_us` microseconds after the previous one (the paced mode).
`GET .../v1/models` answers a model list (gpt4free asks for it).

Echo mode, for the gateway section (whose gateways have one upstream URL
each): a path starting `/echo/` takes n and delay from the request body, which
must contain `nonce XXXXXXXX n N delay_us D` (the text of a user message, say),
and streams `payload.tagged_events(N)` with that request's nonce filled in, so
each answer can be checked to belong to its own request.

A hand-written asyncio protocol rather than a web framework: the server must
cost far less per chunk than the cheapest client it feeds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
from functools import lru_cache

from bench.payload import NONCE_SLOT, render_events, tagged_events

__all__ = ["MAX_CHUNKS", "SourceServer"]

MAX_CHUNKS = 200_000
MAX_CONNECTIONS = 4096
MAX_REQUEST_BYTES = 1 << 20
_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
)
_MODELS = json.dumps({"object": "list", "data": [
    {"id": "gpt-3.5-turbo", "object": "model", "created": 0, "owned_by": "bench"}
]}).encode()


def _frame(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


@lru_cache(maxsize=16)
def _framed(n: int) -> tuple[bytes, ...]:
    return tuple(_frame(e) for e in render_events(n))


@lru_cache(maxsize=16)
def _fast_body(n: int) -> bytes:
    return _HEAD + b"".join(_framed(n)) + b"0\r\n\r\n"


@lru_cache(maxsize=16)
def _tagged(n: int) -> tuple[tuple[bytes, ...], bytes]:
    framed = tuple(_frame(e) for e in tagged_events(n))
    return framed, _HEAD + b"".join(framed) + b"0\r\n\r\n"


_ECHO = re.compile(rb"nonce ([0-9a-f]{8}) n (\d+) delay_us (\d+)")


def _simple(status: str, body: bytes, kind: bytes = b"application/json") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        status.encode(), kind, len(body), body,
    )


def _route(path: str) -> tuple[int, int] | None:
    """(n, delay_us) for a chat path, None for anything else."""
    path = path.split("?", 1)[0]
    if not (path.endswith("/api/chat") or path.endswith("/chat/completions")):
        return None
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
        return min(int(parts[0]), MAX_CHUNKS), int(parts[1])
    return 20, 0


class _Connection(asyncio.Protocol):
    """One client connection: HTTP/1.1 with keep-alive, one request at a time."""

    open_count = 0

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a paced response is still being written
        self.pending: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _Connection.open_count += 1
        if _Connection.open_count > MAX_CONNECTIONS:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        _Connection.open_count -= 1
        if self.pending is not None:
            self.pending.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > MAX_REQUEST_BYTES and self.transport is not None:
            self.transport.close()
            return
        self._next_request()

    def _next_request(self) -> None:
        while not self.busy and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            method, path = head[0].split(" ")[:2]
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            rest = self.buf[end + 4 :]
            if headers.get("transfer-encoding", "").lower() == "chunked":
                done = rest.find(b"0\r\n\r\n")  # the bench's bodies are small JSON
                if done < 0:
                    return
                body, rest = rest[:done], rest[done + 5 :]
            else:
                length = int(headers.get("content-length", "0") or 0)
                if len(rest) < length:
                    return
                body, rest = rest[:length], rest[length:]
            self.buf = rest
            self._respond(method, path, headers.get("connection", "").lower() == "close", body)

    def _respond(self, method: str, path: str, close: bool, body: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if method == "POST" and path.startswith("/echo/"):
            self._echo(body, close)
            return
        route = _route(path) if method == "POST" else None
        if route is None:
            if method == "GET" and path.split("?")[0].endswith("/models"):
                transport.write(_simple("200 OK", _MODELS))
            else:
                transport.write(_simple("404 Not Found", b'{"error":{"message":"no such path"}}'))
            if close:
                transport.close()
            return
        n, delay_us = route
        if delay_us == 0:
            transport.write(_fast_body(n))
            if close:
                transport.close()
            return
        self.busy = True
        transport.write(_HEAD)
        self._paced(iter(_framed(n)), delay_us / 1e6, close)

    def _echo(self, body: bytes, close: bool) -> None:
        transport = self.transport
        assert transport is not None
        match = _ECHO.search(body)
        if match is None:
            transport.write(_simple("400 Bad Request", b'{"error":{"message":"no nonce"}}'))
            if close:
                transport.close()
            return
        nonce, n, delay_us = match[1], min(int(match[2]), MAX_CHUNKS), int(match[3])
        framed, whole = _tagged(n)
        if delay_us == 0:
            transport.write(whole.replace(NONCE_SLOT, nonce))
            if close:
                transport.close()
            return
        self.busy = True
        transport.write(_HEAD)
        self._paced((e.replace(NONCE_SLOT, nonce) for e in framed), delay_us / 1e6, close)

    def _paced(self, events: object, delay: float, close: bool) -> None:
        self.pending = None
        transport = self.transport
        if transport is None:
            return
        event = next(events, None)  # type: ignore[call-overload]
        if event is None:
            transport.write(b"0\r\n\r\n")
            self.busy = False
            if close:
                transport.close()
            else:
                self._next_request()
            return
        transport.write(event)
        loop = asyncio.get_running_loop()
        self.pending = loop.call_later(delay, self._paced, events, delay, close)


async def serve(port: int, lifetime: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, "127.0.0.1", port, backlog=4096)
    sock_port = server.sockets[0].getsockname()[1]
    print(sock_port, flush=True)
    stop = asyncio.Event()
    # Stop when the parent closes our stdin (or dies), whichever comes first.
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)),
                     daemon=True).start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), lifetime)
    server.close()


class SourceServer:
    """Start `python -m bench.source` in a subprocess; `.url(n, delay_us)` gives the base URL."""

    def __init__(self, python: str = sys.executable, lifetime: float = 3600.0) -> None:
        self._cmd = [python, "-m", "bench.source", "--lifetime", str(lifetime)]
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> SourceServer:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.proc = subprocess.Popen(
            self._cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.__exit__()
            raise RuntimeError("the source server did not start")
        self.port = int(line)
        return self

    def url(self, n: int, delay_us: int = 0) -> str:
        """Base URL; append `/api/chat` or `/v1` (+ `/chat/completions`)."""
        return f"http://127.0.0.1:{self.port}/{n}/{delay_us}"

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=3600.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.lifetime))


if __name__ == "__main__":
    main()
