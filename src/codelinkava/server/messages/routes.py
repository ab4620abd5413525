"""`/v1/messages` on the gateway's seam: the translator and encoder its `ChatRoute` names,
and `/v1/messages/count_tokens`.

`server/routes.py` lists the chat route (`CHAT_ROUTES`: the body, `messages_ask`,
`messages_encoder`, `ANTHROPIC_ERRORS`) and calls `install_messages_routes` for
the rest. Headers: `anthropic-version` is accepted whatever it says (the
gateway speaks one version of the wire); `anthropic-beta` is forwarded, as the
field `anthropic_beta`, to an upstream that speaks Messages itself, and
otherwise ignored: a beta only unlocks a feature, and every feature that
changes an answer comes as a body field, block or tool type, which the
translator refuses by name when the upstream cannot honour it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from codelinkava.errors import ProviderError

from ..chat_route import ChatAsk
from ..errors import provider_error_response
from ..wire import reserved_field
from .counting import count_input_tokens
from .encoder import MessagesEncoder
from .errors import ANTHROPIC_ERRORS, new_request_id
from .translate import translate
from .wire import CountTokensRequest, MessagesRequest

if TYPE_CHECKING:
    from ..encoders import AnswerEncoder
    from ..state import GatewayState

__all__ = [
    "COUNT_TOKENS_PATH",
    "install_messages_routes",
    "messages_ask",
    "messages_encoder",
]

COUNT_TOKENS_PATH = "/v1/messages/count_tokens"


def _betas(headers: Headers) -> list[str]:
    """The values of `anthropic-beta` (comma-separated, possibly over several headers)."""
    values = headers.getlist("anthropic-beta")
    return [beta.strip() for value in values for beta in value.split(",") if beta.strip()]


async def messages_ask(body: MessagesRequest, state: GatewayState, headers: Headers) -> ChatAsk:
    """The Messages body in the backends' terms (`ChatRoute.ask`)."""
    native = state.backend.speaks_anthropic(body.model)
    translated = translate(body, native=native, betas=_betas(headers))
    fields = translated.fields
    if body.stream and not native:
        fields["stream_options"] = {"include_usage": True}  # Anthropic's stream ends with it
    return ChatAsk(
        model=body.model,
        messages=translated.messages,
        fields=fields,
        stream=body.stream,
        include_usage=True,
        extras={"stop_sequences": list(body.stop_sequences or ()), "request_id": new_request_id()},
    )


def messages_encoder(body: MessagesRequest, ask: ChatAsk, state: GatewayState) -> AnswerEncoder:
    """`ChatRoute.encoder`: Anthropic's events, or the whole `message`."""
    return MessagesEncoder(
        ask.model,
        prompt_estimate=ask.prompt_estimate,
        stop_sequences=ask.extras.get("stop_sequences", ()),
        request_id=ask.extras.get("request_id") or new_request_id(),
    )


async def count_tokens(request: Request, body: CountTokensRequest) -> Response:
    """Anthropic's `count_tokens`: `{"input_tokens": N}` for the conversation as sent.

    N is the backend's own count where it can make one (a tokenizer), else the
    gateway's estimate; the `x-codelinkava-token-count` header says which.
    """
    state: GatewayState = request.app.state.gateway
    reserved = reserved_field(body)
    if reserved is not None:
        return ANTHROPIC_ERRORS(
            400,
            f"the field {reserved!r} is not accepted: the gateway's operator sets it",
            "invalid_request_error",
            "field_not_allowed",
            param=reserved,
        )
    native = state.backend.speaks_anthropic(body.model)
    try:
        translated = translate(body, native=native)
        tokens, source = await count_input_tokens(
            state.backend, body.model, translated.messages, translated.fields
        )
    except ProviderError as exc:
        return provider_error_response(exc, ANTHROPIC_ERRORS)
    return JSONResponse(
        {"input_tokens": tokens},
        headers={"request-id": new_request_id(), "x-codelinkava-token-count": source},
    )


def install_messages_routes(app: FastAPI) -> None:
    """What `/v1/messages` serves beside its chat route: `count_tokens`."""
    app.add_api_route(COUNT_TOKENS_PATH, count_tokens, methods=["POST"], response_model=None)
