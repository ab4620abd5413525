"""The access log: one line per chat request, with its timings and token counts.

Logger `codelinkava.access`, at INFO. Plain `key=value` text by default, one
JSON object per line with `GatewaySettings.access_log_json`. A line holds
its time and what the `Outcome` holds -- route, model, deployment, status, error code,
time to first chunk, duration, tokens, failed attempts -- and never a
message's text or a key: the outcome carries neither, so they cannot leak here.
The fields also ride on the record as `record.access`, for a structured handler.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .outcome import Outcome

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .state import GatewayState

__all__ = ["ACCESS_LOGGER", "AccessLog", "access_fields", "install_access_log"]

#: The logger of the access log: its level and handlers are the application's to set.
ACCESS_LOGGER = "codelinkava.access"
log = logging.getLogger(ACCESS_LOGGER)

#: A value printed bare in the text form; anything else is JSON-quoted, so a model
#: name with spaces, quotes or a newline cannot forge a field or a line.
_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@+")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def access_fields(outcome: Outcome) -> dict[str, Any]:
    """What one line says, in order."""
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "route": outcome.route,
        "model": outcome.model,
        "deployment": outcome.deployment or None,
        "stream": outcome.stream,
        "status": outcome.status,
        "error": outcome.error or None,
        "ttft_ms": _ms(outcome.time_to_first_chunk),
        "duration_ms": _ms(outcome.duration),
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "attempts": len(outcome.attempts),
        "failed": ",".join(outcome.attempts) or None,
        "fallback": outcome.fallback,
        "rate_limited": outcome.rate_limited,
    }


def _text_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text and set(text) <= _BARE:
        return text
    return json.dumps(text, ensure_ascii=False)


def format_text(fields: dict[str, Any]) -> str:
    return " ".join(f"{name}={_text_value(value)}" for name, value in fields.items())


def format_json(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


class AccessLog:
    """An outcome hook that writes the access line."""

    def __init__(self, *, json_lines: bool = False, logger: logging.Logger = log) -> None:
        self.logger = logger
        self.format = format_json if json_lines else format_text

    def __call__(self, outcome: Outcome) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        fields = access_fields(outcome)
        self.logger.info(self.format(fields), extra={"access": fields})


def install_access_log(app: FastAPI) -> AccessLog:
    """Log every chat response of `app`.

    When nothing has configured logging (no handler would see the line), the
    lines go to stderr; an application that configures logging decides
    itself, by the `codelinkava.access` logger's level and handlers.
    """
    state: GatewayState = app.state.gateway
    if not log.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    hook = AccessLog(json_lines=state.settings.access_log_json)
    state.hooks.append(hook)
    return hook
