"""Pure: the objects of OpenAI's Responses API -- the Response, its output items, usage.

Shapes as openai-python's `types/responses` types read them (`Response`,
`ResponseOutputMessage`, `ResponseFunctionToolCall`, `ResponseUsage`); ids as
OpenAI writes them (`resp_`, `msg_`, `fc_` and hex).
"""

from __future__ import annotations

import secrets
from typing import Any

from codelinkava import errors

from ..encoders import make_usage
from ..errors import public_message, status_for

__all__ = [
    "failure",
    "function_call_item",
    "message_item",
    "new_id",
    "response_object",
    "response_status",
    "responses_usage",
]


def new_id(prefix: str) -> str:
    """An id as OpenAI writes them: `resp_…`, `msg_…`, `fc_…`."""
    return f"{prefix}_{secrets.token_hex(24)}"


def message_item(
    item_id: str,
    text: str | None,
    refusal: str | None,
    status: str,
    logprobs: list[Any] | None = None,
) -> dict[str, Any]:
    """An assistant message item: its output_text part, then its refusal, when there are."""
    content: list[dict[str, Any]] = []
    if text is not None:
        content.append(
            {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}
        )
    if refusal is not None:
        content.append({"type": "refusal", "refusal": refusal})
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def responses_usage(
    usage: dict[str, Any] | None, pieces: int, prompt_estimate: int
) -> dict[str, Any]:
    """Chat usage (the upstream's, else our count) in the Responses names, field by field."""
    chat = make_usage(usage, pieces, prompt_estimate)
    prompt = chat.get("prompt_tokens")
    completion = chat.get("completion_tokens")
    prompt_details = chat.get("prompt_tokens_details")
    completion_details = chat.get("completion_tokens_details")
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None
    reasoning = (
        completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else None
    )
    # An Anthropic upstream's cache writes ride on chat usage as their own key.
    written = chat.get("cache_creation_input_tokens")
    input_tokens = prompt if isinstance(prompt, int) else 0
    output_tokens = completion if isinstance(completion, int) else 0
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": cached if isinstance(cached, int) else 0,
            "cache_write_tokens": written if isinstance(written, int) else 0,
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {
            "reasoning_tokens": reasoning if isinstance(reasoning, int) else 0
        },
        "total_tokens": input_tokens + output_tokens,
    }


def response_status(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """(status, incomplete_details) for the chat finish_reason the answer ended with."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def failure(exc: errors.ProviderError) -> dict[str, Any]:
    """A Response's `error` for a failure after the stream began: OpenAI's codes are
    `server_error` and `rate_limit_exceeded` for what can go wrong upstream."""
    _status, kind, _code, _headers = status_for(exc)
    rate_limited = isinstance(exc, errors.RateLimitError) or kind == "rate_limit_error"
    return {
        "code": "rate_limit_exceeded" if rate_limited else "server_error",
        "message": public_message(exc),
        "type": kind,
        "param": None,
    }


def response_object(
    response_id: str,
    created_at: int,
    model: str,
    echo: dict[str, Any],
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    incomplete_details: dict[str, Any] | None = None,
    completed_at: int | None = None,
) -> dict[str, Any]:
    """The Response object: its state now, and the request's parameters it repeats."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": completed_at,
        "error": error,
        "incomplete_details": incomplete_details,
        "model": model,
        "output": output,
        "usage": usage,
        **echo,
    }
