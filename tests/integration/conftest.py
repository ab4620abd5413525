"""Fixtures for the integration tests: a scripted server per test (see `scripted.py`)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import codelinkava._chat

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
    monkeypatch.setattr(codelinkava._chat, "INITIAL_BACKOFF", 0.005)
    monkeypatch.setattr(codelinkava._chat, "MAX_BACKOFF", 0.01)


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
