"""Fixtures for the routing tests: several scripted upstreams per test, each a real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from support.fixtures import _clean_env, closed_port
from support.scripted import ScriptedServer

__all__ = ["_clean_env", "closed_port", "upstreams"]  # the first two: shared (support.fixtures)


@pytest.fixture
def upstreams() -> Iterator[Callable[[int], list[ScriptedServer]]]:
    """`upstreams(n)`: n started scripted servers, stopped and checked after the test."""
    started: list[ScriptedServer] = []

    def start(count: int) -> list[ScriptedServer]:
        servers = []
        for _ in range(count):
            server = ScriptedServer()
            server.start()
            started.append(server)
            servers.append(server)
        return servers

    yield start
    for server in started:
        thread = server._thread
        if thread is not None and thread.is_alive():  # a test may have killed it already
            server.stop()
    for server in started:
        assert server.errors == [], "a scripted upstream failed"
