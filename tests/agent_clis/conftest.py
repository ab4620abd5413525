"""The agent CLIs (failing, not skipping, where they are missing) and a scripted upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.fixtures import _clean_env
from support.scripted import ScriptedServer, running_server

from .support import agent_binary

__all__ = ["_clean_env", "claude", "codex", "upstream"]  # the first: shared


@pytest.fixture(scope="session")
def claude() -> Path:
    return agent_binary("claude")


@pytest.fixture(scope="session")
def codex() -> Path:
    return agent_binary("codex")


@pytest.fixture
def upstream() -> Iterator[ScriptedServer]:
    """An upstream on 127.0.0.1 for one test (the test sets its handler or script)."""
    with running_server(check=True) as server:
        yield server
