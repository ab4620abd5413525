"""The concurrency gate: refuse at once when full, never queue without end.

Acquired by `routes.GatewayState.respond` when a chat request is admitted (through
`limits.SharedGate` when Redis holds the limit), and released when its response is
over -- sent, failed, or abandoned by the client. `Ticket.release` is idempotent, so
the count cannot drift however many paths end a response.
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
