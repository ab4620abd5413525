"""What the routes share, and how a chat request of any API is admitted.

`GatewayState` holds the settings, the backend, the gate and the outcome hooks;
`respond` checks a request the same way for every chat route (reserved fields,
what the route's wire cannot carry, size, the gate) and hands the response to
`streaming.py` with the route's encoder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from codelinkava.errors import ProviderError
from codelinkava.types import estimate_prompt_tokens

from .backend import Backend
from .chat_route import ChatAsk, ChatRoute
from .errors import ErrorShape, provider_error_response
from .gate import Gate, SharedGate
from .limiters import Limiter, RedisLimiter
from .outcome import Outcome, OutcomeHook, notify
from .settings import GatewaySettings
from .streaming import CompletionResponse, EventStreamResponse
from .wire import reserved_field

__all__ = ["OVERLOADED", "GatewayState"]


#: The error code of a request refused at the gateway's concurrency limit (503).
OVERLOADED = "overloaded"


class GatewayState:
    """What the routes share: settings, the backend, the gate, the outcome hooks."""

    def __init__(
        self,
        settings: GatewaySettings,
        backend: Backend,
        hooks: list[OutcomeHook] | None = None,
        *,
        limiter: Limiter | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.gate = Gate(settings.max_concurrency)
        #: With Redis, the concurrency limit holds across every worker and host (`limiter`:
        #: one to share with a router, else one of its own); without, `gate` alone.
        self.shared_gate: SharedGate | None = None
        if settings.redis_url:
            self.shared_gate = SharedGate(self.gate, limiter or RedisLimiter(settings.redis_url))
        self.hooks: list[OutcomeHook] = list(hooks or [])
        #: Told when a request is admitted (the in-flight gauge); `hooks` hear how it ended.
        self.on_admit: list[Callable[[], None]] = []

    async def aclose(self) -> None:
        """At shutdown: the shared gate's releases under way, its Redis connections."""
        if self.shared_gate is not None:
            await self.shared_gate.aclose()

    async def respond(self, body: BaseModel, route: ChatRoute, headers: Headers) -> Response:
        """Admit a chat request and return the response that will stream its answer."""
        errors = route.errors
        refused = _refused_field(body, route)
        if refused is not None:
            name, why = refused
            message = f"the field {name!r} is not accepted: {why}"
            return errors(400, message, "invalid_request_error", "field_not_allowed", param=name)
        try:
            ask = await route.ask(body, self, headers)
        except ProviderError as exc:
            return provider_error_response(exc, errors)
        if len(ask.messages) > self.settings.max_messages:
            return errors(
                400,
                f"too many messages: {len(ask.messages)} > {self.settings.max_messages}",
                "invalid_request_error",
                "too_many_messages",
                param="messages",
            )
        shared = self.shared_gate
        ticket = self.gate.try_enter() if shared is None else await shared.try_enter()
        if ticket is None:
            return self._refuse(ask, route)
        for admitted in self.on_admit:
            admitted()
        requested = ask.model  # "" lets the backend answer with its default
        ask.model = requested or self.backend.models()[0]
        outcome = Outcome(
            route=route.path,
            model=ask.model,
            stream=ask.stream,
            started=asyncio.get_running_loop().time(),
        )
        hooks = self.hooks

        def close(outcome: Outcome) -> None:
            ticket.release()
            notify(hooks, outcome)

        fields = dict(ask.fields)
        fields["stream"] = ask.stream

        def call() -> Any:
            return self.backend.open(requested, ask.messages, fields)

        ask.prompt_estimate = estimate_prompt_tokens(ask.messages)
        encoder = route.encoder(body, ask, self)
        response_class = EventStreamResponse if ask.stream else CompletionResponse
        return response_class(call, encoder, outcome, close)

    def _refuse(self, ask: ChatAsk, route: ChatRoute) -> Response:
        """At the concurrency limit: the hooks hear of it (metrics, access log), the client
        gets a 503 at once."""
        now = asyncio.get_running_loop().time()
        model = ask.model or self.backend.models()[0]
        refused = Outcome(
            route.path, model, ask.stream, now, status=503, error=OVERLOADED, ended=now
        )
        notify(self.hooks, refused)
        return _overloaded(route.errors)


def _refused_field(body: BaseModel, route: ChatRoute) -> tuple[str, str] | None:
    """(a field no request may carry here, why), or None."""
    reserved = reserved_field(body)
    if reserved is not None:
        return reserved, "the gateway's operator sets it"
    beyond = route.beyond(body) if route.beyond is not None else None
    if beyond is not None:
        return beyond
    return None


def _overloaded(errors: ErrorShape) -> JSONResponse:
    """At the concurrency limit: refuse at once, with a hint when to come back."""
    return errors(
        503,
        "the server is at its concurrency limit; retry shortly",
        "overloaded_error",
        OVERLOADED,
        {"Retry-After": "1"},
    )
