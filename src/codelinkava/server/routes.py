"""The gateway's routes, each a few lines over the backend, the gate and the responses.

Every chat API is one `ChatRoute` in `CHAT_ROUTES`: a path, a wire model
(`wire.py` and its siblings), a translator of that body into the one request
the backends take (`ChatAsk`: model, chat messages, fields, stream), an encoder
of the typed chunks back into the route's wire (`encoders.py`), the shape of
its errors, and what it refuses because its wire cannot carry the answer back.
`GatewayState.respond` admits a request of any of them the same way (size,
reserved fields, the gate) and hands the response to `streaming.py` with the
route's encoder. Routes that are not chat answers (stored responses, token
counts) are installed by their API's module, listed in `install_routes`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from codelinkava.errors import ProviderError
from codelinkava.types import estimate_prompt_tokens

from .backend import Backend
from .encoders import AnswerEncoder, OpenAIChatEncoder
from .errors import OPENAI_ERRORS, ErrorShape, provider_error_response
from .gate import Gate
from .limits import Limiter, RedisLimiter, SharedGate
from .outcome import Outcome, OutcomeHook, notify
from .settings import GatewaySettings
from .streaming import CompletionResponse, EventStreamResponse
from .wire import ChatCompletionRequest, CodeLinkAvaRequest, reserved_field

__all__ = [
    "CHAT_ROUTES",
    "OVERLOADED",
    "ChatAsk",
    "ChatRoute",
    "GatewayState",
    "install_routes",
]

#: A chat request of OpenAI's chat API or the seed's, as its wire model reads it.
Body = ChatCompletionRequest | CodeLinkAvaRequest


@dataclass
class ChatAsk:
    """One chat request in the backends' terms, whatever API it came in.

    `messages` are OpenAI chat messages (every provider takes them), `fields` the
    request's other fields by OpenAI's names (or by a provider's own, such as
    `thinking`, where the route forwards them to an upstream that speaks them).
    """

    model: str
    messages: list[dict[str, Any]]
    fields: dict[str, Any]
    stream: bool
    #: Whether the caller asked for usage in the stream (OpenAI's `include_usage`).
    include_usage: bool = False
    #: Prompt tokens, roughly; set by `respond` for encoders that must report usage.
    prompt_estimate: int = 0
    #: Anything the route's translator wants its encoder to see (the request's own ids).
    extras: dict[str, Any] = field(default_factory=dict)


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

    async def respond(self, body: BaseModel, route: ChatRoute) -> Response:
        """Admit a chat request and return the response that will stream its answer."""
        errors = route.errors
        refused = _refused_field(body, route)
        if refused is not None:
            name, why = refused
            message = f"the field {name!r} is not accepted: {why}"
            return errors(400, message, "invalid_request_error", "field_not_allowed", param=name)
        try:
            ask = await route.ask(body, self)
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


#: What the seed's wire (`/api/chat`, text deltas only) has no way to carry back.
_NOT_TEXT = ("tools", "tool_choice", "functions", "function_call", "logprobs", "top_logprobs")


def _refused_field(body: BaseModel, route: ChatRoute) -> tuple[str, str] | None:
    """(a field no request may carry here, why), or None."""
    reserved = reserved_field(body)
    if reserved is not None:
        return reserved, "the gateway's operator sets it"
    beyond = route.beyond(body) if route.beyond is not None else None
    if beyond is not None:
        return beyond
    return None


def _beyond_text(body: BaseModel) -> tuple[str, str] | None:
    """A field whose answer `/api/chat` could not relay: refused, never dropped."""
    why = "/api/chat answers in text deltas only; use /v1/chat/completions"
    sent = body.model_fields_set | set(body.model_extra or ())
    for name in _NOT_TEXT:
        if name in sent and getattr(body, name, None) not in (None, False):
            return name, why
    n = getattr(body, "n", None)
    if n is not None and n > 1:
        return "n", why
    return None


def _state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


async def _chat_ask(body: BaseModel, state: GatewayState) -> ChatAsk:
    """OpenAI's chat body (or the seed's) is already in the backends' terms."""
    assert isinstance(body, ChatCompletionRequest | CodeLinkAvaRequest)
    return ChatAsk(
        model=body.model,
        messages=[m.model_dump(exclude_unset=True) for m in body.messages],
        fields=body.forwarded(),
        stream=body.stream,
        include_usage=body.include_usage,
    )


def _openai_chat(body: BaseModel, ask: ChatAsk, state: GatewayState) -> AnswerEncoder:
    include_usage = ask.include_usage or not ask.stream
    return OpenAIChatEncoder(
        ask.model, include_usage=include_usage, prompt_estimate=ask.prompt_estimate
    )


def _codelinkava_chat(body: BaseModel, ask: ChatAsk, state: GatewayState) -> AnswerEncoder:
    return OpenAIChatEncoder(ask.model, include_usage=False, text_only=True)


@dataclass(frozen=True)
class ChatRoute:
    """One chat API the gateway serves."""

    path: str
    #: The wire model FastAPI validates the body against (its errors: 400 in `errors`).
    body: type[BaseModel]
    #: The body in the backends' terms; raises InvalidRequestError (a 400 naming the field)
    #: for what cannot be translated.
    ask: Callable[[Any, GatewayState], Awaitable[ChatAsk]]
    #: The encoder of one answer: (request, its translation, the state) -> encoder.
    encoder: Callable[[Any, ChatAsk, GatewayState], AnswerEncoder]
    #: What the endpoint is, for the OpenAPI page.
    summary: str
    #: A field whose answer this wire cannot carry back, and why: refused, never dropped.
    beyond: Callable[[Any], tuple[str, str] | None] | None = None
    #: How this API writes an error (every error under `path`, the middleware's too).
    errors: ErrorShape = OPENAI_ERRORS


CHAT_ROUTES = (
    ChatRoute(
        "/v1/chat/completions",
        ChatCompletionRequest,
        _chat_ask,
        _openai_chat,
        "OpenAI's chat completions, streamed (SSE) or whole; every field forwarded or refused.",
    ),
    ChatRoute(
        "/api/chat",
        CodeLinkAvaRequest,
        _chat_ask,
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
    """The API routes, in one list, and each chat route's error shape. The chat page
    (`chat_page.py`) and `/metrics` (`metrics.py`) install their own, beside the state
    they serve."""
    shapes: dict[str, ErrorShape] = getattr(app.state, "error_shapes", {})
    for route in CHAT_ROUTES:
        app.add_api_route(route.path, _chat_endpoint(route), methods=["POST"], response_model=None)
        if route.errors is not OPENAI_ERRORS:
            shapes[route.path] = route.errors
    app.state.error_shapes = shapes
    app.add_api_route("/v1/models", models, methods=["GET"])
    app.add_api_route("/health", health, methods=["GET"])


def _overloaded(errors: ErrorShape) -> JSONResponse:
    """At the concurrency limit: refuse at once, with a hint when to come back."""
    return errors(
        503,
        "the server is at its concurrency limit; retry shortly",
        "overloaded_error",
        OVERLOADED,
        {"Retry-After": "1"},
    )
