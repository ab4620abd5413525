"""The Responses body in chat terms (`server/responses/translate.py`, `items.py`): pure, no I/O.

Each case is a body as a client sends it and the chat messages and fields a
provider is asked for -- or the 400 it gets, naming the exact field or item.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from codelinkava.errors import InvalidRequestError
from codelinkava.server.responses.translate import (
    ResponsesTranslation,
    responses_param,
    translate_responses,
)
from codelinkava.server.responses.wire import ResponsesRequest

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}
CALL = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"}


def run(body: dict[str, Any], history: list[dict[str, Any]] | None = None) -> ResponsesTranslation:
    return translate_responses(ResponsesRequest.model_validate(body), history)


def refused(body: dict[str, Any], history: list[dict[str, Any]] | None = None) -> str | None:
    with pytest.raises(InvalidRequestError) as caught:
        run(body, history)
    return caught.value.param


# Input ---------------------------------------------------------------------------------


def test_a_string_input_is_one_user_message_after_the_instructions() -> None:
    out = run({"model": "m", "input": "Hi", "instructions": "Be brief."})
    assert out.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert out.conversation == [{"role": "user", "content": "Hi"}]
    assert out.echo["instructions"] == "Be brief."


def test_message_items_keep_their_roles_and_parts() -> None:
    image = {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"}
    out = run(
        {
            "input": [
                {"role": "developer", "content": "Rules."},
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "a"}],
                },
                {"role": "user", "content": [{"type": "input_text", "text": "see"}, image]},
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [
                        {"type": "output_text", "text": "It ", "annotations": []},
                        {"type": "output_text", "text": "is."},
                    ],
                },
            ]
        }
    )
    assert out.messages == [
        {"role": "system", "content": "Rules."},
        {"role": "user", "content": "a"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "see"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/a.png", "detail": "low"},
                },
            ],
        },
        {"role": "assistant", "content": "It is."},
    ]


def test_function_calls_join_the_assistant_message_and_outputs_become_tool_messages() -> None:
    second = {**CALL, "call_id": "call_2", "arguments": '{"city": "Oslo"}'}
    out = run(
        {
            "input": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": "Checking."},
                CALL,
                second,
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
                {
                    "type": "function_call_output",
                    "call_id": "call_2",
                    "output": [{"type": "input_text", "text": "rain"}],
                },
            ]
        }
    )
    assert out.messages[1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": "{}"},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            },
        ],
    }
    assert out.messages[2:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
    ]


def test_a_call_alone_is_an_assistant_message_without_content() -> None:
    out = run({"input": [{"role": "user", "content": "x"}, CALL]})
    assert out.messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": "{}"},
            }
        ],
    }


def test_the_stored_conversation_comes_first_and_its_calls_may_be_answered() -> None:
    history = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_9", "type": "function", "function": {"name": "w", "arguments": "{}"}}
            ],
        },
    ]
    out = run(
        {
            "instructions": "New rules.",
            "input": [{"type": "function_call_output", "call_id": "call_9", "output": "ok"}],
        },
        history,
    )
    assert out.messages[0] == {"role": "system", "content": "New rules."}
    assert out.messages[1:] == [
        *history,
        {"role": "tool", "tool_call_id": "call_9", "content": "ok"},
    ]
    assert out.conversation == out.messages[1:]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param({"input": []}, "input", id="empty"),
        pytest.param({"input": ["text"]}, "input[0]", id="item-not-an-object"),
        pytest.param({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", id="role"),
        pytest.param({"input": [{"role": "user", "content": 3}]}, "input[0].content", id="content"),
        pytest.param(
            {
                "input": [
                    {"role": "user", "content": "x"},
                    {"type": "function_call_output", "call_id": "nope", "output": "x"},
                ]
            },
            "input[1].call_id",
            id="unmatched-output",
        ),
        pytest.param({"input": [{**CALL, "call_id": 5}]}, "input[0].call_id", id="call-id-type"),
        pytest.param(
            {"input": [{**CALL, "arguments": {"a": 1}}]}, "input[0].arguments", id="arguments"
        ),
        pytest.param(
            {"input": [{"type": "web_search_call", "id": "ws"}]}, "input[0].type", id="builtin-item"
        ),
        pytest.param(
            {"input": [{"type": "reasoning", "id": "rs", "summary": []}]},
            "input[0].type",
            id="reasoning",
        ),
        pytest.param(
            {"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", id="reference"
        ),
        pytest.param(
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "file_id": "file-1", "detail": "auto"}],
                    }
                ]
            },
            "input[0].content[0].file_id",
            id="image-file-id",
        ),
        pytest.param(
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "file:///etc/passwd"}],
                    }
                ]
            },
            "input[0].content[0].image_url",
            id="file-url-image",
        ),
        pytest.param(
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}],
                    }
                ]
            },
            "input[0].content[0].file_url",
            id="file-url",
        ),
        pytest.param(
            {"input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
            "input[0].content[0].type",
            id="output-text-from-user",
        ),
        pytest.param(
            {
                "input": [
                    {
                        "role": "assistant",
                        "content": [{"type": "input_image", "image_url": "https://x"}],
                    }
                ]
            },
            "input[0].content[0].type",
            id="image-from-assistant",
        ),
        pytest.param(
            {
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "x", "cache": 1}]}
                ]
            },
            "input[0].content[0].cache",
            id="unknown-part-key",
        ),
        pytest.param(
            {"input": [{"role": "user", "content": "x", "weight": 2}]},
            "input[0].weight",
            id="unknown-item-key",
        ),
        pytest.param(
            {
                "input": [
                    {"role": "user", "content": "x"},
                    {**CALL, "caller": {"type": "program", "caller_id": "p"}},
                ]
            },
            "input[1].caller",
            id="programmatic-caller",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_item(body: dict[str, Any], param: str) -> None:
    assert refused(body) == param


# Tools, formats, fields ----------------------------------------------------------------


def test_function_tools_and_choices_in_chat_shape() -> None:
    out = run(
        {
            "input": "x",
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": False,
        }
    )
    assert out.fields["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": WEATHER["parameters"],
                "strict": True,
            },
        }
    ]
    assert out.fields["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert out.fields["parallel_tool_calls"] is False
    assert out.echo["tools"] == [WEATHER]
    assert out.echo["parallel_tool_calls"] is False


def test_allowed_tools_choice_in_chat_shape() -> None:
    choice = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "get_weather"}],
    }
    out = run({"input": "x", "tools": [WEATHER], "tool_choice": choice})
    assert out.fields["tool_choice"] == {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        },
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param({"tools": [{"type": "web_search"}]}, "tools[0].type", id="web-search"),
        pytest.param(
            {"tools": [WEATHER, {"type": "file_search", "vector_store_ids": []}]},
            "tools[1].type",
            id="file-search",
        ),
        pytest.param({"tools": [{**WEATHER, "name": 3}]}, "tools[0].name", id="name"),
        pytest.param(
            {"tools": [{**WEATHER, "parameters": []}]}, "tools[0].parameters", id="parameters"
        ),
        pytest.param(
            {"tools": [{**WEATHER, "defer_loading": True}]}, "tools[0].defer_loading", id="defer"
        ),
        pytest.param({"tool_choice": "sometimes"}, "tool_choice", id="choice-word"),
        pytest.param(
            {"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type", id="choice-builtin"
        ),
        pytest.param(
            {"text": {"format": {"type": "json_schema", "schema": {}}}},
            "text.format.name",
            id="schema-name",
        ),
        pytest.param(
            {"text": {"format": {"type": "json_schema", "name": "x"}}},
            "text.format.schema",
            id="schema",
        ),
        pytest.param({"include": ["file_search_call.results"]}, "include[0]", id="include"),
        pytest.param({"truncation": "auto"}, "truncation", id="truncation"),
        pytest.param({"background": True}, "background", id="background"),
        pytest.param(
            {"reasoning": {"summary": "auto"}}, "reasoning.summary", id="reasoning-summary"
        ),
        pytest.param({"conversation": "conv_1"}, "conversation", id="conversation"),
        pytest.param({"prompt": {"id": "pmpt_1"}}, "prompt", id="prompt"),
        pytest.param({"messages": []}, "messages", id="chat-messages"),
        pytest.param({"max_tokens": 5}, "max_tokens", id="chat-max-tokens"),
        pytest.param(
            {"response_format": {"type": "json_object"}}, "response_format", id="chat-format"
        ),
        pytest.param({"n": 2}, "n", id="n"),
        pytest.param(
            {"stream_options": {"include_obfuscation": True}},
            "stream_options.include_obfuscation",
            id="obfuscation",
        ),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(body: dict[str, Any], param: str) -> None:
    assert refused({"input": "x", **body}) == param


def test_every_field_is_translated_or_forwarded() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    out = run(
        {
            "model": "m",
            "input": "x",
            "stream": True,
            "max_output_tokens": 50,
            "temperature": 0.3,
            "top_p": 0.9,
            "user": "u1",
            "service_tier": "flex",
            "safety_identifier": "s",
            "prompt_cache_key": "k",
            "metadata": {"run": "7"},
            "text": {
                "format": {"type": "json_schema", "name": "A", "schema": schema, "strict": True},
                "verbosity": "low",
            },
            "reasoning": {"effort": "low"},
            "include": ["message.output_text.logprobs", "reasoning.encrypted_content"],
            "top_logprobs": 3,
            "seed": 7,
            "store": False,
            "client_metadata": {"session_id": "s-1"},
        }
    )
    assert out.fields == {
        "max_tokens": 50,
        "temperature": 0.3,
        "top_p": 0.9,
        "user": "u1",
        "service_tier": "flex",
        "safety_identifier": "s",
        "prompt_cache_key": "k",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "A", "schema": schema, "strict": True},
        },
        "verbosity": "low",
        "reasoning_effort": "low",
        "logprobs": True,
        "top_logprobs": 3,
        "stream_options": {"include_usage": True},
        "seed": 7,  # not a Responses field: forwarded as sent
    }
    assert "metadata" not in out.fields and "store" not in out.fields  # the gateway's own
    assert "client_metadata" not in out.fields  # about the client (Codex), not the answer
    assert out.echo["metadata"] == {"run": "7"}
    assert out.echo["store"] is False
    assert out.echo["text"] == {
        "format": {"type": "json_schema", "name": "A", "schema": schema, "strict": True},
        "verbosity": "low",
    }
    assert out.echo["reasoning"] == {"effort": "low", "summary": None}


def test_json_object_and_text_formats() -> None:
    assert run({"input": "x", "text": {"format": {"type": "json_object"}}}).fields == {
        "response_format": {"type": "json_object"}
    }
    assert run({"input": "x", "text": {"format": {"type": "text"}}}).fields == {}


def test_the_defaults_echoed_as_openai_does() -> None:
    echo = run({"input": "x"}).echo
    assert echo["store"] is True and echo["tool_choice"] == "auto" and echo["tools"] == []
    assert echo["truncation"] == "disabled" and echo["parallel_tool_calls"] is True
    assert echo["text"] == {"format": {"type": "text"}}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"temperature": 3}, id="temperature"),
        pytest.param({"max_output_tokens": 0}, id="max-output-tokens"),
        pytest.param({"text": {"format": {"type": "xml"}}}, id="format-type"),
        pytest.param({"text": {"format": {"type": "text"}, "colour": "red"}}, id="text-key"),
        pytest.param({"metadata": {str(n): "v" for n in range(17)}}, id="metadata-pairs"),
        pytest.param({"reasoning": {"effort": "extreme"}}, id="effort"),
    ],
)
def test_the_wire_model_refuses_nonsense(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ResponsesRequest.model_validate({"input": "x", **body})


@pytest.mark.parametrize(
    ("chat", "responses"),
    [
        ("response_format", "text.format"),
        ("max_tokens", "max_output_tokens"),
        ("reasoning_effort", "reasoning.effort"),
        ("verbosity", "text.verbosity"),
        ("logprobs", "include"),
        ("messages[3].content", "input"),
        ("tools[2].function", "tools[2]"),
        ("tools[0].type", "tools[0].type"),
        ("tool_choice", "tool_choice"),
        (None, None),
    ],
)
def test_a_providers_field_names_map_back_to_the_callers(
    chat: str | None, responses: str | None
) -> None:
    assert responses_param(chat) == responses
