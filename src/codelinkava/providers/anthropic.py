"""Anthropic's Messages API, or any server that speaks it, on the same core as the others.

The request is `POST {base_url}/v1/messages` with `x-api-key` and
`anthropic-version`; its body is translated from the caller's OpenAI-shaped
messages and fields by `_anthropic_request` (pure), and the answer read by
`formats.anthropic_sse`: one chunk per event, so a Messages relay forwards it
as it came. Retries, time limits and typed errors are the core's; an
`overloaded_error` or `rate_limit_error` the stream reports before its answer
begins is retried like the 529 or 429 it stands for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from .._version import __version__
from ..config import split_options
from ..errors import InvalidRequestError, ProviderError, StreamError
from ..formats.anthropic_sse import ANTHROPIC_SSE
from ..request import ChatRequest
from ..types import Messages, validate_messages
from ._anthropic_request import REQUEST_FIELDS, messages_body, translate_fields
from .base import SetupOption
from .http import HTTPChatProvider

__all__ = ["DEFAULT_ANTHROPIC_URL", "DEFAULT_ANTHROPIC_VERSION", "Anthropic"]

BASE_URL_ENV = "ANTHROPIC_BASE_URL"
API_KEY_ENV = "ANTHROPIC_API_KEY"
DEFAULT_ANTHROPIC_URL = "https://api.anthropic.com"
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"


class Anthropic(HTTPChatProvider):
    """Anthropic's Messages API (`x-api-key`, `anthropic-version`), or any server speaking it."""

    url: ClassVar[str] = DEFAULT_ANTHROPIC_URL
    working: ClassVar[bool] = True
    needs_auth: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    default_model: ClassVar[str] = "claude-haiku-4-5"
    models: ClassVar[tuple[str, ...]] = ()  # whatever the server serves
    option_docs: ClassVar[tuple[tuple[str, str], ...]] = (
        ("max_tokens", "int"),
        ("temperature", "float"),
        ("thinking", "dict"),
        ("anthropic_beta", "str | list[str]"),
        ("base_url", "str"),
        ("api_key", "str"),
        ("anthropic_version", "str"),
        ("proxy", "str"),
        ("timeout", "float | Timeouts"),
        ("max_retries", "int"),
        ("headers", "dict[str, str]"),
    )
    setup_options: ClassVar[tuple[SetupOption, ...]] = (
        SetupOption(
            "base_url",
            "--base-url",
            "base URL, e.g. https://api.anthropic.com",
            env=BASE_URL_ENV,
            default=DEFAULT_ANTHROPIC_URL,
        ),
        SetupOption("api_key", "--api-key-upstream", "API key", env=API_KEY_ENV, secret=True),
        SetupOption(
            "anthropic_version",
            "--anthropic-version",
            f"the anthropic-version header (default {DEFAULT_ANTHROPIC_VERSION})",
        ),
    )
    request_fields: ClassVar[frozenset[str] | None] = REQUEST_FIELDS
    relays_anthropic_events: ClassVar[bool] = True
    # ANTHROPIC_BASE_URL is what Claude Code's users set to point it *at* a gateway
    # like ours: a gateway started in that shell must not take it for its upstream.
    chosen_by_environment: ClassVar[bool] = False

    @classmethod
    def base_url(cls, options: Mapping[str, Any]) -> str:
        """`base_url=`, else `ANTHROPIC_BASE_URL`, else Anthropic's."""
        return str(cls.setup_options[0].value(options) or DEFAULT_ANTHROPIC_URL).rstrip("/")

    @classmethod
    def describe_endpoint(cls, options: Mapping[str, Any]) -> str:
        return cls.base_url(options)

    @classmethod
    def check_request_fields(cls, fields: Mapping[str, Any]) -> None:
        """Refuse a field it cannot honour, or a value it cannot translate, by name."""
        translate_fields(fields)

    @classmethod
    def _headers(
        cls, options: Mapping[str, Any], betas: list[str], extra: Mapping[str, str]
    ) -> dict[str, str]:
        version = options.get("anthropic_version") or DEFAULT_ANTHROPIC_VERSION
        if not isinstance(version, str):
            raise InvalidRequestError("anthropic_version must be a string")
        headers = {
            "Accept": ANTHROPIC_SSE.accept,
            "Content-Type": "application/json",
            "User-Agent": f"codelinkava/{__version__}",
            "anthropic-version": version,
        }
        api_key = options.get("api_key") or os.environ.get(API_KEY_ENV)
        if api_key:
            headers["x-api-key"] = str(api_key)
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        headers.update(extra)
        return headers

    @classmethod
    def build_request(cls, model: str, messages: Messages, kwargs: dict[str, Any]) -> ChatRequest:
        """`{base_url}/v1/messages`; `stream=False` gets one `message` object."""
        kwargs = dict(kwargs)
        setup = {
            name: kwargs.pop(name, None) for name in ("base_url", "api_key", "anthropic_version")
        }
        options, fields = split_options(kwargs, cls.retry_policy)
        model = model or cls.default_model
        if not isinstance(model, str):
            raise InvalidRequestError(f"model must be a string, not {type(model).__name__}")
        body, betas = messages_body(model, validate_messages(messages), fields)
        url = cls.base_url(setup) + "/v1/messages"
        return ChatRequest(
            url, cls._headers(setup, betas, options.headers), body, options, wire=ANTHROPIC_SSE
        )

    @classmethod
    async def list_models(cls, **kwargs: Any) -> list[str]:
        """The model ids `GET {base_url}/v1/models` lists (`base_url`, `api_key`, ...)."""
        setup = {
            name: kwargs.pop(name, None) for name in ("base_url", "api_key", "anthropic_version")
        }
        options, _ = split_options(kwargs, cls.retry_policy)
        from ..core.stream import fetch_json

        url = cls.base_url(setup) + "/v1/models"
        listing = await fetch_json(url, cls._headers(setup, [], options.headers), options)
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            raise StreamError(f"{url} did not answer a model list")
        return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    @classmethod
    async def served_models(cls, options: Mapping[str, Any]) -> list[str]:
        """What `GET {base_url}/v1/models` lists, with the set-up options' key, version,
        proxy and headers, within 5 s, no retries; our default first when it is listed."""
        names = ("base_url", "api_key", "anthropic_version", "proxy", "headers")
        lookup = {k: options[k] for k in names if options.get(k) is not None}
        listed = await cls.list_models(**lookup, timeout=5, max_retries=0)
        if cls.default_model in listed:
            listed.remove(cls.default_model)
            listed.insert(0, cls.default_model)
        return listed

    @classmethod
    async def pick_model(cls, options: Mapping[str, Any]) -> str:
        """For a server other than Anthropic's own, the first model it lists."""
        if cls.base_url(options) == DEFAULT_ANTHROPIC_URL:
            return cls.default_model
        lookup = {
            k: options[k] for k in ("base_url", "api_key", "anthropic_version") if options.get(k)
        }
        try:
            listed = await cls.list_models(**lookup, timeout=5, max_retries=0)
        except ProviderError:
            return cls.default_model  # the chat request itself will say what is wrong
        return listed[0] if listed else cls.default_model
