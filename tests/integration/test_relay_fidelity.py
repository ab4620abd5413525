"""The official `openai` SDK gets the same answers through the gateway as direct.

Each case runs twice against one scripted upstream: the SDK pointed at the
upstream, then at `codelinkava serve --provider openai` in front of it. The
upstream must receive equal request bodies, and the SDK must return equal
objects: tool calls streamed and whole, a tool-result round trip, logprobs,
`.parse()` with a pydantic model, the `.stream()` helper, image parts, the
upstream's own usage.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from support.live_gateway import LiveGateway, fronting, live_gateway
from support.scripted import Recorded, Reply, ScriptedServer, event

JSON_HEADERS = {"Content-Type": "application/json"}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
ASK = [{"role": "user", "content": "Weather in Paris?"}]
BASE = {"id": "chatcmpl-up1", "created": 1700000000, "model": "gpt-4o-2024-08-06"}
USAGE = {"prompt_tokens": 51, "completion_tokens": 17, "total_tokens": 68}


def streamed(*chunks: dict[str, Any], usage: dict[str, Any] | None = None) -> Reply:
    body = b"".join(
        event({**BASE, "object": "chat.completion.chunk", "system_fingerprint": "fp_up", **c})
        for c in chunks
    )
    if usage is not None:
        body += event({**BASE, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    return Reply(body=[body + event("[DONE]")])


def whole(message: dict[str, Any], finish: str = "stop", **extra: Any) -> Reply:
    answer = {
        **BASE,
        "object": "chat.completion",
        "system_fingerprint": "fp_up",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": USAGE,
        **extra,
    }
    return Reply(headers=JSON_HEADERS, body=[json.dumps(answer).encode()])


def delta(index: int = 0, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "choices": [{"index": index, "delta": fields, "logprobs": None, "finish_reason": finish}]
    }


TOOL_CALL_STREAM = [
    delta(role="assistant", content=None),
    delta(
        tool_calls=[
            {
                "index": 0,
                "id": "call_abc",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ]
    ),
    delta(tool_calls=[{"index": 0, "function": {"arguments": '{"ci'}}]),
    delta(tool_calls=[{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]),
    delta(finish="tool_calls"),
]


@pytest.fixture
def gateway(server: ScriptedServer) -> AsyncIterator[LiveGateway]:
    with live_gateway(fronting(server.url("/v1"))) as running:
        yield running  # type: ignore[misc]


Call = Callable[[openai.AsyncOpenAI], Awaitable[Any]]


async def both(
    server: ScriptedServer, gateway: LiveGateway, reply: Reply, call: Call
) -> tuple[Any, Any, Recorded, Recorded]:
    """The same call direct and through the gateway; the two results and upstream requests."""
    server.reply(reply)
    results = []
    for base in (server.url("/v1"), gateway.url + "/v1"):
        async with openai.AsyncOpenAI(base_url=base, api_key="sk-test", max_retries=0) as client:
            results.append(await call(client))
    direct, relayed = server.requests[-2], server.requests[-1]
    assert same_body(direct.json(), relayed.json())
    return results[0], results[1], direct, relayed


def same_body(direct: dict[str, Any], relayed: dict[str, Any]) -> bool:
    # The SDK leaves `stream` out of a whole request; the gateway tells the upstream
    # `"stream": false` in so many words, which is the same question.
    direct = {"stream": False, **direct}
    relayed = {"stream": False, **relayed}
    assert direct == relayed
    return True


def dumps(objects: list[Any]) -> list[dict[str, Any]]:
    return [o.model_dump() for o in objects]


async def test_a_streamed_tool_call(server: ScriptedServer, gateway: LiveGateway) -> None:
    async def call(client: openai.AsyncOpenAI) -> list[Any]:
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=ASK,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice="auto",
            parallel_tool_calls=False,
            stream=True,
            stream_options={"include_usage": True},
        )
        return [chunk async for chunk in stream]

    direct, relayed, sent, _ = await both(
        server, gateway, streamed(*TOOL_CALL_STREAM, usage=USAGE), call
    )
    assert dumps(direct) == dumps(relayed)
    assert sent.json()["tools"] == TOOLS and sent.json()["tool_choice"] == "auto"
    assert sent.json()["parallel_tool_calls"] is False
    assert relayed[-1].usage.model_dump(exclude_none=True) == USAGE  # the upstream's count
    assert relayed[0].system_fingerprint == "fp_up" and relayed[0].id == "chatcmpl-up1"


async def test_a_whole_tool_call(server: ScriptedServer, gateway: LiveGateway) -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }

    async def call(client: openai.AsyncOpenAI) -> Any:
        return await client.chat.completions.create(
            model="gpt-4o",
            messages=ASK,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )

    direct, relayed, _, _ = await both(server, gateway, whole(message, "tool_calls"), call)
    assert direct.model_dump() == relayed.model_dump()
    assert relayed.choices[0].message.tool_calls[0].function.arguments == '{"city": "Paris"}'
    assert relayed.usage.model_dump(exclude_none=True) == USAGE


async def test_a_tool_result_round_trip(server: ScriptedServer, gateway: LiveGateway) -> None:
    conversation = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"celsius": 21}'},
    ]

    async def call(client: openai.AsyncOpenAI) -> Any:
        return await client.chat.completions.create(
            model="gpt-4o",
            messages=conversation,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            user="u-42",
            metadata={"team": "a"},
            store=False,
            seed=7,
            max_completion_tokens=50,
            logit_bias={"1234": -100},
            reasoning_effort="low",
            service_tier="auto",
        )

    reply = whole({"role": "assistant", "content": "21 °C and sunny."})
    direct, relayed, sent, _ = await both(server, gateway, reply, call)
    assert direct.model_dump() == relayed.model_dump()
    body = sent.json()
    assert body["messages"] == conversation
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body


async def test_logprobs_stream_through(server: ScriptedServer, gateway: LiveGateway) -> None:
    def with_logprobs(token: str) -> dict[str, Any]:
        logprobs = {
            "content": [
                {
                    "token": token,
                    "logprob": -0.25,
                    "bytes": list(token.encode()),
                    "top_logprobs": [{"token": token, "logprob": -0.25, "bytes": None}],
                }
            ],
            "refusal": None,
        }
        return {
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": token},
                    "logprobs": logprobs,
                    "finish_reason": None,
                }
            ]
        }

    async def call(client: openai.AsyncOpenAI) -> list[Any]:
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=ASK,  # type: ignore[arg-type]
            logprobs=True,
            top_logprobs=1,
            stream=True,
        )
        return [chunk async for chunk in stream]

    reply = streamed(with_logprobs("Sun"), with_logprobs("ny"), delta(finish="stop"))
    direct, relayed, sent, _ = await both(server, gateway, reply, call)
    assert dumps(direct) == dumps(relayed)
    assert sent.json()["logprobs"] is True and sent.json()["top_logprobs"] == 1
    assert relayed[0].choices[0].logprobs.content[0].token == "Sun"


class Weather(BaseModel):
    city: str
    celsius: float


async def test_parse_with_a_pydantic_model(server: ScriptedServer, gateway: LiveGateway) -> None:
    content = json.dumps({"city": "Paris", "celsius": 21.5})

    async def call(client: openai.AsyncOpenAI) -> Any:
        return await client.chat.completions.parse(
            model="gpt-4o",
            messages=ASK,  # type: ignore[arg-type]
            response_format=Weather,
        )

    direct, relayed, sent, _ = await both(
        server, gateway, whole({"role": "assistant", "content": content}), call
    )
    assert relayed.choices[0].message.parsed == Weather(city="Paris", celsius=21.5)
    assert direct.choices[0].message.parsed == relayed.choices[0].message.parsed
    assert sent.json()["response_format"]["type"] == "json_schema"


async def test_the_stream_helper(server: ScriptedServer, gateway: LiveGateway) -> None:
    async def call(client: openai.AsyncOpenAI) -> Any:
        async with client.chat.completions.stream(
            model="gpt-4o",
            messages=ASK,  # type: ignore[arg-type]
            tools=[openai.pydantic_function_tool(Weather, name="get_weather")],
        ) as stream:
            async for _event in stream:
                pass
            return await stream.get_final_completion()

    calls = [dict(c) for c in TOOL_CALL_STREAM]
    calls[3] = delta(
        tool_calls=[{"index": 0, "function": {"arguments": 'ty": "Paris", "celsius": 21}'}}]
    )
    direct, relayed, _, _ = await both(server, gateway, streamed(*calls), call)
    assert direct.model_dump() == relayed.model_dump()
    parsed = relayed.choices[0].message.tool_calls[0].function.parsed_arguments
    assert parsed == Weather(city="Paris", celsius=21)


async def test_image_parts_reach_the_upstream(server: ScriptedServer, gateway: LiveGateway) -> None:
    image = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                },
                {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}},
            ],
        }
    ]

    async def call(client: openai.AsyncOpenAI) -> Any:
        return await client.chat.completions.create(model="gpt-4o", messages=image)  # type: ignore[arg-type]

    direct, relayed, sent, _ = await both(
        server, gateway, whole({"role": "assistant", "content": "A cat."}), call
    )
    assert direct.model_dump() == relayed.model_dump()
    assert sent.json()["messages"] == image


async def test_n_choices_reach_the_caller(server: ScriptedServer, gateway: LiveGateway) -> None:
    answer = whole({"role": "assistant", "content": "One."})
    body = json.loads(answer.body[0])  # type: ignore[arg-type]
    body["choices"].append(
        {"index": 1, "message": {"role": "assistant", "content": "Two."}, "finish_reason": "stop"}
    )
    reply = Reply(headers=JSON_HEADERS, body=[json.dumps(body).encode()])

    async def call(client: openai.AsyncOpenAI) -> Any:
        return await client.chat.completions.create(model="gpt-4o", messages=ASK, n=2)  # type: ignore[arg-type]

    direct, relayed, sent, _ = await both(server, gateway, reply, call)
    assert [c.message.content for c in relayed.choices] == ["One.", "Two."]
    assert direct.model_dump() == relayed.model_dump() and sent.json()["n"] == 2


async def test_an_upstreams_refusal_of_a_field_is_passed_on(
    server: ScriptedServer, gateway: LiveGateway
) -> None:
    error = {"error": {"message": "Unrecognized request argument: frobnicate", "type": "x"}}
    server.reply(Reply(status=400, headers=JSON_HEADERS, body=[json.dumps(error).encode()]))
    async with openai.AsyncOpenAI(
        base_url=gateway.url + "/v1", api_key="sk-test", max_retries=0
    ) as client:
        with pytest.raises(openai.BadRequestError, match="frobnicate"):
            await client.chat.completions.create(
                model="gpt-4o",
                messages=ASK,  # type: ignore[arg-type]
                extra_body={"frobnicate": True},
            )
    assert server.requests[-1].json()["frobnicate"] is True
