"""The gateway's routes, each a few lines over the backend, the gate and the responses.

The chat APIs are listed in `CHAT_ROUTES`: each is a path, a wire model
(`wire.py`), an encoder of its answers (`encoders.py`) and what it refuses
because its wire cannot carry the answer back. `GatewayState.respond` admits a
request of any of them the same way (size, reserved fields, the gate) and hands
the response to `streaming.py` with the route's encoder.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from codelinkava.types import estimate_prompt_tokens

from .backend import Backend
from .encoders import AnswerEncoder, OpenAIChatEncoder
from .errors import error_response
from .gate import Gate
from .limits import Limiter, RedisLimiter, SharedGate
from .outcome import Outcome, OutcomeHook, notify
from .settings import GatewaySettings
from .streaming import CompletionResponse, EventStreamResponse
from .wire import ChatCompletionRequest, CodeLinkAvaRequest, reserved_field

__all__ = ["CHAT_ROUTES", "OVERLOADED", "ChatRoute", "GatewayState", "install_routes"]

#: A chat request of any API, as its wire model reads it.
Body = ChatCompletionRequest | CodeLinkAvaRequest

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

    async def respond(self, body: Body, route: ChatRoute) -> Response:
        """Admit a chat request and return the response that will stream its answer."""
        if len(body.messages) > self.settings.max_messages:
            return error_response(
                400,
                f"too many messages: {len(body.messages)} > {self.settings.max_messages}",
                "invalid_request_error",
                "too_many_messages",
                param="messages",
            )
        refused = _refused_field(body, route)
        if refused is not None:
            name, why = refused
            message = f"the field {name!r} is not accepted: {why}"
            return error_response(
                400, message, "invalid_request_error", "field_not_allowed", param=name
            )
        shared = self.shared_gate
        ticket = self.gate.try_enter() if shared is None else await shared.try_enter()
        if ticket is None:
            return self._refuse(body, route.path)
        for admitted in self.on_admit:
            admitted()
        messages = [m.model_dump(exclude_unset=True) for m in body.messages]
        fields = body.forwarded()
        fields["stream"] = body.stream
        model = body.model or self.backend.models()[0]
        outcome = Outcome(
            route=route.path,
            model=model,
            stream=body.stream,
            started=asyncio.get_running_loop().time(),
        )
        hooks = self.hooks

        def close(outcome: Outcome) -> None:
            ticket.release()
            notify(hooks, outcome)

        def call() -> Any:
            return self.backend.open(body.model, messages, fields)

        prompt_estimate = estimate_prompt_tokens(messages)
        encoder = route.encoder(body, model, prompt_estimate)
        response_class = EventStreamResponse if body.stream else CompletionResponse
        return response_class(call, encoder, outcome, close)

    def _refuse(self, body: Body, route: str) -> Response:
        """At the concurrency limit: the hooks hear of it (metrics, access log), the client
        gets a 503 at once."""
        now = asyncio.get_running_loop().time()
        model = body.model or self.backend.models()[0]
        refused = Outcome(route, model, body.stream, now, status=503, error=OVERLOADED, ended=now)
        notify(self.hooks, refused)
        return _overloaded()


#: What the seed's wire (`/api/chat`, text deltas only) has no way to carry back.
_NOT_TEXT = ("tools", "tool_choice", "functions", "function_call", "logprobs", "top_logprobs")


def _refused_field(body: Body, route: ChatRoute) -> tuple[str, str] | None:
    """(a field no request may carry here, why), or None."""
    reserved = reserved_field(body)
    if reserved is not None:
        return reserved, "the gateway's operator sets it"
    beyond = route.beyond(body) if route.beyond is not None else None
    if beyond is not None:
        return beyond
    return None


def _beyond_text(body: Body) -> tuple[str, str] | None:
    """A field whose answer `/api/chat` could not relay: refused, never dropped."""
    why = "/api/chat answers in text deltas only; use /v1/chat/completions"
    sent = body.model_fields_set | set(body.model_extra or ())
    for name in _NOT_TEXT:
        if name in sent and getattr(body, name, None) not in (None, False):
            return name, why
    if body.n is not None and body.n > 1:
        return "n", why
    return None


def _state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


def _openai_chat(body: Body, model: str, prompt_estimate: int) -> AnswerEncoder:
    include_usage = body.include_usage or not body.stream
    return OpenAIChatEncoder(model, include_usage=include_usage, prompt_estimate=prompt_estimate)


def _codelinkava_chat(body: Body, model: str, prompt_estimate: int) -> AnswerEncoder:
    return OpenAIChatEncoder(model, include_usage=False, text_only=True)


@dataclass(frozen=True)
class ChatRoute:
    """One chat API the gateway serves."""

    path: str
    #: The wire model FastAPI validates the body against (its errors: 422 in our shape).
    body: type[Body]
    #: The encoder of one answer: (request, model name, prompt-token estimate) -> encoder.
    encoder: Callable[[Body, str, int], AnswerEncoder]
    #: What the endpoint is, for the OpenAPI page.
    summary: str
    #: A field whose answer this wire cannot carry back, and why: refused, never dropped.
    beyond: Callable[[Body], tuple[str, str] | None] | None = None


CHAT_ROUTES = (
    ChatRoute(
        "/v1/chat/completions",
        ChatCompletionRequest,
        _openai_chat,
        "OpenAI's chat completions, streamed (SSE) or whole; every field forwarded or refused.",
    ),
    ChatRoute(
        "/api/chat",
        CodeLinkAvaRequest,
        _codelinkava_chat,
        "The seed's CodeLinkAva wire format: `choices[0].delta.content` chunks, then [DONE].",
        beyond=_beyond_text,
    ),
)


def _chat_endpoint(route: ChatRoute) -> Callable[..., Any]:
    """The FastAPI endpoint of one chat route: its body validated as the route's wire model."""

    async def endpoint(request: Request, body: Any) -> Response:
        return await _state(request).respond(body, route)

    endpoint.__annotations__ = {"request": Request, "body": route.body, "return": Response}
    endpoint.__doc__ = route.summary
    endpoint.__name__ = endpoint.__qualname__ = "chat_" + route.path.strip("/").replace("/", "_")
    return endpoint


async def models(request: Request) -> dict[str, Any]:
    """The model names this gateway serves."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "codelinkava"}
            for name in _state(request).backend.models()
        ],
    }


async def health(request: Request) -> JSONResponse:
    """Liveness, this process's load, and what cannot answer and why; open without a key.

    `status` is "ok", "degraded" (some deployments unavailable: the rest serve) or
    "unavailable" (nothing can answer: 503, so a load balancer sends traffic elsewhere).
    """
    state = _state(request)
    backend = state.backend
    unavailable = backend.unavailable()
    everything = set(unavailable) >= set(backend.deployment_names())
    status = "unavailable" if unavailable and everything else "degraded" if unavailable else "ok"
    body = {
        "status": status,
        "provider": state.settings.provider,
        "model": backend.models()[0],
        "unavailable": unavailable,
        "in_flight": state.gate.in_flight,
        "served": state.gate.served,
        "refused": state.gate.refused,
        "time": time.time(),
    }
    return JSONResponse(body, status_code=503 if status == "unavailable" else 200)


def install_routes(app: FastAPI) -> None:
    """The API routes, in one list. The chat page (`chat_page.py`) and `/metrics`
    (`metrics.py`) install their own, beside the state they serve."""
    for route in CHAT_ROUTES:
        app.add_api_route(route.path, _chat_endpoint(route), methods=["POST"], response_model=None)
    app.add_api_route("/v1/models", models, methods=["GET"])
    app.add_api_route("/health", health, methods=["GET"])


def _overloaded() -> JSONResponse:
    """At the concurrency limit: refuse at once, with a hint when to come back."""
    return error_response(
        503,
        "the server is at its concurrency limit; retry shortly",
        "overloaded_error",
        OVERLOADED,
        {"Retry-After": "1"},
    )
