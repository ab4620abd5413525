"""`RouterSettings` and `HedgePolicy`: how a router chooses, retries, falls back and hedges."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import InvalidRequestError
from .latency import FirstChunkTimes
from .strategies import STRATEGIES

__all__ = ["HedgePolicy", "RouterSettings"]


def _seconds(name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(f"{name} must be a number of seconds, got {value!r}")
    if not (value >= 0 and math.isfinite(value)):
        raise InvalidRequestError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


def _count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(f"{name} must be a whole number >= 0, got {value!r}")


@dataclass(frozen=True)
class HedgePolicy:
    """When a model group starts a second attempt while the first has not yet streamed.

    | example                         | the second attempt starts after                     |
    |---------------------------------|-----------------------------------------------------|
    | `HedgePolicy(delay=0.25)`       | 0.25 s without a first chunk                        |
    | `HedgePolicy()`                 | the group's observed p95 time to first chunk,       |
    |                                 | at most `max_delay` (2 s), which is also the wait   |
    |                                 | until 20 first chunks have been seen                |
    """

    #: Seconds to wait; None: the group's observed p95 time to first chunk.
    delay: float | None = None
    #: The longest wait when following the p95, and the wait before there is one.
    max_delay: float = 2.0

    def __post_init__(self) -> None:
        _seconds("hedging delay", self.delay, allow_none=True)
        _seconds("hedging max_delay", self.max_delay)

    def wait(self, times: FirstChunkTimes) -> float:
        """Seconds to give the first attempt before hedging it."""
        if self.delay is not None:
            return self.delay
        p95 = times.p95()
        return self.max_delay if p95 is None else min(p95, self.max_delay)


@dataclass(frozen=True)
class RouterSettings:
    """LiteLLM's `router_settings` that a router acts on, with LiteLLM's defaults.

    A request is tried on up to `1 + num_retries` deployments of its group
    (only before its first chunk), then on each group in `fallbacks[model]`
    in turn. A deployment with more than `allowed_fails` failures in a minute
    is left alone for `cooldown_time` seconds. Groups named in `hedging` race
    a second deployment when the first is slow to start.
    """

    routing_strategy: str = "simple-shuffle"
    num_retries: int = 2
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    allowed_fails: int = 3
    cooldown_time: float = 5.0
    hedging: Mapping[str, HedgePolicy] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.routing_strategy not in STRATEGIES:
            raise InvalidRequestError(
                f"routing_strategy {self.routing_strategy!r} is not supported; "
                f"choose one of {', '.join(STRATEGIES)}"
            )
        _count("num_retries", self.num_retries)
        _count("allowed_fails", self.allowed_fails)
        _seconds("cooldown_time", self.cooldown_time)
