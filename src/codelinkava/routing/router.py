"""`Router`: many deployments under model names, one answer per request.

For each request it picks a deployment of the requested model group by the
routing strategy, and until the first chunk that says something arrives (text,
a tool call, the end: a role-only opening does not count) it keeps its options
open:

- a deployment that fails (unreachable, too slow, 5xx, 429, a broken stream)
  is counted against its health and the request moves to another deployment
  of the group, up to `num_retries` times, then to each group in
  `fallbacks[model]`; the request's own faults (a 400) are passed back at once;
- a deployment at its rate limit (the `limits` seam says no) is skipped;
- in a hedged group, a first attempt that has not streamed after the hedge
  delay gets a rival on another deployment; the first to stream wins and the
  other is cancelled, its upstream connection closed.

Once a chunk has been yielded, the answer belongs to that deployment: a
failure after it reaches the caller as it is, never retried.

`plan()` does everything that can refuse a request before anything is sent
(unknown model, a field no deployment can honour) synchronously, so the
gateway answers those with a plain HTTP error; `stream(plan)` does the rest.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..chunk import ChatChunk
from ..core.failover import moves_on
from ..errors import (
    InvalidRequestError,
    ModelNotFoundError,
    ProviderError,
    ProviderNotWorkingError,
    RateLimitError,
)
from ..types import estimate_prompt_tokens
from .attempts import Attempt, PumpedAttempt
from .deployment import Deployment
from .health import Health
from .latency import FirstChunkTimes
from .limits import DeploymentLimits, NoLimits
from .record import RouteRecord
from .settings import HedgePolicy, RouterSettings
from .state import DeploymentState
from .strategies import STRATEGIES

__all__ = ["Plan", "Router"]

log = logging.getLogger("codelinkava.routing")


@dataclass
class Plan:
    """One request, checked and ready to route: where it may go, and what to send."""

    model: str
    #: (model group, its deployments able to serve this request): the group asked
    #: for, then its fallbacks.
    groups: list[tuple[str, list[DeploymentState]]]
    messages: list[dict[str, Any]]
    fields: dict[str, Any]
    stream: bool
    #: Whether every deployment it may reach streams OpenAI chunks a relay may forward.
    relays_openai_chunks: bool
    #: Whether every deployment it may reach streams Anthropic events a relay may forward.
    relays_anthropic_events: bool = False
    #: Where the router reports as it goes (the gateway passes its `Call`).
    record: RouteRecord = field(default_factory=RouteRecord)
    #: Whether some deployment was skipped at its rate limit.
    rate_limited: bool = False

    @cached_property
    def prompt_estimate(self) -> int:
        """Prompt tokens, roughly (4 characters each), for limits when the upstream counts none."""
        return estimate_prompt_tokens(self.messages)


class Router:
    """Routes requests over deployments grouped by model name; see the module docstring."""

    def __init__(
        self,
        deployments: Sequence[Deployment],
        settings: RouterSettings | None = None,
        *,
        limits: DeploymentLimits | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not deployments:
            raise InvalidRequestError("a router needs at least one deployment")
        self.settings = settings = settings or RouterSettings()
        self.limits: DeploymentLimits = limits or NoLimits()
        self._rng = rng or random.Random()
        self._pick = STRATEGIES[settings.routing_strategy]
        self._groups: dict[str, list[DeploymentState]] = {}
        for deployment in deployments:
            health = Health(settings.allowed_fails, settings.cooldown_time)
            self._groups.setdefault(deployment.model_name, []).append(
                DeploymentState(deployment, health)
            )
        self._first_chunks = {name: FirstChunkTimes() for name in self._groups}
        self._fallbacks: dict[str, tuple[str, ...]] = {}
        for name, targets in settings.fallbacks.items():
            for group in (name, *targets):
                if group not in self._groups:
                    raise InvalidRequestError(
                        f"fallbacks name the model {group!r}, which no deployment serves"
                    )
            self._fallbacks[name] = tuple(t for t in targets if t != name)
        for name in settings.hedging:
            if name not in self._groups:
                raise InvalidRequestError(
                    f"hedging names the model {name!r}, which no deployment serves"
                )

    # What it serves ------------------------------------------------------------

    def models(self) -> list[str]:
        """The model names, in the order deployments were given: the first is the default."""
        return list(self._groups)

    def deployments(self, model: str | None = None) -> list[DeploymentState]:
        """The deployments of one model group, or of all, with their running state."""
        if model is not None:
            return list(self._groups.get(model, ()))
        return [state for states in self._groups.values() for state in states]

    def speaks_anthropic(self, model: str) -> bool:
        """Whether every deployment `model` (or the default) and its fallbacks may reach
        speaks Anthropic's Messages itself."""
        name = model or next(iter(self._groups))
        if name not in self._groups:
            return False  # `plan` says the model is not served
        groups = (name, *self._fallbacks.get(name, ()))
        return all(
            state.deployment.provider.relays_anthropic_events
            for group in groups
            for state in self._groups[group]
        )

    def first_chunk_times(self, model: str) -> FirstChunkTimes:
        return self._first_chunks[model]

    async def warm_up(self) -> None:
        """Warm every deployment's provider once (loads a local model at start-up)."""
        seen: set[tuple[type, tuple[tuple[str, str], ...]]] = set()
        for state in self.deployments():
            deployment = state.deployment
            key = (
                deployment.provider,
                tuple(sorted((k, repr(v)) for k, v in deployment.options.items())),
            )
            if key not in seen:
                seen.add(key)
                try:
                    await deployment.provider.warm_up(deployment.options)
                except ProviderError as exc:
                    # The others still serve; `plan` passes this one by, `/health` says why.
                    log.warning("deployment %s is unavailable: %s", deployment.name, exc)

    async def aclose(self) -> None:
        await self.limits.aclose()

    # Before anything is sent ---------------------------------------------------------

    def plan(self, model: str, messages: list[dict[str, Any]], fields: Mapping[str, Any]) -> Plan:
        """Check a request and list where it may go; raise our errors for one that cannot go."""
        name = model or next(iter(self._groups))
        if name not in self._groups:
            served = ", ".join(repr(m) for m in self._groups)
            raise ModelNotFoundError(f"the model {name!r} is not served here (served: {served})")
        fields = dict(fields)
        groups: list[tuple[str, list[DeploymentState]]] = []
        refusal: InvalidRequestError | None = None
        outage: ProviderNotWorkingError | None = None
        for group in (name, *self._fallbacks.get(name, ())):
            able = []
            for state in self._groups[group]:
                down = state.unavailable
                if down is not None:
                    outage = outage or ProviderNotWorkingError(f"{state.name}: {down}")
                    continue
                problem = _refusal(state.deployment, fields)
                if problem is None:
                    able.append(state)
                elif refusal is None:
                    refusal = problem
            if able:
                groups.append((group, able))
            elif group == name and refusal is not None:
                # Fallbacks are for outages, not for fields the model cannot take.
                raise refusal
        if not groups:
            assert outage is not None
            raise outage
        providers = [state.deployment.provider for _, states in groups for state in states]
        relays = all(provider.relays_openai_chunks for provider in providers)
        return Plan(
            model=name,
            groups=groups,
            messages=messages,
            fields=fields,
            stream=bool(fields.get("stream", True)),
            relays_openai_chunks=relays,
            relays_anthropic_events=all(p.relays_anthropic_events for p in providers),
        )

    # The answer ---------------------------------------------------------------------

    async def stream(self, plan: Plan) -> AsyncGenerator[list[ChatChunk], None]:
        """The answer's chunk batches from the first deployment that streams it."""
        failures: list[tuple[str, ProviderError]] = []
        for index, (group, states) in enumerate(plan.groups):
            hedge = self.settings.hedging.get(group)
            if hedge is None:
                attempt = await self._first_of(group, states, plan, failures)
            else:
                attempt = await self._race(group, states, plan, failures, hedge)
            if attempt is None:
                continue
            plan.record.fallback = index > 0
            try:
                if attempt.first:
                    yield attempt.first
                counts = not isinstance(attempt, PumpedAttempt)  # a pump counts its own
                async for batch in attempt.rest():
                    if counts:
                        attempt.count(batch)
                    yield batch
            except Exception as exc:
                if moves_on(exc):  # after text: not retried, but it counts against its health
                    attempt.state.health.failed(_now(), probe=False)
                raise
            finally:
                await self._finish(attempt, plan)
            return
        raise self._exhausted(plan, failures)

    async def _first_of(
        self,
        group: str,
        states: list[DeploymentState],
        plan: Plan,
        failures: list[tuple[str, ProviderError]],
    ) -> Attempt | None:
        """Try deployments of the group one after another until one streams."""
        tried: set[DeploymentState] = set()
        for _ in range(1 + self.settings.num_retries):
            attempt = await self._open(states, tried, plan, pumped=False)
            if attempt is None:
                return None
            try:
                await attempt.read_first()
            except Exception as exc:
                await self._finish(attempt, plan)
                if not isinstance(exc, ProviderError) or not moves_on(exc):
                    attempt.state.health.abandoned(attempt.probe)
                    raise
                self._failed(attempt, exc, plan, failures)
                continue
            except BaseException:
                await self._finish(attempt, plan)
                attempt.state.health.abandoned(attempt.probe)
                raise
            self._succeeded(group, attempt, plan)
            return attempt
        return None

    async def _race(
        self,
        group: str,
        states: list[DeploymentState],
        plan: Plan,
        failures: list[tuple[str, ProviderError]],
        hedge: HedgePolicy,
    ) -> Attempt | None:
        """Like `_first_of`, plus one rival attempt when the first is slow to stream."""
        loop = asyncio.get_running_loop()
        tried: set[DeploymentState] = set()
        running: list[PumpedAttempt] = []
        budget = 1 + self.settings.num_retries
        hedged = False
        deadline = 0.0
        try:
            while True:
                if not running:
                    if budget == 0:
                        return None
                    opened = await self._open(states, tried, plan, pumped=True)
                    if opened is None:
                        return None
                    assert isinstance(opened, PumpedAttempt)
                    budget -= 1
                    running.append(opened)
                    if not hedged:
                        deadline = loop.time() + hedge.wait(self._first_chunks[group])
                timeout = None if hedged else max(0.0, deadline - loop.time())
                done, _ = await asyncio.wait(
                    [attempt.first_ready for attempt in running],
                    timeout=timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    hedged = True
                    rival = await self._open(states, tried, plan, pumped=True)
                    if rival is not None:
                        assert isinstance(rival, PumpedAttempt)
                        running.append(rival)
                    continue
                for attempt in [a for a in running if a.first_ready.done()]:
                    running.remove(attempt)
                    error = attempt.first_ready.exception()
                    if error is None:
                        self._succeeded(group, attempt, plan)
                        return attempt
                    await self._finish(attempt, plan)
                    if not isinstance(error, ProviderError) or not moves_on(error):
                        attempt.state.health.abandoned(attempt.probe)
                        raise error
                    self._failed(attempt, error, plan, failures)
        finally:
            for loser in running:  # cancelled at once: the upstream connection closes
                loser.state.health.abandoned(loser.probe)
                await self._finish(loser, plan)
                plan.record.hedge_tokens += loser.pieces

    async def _open(
        self,
        states: list[DeploymentState],
        tried: set[DeploymentState],
        plan: Plan,
        *,
        pumped: bool,
    ) -> Attempt | None:
        """Pick a deployment not yet tried, within its limits, and send it the request."""
        now = _now()
        while True:
            candidates = [s for s in states if s not in tried and s.health.available(now)]
            if not candidates:
                return None
            due = [s for s in candidates if s.health.due_for_probe(now)]
            state = due[0] if due else self._pick(candidates, self._rng)
            tried.add(state)
            lease = await self.limits.acquire(state.deployment)
            if lease is not None:
                break
            plan.rate_limited = True
            plan.record.rate_limited += 1
        deployment = state.deployment
        batches = deployment.provider.create_async_chunk_batches(
            deployment.upstream_model,
            plan.messages,
            **deployment.call_options(plan.stream),
            **plan.fields,
        )
        now = _now()
        probe = state.health.start(now)
        state.in_flight += 1
        plan.record.deployment = deployment.name
        if pumped:
            return PumpedAttempt(state, lease, batches, probe=probe, started=now).start()
        return Attempt(state, lease, batches, probe=probe, started=now)

    def _succeeded(self, group: str, attempt: Attempt, plan: Plan) -> None:
        state = attempt.state
        seconds = _now() - attempt.started
        state.health.succeeded(attempt.probe)
        state.first_chunk.add(seconds)
        self._first_chunks[group].add(seconds)
        plan.record.deployment = state.name

    def _failed(
        self,
        attempt: Attempt,
        error: ProviderError,
        plan: Plan,
        failures: list[tuple[str, ProviderError]],
    ) -> None:
        state = attempt.state
        was_cooling = state.health.cooled_until is not None
        state.health.failed(_now(), attempt.probe)
        if state.health.cooled_until is not None and not was_cooling:
            log.warning(
                "deployment %s cools down for %.0f s after failing: %s",
                state.deployment.describe(),
                state.health.cooldown_time,
                type(error).__name__,
            )
        plan.record.attempts.append(state.name)
        failures.append((state.name, error))

    async def _finish(self, attempt: Attempt, plan: Plan) -> None:
        """Close the attempt's stream and give its place back, once, however closing goes."""
        if not attempt.mark_closed():
            return
        attempt.state.in_flight -= 1
        try:
            await attempt.close()
        finally:
            await attempt.lease.release(attempt.tokens(plan.prompt_estimate))

    def _exhausted(self, plan: Plan, failures: list[tuple[str, ProviderError]]) -> ProviderError:
        """The error for a request no deployment answered."""
        if failures:
            error = failures[-1][1]
            if len(failures) > 1:
                tried = "; ".join(f"{name}: {type(exc).__name__}" for name, exc in failures)
                error.add_note(f"every deployment tried failed before its first chunk: {tried}")
            return error
        if plan.rate_limited:
            return RateLimitError(
                f"every deployment of the model {plan.model!r} is at its rate limit; retry shortly",
                retry_after=1.0,
            )
        return ProviderNotWorkingError(
            f"no deployment of the model {plan.model!r} is available: "
            "all are cooling down after failures; retry shortly"
        )


def _refusal(deployment: Deployment, fields: Mapping[str, Any]) -> InvalidRequestError | None:
    """Why the deployment cannot take these request fields, or None."""
    try:
        deployment.provider.check_request_fields(fields)
    except InvalidRequestError as exc:
        return exc
    for name in fields:
        if name in deployment.options:
            return InvalidRequestError(f"the field {name!r} is set by the server", param=name)
    return None


def _now() -> float:
    return asyncio.get_running_loop().time()
