"""The public contract of DESIGN.md: names, class attributes, `params`, a light import."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import types
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest

import codelinkava
import codelinkava.chunks
import codelinkava.config
import codelinkava.failover
import codelinkava.formats.openai_chunks
import codelinkava.formats.sse
import codelinkava.sse
import codelinkava.transport
import codelinkava.types
from codelinkava import Anthropic, CodeLinkAva, LocalModel, OpenAICompatible, errors
from codelinkava.providers import AsyncGeneratorProvider, BaseProvider
from codelinkava.providers.base import capture_stream_info, report_stream_info
from codelinkava.types import Messages

PROVIDERS = [
    pytest.param(CodeLinkAva, id="CodeLinkAva"),
    pytest.param(OpenAICompatible, id="OpenAICompatible"),
    pytest.param(LocalModel, id="LocalModel"),
    pytest.param(Anthropic, id="Anthropic"),
]


def public_names(module: types.ModuleType) -> set[str]:
    """What a module offers: its non-underscore names, less the submodules it merely loaded."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and name != "annotations"  # from __future__ import annotations
        and not (isinstance(value, types.ModuleType) and name != "errors")
    }


def test_all_matches_the_public_names() -> None:
    assert len(codelinkava.__all__) == len(set(codelinkava.__all__))
    assert set(codelinkava.__all__) - {"__version__"} == public_names(codelinkava)
    assert isinstance(codelinkava.__version__, str)


def test_contract_names_are_exported() -> None:
    assert {"CodeLinkAva", "OpenAICompatible", "LocalModel", "errors"} <= set(codelinkava.__all__)
    assert "Anthropic" in codelinkava.__all__ and codelinkava.PROVIDERS["anthropic"] is Anthropic
    assert {"BaseProvider", "AsyncGeneratorProvider"} <= set(codelinkava.providers.__all__)
    assert codelinkava.errors is errors


@pytest.mark.parametrize(
    "module",
    [
        pytest.param(codelinkava.providers, id="providers"),
        pytest.param(errors, id="errors"),
        pytest.param(codelinkava.sse, id="sse"),
        pytest.param(codelinkava.chunks, id="chunks"),
        pytest.param(codelinkava.formats.sse, id="formats.sse"),
        pytest.param(codelinkava.formats.openai_chunks, id="formats.openai_chunks"),
        pytest.param(codelinkava.config, id="config"),
        pytest.param(codelinkava.types, id="types"),
    ],
)
def test_every_name_in_all_exists(module: types.ModuleType) -> None:
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(module, name), f"{module.__name__}.{name}"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("codelinkava.sse", "codelinkava.formats.sse"),
        ("codelinkava.chunks", "codelinkava.formats.openai_chunks"),
        ("codelinkava.transport", "codelinkava.transports"),
        ("codelinkava.failover", "codelinkava.core.failover"),
        ("codelinkava.server.limits", "codelinkava.server.limiters"),
    ],
)
def test_old_import_paths_reexport_the_new_homes(old: str, new: str) -> None:
    """Code written against the flat layout of the first rounds goes on working: every
    public name of the module's new home is the same object under the old path."""
    import importlib

    before, after = importlib.import_module(old), importlib.import_module(new)
    assert set(before.__all__) >= set(after.__all__)
    for name in after.__all__:
        assert getattr(before, name) is getattr(after, name), f"{old}.{name}"


def test_extension_points_are_exported_from_the_top_level() -> None:
    """What a user builds on -- a transport, a wire format, a request, an HTTP provider,
    a retry policy -- is importable from `codelinkava` itself, as httpx exports its
    transports."""
    from codelinkava.formats import StreamDecoder, WireFormat
    from codelinkava.providers.http import HTTPChatProvider
    from codelinkava.request import ChatRequest
    from codelinkava.transports import MockResponse, MockTransport, Transport, TransportRequest

    for value in (
        StreamDecoder,
        WireFormat,
        HTTPChatProvider,
        ChatRequest,
        MockResponse,
        MockTransport,
        Transport,
        TransportRequest,
    ):
        assert getattr(codelinkava, value.__name__) is value


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_class_attributes(provider: type[AsyncGeneratorProvider]) -> None:
    assert issubclass(provider, AsyncGeneratorProvider)
    assert issubclass(provider, BaseProvider)
    assert provider.url is None or provider.url.startswith("http")
    for flag in ("working", "supports_stream", "supports_gpt_35_turbo", "supports_message_history"):
        assert type(getattr(provider, flag)) is bool, flag
    assert provider.supports_stream is True
    assert provider.default_model is None or isinstance(provider.default_model, str)
    assert all(isinstance(model, str) for model in provider.models)
    assert isinstance(provider.params, str)
    assert inspect.isasyncgenfunction(provider.create_async_generator)
    assert inspect.ismethod(provider.create_async_generator)  # a classmethod, bound to the class
    assert inspect.ismethod(provider.create_completion)
    assert inspect.iscoroutinefunction(provider.create_async)


def test_codelinkava_is_the_seed() -> None:
    assert CodeLinkAva.url == "https://ava-ai-ef611.web.app"
    assert CodeLinkAva.api_url == "https://ava-alpha-api.codelink.io/api/chat"
    assert CodeLinkAva.working is True
    assert CodeLinkAva.supports_gpt_35_turbo is True
    assert CodeLinkAva.supports_message_history is True


def test_create_async_generator_signature() -> None:
    parameters = list(inspect.signature(CodeLinkAva.create_async_generator).parameters.values())
    assert [p.name for p in parameters[:2]] == ["model", "messages"]
    assert parameters[-1].kind is inspect.Parameter.VAR_KEYWORD


@pytest.mark.parametrize(
    ("provider", "options"),
    [
        pytest.param(CodeLinkAva, ["api_url: str", "proxy", "timeout", "max_retries"], id="cla"),
        pytest.param(OpenAICompatible, ["base_url: str", "api_key: str"], id="openai"),
        pytest.param(LocalModel, ["model_path: str"], id="local"),
        pytest.param(Anthropic, ["base_url: str", "anthropic_version: str"], id="anthropic"),
    ],
)
def test_params_describes_the_call(provider: type[BaseProvider], options: list[str]) -> None:
    params = provider.params
    assert params.startswith(f"codelinkava.{provider.__name__} supports: (")
    assert params.endswith(")")
    assert "model: str, messages: Messages, stream: bool" in params
    for option in options:
        assert option in params


class Echo(AsyncGeneratorProvider):
    """A provider written the way the contract says: one classmethod async generator."""

    working: ClassVar[bool] = True
    option_docs: ClassVar[tuple[tuple[str, str], ...]] = (("shout", "bool"),)

    @classmethod
    async def create_async_generator(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncIterator[str]:
        text = str(messages[-1]["content"])
        yield text.upper() if kwargs.get("shout") else text
        report_stream_info(finish_reason="stop", usage={"total_tokens": 1})


def test_params_of_a_new_provider() -> None:
    assert Echo.params.endswith(
        "Echo supports: (model: str, messages: Messages, stream: bool, shout: bool)"
    )
    assert "shout" not in AsyncGeneratorProvider.params


async def test_capture_stream_info_collects_what_the_stream_reports() -> None:
    with capture_stream_info() as info:
        assert info.finish_reason is None and info.usage is None
        pieces = [
            p async for p in Echo.create_async_generator("m", [{"role": "user", "content": "hi"}])
        ]
    assert pieces == ["hi"]
    assert info.finish_reason == "stop"
    assert info.usage == {"total_tokens": 1}


def test_capture_stream_info_nests_and_resets() -> None:
    report_stream_info(finish_reason="stop", usage=None)  # nobody listening: a no-op
    with capture_stream_info() as outer:
        with capture_stream_info() as inner:
            report_stream_info(finish_reason="length", usage={"a": 1})
        assert inner.finish_reason == "length"
        assert outer.finish_reason is None
        report_stream_info(finish_reason="stop", usage={"b": 2})
        report_stream_info(finish_reason="stop", usage=None)  # None keeps the usage seen
        assert outer.usage == {"b": 2}
    with capture_stream_info() as fresh:
        pass
    assert fresh.finish_reason is None and fresh.usage is None


def test_import_is_light() -> None:
    heavy = ["aiohttp", "fastapi", "uvicorn", "llama_cpp", "pydantic"]
    code = (
        "import json, sys\n"
        "import codelinkava\n"
        "from codelinkava import Anthropic, CodeLinkAva, OpenAICompatible, LocalModel, errors\n"
        "from codelinkava.providers import BaseProvider, AsyncGeneratorProvider\n"
        "CodeLinkAva.params, LocalModel.params\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == []
