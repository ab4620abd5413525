"""Fixtures for the integration tests: a scripted server per test (see `support/scripted.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codelinkava.providers import HTTPChatProvider
from codelinkava.retry import RetryPolicy
from support.fixtures import _clean_env, closed_port
from support.scripted import ScriptedServer

__all__ = ["_clean_env", "closed_port", "fast_backoff", "server"]  # the first two: shared


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
