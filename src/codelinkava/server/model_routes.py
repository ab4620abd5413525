"""`GET /v1/models` and `GET /v1/models/{id}`: what the backend serves, in the caller's API.

Both OpenAI and Anthropic serve their model list at the same path, so the request
says which it is: the `anthropic-version` header (which the `anthropic` SDK and Claude
Code always send) gets Anthropic's shape -- its pages (`limit`, `after_id`,
`before_id`), its `lifecycle` filter and its errors -- and anything else OpenAI's.
The names are the backend's `list_models()`: the configured ones, or what the
upstream lists (server/model_list.py), never a name no one serves.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse

from .backend import Backend
from .errors import OPENAI_ERRORS

__all__ = ["ANTHROPIC_VERSION_HEADER", "install_model_routes"]

#: The header that marks a request as Anthropic's.
ANTHROPIC_VERSION_HEADER = "anthropic-version"
#: Anthropic's `created_at` where the release date is unknown (its docs: "an epoch value").
_EPOCH = "1970-01-01T00:00:00Z"
_LIFECYCLES = frozenset({"active", "deprecated", "retired"})
_DEFAULT_LIMIT, _MAX_LIMIT = 20, 1000


class _BadQuery(Exception):
    """A query parameter Anthropic's list would refuse; the message names it."""


async def list_models(request: Request) -> JSONResponse:
    """The model names this gateway serves: OpenAI's list, or Anthropic's page."""
    names = await _backend(request).list_models()
    if not _is_anthropic(request):
        return JSONResponse({"object": "list", "data": [_openai_model(n) for n in names]})
    try:
        return JSONResponse(_anthropic_page(names, request.query_params))
    except _BadQuery as exc:
        return _anthropic_error(400, "invalid_request_error", str(exc))


async def retrieve_model(request: Request, model_id: str) -> JSONResponse:
    """One model this gateway serves, or a 404 in the caller's API."""
    names = await _backend(request).list_models()
    anthropic = _is_anthropic(request)
    if model_id not in names:
        message = f"the model {model_id!r} does not exist on this gateway"
        if anthropic:
            return _anthropic_error(404, "not_found_error", message)
        return OPENAI_ERRORS(
            404, message, "invalid_request_error", "model_not_found", param="model"
        )
    return JSONResponse(_anthropic_model(model_id) if anthropic else _openai_model(model_id))


def install_model_routes(app: FastAPI) -> None:
    """The list and the retrieval; `:path` because upstream names hold slashes
    (`Qwen/Qwen2.5-7B-Instruct`), which clients send percent-encoded or not."""
    app.add_api_route("/v1/models", list_models, methods=["GET"])
    app.add_api_route("/v1/models/{model_id:path}", retrieve_model, methods=["GET"])


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.gateway.backend
    return backend


def _is_anthropic(request: Request) -> bool:
    return ANTHROPIC_VERSION_HEADER in request.headers


def _openai_model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "codelinkava"}


def _anthropic_model(name: str) -> dict[str, Any]:
    return {
        "type": "model",
        "id": name,
        "display_name": name,
        "created_at": _EPOCH,
        "lifecycle": "active",
    }


def _anthropic_page(names: list[str], query: QueryParams) -> dict[str, Any]:
    """One page of Anthropic's list: `limit` names after `after_id`, or before `before_id`."""
    limit = _limit(query.get("limit"))
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None and before is not None:
        raise _BadQuery("after_id and before_id cannot both be given")
    for name, cursor in (("after_id", after), ("before_id", before)):
        if cursor is not None and cursor not in names:
            raise _BadQuery(f"{name}: no model {cursor!r} on this gateway")
    if "active" not in _lifecycles(query):
        names = []  # every model here is active
    if not names:
        start = end = 0
    elif after is not None:
        start = names.index(after) + 1
        end = min(start + limit, len(names))
    elif before is not None:
        end = names.index(before)
        start = max(0, end - limit)
    else:
        start, end = 0, min(limit, len(names))
    page = names[start:end]
    more = start > 0 if before is not None else end < len(names)
    return {
        "data": [_anthropic_model(n) for n in page],
        "has_more": more,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }


def _limit(raw: str | None) -> int:
    if raw is None:
        return _DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= _MAX_LIMIT:
        raise _BadQuery(f"limit must be a whole number from 1 to {_MAX_LIMIT}, got {raw!r}")
    return limit


def _lifecycles(query: QueryParams) -> set[str]:
    """The stages asked for (`lifecycle[]=...`, as the SDK sends them, or `lifecycle=`);
    Anthropic's default: active and deprecated."""
    given = [*query.getlist("lifecycle[]"), *query.getlist("lifecycle")]
    asked = {part.strip() for value in given for part in value.split(",") if part.strip()}
    unknown = sorted(asked - _LIFECYCLES)
    if unknown:
        raise _BadQuery(f"lifecycle: {unknown[0]!r} is not one of active, deprecated, retired")
    return asked or {"active", "deprecated"}


def _anthropic_error(status: int, kind: str, message: str) -> JSONResponse:
    """Anthropic's error shape (the Messages routes' own shape says the same)."""
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status)
