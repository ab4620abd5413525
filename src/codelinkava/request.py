"""`ChatRequest`: the one value the streaming core takes.

A provider builds it (URL, headers, body, how to send, which wire format to
read the answer in); the core (`codelinkava._chat`) sends it and decodes the
answer. It sits below both, so neither imports the other's names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import ClientOptions
from .formats import OPENAI_SSE, WireFormat

__all__ = ["ChatRequest"]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """Everything one chat request needs on the wire."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    options: ClientOptions = field(default_factory=ClientOptions)
    wire: WireFormat = OPENAI_SSE
    method: str = "POST"
