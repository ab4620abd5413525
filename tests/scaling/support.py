"""Helpers for the scaling tests: a real redis-server, gateway processes, metrics parsing.

Everything listens on 127.0.0.1 on a port picked here, and every wait has a
deadline, so a process that does not come up fails the test instead of hanging it.
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
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).parent
#: Variables that would make a gateway pick another provider, key, model or metrics mode.
CONFIG_ENV = (
    "CODELINKAVA_API_URL",
    "CODELINKAVA_API_KEY",
    "CODELINKAVA_MODEL_PATH",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "PROMETHEUS_MULTIPROC_DIR",
)
START_WITHIN = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def stop_process(process: subprocess.Popen[Any], within: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(within)


async def wait_async(condition: Callable[[], Awaitable[bool]], within: float) -> None:
    """Await `condition()` until it is true; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s: {condition}")
        await asyncio.sleep(0.02)


# Redis ------------------------------------------------------------------------------


def redis_answers(port: int, within: float = 0.5) -> bool:
    """PING over a raw socket: True on +PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=within) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server process on 127.0.0.1: no persistence, stopped and restarted at will
    (on the same port, so clients configured with its URL find it again)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        for _ in range(5):  # a port picked free may be taken before redis binds it
            port = self.port or free_port()
            if self._start_on(port):
                self.port = port
                return
            if self.port:
                break
        raise RuntimeError(f"redis-server did not start:\n{self.log.read_text(errors='replace')}")

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    def _start_on(self, port: int) -> bool:
        command = [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no",
        ]  # fmt: skip
        with self.log.open("ab") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not redis_answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process(process)
                return False
            time.sleep(0.01)
        self.process = process
        return True

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


# Gateway processes ------------------------------------------------------------------


def healthy(url: str, within: float = 1.0) -> dict[str, Any] | None:
    """The gateway's /health answer, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=within) as response:
            health: dict[str, Any] = json.loads(response.read())
            return health
    except (urllib.error.URLError, OSError, ValueError):
        return None


@dataclass
class GatewayProcess:
    """`tests/scaling/gateway_process.py` running on its own port."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def health(self) -> dict[str, Any]:
        answer = healthy(self.url)
        assert answer is not None, f"the gateway does not answer:\n{self.output()}"
        return answer


def start_gateway(log_dir: Path, upstream: str, *args: str, **env: str) -> GatewayProcess:
    """A gateway process in front of `upstream` (a base URL), answering /health."""
    port = free_port()
    log = log_dir / f"gateway-{port}.log"
    command = [
        sys.executable, str(HERE / "gateway_process.py"),
        "--port", str(port), "--upstream", upstream, *args,
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=child_env(**env)
        )
    gateway = GatewayProcess(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + START_WITHIN
    while healthy(gateway.url, 0.5) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"the gateway did not come up:\n{gateway.output()}")
        time.sleep(0.05)
    return gateway


@contextmanager
def gateways(
    log_dir: Path, upstream: str, *args: str, count: int = 2, **env: str
) -> Iterator[list[GatewayProcess]]:
    """`count` gateway processes with the same arguments; all stopped afterwards."""
    started: list[GatewayProcess] = []
    try:
        for _ in range(count):
            started.append(start_gateway(log_dir, upstream, *args, **env))
        yield started
    finally:
        for gateway in started:
            stop_process(gateway.process)


# Metrics ----------------------------------------------------------------------------


def metric(text: str, sample: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of the samples named `sample` whose labels include `labels`, parsed by
    prometheus-client's own parser (so the exposition must be valid)."""
    wanted = dict(labels or {})
    total = 0.0
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == sample and wanted.items() <= found.labels.items():
                total += found.value
    return total


def metric_names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}
