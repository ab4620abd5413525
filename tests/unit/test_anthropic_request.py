"""OpenAI-shaped messages and fields -> Anthropic's Messages body: every case, every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from codelinkava.errors import InvalidRequestError
from codelinkava.providers._anthropic_request import (
    DEFAULT_MAX_TOKENS,
    messages_body,
    translate_fields,
    translate_messages,
)

USER = {"role": "user", "content": "Hi"}
CACHE = {"type": "ephemeral"}
CALL = {
    "id": "toolu_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
PNG = "data:image/png;base64,iVBORw0KGgo="


def body(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return messages_body("claude-x", messages, fields)[0]


# messages --------------------------------------------------------------------------------

MESSAGE_CASES = [
    pytest.param(
        [{"role": "system", "content": "Be brief."}, USER],
        "Be brief.",
        [USER],
        id="system-string",
    ),
    pytest.param(
        [
            {"role": "system", "content": "One."},
            {"role": "developer", "content": [{"type": "text", "text": "Two."}]},
            USER,
        ],
        "One.\n\nTwo.",
        [USER],
        id="system-and-developer-joined",
    ),
    pytest.param(
        [
            {
                "role": "system",
                "content": [{"type": "text", "text": "Long rules", "cache_control": CACHE}],
            },
            USER,
        ],
        [{"type": "text", "text": "Long rules", "cache_control": CACHE}],
        [USER],
        id="system-blocks-keep-cache-control",
    ),
    pytest.param(
        [
            USER,
            {
                "role": "user",
                "content": [{"type": "text", "text": "again", "cache_control": CACHE}],
            },
        ],
        None,
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Hi"},
                    {"type": "text", "text": "again", "cache_control": CACHE},
                ],
            }
        ],
        id="same-role-merged",
    ),
    pytest.param(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}},
                    {"type": "image_url", "image_url": {"url": PNG, "detail": "auto"}},
                ],
            }
        ],
        None,
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}},
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": "iVBORw0KGgo=",
                        },
                    },
                ],
            }
        ],
        id="images",
    ),
    pytest.param(
        [
            USER,
            {"role": "assistant", "content": "Let me look.", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C", "name": "get_weather"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "boom", "is_error": True},
            {"role": "user", "content": "And tomorrow?"},
        ],
        None,
        [
            USER,
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": "boom",
                        "is_error": True,
                    },
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
        ],
        id="tool-round-trip",
    ),
    pytest.param(
        [
            USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{**CALL, "function": {"name": "now", "arguments": ""}}],
                "refusal": None,
                "audio": None,
            },
        ],
        None,
        [
            USER,
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}],
            },
        ],
        id="tool-call-without-content-or-arguments",
    ),
    pytest.param(
        [USER, {"role": "assistant", "content": "Hello."}],
        None,
        [USER, {"role": "assistant", "content": "Hello."}],
        id="assistant-text-stays-a-string",
    ),
    pytest.param(
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/gif", "data": "R0l"},
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "d"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}],
            },
        ],
        None,
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/gif", "data": "R0l"},
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "d"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}],
            },
        ],
        id="native-blocks-as-sent",
    ),
    pytest.param(
        [{"role": "user", "content": "Long document", "cache_control": CACHE}],
        None,
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Long document", "cache_control": CACHE}],
            }
        ],
        id="message-cache-control-on-its-last-block",
    ),
    pytest.param(
        [
            USER,
            {"role": "tool", "tool_call_id": "t", "content": [{"type": "text", "text": "rows: 3"}]},
        ],
        None,
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Hi"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [{"type": "text", "text": "rows: 3"}],
                    },
                ],
            }
        ],
        id="tool-result-parts",
    ),
]


@pytest.mark.parametrize(("messages", "system", "turns"), MESSAGE_CASES)
def test_messages_translate(messages: list[dict[str, Any]], system: Any, turns: Any) -> None:
    assert translate_messages(messages) == (system, turns)


MESSAGE_ERRORS = [
    pytest.param(
        [
            USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{oops"}}],
            },
        ],
        "messages[1].tool_calls[0].function.arguments",
        id="arguments-not-json",
    ),
    pytest.param(
        [
            USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "[1]"}}],
            },
        ],
        "messages[1].tool_calls[0].function.arguments",
        id="arguments-not-object",
    ),
    pytest.param(
        [USER, {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}],
        "messages[1].tool_calls[0].id",
        id="call-without-id",
    ),
    pytest.param(
        [USER, {"role": "assistant", "tool_calls": [{"id": "x", "function": {}}]}],
        "messages[1].tool_calls[0].function.name",
        id="call-without-name",
    ),
    pytest.param(
        [USER, {"role": "tool", "content": "18C"}], "messages[1].tool_call_id", id="tool-without-id"
    ),
    pytest.param(
        [USER, {"role": "tool", "tool_call_id": "t", "content": "x", "is_error": "yes"}],
        "messages[1].is_error",
        id="is-error-not-bool",
    ),
    pytest.param(
        [USER, {"role": "assistant", "content": None}], "messages[1].content", id="empty-assistant"
    ),
    pytest.param([{"role": "user", "content": "Hi", "name": "ann"}], "messages[0].name", id="name"),
    pytest.param([{"role": "function", "content": "x"}], "messages[0].role", id="function-role"),
    pytest.param(
        [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
        "messages[0].content[0].type",
        id="audio",
    ),
    pytest.param(
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}],
            }
        ],
        "messages[0].content[0].image_url.url",
        id="file-url",
    ),
    pytest.param(
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}],
            }
        ],
        "messages[0].content[0].image_url.url",
        id="data-url-not-base64",
    ),
    pytest.param(
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": PNG, "detail": "low"}}],
            }
        ],
        "messages[0].content[0].image_url.detail",
        id="image-detail",
    ),
    pytest.param(
        [{"role": "user", "content": [{"type": "text", "text": 3}]}],
        "messages[0].content[0].text",
        id="text-not-string",
    ),
    pytest.param(
        [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}, USER],
        "messages[0].content[0].type",
        id="image-in-system",
    ),
    pytest.param([{"role": "system", "content": "only rules"}], "messages", id="only-system"),
]


@pytest.mark.parametrize(("messages", "param"), MESSAGE_ERRORS)
def test_untranslatable_messages_are_refused_by_name(
    messages: list[dict[str, Any]], param: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        translate_messages(messages)
    assert info.value.param == param
    assert param in str(info.value)


# fields ----------------------------------------------------------------------------------

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ANTHROPIC_TOOL = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}

FIELD_CASES = [
    pytest.param({}, {"stream": True}, id="nothing"),
    pytest.param({"stream": False}, {"stream": False}, id="whole"),
    pytest.param({"max_tokens": 50}, {"stream": True, "max_tokens": 50}, id="max-tokens"),
    pytest.param(
        {"max_tokens": 50, "max_completion_tokens": 70},
        {"stream": True, "max_tokens": 70},
        id="max-completion-tokens-wins",
    ),
    pytest.param({"stop": "END"}, {"stream": True, "stop_sequences": ["END"]}, id="stop-string"),
    pytest.param({"stop": ["a", "b"]}, {"stream": True, "stop_sequences": ["a", "b"]}, id="stops"),
    pytest.param(
        {"stop_sequences": ["x"]}, {"stream": True, "stop_sequences": ["x"]}, id="native-stops"
    ),
    pytest.param(
        {"temperature": 0.2, "top_p": 0.9, "top_k": 40},
        {"stream": True, "temperature": 0.2, "top_p": 0.9, "top_k": 40},
        id="sampling",
    ),
    pytest.param({"tools": [TOOL]}, {"stream": True, "tools": [ANTHROPIC_TOOL]}, id="tools"),
    pytest.param(
        {"tools": [{**TOOL, "cache_control": CACHE}]},
        {"stream": True, "tools": [{**ANTHROPIC_TOOL, "cache_control": CACHE}]},
        id="tool-cache-control",
    ),
    pytest.param(
        {"tools": [{"type": "function", "function": {"name": "now"}}]},
        {
            "stream": True,
            "tools": [{"name": "now", "input_schema": {"type": "object", "properties": {}}}],
        },
        id="tool-without-parameters",
    ),
    pytest.param(
        {"tools": [ANTHROPIC_TOOL, {"type": "web_search_20250305", "name": "web_search"}]},
        {
            "stream": True,
            "tools": [ANTHROPIC_TOOL, {"type": "web_search_20250305", "name": "web_search"}],
        },
        id="native-tools-as-sent",
    ),
    pytest.param(
        {"tool_choice": "auto"}, {"stream": True, "tool_choice": {"type": "auto"}}, id="auto"
    ),
    pytest.param(
        {"tool_choice": "none"}, {"stream": True, "tool_choice": {"type": "none"}}, id="none"
    ),
    pytest.param(
        {"tool_choice": "required"}, {"stream": True, "tool_choice": {"type": "any"}}, id="required"
    ),
    pytest.param(
        {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        {"stream": True, "tool_choice": {"type": "tool", "name": "get_weather"}},
        id="named",
    ),
    pytest.param(
        {"tool_choice": {"type": "any"}},
        {"stream": True, "tool_choice": {"type": "any"}},
        id="native-choice",
    ),
    pytest.param(
        {"parallel_tool_calls": False},
        {"stream": True, "tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
        id="no-parallel",
    ),
    pytest.param(
        {"parallel_tool_calls": False, "tool_choice": "required"},
        {"stream": True, "tool_choice": {"type": "any", "disable_parallel_tool_use": True}},
        id="no-parallel-required",
    ),
    pytest.param({"parallel_tool_calls": True}, {"stream": True}, id="parallel-is-the-default"),
    pytest.param({"user": "u-1"}, {"stream": True, "metadata": {"user_id": "u-1"}}, id="user"),
    pytest.param(
        {"metadata": {"user_id": "u-2"}},
        {"stream": True, "metadata": {"user_id": "u-2"}},
        id="metadata",
    ),
    pytest.param(
        {"thinking": {"type": "enabled", "budget_tokens": 2048}, "service_tier": "auto"},
        {
            "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "service_tier": "auto",
        },
        id="native-as-sent",
    ),
    pytest.param(
        {
            "output_config": {"effort": "high"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
            "speed": "fast",
        },
        {
            "stream": True,
            "output_config": {"effort": "high"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
            "speed": "fast",
        },
        id="claude-code-fields-as-sent",
    ),
    pytest.param(
        {"n": 1, "store": False, "logprobs": False, "response_format": {"type": "text"}},
        {"stream": True},
        id="off-values-say-nothing",
    ),
    pytest.param(
        {"stream_options": {"include_usage": True}}, {"stream": True}, id="usage-is-always-there"
    ),
]


@pytest.mark.parametrize(("fields", "expected"), FIELD_CASES)
def test_fields_translate(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    assert translate_fields(fields) == (expected, [])


FIELD_ERRORS = [
    pytest.param({"seed": 1}, "seed", id="seed"),
    pytest.param({"presence_penalty": 0.5}, "presence_penalty", id="presence"),
    pytest.param({"frequency_penalty": 0.5}, "frequency_penalty", id="frequency"),
    pytest.param({"logit_bias": {"1": 2}}, "logit_bias", id="logit-bias"),
    pytest.param({"reasoning_effort": "high"}, "reasoning_effort", id="reasoning-effort"),
    pytest.param({"n": 2}, "n", id="n"),
    pytest.param({"store": True}, "store", id="store"),
    pytest.param({"logprobs": True}, "logprobs", id="logprobs"),
    pytest.param({"top_logprobs": 2}, "top_logprobs", id="top-logprobs"),
    pytest.param(
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
        "response_format",
        id="json-schema",
    ),
    pytest.param({"response_format": {"type": "json_object"}}, "response_format", id="json-object"),
    pytest.param({"max_tokens": 0}, "max_tokens", id="max-tokens-zero"),
    pytest.param({"max_completion_tokens": "9"}, "max_completion_tokens", id="max-tokens-string"),
    pytest.param({"temperature": 1.5}, "temperature", id="temperature-above-one"),
    pytest.param({"top_p": True}, "top_p", id="top-p-bool"),
    pytest.param({"top_k": -1}, "top_k", id="top-k"),
    pytest.param({"stop": 5}, "stop", id="stop"),
    pytest.param({"stop": "a", "stop_sequences": ["b"]}, "stop_sequences", id="both-stops"),
    pytest.param({"tools": {"a": 1}}, "tools", id="tools-not-list"),
    pytest.param(
        {"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name", id="tool-name"
    ),
    pytest.param(
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
        "tools[0].function.parameters",
        id="tool-schema",
    ),
    pytest.param({"tools": [{"type": "code"}]}, "tools[0]", id="tool-neither"),
    pytest.param({"tool_choice": "always"}, "tool_choice", id="choice-word"),
    pytest.param({"tool_choice": {"type": "function"}}, "tool_choice", id="choice-no-name"),
    pytest.param({"parallel_tool_calls": "no"}, "parallel_tool_calls", id="parallel"),
    pytest.param({"metadata": ["x"]}, "metadata", id="metadata"),
    pytest.param({"user": 5}, "user", id="user"),
    pytest.param({"stream": "yes"}, "stream", id="stream"),
    pytest.param({"stream_options": "usage"}, "stream_options", id="stream-options"),
    pytest.param({"anthropic_beta": 5}, "anthropic_beta", id="beta"),
]


@pytest.mark.parametrize(("fields", "param"), FIELD_ERRORS)
def test_fields_it_cannot_honour_are_refused_by_name(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        translate_fields(fields)
    assert info.value.param == param
    assert param in str(info.value)


def test_anthropic_beta_becomes_the_header_values_not_a_body_field() -> None:
    assert translate_fields({"anthropic_beta": "a-1, b-2"}) == ({"stream": True}, ["a-1", "b-2"])
    assert translate_fields({"anthropic_beta": ["c-3"]})[1] == ["c-3"]


def test_the_body_has_the_required_max_tokens_and_its_parts_in_order() -> None:
    got, betas = messages_body(
        "claude-x",
        [{"role": "system", "content": "Be brief."}, USER],
        {"temperature": 0.5, "stream": False},
    )
    assert got == {
        "model": "claude-x",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "system": "Be brief.",
        "messages": [USER],
        "stream": False,
        "temperature": 0.5,
    }
    assert list(got) == ["model", "max_tokens", "system", "messages", "stream", "temperature"]
    assert betas == []
    assert body([USER], max_tokens=10)["max_tokens"] == 10


CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    USER,
    {"role": "system", "content": "Agents: none."},
    {"role": "assistant", "content": "Hello."},
    {"role": "system", "content": [{"type": "text", "text": "Tools", "cache_control": CACHE}]},
    {"role": "user", "content": "Go on"},
]


def test_system_turns_stay_in_place_under_the_mid_conversation_system_beta() -> None:
    """What a Messages caller (Claude Code) sent, with the beta that allows it."""
    got, betas = messages_body(
        "claude-x", CONVERSATION, {"anthropic_beta": ["mid-conversation-system-2026-04-07"]}
    )
    assert got["system"] == "Be brief."
    assert got["messages"] == [
        USER,
        {"role": "system", "content": "Agents: none."},
        {"role": "assistant", "content": "Hello."},
        {"role": "system", "content": [{"type": "text", "text": "Tools", "cache_control": CACHE}]},
        {"role": "user", "content": "Go on"},
    ]
    assert betas == ["mid-conversation-system-2026-04-07"]


def test_without_the_beta_system_messages_join_the_system_prompt() -> None:
    got = body(CONVERSATION)
    assert [turn["role"] for turn in got["messages"]] == ["user", "assistant", "user"]
    assert [block["text"] for block in got["system"]] == ["Be brief.", "Agents: none.", "Tools"]
