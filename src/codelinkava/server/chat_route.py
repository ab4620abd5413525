"""What one chat API is to the gateway: `ChatRoute`, and `ChatAsk`, its request in the
backends' terms.

A route translates its wire's body into a `ChatAsk` (OpenAI chat messages and
fields, which every backend takes), and an encoder writes the typed chunks back
in its wire; `state.GatewayState.respond` admits any of them the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from starlette.datastructures import Headers

from .encoders import AnswerEncoder
from .errors import OPENAI_ERRORS, ErrorShape

if TYPE_CHECKING:
    from .state import GatewayState

__all__ = ["ChatAsk", "ChatRoute"]


@dataclass
class ChatAsk:
    """One chat request in the backends' terms, whatever API it came in.

    `messages` are OpenAI chat messages (every provider takes them), `fields` the
    request's other fields by OpenAI's names (or by a provider's own, such as
    `thinking`, where the route forwards them to an upstream that speaks them).
    """

    model: str
    messages: list[dict[str, Any]]
    fields: dict[str, Any]
    stream: bool
    #: Whether the caller asked for usage in the stream (OpenAI's `include_usage`).
    include_usage: bool = False
    #: Prompt tokens, roughly; set by `respond` for encoders that must report usage.
    prompt_estimate: int = 0
    #: Anything the route's translator wants its encoder to see (the request's own ids).
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatRoute:
    """One chat API the gateway serves."""

    path: str
    #: The wire model FastAPI validates the body against (its errors: 400 in `errors`).
    body: type[BaseModel]
    #: The body in the backends' terms; raises InvalidRequestError (a 400 naming the field)
    #: for what cannot be translated.
    ask: Callable[[Any, GatewayState, Headers], Awaitable[ChatAsk]]
    #: The encoder of one answer: (request, its translation, the state) -> encoder.
    encoder: Callable[[Any, ChatAsk, GatewayState], AnswerEncoder]
    #: What the endpoint is, for the OpenAPI page.
    summary: str
    #: A field whose answer this wire cannot carry back, and why: refused, never dropped.
    beyond: Callable[[Any], tuple[str, str] | None] | None = None
    #: How this API writes an error (every error under `path`, the middleware's too).
    errors: ErrorShape = OPENAI_ERRORS
