"""Hostile callers of the gateway: every bad request gets a clear 4xx in the documented shape
(or a closed connection) within a bounded time, with memory bounded.

The gateway here is a `codelinkava serve --provider openai` subprocess in front
of a scripted upstream, so its RSS can be read from /proc and a crash would
show as a dead process, not as a failed test thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from support.scripted import Reply, ScriptedServer, sse

from .support import MESSAGES, Served, assert_http_error, call, proc_figures, serve

LIMIT = 64 * 1024  # --max-body-bytes here, so oversized bodies stay cheap to send
#: uvicorn has no header or body timeout of its own; the fix proposed in the report adds these.
PROPOSED_HEADER_TIMEOUT = 10.0
PROPOSED_BODY_TIMEOUT = 30.0
MARGIN = 5.0


@pytest.fixture(scope="module")
def served(upstream: ScriptedServer, log_dir: Path) -> Iterator[Served]:
    args = (
        "--provider", "openai", "--base-url", upstream.url("/v1"), "--timeout", "2",
        "--max-retries", "0", "--max-body-bytes", str(LIMIT), "--log-level", "warning",
    )  # fmt: skip
    with serve(log_dir, *args) as running:
        yield running


def message_body(**extra: object) -> bytes:
    return json.dumps({"messages": MESSAGES, "stream": True, **extra}).encode()


def nested(depth: int) -> bytes:
    return b'{"messages": ' + b"[" * depth + b"]" * depth + b"}"


# name: (body bytes, content type or None, expected status(es))
HOSTILE: dict[str, tuple[bytes, str | None, int | tuple[int, ...]]] = {
    "body over the limit": (
        b'{"messages": "' + b"x" * (LIMIT + 1) + b'"}',
        "application/json",
        413,
    ),
    "JSON nested 30,000 deep": (nested(30_000), "application/json", 400),
    "objects nested 10,000 deep": (
        b'{"messages": [{"role": "user", "content": ['
        + b'{"a":' * 10_000
        + b"1"
        + b"}" * 10_000
        + b"]}]}",
        "application/json",
        400,
    ),
    "a 5,000-digit number": (
        b'{"messages": [{"role": "user", "content": "x"}], "seed": ' + b"9" * 5000 + b"}",
        "application/json",
        400,
    ),
    "NaN temperature": (
        b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}',
        "application/json",
        400,
    ),
    "10,000 messages": (
        json.dumps({"messages": [{"role": "user", "content": "hi"}] * 10_000}).encode()[:LIMIT],
        "application/json",
        (400, 413),
    ),
    "invalid UTF-8": (
        b'{"messages": [{"role": "user", "content": "\xff\xfe\xc0\xaf"}]}',
        "application/json",
        400,
    ),
    "half a UTF-8 character at the end": (b'{"messages": "\xe2\x82', "application/json", 400),
    "not JSON": (b"hello there", "application/json", 400),
    "a JSON array": (b"[]", "application/json", 400),
    "JSON null": (b"null", "application/json", 400),
    "empty body": (b"", "application/json", 400),
    "text/plain": (message_body(), "text/plain", 400),
    "form-urlencoded": (b"messages=hi&stream=true", "application/x-www-form-urlencoded", 400),
    "multipart": (
        b'--b\r\nContent-Disposition: form-data; name="messages"\r\n\r\nhi\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
        400,
    ),
    "XML": (b"<messages><m>hi</m></messages>", "application/xml", 400),
    "no messages": (b"{}", "application/json", 400),
    "a message without a role": (b'{"messages": [{"content": "x"}]}', "application/json", 400),
    "an unknown role": (
        b'{"messages": [{"role": "root", "content": "x"}]}',
        "application/json",
        400,
    ),
    "an image part": (
        json.dumps(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}
                        ],
                    }
                ]
            }
        ).encode(),
        "application/json",
        400,
    ),
    "stream is a string": (message_body(stream="yes please"), "application/json", 400),
    "max_tokens is huge": (message_body(max_tokens=10**12), "application/json", 400),
}


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_body_is_a_clear_4xx(
    served: Served, upstream: ScriptedServer, case: str, path: str
) -> None:
    upstream.reply(Reply(body=[sse("should not be asked")]))
    before = len(upstream.requests)
    data, content_type, status = HOSTILE[case]
    headers = {"Content-Type": content_type} if content_type else {}
    answer = await call(served.url, path, data=data, headers=headers, within=10)
    error = assert_http_error(answer, status)
    assert error["type"] == "invalid_request_error", error
    assert "error parsing the body" not in error["message"]  # says what is wrong instead
    assert len(upstream.requests) == before  # refused before anything went upstream


async def test_an_oversized_chunked_body_is_cut_off_at_the_limit(served: Served) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"messages": "'
        while sent < 100 * LIMIT:  # far past the limit: the gateway must stop us first
            sent += 16384
            yield b"x" * 16384

    try:
        answer = await call(served.url, data=endless(), within=10)  # type: ignore[arg-type]
    except (OSError, asyncio.IncompleteReadError) as exc:  # closed while we still sent: fine
        assert sent < 100 * LIMIT, exc
    else:
        assert_http_error(answer, 413)


async def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    served: Served,
) -> None:
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10**12}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(head)  # and no body at all
        async with asyncio.timeout(10):
            status_line = await reader.readline()
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello
        b"BREW /pot HTCPCP/1.0\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 5\r\n\r\nzzzzz\r\n",
    ],
    ids=["100k path", "TLS hello", "not HTTP", "negative length", "chunked and length"],
)
async def test_malformed_http_is_a_4xx_or_a_close(served: Served, request_line: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(request_line)
        async with asyncio.timeout(10):
            reply = await reader.read(200)  # b"" when the gateway just closes
    except ConnectionResetError:
        reply = b""
    finally:
        writer.close()
    assert reply == b"" or reply.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), reply


HEADER_FLOODS = {
    "one 100 KiB header": b"X-Big: " + b"b" * 100_000 + b"\r\n",
    "20,000 headers": b"".join(b"X-%d: y\r\n" % i for i in range(20_000)),
    "one 64 MiB header": b"X-Huge: " + b"h" * (64 * 1024 * 1024) + b"\r\n",
}


@pytest.mark.parametrize("case", list(HEADER_FLOODS))
async def test_a_header_flood_is_refused_without_holding_it(served: Served, case: str) -> None:
    rss_before, _fds = proc_figures(served.process.pid)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n" + HEADER_FLOODS[case] + b"\r\n")
        async with asyncio.timeout(10):
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            reply = await reader.read(200)
    except ConnectionError:
        # Refused and closed while we still wrote or read: a reset or a broken pipe,
        # depending on who noticed first. Both are the right answer to a flood.
        reply = b""
    finally:
        writer.close()
    rss_after, _fds = proc_figures(served.process.pid)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 4"), reply
    assert rss_after - rss_before < 16 * 1024, (rss_before, rss_after)


async def test_memory_and_fds_stay_bounded_under_a_hostile_batch(
    served: Served, upstream: ScriptedServer
) -> None:
    upstream.reply(Reply(body=[sse("ok")]))
    pid = served.process.pid
    for _warm in range(2):
        for data, content_type, _ in HOSTILE.values():
            await call(served.url, data=data, headers={"Content-Type": content_type or ""})
    rss_start, fds_start = proc_figures(pid)
    for _round in range(10):
        answers = await asyncio.gather(
            *(
                call(served.url, data=data, headers={"Content-Type": content_type or ""})
                for data, content_type, _ in HOSTILE.values()
            )
        )
        assert all(400 <= a.status < 500 for a in answers)
    await asyncio.sleep(0.2)
    rss_end, fds_end = proc_figures(pid)
    # 220 hostile requests after warm-up; measured growth: a few MiB at most.
    assert rss_end - rss_start < 64 * 1024, (rss_start, rss_end)
    assert fds_end <= fds_start + 2, (fds_start, fds_end)
    assert (await call(served.url, within=5)).text == "ok"


async def test_two_hundred_idle_connections_do_not_starve_the_gateway(
    served: Served, upstream: ScriptedServer
) -> None:
    upstream.reply(Reply(body=[sse("still", " served")]))
    idle = []
    try:
        for index in range(200):
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"[: index % 40])
            idle.append(sock)
        answer = await call(served.url, within=10)
        assert answer.status == 200 and answer.text == "still served"
        assert (await call(served.url, "/health", method="GET", within=5)).status == 200
    finally:
        for sock in idle:
            sock.close()


def closed_within(sock: socket.socket, seconds: float, feed: bytes) -> tuple[bool, bytes]:
    """Send `feed` one byte a second; (True, reply) as soon as the peer answers or closes."""
    sock.setblocking(False)
    deadline = time.monotonic() + seconds
    position = 0
    while time.monotonic() < deadline:
        if position < len(feed):
            try:
                sock.send(feed[position : position + 1])
            except OSError:
                return True, b""
            position += 1
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            try:
                reply = sock.recv(200)
            except BlockingIOError:
                time.sleep(0.05)
                continue
            except OSError:
                return True, b""
            return True, reply
    return False, b""


SLOW_LORIS = {
    "headers at one byte a second": b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
    + b"X-Slow: "
    + b"z" * 200,
    "a connection that never says anything": b"",
    "the body at one byte a second": b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
    b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n" + b" " * 400,
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(SLOW_LORIS))
def test_slow_loris_is_cut_off_within_a_bounded_time(served: Served, case: str) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        feed = SLOW_LORIS[case]
        bound = PROPOSED_HEADER_TIMEOUT + MARGIN
        if case.startswith("the body"):
            head = feed[: feed.index(b"\r\n\r\n") + 4]
            sock.sendall(head)
            feed = feed[len(head) :]
            bound = PROPOSED_BODY_TIMEOUT + MARGIN
        closed, reply = closed_within(sock, bound, feed)
    assert closed, "the gateway still holds the connection open"
    assert reply == b"" or reply.startswith(b"HTTP/1.1 4"), reply
