"""`RouterBackend`: the gateway's `Backend` over a `Router` (what `serve --config` runs),
and `DeploymentLimiter`: the router's limits seam over the gateway's `Limiter`."""

from __future__ import annotations

from typing import Any

from codelinkava.routing import Deployment, Lease, Router
from codelinkava.routing.limits import UNLIMITED

from .backend import Call
from .limiters import Limiter, LimitSpec

__all__ = ["DeploymentLimiter", "RouterBackend"]

#: The limiter key of a deployment's rpm / tpm / max_parallel_requests.
DEPLOYMENT_KEY = "deployment:{}"


class RouterBackend:
    """Routes each request over the router's deployments; reports into the response's `Call`.

    The router writes the deployment that answers, the ones that failed, the
    fallback, rate-limit skips and hedge tokens into the `Call` as it goes, so
    the outcome hooks read the final values when the response ends.
    """

    def __init__(self, router: Router, *, preload: bool = True) -> None:
        self.router = router
        #: Whether start-up warms the deployments (loads local models) before serving.
        self.preload = preload

    def models(self) -> list[str]:
        return self.router.models()

    async def list_models(self) -> list[str]:
        """The config file's model names: each one routes to its deployments."""
        return self.router.models()

    async def warm_up(self) -> None:
        if self.preload:
            await self.router.warm_up()

    def deployment_names(self) -> list[str]:
        return [state.name for state in self.router.deployments()]

    def unavailable(self) -> dict[str, str]:
        found = {}
        for state in self.router.deployments():
            reason = state.unavailable
            if reason is not None:
                found[state.name] = reason
        return found

    def speaks_anthropic(self, model: str) -> bool:
        return self.router.speaks_anthropic(model)

    def open(self, model: str, messages: list[dict[str, Any]], fields: dict[str, Any]) -> Call:
        plan = self.router.plan(model, messages, fields)
        call = Call(
            batches=self.router.stream(plan),  # runs when the response reads it
            deployment="",
            relays_openai_chunks=plan.relays_openai_chunks,
            relays_anthropic_events=plan.relays_anthropic_events,
        )
        plan.record = call
        return call

    async def aclose(self) -> None:
        await self.router.aclose()


class DeploymentLimiter:
    """Each deployment's `rpm`, `tpm` and `max_parallel_requests`, counted by a `Limiter`.

    One key per deployment name, so every worker and host sharing the
    limiter's Redis counts the same deployment together. A deployment without
    limits costs no round trip. `owns`: whether closing this closes the
    limiter (False when the gateway's shared gate uses the same one).
    """

    def __init__(self, limiter: Limiter, *, owns: bool = False) -> None:
        self.limiter = limiter
        self.owns = owns
        self._specs: dict[str, LimitSpec | None] = {}

    def _spec(self, deployment: Deployment) -> LimitSpec | None:
        try:
            return self._specs[deployment.name]
        except KeyError:
            pass
        spec: LimitSpec | None = None
        if deployment.rpm or deployment.tpm or deployment.max_parallel_requests:
            spec = LimitSpec(
                rpm=deployment.rpm,
                tpm=deployment.tpm,
                max_parallel=deployment.max_parallel_requests,
            )
        self._specs[deployment.name] = spec
        return spec

    async def acquire(self, deployment: Deployment) -> Lease | None:
        spec = self._spec(deployment)
        if spec is None:
            return UNLIMITED
        return await self.limiter.try_acquire(DEPLOYMENT_KEY.format(deployment.name), spec)

    async def aclose(self) -> None:
        if self.owns:
            await self.limiter.aclose()
