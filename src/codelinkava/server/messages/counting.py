"""Input tokens for `count_tokens`: the backend's own count where it has one, else ours.

A backend that can count (a local model's tokenizer, an upstream's own
count endpoint) offers `async count_tokens(model, messages, fields) -> int |
None`, messages and fields in the backends' terms (OpenAI's); None means it
cannot count this one. No backend offers it yet, so today the answer is the
gateway's estimate: four characters of text a token, over the messages' text,
the tool calls' arguments and the tools' definitions -- the estimate the
router and the limits use (`types.estimate_prompt_tokens`), plus the tools.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from codelinkava.types import estimate_prompt_tokens

__all__ = ["count_input_tokens", "estimate_input_tokens"]

Counter = Callable[[str, list[dict[str, Any]], dict[str, Any]], Awaitable[int | None]]


async def count_input_tokens(
    backend: object, model: str, messages: list[dict[str, Any]], fields: dict[str, Any]
) -> tuple[int, str]:
    """(input tokens, "model" when the backend counted them or "estimate")."""
    counter: Counter | None = getattr(backend, "count_tokens", None)
    if callable(counter):
        counted = await counter(model, messages, fields)
        if isinstance(counted, int) and not isinstance(counted, bool) and counted >= 0:
            return counted, "model"
    return estimate_input_tokens(messages, fields), "estimate"


def estimate_input_tokens(messages: list[dict[str, Any]], fields: dict[str, Any]) -> int:
    """Roughly, 4 characters a token: the text, the tool calls, the tool definitions."""
    extra = 0
    for message in messages:
        for call in message.get("tool_calls") or ():
            extra += len(str(call.get("function", {}).get("arguments", "")))
    tools = fields.get("tools")
    if tools:
        extra += len(json.dumps(tools, ensure_ascii=False))
    return estimate_prompt_tokens(messages) + extra // 4
