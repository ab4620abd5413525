"""The gateway's routes, each a few lines over the backend, the gate and the responses.

Every chat API is one `ChatRoute` in `CHAT_ROUTES`: a path, a wire model
(`wire.py` and its siblings), a translator of that body into the one request
the backends take (`ChatAsk`: model, chat messages, fields, stream), an encoder
of the typed chunks back into the route's wire (`encoders.py`), the shape of
its errors, and what it refuses because its wire cannot carry the answer back.
`state.GatewayState.respond` admits a request of any of them the same way
(size, reserved fields, the gate) and hands the response to `streaming.py` with
the route's encoder; `chat_route.py` says what a route is. Routes that are not
chat answers (stored responses, token counts) are installed by their API's
module, listed in `install_routes`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from .chat_route import ChatAsk, ChatRoute
from .encoders import AnswerEncoder, OpenAIChatEncoder
from .errors import OPENAI_ERRORS, ErrorShape
from .messages import (
    ANTHROPIC_ERRORS,
    MessagesRequest,
    install_messages_routes,
    messages_ask,
    messages_encoder,
)
from .model_routes import install_model_routes
from .responses import RESPONSES_ROUTE, install_responses
from .state import GatewayState
from .wire import ChatCompletionRequest, CodeLinkAvaRequest

__all__ = ["CHAT_ROUTES", "install_routes"]

#: A chat request of OpenAI's chat API or the seed's, as its wire model reads it.
Body = ChatCompletionRequest | CodeLinkAvaRequest


#: What the seed's wire (`/api/chat`, text deltas only) has no way to carry back.
_NOT_TEXT = ("tools", "tool_choice", "functions", "function_call", "logprobs", "top_logprobs")


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


async def _chat_ask(body: BaseModel, state: GatewayState, headers: Headers) -> ChatAsk:
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
    ChatRoute(
        "/v1/messages",
        MessagesRequest,
        messages_ask,
        messages_encoder,
        "Anthropic's Messages, streamed (SSE events) or whole; errors in Anthropic's shape.",
        errors=ANTHROPIC_ERRORS,
    ),
    RESPONSES_ROUTE,
)


def _chat_endpoint(route: ChatRoute) -> Callable[..., Any]:
    """The FastAPI endpoint of one chat route: its body validated as the route's wire model."""

    async def endpoint(request: Request, body: Any) -> Response:
        return await _state(request).respond(body, route, request.headers)

    endpoint.__annotations__ = {"request": Request, "body": route.body, "return": Response}
    endpoint.__doc__ = route.summary
    endpoint.__name__ = endpoint.__qualname__ = "chat_" + route.path.strip("/").replace("/", "_")
    return endpoint


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
    install_messages_routes(app)
    install_responses(app)
    install_model_routes(app)
    app.add_api_route("/health", health, methods=["GET"])
