"""Exception handlers: every failure a request can cause becomes an error in its route's shape."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from .errors import shape_for

__all__ = ["describe_invalid", "install_handlers"]

log = logging.getLogger("codelinkava.server")


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, param = describe_invalid(request.headers.get("content-type", ""), exc.errors())
    shape = shape_for(request.scope)
    return shape(400, message, "invalid_request_error", "invalid_request", param=param)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = str(exc.detail)
    if exc.status_code == 400 and message == "There was an error parsing the body":
        # FastAPI's words for a body json.loads could not take but that raised no
        # JSONDecodeError: bytes that are not UTF-8, or nesting past the recursion limit.
        message = "the body is not valid JSON: it is not UTF-8 text, or it is nested too deeply"
        code = "invalid_json"
    headers = getattr(exc, "headers", None)
    return shape_for(request.scope)(
        exc.status_code, message, "invalid_request_error", code, headers
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.url.path)
    return shape_for(request.scope)(500, "internal server error", "server_error", "internal")


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def describe_invalid(content_type: str, problems: Sequence[Any]) -> tuple[str, str | None]:
    """One message that says what is wrong with a request body, and the field at fault."""
    media_type = content_type.partition(";")[0].strip().lower()
    described = []
    param: str | None = None
    for err in problems[:5]:
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "JSON decode error")
            at = f" at character {loc[0]}" if loc else ""
            return f"the body is not valid JSON: {reason}{at}", None
        if not loc and err.get("type") == "missing":
            return "the body is empty: send a JSON object with a `messages` list", None
        if not loc and err.get("type") in ("model_attributes_type", "dict_type"):
            if media_type and media_type != "application/json" and not media_type.endswith("+json"):
                return (
                    "the body must be JSON sent with Content-Type: application/json "
                    f"(got {media_type!r})"
                ), None
            return "the body must be a JSON object with a `messages` list", None
        if param is None and loc:
            param = loc[0]
        described.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(described), param
