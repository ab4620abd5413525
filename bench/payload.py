"""The stream every client reads: N realistic OpenAI `chat.completion.chunk` events.

Deterministic (the same N always gives the same bytes and text), stdlib only,
so the source server, the runners in either virtualenv and the orchestrator
all agree on what each client must produce.
"""

from __future__ import annotations

import hashlib
import json

__all__ = [
    "NONCE_SLOT",
    "expected_sha",
    "expected_text",
    "render_events",
    "tagged_events",
    "tagged_tokens",
    "tokens",
]

# Mostly English word pieces, a few multi-byte ones (é, Cyrillic, CJK, emoji)
# so every client also decodes UTF-8. The first token has no leading space:
# gpt4free strips the first piece's leading whitespace.
_WORDS = (
    " the", " stream", " of", " tokens", " arrives", " one", " piece", " at", " a",
    " time", ",", " and", " each", " chunk", " carries", " its", " own", " delta", ".",
    " café", " Привет", " 世界", " 🚀", " model", " answer", " quickly", " is", " to",
    " parse", " JSON", "\n",
)
_ID = "chatcmpl-9bXq2kTz"
_HEAD = '{"id":"' + _ID + '","object":"chat.completion.chunk","created":1718000000,'
_HEAD += '"model":"gpt-3.5-turbo","choices":[{"index":0,"delta":'


_SEP = (",", ":")


def tokens(n: int) -> list[str]:
    """The N text pieces, in order."""
    out = ["Sure"]
    state = 12345
    for _ in range(n - 1):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(_WORDS[state % len(_WORDS)])
    return out[:n]


def expected_text(n: int) -> str:
    return "".join(tokens(n))


def expected_sha(n: int) -> str:
    return hashlib.sha1(expected_text(n).encode()).hexdigest()


def _chunk(delta: dict[str, str], finish: str | None) -> bytes:
    tail = ',"finish_reason":' + json.dumps(finish) + "}]}"
    return (_HEAD + json.dumps(delta, ensure_ascii=False, separators=_SEP) + tail).encode()


def render_events(n: int) -> list[bytes]:
    """The SSE events as sent: a role chunk, N content chunks, a finish chunk, [DONE]."""
    return _render(tokens(n))


# A stream that belongs to one request (the gateway section's cross-talk check):
# every NONCE_EVERY-th piece, from the second on, is " #" + the request's 8-hex-digit
# nonce. The source server renders it once with NONCE_SLOT and fills in each
# request's nonce with one `bytes.replace` (same length, so the framing holds).
NONCE_SLOT = b"@@@@@@@@"
NONCE_EVERY = 8


def tagged_tokens(n: int, nonce: str) -> list[str]:
    """tokens(n) with the request's nonce as every NONCE_EVERY-th piece."""
    out = tokens(n)
    for i in range(1, n, NONCE_EVERY):
        out[i] = f" #{nonce}"
    return out


def tagged_events(n: int) -> list[bytes]:
    """render_events for tagged_tokens, with NONCE_SLOT where the nonce goes."""
    return _render(tagged_tokens(n, NONCE_SLOT.decode()))


def _render(pieces: list[str]) -> list[bytes]:
    events = [_chunk({"role": "assistant", "content": ""}, None)]
    events += [_chunk({"content": t}, None) for t in pieces]
    events.append(_chunk({}, "stop"))
    framed = [b"data: " + e + b"\n\n" for e in events]
    framed.append(b"data: [DONE]\n\n")
    return framed
