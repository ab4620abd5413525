"""The one set of wire builders the suites share: OpenAI chunks, SSE events and streams,
and a retry policy fast enough to count retries without waiting for them."""

from __future__ import annotations

import json
from typing import Any

from codelinkava.retry import RetryPolicy

__all__ = ["FAST_RETRY", "chunk", "event", "split_every", "sse"]

#: Backoff of a few ms: retries are counted, not waited for.
FAST_RETRY = RetryPolicy(initial_backoff=0.005, max_backoff=0.01)


def chunk(
    content: str | None = None, *, finish_reason: str | None = None, role: str | None = None
) -> dict[str, Any]:
    """A chat-completion chunk as OpenAI streams it."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-3.5-turbo",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def event(payload: Any, eol: str = "\n") -> bytes:
    """One `data:` event; a str payload is sent as is, anything else as JSON."""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}{eol}{eol}".encode()


def sse(*texts: str, done: bool = True, finish: bool = False, eol: str = "\n") -> bytes:
    """A whole stream: a content chunk per text, an optional finish_reason chunk, [DONE]."""
    out = b"".join(event(chunk(text), eol) for text in texts)
    if finish:
        out += event(chunk(finish_reason="stop"), eol)
    if done:
        out += event("[DONE]", eol)
    return out


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]
