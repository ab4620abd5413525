"""What the embedded model makes of a request beyond sampling: JSON answers, a forced
tool call, a conversation that holds tool calls and their results.

A 135M model cannot be trusted to write JSON, let alone JSON that fits a schema, but
llama.cpp can be made to: a GBNF grammar, built from the schema by llama-cpp-python's
converter, leaves the sampler only tokens that keep the answer valid. So
`response_format` (`json_object`, `json_schema`) and a tool call forced by
`tool_choice` are answered under a grammar, and the model is told in a system message
what to write. What it cannot do -- decide whether to call a tool, several answers,
logprobs, images -- is refused with the field named, never ignored.

Two things in the converter are corrected here: its string characters admit raw
control characters (a newline inside a string is not JSON), and its strings have no
length limit (a looping 135M model writes one string until `max_tokens` cuts the
JSON). Strings without a `maxLength` are held to `MAX_STRING_CHARS`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import InvalidRequestError
from ..types import text_of

__all__ = ["MAX_STRING_CHARS", "AnswerPlan", "plan_request", "render_messages", "with_instruction"]

#: The longest string a grammar lets the model write where the schema sets no maxLength.
MAX_STRING_CHARS = 1000

# JSON's string characters: anything but a quote, a backslash or a control character,
# or an escape. (llama-cpp-python's converter writes `[^"\\]`, which admits newlines.)
_CHAR_RULE = r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
_CHAR_LINE = re.compile(r"(?m)^char ::= .*$")

#: Keywords the grammar enforces, and annotations that constrain nothing.
_ENFORCED = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems",
        "minItems", "maxItems", "enum", "const", "anyOf", "oneOf", "$ref", "$defs",
        "definitions", "pattern", "format", "minLength", "maxLength",
    }
)  # fmt: skip
_ANNOTATIONS = frozenset(
    {
        "title", "description", "default", "examples", "$schema", "$id", "$comment",
        "deprecated", "readOnly", "writeOnly", "nullable", "discriminator", "strict",
    }
)  # fmt: skip
# Keywords whose value is a map of subschemas, a list of them, or one subschema.
_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties")
_UNSUPPORTED_PARTS = {"image_url": "images", "input_audio": "audio", "file": "files"}


@dataclass(frozen=True)
class AnswerPlan:
    """How to answer one request: free text, JSON under a grammar, or one forced tool call."""

    mode: Literal["text", "json", "tool"] = "text"
    #: The GBNF grammar the answer is sampled under (json and tool modes).
    grammar: str | None = None
    #: The request field the grammar comes from, named if llama.cpp cannot use it.
    field: str | None = None
    #: What the system message tells the model to write.
    instruction: str | None = None
    #: The function a forced tool call calls.
    tool_name: str | None = None


def plan_request(fields: Mapping[str, Any]) -> AnswerPlan:
    """Check the fields the local model handles beyond sampling, and say how to answer.

    Raises InvalidRequestError naming the first field it cannot honour.
    """
    _check_single_answer(fields)
    text_plan = _format_plan(fields.get("response_format"))  # checked even if a tool is forced
    tool = _forced_tool(fields.get("tools"), fields.get("tool_choice"))
    return _tool_plan(*tool) if tool is not None else text_plan


# Requests that ask for more than one plain answer -----------------------------------


def _check_single_answer(fields: Mapping[str, Any]) -> None:
    n = fields.get("n")
    if n is not None and n != 1:
        raise InvalidRequestError(
            "the local model gives one answer per request: n must be 1", param="n"
        )
    if fields.get("logprobs"):
        raise InvalidRequestError(
            "the local model does not return logprobs (llama.cpp would have to keep the "
            "logits of every prompt token)",
            param="logprobs",
        )
    if fields.get("top_logprobs"):
        raise InvalidRequestError("the local model does not return logprobs", param="top_logprobs")
    bias = fields.get("logit_bias")
    if bias is not None:
        _check_logit_bias(bias)
    parallel = fields.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidRequestError(
            "parallel_tool_calls must be true or false", param="parallel_tool_calls"
        )


def _check_logit_bias(bias: Any) -> None:
    if not isinstance(bias, Mapping):
        raise InvalidRequestError("logit_bias must map token ids to biases", param="logit_bias")
    for key, value in bias.items():
        if not isinstance(key, str | int) or not str(key).isdigit():
            raise InvalidRequestError(
                f"logit_bias keys are token ids; {key!r} is not one", param="logit_bias"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequestError(
                "logit_bias values are numbers from -100 to 100", param="logit_bias"
            )
        if not -100 <= value <= 100:
            raise InvalidRequestError(
                "logit_bias values are numbers from -100 to 100", param="logit_bias"
            )


# Tools ---------------------------------------------------------------------------------


def _forced_tool(tools: Any, choice: Any) -> tuple[dict[str, Any], int] | None:
    """The tool a request forces (and its index in `tools`), or None for a text answer."""
    if not tools:
        if tools is not None and not isinstance(tools, list):
            raise InvalidRequestError("tools must be a list", param="tools")
        if choice is None or choice in ("none", "auto"):
            return None
        raise InvalidRequestError(
            f"tool_choice {_show(choice)} needs tools, and none were given",
            param="tool_choice",
        )
    functions = _functions(tools)
    if choice == "none":
        return None
    if choice is None or choice == "auto":
        raise InvalidRequestError(
            "the local model (135M parameters) cannot decide whether to call a tool: "
            'set tool_choice to {"type": "function", "function": {"name": ...}} '
            '(or "required" with one tool) to have it call one, or to "none" for text',
            param="tool_choice",
        )
    if choice == "required":
        if len(functions) != 1:
            raise InvalidRequestError(
                f'tool_choice "required" with {len(functions)} tools asks the local model '
                "to choose one, which it cannot: name the function in tool_choice",
                param="tool_choice",
            )
        return functions[0], 0
    name = _chosen_name(choice)
    for index, function in enumerate(functions):
        if function["name"] == name:
            return function, index
    raise InvalidRequestError(
        f"tool_choice names the function {name!r}, which is not among the tools",
        param="tool_choice",
    )


def _functions(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequestError("tools must be a list", param="tools")
    functions = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
            raise InvalidRequestError(
                f"{where}: the local model calls tools of type 'function' only",
                param=f"{where}.type",
            )
        function = tool.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InvalidRequestError(f"{where}.function needs a name", param=f"{where}.function")
        functions.append(dict(function))
    return functions


def _chosen_name(choice: Any) -> str:
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        function = choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return str(function["name"])
    raise InvalidRequestError(
        f"tool_choice {_show(choice)} is not one the local model takes: "
        '"none", "required" (with one tool) or {"type": "function", "function": {"name": ...}}',
        param="tool_choice",
    )


def _tool_plan(function: dict[str, Any], index: int) -> AnswerPlan:
    field = f"tools[{index}].function.parameters"
    parameters = function.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
        raise InvalidRequestError(f"{field} must be a JSON schema of type object", param=field)
    name = function["name"]
    description = function.get("description")
    about = f" ({description})" if isinstance(description, str) and description else ""
    instruction = (
        f"Call the function {name}{about}. Reply with its arguments only: a JSON object "
        f"that matches this JSON schema:\n{_compact(parameters)}"
    )
    return AnswerPlan(
        mode="tool",
        grammar=schema_grammar(parameters, field),
        field=field,
        instruction=instruction,
        tool_name=name,
    )


# response_format -------------------------------------------------------------------------


def _format_plan(response_format: Any) -> AnswerPlan:
    if response_format is None:
        return AnswerPlan()
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "text":
        return AnswerPlan()
    if kind == "json_object":
        return AnswerPlan(
            mode="json",
            grammar=schema_grammar({"type": "object"}, "response_format"),
            field="response_format",
            instruction="Reply with a JSON object.",
        )
    if kind == "json_schema":
        return _json_schema_plan(response_format.get("json_schema"))
    raise InvalidRequestError(
        f"response_format type {_show(kind)} is not one of text, json_object, json_schema",
        param="response_format",
    )


def _json_schema_plan(spec: Any) -> AnswerPlan:
    field = "response_format.json_schema"
    if not isinstance(spec, Mapping):
        raise InvalidRequestError(
            '{"type": "json_schema"} needs json_schema: {"name", "schema"}', param=field
        )
    schema = spec.get("schema")
    if schema is None:  # OpenAI's default: any JSON object
        schema = {"type": "object"}
    field += ".schema"
    if not isinstance(schema, Mapping):
        raise InvalidRequestError(f"{field} must be a JSON schema object", param=field)
    return AnswerPlan(
        mode="json",
        grammar=schema_grammar(schema, field),
        field=field,
        instruction=f"Reply with JSON that matches this JSON schema:\n{_compact(schema)}",
    )


# Grammars --------------------------------------------------------------------------------


def schema_grammar(schema: Mapping[str, Any], field: str) -> str:
    """The GBNF grammar of the JSON values valid against `schema`.

    Refuses (naming `field`) a schema whose constraints the grammar would not enforce,
    so that "valid against the schema" is a promise, not a hope.
    """
    _check_schema(schema, field)
    try:
        return _grammar(_compact(schema))
    except InvalidRequestError:
        raise
    except Exception as exc:  # the converter's asserts, unresolvable $refs, bad regexes
        raise InvalidRequestError(
            f"{field}: the JSON schema cannot be turned into a grammar: {exc}", param=field
        ) from exc


@functools.lru_cache(maxsize=128)
def _grammar(schema_json: str) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    grammar = json_schema_to_gbnf(schema_json)
    grammar = _CHAR_LINE.sub(lambda _match: _CHAR_RULE, grammar)
    return grammar.replace(" char* ", f" char{{0,{MAX_STRING_CHARS}}} ")


def _check_schema(schema: Any, where: str) -> None:
    """Refuse keywords the converter ignores but a validator would enforce."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, Mapping):
        raise InvalidRequestError(f"{where} must be a JSON schema object", param=where)
    for key, value in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key not in _ENFORCED:
            raise InvalidRequestError(
                f"{where} uses {key!r}, which the local model's grammar cannot enforce; "
                f"it enforces {', '.join(sorted(_ENFORCED))}",
                param=where,
            )
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            for name, sub in value.items():
                _check_schema(sub, f"{where}.{key}.{name}")
        elif key in (*_SCHEMA_LISTS, "items") and isinstance(value, list):
            for index, sub in enumerate(value):
                _check_schema(sub, f"{where}.{key}[{index}]")
        elif key in _SCHEMA_ONE and isinstance(value, Mapping):
            _check_schema(value, f"{where}.{key}")
    required = schema.get("required")
    properties = schema.get("properties")
    if isinstance(required, list):
        missing = [name for name in required if name not in (properties or {})]
        if missing:
            raise InvalidRequestError(
                f"{where} requires {missing[0]!r} but its properties do not describe it",
                param=where,
            )


# Messages --------------------------------------------------------------------------------


def render_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as role + text, which any chat template can render.

    Tool calls become text the model can read (the call as JSON), tool results user
    turns that say which call they answer, `developer` the system role. Images, audio
    and files are refused: the model reads text only.
    """
    names: dict[str, str] = {}
    rendered: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = str(message["role"])
        text = _content_text(message.get("content"), index)
        if role == "assistant":
            calls = _calls_text(message, index, names)
            text = "\n".join(part for part in (text, calls) if part)
        elif role in ("tool", "function"):
            role, text = "user", _result_text(message, text, names)
        elif role == "developer":
            role = "system"
        rendered.append({"role": role, "content": text})
    return rendered


def with_instruction(messages: list[dict[str, Any]], instruction: str) -> list[dict[str, Any]]:
    """The messages with `instruction` added to the system message (a new one if none)."""
    if messages and messages[0]["role"] == "system":
        first = messages[0]
        joined = f"{first['content']}\n\n{instruction}" if first["content"] else instruction
        return [{"role": "system", "content": joined}, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def _content_text(content: Any, index: int) -> str:
    if isinstance(content, list):
        for position, part in enumerate(content):
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind in _UNSUPPORTED_PARTS:
                where = f"messages[{index}].content[{position}]"
                raise InvalidRequestError(
                    f"{where} is {kind}: the local model reads text only, "
                    f"not {_UNSUPPORTED_PARTS[kind]}",
                    param=where,
                )
        return "".join(
            str(part.get("refusal") or "")
            if isinstance(part, Mapping) and part.get("type") == "refusal"
            else text_of([part])
            for part in content
        )
    return text_of(content)


def _calls_text(message: Mapping[str, Any], index: int, names: dict[str, str]) -> str:
    calls = message.get("tool_calls") or []
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        calls = [*calls, {"id": "", "function": legacy}]
    if not isinstance(calls, list):
        raise InvalidRequestError(
            f"messages[{index}].tool_calls must be a list", param=f"messages[{index}].tool_calls"
        )
    texts = []
    for position, call in enumerate(calls):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            where = f"messages[{index}].tool_calls[{position}]"
            raise InvalidRequestError(f"{where} needs function.name", param=where)
        call_id = call.get("id")
        if isinstance(call_id, str) and call_id:
            names[call_id] = function["name"]
        arguments = function.get("arguments")
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            parsed = arguments  # as the caller sent it: the model reads it all the same
        call_json = json.dumps({"name": function["name"], "arguments": parsed}, ensure_ascii=False)
        texts.append(f"<tool_call>\n{call_json}\n</tool_call>")
    return "\n".join(texts)


def _result_text(message: Mapping[str, Any], text: str, names: dict[str, str]) -> str:
    call_id = message.get("tool_call_id")
    name = message.get("name") or (names.get(call_id) if isinstance(call_id, str) else None)
    about = " ".join(
        part for part in (name if isinstance(name, str) else None, _paren(call_id)) if part
    )
    return f"Result of the tool call {about}:\n{text}" if about else f"Tool result:\n{text}"


def _paren(value: Any) -> str | None:
    return f"({value})" if isinstance(value, str) and value else None


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str | Mapping | list) else repr(value)
