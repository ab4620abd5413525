"""`RouterSettings` and `HedgePolicy`: how a router chooses, retries, falls back and hedges.

Also the rules their values follow, shared with the config file: one rule, one wording.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import InvalidRequestError
from .latency import FirstChunkTimes
from .strategies import STRATEGIES

__all__ = ["HedgePolicy", "RouterSettings", "number_problem", "strategy_problem", "whole_problem"]


def number_problem(value: object, minimum: float = 0.0, *, inclusive: bool = True) -> str | None:
    """Why `value` is not a finite number from `minimum` up, or None.

    Without a subject: each caller names the place its own way (`cooldown_time`
    here, `router_settings.cooldown_time` in the config file).
    """
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= minimum if inclusive else value > minimum)
    ):
        return None
    return f"must be a number {'>=' if inclusive else '>'} {minimum}, got {value!r}"


def whole_problem(value: object, minimum: int = 0) -> str | None:
    """Why `value` is not a whole number from `minimum` up (a bool is not one)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return None
    return f"must be a whole number >= {minimum}, got {value!r}"


def strategy_problem(value: object) -> str | None:
    """Why `value` names no routing strategy we have."""
    if isinstance(value, str) and value in STRATEGIES:
        return None
    return f"{value!r} is not supported; choose one of {', '.join(STRATEGIES)}"


def _refuse(*problems: tuple[str, str | None]) -> None:
    """The dataclasses' way of saying it: the first problem, after the field's name."""
    for name, problem in problems:
        if problem is not None:
            raise InvalidRequestError(f"{name} {problem}")


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
        _refuse(
            ("hedging delay", None if self.delay is None else number_problem(self.delay)),
            ("hedging max_delay", number_problem(self.max_delay)),
        )

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
        _refuse(
            ("routing_strategy", strategy_problem(self.routing_strategy)),
            ("num_retries", whole_problem(self.num_retries)),
            ("allowed_fails", whole_problem(self.allowed_fails)),
            ("cooldown_time", number_problem(self.cooldown_time)),
        )
