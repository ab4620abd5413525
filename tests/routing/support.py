"""Deployments over scripted upstreams, a gateway with a router behind it, a counting limiter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from typing import Any

from codelinkava.providers import OpenAICompatible
from codelinkava.routing import Deployment, Plan, Router, RouteRecord
from codelinkava.server import GatewaySettings, create_app
from codelinkava.server.outcome import Outcome
from codelinkava.server.routed import RouterBackend
from support.live_gateway import LiveGateway
from support.scripted import Reply, ScriptedServer

HELLO = [{"role": "user", "content": "Hello"}]
#: A weight that makes a deployment the router's first choice (the others are where it goes
#: next): the order a test needs, without depending on a seed.
FIRST = 1e9
Upstreams = Callable[[int], list[ScriptedServer]]


def status(code: int) -> Reply:
    """An upstream's JSON error answer."""
    body = json.dumps({"error": {"message": f"status {code}"}}).encode()
    return Reply(status=code, headers={"Content-Type": "application/json"}, body=[body])


def deployment(
    server: ScriptedServer, name: str, model_name: str = "m", **params: Any
) -> Deployment:
    """An OpenAI-compatible deployment in front of `server`: no retries of its own, 2 s limits."""
    options = {"base_url": server.url("/v1"), "max_retries": 0, "timeout": 2.0}
    options.update(params.pop("options", {}))
    return Deployment(
        name=name,
        model_name=model_name,
        provider=OpenAICompatible,
        upstream_model=f"upstream-{name}",
        options=options,
        **params,
    )


@dataclass
class Answer:
    text: str
    record: RouteRecord
    plan: Plan


async def ask(router: Router, model: str = "m", **fields: Any) -> Answer:
    """One request through the router, read to the end."""
    plan = router.plan(model, list(HELLO), {"stream": True, **fields})
    record = RouteRecord()
    plan.record = record
    pieces: list[str] = []
    async with asyncio.timeout(10), aclosing(router.stream(plan)) as batches:
        async for batch in batches:
            pieces.extend(chunk.content or "" for chunk in batch)
    return Answer("".join(pieces), record, plan)


@dataclass
class _Lease:
    limiter: CountingLimits
    name: str

    async def release(self, tokens: int) -> None:
        self.limiter.released.append((self.name, tokens))
        self.limiter.open[self.name] -= 1


@dataclass
class CountingLimits:
    """A limiter that refuses the deployments named in `full` and records every lease."""

    full: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)
    released: list[tuple[str, int]] = field(default_factory=list)
    open: dict[str, int] = field(default_factory=dict)
    closed: bool = False

    async def acquire(self, deployment: Deployment) -> _Lease | None:
        self.asked.append(deployment.name)
        if deployment.name in self.full:
            return None
        self.open[deployment.name] = self.open.get(deployment.name, 0) + 1
        return _Lease(self, deployment.name)

    async def aclose(self) -> None:
        self.closed = True


class RoutedGateway(LiveGateway):
    """The real gateway app with a router behind it, on a real uvicorn thread."""

    def __init__(self, router: Router, settings: GatewaySettings | None = None) -> None:
        settings = settings or GatewaySettings(api_key=None, preload=False)
        super().__init__(settings)
        self.outcomes: list[Outcome] = []
        self.app = create_app(settings, backend=RouterBackend(router), hooks=[self.outcomes.append])
        self.server.config.app = self.app


@contextmanager
def routed_gateway(router: Router) -> Iterator[RoutedGateway]:
    gateway = RoutedGateway(router)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
