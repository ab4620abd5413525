"""The seed's provider: CodeLinkAva's chat API, as the original client spoke it.

Only the wire is stated here -- the site URL, the browser-like headers, the
body with its defaults, the endpoint. Sending, retries, time limits and SSE
decoding are the shared core's (`codelinkava._chat`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..config import split_options
from ..request import ChatRequest
from ..types import Messages, validate_messages
from .base import SetupOption
from .http import HTTPChatProvider

__all__ = ["CodeLinkAva"]

API_URL_ENV = "CODELINKAVA_API_URL"


class CodeLinkAva(HTTPChatProvider):
    """CodeLinkAva's GPT-3.5 Turbo chat API, or any server speaking its wire format (`api_url=`)."""

    url: ClassVar[str] = "https://ava-ai-ef611.web.app"
    api_url: ClassVar[str] = "https://ava-alpha-api.codelink.io/api/chat"
    working: ClassVar[bool] = True
    supports_gpt_35_turbo: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    default_model: ClassVar[str] = "gpt-3.5-turbo"
    models: ClassVar[tuple[str, ...]] = ("gpt-3.5-turbo",)
    option_docs: ClassVar[tuple[tuple[str, str], ...]] = (
        ("temperature", "float"),
        ("api_url", "str"),
        ("proxy", "str"),
        ("timeout", "float | Timeouts"),
        ("max_retries", "int"),
        ("headers", "dict[str, str]"),
    )
    setup_options: ClassVar[tuple[SetupOption, ...]] = (
        SetupOption("api_url", "--api-url", "full chat endpoint URL", env=API_URL_ENV),
    )
    single_model: ClassVar[bool] = True
    relays_openai_chunks: ClassVar[bool] = True

    @classmethod
    def endpoint(cls, options: Mapping[str, Any]) -> str:
        """The chat endpoint: `api_url=`, else `CODELINKAVA_API_URL`, else the seed's."""
        return str(cls.setup_options[0].value(options) or cls.api_url)

    @classmethod
    def describe_endpoint(cls, options: Mapping[str, Any]) -> str:
        return cls.endpoint(options)

    @classmethod
    def headers(cls) -> dict[str, str]:
        """The seed's browser headers, byte for byte."""
        return {
            "User-Agent": (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36"
            ),
            "Accept": "*/*",
            "Accept-language": (
                "en,fr-FR;q=0.9,fr;q=0.8,es-ES;q=0.7,es;q=0.6,en-US;q=0.5,am;q=0.4,de;q=0.3"
            ),
            "Origin": cls.url,
            "Referer": f"{cls.url}/",
            "Sec-Fetch-Dest": "empty",
            "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Site": "same-origin",
        }

    @classmethod
    def build_request(cls, model: str, messages: Messages, kwargs: dict[str, Any]) -> ChatRequest:
        """The seed's request. Like the seed, no `model` is sent: the API served one model.

        Keyword arguments go into the body (overriding `temperature` 0.6 and
        `stream` true), except the library's own options.
        """
        kwargs = dict(kwargs)
        api_url = cls.endpoint({"api_url": kwargs.pop("api_url", None)})
        options, extra = split_options(kwargs, cls.retry_policy)
        body = {
            "messages": validate_messages(messages),
            "temperature": 0.6,
            "stream": True,
            **extra,
        }
        headers = {**cls.headers(), "Content-Type": "application/json", **options.headers}
        return ChatRequest(api_url, headers, body, options)
