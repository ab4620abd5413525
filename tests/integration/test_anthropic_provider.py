"""The Anthropic provider against a real Messages server on 127.0.0.1 speaking Anthropic's SSE.

Every reply is what Anthropic sends, byte for byte (`support/anthropic_streams.py`):
the documented streams, its error bodies and statuses (429 with `retry-after`, 529),
its in-stream `event: error`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from codelinkava import Anthropic, errors
from codelinkava.chunk import ChatChunk
from codelinkava.providers.base import reserved_option_names
from codelinkava.server import GatewaySettings
from support.anthropic_streams import (
    TEXT_EVENTS,
    TEXT_STREAM,
    TOOL_ARGUMENTS,
    TOOL_ID,
    TOOL_STREAM,
    TOOL_TEXT,
    WHOLE_TOOL_MESSAGE,
    error_event,
    status,
    stream,
)
from support.live_gateway import live_gateway
from support.scripted import MESSAGES, Reply, ScriptedServer

KEY = "sk-ant-test-key"
#: The documented text stream cut after its opening events (message_start, block, ping).
OPENING = TEXT_STREAM[: TEXT_STREAM.index(b"event: content_block_delta")]
#: ...and after its first text delta ("Hello").
FIRST_TEXT = TEXT_STREAM[: TEXT_STREAM.index(b"\n\n", TEXT_STREAM.index(b'"Hello"')) + 2]


def options(server: ScriptedServer, **extra: Any) -> dict[str, Any]:
    return {"base_url": server.url(""), "api_key": KEY, "timeout": 5, **extra}


async def text(server: ScriptedServer, **extra: Any) -> str:
    async with asyncio.timeout(10):
        gen = Anthropic.create_async_generator("claude-x", MESSAGES, **options(server, **extra))
        return "".join([piece async for piece in gen])


async def chunks(server: ScriptedServer, **extra: Any) -> list[ChatChunk]:
    async with asyncio.timeout(10):
        gen = Anthropic.create_async_chunks("claude-x", MESSAGES, **options(server, **extra))
        return [chunk async for chunk in gen]


# the wire ------------------------------------------------------------------------------


async def test_a_text_stream(server: ScriptedServer) -> None:
    server.reply(stream(TEXT_STREAM))
    assert await text(server) == "Hello!"
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert request.json() == {
        "model": "claude-x",
        "max_tokens": 4096,
        "messages": MESSAGES,
        "stream": True,
    }


async def test_one_chunk_per_event_with_the_upstreams_exact_json(server: ScriptedServer) -> None:
    server.reply(stream(*(piece + b"\n\n" for piece in TEXT_STREAM.split(b"\n\n") if piece)))
    got = await chunks(server)
    assert [c.data["type"] for c in got if c.data] == list(TEXT_EVENTS)
    sent = [line[6:] for line in TEXT_STREAM.decode().split("\n") if line.startswith("data: ")]
    assert [c.raw for c in got] == sent
    assert Anthropic.relays_anthropic_events and not Anthropic.relays_openai_chunks


async def test_a_tool_use_stream(server: ScriptedServer) -> None:
    server.reply(stream(TOOL_STREAM))
    async with asyncio.timeout(10):
        answer = await Anthropic.create_async_answer("claude-x", MESSAGES, **options(server))
    assert answer.text == TOOL_TEXT
    [call] = answer.tool_calls
    assert (call.id, call.name, call.arguments) == (TOOL_ID, "get_weather", TOOL_ARGUMENTS)
    assert answer.finish_reason == "tool_calls"
    assert answer.usage == {
        "prompt_tokens": 472,
        "completion_tokens": 89,
        "total_tokens": 561,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


async def test_usage_with_the_cache_maps_field_by_field(server: ScriptedServer) -> None:
    usage = {
        "input_tokens": 3,
        "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 2000,
        "output_tokens": 1,
    }
    start = {"type": "message_start", "message": {"role": "assistant", "usage": usage}}
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens"},
        "usage": {"output_tokens": 9},
    }
    body = TEXT_STREAM.replace(
        TEXT_STREAM[: TEXT_STREAM.index(b"\n\n") + 2],
        f"event: message_start\ndata: {json.dumps(start)}\n\n".encode(),
    )
    cut = body.index(b"event: message_delta")
    body = body[:cut] + f"event: message_delta\ndata: {json.dumps(delta)}\n\n".encode()
    body += b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
    server.reply(stream(body))
    async with asyncio.timeout(10):
        answer = await Anthropic.create_async_answer("claude-x", MESSAGES, **options(server))
    assert answer.finish_reason == "length"
    assert answer.usage == {
        "prompt_tokens": 3003,
        "completion_tokens": 9,
        "total_tokens": 3012,
        "prompt_tokens_details": {"cached_tokens": 2000},
        "cache_creation_input_tokens": 1000,
    }


async def test_a_whole_answer_when_not_streamed(server: ScriptedServer) -> None:
    server.reply(
        Reply(
            headers={"Content-Type": "application/json"},
            body=[json.dumps(WHOLE_TOOL_MESSAGE).encode()],
        )
    )
    got = await chunks(server, stream=False)
    [chunk] = got
    assert chunk.data == WHOLE_TOOL_MESSAGE and chunk.finish_reason == "tool_calls"
    assert chunk.tool_calls is not None and chunk.tool_calls[0].name == "get_weather"
    assert server.requests[0].json()["stream"] is False


async def test_headers_options_and_betas(server: ScriptedServer) -> None:
    server.reply(stream(TEXT_STREAM))
    await text(
        server,
        anthropic_version="2099-01-01",
        anthropic_beta=["prompt-caching-2024-07-31", "context-1m-2025-08-07"],
        headers={"X-Trace": "t-1"},
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    request = server.requests[0]
    assert request.headers["anthropic-version"] == "2099-01-01"
    assert request.headers["anthropic-beta"] == "prompt-caching-2024-07-31,context-1m-2025-08-07"
    assert request.headers["x-trace"] == "t-1"
    sent = request.json()
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "anthropic_beta" not in sent and "anthropic_version" not in sent


async def test_the_environment_names_the_server_and_the_key(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url(""))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    server.reply(stream(TEXT_STREAM))
    async with asyncio.timeout(10):
        assert await Anthropic.create_async("claude-x", MESSAGES, timeout=5) == "Hello!"
    assert server.requests[0].headers["x-api-key"] == "sk-from-env"
    assert not Anthropic.selected_by_environment()  # Claude Code's variable picks no upstream


async def test_models_listed_by_the_server(server: ScriptedServer) -> None:
    listing = {"data": [{"type": "model", "id": "claude-a"}, {"type": "model", "id": "claude-b"}]}
    server.reply(
        Reply(headers={"Content-Type": "application/json"}, body=[json.dumps(listing).encode()])
    )
    async with asyncio.timeout(10):
        assert (
            await Anthropic.pick_model({"base_url": server.url(""), "api_key": KEY}) == "claude-a"
        )
    request = server.requests[0]
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["x-api-key"] == KEY and request.headers["anthropic-version"]


def test_the_sync_twin(server: ScriptedServer) -> None:
    server.reply(stream(TEXT_STREAM))
    assert "".join(Anthropic.create_completion("claude-x", MESSAGES, **options(server))) == "Hello!"


async def test_a_field_it_cannot_honour_sends_nothing(server: ScriptedServer) -> None:
    with pytest.raises(errors.InvalidRequestError) as info:
        await text(server, seed=1)
    assert info.value.param == "seed" and server.requests == []


# retries before the first chunk --------------------------------------------------------


async def test_429_with_retry_after_is_retried_after_the_wait(server: ScriptedServer) -> None:
    server.reply(
        status(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your rate limit.",
            **{"retry-after": "0.2"},
        ),
        stream(TEXT_STREAM),
    )
    started = time.monotonic()
    assert await text(server) == "Hello!"
    assert 0.2 <= time.monotonic() - started < 1.5
    assert len(server.requests) == 2


async def test_a_429_that_asks_too_long_is_raised_with_its_wait(server: ScriptedServer) -> None:
    server.reply(status(429, "rate_limit_error", "slow down", **{"retry-after": "3600"}))
    with pytest.raises(errors.RateLimitError) as info:
        await text(server)
    assert info.value.retry_after == 3600 and "slow down" in str(info.value)
    assert len(server.requests) == 1


async def test_529_is_retried_then_answers(server: ScriptedServer, fast_backoff: None) -> None:
    server.reply(status(529, "overloaded_error", "Overloaded"), stream(TEXT_STREAM))
    assert await text(server) == "Hello!"
    assert len(server.requests) == 2


async def test_529_every_time_is_the_status_error_after_the_retries(
    server: ScriptedServer, fast_backoff: None
) -> None:
    server.reply(status(529, "overloaded_error", "Overloaded"))
    with pytest.raises(errors.ResponseStatusError, match="Overloaded") as info:
        await text(server, max_retries=1)
    assert info.value.status == 529 and len(server.requests) == 2


async def test_overloaded_error_before_any_text_is_retried(
    server: ScriptedServer, fast_backoff: None
) -> None:
    server.reply(
        stream(OPENING, error_event("overloaded_error", "Overloaded")), stream(TEXT_STREAM)
    )
    got = await chunks(server)
    assert len(server.requests) == 2
    # What the failed attempt opened with was held back, never shown: one answer, once.
    assert [c.data["type"] for c in got if c.data] == list(TEXT_EVENTS)
    assert "".join(c.content or "" for c in got) == "Hello!"


async def test_overloaded_error_every_time_is_a_529_after_the_retries(
    server: ScriptedServer, fast_backoff: None
) -> None:
    server.reply(stream(OPENING, error_event("overloaded_error", "Overloaded")))
    with pytest.raises(errors.ResponseStatusError) as info:
        await chunks(server, max_retries=2)
    assert info.value.status == 529 and len(server.requests) == 3


async def test_retries_of_both_kinds_share_one_budget(
    server: ScriptedServer, fast_backoff: None
) -> None:
    server.reply(
        status(529, "overloaded_error", "Overloaded"),
        stream(OPENING, error_event("overloaded_error", "Overloaded")),
        stream(TEXT_STREAM),
    )
    with pytest.raises(errors.ResponseStatusError):
        await text(server, max_retries=1)
    assert len(server.requests) == 2


async def test_an_error_after_text_is_raised_and_never_retried(
    server: ScriptedServer, fast_backoff: None
) -> None:
    server.reply(stream(FIRST_TEXT, error_event("overloaded_error", "Overloaded")))
    got: list[str] = []
    with pytest.raises(errors.ResponseStatusError) as info:
        async with asyncio.timeout(10):
            gen = Anthropic.create_async_generator("claude-x", MESSAGES, **options(server))
            async for piece in gen:
                got.append(piece)
    assert got == ["Hello"] and info.value.status == 529
    assert len(server.requests) == 1


async def test_an_api_error_event_is_an_upstream_error(server: ScriptedServer) -> None:
    server.reply(stream(FIRST_TEXT, error_event("api_error", "Internal server error")))
    with pytest.raises(errors.UpstreamError, match="Internal server error") as info:
        await text(server)
    assert info.value.type == "api_error"


async def test_401_is_an_authentication_error(server: ScriptedServer) -> None:
    server.reply(status(401, "authentication_error", "invalid x-api-key"))
    with pytest.raises(errors.AuthenticationError, match="invalid x-api-key"):
        await text(server)
    assert len(server.requests) == 1


async def test_a_502_html_page_is_a_typed_error(server: ScriptedServer, fast_backoff: None) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    server.reply(Reply(status=502, headers={"Content-Type": "text/html"}, body=[page]))
    with pytest.raises(errors.ResponseStatusError, match="502 Bad Gateway") as info:
        await text(server)
    assert info.value.status == 502 and len(server.requests) == 3  # 5xx: retried twice


async def test_a_200_html_page_is_a_stream_error_naming_the_format(server: ScriptedServer) -> None:
    server.reply(
        Reply(headers={"Content-Type": "text/html"}, body=[b"<html>captive portal</html>"])
    )
    with pytest.raises(errors.StreamError, match="expected anthropic-sse"):
        await text(server)


async def test_a_stream_cut_before_message_stop_is_truncated(server: ScriptedServer) -> None:
    cut = TEXT_STREAM[: TEXT_STREAM.index(b"event: message_delta")]
    server.reply(stream(cut))
    got: list[str] = []
    with pytest.raises(errors.StreamTruncatedError, match="message_stop"):
        async with asyncio.timeout(10):
            async for piece in Anthropic.create_async_generator("m", MESSAGES, **options(server)):
                got.append(piece)
    assert got == ["Hello", "!"]


# behind the gateway ----------------------------------------------------------------------


async def post(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
    async with (
        asyncio.timeout(10),
        aiohttp.ClientSession() as session,
        session.post(url, json=body) as response,
    ):
        return response.status, await response.read()


def gateway(server: ScriptedServer) -> GatewaySettings:
    provider_options = {"base_url": server.url(""), "api_key": KEY, "max_retries": 0, "timeout": 2}
    return GatewaySettings(
        provider="anthropic", provider_options=provider_options, api_key=None, preload=False
    )


@pytest.mark.parametrize("name", ["base_url", "api_key", "anthropic_version"])
async def test_its_set_up_options_are_refused_in_a_gateway_body(
    server: ScriptedServer, name: str
) -> None:
    assert name in reserved_option_names()
    with live_gateway(gateway(server)) as live:
        code, body = await post(
            live.url + "/v1/chat/completions",
            {"model": "claude-x", "messages": MESSAGES, name: "http://elsewhere"},
        )
    assert code == 400 and json.loads(body)["error"]["param"] == name
    assert server.requests == []


async def test_the_chat_route_in_front_of_it(server: ScriptedServer) -> None:
    server.reply(stream(TOOL_STREAM))
    with live_gateway(gateway(server)) as live:
        code, body = await post(
            live.url + "/v1/chat/completions",
            {"model": "claude-x", "messages": MESSAGES, "stream": True, "seed": None},
        )
        refused, why = await post(
            live.url + "/v1/chat/completions",
            {"model": "claude-x", "messages": MESSAGES, "presence_penalty": 1},
        )
    assert code == 200
    events = [
        json.loads(line[6:]) for line in body.decode().split("\n\n") if line.startswith("data: {")
    ]
    calls = [
        c for e in events for c in e["choices"][0]["delta"].get("tool_calls") or [] if e["choices"]
    ]
    assert calls[0]["id"] == TOOL_ID and calls[0]["function"]["name"] == "get_weather"
    assert "".join(c["function"].get("arguments", "") for c in calls) == TOOL_ARGUMENTS
    finishes = [e["choices"][0]["finish_reason"] for e in events if e["choices"]]
    assert [f for f in finishes if f] == ["tool_calls"]
    assert server.requests[0].json()["model"] == "claude-x"
    assert refused == 400 and json.loads(why)["error"]["param"] == "presence_penalty"


# the recordings are what Anthropic's own SDK reads -------------------------------------------


async def test_the_recorded_streams_read_the_same_in_anthropics_sdk(server: ScriptedServer) -> None:
    import anthropic

    server.reply(stream(TOOL_STREAM), stream(TOOL_STREAM))
    client = anthropic.AsyncAnthropic(base_url=server.url(""), api_key=KEY, max_retries=0)
    async with asyncio.timeout(10):
        async with client.messages.stream(
            model="claude-x", max_tokens=100, messages=[{"role": "user", "content": "Weather?"}]
        ) as events:
            message = await events.get_final_message()
        ours = await Anthropic.create_async_answer("claude-x", MESSAGES, **options(server))
    await client.close()
    text_block, tool_block = message.content
    assert text_block.type == "text" and text_block.text == ours.text
    assert tool_block.type == "tool_use" and tool_block.id == ours.tool_calls[0].id
    assert tool_block.input == json.loads(ours.tool_calls[0].arguments)
    assert message.stop_reason == "tool_use" and ours.finish_reason == "tool_calls"
    assert ours.usage is not None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (
        ours.usage["prompt_tokens"],
        ours.usage["completion_tokens"],
    )
