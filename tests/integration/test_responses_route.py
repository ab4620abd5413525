"""`POST /v1/responses` through a live gateway, with the `openai` SDK and on the raw wire.

The upstream is the realistic OpenAI chat upstream of `support/real_upstream.py`
(answers by the request's content, written in 23-byte pieces), or a scripted
one where a test needs a fault. Each test drives the route as a client would:
`responses.create`, `responses.stream`, `responses.parse`, `retrieve`,
`delete`; the raw-wire tests read the bytes and check OpenAI's documented event
order, the event lines and the sequence numbers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from codelinkava.server import GatewaySettings
from support.anthropic_streams import TEXT_STREAM, WHOLE_TOOL_MESSAGE, stream
from support.live_gateway import LiveGateway, fronting, live_gateway
from support.real_upstream import Answer, ToolCall, has_tool_result, openai_handler
from support.scripted import SSE_HEADERS, Reply, Reset, ScriptedServer, chunk, event, sse

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
PARIS = ToolCall("call_paris", "get_weather", {"city": "Paris"})


class Person(BaseModel):
    name: str
    age: int


def decide(body: dict[str, Any]) -> Answer:
    """What the upstream's assistant says: a tool call when it has tools and no result yet,
    a JSON person when asked for one, else text."""
    if body.get("tools") and not has_tool_result(body):
        return Answer(tool_calls=[PARIS])
    if has_tool_result(body):
        return Answer("It is sunny in Paris.")
    if body.get("response_format", {}).get("type") == "json_schema":
        return Answer('{"name": "Ada", "age": 36}', pieces=['{"name": ', '"Ada", ', '"age": 36}'])
    return Answer("Hello there, friend.")


@pytest.fixture
def gateway(server: ScriptedServer) -> Iterator[LiveGateway]:
    server.handler = openai_handler(decide)
    with live_gateway(fronting(server.url("/v1"))) as running:
        yield running


@pytest.fixture
def client(gateway: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0) as sdk:
        yield sdk


def sent(server: ScriptedServer, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = server.requests[index].json()
    return body


def raw_events(
    gateway: LiveGateway, body: dict[str, Any]
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """POST a streamed request; every event checked: its `event:` line names its type."""
    with httpx.stream("POST", gateway.url + "/v1/responses", json=body, timeout=10) as response:
        text = response.read().decode()
    events = []
    for block in text.split("\n\n")[:-1]:
        head, data = block.split("\n")
        payload = json.loads(data.removeprefix("data: "))
        assert head == f"event: {payload['type']}", block
        events.append(payload)
    assert text.endswith("\n\n") and "[DONE]" not in text
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return response, events


# Whole and streamed answers -------------------------------------------------------------


def test_create_answers_whole_with_the_upstreams_usage(
    client: openai.OpenAI, server: ScriptedServer
) -> None:
    response = client.responses.create(
        model="gpt-4o-mini",
        input="Hi",
        instructions="Be kind.",
        max_output_tokens=40,
        temperature=0.2,
        metadata={"case": "whole"},
    )
    assert response.output_text == "Hello there, friend."
    assert response.status == "completed" and response.object == "response"
    assert response.id.startswith("resp_") and response.model == "gpt-4o-mini"
    assert response.instructions == "Be kind." and response.temperature == 0.2
    assert response.metadata == {"case": "whole"} and response.max_output_tokens == 40
    body = sent(server)
    assert body["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
    ]
    assert body["max_tokens"] == 40 and body["temperature"] == 0.2 and body["stream"] is False
    assert "metadata" not in body and "store" not in body
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens == len(json.dumps(body["messages"])) // 4  # the upstream's count
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_stream_text_arrives_in_order_and_ends_with_the_whole_response(
    client: openai.OpenAI,
) -> None:
    deltas = []
    with client.responses.stream(model="m", input="Hi") as stream:
        kinds = []
        for ev in stream:
            kinds.append(ev.type)
            if ev.type == "response.output_text.delta":
                deltas.append(ev.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == "Hello there, friend." and len(deltas) == 3
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert final.output_text == "Hello there, friend." and final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens > 0


def test_stream_tool_call_events_and_the_call_in_the_final_response(
    client: openai.OpenAI, server: ScriptedServer
) -> None:
    arguments = []
    with client.responses.stream(
        model="m", input="Weather in Paris?", tools=[WEATHER_TOOL], tool_choice="auto"
    ) as stream:
        for ev in stream:
            if ev.type == "response.function_call_arguments.delta":
                arguments.append(ev.delta)
            if ev.type == "response.function_call_arguments.done":
                done = ev.arguments
        final = stream.get_final_response()
    (call,) = final.output
    assert call.type == "function_call"
    assert call.call_id == "call_paris" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"} == json.loads(done)
    assert "".join(arguments) == call.arguments and len(arguments) > 1
    body = sent(server)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": WEATHER_TOOL["parameters"],
                "strict": True,
            },
        }
    ]
    assert body["tool_choice"] == "auto" and body["stream_options"] == {"include_usage": True}


def test_a_tool_loop_with_the_output_sent_back(
    client: openai.OpenAI, server: ScriptedServer
) -> None:
    first = client.responses.create(model="m", input="Weather in Paris?", tools=[WEATHER_TOOL])
    (call,) = first.output
    assert call.type == "function_call"
    second = client.responses.create(
        model="m",
        tools=[WEATHER_TOOL],
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 22 C"},
        ],
    )
    assert second.output_text == "It is sunny in Paris."
    assert sent(server)["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_paris",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_paris", "content": "sunny, 22 C"},
    ]


def test_parse_gives_the_typed_object(client: openai.OpenAI, server: ScriptedServer) -> None:
    parsed = client.responses.parse(model="m", input="Who?", text_format=Person)
    assert parsed.output_parsed == Person(name="Ada", age=36)
    response_format = sent(server)["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Person"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"]["required"] == ["name", "age"]


def test_the_chat_upstream_is_asked_what_the_chat_route_would_ask(
    client: openai.OpenAI, server: ScriptedServer, gateway: LiveGateway
) -> None:
    """The reference: the same conversation through /v1/chat/completions and /v1/responses
    reaches the upstream as the same messages, tools and fields."""
    chat_tool = {
        "type": "function",
        "function": {k: v for k, v in WEATHER_TOOL.items() if k != "type"},
    }
    client.chat.completions.create(
        model="m",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
        ],
        tools=[chat_tool],
        max_tokens=30,
        top_p=0.5,
    )
    via_chat = sent(server)
    client.responses.create(
        model="m",
        instructions="Be brief.",
        input="Weather?",
        tools=[WEATHER_TOOL],
        max_output_tokens=30,
        top_p=0.5,
    )
    assert sent(server) == via_chat


# The wire, byte by byte ------------------------------------------------------------------


def test_the_events_on_the_wire_in_documented_order(gateway: LiveGateway) -> None:
    response, events = raw_events(gateway, {"model": "m", "input": "Hi", "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    item = events[2]["item"]
    assert item["type"] == "message" and item["status"] == "in_progress" and item["content"] == []
    for ev in events[3:10]:
        assert ev["output_index"] == 0 and ev.get("item_id", item["id"]) == item["id"]
    assert events[3]["part"] == {
        "type": "output_text",
        "text": "",
        "annotations": [],
        "logprobs": [],
    }
    assert events[4] == {
        "type": "response.output_text.delta",
        "sequence_number": 4,
        "item_id": item["id"],
        "output_index": 0,
        "content_index": 0,
        "delta": "Hello",
        "logprobs": [],
    }
    completed = events[-1]["response"]
    assert completed["status"] == "completed" and completed["id"] == events[0]["response"]["id"]
    assert set(completed["usage"]) == {
        "input_tokens",
        "input_tokens_details",
        "output_tokens",
        "output_tokens_details",
        "total_tokens",
    }


def test_max_output_tokens_cut_is_an_incomplete_response(server: ScriptedServer) -> None:
    cut = event(chunk("Once upon")) + event(chunk(finish_reason="length")) + event("[DONE]")
    server.reply(Reply(body=[cut]))
    with live_gateway(fronting(server.url("/v1"))) as gateway:
        _response, events = raw_events(
            gateway, {"model": "m", "input": "A story", "stream": True, "max_output_tokens": 2}
        )
        with openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0) as sdk:
            whole = sdk.responses.create(model="m", input="A story", max_output_tokens=2)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert whole.status == "incomplete" and whole.incomplete_details is not None
    assert whole.incomplete_details.reason == "max_output_tokens"
    assert whole.output_text == "Once upon"


# Failures ------------------------------------------------------------------------------------


def test_an_upstream_that_breaks_mid_stream_fails_the_response(server: ScriptedServer) -> None:
    server.reply(Reply(body=[event(chunk("Half an ")), Reset()]))
    with live_gateway(fronting(server.url("/v1"))) as gateway:
        response, events = raw_events(gateway, {"model": "m", "input": "Hi", "stream": True})
    assert response.status_code == 200
    assert [e["type"] for e in events][-3:] == [
        "response.content_part.done",
        "response.output_item.done",
        "response.failed",
    ]
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert failed["output"][0]["status"] == "incomplete"
    assert "127.0.0.1" not in json.dumps(failed)  # where the upstream is stays the operator's


def test_an_upstream_refusal_before_the_stream_is_an_http_error(server: ScriptedServer) -> None:
    error = {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limited"}}
    server.reply(
        Reply(
            status=429,
            headers={"Content-Type": "application/json", "Retry-After": "3"},
            body=[json.dumps(error).encode()],
        )
    )
    with (
        live_gateway(fronting(server.url("/v1"))) as gateway,
        openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0) as sdk,
        pytest.raises(openai.RateLimitError) as caught,
    ):
        sdk.responses.create(model="m", input="Hi", stream=True)
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.body == {
        "message": "slow down",
        "type": "rate_limit_error",
        "code": "rate_limited",
        "param": None,
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param({"input": [{"role": "user"}]}, "input[0].content", id="no-content"),
        pytest.param(
            {
                "input": [
                    {"role": "user", "content": "x"},
                    {"type": "function_call_output", "call_id": "call_x", "output": "1"},
                ]
            },
            "input[1].call_id",
            id="unmatched-output",
        ),
        pytest.param(
            {"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type", id="web-search"
        ),
        pytest.param(
            {"input": "x", "tools": [{"type": "file_search"}]}, "tools[0].type", id="file-search"
        ),
        pytest.param({"input": 5}, "input", id="input-type"),
        pytest.param({"input": "x", "temperature": "hot"}, "temperature", id="temperature"),
        pytest.param(
            {"input": "x", "previous_response_id": "resp_nope"},
            "previous_response_id",
            id="unknown-previous",
        ),
        pytest.param({"input": "x", "api_key": "sk-mine"}, "api_key", id="reserved"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    gateway: LiveGateway, body: dict[str, Any], param: str
) -> None:
    answer = httpx.post(gateway.url + "/v1/responses", json={"model": "m", **body}, timeout=10)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"]


# Stored responses ------------------------------------------------------------------------------


def test_a_stored_response_is_retrieved_continued_and_deleted(
    client: openai.OpenAI, server: ScriptedServer
) -> None:
    with client.responses.stream(model="m", input="Hi", instructions="Old rules.") as stream:
        first = stream.get_final_response()
    stored = client.responses.retrieve(first.id).model_dump(exclude_none=True)
    assert stored == first.model_dump(exclude_none=True)
    second = client.responses.create(
        model="m", input="And then?", previous_response_id=first.id, instructions="New rules."
    )
    assert second.previous_response_id == first.id
    assert sent(server)["messages"] == [
        {"role": "system", "content": "New rules."},  # instructions are not carried over
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there, friend."},
        {"role": "user", "content": "And then?"},
    ]
    third = client.responses.create(model="m", input="More?", previous_response_id=second.id)
    assert [m["content"] for m in sent(server)["messages"]] == [
        "Hi",
        "Hello there, friend.",
        "And then?",
        "Hello there, friend.",
        "More?",
    ]
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(first.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="x", previous_response_id=first.id)
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert client.responses.retrieve(third.id).output_text == "Hello there, friend."


def test_a_tool_call_continued_by_previous_response_id(
    client: openai.OpenAI, server: ScriptedServer
) -> None:
    first = client.responses.create(model="m", input="Weather in Paris?", tools=[WEATHER_TOOL])
    (call,) = first.output
    assert call.type == "function_call"
    second = client.responses.create(
        model="m",
        previous_response_id=first.id,
        tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert second.output_text == "It is sunny in Paris."
    assert [m["role"] for m in sent(server)["messages"]] == ["user", "assistant", "tool"]


def test_store_false_is_not_retrievable(client: openai.OpenAI) -> None:
    response = client.responses.create(model="m", input="Hi", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(response.id)
    assert caught.value.body["param"] == "response_id"  # type: ignore[index]


def test_retrieving_as_a_stream_is_refused_by_name(
    client: openai.OpenAI, gateway: LiveGateway
) -> None:
    response = client.responses.create(model="m", input="Hi")
    answer = httpx.get(f"{gateway.url}/v1/responses/{response.id}?stream=true", timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "stream"
    answer = httpx.get(f"{gateway.url}/v1/responses/{response.id}?include[]=x", timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "include[]"


def test_the_key_guards_the_stored_responses_too(server: ScriptedServer) -> None:
    server.handler = openai_handler(decide)
    with (
        live_gateway(fronting(server.url("/v1"), api_key="k-1")) as gateway,
        openai.OpenAI(base_url=gateway.url + "/v1", api_key="k-1", max_retries=0) as sdk,
    ):
        response = sdk.responses.create(model="m", input="Hi")
        answer = httpx.get(f"{gateway.url}/v1/responses/{response.id}", timeout=10)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"
        answer = httpx.get(
            f"{gateway.url}/v1/responses/{response.id}", headers={"x-api-key": "k-1"}, timeout=10
        )
        assert answer.status_code == 200 and answer.json()["id"] == response.id


# Other providers ---------------------------------------------------------------------------------


def test_the_seeds_wire_answers_behind_the_route(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("Hello", " from", " the seed")]))
    with (
        live_gateway(fronting(server.url("/api/chat"), provider="codelinkava")) as gateway,
        openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0) as sdk,
    ):
        whole = sdk.responses.create(model="m", input="Hi")
        with sdk.responses.stream(model="m", input="Hi") as stream:
            streamed = stream.get_final_response()
    assert whole.output_text == streamed.output_text == "Hello from the seed"
    assert sent(server)["messages"] == [{"role": "user", "content": "Hi"}]
    assert sent(server)["stream"] is True


def test_a_scripted_stream_with_no_text_still_completes(server: ScriptedServer) -> None:
    server.reply(
        Reply(
            headers=dict(SSE_HEADERS), body=[event(chunk(finish_reason="stop")) + event("[DONE]")]
        )
    )
    with live_gateway(fronting(server.url("/v1"))) as gateway:
        _response, events = raw_events(gateway, {"model": "m", "input": "Hi", "stream": True})
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.completed",
    ]


def test_an_anthropic_upstream_answers_behind_the_route(server: ScriptedServer) -> None:
    """The Anthropic provider's events and whole message, as Responses: text, a tool call,
    the usage mapped field by field."""
    options = {"base_url": server.url(""), "api_key": "sk-ant", "max_retries": 0, "timeout": 2}
    settings = GatewaySettings(provider="anthropic", provider_options=options, api_key=None)
    server.reply(stream(TEXT_STREAM))
    with (
        live_gateway(settings) as gateway,
        openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0) as sdk,
    ):
        with sdk.responses.stream(model="claude-x", input="Hi", max_output_tokens=64) as events:
            streamed = events.get_final_response()
        server.reply(
            Reply(
                headers={"Content-Type": "application/json"},
                body=[json.dumps(WHOLE_TOOL_MESSAGE).encode()],
            )
        )
        whole = sdk.responses.create(model="claude-x", input="Weather?", tools=[WEATHER_TOOL])
    assert streamed.output_text == "Hello!" and streamed.status == "completed"
    assert streamed.usage is not None
    assert (streamed.usage.input_tokens, streamed.usage.output_tokens) == (25, 15)
    asked, tooled = (r.json() for r in server.requests if r.path == "/v1/messages")
    assert asked["messages"] == [{"role": "user", "content": "Hi"}] and asked["max_tokens"] == 64
    text, call = whole.output
    assert text.type == "message" and whole.output_text.startswith("I'll check")
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"location": "San Francisco, CA", "unit": "celsius"}
    assert tooled["tools"][0]["name"] == "get_weather"
