"""`/v1/responses` in front of the real local model: its grammar-held JSON and forced tool
calls, through the `openai` SDK's `responses.parse` and `responses.stream`.

A 135M model: the tests check the shape of what it writes (JSON the schema admits,
arguments that parse), never whether it is right. A few short calls.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel, Field

from support.live_gateway import LiveGateway

from .conftest import MODEL

pytestmark = pytest.mark.e2e

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the weather forecast for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


class Capital(BaseModel):
    city: str = Field(max_length=40)
    country: str = Field(max_length=40)


@pytest.fixture
async def client(local_gateway: LiveGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    url = f"{local_gateway.url}/v1"
    async with openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0) as client:
        yield client


async def test_parse_answers_an_object_the_schema_admits(client: openai.AsyncOpenAI) -> None:
    async with asyncio.timeout(90):
        parsed = await client.responses.parse(
            model=MODEL,
            input="What is the capital of France?",
            text_format=Capital,
            max_output_tokens=80,
        )
    assert parsed.status == "completed"
    assert isinstance(parsed.output_parsed, Capital)
    assert parsed.usage is not None and parsed.usage.output_tokens > 0


async def test_a_forced_tool_call_streams_as_function_call_events(
    client: openai.AsyncOpenAI,
) -> None:
    deltas: list[str] = []
    async with (
        asyncio.timeout(90),
        client.responses.stream(
            model=MODEL,
            input="What will the weather be in Paris?",
            tools=[WEATHER],
            tool_choice={"type": "function", "name": "get_weather"},
            max_output_tokens=60,
        ) as stream,
    ):
        async for ev in stream:
            if ev.type == "response.function_call_arguments.delta":
                deltas.append(ev.delta)
        final = await stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    arguments = json.loads(calls[0].arguments)
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str)
    assert "".join(deltas) == calls[0].arguments and len(deltas) > 1


async def test_text_streams_and_ends_with_the_models_usage(client: openai.AsyncOpenAI) -> None:
    pieces: list[str] = []
    async with asyncio.timeout(60):
        stream = await client.responses.create(
            model=MODEL, input="Say hello.", max_output_tokens=12, stream=True
        )
        async for ev in stream:
            if ev.type == "response.output_text.delta":
                pieces.append(ev.delta)
            elif ev.type in ("response.completed", "response.incomplete"):
                final = ev.response
    assert len(pieces) > 1 and final.output_text == "".join(pieces)
    if final.status == "incomplete":  # 12 tokens may cut it short: said so, by name
        assert final.incomplete_details is not None
        assert final.incomplete_details.reason == "max_output_tokens"
    assert final.usage is not None and final.usage.input_tokens > 0
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        pytest.param({"tools": [WEATHER], "tool_choice": "auto"}, "tool_choice", id="auto-choice"),
        pytest.param({"text": {"verbosity": "low"}}, "text.verbosity", id="verbosity"),
        pytest.param({"include": ["message.output_text.logprobs"]}, "include", id="logprobs"),
    ],
)
async def test_what_the_local_model_cannot_honour_is_refused_by_the_callers_name(
    client: openai.AsyncOpenAI, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model=MODEL, input="Hi", **extra)
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == param, body
