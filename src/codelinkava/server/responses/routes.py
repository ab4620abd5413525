"""`/v1/responses`: the chat route's parts, and the routes of stored responses.

`RESPONSES_ROUTE` is one `ChatRoute` (server/routes.py): the body
(`wire.ResponsesRequest`), its translation into a `ChatAsk` (`translate.py`,
after the stored conversation of `previous_response_id` is looked up), and its
encoder (`encoder.py`). `install_responses` adds `GET` and `DELETE
/v1/responses/{id}` over the app's store (`store.py`: memory, or Redis when
`settings.redis_url` is set) and closes the store when the app shuts down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from weakref import WeakKeyDictionary

from fastapi import FastAPI, Request
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from codelinkava.errors import InvalidRequestError

from ..chat_route import ChatAsk, ChatRoute
from ..encoders import AnswerEncoder
from ..errors import OPENAI_ERRORS
from ..state import GatewayState
from .encoder import ResponsesEncoder
from .store import ResponseStore, StoreUnavailableError, make_store
from .translate import ResponsesTranslation, translate_responses
from .wire import ResponsesRequest

__all__ = ["RESPONSES_ROUTE", "install_responses", "store_of"]

#: Each app's store, by its GatewayState (two apps in one process keep two stores).
_STORES: WeakKeyDictionary[GatewayState, ResponseStore] = WeakKeyDictionary()


def store_of(state: GatewayState) -> ResponseStore:
    """The store of the app `state` belongs to (made on first use)."""
    store = _STORES.get(state)
    if store is None:
        settings = state.settings
        store = _STORES[state] = make_store(
            settings.redis_url,
            max_entries=settings.responses_max_entries,
            max_bytes=settings.responses_max_bytes,
            ttl=settings.responses_ttl,
        )
    return store


async def responses_ask(body: Any, state: GatewayState, headers: Headers) -> ChatAsk:
    """The request in chat terms, continuing the stored conversation it names."""
    assert isinstance(body, ResponsesRequest)
    history = None
    previous = body.previous_response_id
    if previous is not None:
        record = await store_of(state).get(previous)
        if record is None:
            raise InvalidRequestError(
                f"Previous response with id {previous!r} not found: it was not stored "
                "(store: false), was deleted, or has expired",
                param="previous_response_id",
            )
        history = record.messages
    translation = translate_responses(body, history)
    return ChatAsk(
        model=body.model,
        messages=translation.messages,
        fields=translation.fields,
        stream=body.stream,
        include_usage=True,
        extras={"translation": translation},
    )


def responses_encoder(body: Any, ask: ChatAsk, state: GatewayState) -> AnswerEncoder:
    assert isinstance(body, ResponsesRequest)
    translation: ResponsesTranslation = ask.extras["translation"]
    return ResponsesEncoder(
        ask.model,
        translation,
        prompt_estimate=ask.prompt_estimate,
        store=store_of(state) if body.stores else None,
    )


RESPONSES_ROUTE: ChatRoute = ChatRoute(
    "/v1/responses",
    ResponsesRequest,
    responses_ask,
    responses_encoder,
    "OpenAI's Responses API, streamed (events with sequence numbers) or whole, before any "
    "provider; `store` and `previous_response_id` work, every other field is honoured, "
    "forwarded or refused by name.",
)


# Stored responses ---------------------------------------------------------------------------


def _not_found(response_id: str) -> JSONResponse:
    return OPENAI_ERRORS(
        404,
        f"No response found with id {response_id!r}: it was not stored (store: false), "
        "was deleted, or has expired",
        "invalid_request_error",
        "not_found",
        param="response_id",
    )


def _unavailable(exc: StoreUnavailableError) -> JSONResponse:
    return OPENAI_ERRORS(503, str(exc), "server_error", "store_unavailable", {"Retry-After": "1"})


async def retrieve_response(request: Request, response_id: str) -> Response:
    """A stored response, as it finished (streaming it again is not served)."""
    for name, value in request.query_params.multi_items():
        if name == "stream" and value.lower() in ("false", "0"):
            continue
        why = (
            "streaming a stored response again is not served"
            if name == "stream"
            else ("the stored response is returned whole, as it finished")
        )
        return OPENAI_ERRORS(
            400, f"{name}: {why}", "invalid_request_error", "invalid_request", param=name
        )
    state: GatewayState = request.app.state.gateway
    try:
        record = await store_of(state).get(response_id)
    except StoreUnavailableError as exc:
        return _unavailable(exc)
    if record is None:
        return _not_found(response_id)
    return JSONResponse(record.response)


async def delete_response(request: Request, response_id: str) -> Response:
    """Forget a stored response: it can no longer be read nor continued."""
    state: GatewayState = request.app.state.gateway
    try:
        deleted = await store_of(state).delete(response_id)
    except StoreUnavailableError as exc:
        return _unavailable(exc)
    if not deleted:
        return _not_found(response_id)
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})


def install_responses(app: FastAPI) -> None:
    """GET and DELETE of stored responses; the store is closed when the app shuts down."""
    store = store_of(app.state.gateway)
    path = "/v1/responses/{response_id}"
    app.add_api_route(path, retrieve_response, methods=["GET"], response_model=None)
    app.add_api_route(path, delete_response, methods=["DELETE"], response_model=None)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        try:
            async with inner(app) as value:
                yield value
        finally:
            await store.aclose()

    app.router.lifespan_context = lifespan
