"""Errors in Anthropic's shape: `{"type": "error", "error": {"type", "message"}, "request_id"}`.

The gateway speaks of errors in OpenAI's vocabulary (a status, a type such as
`invalid_request_error` or `upstream_error`, a code such as `overloaded`); this
shape maps each onto the type and status Anthropic documents for it
(https://docs.anthropic.com/en/api/errors), so the `anthropic` SDK raises the
class it would raise against Anthropic: a 400 `invalid_request_error`
(`BadRequestError`), 401 `authentication_error`, 403 `permission_error`, 404
`not_found_error`, 413 `request_too_large`, 429 `rate_limit_error` (with
`retry-after` when the wait is known), 500 `api_error`, and 529
`overloaded_error` for the gateway's own concurrency limit. A gateway's own
502 and 504 (the upstream unreachable, broken or late) keep their status, as
`api_error`: the SDK retries any 5xx alike. A specific type that is already
one of Anthropic's (an Anthropic upstream's own error, relayed) is kept.

Anthropic's error object has no `param`: the field at fault leads the message
(`messages.1.content.0.tool_use_id: ...`), as Anthropic's own messages do.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.responses import JSONResponse

from codelinkava import errors

from ..errors import ErrorShape, public_message, status_for

__all__ = [
    "ANTHROPIC_ERRORS",
    "ANTHROPIC_ERROR_TYPES",
    "anthropic_error",
    "anthropic_error_response",
    "new_request_id",
    "stream_error_event",
]

#: The error types Anthropic documents.
ANTHROPIC_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    }
)

_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}

#: The gateway's code for a request refused at its concurrency limit (routes.OVERLOADED).
_OVERLOADED = "overloaded"


def new_request_id() -> str:
    """An id in Anthropic's style (`req_...`), for the `request-id` header and the body."""
    return f"req_{secrets.token_hex(12)}"


def anthropic_error(status: int, type: str, code: str | None) -> tuple[int, str]:
    """(Anthropic's status, Anthropic's error type) for one of the gateway's errors."""
    if code == _OVERLOADED or type == "overloaded_error":
        return 529, "overloaded_error"
    if type in ANTHROPIC_ERROR_TYPES and type != "invalid_request_error":
        return status, type  # a specific one (an Anthropic upstream's own): as it came
    if status in _BY_STATUS:
        return status, _BY_STATUS[status]
    if status >= 500:
        return status, "api_error"
    return status, "invalid_request_error"  # "also used for other 4XX status codes"


def anthropic_error_response(
    status: int,
    message: str,
    type: str,
    code: str,
    headers: dict[str, str] | None = None,
    *,
    param: str | None = None,
) -> JSONResponse:
    """An error answer in Anthropic's shape (an `ErrorShape`), usable from raw ASGI too."""
    status, kind = anthropic_error(status, type, code)
    if param and not message.startswith(param):
        message = f"{param}: {message}"
    request_id = new_request_id()
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
    return JSONResponse(body, status, headers={**(headers or {}), "request-id": request_id})


#: The shape every path under /v1/messages answers errors in (`ChatRoute.errors`).
ANTHROPIC_ERRORS: ErrorShape = anthropic_error_response


def stream_error_event(exc: errors.ProviderError) -> bytes:
    """`event: error` for a failure after the stream started, as Anthropic sends one."""
    status, kind, code, _headers = status_for(exc)
    _status, kind = anthropic_error(status, kind, code)
    payload: dict[str, Any] = {
        "type": "error",
        "error": {"type": kind, "message": public_message(exc)},
    }
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return f"event: error\ndata: {data}\n\n".encode()
