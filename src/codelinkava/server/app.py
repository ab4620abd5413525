"""The gateway's app factory: routes, handlers and middleware over a backend.

    GET  /                      the chat page (server/static/), open without a key
    POST /api/chat              the seed's CodeLinkAva wire format (streams by default)
    POST /v1/chat/completions   OpenAI's format, stream true or false
    POST /v1/messages           Anthropic's Messages (and /v1/messages/count_tokens)
    GET  /v1/models             the model names this gateway serves (OpenAI's or Anthropic's
                                shape, by the `anthropic-version` header); /v1/models/{id}
    GET  /health                liveness and load, open without a key
    GET  /metrics               Prometheus metrics (server/metrics.py)

The app keeps no conversation state, so it scales out by running more workers
or hosts behind any load balancer.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence

from fastapi import FastAPI

from codelinkava import get_provider
from codelinkava._version import __version__

from .access_log import install_access_log
from .backend import Backend, SingleProvider
from .chat_page import page_routes
from .handlers import install_handlers
from .limiters import Limiter
from .metrics import install_metrics
from .middleware import AuthMiddleware, BodyLimitMiddleware
from .outcome import OutcomeHook
from .routes import install_routes
from .settings import GatewaySettings
from .state import GatewayState

__all__ = ["create_app"]


def create_app(
    settings: GatewaySettings | None = None,
    *,
    backend: Backend | None = None,
    hooks: Sequence[OutcomeHook] = (),
    limiter: Limiter | None = None,
) -> FastAPI:
    """A gateway app for `settings` (defaults: the local model, no key, 127.0.0.1 limits).

    `backend` replaces the one provider the settings name (a router, say);
    `hooks` hear the outcome of every chat response; `limiter` holds the concurrency
    limit across processes when `settings.redis_url` is set (one shared with a router).
    """
    settings = settings or GatewaySettings()
    if backend is None:
        backend = SingleProvider(
            get_provider(settings.provider),
            settings.provider_options,
            settings.model,
            preload=settings.preload,
            models_ttl=settings.models_ttl,
        )
    state = GatewayState(settings, backend, list(hooks), limiter=limiter)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None, None]:
        await state.backend.warm_up()
        try:
            yield
        finally:
            await state.backend.aclose()
            await state.aclose()

    app = FastAPI(
        title="codelinkava gateway",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.gateway = state
    install_handlers(app)
    install_routes(app)
    install_metrics(app)
    install_access_log(app)
    if settings.chat_page:
        app.router.routes.extend(page_routes())
    _install_middleware(app, settings)
    return app


def _install_middleware(app: FastAPI, settings: GatewaySettings) -> None:
    """The last added runs first: CORS outermost, so a browser sees even a 401 or 413
    with its CORS headers (and not as a CORS failure); then the key; then the size."""
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.api_key:
        app.add_middleware(AuthMiddleware, api_key=settings.api_key)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=[
                "authorization",
                "content-type",
                "x-api-key",
                "anthropic-version",
                "anthropic-beta",
            ],
        )
