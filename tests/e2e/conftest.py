"""End-to-end fixtures: `codelinkava serve` as a real subprocess on 127.0.0.1, the real model.

Each gateway is started once per session (the model loads in ~0.1 s, the
imports take a second or two) and stopped with SIGTERM, then SIGKILL if it
lingers. Helpers for the in-process gateway and the scripted upstream come
from the shared helpers (`support.live_gateway`, `support.scripted`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from codelinkava import LocalModel
from codelinkava.server import GatewaySettings
from support.live_gateway import LiveGateway, live_gateway
from support.scripted import ScriptedServer, running_server

API_KEY = "e2e-secret-key"
MODEL = LocalModel.default_model
START_WITHIN = 60.0
#: Variables that would make the CLI or the gateway pick another provider, key or model.
_CONFIG_ENV = (
    "CODELINKAVA_API_URL",
    "CODELINKAVA_API_KEY",
    "CODELINKAVA_MODEL_PATH",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
)


def clean_env() -> dict[str, str]:
    """The environment of a fresh shell: nothing configured, output unbuffered."""
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def cli(*args: str) -> list[str]:
    """The command line that runs `codelinkava ARGS` with this interpreter."""
    return [sys.executable, "-m", "codelinkava.cli", *args]


@dataclass
class Gateway:
    """A running `codelinkava serve` subprocess."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def run_gateway(
    log_dir: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Gateway]:
    """`codelinkava serve --port <free> ARGS`, up (its /health answers) for the block;
    `env` adds variables to a clean environment."""
    port = free_port()
    log = log_dir / f"gateway-{port}.log"
    command = cli("serve", "--port", str(port), "--grace", "1", "--log-level", "warning", *args)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env={**clean_env(), **(env or {})}
        )
    gateway = Gateway(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + START_WITHIN
        while not _healthy(gateway.url):
            if process.poll() is not None:
                raise RuntimeError(
                    f"the gateway exited ({process.returncode}):\n{gateway.output()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not answer /health:\n{gateway.output()}")
            time.sleep(0.05)
        yield gateway
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateways")


@pytest.fixture(scope="session")
def gateway(log_dir: Path) -> Iterator[Gateway]:
    """The default gateway: local model, no key."""
    with run_gateway(log_dir) as running:
        yield running


@pytest.fixture(scope="session")
def keyed_gateway(log_dir: Path) -> Iterator[Gateway]:
    """The local model behind `--api-key`."""
    with run_gateway(log_dir, "--api-key", API_KEY) as running:
        yield running


@pytest.fixture(scope="session")
def limited_gateway(log_dir: Path) -> Iterator[Gateway]:
    """One stream at a time, bodies of at most 4 KiB."""
    with run_gateway(log_dir, "--max-concurrency", "1", "--max-body-bytes", "4096") as running:
        yield running


@pytest.fixture(scope="session")
def upstream() -> Iterator[ScriptedServer]:
    """A scripted OpenAI-compatible upstream on 127.0.0.1 (tests set its handler)."""
    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def proxy_gateway(log_dir: Path, upstream: ScriptedServer) -> Iterator[Gateway]:
    """The gateway as a proxy: `--provider openai` in front of the scripted upstream."""
    args = ("--provider", "openai", "--base-url", upstream.url("/v1"))
    with run_gateway(log_dir, *args, "--timeout", "1", "--max-retries", "0") as running:
        yield running


@pytest.fixture(scope="session")
def local_gateway() -> Iterator[LiveGateway]:
    """The local-model gateway in this process, so tests can read the engine's job records."""
    with live_gateway(GatewaySettings(provider="local", api_key=None)) as running:
        yield running
