"""The concurrency gate: refuse at once when full, never queue without end.

Acquired when a chat request is admitted and released exactly once when its
response is over (sent, failed, or abandoned by the client) -- both in this
module, so the count cannot drift.
"""

from __future__ import annotations

__all__ = ["Gate", "Ticket"]


class Ticket:
    """A place held at the gate; `release` is idempotent."""

    __slots__ = ("_gate",)

    def __init__(self, gate: Gate) -> None:
        self._gate: Gate | None = gate

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.in_flight -= 1
            gate.served += 1


class Gate:
    """At most `limit` responses in flight in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.served = 0
        self.refused = 0

    def try_enter(self) -> Ticket | None:
        if self.in_flight >= self.limit:
            self.refused += 1
            return None
        self.in_flight += 1
        return Ticket(self)
