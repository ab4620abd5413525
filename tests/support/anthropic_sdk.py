"""The `anthropic` SDK's client for tests: made on demand, closed after each test.

An SDK client left open holds its keep-alive sockets until the garbage collector
finds it, and pytest (warnings as errors) fails the run on the ResourceWarning.
A module calls `anthropic_client(...)` where it needs one and closes them all in
an autouse fixture: `yield; close_anthropic_clients()`.
"""

from __future__ import annotations

from typing import Any

import anthropic

__all__ = ["anthropic_client", "close_anthropic_clients"]

_open: list[anthropic.Anthropic] = []


def anthropic_client(base_url: str, **kwargs: Any) -> anthropic.Anthropic:
    """A client of `base_url` (no retries, a placeholder key unless given)."""
    if "auth_token" not in kwargs:
        kwargs.setdefault("api_key", "unused")
    kwargs.setdefault("max_retries", 0)
    client = anthropic.Anthropic(base_url=base_url, **kwargs)
    _open.append(client)
    return client


def close_anthropic_clients() -> None:
    while _open:
        _open.pop().close()
