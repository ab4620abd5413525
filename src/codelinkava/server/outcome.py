"""What became of one response, told to whoever listens (metrics, the access log).

The streaming responses fill in an `Outcome` as they go -- cheaply: a few
attributes and one timestamp per batch -- and hand it to every hook when the
response is over, however it ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from codelinkava.routing.record import RouteRecord

__all__ = ["Outcome", "OutcomeHook", "notify"]

log = logging.getLogger("codelinkava.server")


@dataclass
class Outcome(RouteRecord):
    """One response: what was asked, who answered (the routing facts: `RouteRecord`), how
    fast, how it ended."""

    route: str
    model: str
    stream: bool
    started: float  # loop time when the request was admitted
    status: int = 200
    #: The error's code (`upstream_timeout`, `client_disconnected`, ...), "" when it went well.
    error: str = ""
    first_chunk: float | None = None  # loop time of the first chunk sent
    ended: float | None = None
    #: Loop time of every batch sent after the first: the inter-token gaps.
    batch_times: list[float] = field(default_factory=list)
    #: Pieces of content sent (a batch may carry several).
    pieces: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def time_to_first_chunk(self) -> float | None:
        return None if self.first_chunk is None else self.first_chunk - self.started

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


OutcomeHook = Callable[[Outcome], None]


def notify(hooks: list[OutcomeHook], outcome: Outcome) -> None:
    """Tell every hook; a failing hook is logged, never the client's problem."""
    for hook in hooks:
        try:
            hook(outcome)
        except Exception:
            log.exception("an outcome hook failed")
