"""Fixtures for the integration tests: a scripted server per test (see `scripted.py`)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from codelinkava.providers import HTTPChatProvider
from codelinkava.retry import RetryPolicy

from .scripted import ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
    assert srv.errors == [], "the scripted server failed"


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff of a few ms, so retry counts are tested without waiting seconds."""
    fast = RetryPolicy(initial_backoff=0.005, max_backoff=0.01)
    monkeypatch.setattr(HTTPChatProvider, "retry_policy", fast)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CODELINKAVA_API_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
