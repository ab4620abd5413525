"""Where a router reports what it did for one request, as it goes.

The gateway passes its `Call` (which has these attributes) so the metrics read
them when the response ends; library callers get a `RouteRecord`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["RouteRecord", "RouteReport"]


class RouteReport(Protocol):
    """The attributes a router fills in."""

    #: The deployment answering (the last one tried until one streams).
    deployment: str
    #: Deployments that failed before the first chunk, in order.
    attempts: list[str]
    #: Whether a fallback group answered.
    fallback: bool
    #: Deployments skipped because they were at a rate limit.
    rate_limited: int
    #: Content pieces streamed by hedged attempts that lost the race and were cancelled.
    hedge_tokens: int


@dataclass
class RouteRecord:
    """A plain `RouteReport`."""

    deployment: str = ""
    attempts: list[str] = field(default_factory=list)
    fallback: bool = False
    rate_limited: int = 0
    hedge_tokens: int = 0
