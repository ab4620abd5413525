"""Fixtures for the integration tests: a scripted server per test (see `support/scripted.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.fixtures import _clean_env, closed_port
from support.scripted import ScriptedServer, running_server

__all__ = ["_clean_env", "closed_port", "server"]  # the first two: shared


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with running_server(check=True) as srv:
        yield srv
