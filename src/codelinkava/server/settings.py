"""The gateway's settings: what it fronts and the limits it enforces."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .defaults import API_KEY_ENV, MAX_BODY_BYTES, MAX_CONCURRENCY, MAX_MESSAGES

__all__ = ["API_KEY_ENV", "GatewaySettings"]


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the app factory needs; the CLI fills it from flags and the environment.

    `provider_options` are fixed at start-up (upstream URL and key, GGUF path):
    no request field can change them, so a caller can never pick the upstream
    host or a file to load.
    """

    provider: str = "local"
    provider_options: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # the model named in /v1/models and used when a request names none
    api_key: str | None = field(default_factory=lambda: os.environ.get(API_KEY_ENV) or None)
    max_body_bytes: int = MAX_BODY_BYTES
    max_concurrency: int = MAX_CONCURRENCY
    max_messages: int = MAX_MESSAGES
    cors_origins: tuple[str, ...] = ()
    chat_page: bool = True  # the chat page at `/` (server/static/)
    preload: bool = True  # load the local model at start-up, not on the first request
    #: Redis shared by every worker and host: limits hold across all of them (server/limits.py).
    #: None: per process.
    redis_url: str | None = None
    access_log_json: bool = False  # the access log (server/access_log.py) as JSON lines
