"""Shared type aliases and the one check every provider applies to `messages`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

from .errors import InvalidRequestError

__all__ = [
    "Message",
    "Messages",
    "estimate_prompt_tokens",
    "text_of",
    "validate_messages",
]

Message: TypeAlias = Mapping[str, Any]
Messages: TypeAlias = Sequence[Message]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def validate_messages(messages: Any) -> list[dict[str, Any]]:
    """Refuse, with a message naming the culprit, what no chat API would accept.

    Done before anything is sent so a mistake costs no round trip and never
    surfaces as a KeyError deep in a response handler.
    """
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise InvalidRequestError(
            'messages must be a list of {"role": ..., "content": ...} dicts, '
            f"not {type(messages).__name__}"
        )
    if not messages:
        raise InvalidRequestError("messages is empty: send at least one message")
    checked: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequestError(
                f"messages[{index}] must be a dict with 'role' and 'content', "
                f"not {type(message).__name__}"
            )
        role = message.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise InvalidRequestError(
                f"messages[{index}] has role {role!r}; expected one of {', '.join(sorted(_ROLES))}"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequestError(
                f"messages[{index}].content must be a string (or a list of parts), "
                f"not {type(content).__name__}"
            )
        if content is None and role != "assistant":
            raise InvalidRequestError(f"messages[{index}] ({role}) has no content")
        checked.append(dict(message))
    return checked


def text_of(content: Any) -> str:
    """The text of a message's content, whether a string or a list of OpenAI content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_part_text(part) for part in content)
    return ""


def estimate_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Prompt tokens, roughly (4 characters of text each): what limits and usage count
    when the upstream reports none. One estimate for the router and the gateway."""
    return sum(len(text_of(message.get("content"))) for message in messages) // 4


def _part_text(part: Any) -> str:
    if isinstance(part, Mapping):  # {"type": "text", "text": ...}; other parts carry no text
        text = part.get("text")
        return text if isinstance(text, str) else ""
    return part if isinstance(part, str) else str(part)
