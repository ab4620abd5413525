"""Wire formats: how an answer's bytes become chunks. See `formats.base` for the seam."""

from __future__ import annotations

from .base import BodyKind, StreamDecoder, WireFormat
from .openai_sse import OPENAI_SSE, OpenAISSE

__all__ = ["OPENAI_SSE", "BodyKind", "OpenAISSE", "StreamDecoder", "WireFormat"]
