"""`HTTPChatProvider`: a provider that is one POST to a chat endpoint.

Subclasses only build the request -- URL, headers, body, the options the
library consumes, the wire format -- and the shared core (`codelinkava._chat`)
does the rest: retries, time limits, decoding, the end-of-stream checks.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, ClassVar

from ..chunk import ChatChunk
from ..request import ChatRequest
from ..retry import DEFAULT_RETRY_POLICY, RetryPolicy
from ..types import Messages
from .base import AsyncGeneratorProvider

__all__ = ["ChatRequest", "HTTPChatProvider"]


class HTTPChatProvider(AsyncGeneratorProvider):
    """Streams a chat endpoint; which wire format it speaks is its request's `wire`."""

    #: Its default retries; `retry=` or `max_retries=` per call change them.
    retry_policy: ClassVar[RetryPolicy] = DEFAULT_RETRY_POLICY

    @classmethod
    @abstractmethod
    def build_request(cls, model: str, messages: Messages, kwargs: dict[str, Any]) -> ChatRequest:
        """The request for this call; raises InvalidRequestError for arguments no server takes."""

    @classmethod
    async def create_async_generator(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[str, None]:
        """POST the conversation and yield the answer's text as it streams in."""
        async with aclosing(cls.create_async_batches(model, messages, **kwargs)) as batches:
            async for batch in batches:
                for text in batch:
                    yield text

    @classmethod
    async def create_async_batches(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[list[str], None]:
        """The same text, a list per network read (what a relay writes in one send)."""
        request = cls.build_request(model, messages, kwargs)
        from ..core.stream import (
            stream_texts,  # imported on first use: keeps `import codelinkava` light
        )

        # aclosing: when our consumer leaves, the core's response closes with us, not at GC.
        async with aclosing(stream_texts(request)) as batches:
            async for batch in batches:
                yield batch

    @classmethod
    async def create_async_chunk_batches(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[list[ChatChunk], None]:
        """Typed chunks, a list per network read; each keeps the upstream's JSON in `raw`."""
        request = cls.build_request(model, messages, kwargs)
        from ..core.stream import stream_chunks

        async with aclosing(stream_chunks(request)) as batches:
            async for batch in batches:
                yield batch
