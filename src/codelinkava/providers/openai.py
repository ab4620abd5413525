"""Any OpenAI-compatible `/chat/completions` endpoint, on the same core as CodeLinkAva."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from .._version import __version__
from ..config import split_options
from ..errors import InvalidRequestError, StreamError
from ..types import Messages, validate_messages
from .http import ChatRequest, HTTPChatProvider

__all__ = ["OpenAICompatible"]

BASE_URL_ENV = "OPENAI_BASE_URL"
API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAICompatible(HTTPChatProvider):
    """OpenAI's API or any server that speaks it: vLLM, llama.cpp, Ollama, `codelinkava serve`."""

    url: ClassVar[str] = DEFAULT_BASE_URL
    working: ClassVar[bool] = True
    needs_auth: ClassVar[bool] = False
    supports_gpt_35_turbo: ClassVar[bool] = True
    supports_gpt_4: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    default_model: ClassVar[str] = "gpt-3.5-turbo"
    models: ClassVar[tuple[str, ...]] = ()  # whatever the server serves
    option_docs: ClassVar[tuple[tuple[str, str], ...]] = (
        ("temperature", "float"),
        ("max_tokens", "int"),
        ("base_url", "str"),
        ("api_key", "str"),
        ("proxy", "str"),
        ("timeout", "float | Timeouts"),
        ("max_retries", "int"),
        ("headers", "dict[str, str]"),
    )

    @classmethod
    def endpoint(cls, base_url: str | None = None) -> str:
        """`{base_url}/chat/completions`, from the argument, `OPENAI_BASE_URL`, or OpenAI's."""
        base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        return base.rstrip("/") + "/chat/completions"

    @classmethod
    def _headers(cls, api_key: str | None, extra: Mapping[str, str]) -> dict[str, str]:
        headers = {
            "Accept": "text/event-stream, application/json",
            "Content-Type": "application/json",
            "User-Agent": f"codelinkava/{__version__}",
        }
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        headers.update(extra)
        return headers

    @classmethod
    async def list_models(cls, **kwargs: Any) -> list[str]:
        """The model ids `GET {base_url}/models` lists (`base_url`, `api_key`, `timeout`, ...)."""
        base = kwargs.pop("base_url", None) or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        api_key = kwargs.pop("api_key", None) or os.environ.get(API_KEY_ENV)
        options, _ = split_options(kwargs)
        from .._chat import fetch_json

        listing = await fetch_json(
            base.rstrip("/") + "/models", cls._headers(api_key, options.headers), options
        )
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            raise StreamError(f"{base}/models did not answer a model list")
        return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    @classmethod
    def build_request(cls, model: str, messages: Messages, kwargs: dict[str, Any]) -> ChatRequest:
        """`{base_url}/chat/completions` with `model`; `stream=False` gets one JSON answer."""
        kwargs = dict(kwargs)
        url = cls.endpoint(kwargs.pop("base_url", None))
        api_key = kwargs.pop("api_key", None) or os.environ.get(API_KEY_ENV)
        options, extra = split_options(kwargs)
        model = model or cls.default_model
        if not isinstance(model, str):
            raise InvalidRequestError(f"model must be a string, not {type(model).__name__}")
        body = {"model": model, "messages": validate_messages(messages), "stream": True, **extra}
        return ChatRequest(url, cls._headers(api_key, options.headers), body, options)
