"""Fixtures for the scaling tests: a real redis-server per test, a scripted upstream,
a directory for the logs of gateway processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.scripted import ScriptedServer, running_server

from .support import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own on 127.0.0.1 (empty, no persistence); stopped after."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def upstream() -> Iterator[ScriptedServer]:
    """A scripted OpenAI-compatible upstream on 127.0.0.1 (each test scripts it)."""
    with running_server(check=True) as server:
        yield server


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "logs"
    directory.mkdir()
    return directory
