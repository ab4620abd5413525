"""Helpers for the reliability suite: a raw HTTP caller, SSE reading, `codelinkava serve` runs.

Everything talks to 127.0.0.1 only, and every wait has a deadline so a hang
fails the test instead of blocking the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

MESSAGES = [{"role": "user", "content": "Hello"}]
#: Variables that would make the gateway pick another provider, key or model.
CONFIG_ENV = (
    "CODELINKAVA_API_URL",
    "CODELINKAVA_API_KEY",
    "CODELINKAVA_MODEL_PATH",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
)


@dataclass
class Answer:
    """One HTTP answer, read whole (or until the connection broke)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    broke: str | None = None  # why reading stopped early, if it did

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def events(self) -> list[str]:
        """The `data:` payloads of an event-stream body."""
        return [
            line[5:].strip()
            for line in self.body.decode("utf-8", "replace").splitlines()
            if line.startswith("data:")
        ]

    @property
    def text(self) -> str:
        """The text of the content chunks of an event-stream body."""
        out = []
        for data in self.events:
            if data == "[DONE]":
                continue
            chunk = json.loads(data)
            for choice in chunk.get("choices") or []:
                out.append((choice.get("delta") or {}).get("content") or "")
        return "".join(out)


def assert_error_shape(value: Any) -> dict[str, Any]:
    """The documented error shape: `{"error": {"message", "type", "code"}}`; returns `error`."""
    assert isinstance(value, dict) and set(value) == {"error"}, value
    error = value["error"]
    assert isinstance(error, dict), value
    assert {"message", "type", "code"} <= set(error), value
    assert isinstance(error["message"], str) and error["message"], value
    assert isinstance(error["type"], str) and error["type"], value
    assert error["code"] is None or isinstance(error["code"], str), value
    return error


def assert_in_stream_error(answer: Answer) -> dict[str, Any]:
    """A 200 stream that carried text, then `{"error": ...}`, then `[DONE]`; returns `error`."""
    assert answer.status == 200, answer
    assert answer.broke is None, answer
    events = answer.events
    assert len(events) >= 3, events
    assert events[-1] == "[DONE]", events
    assert json.loads(events[0])["object"] == "chat.completion.chunk", events
    return assert_error_shape(json.loads(events[-2]))


def assert_http_error(answer: Answer, status: int | tuple[int, ...]) -> dict[str, Any]:
    """A non-2xx JSON answer in the documented shape; returns `error`."""
    statuses = (status,) if isinstance(status, int) else status
    assert answer.status in statuses, answer
    assert answer.headers.get("content-type", "").startswith("application/json"), answer
    return assert_error_shape(answer.json())


async def call(
    base: str,
    path: str = "/v1/chat/completions",
    body: Any = None,
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
    within: float = 15.0,
) -> Answer:
    """One request on a fresh connection; the answer read whole within `within` seconds."""
    if body is None and data is None and method == "POST":
        body = {"model": "m", "messages": MESSAGES, "stream": True}
    if data is None and body is not None:
        data = json.dumps(body).encode()
    sent = {"Content-Type": "application/json"} if data is not None else {}
    sent.update(headers or {})
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        asyncio.timeout(within),
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, base + path, data=data, headers=sent) as response,
    ):
        parts: list[bytes] = []
        broke = None
        try:
            async for piece in response.content.iter_any():
                parts.append(piece)
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            broke = f"{type(exc).__name__}: {exc}"
        headers = {k.lower(): v for k, v in response.headers.items()}
        return Answer(response.status, headers, b"".join(parts), broke)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def healthy(url: str, within: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=within) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Served:
    """A running `codelinkava serve` subprocess and the file its output goes to."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    args: tuple[str, ...] = field(default=())

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, within: float = 15.0) -> int:
        """Signal it and wait; SIGKILL if it outlives `within`. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(within)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def start_serve(
    log_dir: Path, *args: str, port: int | None = None, within: float = 60.0, **env: str
) -> Served:
    """`codelinkava serve --port P ARGS` started and answering /health (or an error raised)."""
    port = port or free_port()
    log = log_dir / f"serve-{port}-{time.monotonic_ns()}.log"
    command = [sys.executable, "-m", "codelinkava.cli", "serve", "--port", str(port), *args]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=clean_env(**env)
        )
    served = Served(f"http://127.0.0.1:{port}", port, process, log, tuple(args))
    deadline = time.monotonic() + within
    while not healthy(served.url, 0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            served.stop(signal.SIGKILL)
            raise RuntimeError(f"`codelinkava serve` did not come up:\n{served.output()}")
        time.sleep(0.05)
    return served


@contextmanager
def serve(log_dir: Path, *args: str, **env: str) -> Iterator[Served]:
    """A `codelinkava serve` subprocess for the block; always stopped (SIGTERM, then SIGKILL)."""
    served = start_serve(log_dir, *args, **env)
    try:
        yield served
    finally:
        served.stop()


def proc_figures(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open file descriptors) of a process, from /proc."""
    rss = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))
