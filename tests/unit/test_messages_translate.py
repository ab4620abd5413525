"""The Messages translator: Anthropic's body -> OpenAI chat messages and fields, pure.

Each mapping the route promises, each refusal named by its path, and what an
upstream that speaks Messages itself gets as sent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from codelinkava.errors import InvalidRequestError
from codelinkava.server.messages import MessagesRequest, translate
from codelinkava.server.messages.wire import CountTokensRequest

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CALL = {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}


def body(**fields: Any) -> MessagesRequest:
    fields.setdefault("model", "m")
    fields.setdefault("max_tokens", 16)
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return MessagesRequest.model_validate(fields)


def refused(native: bool = False, **fields: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        translate(body(**fields), native=native)
    return caught.value


def tool_round(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me look."}, CALL]},
        {"role": "user", "content": [result, {"type": "text", "text": "thanks"}]},
    ]


# What maps -------------------------------------------------------------------------------


def test_a_plain_request_maps_field_by_field() -> None:
    out = translate(
        body(
            system="Be brief.",
            temperature=0.2,
            top_p=0.9,
            top_k=40,
            stop_sequences=["END"],
            metadata={"user_id": "u-1"},
        ),
        native=False,
    )
    assert out.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert out.fields == {
        "max_tokens": 16,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "stop": ["END"],
        "user": "u-1",
    }


def test_system_blocks_are_joined_by_a_blank_line() -> None:
    system = [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]
    out = translate(body(system=system), native=False)
    assert out.messages[0] == {"role": "system", "content": "One.\n\nTwo."}


def test_one_text_block_is_a_string_several_are_parts() -> None:
    one = [{"role": "user", "content": [{"type": "text", "text": "a"}]}]
    two = [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]
    assert translate(body(messages=one), native=False).messages == [
        {"role": "user", "content": "a"}
    ]
    assert translate(body(messages=two), native=False).messages[0]["content"] == [
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b"},
    ]


@pytest.mark.parametrize(
    ("source", "url"),
    [
        pytest.param(
            {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
            "data:image/png;base64,iVBORw0K",
            id="base64",
        ),
        pytest.param(
            {"type": "url", "url": "https://example.com/a.png"},
            "https://example.com/a.png",
            id="url",
        ),
    ],
)
def test_images_become_image_url_parts(source: dict[str, Any], url: str) -> None:
    content = [{"type": "image", "source": source}, {"type": "text", "text": "what is it?"}]
    out = translate(body(messages=[{"role": "user", "content": content}]), native=False)
    assert out.messages[0]["content"] == [
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "text", "text": "what is it?"},
    ]


def test_tool_use_and_tool_result_become_tool_calls_and_tool_messages() -> None:
    result = {"type": "tool_result", "tool_use_id": "toolu_01", "content": "Sunny"}
    out = translate(body(messages=tool_round(result), tools=[WEATHER_TOOL]), native=False)
    assert out.messages[1] == {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {
                "id": "toolu_01",
                "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
            }
        ],
    }
    # the result first (right after its call, as OpenAI wants), then the turn's text
    assert out.messages[2:] == [
        {"role": "tool", "tool_call_id": "toolu_01", "content": "Sunny"},
        {"role": "user", "content": "thanks"},
    ]
    assert out.fields["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER_TOOL["input_schema"],
                "description": "The weather in a city.",
            },
        }
    ]


def test_a_tool_result_of_text_blocks_and_an_error() -> None:
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_01",
        "content": [{"type": "text", "text": "city"}, {"type": "text", "text": "not found"}],
        "is_error": True,
    }
    out = translate(body(messages=tool_round(result)), native=False)
    assert out.messages[2] == {
        "role": "tool",
        "tool_call_id": "toolu_01",
        "content": "Error: city\nnot found",
    }
    kept = translate(body(messages=tool_round(result)), native=True).messages[2]
    assert kept["is_error"] is True and kept["content"] == "city\nnot found"


@pytest.mark.parametrize(
    ("choice", "fields"),
    [
        pytest.param({"type": "auto"}, {"tool_choice": "auto"}, id="auto"),
        pytest.param({"type": "any"}, {"tool_choice": "required"}, id="any"),
        pytest.param({"type": "none"}, {"tool_choice": "none"}, id="none"),
        pytest.param(
            {"type": "tool", "name": "get_weather"},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            id="tool",
        ),
        pytest.param(
            {"type": "any", "disable_parallel_tool_use": True},
            {"tool_choice": "required", "parallel_tool_calls": False},
            id="one-call",
        ),
    ],
)
def test_tool_choice(choice: dict[str, Any], fields: dict[str, Any]) -> None:
    out = translate(body(tools=[WEATHER_TOOL], tool_choice=choice), native=False)
    assert {k: out.fields[k] for k in fields} == fields
    assert ("parallel_tool_calls" in out.fields) == ("parallel_tool_calls" in fields)


def test_an_empty_final_assistant_turn_asks_for_nothing() -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]
    assert translate(body(messages=messages), native=False).messages == [
        {"role": "user", "content": "hi"}
    ]


def test_a_system_turn_in_the_conversation_is_a_system_message_at_its_place() -> None:
    """Anthropic's mid-conversation system messages (Claude Code sends one after the prompt)."""
    blocks = [{"type": "text", "text": "Tools: Bash."}, {"type": "text", "text": "Be careful."}]
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Agents: none."},
        {"role": "assistant", "content": "Hello."},
        {"role": "system", "content": blocks},
        {"role": "user", "content": "go on"},
    ]
    out = translate(body(system="Be brief.", messages=messages), native=False)
    assert out.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Agents: none."},
        {"role": "assistant", "content": "Hello."},
        {"role": "system", "content": "Tools: Bash.\n\nBe careful."},
        {"role": "user", "content": "go on"},
    ]
    # a Messages upstream gets the blocks as sent, at the same place
    kept = translate(body(messages=messages), native=True).messages
    assert kept[1] == {"role": "system", "content": "Agents: none."}
    assert kept[3] == {"role": "system", "content": blocks}


def test_a_system_turn_between_a_tool_call_and_its_result_follows_the_result() -> None:
    result = {"type": "tool_result", "tool_use_id": "toolu_01", "content": "Sunny"}
    rounds = tool_round(result)
    messages = [*rounds[:2], {"role": "system", "content": "Reminder."}, rounds[2]]
    out = translate(body(messages=messages), native=False).messages
    # OpenAI wants the results right after the call: the note follows them
    assert [m["role"] for m in out] == ["user", "assistant", "tool", "system", "user"]
    assert out[3] == {"role": "system", "content": "Reminder."}
    kept = translate(body(messages=messages), native=True).messages
    assert [m["role"] for m in kept] == ["user", "assistant", "system", "tool", "user"]
    last = translate(body(messages=messages[:3]), native=False).messages
    assert [m["role"] for m in last] == ["user", "assistant", "system"]


def test_no_tools_is_no_tools_field_for_openai_and_as_sent_for_messages() -> None:
    """`tools: []` (Claude Code with `--tools ""`): OpenAI refuses an empty list."""
    assert "tools" not in translate(body(tools=[]), native=False).fields
    auto = body(tools=[], tool_choice={"type": "auto"})
    assert "tools" not in translate(auto, native=False).fields
    assert translate(body(tools=[]), native=True).fields["tools"] == []


def test_count_tokens_bodies_translate_without_sampling_fields() -> None:
    counted = CountTokensRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER_TOOL]}
    )
    out = translate(counted, native=False)
    assert set(out.fields) == {"tools"}


# What is refused, by path ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        pytest.param(
            {"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking", id="thinking"
        ),
        pytest.param({"service_tier": "auto"}, "service_tier", id="service-tier"),
        pytest.param({"frobnicate": 1}, "frobnicate", id="unknown-field"),
        pytest.param(
            {"metadata": {"user_id": "u", "team": "x"}}, "metadata.team", id="metadata-key"
        ),
        pytest.param(
            {"system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}]},
            "system.0.cache_control",
            id="system-cache-control",
        ),
        pytest.param(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}
                        ],
                    }
                ]
            },
            "messages.0.content.0.cache_control",
            id="block-cache-control",
        ),
        pytest.param(
            {"tools": [{**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}}]},
            "tools.0.cache_control",
            id="tool-cache-control",
        ),
        pytest.param(
            {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "tools.0.type",
            id="server-tool",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "messages.0.content.0.type",
            id="document-block",
        ),
        pytest.param(
            {"messages": [{"role": "assistant", "content": "hi"}]},
            "messages.0.role",
            id="first-role",
        ),
        pytest.param(
            {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]},
            "messages.0.role",
            id="system-turn-first",
        ),
        pytest.param(
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "system",
                        "content": [
                            {"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}
                        ],
                    },
                ]
            },
            "messages.1.content.0.cache_control",
            id="system-turn-cache-control",
        ),
        pytest.param(
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "system", "content": [{"type": "image", "source": {}}]},
                ]
            },
            "messages.1.content.0.type",
            id="system-turn-image",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": ""}]},
            "messages.1.content",
            id="empty-system-turn",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": ""}]}, "messages.0.content", id="empty-turn"
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": [{"text": "no type"}]}]},
            "messages.0.content.0.type",
            id="untyped-block",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t"}]}]},
            "messages.0.content.0.type",
            id="tool-use-from-the-user",
        ),
        pytest.param(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "url", "url": "file:///etc/passwd"},
                            }
                        ],
                    }
                ]
            },
            "messages.0.content.0.source.url",
            id="file-url",
        ),
        pytest.param(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "text/html",
                                    "data": "x",
                                },
                            }
                        ],
                    }
                ]
            },
            "messages.0.content.0.source.media_type",
            id="image-media-type",
        ),
        pytest.param(
            {"tool_choice": {"type": "sometimes"}}, "tool_choice.type", id="tool-choice-type"
        ),
        pytest.param(
            {"tool_choice": {"type": "any"}}, "tool_choice", id="tool-choice-without-tools"
        ),
        pytest.param({"tools": [{"name": "f"}]}, "tools.0.input_schema", id="tool-without-schema"),
    ],
)
def test_what_cannot_be_sent_on_is_refused_by_path(fields: dict[str, Any], param: str) -> None:
    error = refused(**fields)
    assert error.param == param, (error.param, str(error))


def test_a_tool_result_without_its_tool_use_is_refused_by_path() -> None:
    result = {"type": "tool_result", "tool_use_id": "toolu_other", "content": "x"}
    error = refused(messages=tool_round(result))
    assert error.param == "messages.2.content.0.tool_use_id"
    assert "toolu_other" in str(error)


def test_a_tool_result_must_answer_the_turn_just_before() -> None:
    result = {"type": "tool_result", "tool_use_id": "toolu_01", "content": "x"}
    messages = [*tool_round(result)[:2], {"role": "user", "content": "wait"}, tool_round(result)[2]]
    assert refused(messages=messages).param == "messages.3.content.0.tool_use_id"


def test_tool_results_carry_text_only_to_an_upstream_that_does_not_speak_messages() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    result = {"type": "tool_result", "tool_use_id": "toolu_01", "content": [image]}
    assert refused(messages=tool_round(result)).param == "messages.2.content.0.content.0.type"


# An upstream that speaks Messages gets Anthropic's own fields and blocks -------------------------


def test_a_native_upstream_gets_anthropic_fields_blocks_and_betas_as_sent() -> None:
    thinking = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    cached = {"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}
    server_tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    request = body(
        system=[cached],
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[server_tool, {**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": [cached]},
            {"role": "assistant", "content": [thinking, CALL]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "ok"}],
            },
        ],
    )
    out = translate(request, native=True, betas=["interleaved-thinking-2025-05-14"])
    assert out.fields["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert out.fields["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]
    assert out.fields["tools"][0] == server_tool
    assert out.fields["tools"][1]["cache_control"] == {"type": "ephemeral"}
    assert out.messages[0] == {"role": "system", "content": [cached]}
    assert out.messages[1] == {"role": "user", "content": [cached]}
    assert out.messages[2]["content"] == [thinking]
    assert out.messages[2]["tool_calls"][0]["id"] == "toolu_01"


def test_betas_reach_no_other_upstream() -> None:
    out = translate(body(), native=False, betas=["fine-grained-tool-streaming-2025-05-14"])
    assert "anthropic_beta" not in out.fields
