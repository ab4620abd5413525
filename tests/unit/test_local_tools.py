"""The local model's request planning (`providers/_local_tools.py`): what it honours, what it
refuses and with which `param`, and how a conversation with tool calls becomes plain text.

Grammars are built with llama-cpp-python's converter (pure Python); no model is loaded.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from codelinkava.errors import InvalidRequestError
from codelinkava.providers._local_tools import (
    MAX_STRING_CHARS,
    AnswerPlan,
    plan_request,
    render_messages,
    schema_grammar,
    with_instruction,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "the weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CLOCK = {"type": "function", "function": {"name": "clock"}}


def refused(fields: dict[str, Any]) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        plan_request(fields)
    return caught.value


# Plain text --------------------------------------------------------------------------


def test_no_extra_fields_is_a_text_plan() -> None:
    assert plan_request({}) == AnswerPlan()
    assert plan_request({}).mode == "text"
    assert plan_request({"n": 1, "logprobs": False, "top_logprobs": 0}) == AnswerPlan()


def test_response_format_text_is_a_text_plan() -> None:
    assert plan_request({"response_format": {"type": "text"}}) == AnswerPlan()


def test_tool_choice_none_with_tools_is_a_text_plan() -> None:
    assert plan_request({"tools": [WEATHER], "tool_choice": "none"}) == AnswerPlan()


@pytest.mark.parametrize("choice", [None, "none", "auto"])
def test_empty_tools_with_a_non_forcing_choice_is_text(choice: Any) -> None:
    assert plan_request({"tools": [], "tool_choice": choice}) == AnswerPlan()


# Single answers only ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"n": 0}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logit_bias": [1, 2]}, "logit_bias"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"logit_bias": {"12": True}}, "logit_bias"),
        ({"logit_bias": {"12": "1"}}, "logit_bias"),
        ({"logit_bias": {"12": 101}}, "logit_bias"),
        ({"logit_bias": {"12": -100.5}}, "logit_bias"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ],
)
def test_refusals_name_the_field(fields: dict[str, Any], param: str) -> None:
    assert refused(fields).param == param


def test_logit_bias_within_range_is_accepted() -> None:
    assert plan_request({"logit_bias": {"12": 100, 7: -100, "3": 0.5}}) == AnswerPlan()
    assert plan_request({"parallel_tool_calls": False}) == AnswerPlan()


def test_n_is_checked_before_anything_else() -> None:
    error = refused({"n": 3, "logprobs": True, "response_format": {"type": "bogus"}})
    assert error.param == "n"
    assert "n must be 1" in str(error)


# response_format ---------------------------------------------------------------------


def test_json_object_is_a_json_plan_under_a_grammar() -> None:
    plan = plan_request({"response_format": {"type": "json_object"}})
    assert plan.mode == "json"
    assert plan.field == "response_format"
    assert plan.instruction == "Reply with a JSON object."
    assert plan.grammar is not None and "root ::=" in plan.grammar
    assert plan.tool_name is None


def test_json_schema_plan_quotes_the_schema_compactly() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    plan = plan_request(
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}
    )
    assert plan.mode == "json"
    assert plan.field == "response_format.json_schema.schema"
    assert plan.instruction == (
        'Reply with JSON that matches this JSON schema:\n{"type":"object",'
        '"properties":{"a":{"type":"integer"}},"required":["a"]}'
    )
    assert plan.grammar is not None


def test_json_schema_without_schema_means_any_object() -> None:
    plan = plan_request({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}})
    assert plan.mode == "json"
    assert plan.instruction == 'Reply with JSON that matches this JSON schema:\n{"type":"object"}'


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        ({"type": "yaml"}, "response_format"),
        ({}, "response_format"),
        ("json_object", "response_format"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        ({"type": "json_schema", "json_schema": "x"}, "response_format.json_schema"),
        (
            {"type": "json_schema", "json_schema": {"schema": [1]}},
            "response_format.json_schema.schema",
        ),
    ],
)
def test_bad_response_formats_are_refused(response_format: Any, param: str) -> None:
    assert refused({"response_format": response_format}).param == param


def test_response_format_is_checked_even_when_a_tool_is_forced() -> None:
    error = refused(
        {"response_format": {"type": "yaml"}, "tools": [WEATHER], "tool_choice": "required"}
    )
    assert error.param == "response_format"


def test_a_forced_tool_wins_over_a_valid_response_format() -> None:
    plan = plan_request(
        {"response_format": {"type": "json_object"}, "tools": [WEATHER], "tool_choice": "required"}
    )
    assert plan.mode == "tool"


# Tools -------------------------------------------------------------------------------


def test_required_with_one_tool_forces_it() -> None:
    plan = plan_request({"tools": [WEATHER], "tool_choice": "required"})
    assert plan.mode == "tool"
    assert plan.tool_name == "weather"
    assert plan.field == "tools[0].function.parameters"
    assert plan.instruction is not None
    assert plan.instruction.startswith(
        "Call the function weather (the weather in a city). Reply with its arguments only"
    )
    assert plan.instruction.endswith(
        '{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}'
    )
    assert plan.grammar is not None


def test_a_named_function_is_forced_by_its_index() -> None:
    choice = {"type": "function", "function": {"name": "clock"}}
    plan = plan_request({"tools": [WEATHER, CLOCK], "tool_choice": choice})
    assert plan.tool_name == "clock"
    assert plan.field == "tools[1].function.parameters"
    # no parameters: an object with no properties; no description: no parenthesis
    assert plan.instruction is not None
    assert plan.instruction.startswith("Call the function clock. Reply")
    assert plan.instruction.endswith('{"type":"object","properties":{}}')


def test_a_tool_type_defaults_to_function() -> None:
    plan = plan_request({"tools": [{"function": {"name": "f"}}], "tool_choice": "required"})
    assert plan.tool_name == "f"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [WEATHER]}, "tool_choice"),  # auto by default: the model cannot decide
        ({"tools": [WEATHER], "tool_choice": "auto"}, "tool_choice"),
        ({"tools": [WEATHER, CLOCK], "tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": "function"}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function"}}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
        ({"tool_choice": "required"}, "tool_choice"),  # no tools to choose from
        ({"tools": [], "tool_choice": "required"}, "tool_choice"),
        ({"tools": {"a": 1}}, "tools"),
        ({"tools": "weather", "tool_choice": "required"}, "tools"),
        ({"tools": [{"type": "retrieval"}], "tool_choice": "none"}, "tools[0].type"),
        ({"tools": [WEATHER, "x"], "tool_choice": "none"}, "tools[1].type"),
        ({"tools": [{"type": "function"}], "tool_choice": "none"}, "tools[0].function"),
        (
            {"tools": [{"type": "function", "function": {"name": 3}}], "tool_choice": "none"},
            "tools[0].function",
        ),
        (
            {
                "tools": [{"type": "function", "function": {"name": "f", "parameters": []}}],
                "tool_choice": "required",
            },
            "tools[0].function.parameters",
        ),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}
                ],
                "tool_choice": "required",
            },
            "tools[0].function.parameters",
        ),
    ],
)
def test_tool_refusals_name_the_field(fields: dict[str, Any], param: str) -> None:
    assert refused(fields).param == param


def test_an_unknown_function_name_is_quoted() -> None:
    choice = {"type": "function", "function": {"name": "nope"}}
    assert "'nope'" in str(refused({"tools": [WEATHER], "tool_choice": choice}))


def test_tools_are_checked_even_when_tool_choice_is_none() -> None:
    # _functions runs before the "none" shortcut
    assert refused({"tools": [{"type": "other"}], "tool_choice": "none"}).param == "tools[0].type"


# Schemas and grammars ----------------------------------------------------------------


def test_annotations_are_ignored_and_enforced_keywords_accepted() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "T",
        "description": "d",
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 5, "examples": ["a"]},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3},
            "kind": {"const": "x"},
            "either": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "required": ["name"],
        "additionalProperties": False,
    }
    assert "root ::=" in schema_grammar(schema, "f")


@pytest.mark.parametrize(
    ("schema", "param"),
    [
        ({"type": "integer", "minimum": 0}, "f"),
        (
            {"type": "object", "properties": {"a": {"type": "number", "maximum": 3}}},
            "f.properties.a",
        ),
        ({"type": "array", "items": {"type": "string", "uniqueItems": True}}, "f.items"),
        ({"type": "array", "items": [{"type": "string", "not": {}}]}, "f.items[0]"),
        ({"anyOf": [{"type": "string"}, {"type": "integer", "multipleOf": 2}]}, "f.anyOf[1]"),
        ({"prefixItems": [{"type": "string", "if": {}}]}, "f.prefixItems[0]"),
        ({"$defs": {"x": {"type": "string", "contentEncoding": "base64"}}}, "f.$defs.x"),
        (
            {"type": "object", "additionalProperties": {"patternProperties": {}}},
            "f.additionalProperties",
        ),
        ({"type": "object", "properties": {"a": 3}}, "f.properties.a"),
        ({"type": "object", "properties": {"a": {}}, "required": ["a", "b"]}, "f"),
        ({"type": "object", "required": ["a"]}, "f"),
    ],
)
def test_keywords_the_grammar_cannot_enforce_are_refused(schema: Any, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        schema_grammar(schema, "f")
    assert caught.value.param == param


def test_refusal_lists_what_is_enforced() -> None:
    with pytest.raises(InvalidRequestError, match=r"'minimum'.*it enforces .*maxLength"):
        schema_grammar({"type": "integer", "minimum": 0}, "f")


def test_boolean_subschemas_pass_the_check_but_not_the_converter() -> None:
    # _check_schema lets `true` through; llama-cpp-python's converter then fails on it,
    # and the refusal names the top-level field, not the property.
    with pytest.raises(InvalidRequestError, match="cannot be turned into a grammar") as caught:
        schema_grammar({"type": "object", "properties": {"a": True}}, "f")
    assert caught.value.param == "f"


def test_a_schema_the_converter_rejects_is_refused_with_the_field() -> None:
    with pytest.raises(InvalidRequestError, match="cannot be turned into a grammar") as caught:
        schema_grammar({"$ref": "#/$defs/missing"}, "g")
    assert caught.value.param == "g"


def test_unconstrained_strings_are_bounded_and_exclude_control_characters() -> None:
    grammar = schema_grammar({"type": "string"}, "f")
    assert f"char{{0,{MAX_STRING_CHARS}}}" in grammar
    assert " char* " not in grammar
    char_rule = next(line for line in grammar.splitlines() if line.startswith("char ::="))
    assert r"\x00-\x1F" in char_rule
    assert r"\x7F" in char_rule


def test_schema_refusals_from_plan_request_name_the_request_field() -> None:
    bad = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}
    error = refused(
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": bad}}}
    )
    assert error.param == "response_format.json_schema.schema.properties.n"
    tool = {"type": "function", "function": {"name": "f", "parameters": bad}}
    error = refused({"tools": [tool], "tool_choice": "required"})
    assert error.param == "tools[0].function.parameters.properties.n"


# Messages ----------------------------------------------------------------------------


def test_plain_messages_pass_through_and_developer_becomes_system() -> None:
    messages = [
        {"role": "developer", "content": "be brief"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}],
        },
        {"role": "assistant", "content": None},
    ]
    assert render_messages(messages) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi there"},
        {"role": "assistant", "content": ""},
    ]


def test_refusal_parts_are_read_as_text() -> None:
    message = {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}
    assert render_messages([message]) == [{"role": "assistant", "content": "no"}]


@pytest.mark.parametrize(
    ("kind", "what"), [("image_url", "images"), ("input_audio", "audio"), ("file", "files")]
)
def test_non_text_parts_are_refused_with_their_position(kind: str, what: str) -> None:
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": kind}]},
    ]
    with pytest.raises(InvalidRequestError, match=f"not {what}") as caught:
        render_messages(messages)
    assert caught.value.param == "messages[1].content[1]"


def test_tool_calls_and_results_become_text() -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "checking",
            "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "cold"},
    ]  # fmt: skip
    rendered = render_messages(messages)
    assert rendered[1] == {
        "role": "assistant",
        "content": "checking\n<tool_call>\n"
        '{"name": "weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
    }
    # the result names the call's function, found by its id
    assert rendered[2] == {
        "role": "user",
        "content": "Result of the tool call weather (call_1):\ncold",
    }


def test_unparsable_arguments_are_kept_as_sent() -> None:
    message = {
        "role": "assistant",
        "tool_calls": [{"id": "", "function": {"name": "f", "arguments": "{oops"}}],
    }
    text = render_messages([message])[0]["content"]
    assert text == '<tool_call>\n{"name": "f", "arguments": "{oops"}\n</tool_call>'


def test_legacy_function_call_and_function_results() -> None:
    messages = [
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": "42"},
        {"role": "tool", "content": "anonymous"},
    ]
    rendered = render_messages(messages)
    assert rendered[0]["content"] == '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>'
    assert rendered[1] == {"role": "user", "content": "Result of the tool call f:\n42"}
    assert rendered[2] == {"role": "user", "content": "Tool result:\nanonymous"}


def test_a_result_for_an_unknown_call_id_shows_the_id() -> None:
    rendered = render_messages([{"role": "tool", "tool_call_id": "c9", "content": "x"}])
    assert rendered == [{"role": "user", "content": "Result of the tool call (c9):\nx"}]


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "assistant", "tool_calls": {"id": "x"}}, "messages[0].tool_calls"),
        ({"role": "assistant", "tool_calls": [{"function": {}}]}, "messages[0].tool_calls[0]"),
        ({"role": "assistant", "tool_calls": ["call"]}, "messages[0].tool_calls[0]"),
    ],
)
def test_malformed_tool_calls_are_refused(message: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        render_messages([message])
    assert caught.value.param == param


def test_call_json_keeps_non_ascii() -> None:
    message = {
        "role": "assistant",
        "tool_calls": [{"function": {"name": "f", "arguments": {"é": 1}}}],
    }
    text = render_messages([message])[0]["content"]
    assert json.loads(text.split("\n")[1]) == {"name": "f", "arguments": {"é": 1}}
    assert "é" in text


# with_instruction --------------------------------------------------------------------


def test_instruction_joins_an_existing_system_message() -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    result = with_instruction(messages, "Reply with JSON.")
    assert result == [
        {"role": "system", "content": "be brief\n\nReply with JSON."},
        {"role": "user", "content": "hi"},
    ]
    assert messages[0]["content"] == "be brief"  # the input is left as it was


def test_instruction_replaces_an_empty_system_message() -> None:
    result = with_instruction([{"role": "system", "content": ""}], "X")
    assert result == [{"role": "system", "content": "X"}]


def test_instruction_becomes_a_new_system_message() -> None:
    assert with_instruction([{"role": "user", "content": "hi"}], "X") == [
        {"role": "system", "content": "X"},
        {"role": "user", "content": "hi"},
    ]
    assert with_instruction([], "X") == [{"role": "system", "content": "X"}]
