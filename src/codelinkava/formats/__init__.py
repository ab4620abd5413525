"""Wire formats: how an answer's bytes become chunks. See `formats.base` for the seam."""

from __future__ import annotations

from .anthropic_sse import ANTHROPIC_SSE, AnthropicSSE
from .base import BodyKind, StreamDecoder, WireFormat
from .openai_sse import OPENAI_SSE, OpenAISSE

__all__ = [
    "ANTHROPIC_SSE",
    "OPENAI_SSE",
    "AnthropicSSE",
    "BodyKind",
    "OpenAISSE",
    "StreamDecoder",
    "WireFormat",
]
