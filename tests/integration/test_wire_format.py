"""What goes on the wire: the seed's headers and body, byte for byte, and where it is sent."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from codelinkava import CodeLinkAva, OpenAICompatible, Timeouts
from support.scripted import MESSAGES, Reply, ScriptedServer, event, sse

SEED_HEADERS = [
    (
        b"User-Agent",
        b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        b"(KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36",
    ),
    (b"Accept", b"*/*"),
    (
        b"Accept-language",
        b"en,fr-FR;q=0.9,fr;q=0.8,es-ES;q=0.7,es;q=0.6,en-US;q=0.5,am;q=0.4,de;q=0.3",
    ),
    (b"Origin", b"https://ava-ai-ef611.web.app"),
    (b"Referer", b"https://ava-ai-ef611.web.app/"),
    (b"Sec-Fetch-Dest", b"empty"),
    (b"Sec-Fetch-Mode", b"cors"),
    (b"Sec-Fetch-Site", b"same-origin"),
]


async def ask(provider: Any, model: str = "gpt-3.5-turbo", **kwargs: Any) -> str:
    async with asyncio.timeout(5):
        return "".join(
            [t async for t in provider.create_async_generator(model, MESSAGES, **kwargs)]
        )


def named(raw_headers: tuple[tuple[bytes, bytes], ...], name: bytes) -> list[bytes]:
    return [v for k, v in raw_headers if k.lower() == name.lower()]


async def test_seed_headers_and_body_byte_for_byte(server: ScriptedServer) -> None:
    assert await ask(CodeLinkAva, api_url=server.url()) == "Hello, world"
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/api/chat")
    for name, value in SEED_HEADERS:
        # the seed's exact spelling, once
        assert [(k, v) for k, v in request.raw_headers if k.lower() == name.lower()] == [
            (name, value)
        ]
    assert named(request.raw_headers, b"content-type") == [b"application/json"]
    expected = {"messages": MESSAGES, "temperature": 0.6, "stream": True}
    assert request.body == json.dumps(expected).encode()
    assert "model" not in request.json()


async def test_kwargs_override_defaults_and_library_options_stay_out(
    server: ScriptedServer,
) -> None:
    kwargs: dict[str, Any] = {
        "temperature": 0.1,
        "timeout": Timeouts(idle=5),
        "stream": False,
        "max_retries": 1,
        "proxy": None,
        "headers": {"X-Trace": "abc"},
        "top_p": 0.5,
        "user": "seed",
    }
    await ask(CodeLinkAva, api_url=server.url(), **kwargs)
    (request,) = server.requests
    body = {"temperature": 0.1, "stream": False, "top_p": 0.5, "user": "seed"}
    assert (
        request.body
        == json.dumps({"messages": MESSAGES, "temperature": 0.6, "stream": True, **body}).encode()
    )
    for option in ("api_url", "timeout", "proxy", "max_retries", "headers", "model"):
        assert option not in request.json()
    assert named(request.raw_headers, b"x-trace") == [b"abc"]


@pytest.mark.parametrize("name", ["User-Agent", "user-agent", "REFERER"])
async def test_extra_headers_replace_seed_headers_whatever_their_case(
    server: ScriptedServer, name: str
) -> None:
    await ask(CodeLinkAva, api_url=server.url(), headers={name: "mine"})
    (request,) = server.requests
    assert named(request.raw_headers, name.encode()) == [b"mine"]


async def test_api_url_from_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODELINKAVA_API_URL", server.url("/custom/chat"))
    assert await ask(CodeLinkAva) == "Hello, world"
    assert server.requests[0].path == "/custom/chat"


async def test_api_url_argument_beats_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODELINKAVA_API_URL", "http://127.0.0.1:9/never")
    await ask(CodeLinkAva, api_url=server.url("/arg"))
    assert server.requests[0].path == "/arg"


async def test_proxy_option_sends_through_the_proxy(server: ScriptedServer) -> None:
    # The scripted server plays an HTTP proxy: the request names the real host.
    await ask(CodeLinkAva, api_url="http://chat.invalid/api/chat", proxy=server.url(""))
    (request,) = server.requests
    assert named(request.raw_headers, b"host") == [b"chat.invalid"]
    assert "proxy" not in request.json()


async def test_openai_compatible_request(server: ScriptedServer) -> None:
    await ask(
        OpenAICompatible,
        "my-model",
        base_url=server.url("/v1/"),
        api_key="sk-test",
        max_tokens=7,
        timeout=3,
    )
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert named(request.raw_headers, b"authorization") == [b"Bearer sk-test"]
    assert named(request.raw_headers, b"content-type") == [b"application/json"]
    expected = {"model": "my-model", "messages": MESSAGES, "stream": True, "max_tokens": 7}
    assert request.body == json.dumps(expected).encode()


async def test_openai_compatible_from_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url("/env/v1"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert await ask(OpenAICompatible, "m") == "Hello, world"
    (request,) = server.requests
    assert request.path == "/env/v1/chat/completions"
    assert named(request.raw_headers, b"authorization") == [b"Bearer sk-env"]
    assert request.json()["model"] == "m"


async def test_openai_compatible_without_key_sends_no_authorization(server: ScriptedServer) -> None:
    await ask(OpenAICompatible, "m", base_url=server.url("/v1"))
    assert named(server.requests[0].raw_headers, b"authorization") == []


# The seed's own examples, run as written --------------------------------------------


async def test_seed_example_1_with_api_url(
    server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reply(Reply(body=[sse("I am fine", ", thank you!")]))
    model = "gpt-3.5-turbo"
    messages = [{"role": "user", "content": "Hello, how are you?"}]
    async with asyncio.timeout(5):
        async_generator = CodeLinkAva.create_async_generator(model, messages, api_url=server.url())
        async for response in async_generator:
            print(response, end="")
    assert capsys.readouterr().out == "I am fine, thank you!"


async def test_seed_example_2_literal_call_via_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CODELINKAVA_API_URL", server.url())
    server.reply(
        Reply(body=[event({"choices": [{"delta": {"content": "Berlin."}}]}), event("[DONE]")])
    )
    model = "gpt-3.5-turbo"
    messages = [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "What is the capital of Germany?"},
    ]
    async with asyncio.timeout(5):
        async_generator = CodeLinkAva.create_async_generator(model, messages)
        async for response in async_generator:
            print(response, end="")
    assert capsys.readouterr().out == "Berlin."
    assert server.requests[0].json()["messages"] == messages
