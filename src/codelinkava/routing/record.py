"""Where a router reports what it did for one request, as it goes.

`RouteRecord` is the one list of these facts: the gateway's `Call` and its
`Outcome` are records too (subclasses), so the router writes into the call, the
response hands the call's facts to its outcome with `take_report`, and the
metrics and the access log read them there. Library callers get a plain record.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["RouteRecord", "RouteReport"]


@dataclass(kw_only=True)
class RouteRecord:
    """What routing one request did."""

    #: The deployment answering (the last one tried until one streams).
    deployment: str = ""
    #: Deployments that failed before the first chunk, in order.
    attempts: list[str] = field(default_factory=list)
    #: Whether a fallback group answered.
    fallback: bool = False
    #: Deployments skipped because they were at a rate limit.
    rate_limited: int = 0
    #: Content pieces streamed by hedged attempts that lost the race and were cancelled.
    hedge_tokens: int = 0

    def take_report(self, other: RouteRecord) -> None:
        """Copy `other`'s routing facts into this record (a call's into its outcome)."""
        for item in fields(RouteRecord):
            setattr(self, item.name, getattr(other, item.name))


#: The name the router's parameter had when it was a protocol; the same class.
RouteReport = RouteRecord
