"""Any OpenAI-compatible `/chat/completions` endpoint, on the same core as CodeLinkAva."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from .._version import __version__
from ..config import Timeouts, split_options
from ..errors import InvalidRequestError, ProviderError, StreamError
from ..formats import OPENAI_SSE
from ..request import ChatRequest
from ..types import Messages, validate_messages
from .base import SetupOption
from .http import HTTPChatProvider

__all__ = [
    "DEFAULT_BASE_URL",
    "LISTING_TIMEOUT",
    "OpenAICompatible",
]

BASE_URL_ENV = "OPENAI_BASE_URL"
OPENAI_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: The longest `served_models` waits for a model list: callers cache it and fall back.
LISTING_TIMEOUT = 5.0
#: The set-up options a model listing is sent with (never a request's).
_LISTING_OPTIONS = ("base_url", "api_key", "proxy", "headers", "transport")


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
    setup_options: ClassVar[tuple[SetupOption, ...]] = (
        SetupOption(
            "base_url", "--base-url", "base URL, e.g. http://127.0.0.1:8000/v1", env=BASE_URL_ENV
        ),
        SetupOption("api_key", "--api-key-upstream", "API key", env=OPENAI_KEY_ENV, secret=True),
    )
    relays_openai_chunks: ClassVar[bool] = True

    @classmethod
    def base_url(cls, options: Mapping[str, Any]) -> str:
        """`base_url=`, else `OPENAI_BASE_URL`, else OpenAI's."""
        return str(cls.setup_options[0].value(options) or DEFAULT_BASE_URL).rstrip("/")

    @classmethod
    def endpoint(cls, base_url: str | None = None) -> str:
        """`{base_url}/chat/completions`, from the argument, `OPENAI_BASE_URL`, or OpenAI's."""
        return cls.base_url({"base_url": base_url}) + "/chat/completions"

    @classmethod
    def describe_endpoint(cls, options: Mapping[str, Any]) -> str:
        return cls.base_url(options)

    @classmethod
    async def pick_model(cls, options: Mapping[str, Any]) -> str:
        """For a server other than OpenAI's own, the first model it lists.

        vLLM, llama.cpp, Ollama and our gateway each name theirs, so
        `chat --base-url URL "..."` works without knowing the name.
        """
        if cls.base_url(options) == DEFAULT_BASE_URL:
            return cls.default_model
        try:
            listed = await cls.served_models(options)
        except ProviderError:
            return cls.default_model  # the chat request itself will say what is wrong
        return listed[0] if listed else cls.default_model

    @classmethod
    async def served_models(cls, options: Mapping[str, Any]) -> list[str]:
        """What `GET {base_url}/models` lists, with the set-up options' key, proxy and
        headers, within `LISTING_TIMEOUT` seconds (or the options' shorter limit), no retries.

        Our default model comes first when the server lists it (OpenAI's own API lists
        dozens, in no useful order); otherwise the server's order, whose first is what a
        vLLM or llama.cpp server runs.
        """
        lookup = {k: options[k] for k in _LISTING_OPTIONS if options.get(k) is not None}
        timeouts = Timeouts.coerce(options.get("timeout"))
        limits = (timeouts.connect, timeouts.first_chunk, LISTING_TIMEOUT)
        limit = min(t for t in limits if t is not None)
        listed = await cls.list_models(**lookup, timeout=limit, max_retries=0)
        if cls.default_model in listed:
            listed.remove(cls.default_model)
            listed.insert(0, cls.default_model)
        return listed

    @classmethod
    def _headers(cls, api_key: str | None, extra: Mapping[str, str]) -> dict[str, str]:
        headers = {
            "Accept": OPENAI_SSE.accept,
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
        base = cls.base_url({"base_url": kwargs.pop("base_url", None)})
        api_key = kwargs.pop("api_key", None) or os.environ.get(OPENAI_KEY_ENV)
        options, _ = split_options(kwargs, cls.retry_policy)
        from ..core.stream import fetch_json

        headers = cls._headers(api_key, {"Accept": "application/json", **options.headers})
        listing = await fetch_json(base.rstrip("/") + "/models", headers, options)
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            raise StreamError(f"{base}/models did not answer a model list")
        return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    @classmethod
    def build_request(cls, model: str, messages: Messages, kwargs: dict[str, Any]) -> ChatRequest:
        """`{base_url}/chat/completions` with `model`; `stream=False` gets one JSON answer."""
        kwargs = dict(kwargs)
        url = cls.endpoint(kwargs.pop("base_url", None))
        api_key = kwargs.pop("api_key", None) or os.environ.get(OPENAI_KEY_ENV)
        options, extra = split_options(kwargs, cls.retry_policy)
        model = model or cls.default_model
        if not isinstance(model, str):
            raise InvalidRequestError(f"model must be a string, not {type(model).__name__}")
        body = {"model": model, "messages": validate_messages(messages), "stream": True, **extra}
        return ChatRequest(url, cls._headers(api_key, options.headers), body, options)
