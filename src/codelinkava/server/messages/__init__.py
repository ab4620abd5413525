"""Anthropic's Messages API on the gateway: `POST /v1/messages` and `/v1/messages/count_tokens`.

One job a module: `wire` (the request envelope, pydantic), `translate` (pure:
the body -> OpenAI chat messages and fields), `encoder` (the typed chunks ->
Anthropic's events or whole message; an Anthropic upstream's own events
relayed as sent), `errors` (Anthropic's error shape), `counting` (input
tokens), `routes` (the route's translator and encoder, count_tokens).
"""

from __future__ import annotations

from .encoder import MessagesEncoder
from .errors import ANTHROPIC_ERRORS
from .routes import (
    install_messages_routes,
    messages_ask,
    messages_encoder,
)
from .translate import Translation, translate
from .wire import CountTokensRequest, MessagesRequest

__all__ = [
    "ANTHROPIC_ERRORS",
    "CountTokensRequest",
    "MessagesEncoder",
    "MessagesRequest",
    "Translation",
    "install_messages_routes",
    "messages_ask",
    "messages_encoder",
    "translate",
]
