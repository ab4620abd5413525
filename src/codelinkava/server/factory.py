"""Building the gateway app from what `codelinkava serve` was told: one provider or a config file.

`codelinkava serve --workers N` starts N processes through uvicorn, which
imports the app by name in each of them; so the CLI writes what it was told
into an environment variable (`ServeSpec.to_environment`) and each worker
builds the same app from it (`app_from_environment`). One worker builds it
directly, from the same spec, so both paths are one.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import FastAPI

from .access_log import ACCESS_LOGGER
from .app import create_app
from .backend import Backend
from .defaults import MAX_BODY_BYTES, MAX_CONCURRENCY
from .limiters import Limiter, make_limiter
from .settings import GatewaySettings

__all__ = ["SPEC_ENV", "ServeSpec", "app_from_environment", "build_app"]

#: Where the CLI leaves the spec for worker processes.
SPEC_ENV = "CODELINKAVA_SERVE_SPEC"


@dataclass
class ServeSpec:
    """Everything `serve` needs to build the app, as plain data (it crosses processes)."""

    provider: str = "local"
    provider_options: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    config: str | None = None  # a LiteLLM-style config file: routing over its deployments
    #: Shared limits through this Redis (a config file's redis settings are used otherwise).
    redis_url: str | None = None
    api_key: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    max_concurrency: int = MAX_CONCURRENCY
    cors_origins: list[str] = field(default_factory=list)
    access_log_json: bool = False
    #: uvicorn's level; the access log (INFO lines) is written at `info` and `debug` only.
    log_level: str = "info"

    def to_environment(self) -> None:
        """Leave the spec where worker processes find it (it may hold keys: the variable
        lives only in this process and its children)."""
        os.environ[SPEC_ENV] = json.dumps(asdict(self))

    @classmethod
    def from_environment(cls) -> ServeSpec:
        raw = os.environ.get(SPEC_ENV)
        if not raw:
            raise RuntimeError(f"{SPEC_ENV} is not set: start workers with `codelinkava serve`")
        return cls(**json.loads(raw))


def build_app(spec: ServeSpec) -> FastAPI:
    """The gateway for `spec`; a config file's errors raise `ConfigError` naming the key."""
    api_key = spec.api_key
    redis_url = spec.redis_url
    limiter: Limiter | None = None
    backend: Backend | None = None  # None: create_app fronts the one provider the settings name
    if spec.config:
        backend, config_key, redis_url, limiter = _routed(spec.config, redis_url)
        api_key = api_key or config_key
        provider = "config"
    else:
        provider = spec.provider
    settings = GatewaySettings(
        provider=provider,
        provider_options=spec.provider_options,
        model=spec.model,
        api_key=api_key,
        max_body_bytes=spec.max_body_bytes,
        max_concurrency=spec.max_concurrency,
        cors_origins=tuple(spec.cors_origins),
        redis_url=redis_url,
        access_log_json=spec.access_log_json,
    )
    app = create_app(settings, backend=backend, limiter=limiter)
    quiet = spec.log_level not in ("info", "debug", "trace")
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING if quiet else logging.INFO)
    return app


def _routed(path: str, redis_url: str | None) -> tuple[Backend, str | None, str | None, Limiter]:
    """A router over the config file's deployments, its master key, its Redis URL and the
    limiter that the deployments' limits and the gateway's concurrency limit share."""
    from codelinkava.routing import load_config

    from .routed import DeploymentLimiter, RouterBackend

    config = load_config(path)
    if redis_url is None and config.redis is not None:
        redis_url = config.redis.url
    limiter = make_limiter(redis_url)
    limits = DeploymentLimiter(limiter, owns=True)  # closing twice is safe
    return RouterBackend(config.router(limits=limits)), config.master_key, redis_url, limiter


def app_from_environment() -> FastAPI:
    """uvicorn's app factory in each worker process."""
    return build_app(ServeSpec.from_environment())
