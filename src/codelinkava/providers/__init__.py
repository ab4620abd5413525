"""Providers: the framework and every provider that ships with codelinkava."""

from __future__ import annotations

from ..errors import InvalidRequestError
from .base import AsyncGeneratorProvider, BaseProvider
from .codelinkava import CodeLinkAva
from .http import ChatRequest, HTTPChatProvider
from .local import LocalModel
from .openai import OpenAICompatible

__all__ = [
    "PROVIDERS",
    "AsyncGeneratorProvider",
    "BaseProvider",
    "ChatRequest",
    "CodeLinkAva",
    "HTTPChatProvider",
    "LocalModel",
    "OpenAICompatible",
    "get_provider",
]

#: The names the CLI and the gateway accept for `--provider`.
PROVIDERS: dict[str, type[AsyncGeneratorProvider]] = {
    "local": LocalModel,
    "codelinkava": CodeLinkAva,
    "openai": OpenAICompatible,
}


def get_provider(name: str) -> type[AsyncGeneratorProvider]:
    """The provider class for a `--provider` name."""
    try:
        return PROVIDERS[name.lower()]
    except KeyError:
        raise InvalidRequestError(
            f"unknown provider {name!r}; choose one of {', '.join(PROVIDERS)}"
        ) from None
