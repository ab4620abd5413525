"""openai-agents with its default model -- the Responses API -- through a live gateway.

The agents run against the realistic OpenAI chat upstream of
`support/real_upstream.py` behind the gateway, so each run is a real client
speaking Responses to the gateway and the gateway speaking chat upstream. The
reference is the same agent on the chat completions model pointed straight at
that upstream: both runs must call the same tools with the same arguments and
end with the same output. Tracing is off and any connection off 127.0.0.1
fails the test.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    function_tool,
    set_default_openai_client,
)
from agents.models import _openai_shared
from openai.types.responses import ResponseTextDeltaEvent
from pydantic import BaseModel

from support.live_gateway import LiveGateway, fronting, live_gateway
from support.real_upstream import Answer, ToolCall, has_tool_result, openai_handler
from support.scripted import ScriptedServer

NO_TRACING = RunConfig(tracing_disabled=True)
QUESTION = "What is the weather in Paris?"
calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    calls.append(city)
    return f"Sunny, 22 C in {city}."


class Person(BaseModel):
    name: str
    age: int


def decide(body: dict[str, Any]) -> Answer:
    tools = [t["function"]["name"] for t in body.get("tools") or []]
    if "get_weather" in tools and not has_tool_result(body):
        return Answer(tool_calls=[ToolCall("call_w1", "get_weather", {"city": "Paris"})])
    if has_tool_result(body):
        return Answer("It is sunny in Paris, 22 C.")
    if (body.get("response_format") or {}).get("type") == "json_schema":
        return Answer('{"name": "Ada Lovelace", "age": 36}')
    return Answer("Hello from the upstream.")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OpenAI keys or tracing from the environment; nothing leaves 127.0.0.1."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "OTEL_")):
            monkeypatch.delenv(name)
    real_connect = socket.socket.connect
    outside: list[Any] = []

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            outside.append(address)
            raise OSError(f"test tried to reach {address!r}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    calls.clear()
    yield
    assert outside == [], f"something tried to reach the network: {outside}"


@pytest.fixture
def gateway(server: ScriptedServer) -> Iterator[LiveGateway]:
    server.handler = openai_handler(decide)
    with live_gateway(fronting(server.url("/v1"))) as running:
        yield running


@pytest.fixture
async def client(gateway: LiveGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0) as c:
        yield c


def bodies(server: ScriptedServer) -> list[dict[str, Any]]:
    return [r.json() for r in server.requests]


async def test_the_default_model_runs_a_tool_loop_as_the_chat_model_does(
    server: ScriptedServer, client: openai.AsyncOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The agent names no model: the SDK's default one, over its default API (Responses),
    # on the default client -- which is ours.
    monkeypatch.setattr(_openai_shared, "_default_openai_client", None)  # restored after
    set_default_openai_client(client, use_for_tracing=False)
    agent = Agent(name="weather", instructions="Answer briefly.", tools=[get_weather])
    result = await Runner.run(agent, QUESTION, run_config=NO_TRACING)
    assert result.final_output == "It is sunny in Paris, 22 C."
    assert calls == ["Paris"]
    via_gateway = bodies(server)
    assert len(via_gateway) == 2
    assert via_gateway[0]["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": QUESTION},
    ]
    assert via_gateway[1]["messages"][2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_w1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_w1", "content": "Sunny, 22 C in Paris."},
    ]

    # The reference: the same agent on the chat completions API, straight to the upstream.
    calls.clear()
    start = len(server.requests)
    async with openai.AsyncOpenAI(base_url=server.url("/v1"), api_key="x") as direct:
        chat_model = OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=direct)
        reference = Agent(
            name="weather", instructions="Answer briefly.", tools=[get_weather], model=chat_model
        )
        expected = await Runner.run(reference, QUESTION, run_config=NO_TRACING)
    assert expected.final_output == result.final_output and calls == ["Paris"]
    direct_bodies = bodies(server)[start:]
    for relayed, sent in zip(via_gateway, direct_bodies, strict=True):
        assert relayed["messages"] == sent["messages"]
        assert relayed["tools"] == sent["tools"]


async def test_a_typed_output(server: ScriptedServer, client: openai.AsyncOpenAI) -> None:
    model = OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client)
    agent = Agent(
        name="people", instructions="Extract the person.", output_type=Person, model=model
    )
    result = await Runner.run(agent, "Ada Lovelace was 36.", run_config=NO_TRACING)
    assert result.final_output == Person(name="Ada Lovelace", age=36)
    response_format = server.requests[-1].json()["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "final_output"
    assert response_format["json_schema"]["strict"] is True


async def test_a_streamed_run_through_a_tool_call(
    server: ScriptedServer, client: openai.AsyncOpenAI
) -> None:
    model = OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client)
    settings = ModelSettings(temperature=0.1, max_tokens=64)
    agent = Agent(name="weather", tools=[get_weather], model=model, model_settings=settings)
    result = Runner.run_streamed(agent, QUESTION, run_config=NO_TRACING)
    deltas: list[str] = []
    items: list[str] = []
    async for ev in result.stream_events():
        if ev.type == "raw_response_event" and isinstance(ev.data, ResponseTextDeltaEvent):
            deltas.append(ev.data.delta)
        elif ev.type == "run_item_stream_event":
            items.append(ev.item.type)
    assert result.final_output == "It is sunny in Paris, 22 C." == "".join(deltas)
    assert len(deltas) > 1
    assert items == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert calls == ["Paris"]
    last = server.requests[-1].json()
    assert last["stream"] is True and last["temperature"] == 0.1 and last["max_tokens"] == 64
    assert json.loads(last["messages"][-2]["tool_calls"][0]["function"]["arguments"]) == {
        "city": "Paris"
    }
