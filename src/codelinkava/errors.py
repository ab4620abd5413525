"""Every error codelinkava raises, in one hierarchy.

* ProviderError
  + ResponseStatusError (.status, .body)        the server answered non-2xx
    - AuthenticationError                        401 / 403
    - RateLimitError (.retry_after)              429
  + ProviderConnectionError                      no connection, or it broke before a response
  + ProviderTimeoutError (also TimeoutError)     connect, first-chunk, idle or total limit passed
  + StreamError                                  the body is not what the wire format promises
    - StreamTruncatedError                       ended without [DONE] or a finish_reason
    - UpstreamError                              the stream itself carried an error
  + InvalidRequestError (also ValueError)        the caller's arguments cannot be sent
  + ProviderNotWorkingError                      the provider is switched off
  + ModelNotFoundError                           the provider does not serve that model

The module is pure (no aiohttp, no asyncio) so the SSE core and the gateway can
raise and catch these without importing the transport.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = [
    "AuthenticationError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderNotWorkingError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseStatusError",
    "StreamError",
    "StreamTruncatedError",
    "UpstreamError",
    "body_preview",
    "make_status_error",
    "parse_retry_after",
]

#: How much of an error body is kept on the exception and quoted in its message.
BODY_PREVIEW_CHARS = 500


class ProviderError(Exception):
    """Base of every error raised by codelinkava."""


# Answers with a non-2xx status ---------------------------------------------


class ResponseStatusError(ProviderError):
    """The server answered with a status outside 2xx."""

    def __init__(self, message: str, *, status: int, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class AuthenticationError(ResponseStatusError):
    """The server refused the credentials (401) or the access (403)."""


class RateLimitError(ResponseStatusError):
    """The server answered 429; `retry_after` is its requested wait in seconds, if it gave one."""

    def __init__(
        self, message: str, *, status: int = 429, body: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after


# Transport failures ------------------------------------------------------------


class ProviderConnectionError(ProviderError):
    """The connection could not be made, or was lost before a response arrived."""


class ProviderTimeoutError(ProviderError, TimeoutError):
    """A connect, first-chunk, idle-between-chunks or total time limit passed.

    `phase` names which: "connect", "first_chunk", "idle" or "total".
    """

    def __init__(self, message: str, *, phase: str = "") -> None:
        super().__init__(message)
        self.phase = phase


# The body broke the wire format -------------------------------------------------


class StreamError(ProviderError):
    """The response body is not the event stream the wire format promises."""


class StreamTruncatedError(StreamError):
    """The stream ended without `data: [DONE]` or a finish_reason: the answer may be cut off."""


class UpstreamError(StreamError):
    """The stream carried an error (`{"error": ...}` or `event: error`): the upstream's message."""

    def __init__(
        self, message: str, *, code: str | int | None = None, type: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.type = type


# Refusals before anything is sent ----------------------------------------------------


class InvalidRequestError(ProviderError, ValueError):
    """The arguments cannot make a valid request (empty messages, a message without a role...).

    `param` names the request field at fault, when there is one (the gateway
    passes it on in its 400 answer).
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ProviderNotWorkingError(ProviderError):
    """The provider is marked as not working."""


class ModelNotFoundError(ProviderError):
    """The provider does not serve the requested model."""


def body_preview(body: str) -> str:
    """The start of a body, on one line, for an error message."""
    text = " ".join(body.split())
    if len(text) > BODY_PREVIEW_CHARS:
        return text[:BODY_PREVIEW_CHARS] + "..."
    return text


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked to wait: `retry-after-ms`, else `Retry-After` (seconds or date)."""
    headers = {key.lower(): value for key, value in headers.items()}
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0 and math.isfinite(value):
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        import time
        from datetime import UTC
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # "-0000" or no zone at all: HTTP dates are always GMT
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - time.time())
    if not (seconds >= 0 and math.isfinite(seconds)):
        return None
    return seconds


def _message_from_body(body: str) -> str | None:
    """The `error.message` of an OpenAI-shaped JSON error body, if the body is one."""
    import json

    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        return None
    if isinstance(data, dict):
        err = data.get("error", data.get("detail"))
        if isinstance(err, dict):
            msg = err.get("message")
            return msg if isinstance(msg, str) else None
        if isinstance(err, str):
            return err
        msg = data.get("message")
        return msg if isinstance(msg, str) else None
    return None


def make_status_error(
    status: int, body: str, headers: Mapping[str, str] | None = None, *, url: str = ""
) -> ResponseStatusError:
    """The most specific error for a non-2xx answer; the message quotes the upstream's reason."""
    where = f" from {url}" if url else ""
    reason = _message_from_body(body)
    if reason and len(reason) > BODY_PREVIEW_CHARS:
        reason = reason[:BODY_PREVIEW_CHARS] + "..."
    detail = reason or body_preview(body) or "(empty body)"
    message = f"HTTP {status}{where}: {detail}"
    if status in (401, 403):
        return AuthenticationError(message, status=status, body=body)
    if status == 429:
        retry_after = parse_retry_after(headers or {})
        return RateLimitError(message, status=status, body=body, retry_after=retry_after)
    return ResponseStatusError(message, status=status, body=body)
