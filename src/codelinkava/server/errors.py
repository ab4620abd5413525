"""Errors in OpenAI's shape: `{"error": {"message", "type", "code"}}`, and how ours map to HTTP."""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.responses import JSONResponse

from codelinkava import errors

__all__ = [
    "error_payload",
    "error_response",
    "provider_error_response",
    "public_message",
    "status_for",
]

log = logging.getLogger("codelinkava.server")

_URL = re.compile(r"\bhttps?://[^\s'\"]*[^\s'\":,;.)]")
_HOST_PORT = re.compile(r"\b(to|from|at) \[?[A-Za-z0-9.\-:]+\]?:\d+\b")


def error_payload(
    message: str, type: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "code": code, "param": param}}


def error_response(
    status: int,
    message: str,
    type: str,
    code: str,
    headers: dict[str, str] | None = None,
    *,
    param: str | None = None,
) -> JSONResponse:
    """An error answer in OpenAI's shape, usable from routes and raw ASGI alike."""
    return JSONResponse(error_payload(message, type, code, param), status, headers=headers)


def provider_error_response(exc: errors.ProviderError) -> JSONResponse:
    """The HTTP answer for a provider error raised before anything was sent."""
    status, kind, code, headers = status_for(exc)
    param = exc.param if isinstance(exc, errors.InvalidRequestError) else None
    return error_response(status, public_message(exc), kind, code, headers, param=param)


#: Upstream statuses that blame the request, not the upstream, passed on as they are.
#: (401/403 are not among them: they mean the gateway's own upstream key is wrong.)
_CLIENT_FAULTS = frozenset({400, 404, 413, 422})


def status_for(exc: errors.ProviderError) -> tuple[int, str, str, dict[str, str]]:
    """(HTTP status, error type, code, extra headers) for a provider error before streaming."""
    if isinstance(exc, errors.InvalidRequestError):
        return 400, "invalid_request_error", "invalid_request", {}
    if isinstance(exc, errors.ModelNotFoundError):
        return 404, "invalid_request_error", "model_not_found", {}
    if isinstance(exc, errors.RateLimitError):
        headers = {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return 429, "rate_limit_error", "upstream_rate_limited", headers
    if isinstance(exc, errors.ProviderTimeoutError):
        return 504, "upstream_error", "upstream_timeout", {}
    if isinstance(exc, errors.ProviderNotWorkingError):
        return 503, "upstream_error", "provider_not_working", {}
    if isinstance(exc, errors.ResponseStatusError):
        if exc.status in _CLIENT_FAULTS:  # the request itself was refused: say so as it is
            return exc.status, "invalid_request_error", f"upstream_status_{exc.status}", {}
        return 502, "upstream_error", f"upstream_status_{exc.status}", {}
    if isinstance(exc, errors.ProviderConnectionError):
        return 502, "upstream_error", "upstream_unreachable", {}
    if isinstance(exc, errors.StreamError):
        return 502, "upstream_error", "upstream_bad_stream", {}
    return 500, "server_error", "provider_error", {}


def public_message(exc: errors.ProviderError) -> str:
    """What a gateway caller is told: the upstream's reason, never its address or credentials.

    The upstream URL, host and key are the operator's business; an upstream's
    401 text may even quote part of the key. The full error is logged at DEBUG.
    """
    log.debug("provider error: %r", exc)
    if isinstance(exc, errors.AuthenticationError):
        return (
            f"the upstream refused the gateway's credentials (HTTP {exc.status}); "
            "ask the gateway's operator"
        )
    if isinstance(exc, errors.ProviderConnectionError):
        return "the upstream could not be reached"
    if isinstance(exc, errors.ProviderTimeoutError):
        return f"the upstream did not answer in time ({exc.phase or 'timeout'})"
    text = _URL.sub("the upstream", str(exc))
    return _HOST_PORT.sub(r"\1 the upstream", text)
