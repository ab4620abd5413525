"""The bodies of `POST /v1/messages` and `/v1/messages/count_tokens`, as pydantic v2 models.

Only the envelope is typed here: what FastAPI can refuse before any
translation (a missing `max_tokens`, a role that is neither user nor
assistant, a temperature above 1). Content blocks, tools and `tool_choice` are
checked block by block in `translate.py`, which knows whether the upstream
speaks Messages itself (then blocks and fields we do not translate travel as
sent) and names each fault by its path (`messages.1.content.0.tool_use_id`).
Top-level fields the models do not list are kept (`extra="allow"`) so that the
translator forwards them to such an upstream or refuses them by name: never
dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CountTokensRequest", "MessageParam", "MessagesRequest"]

_INT32 = 2**31 - 1


class MessageParam(BaseModel):
    """One turn: a string, or a list of content blocks (checked by the translator).

    `system` is a mid-conversation system message (Anthropic's beta, sent by Claude Code).
    """

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system"]
    content: str | list[dict[str, Any]]


class _Conversation(BaseModel):
    """What both endpoints take: the model, the turns, the system prompt, the tools."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[MessageParam] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None


class MessagesRequest(_Conversation):
    """`POST /v1/messages`: Anthropic's Messages request."""

    max_tokens: int = Field(ge=1, le=_INT32)
    metadata: dict[str, Any] | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0, le=_INT32)


class CountTokensRequest(_Conversation):
    """`POST /v1/messages/count_tokens`: the conversation whose input tokens to count."""
