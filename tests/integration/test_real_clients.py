"""Real client libraries, direct to an OpenAI upstream and through the gateway: same everything.

Each test runs one scenario of a client no one here wrote (LangChain's
`ChatOpenAI`, pydantic-ai's `Agent` over `OpenAIChatModel`, the `openai` SDK
itself) twice: pointed at the scripted OpenAI upstream directly, then at a live
gateway fronting that same upstream. The upstream answers by the request's
content (see `real_upstream.py`), so multi-step tool loops run the same way
both times. Each test asserts that

1. the client's results are equal (messages, tool calls with their arguments,
   parsed objects, usage, response metadata),
2. the upstream received equal request bodies at each step, and
3. for streamed answers, the client saw the same chunks.

The last tests check that the comparison can fail: a gateway made to drop
`tools`, or to re-render the upstream's chunks, must fail a scenario.
Upstream errors with a machine-readable type or code reach the client as the
upstream sent them (status, type, code, param, message), so clients sort them
the same way.

Nothing leaves 127.0.0.1: a guard fails any connection elsewhere, and the
LangChain/LangSmith tracing variables are cleared.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from codelinkava.providers.openai import OpenAICompatible
from codelinkava.server import wire
from support.real_upstream import (
    Answer,
    ToolCall,
    arun_both,
    has_tool_result,
    openai_handler,
    run_both,
    tool_names,
)
from support.scripted import Reply, ScriptedServer

MODEL = "gpt-4o-mini"
QUESTION = "What is the weather in Paris and in Tokyo?"


# No network, no tracing -------------------------------------------------------------


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """No tracing, no telemetry, and any connection off 127.0.0.1 fails the test."""
    for name in list(os.environ):
        if name.startswith(("LANGCHAIN_", "LANGSMITH_", "OPENAI_", "LOGFIRE_", "OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "false")
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    outside: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def loopback_only(address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            outside.append(address)
            raise OSError(f"test tried to reach {address!r}: only 127.0.0.1 is allowed")

    def connect(self: socket.socket, address: Any) -> None:
        loopback_only(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        loopback_only(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield outside
    assert outside == [], f"a library tried to reach the network: {outside}"


# The scenario's tools and schemas -------------------------------------------------------


def weather(city: str) -> str:
    return f"Sunny, 22 °C in {city}."


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return weather(city)


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="The person's full name")
    age: int = Field(description="Age in years")
    hobbies: list[str] = Field(description="What they like doing")


PERSON = {"name": "Ada Lovelace", "age": 36, "hobbies": ["mathematics", "poetry", "horses"]}

CALLS = [
    ToolCall("call_Hk3bJ2xQ9pLm0aZt", "get_weather", {"city": "Paris"}),
    ToolCall("call_V7nR4sW1yE8uT6cD", "get_weather", {"city": "Tokyo"}),
]


def weather_loop(body: dict[str, Any]) -> Answer:
    """Tools offered and no results yet: call them; results in: answer from them."""
    if has_tool_result(body):
        results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
        return Answer(content="Here you go: " + " ".join(results))
    if "get_weather" in tool_names(body):
        return Answer(tool_calls=CALLS)
    return Answer(content="I cannot look up the weather.")


def structured(body: dict[str, Any]) -> Answer:
    """A json_schema response_format: the object as text; a schema tool: a call to it."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return Answer(content=json.dumps(PERSON))
    names = tool_names(body)
    if names:
        return Answer(tool_calls=[ToolCall("call_P3rs0nAbCdEf1234", names[0], PERSON)])
    return Answer(content="Ada Lovelace, 36, likes mathematics, poetry and horses.")


def assert_offered_tools(bodies: list[dict[str, Any]], *names: str) -> None:
    """The tools reached the upstream (so equal bodies are not equal by both lacking them)."""
    for body in bodies:
        assert tool_names(body) == list(names), body


# LangChain -----------------------------------------------------------------------------


def chat_openai(base_url: str, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(model=MODEL, base_url=base_url, api_key="sk-test", max_retries=0, **kwargs)


def lc_dump(message: BaseMessage) -> dict[str, Any]:
    """The whole message; only an id LangChain makes up itself (its run's uuid) is blanked."""
    dumped = message.model_dump()
    if str(dumped.get("id") or "").startswith("lc_run-"):
        dumped["id"] = "lc_run-*"
    return dumped


def test_langchain_bind_tools_invoke_gets_the_same_tool_calls(server: ScriptedServer) -> None:
    server.handler = openai_handler(weather_loop)

    def scenario(base_url: str) -> AIMessage:
        answer = chat_openai(base_url).bind_tools([get_weather]).invoke(QUESTION)
        assert isinstance(answer, AIMessage)
        return answer

    both = run_both(server, scenario)
    both.assert_same_requests()
    assert_offered_tools(both.direct_bodies, "get_weather")
    assert [(c["name"], c["args"], c["id"]) for c in both.gateway.tool_calls] == [
        ("get_weather", {"city": "Paris"}, CALLS[0].id),
        ("get_weather", {"city": "Tokyo"}, CALLS[1].id),
    ]
    assert lc_dump(both.gateway) == lc_dump(both.direct)


def test_langchain_tool_loop_ends_with_the_same_answer(server: ScriptedServer) -> None:
    server.handler = openai_handler(weather_loop)

    def scenario(base_url: str) -> list[BaseMessage]:
        model = chat_openai(base_url).bind_tools([get_weather])
        messages: list[BaseMessage] = [HumanMessage(QUESTION)]
        for _ in range(3):
            answer = model.invoke(messages)
            messages.append(answer)
            assert isinstance(answer, AIMessage)
            if not answer.tool_calls:
                break
            for call in answer.tool_calls:
                result = get_weather.invoke(call)
                assert isinstance(result, ToolMessage)
                messages.append(result)
        return messages

    both = run_both(server, scenario)
    both.assert_same_requests()
    assert len(both.direct_bodies) == 2
    assert_offered_tools(both.direct_bodies, "get_weather")
    assert [m["role"] for m in both.gateway_bodies[1]["messages"]] == [
        "user",
        "assistant",
        "tool",
        "tool",
    ]
    final = both.gateway[-1]
    assert final.content == "Here you go: Sunny, 22 °C in Paris. Sunny, 22 °C in Tokyo."
    assert [lc_dump(m) for m in both.gateway] == [lc_dump(m) for m in both.direct]


@pytest.mark.parametrize("stream_usage", [None, True])
def test_langchain_stream_with_tools_aggregates_to_the_same_tool_calls(
    server: ScriptedServer, stream_usage: bool | None
) -> None:
    server.handler = openai_handler(weather_loop)

    def scenario(base_url: str) -> list[AIMessageChunk]:
        chunks = []
        model = chat_openai(base_url, stream_usage=stream_usage).bind_tools([get_weather])
        for piece in model.stream(QUESTION):
            assert isinstance(piece, AIMessageChunk)
            chunks.append(piece)
        return chunks

    both = run_both(server, scenario)
    both.assert_same_requests()
    assert both.direct_bodies[0]["stream"] is True
    if stream_usage:
        assert both.direct_bodies[0]["stream_options"] == {"include_usage": True}
    else:  # a custom base URL: ChatOpenAI does not ask for usage by default
        assert "stream_options" not in both.direct_bodies[0]
    assert_offered_tools(both.direct_bodies, "get_weather")
    whole: Any = None
    for piece in both.gateway:
        whole = piece if whole is None else whole + piece
    assert [(c["name"], c["args"], c["id"]) for c in whole.tool_calls] == [
        ("get_weather", {"city": "Paris"}, CALLS[0].id),
        ("get_weather", {"city": "Tokyo"}, CALLS[1].id),
    ]
    assert (whole.usage_metadata is not None) == bool(stream_usage)
    assert len(both.gateway) > 5
    assert [lc_dump(c) for c in both.gateway] == [lc_dump(c) for c in both.direct]


@pytest.mark.parametrize("method", [None, "json_schema", "function_calling"])
def test_langchain_structured_output_parses_the_same_object(
    server: ScriptedServer, method: str | None
) -> None:
    server.handler = openai_handler(structured)

    def scenario(base_url: str) -> dict[str, Any]:
        kwargs = {} if method is None else {"method": method}
        model = chat_openai(base_url).with_structured_output(Person, include_raw=True, **kwargs)
        result = model.invoke("Tell me about Ada Lovelace.")
        assert isinstance(result, dict)
        return result

    both = run_both(server, scenario)
    both.assert_same_requests()
    sent = both.direct_bodies[0]
    if method == "function_calling":
        assert_offered_tools(both.direct_bodies, "Person")
    else:  # ChatOpenAI's default is json_schema
        assert sent["response_format"]["type"] == "json_schema"
    assert both.gateway["parsing_error"] is None
    assert both.gateway["parsed"] == Person(**PERSON)
    assert both.gateway["parsed"] == both.direct["parsed"]
    assert lc_dump(both.gateway["raw"]) == lc_dump(both.direct["raw"])


@pytest.mark.parametrize("streamed", [False, True], ids=["invoke", "stream"])
def test_langchain_logprobs_are_the_same(server: ScriptedServer, streamed: bool) -> None:
    text = "Sunny in Zürich, 22 °C — “perfect” 😀"
    server.handler = openai_handler(lambda body: Answer(content=text))

    def scenario(base_url: str) -> list[BaseMessage]:
        model = chat_openai(base_url, logprobs=True, top_logprobs=2)
        if streamed:
            return list(model.stream("And in Zürich?"))
        return [model.invoke("And in Zürich?")]

    both = run_both(server, scenario)
    both.assert_same_requests()
    assert both.direct_bodies[0]["logprobs"] is True
    assert both.direct_bodies[0]["top_logprobs"] == 2
    if streamed:
        assert "".join(str(c.content) for c in both.gateway) == text
        tokens = [
            t["token"]
            for c in both.gateway
            for t in (c.response_metadata.get("logprobs") or {}).get("content", [])
        ]
    else:
        assert both.gateway[0].content == text
        tokens = [t["token"] for t in both.gateway[0].response_metadata["logprobs"]["content"]]
    assert "".join(tokens) == text
    assert [lc_dump(m) for m in both.gateway] == [lc_dump(m) for m in both.direct]


async def test_langchain_astream_tool_loop_is_the_same(server: ScriptedServer) -> None:
    """The async client: `astream` the tool calls, run the tools, `ainvoke` the answer."""
    server.handler = openai_handler(weather_loop)

    async def scenario(base_url: str) -> tuple[list[AIMessageChunk], AIMessage]:
        model = chat_openai(base_url).bind_tools([get_weather])
        chunks = [c async for c in model.astream(QUESTION)]
        whole: Any = chunks[0]
        for piece in chunks[1:]:
            whole = whole + piece
        messages: list[BaseMessage] = [HumanMessage(QUESTION), whole]
        messages += [await get_weather.ainvoke(call) for call in whole.tool_calls]
        final = await model.ainvoke(messages)
        assert isinstance(final, AIMessage)
        return chunks, final

    both = await arun_both(server, scenario)
    both.assert_same_requests()
    assert [b["stream"] for b in both.direct_bodies] == [True, False]
    assert_offered_tools(both.direct_bodies, "get_weather")
    (direct_chunks, direct), (relayed_chunks, relayed) = both.direct, both.gateway
    assert relayed.content == "Here you go: Sunny, 22 °C in Paris. Sunny, 22 °C in Tokyo."
    assert [lc_dump(c) for c in relayed_chunks] == [lc_dump(c) for c in direct_chunks]
    assert lc_dump(relayed) == lc_dump(direct)


def test_langchain_structured_output_refusal_is_the_same(server: ScriptedServer) -> None:
    """The upstream refuses (`message.refusal`): LangChain raises the same error both ways."""
    refusal = "I’m sorry, I can’t help with that request."
    server.handler = openai_handler(lambda body: Answer(refusal=refusal))

    def scenario(base_url: str) -> tuple[type[BaseException], str]:
        model = chat_openai(base_url).with_structured_output(Person)
        with pytest.raises(Exception) as caught:
            model.invoke("Tell me about someone.")
        return type(caught.value), str(caught.value)

    both = run_both(server, scenario)
    both.assert_same_requests()
    assert refusal in both.gateway[1]
    assert both.gateway == both.direct


# pydantic-ai ---------------------------------------------------------------------------


class CityReport(BaseModel):
    city: str
    temperature_c: int
    summary: str


REPORT = {"city": "Paris", "temperature_c": 22, "summary": "Sunny"}


def openai_model(base_url: str) -> OpenAIChatModel:
    return OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=base_url, api_key="sk-test"))


def parts(messages: list[ModelMessage]) -> list[list[dict[str, Any]]]:
    """Each message's parts, without what differs by nature (timestamps, base URL)."""
    out = []
    for message in messages:
        dumped = []
        for part in message.parts:
            data = {
                k: v
                for k, v in vars(part).items()
                if k not in ("timestamp",) and not k.startswith("_")
            }
            data["kind"] = part.part_kind
            dumped.append(data)
        out.append(dumped)
    return out


def model_responses(messages: list[ModelMessage]) -> list[dict[str, Any]]:
    """What each model response says beyond its parts: usage, ids, finish reason."""
    out = []
    for message in messages:
        if message.kind == "response":
            out.append(
                {
                    "usage": message.usage,
                    "model_name": message.model_name,
                    "provider_response_id": message.provider_response_id,
                    "finish_reason": message.finish_reason,
                    "provider_details": message.provider_details,
                }
            )
    return out


def pai_weather(body: dict[str, Any]) -> Answer:
    """pydantic-ai's loop: call the tool, then answer from its result."""
    if has_tool_result(body):
        results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
        if "final_result" in tool_names(body):
            return Answer(tool_calls=[ToolCall("call_F1nalRes0000001", "final_result", REPORT)])
        return Answer(content="Here you go: " + " ".join(results))
    if "get_weather" in tool_names(body):
        return Answer(tool_calls=[CALLS[0]])
    return Answer(content="I cannot look up the weather.")


async def test_pydantic_ai_tool_loop_gets_the_same_output(server: ScriptedServer) -> None:
    server.handler = openai_handler(pai_weather)

    async def scenario(base_url: str) -> tuple[Any, list[dict[str, Any]]]:
        agent = Agent(openai_model(base_url))
        called: list[dict[str, Any]] = []

        @agent.tool_plain
        def get_weather(city: str) -> str:
            """Get the current weather in a city."""
            called.append({"city": city})
            return weather(city)

        async with agent:  # closes the provider's own HTTP client at the end
            result = await agent.run("What is the weather in Paris?")
        return result, called

    both = await arun_both(server, scenario)
    both.assert_same_requests()
    assert len(both.direct_bodies) == 2
    assert_offered_tools(both.direct_bodies, "get_weather")
    (direct, direct_called), (relayed, relayed_called) = both.direct, both.gateway
    assert relayed_called == direct_called == [{"city": "Paris"}]
    assert relayed.output == direct.output == "Here you go: Sunny, 22 °C in Paris."
    assert parts(relayed.all_messages()) == parts(direct.all_messages())
    assert model_responses(relayed.all_messages()) == model_responses(direct.all_messages())
    assert relayed.usage == direct.usage


async def test_pydantic_ai_tool_output_parses_the_same_object(server: ScriptedServer) -> None:
    """`output_type=Model`: pydantic-ai's default tool output (a `final_result` tool)."""
    server.handler = openai_handler(pai_weather)

    async def scenario(base_url: str) -> Any:
        agent = Agent(openai_model(base_url), output_type=CityReport)

        @agent.tool_plain
        def get_weather(city: str) -> str:
            """Get the current weather in a city."""
            return weather(city)

        async with agent:
            return await agent.run("What is the weather in Paris?")

    both = await arun_both(server, scenario)
    both.assert_same_requests()
    assert len(both.direct_bodies) == 2
    assert sorted(tool_names(both.direct_bodies[0])) == ["final_result", "get_weather"]
    assert both.gateway.output == both.direct.output == CityReport(**REPORT)
    assert parts(both.gateway.all_messages()) == parts(both.direct.all_messages())
    assert model_responses(both.gateway.all_messages()) == model_responses(
        both.direct.all_messages()
    )


async def test_pydantic_ai_native_output_parses_the_same_object(server: ScriptedServer) -> None:
    """`NativeOutput(Model)`: response_format json_schema, the object as the message text."""
    server.handler = openai_handler(structured)

    async def scenario(base_url: str) -> Any:
        agent = Agent(openai_model(base_url), output_type=NativeOutput(Person))
        async with agent:
            return await agent.run("Tell me about Ada Lovelace.")

    both = await arun_both(server, scenario)
    both.assert_same_requests()
    fmt = both.direct_bodies[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Person"
    assert both.gateway.output == both.direct.output == Person(**PERSON)
    assert parts(both.gateway.all_messages()) == parts(both.direct.all_messages())
    assert model_responses(both.gateway.all_messages()) == model_responses(
        both.direct.all_messages()
    )


async def test_pydantic_ai_run_stream_streams_the_same_text(server: ScriptedServer) -> None:
    text = "Paris is sunny today, 22 °C — a “perfect” day. 😀"
    server.handler = openai_handler(lambda body: Answer(content=text))

    async def scenario(base_url: str) -> tuple[list[str], Any]:
        agent = Agent(openai_model(base_url))
        async with agent, agent.run_stream("What is the weather in Paris?") as result:
            deltas = [d async for d in result.stream_text(delta=True, debounce_by=None)]
        return deltas, result

    both = await arun_both(server, scenario)
    both.assert_same_requests()
    assert both.direct_bodies[0]["stream"] is True
    (direct, direct_result), (relayed, relayed_result) = both.direct, both.gateway
    assert "".join(relayed) == text
    assert relayed == direct
    assert len(relayed) > 1
    assert parts(relayed_result.all_messages()) == parts(direct_result.all_messages())
    assert model_responses(relayed_result.all_messages()) == model_responses(
        direct_result.all_messages()
    )


async def test_pydantic_ai_run_stream_through_a_tool_call(server: ScriptedServer) -> None:
    """`run_stream` over a streamed tool call, the tool, then the streamed final text."""
    server.handler = openai_handler(pai_weather)

    async def scenario(base_url: str) -> tuple[list[str], list[dict[str, Any]], Any]:
        agent = Agent(openai_model(base_url))
        called: list[dict[str, Any]] = []

        @agent.tool_plain
        def get_weather(city: str) -> str:
            """Get the current weather in a city."""
            called.append({"city": city})
            return weather(city)

        async with agent, agent.run_stream("What is the weather in Paris?") as result:
            deltas = [d async for d in result.stream_text(delta=True, debounce_by=None)]
        return deltas, called, result

    both = await arun_both(server, scenario)
    both.assert_same_requests()
    assert len(both.direct_bodies) == 2
    assert all(body["stream"] is True for body in both.direct_bodies)
    assert_offered_tools(both.direct_bodies, "get_weather")
    (direct, direct_called, direct_result) = both.direct
    (relayed, relayed_called, relayed_result) = both.gateway
    assert relayed_called == direct_called == [{"city": "Paris"}]
    assert "".join(relayed) == "Here you go: Sunny, 22 °C in Paris."
    assert relayed == direct
    assert parts(relayed_result.all_messages()) == parts(direct_result.all_messages())
    assert model_responses(relayed_result.all_messages()) == model_responses(
        direct_result.all_messages()
    )


async def test_pydantic_ai_run_stream_structured_output_gives_the_same_partials(
    server: ScriptedServer,
) -> None:
    """`run_stream` with a tool output: the partial objects built from argument fragments."""
    server.handler = openai_handler(pai_weather)

    async def scenario(base_url: str) -> tuple[list[Any], Any]:
        agent = Agent(openai_model(base_url), output_type=CityReport)

        @agent.tool_plain
        def get_weather(city: str) -> str:
            """Get the current weather in a city."""
            return weather(city)

        async with agent, agent.run_stream("What is the weather in Paris?") as result:
            partials = [p async for p in result.stream_output(debounce_by=None)]
        return partials, result

    both = await arun_both(server, scenario)
    both.assert_same_requests()
    assert len(both.direct_bodies) == 2
    (direct, direct_result), (relayed, relayed_result) = both.direct, both.gateway
    assert relayed[-1] == CityReport(**REPORT)
    assert relayed == direct
    assert parts(relayed_result.all_messages()) == parts(direct_result.all_messages())
    assert model_responses(relayed_result.all_messages()) == model_responses(
        direct_result.all_messages()
    )


# The OpenAI SDK itself --------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
#: Fields beyond model and messages, an unknown one among them: all reach the upstream.
SDK_FIELDS: dict[str, Any] = {
    "tools": [WEATHER_TOOL],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "temperature": 0.2,
    "seed": 7,
    "user": "user-42",
    "extra_body": {"x_vendor_option": {"beam": 2, "tags": ["a", None]}},
}


def sdk_client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)


def test_openai_sdk_stream_with_tools_sees_the_same_chunks(server: ScriptedServer) -> None:
    server.handler = openai_handler(weather_loop)

    def scenario(base_url: str) -> list[dict[str, Any]]:
        with sdk_client(base_url) as client:
            stream = client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": QUESTION}],
                stream=True,
                stream_options={"include_usage": True},
                **SDK_FIELDS,
            )
            with stream:
                return [c.model_dump() for c in stream]

    both = run_both(server, scenario)
    both.assert_same_requests()
    sent = both.direct_bodies[0]
    assert sent["x_vendor_option"] == {"beam": 2, "tags": ["a", None]}
    assert sent["tools"] == [WEATHER_TOOL]
    assert len(both.gateway) == len(both.direct) > 5
    for number, (direct, relayed) in enumerate(zip(both.direct, both.gateway, strict=True)):
        assert relayed == direct, f"chunk {number} differs"
    assert both.gateway[-1]["usage"]["total_tokens"] > 0
    assert both.gateway[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_sdk_stream_helper_accumulates_the_same_completion(server: ScriptedServer) -> None:
    """`chat.completions.stream`: the SDK's own accumulator, events and final completion."""
    server.handler = openai_handler(weather_loop)

    def scenario(base_url: str) -> tuple[list[str], Any]:
        with (
            sdk_client(base_url) as client,
            client.chat.completions.stream(
                model=MODEL,
                messages=[{"role": "user", "content": QUESTION}],
                tools=[openai.pydantic_function_tool(WeatherQuery, name="get_weather")],
            ) as stream,
        ):
            kinds = [e.type for e in stream]
            return kinds, stream.get_final_completion()

    both = run_both(server, scenario)
    both.assert_same_requests()
    assert both.direct_bodies[0]["tools"][0]["function"]["strict"] is True
    (direct_kinds, direct), (relayed_kinds, relayed) = both.direct, both.gateway
    assert relayed_kinds == direct_kinds
    assert relayed_kinds.count("tool_calls.function.arguments.done") == 2
    parsed = [c.function.parsed_arguments for c in relayed.choices[0].message.tool_calls]
    assert parsed == [WeatherQuery(city="Paris"), WeatherQuery(city="Tokyo")]
    # `warnings=False`: the SDK's generic `Parsed*` models warn when dumping the parsed
    # objects they hold; those are compared just above.
    assert relayed.model_dump(warnings=False) == direct.model_dump(warnings=False)


class WeatherQuery(BaseModel):
    city: str


def test_openai_sdk_whole_answer_is_the_upstreams_json(server: ScriptedServer) -> None:
    """`stream: false` with tools: the same bytes as the upstream sent them."""
    server.handler = openai_handler(weather_loop)

    def scenario(base_url: str) -> tuple[bytes, dict[str, Any]]:
        with sdk_client(base_url) as client:
            raw = client.chat.completions.with_raw_response.create(
                model=MODEL, messages=[{"role": "user", "content": QUESTION}], **SDK_FIELDS
            )
            return raw.http_response.content, raw.parse().model_dump()

    both = run_both(server, scenario)
    both.assert_same_requests()
    # The SDK sends no `stream` here; the gateway says `"stream": false` (see `normalised`).
    assert "stream" not in both.direct_bodies[0]
    assert both.gateway_bodies[0]["stream"] is False
    (direct_bytes, direct), (relayed_bytes, relayed) = both.direct, both.gateway
    assert relayed_bytes == direct_bytes
    assert relayed == direct
    assert relayed["choices"][0]["message"]["tool_calls"][1]["id"] == CALLS[1].id


def test_openai_sdk_parse_gives_the_same_object(server: ScriptedServer) -> None:
    server.handler = openai_handler(structured)

    def scenario(base_url: str) -> Any:
        with sdk_client(base_url) as client:
            return client.chat.completions.parse(
                model=MODEL,
                messages=[{"role": "user", "content": "Tell me about Ada Lovelace."}],
                response_format=Person,
            )

    both = run_both(server, scenario)
    both.assert_same_requests()
    assert both.direct_bodies[0]["response_format"]["json_schema"]["strict"] is True
    assert both.gateway.choices[0].message.parsed == Person(**PERSON)
    assert both.gateway.model_dump(warnings=False) == both.direct.model_dump(warnings=False)


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_openai_sdk_several_choices_are_the_same(server: ScriptedServer, streamed: bool) -> None:
    """`n=2`: two choices, their chunks by `index`."""
    server.handler = openai_handler(weather_loop)

    def scenario(base_url: str) -> list[dict[str, Any]]:
        with sdk_client(base_url) as client:
            request: dict[str, Any] = {
                "model": MODEL,
                "messages": [{"role": "user", "content": QUESTION}],
                "n": 2,
                **SDK_FIELDS,
            }
            if not streamed:
                return [client.chat.completions.create(**request).model_dump()]
            stream = client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True}
            )
            with stream:
                return [c.model_dump() for c in stream]

    both = run_both(server, scenario)
    both.assert_same_requests()
    assert both.direct_bodies[0]["n"] == 2
    indexes = {choice["index"] for c in both.gateway for choice in c["choices"]}
    assert indexes == {0, 1}
    assert both.gateway == both.direct


# Upstream errors ------------------------------------------------------------------------

#: OpenAI's error answers, as it sends them.
UPSTREAM_ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "context_length_exceeded": (
        400,
        {
            "message": "This model's maximum context length is 128000 tokens. However, your "
            "messages resulted in 130012 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        },
    ),
    "model_not_found": (
        404,
        {
            "message": "The model `gpt-9` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        },
    ),
    "rate_limit_exceeded": (
        429,
        {
            "message": "Rate limit reached for gpt-4o-mini on tokens per min (TPM): Limit "
            "200000, Used 199000, Requested 3000. Please try again in 600ms.",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        },
    ),
    "insufficient_quota": (
        429,
        {
            "message": "You exceeded your current quota, please check your plan and billing "
            "details.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        },
    ),
    "server_error": (
        500,
        {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        },
    ),
    "overloaded": (
        503,
        {
            "message": "The engine is currently overloaded, please try again later",
            "type": "server_error",
            "param": None,
            "code": None,
        },
    ),
}


def answer_error(server: ScriptedServer, name: str) -> None:
    status, error = UPSTREAM_ERRORS[name]
    body = json.dumps({"error": error}).encode()
    headers = {"Content-Type": "application/json", "x-request-id": "req_7f3a9c"}
    server.handler = lambda recorded: Reply(status=status, headers=headers, body=[body])


@pytest.mark.parametrize(
    "name",
    [
        "context_length_exceeded",
        "model_not_found",
        "rate_limit_exceeded",
        "insufficient_quota",
        "server_error",
        "overloaded",
    ],
)
async def test_pydantic_ai_upstream_error_has_the_same_category(
    server: ScriptedServer, name: str
) -> None:
    """pydantic-ai sorts errors (quota, overloaded, context window...) by status and code."""
    answer_error(server, name)

    async def scenario(base_url: str) -> tuple[type[BaseException], int]:
        # Our own client, only for `max_retries=0` (the SDK would retry 429s and 5xx).
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        agent = Agent(OpenAIChatModel(MODEL, provider=OpenAIProvider(openai_client=client)))
        try:
            with pytest.raises(ModelHTTPError) as caught:
                await agent.run("What is the weather in Paris?")
        finally:
            await client.close()
        return type(caught.value), caught.value.status_code

    both = await arun_both(server, scenario)
    both.assert_same_requests()
    assert both.direct[1] == UPSTREAM_ERRORS[name][0]
    assert both.gateway == both.direct


def test_openai_sdk_upstream_error_keeps_its_code_and_param(server: ScriptedServer) -> None:
    answer_error(server, "context_length_exceeded")

    def scenario(base_url: str) -> dict[str, Any]:
        with sdk_client(base_url) as client, pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": QUESTION}]
            )
        e = caught.value
        return {
            "status": e.status_code,
            "code": e.code,
            "param": e.param,
            "type": e.type,
            "message": e.message,
        }

    both = run_both(server, scenario)
    both.assert_same_requests()
    assert both.direct["code"] == "context_length_exceeded"
    assert both.gateway["status"] == both.direct["status"] == 400
    assert both.gateway == both.direct


# The comparison can fail ------------------------------------------------------------------


def test_the_comparison_catches_a_gateway_that_drops_tools(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway that lost `tools` on the way must fail the LangChain tool-call scenario."""
    forwarded = wire._Fields.forwarded

    def without_tools(self: wire._Fields) -> dict[str, Any]:
        fields = forwarded(self)
        fields.pop("tools", None)
        return fields

    monkeypatch.setattr(wire._Fields, "forwarded", without_tools)
    with pytest.raises(AssertionError, match="request 0 differs"):
        test_langchain_bind_tools_invoke_gets_the_same_tool_calls(server)


def test_the_comparison_catches_a_gateway_that_rewrites_chunks(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway that re-rendered the upstream's chunks (its own ids, no fingerprint) must
    fail the chunk comparison, though the requests and the text are the same."""
    monkeypatch.setattr(OpenAICompatible, "relays_openai_chunks", False)
    with pytest.raises(AssertionError, match="chunk 0 differs"):
        test_openai_sdk_stream_with_tools_sees_the_same_chunks(server)
