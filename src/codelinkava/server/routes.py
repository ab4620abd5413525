"""The gateway's routes, each a few lines over the backend, the gate and the responses."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from .backend import Backend
from .errors import error_response
from .gate import Gate
from .outcome import Outcome, OutcomeHook, notify
from .settings import GatewaySettings
from .streaming import ChunkEncoder, CompletionResponse, EventStreamResponse
from .wire import ChatCompletionRequest, CodeLinkAvaRequest, reserved_field

__all__ = ["GatewayState", "router"]

router = APIRouter()


class GatewayState:
    """What the routes share: settings, the backend, the gate, the outcome hooks."""

    def __init__(
        self,
        settings: GatewaySettings,
        backend: Backend,
        hooks: list[OutcomeHook] | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.gate = Gate(settings.max_concurrency)
        self.hooks: list[OutcomeHook] = list(hooks or [])

    def respond(
        self, body: ChatCompletionRequest | CodeLinkAvaRequest, route: str, *, text_only: bool
    ) -> Response:
        """Admit a chat request and return the response that will stream its answer."""
        if len(body.messages) > self.settings.max_messages:
            return error_response(
                400,
                f"too many messages: {len(body.messages)} > {self.settings.max_messages}",
                "invalid_request_error",
                "too_many_messages",
                param="messages",
            )
        reserved = reserved_field(body)
        if reserved is not None:
            return error_response(
                400,
                f"the field {reserved!r} is not accepted: the gateway's operator sets it",
                "invalid_request_error",
                "field_not_allowed",
                param=reserved,
            )
        ticket = self.gate.try_enter()
        if ticket is None:
            return _overloaded()
        messages = [m.model_dump(exclude_unset=True) for m in body.messages]
        fields = body.forwarded()
        fields["stream"] = body.stream
        model = body.model or self.backend.models()[0]
        outcome = Outcome(
            route=route, model=model, stream=body.stream, started=asyncio.get_running_loop().time()
        )
        hooks = self.hooks

        def close(outcome: Outcome) -> None:
            ticket.release()
            notify(hooks, outcome)

        def call() -> Any:
            return self.backend.open(body.model, messages, fields)

        include_usage = (body.include_usage or not body.stream) and not text_only
        encoder = ChunkEncoder(model, include_usage=include_usage)
        prompt_estimate = sum(len(str(m.get("content") or "")) for m in messages) // 4
        response_class = EventStreamResponse if body.stream else CompletionResponse
        return response_class(
            call, encoder, outcome, close, prompt_estimate=prompt_estimate, text_only=text_only
        )


def _state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request, body: ChatCompletionRequest) -> Response:
    """OpenAI's chat completions, streamed (SSE) or whole; every field forwarded or refused."""
    return _state(request).respond(body, "/v1/chat/completions", text_only=False)


@router.post("/api/chat", response_model=None)
async def codelinkava_chat(request: Request, body: CodeLinkAvaRequest) -> Response:
    """The seed's CodeLinkAva wire format: `choices[0].delta.content` chunks, then [DONE]."""
    return _state(request).respond(body, "/api/chat", text_only=True)


@router.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    """The model names this gateway serves."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "codelinkava"}
            for name in _state(request).backend.models()
        ],
    }


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Liveness and this process's load; open without a key."""
    state = _state(request)
    return {
        "status": "ok",
        "provider": state.settings.provider,
        "model": state.backend.models()[0],
        "in_flight": state.gate.in_flight,
        "served": state.gate.served,
        "refused": state.gate.refused,
        "time": time.time(),
    }


def _overloaded() -> JSONResponse:
    """At the concurrency limit: refuse at once, with a hint when to come back."""
    return error_response(
        503,
        "the server is at its concurrency limit; retry shortly",
        "overloaded_error",
        "overloaded",
        {"Retry-After": "1"},
    )
