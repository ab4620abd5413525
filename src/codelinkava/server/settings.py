"""The gateway's settings: what it fronts and the limits it enforces."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .defaults import (
    API_KEY_ENV,
    MAX_BODY_BYTES,
    MAX_CONCURRENCY,
    MAX_MESSAGES,
    RESPONSES_MAX_BYTES,
    RESPONSES_MAX_ENTRIES,
    RESPONSES_TTL,
)

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
    #: At start-up: load the local model (not on the first request), and ask the upstream
    #: which models it serves when no `model` is set (not on the first `/v1/models`).
    preload: bool = True
    #: Seconds an upstream's model list is kept (no `model` set): `/v1/models` asks again
    #: after that, and the default model of a request that names none follows it.
    models_ttl: float = 60.0
    #: Redis shared by every worker and host: limits hold across all of them (server/limits.py).
    #: None: per process.
    redis_url: str | None = None
    access_log_json: bool = False  # the access log (server/access_log.py) as JSON lines
    #: Stored responses (`/v1/responses`, server/responses/store.py): kept in this process
    #: (at most so many, and so many bytes, least recently used out first) or in Redis when
    #: `redis_url` is set; each for `responses_ttl` seconds.
    responses_max_entries: int = RESPONSES_MAX_ENTRIES
    responses_max_bytes: int = RESPONSES_MAX_BYTES
    responses_ttl: float = RESPONSES_TTL
