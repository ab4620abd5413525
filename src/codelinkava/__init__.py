"""codelinkava: streaming chat completions from CodeLinkAva, any OpenAI-compatible
endpoint, any Anthropic Messages endpoint, or an embedded local model.

    async for text in CodeLinkAva.create_async_generator("gpt-3.5-turbo", messages):
        print(text, end="")

Importing this package loads neither aiohttp nor llama.cpp nor the gateway:
each is imported on first use, so `import codelinkava` stays cheap.
"""

from __future__ import annotations

from . import errors
from ._version import __version__
from .chat_completion import ChatCompletion
from .chunk import AnswerBuilder, ChatChunk, ToolCall, ToolCallDelta
from .config import Timeouts
from .formats import StreamDecoder, WireFormat
from .providers import (
    PROVIDERS,
    Anthropic,
    AsyncGeneratorProvider,
    BaseProvider,
    CodeLinkAva,
    LocalModel,
    OpenAICompatible,
    RetryProvider,
    get_provider,
)
from .providers.http import HTTPChatProvider
from .request import ChatRequest
from .retry import RetryPolicy
from .transports import MockResponse, MockTransport, Transport, TransportRequest

__all__ = [
    "PROVIDERS",
    "AnswerBuilder",
    "Anthropic",
    "AsyncGeneratorProvider",
    "BaseProvider",
    "ChatChunk",
    "ChatCompletion",
    "ChatRequest",
    "CodeLinkAva",
    "HTTPChatProvider",
    "LocalModel",
    "MockResponse",
    "MockTransport",
    "OpenAICompatible",
    "RetryPolicy",
    "RetryProvider",
    "StreamDecoder",
    "Timeouts",
    "ToolCall",
    "ToolCallDelta",
    "Transport",
    "TransportRequest",
    "WireFormat",
    "__version__",
    "errors",
    "get_provider",
]
