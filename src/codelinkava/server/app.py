"""The gateway's app factory: FastAPI routes over any codelinkava provider.

    POST /api/chat              the seed's CodeLinkAva wire format (streams by default)
    POST /v1/chat/completions   OpenAI's format, stream true or false
    GET  /v1/models             the model this gateway serves
    GET  /health                liveness, open without a key

The app is stateless apart from an in-flight counter, so it scales out by
running more workers or hosts behind any load balancer.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from codelinkava import AsyncGeneratorProvider, LocalModel, get_provider

from .errors import error_payload
from .middleware import AuthMiddleware, BodyLimitMiddleware
from .settings import GatewaySettings
from .streaming import ChunkEncoder, CompletionResponse, EventStreamResponse
from .wire import ChatCompletionRequest, CodeLinkAvaRequest

__all__ = ["create_app"]

log = logging.getLogger("codelinkava.server")


class _Gate:
    """The concurrency limit: refuse at once when full, never queue without end."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.served = 0
        self.refused = 0

    def try_enter(self) -> bool:
        if self.in_flight >= self.limit:
            self.refused += 1
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1
        self.served += 1


def _served_model(settings: GatewaySettings, provider: type[AsyncGeneratorProvider]) -> str:
    if settings.model:
        return settings.model
    if provider is LocalModel:
        return LocalModel.served_model(settings.provider_options.get("model_path"))
    return provider.default_model or "default"


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """A gateway app for `settings` (defaults: the local model, no key, 127.0.0.1 limits)."""
    settings = settings or GatewaySettings()
    provider = get_provider(settings.provider)
    served_model = _served_model(settings, provider)
    gate = _Gate(settings.max_concurrency)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if provider is LocalModel and settings.preload:
            engine = LocalModel.engine(settings.provider_options.get("model_path"))
            await engine.wait_loaded()
        yield

    app = FastAPI(
        title="codelinkava gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.gate = gate

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = _describe_invalid(request.headers.get("content-type", ""), exc.errors())
        return JSONResponse(error_payload(message, "invalid_request_error", "invalid_request"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            # FastAPI's words for a body json.loads could not take but that raised no
            # JSONDecodeError: bytes that are not UTF-8, or nesting past the recursion limit.
            message = "the body is not valid JSON: it is not UTF-8 text, or it is nested too deeply"
            code = "invalid_json"
        return JSONResponse(
            error_payload(message, "invalid_request_error", code),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_payload("internal server error", "server_error", "internal"), 500)

    def _respond(body: ChatCompletionRequest | CodeLinkAvaRequest, include_usage: bool) -> Any:
        if len(body.messages) > settings.max_messages:
            return JSONResponse(
                error_payload(
                    f"too many messages: {len(body.messages)} > {settings.max_messages}",
                    "invalid_request_error",
                    "too_many_messages",
                ),
                400,
            )
        if not gate.try_enter():
            return _overloaded()
        messages = [m.model_dump(exclude_none=True) for m in body.messages]
        model = body.model or served_model
        options = {**settings.provider_options, **body.sampling()}

        def start() -> AsyncIterator[list[str]]:
            upstream_model = model if provider is not LocalModel else (body.model or "")
            return provider.create_async_batches(upstream_model, messages, **options)

        prompt_estimate = sum(len(str(m.get("content") or "")) for m in messages) // 4
        encoder = ChunkEncoder(model, include_usage=include_usage)
        response_class = EventStreamResponse if body.stream else CompletionResponse
        return response_class(start, encoder, prompt_estimate=prompt_estimate, on_close=gate.leave)

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        """OpenAI's chat completions, streamed (SSE) or whole."""
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return _respond(body, include_usage or not body.stream)

    @app.post("/api/chat", response_model=None)
    async def codelinkava_chat(body: CodeLinkAvaRequest) -> Any:
        """The seed's CodeLinkAva wire format: `choices[0].delta.content` chunks, then [DONE]."""
        return _respond(body, False)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        """The one model this gateway serves."""
        return {
            "object": "list",
            "data": [
                {"id": served_model, "object": "model", "created": 0, "owned_by": "codelinkava"}
            ],
        }

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness and load; open without a key."""
        return {
            "status": "ok",
            "provider": settings.provider,
            "model": served_model,
            "in_flight": gate.in_flight,
            "served": gate.served,
            "refused": gate.refused,
            "time": time.time(),
        }

    # The last added runs first: CORS outermost, so a browser sees even a 401 or 413
    # with its CORS headers (and not as a CORS failure); then the key; then the size.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.api_key:
        app.add_middleware(AuthMiddleware, api_key=settings.api_key)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["authorization", "content-type"],
        )
    return app


def _describe_invalid(content_type: str, problems: Sequence[Any]) -> str:
    """One message that says what is wrong with a request body."""
    media_type = content_type.partition(";")[0].strip().lower()
    described = []
    for err in problems[:5]:
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "JSON decode error")
            at = f" at character {loc[0]}" if loc else ""
            return f"the body is not valid JSON: {reason}{at}"
        if not loc and err.get("type") == "missing":
            return "the body is empty: send a JSON object with a `messages` list"
        if not loc and err.get("type") in ("model_attributes_type", "dict_type"):
            if media_type and media_type != "application/json" and not media_type.endswith("+json"):
                return (
                    "the body must be JSON sent with Content-Type: application/json "
                    f"(got {media_type!r})"
                )
            return "the body must be a JSON object with a `messages` list"
        described.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(described)


def _overloaded() -> JSONResponse:
    """At the concurrency limit: refuse at once, with a hint when to come back."""
    message = "the server is at its concurrency limit; retry shortly"
    return JSONResponse(
        error_payload(message, "overloaded_error", "overloaded"), 503, headers={"Retry-After": "1"}
    )
