"""codelinkava: streaming chat completions from CodeLinkAva, any OpenAI-compatible
endpoint, or an embedded local model.

    async for text in CodeLinkAva.create_async_generator("gpt-3.5-turbo", messages):
        print(text, end="")

Importing this package loads neither aiohttp nor llama.cpp nor the gateway:
each is imported on first use, so `import codelinkava` stays cheap.
"""

from __future__ import annotations

from . import errors
from ._version import __version__
from .config import Timeouts
from .providers import (
    PROVIDERS,
    AsyncGeneratorProvider,
    BaseProvider,
    CodeLinkAva,
    LocalModel,
    OpenAICompatible,
    get_provider,
)

__all__ = [
    "PROVIDERS",
    "AsyncGeneratorProvider",
    "BaseProvider",
    "CodeLinkAva",
    "LocalModel",
    "OpenAICompatible",
    "Timeouts",
    "__version__",
    "errors",
    "get_provider",
]
