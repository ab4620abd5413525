"""Providers: the framework and every provider that ships with codelinkava."""

from __future__ import annotations

from ..errors import InvalidRequestError
from ..request import ChatRequest
from .anthropic import Anthropic
from .base import AsyncGeneratorProvider, BaseProvider, SetupOption
from .codelinkava import CodeLinkAva
from .http import HTTPChatProvider
from .local import LocalModel
from .openai import OpenAICompatible
from .retry_provider import RetryProvider

__all__ = [
    "DEFAULT_PROVIDER",
    "PROVIDERS",
    "Anthropic",
    "AsyncGeneratorProvider",
    "BaseProvider",
    "ChatRequest",
    "CodeLinkAva",
    "HTTPChatProvider",
    "LocalModel",
    "OpenAICompatible",
    "RetryProvider",
    "SetupOption",
    "get_provider",
]

#: The names the CLI and the gateway accept for `--provider`, in the order the CLI
#: looks for one that its flags or the environment configure (else the default).
PROVIDERS: dict[str, type[AsyncGeneratorProvider]] = {
    "openai": OpenAICompatible,
    "codelinkava": CodeLinkAva,
    "anthropic": Anthropic,
    "local": LocalModel,
}
#: What runs when nothing is configured: the embedded model, offline.
DEFAULT_PROVIDER = "local"


def get_provider(name: str) -> type[AsyncGeneratorProvider]:
    """The provider class for a `--provider` name."""
    try:
        return PROVIDERS[name.lower()]
    except KeyError:
        raise InvalidRequestError(
            f"unknown provider {name!r}; choose one of {', '.join(PROVIDERS)}"
        ) from None
