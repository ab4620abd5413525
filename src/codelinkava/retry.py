"""`RetryPolicy`: when a failed request is tried again, and how long to wait first.

A value, not module constants: a provider carries its default
(`HTTPChatProvider.retry_policy`) and a caller passes `retry=RetryPolicy(...)`
(or only `max_retries=N`) per call. Pure: no clock, no I/O; the core asks it
and does the waiting.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import InvalidRequestError, parse_retry_after

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_RETRY_STATUSES",
    "RetryPolicy",
]

#: Statuses worth a second try: timeouts, conflicts, rate limits and server faults.
DEFAULT_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many retries, on which statuses, with what backoff.

    Retries happen only before the first chunk reached the caller (the core
    enforces that; a policy cannot change it). A server's `Retry-After` /
    `retry-after-ms` is honoured up to `max_retry_after` seconds; one asking
    for longer gets its error raised at once, since waiting would look like a hang.
    """

    max_retries: int = 2
    statuses: frozenset[int] = field(default=DEFAULT_RETRY_STATUSES)
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    #: The share of each backoff taken off at random, so clients do not retry in step.
    jitter: float = 0.25
    #: Whether connection failures and connect timeouts are retried.
    retry_connection_errors: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise InvalidRequestError(
                f"max_retries must be a whole number >= 0, got {self.max_retries!r}"
            )
        if self.max_retries < 0:
            raise InvalidRequestError(
                f"max_retries must be a whole number >= 0, got {self.max_retries!r}"
            )
        for name in ("initial_backoff", "max_backoff", "max_retry_after"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
                raise InvalidRequestError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0 <= self.jitter <= 1:
            raise InvalidRequestError(f"jitter must be between 0 and 1, got {self.jitter!r}")
        object.__setattr__(self, "statuses", frozenset(self.statuses))

    def retries_status(self, status: int) -> bool:
        return status in self.statuses

    def server_wait(self, headers: Mapping[str, str]) -> tuple[float | None, bool]:
        """(the wait the server asked for, whether we may honour it)."""
        wait = parse_retry_after(headers)
        return wait, wait is None or wait <= self.max_retry_after

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before retry `attempt` (0-based): the server's word, else jittered backoff."""
        if retry_after is not None and 0 <= retry_after <= self.max_retry_after:
            return retry_after
        base: float = min(self.initial_backoff * 2.0**attempt, self.max_backoff)
        return base * (1 - self.jitter * random.random())

    def with_max_retries(self, max_retries: int) -> RetryPolicy:
        from dataclasses import replace

        return replace(self, max_retries=max_retries)


DEFAULT_RETRY_POLICY = RetryPolicy()
