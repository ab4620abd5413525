"""The seam between the router and the rate limiter: ask for a place, give it back.

The router asks `limits.acquire(deployment)` before each attempt. A `Lease`
means the attempt fits in the deployment's `rpm`, `tpm` and
`max_parallel_requests`; None means the deployment is at one of its limits,
and the router counts it (`rate_limited`) and tries another deployment or
group instead -- a limit never fails a request that another deployment could
serve. The lease is released exactly once, when the attempt is over, with the
tokens it used (for `tpm`).

Implementations (per process in memory, or shared through Redis) live with
the limiter; `NoLimits` is what a router without one uses.
"""

from __future__ import annotations

from typing import Protocol

from .deployment import Deployment

__all__ = ["UNLIMITED", "DeploymentLimits", "Lease", "NoLimits"]


class Lease(Protocol):
    """A place within some limits, held by one request or attempt: a deployment's (the
    router's), or the gateway's own concurrency limit (`server/limits.py`'s limiters
    hand out the same kind)."""

    async def release(self, tokens: int = 0) -> None:
        """The request is over and used `tokens` (prompt + completion, counted or estimated).

        Idempotent, called also when the request failed or was cancelled; it must
        be quick and must not raise (a limiter that cannot reach its store
        logs and forgets).
        """


class DeploymentLimits(Protocol):
    """Decides whether an attempt on a deployment fits in its limits now."""

    async def acquire(self, deployment: Deployment) -> Lease | None:
        """A lease, or None when the deployment is at its rpm, tpm or parallel limit."""

    async def aclose(self) -> None:
        """Release connections to a shared store."""


class _FreeLease:
    __slots__ = ()

    async def release(self, tokens: int = 0) -> None:
        return None


#: The lease of a deployment without limits: nothing to count, nothing to give back.
UNLIMITED: Lease = _FreeLease()


class NoLimits:
    """Every attempt fits: deployments' limits are not enforced."""

    async def acquire(self, deployment: Deployment) -> Lease | None:
        return UNLIMITED

    async def aclose(self) -> None:
        return None
