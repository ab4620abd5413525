"""Errors in OpenAI's shape: `{"error": {"message", "type", "code"}}`, and how ours map to HTTP.

Each API route answers errors in its own shape (`ErrorShape`): OpenAI's here,
others beside their routes. The app keeps which path prefix speaks which
(`app.state.error_shapes`), so the middleware and the exception handlers -- which
run before any route -- answer a 401, 413 or malformed body in the caller's API
too (`shape_for`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import MutableMapping
from typing import Any, Protocol

from starlette.responses import JSONResponse

from codelinkava import errors

__all__ = [
    "OPENAI_ERRORS",
    "ErrorShape",
    "error_payload",
    "error_response",
    "provider_error_response",
    "public_message",
    "relayed_error",
    "shape_for",
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


class ErrorShape(Protocol):
    """How one API writes an error answer. The arguments are OpenAI's vocabulary (the
    gateway's own): a shape maps the type and code onto its API's, and may change the
    status where its API documents another (Anthropic's 529 for overloaded)."""

    def __call__(
        self,
        status: int,
        message: str,
        type: str,
        code: str,
        headers: dict[str, str] | None = None,
        *,
        param: str | None = None,
    ) -> JSONResponse: ...


#: OpenAI's shape, the default of every path no route claims.
OPENAI_ERRORS: ErrorShape = error_response


def shape_for(scope: MutableMapping[str, Any]) -> ErrorShape:
    """The error shape of the route a request went to, by the longest matching prefix."""
    app = scope.get("app")
    shapes: dict[str, ErrorShape] = getattr(getattr(app, "state", None), "error_shapes", {})
    path = scope.get("path", "")
    best, shape = -1, OPENAI_ERRORS
    for prefix, candidate in shapes.items():
        if len(prefix) > best and (path == prefix or path.startswith(prefix.rstrip("/") + "/")):
            best, shape = len(prefix), candidate
    return shape


def provider_error_response(
    exc: errors.ProviderError, shape: ErrorShape = OPENAI_ERRORS
) -> JSONResponse:
    """The HTTP answer for a provider error raised before anything was sent."""
    status, kind, code, headers = status_for(exc)
    param = exc.param if isinstance(exc, errors.InvalidRequestError) else None
    relayed = relayed_error(exc)
    if relayed is not None and isinstance(relayed[1].get("param"), str):
        param = relayed[1]["param"]
    return shape(status, public_message(exc), kind, code, headers, param=param)


#: Upstream statuses that blame the request, not the upstream, passed on as they are.
#: (401/403 are not among them: they mean the gateway's own upstream key is wrong.)
_CLIENT_FAULTS = frozenset({400, 404, 413, 422})


def relayed_error(exc: errors.ProviderError) -> tuple[int, dict[str, Any]] | None:
    """The upstream's own status and error object, when it answered with one worth relaying.

    An OpenAI-compatible upstream that refuses a request says why in a
    machine-readable `{"error": {"type", "code", "param", "message"}}`; clients
    sort errors by it (pydantic-ai tells a quota from a rate limit, an
    overloaded server from a broken one), so it is passed on as it is. Not for
    401/403 (they are about the gateway's own key) nor for a body without a
    `type` or `code` (an HTML page, a bare message): those the gateway describes.
    """
    if not isinstance(exc, errors.ResponseStatusError) or exc.status in (401, 403):
        return None
    if not exc.body.lstrip().startswith("{"):
        return None
    try:
        error = json.loads(exc.body).get("error")
    except (ValueError, AttributeError, RecursionError):
        return None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    if error.get("type") is None and error.get("code") is None:
        return None
    return exc.status, error


def status_for(exc: errors.ProviderError) -> tuple[int, str, str, dict[str, str]]:
    """(HTTP status, error type, code, extra headers) for a provider error before streaming."""
    relayed = relayed_error(exc)
    if relayed is not None:
        status, error = relayed
        kind = error.get("type")
        code = error.get("code")
        return (
            status,
            kind if isinstance(kind, str) else "upstream_error",
            str(code) if code is not None else f"upstream_status_{status}",
            _retry_after(exc),
        )
    if isinstance(exc, errors.InvalidRequestError):
        return 400, "invalid_request_error", "invalid_request", {}
    if isinstance(exc, errors.ModelNotFoundError):
        return 404, "invalid_request_error", "model_not_found", {}
    if isinstance(exc, errors.RateLimitError):
        return 429, "rate_limit_error", "upstream_rate_limited", _retry_after(exc)
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


def _retry_after(exc: errors.ProviderError) -> dict[str, str]:
    if isinstance(exc, errors.RateLimitError) and exc.retry_after is not None:
        return {"Retry-After": str(max(1, round(exc.retry_after)))}
    return {}


def public_message(exc: errors.ProviderError) -> str:
    """What a gateway caller is told: the upstream's reason, never its address or credentials.

    The upstream URL, host and key are the operator's business; an upstream's
    401 text may even quote part of the key. The full error is logged at DEBUG.
    """
    log.debug("provider error: %r", exc)
    relayed = relayed_error(exc)
    if relayed is not None:
        return _scrub(relayed[1]["message"])
    if isinstance(exc, errors.AuthenticationError):
        return (
            f"the upstream refused the gateway's credentials (HTTP {exc.status}); "
            "ask the gateway's operator"
        )
    if isinstance(exc, errors.ProviderConnectionError):
        return "the upstream could not be reached"
    if isinstance(exc, errors.ProviderTimeoutError):
        return f"the upstream did not answer in time ({exc.phase or 'timeout'})"
    return _scrub(str(exc))


def _scrub(text: str) -> str:
    """The text without URLs or host:port pairs: where the upstream is, is the operator's."""
    text = _URL.sub("the upstream", text)
    return _HOST_PORT.sub(r"\1 the upstream", text)
