"""The `anthropic` SDK, unchanged, against `/v1/messages` of a live gateway.

The gateway fronts (a) a scripted OpenAI-compatible upstream that answers as
OpenAI's Chat Completions would (`support.real_upstream`), and (b) the seed's
CodeLinkAva wire. Each test checks what the SDK sees and what the upstream was
sent: the translation both ways. Byte-level checks of the event stream read the
raw HTTP answer.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from support.anthropic_sdk import anthropic_client, close_anthropic_clients
from support.live_gateway import LiveGateway, fronting, live_gateway
from support.real_upstream import Answer, ToolCall, has_tool_result, openai_handler, tool_names
from support.scripted import Reply, ScriptedServer, running_server, sse

MODEL = "gpt-4o-mini"
WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CALL = ToolCall("call_Hk3bJ2xQ9pLm0aZt", "get_weather", {"city": "Paris"})


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_anthropic_clients()


def weather(body: dict[str, Any]) -> Answer:
    """Tools offered and no result yet: call the tool; the result in: answer from it."""
    if has_tool_result(body):
        result = next(m["content"] for m in body["messages"] if m["role"] == "tool")
        return Answer(content=f"It says: {result}")
    if "get_weather" in tool_names(body):
        return Answer(tool_calls=[CALL])
    return Answer(content="Hello there, how can I help?")


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedServer]:
    with running_server() as server:
        yield server


@pytest.fixture(autouse=True)
def _answers_by_content(upstream: ScriptedServer) -> None:
    upstream.script = []
    upstream.handler = openai_handler(weather)


@pytest.fixture(scope="module")
def gateway(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    with live_gateway(fronting(upstream.url("/v1"))) as running:
        yield running


@pytest.fixture(scope="module")
def seed_gateway(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    """The gateway in front of the seed's wire (`--provider codelinkava`)."""
    with live_gateway(fronting(upstream.url("/api/chat"), provider="codelinkava")) as running:
        yield running


def client(gateway: LiveGateway, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic_client(gateway.url, **kwargs)


def sent(upstream: ScriptedServer, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = upstream.requests[index].json()
    return body


def post(
    gateway: LiveGateway, body: Any, path: str = "/v1/messages", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        gateway.url + path, data=data, headers={"content-type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


_EVENT = re.compile(rb"event: ([a-z_]+)\ndata: ([^\n]*)\n\n")


def events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    found = [(m.group(1).decode(), json.loads(m.group(2))) for m in _EVENT.finditer(data)]
    assert b"".join(m.group(0) for m in _EVENT.finditer(data)) == data, data
    return found


QUESTION = [{"role": "user", "content": "Hi!"}]


# (a) in front of an OpenAI-compatible upstream ------------------------------------------------


def test_create_answers_a_whole_message(gateway: LiveGateway, upstream: ScriptedServer) -> None:
    message = client(gateway).messages.create(
        model=MODEL,
        max_tokens=64,
        system="Be brief.",
        messages=QUESTION,
        extra_body={"temperature": 0.5},  # this SDK's signature no longer names it
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello there, how can I help?"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    body = sent(upstream)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi!"},
    ]
    assert body["max_tokens"] == 64 and body["temperature"] == 0.5 and not body.get("stream")
    # the upstream's usage, field by field
    assert message.usage.input_tokens == len(json.dumps(body["messages"])) // 4
    assert message.usage.output_tokens == len("Hello there, how can I help?") // 4
    assert message.usage.cache_read_input_tokens == 0


def test_stream_gives_the_text_as_it_comes(gateway: LiveGateway, upstream: ScriptedServer) -> None:
    with client(gateway).messages.stream(model=MODEL, max_tokens=64, messages=QUESTION) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "Hello there, how can I help?"
    assert len(pieces) > 3  # streamed, not in one piece
    assert final.stop_reason == "end_turn"
    body = sent(upstream)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert final.usage.input_tokens == len(json.dumps(body["messages"])) // 4
    assert final.usage.output_tokens == len("Hello there, how can I help?") // 4


def test_a_tool_round_trip_streamed(gateway: LiveGateway, upstream: ScriptedServer) -> None:
    sdk = client(gateway)
    question = [{"role": "user", "content": "Weather in Paris?"}]
    with sdk.messages.stream(
        model=MODEL, max_tokens=64, messages=question, tools=[WEATHER]
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    (use,) = first.content
    assert use.type == "tool_use" and use.name == "get_weather"
    assert use.input == {"city": "Paris"} and use.id == "toolu_" + CALL.id
    assert sent(upstream)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER["input_schema"],
                "description": WEATHER["description"],
            },
        }
    ]
    follow_up = [
        *question,
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 22 °C"}],
        },
    ]
    with sdk.messages.stream(
        model=MODEL, max_tokens=64, messages=follow_up, tools=[WEATHER]
    ) as stream:
        text = "".join(stream.text_stream)
        second = stream.get_final_message()
    assert text == "It says: Sunny, 22 °C" and second.stop_reason == "end_turn"
    messages = sent(upstream)["messages"]
    assert messages[1]["tool_calls"] == [
        {
            "id": use.id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
        }
    ]
    assert messages[2] == {"role": "tool", "tool_call_id": use.id, "content": "Sunny, 22 °C"}


def test_tool_use_whole_with_a_forced_tool(gateway: LiveGateway, upstream: ScriptedServer) -> None:
    message = client(gateway).messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    )
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "tool_use" and message.content[0].input == {"city": "Paris"}
    body = sent(upstream)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False


def test_the_tool_stream_byte_by_byte(gateway: LiveGateway) -> None:
    status, headers, data = post(
        gateway,
        {
            "model": MODEL,
            "max_tokens": 64,
            "stream": True,
            "tools": [WEATHER],
            "messages": QUESTION,
        },
    )
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert headers["request-id"].startswith("req_")
    evs = events(data)
    assert [name for name, _ in evs] == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * (len(evs) - 6),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert evs[2][1]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_" + CALL.id,
        "name": "get_weather",
        "input": {},
    }
    deltas = [payload for name, payload in evs if name == "content_block_delta"]
    assert {d["index"] for d in deltas} == {0}
    assert json.loads("".join(d["delta"]["partial_json"] for d in deltas)) == {"city": "Paris"}
    assert evs[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert set(evs[-2][1]["usage"]) == {"input_tokens", "cache_read_input_tokens", "output_tokens"}


def test_stop_sequences_and_metadata_reach_the_upstream(
    gateway: LiveGateway, upstream: ScriptedServer
) -> None:
    client(gateway).messages.create(
        model=MODEL,
        max_tokens=8,
        messages=QUESTION,
        stop_sequences=["\n\n"],
        extra_body={"top_k": 5},
        metadata={"user_id": "user-42"},
    )
    body = sent(upstream)
    assert body["stop"] == ["\n\n"] and body["top_k"] == 5 and body["user"] == "user-42"
    assert "metadata" not in body and "stop_sequences" not in body


def test_count_tokens_answers_the_estimate(gateway: LiveGateway) -> None:
    counted = client(gateway).messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "x" * 400}], system="y" * 40
    )
    assert counted.input_tokens == 110
    status, headers, _ = post(
        gateway, {"model": MODEL, "messages": QUESTION}, "/v1/messages/count_tokens"
    )
    assert status == 200 and headers["x-codelinkava-token-count"] == "estimate"


# (b) in front of the seed's wire ------------------------------------------------------------------


def test_the_seeds_wire_answers_messages(
    seed_gateway: LiveGateway, upstream: ScriptedServer
) -> None:
    upstream.handler = None
    upstream.reply(Reply(body=[sse("Privet", ", ", "mir", finish=True)]))
    sdk = client(seed_gateway)
    message = sdk.messages.create(model="", max_tokens=32, messages=QUESTION, system="Short.")
    assert message.content[0].text == "Privet, mir"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    with sdk.messages.stream(model="", max_tokens=32, messages=QUESTION) as stream:
        assert list(stream.text_stream) == ["Privet", ", ", "mir"]
        final = stream.get_final_message()
    assert final.usage.output_tokens == 3  # the seed's wire reports no usage: our count
    request = upstream.requests[-1]
    assert request.path == "/api/chat"
    assert request.json()["messages"] == [{"role": "user", "content": "Hi!"}]
