"""The concurrency gate: refuse at once when full, never queue without end.

Acquired by `state.GatewayState.respond` when a chat request is admitted, and
released when its response is over -- sent, failed, or abandoned by the client.
`Ticket.release` is idempotent, so the count cannot drift however many paths end
a response. With Redis, `SharedGate` holds the same limit across every worker and
host through a `Limiter` (`limiters.py`), this process's `Gate` still counting
what it holds for /health.
"""

from __future__ import annotations

import asyncio

from codelinkava.routing.limits import Lease

from .limiters import Limiter, LimitSpec, MemoryLease

__all__ = ["GATEWAY_KEY", "Gate", "SharedGate", "SharedTicket", "Ticket"]

#: The limiter key of the gateway's own concurrency limit (`--max-concurrency`).
GATEWAY_KEY = "gateway"


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


class SharedTicket:
    """A place at the gateway: this process's gate ticket and the shared lease.

    `release` is synchronous, like the gate ticket's (the response calls it
    as it ends); the lease's release runs in the background, tracked so
    that shutting down waits for it.
    """

    __slots__ = ("_gate", "_lease", "_ticket")

    def __init__(self, ticket: Ticket, lease: Lease, gate: SharedGate) -> None:
        self._ticket = ticket
        self._lease: Lease | None = lease
        self._gate = gate

    def release(self) -> None:
        self._ticket.release()
        lease, self._lease = self._lease, None
        if lease is not None:
            self._gate.release_later(lease)


class SharedGate:
    """The gateway's concurrency limit held across every process through a limiter.

    This process's `Gate` still counts what it holds (for /health) and is
    asked second, so the shared count is the one that refuses.
    """

    def __init__(self, gate: Gate, limiter: Limiter, key: str = GATEWAY_KEY) -> None:
        self.gate = gate
        self.limiter = limiter
        self.key = key
        self.spec = LimitSpec(max_parallel=gate.limit)
        self._releasing: set[asyncio.Task[None]] = set()

    async def try_enter(self) -> SharedTicket | None:
        lease = await self.limiter.try_acquire(self.key, self.spec)
        if lease is None:
            self.gate.refused += 1
            return None
        ticket = self.gate.try_enter()
        if ticket is None:
            self.release_later(lease)
            return None
        return SharedTicket(ticket, lease, self)

    def release_later(self, lease: Lease) -> None:
        if isinstance(lease, MemoryLease):  # nothing to wait for
            lease.release_now()
            return
        task = asyncio.get_running_loop().create_task(lease.release())
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def aclose(self) -> None:
        """Wait for the releases under way, then close the limiter."""
        if self._releasing:
            await asyncio.wait(set(self._releasing), timeout=5)
        await self.limiter.aclose()
