"""`HTTPChatProvider`: a provider that is one POST to a chat endpoint.

Subclasses only build the request -- URL, headers, body, the options the
library consumes -- and the shared core (`codelinkava._chat`) does the rest:
retries, time limits, SSE decoding, the end-of-stream checks.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from ..config import ClientOptions
from ..types import Messages
from .base import AsyncGeneratorProvider

__all__ = ["ChatRequest", "HTTPChatProvider"]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """Everything one chat request needs on the wire."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    options: ClientOptions


class HTTPChatProvider(AsyncGeneratorProvider):
    """Streams a chat endpoint that answers in the OpenAI chunk format over SSE."""

    @classmethod
    @abstractmethod
    def build_request(cls, model: str, messages: Messages, kwargs: dict[str, Any]) -> ChatRequest:
        """The request for this call; raises InvalidRequestError for arguments no server takes."""

    @classmethod
    async def create_async_generator(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncIterator[str]:
        """POST the conversation and yield the answer's text as it streams in."""
        request = cls.build_request(model, messages, kwargs)
        from .._chat import stream_chat  # imported on first use: keeps `import codelinkava` light

        # aclosing: when our consumer leaves, the core's response closes with us, not at GC.
        async with aclosing(
            stream_chat(request.url, request.headers, request.body, request.options)
        ) as batches:
            async for batch in batches:
                for text in batch:
                    yield text

    @classmethod
    async def create_async_batches(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncIterator[list[str]]:
        """The same text, a list per network read (what a relay writes in one send)."""
        request = cls.build_request(model, messages, kwargs)
        from .._chat import stream_chat

        async with aclosing(
            stream_chat(request.url, request.headers, request.body, request.options)
        ) as batches:
            async for batch in batches:
                yield batch
