"""Fixtures more than one suite uses: a suite's conftest imports the ones it wants
(`from support.fixtures import _clean_env, closed_port`), so each applies only there."""

from __future__ import annotations

import socket

import pytest

__all__ = ["_clean_env", "closed_port"]


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CODELINKAVA_API_URL",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
