"""What this process knows of a deployment as it runs: load, health, speed.

Per process, in memory: each gateway worker keeps its own view (a deployment
one worker saw fail is cooled down there, and probed back by that worker).
Rate limits, which must hold across workers, are the `limits` seam's.
"""

from __future__ import annotations

from .deployment import Deployment
from .health import Health
from .latency import MovingAverage

__all__ = ["DeploymentState"]


class DeploymentState:
    """A deployment and its running counts."""

    __slots__ = ("deployment", "first_chunk", "health", "in_flight")

    def __init__(self, deployment: Deployment, health: Health) -> None:
        self.deployment = deployment
        self.health = health
        #: Attempts open on it now (least-busy's measure).
        self.in_flight = 0
        #: Seconds to its first chunk, averaged (latency-based-routing's measure).
        self.first_chunk = MovingAverage()

    @property
    def name(self) -> str:
        return self.deployment.name

    @property
    def unavailable(self) -> str | None:
        """Why its provider cannot answer at all (a local model that cannot load), or None."""
        deployment = self.deployment
        return deployment.provider.unavailable(deployment.options)

    def __repr__(self) -> str:
        return (
            f"<DeploymentState {self.name} in_flight={self.in_flight} "
            f"cooled_until={self.health.cooled_until}>"
        )
