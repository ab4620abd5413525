"""A deployment's health: failures counted, cooldown, and the probe that lets it back in.

Like LiteLLM's router: more than `allowed_fails` failures within a minute put
a deployment into cooldown for `cooldown_time` seconds, during which no
request is sent to it. When the cooldown is over, exactly one request -- the
probe -- is let through; its first chunk brings the deployment back into
rotation, its failure starts another cooldown at once. A probe that ends
without a verdict (the client left, a hedge won) frees the slot for the next.

Pure bookkeeping over times the caller passes in: no clock, no I/O.
"""

from __future__ import annotations

from collections import deque

__all__ = ["FAILURE_WINDOW", "Health"]

#: Failures older than this many seconds no longer count towards a cooldown.
FAILURE_WINDOW = 60.0


class Health:
    """Whether a deployment may be sent a request now."""

    __slots__ = ("_fails", "_probe", "allowed_fails", "cooldown_time", "cooldowns", "cooled_until")

    def __init__(self, allowed_fails: int, cooldown_time: float) -> None:
        self.allowed_fails = allowed_fails
        self.cooldown_time = cooldown_time
        #: Loop time when the current cooldown ends; None when it is in rotation.
        self.cooled_until: float | None = None
        #: How many cooldowns it has entered (for tests and the status page).
        self.cooldowns = 0
        self._fails: deque[float] = deque()
        self._probe = False

    def available(self, now: float) -> bool:
        """In rotation, or out of its cooldown with no probe on the way."""
        until = self.cooled_until
        return until is None or (now >= until and not self._probe)

    def due_for_probe(self, now: float) -> bool:
        """Out of its cooldown and waiting for the request that proves it well."""
        until = self.cooled_until
        return until is not None and now >= until and not self._probe

    def start(self, now: float) -> bool:
        """A request is sent to it; True when that request is its probe."""
        if self.due_for_probe(now):
            self._probe = True
            return True
        return False

    def succeeded(self, probe: bool) -> None:
        """Its first chunk arrived: a probe's brings it back into rotation."""
        if probe:
            self._probe = False
            self.cooled_until = None
            self._fails.clear()

    def failed(self, now: float, probe: bool) -> None:
        """It failed before its first chunk: count it, and cool it down past the allowance."""
        if probe:
            self._probe = False
            self._cool(now)
            return
        fails = self._fails
        fails.append(now)
        while fails and fails[0] <= now - FAILURE_WINDOW:
            fails.popleft()
        if len(fails) > self.allowed_fails and self.cooled_until is None:
            self._cool(now)

    def abandoned(self, probe: bool) -> None:
        """The request went away without a verdict: the next one may probe."""
        if probe:
            self._probe = False

    def _cool(self, now: float) -> None:
        self.cooled_until = now + self.cooldown_time
        self.cooldowns += 1
        self._fails.clear()
