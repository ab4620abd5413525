"""OpenAI-named (or Anthropic-native) request fields -> Messages body fields. Pure.

Each field is translated (`max_completion_tokens` -> `max_tokens`, `stop` ->
`stop_sequences`, function tools -> `input_schema` tools, `tool_choice`,
`parallel_tool_calls: false` -> `disable_parallel_tool_use`, `user` ->
`metadata.user_id`), sent as it is (Anthropic's own: `thinking`, `top_k`,
`service_tier`, ...), or refused with an `InvalidRequestError` naming it --
`seed`, `logprobs`, `response_format: json_schema` have no Messages
counterpart, and dropping them would change the answer behind the caller's back.
A field sent as null reads like one not sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequestError

__all__ = ["REQUEST_FIELDS", "translate_fields"]

#: Anthropic's own fields, sent as they are (the Messages route forwards them to this
#: provider as its caller sent them: Claude Code sends `output_config`, `context_management`).
_NATIVE_FIELDS = frozenset(
    {
        "thinking",
        "top_k",
        "service_tier",
        "stop_sequences",
        "context_management",
        "output_config",
        "output_format",
        "container",
        "mcp_servers",
        "inference_geo",
        "speed",
        "diagnostics",
        "cache_control",
    }
)
#: Fields whose only honest values are "off": any other value is refused by name.
_OFF_ONLY = {"n": (None, 1), "store": (None, False), "logprobs": (None, False)}
#: Every field the translation honours (the provider's `request_fields`).
REQUEST_FIELDS = frozenset(
    {
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "metadata",
        "response_format",
        "top_logprobs",
        "anthropic_beta",
        *_OFF_ONLY,
        *_NATIVE_FIELDS,
    }
)
_TOOL_CHOICES = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}
_NATIVE_CHOICES = frozenset({"auto", "any", "tool", "none"})


def _refuse(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def translate_fields(fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The body fields for the caller's OpenAI-named (or Anthropic-native) fields."""
    for name, value in fields.items():
        if name not in REQUEST_FIELDS and value is not None:  # null reads like not given
            raise _refuse(f"Anthropic cannot honour the field {name!r}", name)
    out: dict[str, Any] = {}
    for name, allowed in _OFF_ONLY.items():
        value = fields.get(name)
        if type(value) not in (type(None), bool, int) or value not in allowed:
            raise _refuse(f"Anthropic cannot honour {name}={value!r}", name)
    if fields.get("top_logprobs") is not None:
        raise _refuse("top_logprobs: Anthropic returns no logprobs", "top_logprobs")
    _check_response_format(fields.get("response_format"))
    _stream_fields(fields, out)
    _sampling_fields(fields, out)
    _tool_fields(fields, out)
    _metadata(fields, out)
    for name in _NATIVE_FIELDS - {"top_k", "stop_sequences"}:
        if fields.get(name) is not None:
            out[name] = fields[name]
    return out, _betas(fields.get("anthropic_beta"))


def _stream_fields(fields: Mapping[str, Any], out: dict[str, Any]) -> None:
    stream = fields.get("stream", True)
    if not isinstance(stream, bool):
        raise _refuse(f"stream must be true or false, not {stream!r}", "stream")
    out["stream"] = stream
    # Usage is always in a Messages answer: include_usage asks for nothing more.
    options = fields.get("stream_options")
    if options is not None and not isinstance(options, Mapping):
        raise _refuse("stream_options must be an object", "stream_options")


def _check_response_format(value: Any) -> None:
    if value is None:
        return
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind != "text":
        raise _refuse(
            f"Anthropic's Messages API has no response_format ({kind or value!r}); "
            "describe the JSON in the prompt or use a forced tool",
            "response_format",
        )


def _whole(fields: Mapping[str, Any], name: str, minimum: int) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if type(value) is not int or value < minimum:
        raise _refuse(f"{name} must be a whole number >= {minimum}, got {value!r}", name)
    return value


def _number(fields: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _refuse(f"{name} must be a number from {low:g} to {high:g}, got {value!r}", name)
    return value


def _sampling_fields(fields: Mapping[str, Any], out: dict[str, Any]) -> None:
    tokens = _whole(fields, "max_completion_tokens", 1)
    if tokens is None:
        tokens = _whole(fields, "max_tokens", 1)
    if tokens is not None:
        out["max_tokens"] = tokens
    for name, high in (("temperature", 1.0), ("top_p", 1.0)):
        value = _number(fields, name, 0.0, high)
        if value is not None:
            out[name] = value
    top_k = _whole(fields, "top_k", 0)
    if top_k is not None:
        out["top_k"] = top_k
    stops = _stops(fields.get("stop"), "stop")
    native = _stops(fields.get("stop_sequences"), "stop_sequences")
    if stops is not None and native is not None:
        raise _refuse("give stop or stop_sequences, not both", "stop_sequences")
    if (stops or native) is not None:
        out["stop_sequences"] = stops if stops is not None else native


def _stops(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value)
    raise _refuse(f"{name} must be a string or a list of strings", name)


def _tool_fields(fields: Mapping[str, Any], out: dict[str, Any]) -> None:
    tools = fields.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _refuse("tools must be a list", "tools")
        out["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    choice = _tool_choice(fields.get("tool_choice"))
    parallel = fields.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise _refuse("parallel_tool_calls must be true or false", "parallel_tool_calls")
    if parallel is False:
        choice = dict(choice or {"type": "auto"})
        if choice["type"] != "none":  # no tool is called at all: nothing to say
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        out["tool_choice"] = choice


def _tool(tool: Any, at: str) -> dict[str, Any]:
    """An OpenAI function tool as Anthropic's; a tool in Anthropic's shape, as it is."""
    if not isinstance(tool, Mapping):
        raise _refuse(f"{at} must be an object", at)
    if tool.get("type", "function") != "function" or "function" not in tool:
        if not isinstance(tool.get("name"), str):
            raise _refuse(f"{at} is neither a function tool nor an Anthropic tool", at)
        return dict(tool)
    function = tool["function"]
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise _refuse(f"{at}.function.name is missing", f"{at}.function.name")
    schema = function.get("parameters")
    if schema is None:
        schema = {"type": "object", "properties": {}}
    if not isinstance(schema, Mapping):
        raise _refuse(
            f"{at}.function.parameters must be a JSON schema", f"{at}.function.parameters"
        )
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description") is not None:
        out["description"] = function["description"]
    out["input_schema"] = dict(schema)
    if function.get("strict") is not None:
        out["strict"] = function["strict"]
    out.update({k: v for k, v in tool.items() if k not in ("type", "function")})
    return out


def _tool_choice(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value in _TOOL_CHOICES:
            return dict(_TOOL_CHOICES[value])
        raise _refuse(f"tool_choice {value!r} is not auto, none or required", "tool_choice")
    if isinstance(value, Mapping):
        function = value.get("function")
        if value.get("type") == "function" and isinstance(function, Mapping):
            if isinstance(function.get("name"), str):
                return {"type": "tool", "name": function["name"]}
        elif value.get("type") in _NATIVE_CHOICES:
            return dict(value)
    raise _refuse(f"tool_choice {value!r} names no function", "tool_choice")


def _metadata(fields: Mapping[str, Any], out: dict[str, Any]) -> None:
    metadata = fields.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise _refuse("metadata must be an object", "metadata")
    user = fields.get("user")
    if user is not None and not isinstance(user, str):
        raise _refuse("user must be a string", "user")
    merged = dict(metadata or {})
    if user:
        merged["user_id"] = user
    if merged:
        out["metadata"] = merged


def _betas(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v]
    raise _refuse("anthropic_beta must be a string or a list of strings", "anthropic_beta")
