"""Structured answers from the real local model: JSON held to a schema, forced tool calls,
tool results read back, refusals that name the field, and the same answer to the same
question whatever was asked before.

SmolLM2-135M is tiny: these tests check the shape of what it writes (JSON valid against
the schema, a tool call whose arguments validate), never whether it is right.
`jsonschema` is not installed; `check_schema` below validates the subset of JSON Schema
these tests use.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from codelinkava import LocalModel
from codelinkava.chunk import AnswerBuilder, ChatChunk
from codelinkava.errors import InvalidRequestError
from codelinkava.providers._llama_engine import Engine, Job
from codelinkava.providers._local_tools import MAX_STRING_CHARS, schema_grammar
from codelinkava.providers.local import default_model_path
from support.live_gateway import LiveGateway, wait_until

from .conftest import MODEL

pytestmark = pytest.mark.e2e

CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "country": {"type": "string"},
        "population": {"type": "integer"},
        "landmarks": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["city", "country", "population", "landmarks"],
    "additionalProperties": False,
}
WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "the city's name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather forecast for a city",
        "parameters": WEATHER_PARAMETERS,
    },
}
TIME_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
# `minimum` is a constraint the grammar cannot enforce.
AGE = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}}
CHOOSE_WEATHER: Any = {"type": "function", "function": {"name": "get_weather"}}
ASK_CITY: Any = [{"role": "user", "content": "Tell me about the capital of France."}]
ASK_WEATHER: Any = [{"role": "user", "content": "What will the weather be in Paris this week?"}]
# A question whose answer used to change when it was asked twice in a row: the second
# time llama-cpp-python reused all but the last prompt token from its cache.
Q1: Any = [
    {
        "role": "user",
        "content": "Explain in detail why the sky appears blue during the day and red at "
        "sunset, covering Rayleigh scattering, the wavelength of light, the angle of the "
        "sun, and how particles in the atmosphere affect what colours we see from the ground.",
    }
]
Q2: Any = [{"role": "user", "content": "Name three animals that live in the sea."}]


# A validator for the JSON Schema subset used here ------------------------------------------


def schema_errors(value: Any, schema: dict[str, Any], where: str = "$") -> Iterator[str]:
    """Every way `value` breaks `schema` (type, properties, required, additionalProperties,
    items, minItems, maxItems, enum, maxLength)."""
    kinds: dict[str, type | tuple[type, ...]] = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "null": type(None),
    }
    kind = schema.get("type")
    wrong_kind = kind is not None and not isinstance(value, kinds[kind])
    if wrong_kind or (kind in ("integer", "number") and isinstance(value, bool)):
        yield f"{where}: {value!r} is not of type {kind}"
        return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{where}: {value!r} is not one of {schema['enum']}"
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        yield f"{where}: longer than {schema['maxLength']}"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                yield f"{where}: {name!r} is missing"
        for name, item in value.items():
            if name in properties:
                yield from schema_errors(item, properties[name], f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                yield f"{where}: {name!r} is not allowed"
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            yield f"{where}: fewer than {schema['minItems']} items"
        if len(value) > schema.get("maxItems", len(value)):
            yield f"{where}: more than {schema['maxItems']} items"
        for index, item in enumerate(value):
            yield from schema_errors(item, schema.get("items", {}), f"{where}[{index}]")


def assert_valid(text: str | None, schema: dict[str, Any]) -> Any:
    assert text is not None
    value = json.loads(text)  # strict: a raw newline inside a string fails here
    errors = list(schema_errors(value, schema))
    assert not errors, (errors, text)
    return value


def test_the_validator_catches_what_it_should() -> None:
    assert not list(schema_errors({"city": "a", "unit": "celsius", "days": 1}, WEATHER_PARAMETERS))
    wrong = {"city": 1, "unit": "kelvin", "extra": True}
    assert len(list(schema_errors(wrong, WEATHER_PARAMETERS))) == 4


def test_grammar_strings_are_json_strings_of_bounded_length() -> None:
    grammar = schema_grammar(CITY_SCHEMA, "response_format")
    assert r'char ::= [^"\\\x7F\x00-\x1F]' in grammar  # no raw control characters
    assert f"char{{0,{MAX_STRING_CHARS}}}" in grammar
    assert "char*" not in grammar


# The library: LocalModel's typed chunks -----------------------------------------------------


async def collect(**kwargs: Any) -> list[ChatChunk]:
    messages = kwargs.pop("messages", ASK_WEATHER)
    async with asyncio.timeout(90):
        return [chunk async for chunk in LocalModel.create_async_chunks("", messages, **kwargs)]


async def test_library_streams_a_forced_tool_call_as_tool_call_deltas() -> None:
    chunks = await collect(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=CHOOSE_WEATHER)
    header, *fragments, last = chunks
    assert header.role == "assistant" and header.content is None
    assert header.tool_calls is not None and len(header.tool_calls) == 1
    call = header.tool_calls[0]
    assert (call.index, call.type, call.name, call.arguments) == (0, "function", "get_weather", "")
    assert call.id is not None and call.id.startswith("call_")
    assert len(fragments) > 3  # the arguments arrive a token at a time
    for chunk in fragments:
        assert chunk.content is None and chunk.role is None
        assert chunk.tool_calls is not None and len(chunk.tool_calls) == 1
        delta = chunk.tool_calls[0]
        assert (delta.index, delta.id, delta.name) == (0, None, None)
        assert delta.arguments
    assert last.finish_reason == "tool_calls"
    assert last.usage is not None and last.usage["completion_tokens"] == len(fragments)
    answer = AnswerBuilder()
    answer.extend(chunks)
    assert answer.text == ""
    assert [c.name for c in answer.tool_calls] == ["get_weather"]
    assert_valid(answer.tool_calls[0].arguments, WEATHER_PARAMETERS)
    assert answer.message()["content"] is None


async def test_library_answers_json_valid_against_the_schema() -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "c", "schema": CITY_SCHEMA}}
    chunks = await collect(messages=ASK_CITY, response_format=response_format)
    assert chunks[-1].finish_reason == "stop"
    assert not any(chunk.tool_calls for chunk in chunks)
    assert_valid("".join(chunk.content or "" for chunk in chunks), CITY_SCHEMA)


async def test_tool_results_are_read_back_as_text() -> None:
    answer = await LocalModel.create_async_answer(
        "", ASK_WEATHER, tools=[WEATHER_TOOL], tool_choice="required", max_tokens=200
    )
    assert answer.finish_reason == "tool_calls"
    call = answer.tool_calls[0]
    result = {"forecast": "sunny", "high_celsius": 24}
    conversation = [
        *ASK_WEATHER,
        answer.message(),  # role assistant, content None, tool_calls
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)},
    ]
    for tool_choice in ("none", None):
        tools = [WEATHER_TOOL] if tool_choice else None
        async with asyncio.timeout(60):
            text = await LocalModel.create_async(
                "", conversation, tools=tools, tool_choice=tool_choice, max_tokens=40
            )
        assert text.strip()
    # The prompt holds the call as JSON and the result as a user turn that names it.
    _, rendered, _, _ = LocalModel._prepare("", conversation, {})
    assert '"name": "get_weather"' in rendered[-2]["content"]
    assert rendered[-1]["role"] == "user"
    assert "get_weather" in rendered[-1]["content"] and "sunny" in rendered[-1]["content"]


async def test_json_text_streams_through_the_text_generator_but_a_tool_call_does_not() -> None:
    pieces = [
        piece
        async for piece in LocalModel.create_async_generator(
            "", ASK_CITY, response_format={"type": "json_object"}
        )
    ]
    assert isinstance(json.loads("".join(pieces)), dict)
    with pytest.raises(InvalidRequestError) as caught:
        async for _ in LocalModel.create_async_generator(
            "", ASK_WEATHER, tools=[WEATHER_TOOL], tool_choice="required"
        ):
            pass
    assert caught.value.param == "tool_choice"


async def test_logit_bias_and_max_completion_tokens_are_honoured() -> None:
    engine = LocalModel.engine()
    await engine.wait_loaded()
    banana = engine._llm.tokenize(b" banana", add_bos=False)[0]
    answer = await LocalModel.create_async_answer(
        "", ASK_CITY, logit_bias={str(banana): 100}, max_completion_tokens=5
    )
    assert answer.text.split() == ["banana"] * 5
    assert answer.finish_reason == "length"
    assert answer.usage is not None and answer.usage["completion_tokens"] == 5
    with pytest.raises(InvalidRequestError) as caught:
        await LocalModel.create_async("", ASK_CITY, logit_bias={"99999999": 5})
    assert caught.value.param == "logit_bias"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        pytest.param({"n": 2}, "n", id="n"),
        pytest.param({"logprobs": True}, "logprobs", id="logprobs"),
        pytest.param({"top_logprobs": 2}, "top_logprobs", id="top_logprobs"),
        pytest.param({"tools": [WEATHER_TOOL]}, "tool_choice", id="tools-without-choice"),
        pytest.param({"tools": [WEATHER_TOOL], "tool_choice": "auto"}, "tool_choice", id="auto"),
        pytest.param(
            {"tools": [WEATHER_TOOL, TIME_TOOL], "tool_choice": "required"},
            "tool_choice",
            id="required-with-two-tools",
        ),
        pytest.param(
            {"tools": [TIME_TOOL], "tool_choice": CHOOSE_WEATHER}, "tool_choice", id="unknown-tool"
        ),
        pytest.param({"tool_choice": CHOOSE_WEATHER}, "tool_choice", id="choice-without-tools"),
        pytest.param(
            {"tools": [{"type": "custom", "custom": {"name": "x"}}], "tool_choice": "required"},
            "tools[0].type",
            id="custom-tool",
        ),
        pytest.param(
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": AGE},
                }
            },
            "response_format.json_schema.schema.properties.age",
            id="unenforceable-keyword",
        ),
        pytest.param({"response_format": {"type": "yaml"}}, "response_format", id="format-type"),
        pytest.param({"functions": []}, "functions", id="unknown-field"),
        pytest.param({"logit_bias": {"x": 1}}, "logit_bias", id="logit-bias-key"),
    ],
)
def test_what_the_local_model_cannot_do_is_refused_by_name(
    fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        LocalModel.check_request_fields(fields)
    assert caught.value.param == param, caught.value


def test_images_are_refused_with_the_part_named() -> None:
    messages: Any = [
        {"role": "user", "content": "hi"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]
    with pytest.raises(InvalidRequestError) as caught:
        LocalModel._prepare("", messages, {})
    assert caught.value.param == "messages[1].content[1]"


def test_fields_that_change_nothing_are_accepted() -> None:
    LocalModel.check_request_fields(
        {
            "user": "u",
            "metadata": {"a": "b"},
            "store": False,
            "service_tier": "auto",
            "prompt_cache_key": "session-1",
            "prompt_cache_retention": "24h",
            "safety_identifier": "u-1",
            "stream": True,
            "stream_options": {"include_usage": True},
            "n": 1,
            "logprobs": False,
            "parallel_tool_calls": False,
            "tools": [WEATHER_TOOL],
            "tool_choice": "none",
            "response_format": {"type": "text"},
        }
    )


async def finished(engine: Engine, previous: Job | None) -> Job:
    await wait_until(lambda: engine.last_job not in (None, previous), 5)
    job = engine.last_job
    assert job is not None
    await asyncio.to_thread(job.done.wait, 5)
    return job


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"tools": [WEATHER_TOOL], "tool_choice": "required"}, id="tool"),
        pytest.param({"response_format": {"type": "json_object"}}, id="json"),
    ],
)
async def test_leaving_a_structured_answer_stops_it_within_a_token(fields: dict[str, Any]) -> None:
    engine = LocalModel.engine()
    await engine.wait_loaded()
    previous = engine.last_job
    read = 0
    async with asyncio.timeout(30):
        async for chunk in LocalModel.create_async_chunks("", ASK_WEATHER, **fields):
            read += 1 if (chunk.content or chunk.tool_calls) else 0
            if read == 3:
                break
    job = await finished(engine, previous)
    assert job.stop.is_set() and job.finish_reason is None
    assert job.tokens_after_stop <= 1
    assert job.tokens <= 3 + 8


# Determinism -----------------------------------------------------------------------------------


async def test_the_same_question_gets_the_same_answer_whatever_came_before() -> None:
    async def ask(messages: list[dict[str, Any]], engine: Engine | None = None) -> str:
        if engine is None:
            return await LocalModel.create_async("", messages, max_tokens=48)
        _, checked, params, _ = LocalModel._prepare("", messages, {"max_tokens": 48})
        return "".join([piece async for piece in engine.generate(checked, params)])

    fresh = Engine(default_model_path())
    try:
        async with asyncio.timeout(100):
            first = await ask(Q1)
            again = await ask(Q1)  # at once: all but its last token were in the cache
            await ask(Q2)
            after_another = await ask(Q1)
            await LocalModel.create_async(  # another system message, and a grammar
                "", Q2, response_format={"type": "json_object"}, max_tokens=8
            )
            after_a_system_message = await ask(Q1)
            in_a_fresh_engine = await ask(Q1, fresh)
    finally:
        fresh.close()
    assert first.strip()
    assert again == first
    assert after_another == first
    assert after_a_system_message == first
    assert in_a_fresh_engine == first


# Through the gateway, with OpenAI's SDK ---------------------------------------------------------


@pytest.fixture
async def client(local_gateway: LiveGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    url = f"{local_gateway.url}/v1"
    async with openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0) as client:
        yield client


CITY_FORMAT: Any = {
    "type": "json_schema",
    "json_schema": {"name": "city", "schema": CITY_SCHEMA, "strict": True},
}


async def test_gateway_answers_json_valid_against_the_schema_whole(
    client: openai.AsyncOpenAI,
) -> None:
    async with asyncio.timeout(90):
        completion = await client.chat.completions.create(
            model=MODEL, messages=ASK_CITY, response_format=CITY_FORMAT
        )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert_valid(choice.message.content, CITY_SCHEMA)


async def test_gateway_streams_json_valid_against_the_schema(client: openai.AsyncOpenAI) -> None:
    pieces: list[str] = []
    finish = None
    async with asyncio.timeout(90):
        stream = await client.chat.completions.create(
            model=MODEL, messages=ASK_CITY, response_format=CITY_FORMAT, stream=True
        )
        async for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
    assert finish == "stop"
    assert len([piece for piece in pieces if piece]) > 3
    assert_valid("".join(pieces), CITY_SCHEMA)


async def test_gateway_json_object_mode_answers_an_object(client: openai.AsyncOpenAI) -> None:
    async with asyncio.timeout(90):
        completion = await client.chat.completions.create(
            model=MODEL, messages=ASK_WEATHER, response_format={"type": "json_object"}
        )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


async def test_gateway_text_format_is_plain_text(client: openai.AsyncOpenAI) -> None:
    async with asyncio.timeout(60):
        completion = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            response_format={"type": "text"},
            max_tokens=16,
        )
    assert completion.choices[0].message.content


class City(BaseModel):
    city: str
    country: str
    population: int
    landmarks: list[str]


async def test_gateway_serves_the_sdks_parse(client: openai.AsyncOpenAI) -> None:
    async with asyncio.timeout(90):
        completion = await client.chat.completions.parse(
            model=MODEL, messages=ASK_CITY, response_format=City
        )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, City)


async def test_gateway_streams_a_forced_tool_call(client: openai.AsyncOpenAI) -> None:
    deltas: list[Any] = []
    finish = None
    async with asyncio.timeout(90):
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=ASK_WEATHER,
            tools=[WEATHER_TOOL, TIME_TOOL],
            tool_choice=CHOOSE_WEATHER,
            stream=True,
        )
        async for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            assert delta.content is None
            deltas.extend(delta.tool_calls or [])
            finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    first, *rest = deltas
    assert first.id is not None and first.id.startswith("call_")
    assert first.type == "function"
    assert first.function is not None and first.function.name == "get_weather"
    assert len(rest) > 3 and all(d.index == 0 and d.id is None for d in rest)
    arguments = "".join((d.function.arguments or "") for d in deltas if d.function)
    assert_valid(arguments, WEATHER_PARAMETERS)


async def test_gateway_answers_a_forced_tool_call_whole(client: openai.AsyncOpenAI) -> None:
    async with asyncio.timeout(90):
        completion = await client.chat.completions.create(
            model=MODEL, messages=ASK_WEATHER, tools=[WEATHER_TOOL], tool_choice="required"
        )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert_valid(calls[0].function.arguments, WEATHER_PARAMETERS)
    # ...and the round trip: the call and its result go back, a text answer comes out.
    conversation: Any = [
        *ASK_WEATHER,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": calls[0].id, "content": '{"forecast": "rain"}'},
    ]
    async with asyncio.timeout(60):
        follow_up = await client.chat.completions.create(
            model=MODEL,
            messages=conversation,
            tools=[WEATHER_TOOL],
            tool_choice="none",
            max_tokens=32,
        )
    assert follow_up.choices[0].message.content
    assert not follow_up.choices[0].message.tool_calls


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        pytest.param({"tools": [WEATHER_TOOL], "tool_choice": "auto"}, "tool_choice", id="auto"),
        pytest.param({"n": 2}, "n", id="n"),
        pytest.param({"logprobs": True}, "logprobs", id="logprobs"),
    ],
)
async def test_gateway_refuses_what_the_local_model_cannot_do(
    client: openai.AsyncOpenAI, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, **extra)
    assert caught.value.status_code == 400
    assert caught.value.param == param
    assert param in caught.value.message


async def test_gateway_refuses_an_image_naming_the_part(client: openai.AsyncOpenAI) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages: Any = [{"role": "user", "content": [{"type": "text", "text": "What?"}, image]}]
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=MODEL, messages=messages)
    assert caught.value.param == "messages[0].content[1]"
