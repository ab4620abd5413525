"""OpenAI-shaped chat messages and fields -> an Anthropic Messages request body. Pure.

Every caller of the library (and every gateway route) speaks OpenAI's chat
messages; this module says what each part of them is in Messages terms, and
refuses by name what has no honest translation, so nothing is dropped on the
way: `system`/`developer` messages become `system`; text and image parts
become blocks (their extra keys, `cache_control`, kept); assistant
`tool_calls` become `tool_use` blocks; `tool` messages become `tool_result`
blocks in a user turn; turns of one role in a row are merged, as Messages
wants. Content blocks already in Anthropic's own shape (`image` with a
`source`, `document`, `thinking`, `tool_use`, `tool_result`, ...) travel as
sent, for a caller that speaks Messages natively.

Each error is an `InvalidRequestError` whose `param` names the field at fault
(`messages[2].tool_calls[0].function.arguments`, `response_format`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequestError

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "REQUEST_FIELDS",
    "messages_body",
    "translate_fields",
    "translate_messages",
]

#: Messages requires `max_tokens`; this is sent when the caller gives none.
DEFAULT_MAX_TOKENS = 4096
#: Anthropic's own fields, sent as they are.
_NATIVE_FIELDS = frozenset(
    {"thinking", "top_k", "service_tier", "stop_sequences", "context_management"}
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
#: Anthropic content blocks passed on as the caller wrote them.
_NATIVE_BLOCKS = frozenset(
    {
        "image",
        "document",
        "search_result",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "tool_result",
        "server_tool_use",
        "web_search_tool_result",
    }
)
#: Message keys that say nothing when empty (openai's SDK echoes `audio: null` and the like).
_MESSAGE_KEYS = frozenset(
    {"role", "content", "tool_calls", "tool_call_id", "refusal", "is_error", "cache_control"}
)
_TOOL_CHOICES = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}
_NATIVE_CHOICES = frozenset({"auto", "any", "tool", "none"})


def _refuse(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def messages_body(
    model: str, messages: list[dict[str, Any]], fields: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The Messages request body for this call, and the `anthropic-beta` values to send."""
    system, turns = translate_messages(messages)
    translated, betas = translate_fields(fields)
    body: dict[str, Any] = {"model": model, "max_tokens": DEFAULT_MAX_TOKENS}
    if system is not None:
        body["system"] = system
    body["messages"] = turns
    body.update(translated)
    return body, betas


# fields -----------------------------------------------------------------------------


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


# messages ---------------------------------------------------------------------------


def translate_messages(
    messages: list[dict[str, Any]],
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """(`system`, `messages`) for checked OpenAI chat messages."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        at = f"messages[{index}]"
        _check_keys(message, at)
        role = message["role"]
        if role in ("system", "developer"):
            system.extend(_system_blocks(message.get("content"), at))
            continue
        if role == "user":
            turn = {"role": "user", "content": _user_content(message["content"], at)}
        elif role == "assistant":
            turn = {"role": "assistant", "content": _assistant_content(message, at)}
        elif role == "tool":
            turn = {"role": "user", "content": [_tool_result(message, at)]}
        else:
            raise _refuse(f"{at}.role {role!r} has no place in Anthropic's messages", f"{at}.role")
        _mark_cache(turn, message, at)
        _append(turns, turn)
    if not turns:
        raise _refuse("messages holds only system messages; Anthropic needs a user one", "messages")
    return _system(system), turns


def _check_keys(message: Mapping[str, Any], at: str) -> None:
    for key, value in message.items():
        if key not in _MESSAGE_KEYS and value not in (None, "", [], {}):
            raise _refuse(f"{at}.{key} has no place in an Anthropic message", f"{at}.{key}")


def _system_blocks(content: Any, at: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for number, part in enumerate(content or []):
        block = _block(part, f"{at}.content[{number}]")
        if block["type"] != "text":
            raise _refuse(
                f"{at}.content[{number}].type is {block['type']!r}; a system message holds text",
                f"{at}.content[{number}].type",
            )
        blocks.append(block)
    return blocks


def _system(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]] | None:
    """A plain string, unless some block carries more than its text (cache_control)."""
    if not blocks:
        return None
    if all(block.keys() == {"type", "text"} for block in blocks):
        return "\n\n".join(block["text"] for block in blocks)
    return blocks


def _user_content(content: Any, at: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [_block(part, f"{at}.content[{number}]") for number, part in enumerate(content)]


def _assistant_content(message: Mapping[str, Any], at: str) -> str | list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        blocks.extend(_block(part, f"{at}.content[{n}]") for n, part in enumerate(content))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal and not blocks:
        blocks.append({"type": "text", "text": refusal})
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise _refuse(f"{at}.tool_calls must be a list", f"{at}.tool_calls")
    blocks.extend(_tool_use(call, f"{at}.tool_calls[{n}]") for n, call in enumerate(calls))
    if not blocks:
        raise _refuse(f"{at}.content is empty and there are no tool_calls", f"{at}.content")
    if isinstance(content, str) and content and len(blocks) == 1:
        return content  # a plain answer stays a plain string
    return blocks


def _tool_use(call: Any, at: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise _refuse(f"{at}.function.name is missing", f"{at}.function.name")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise _refuse(f"{at}.id is missing (its tool message answers to it)", f"{at}.id")
    arguments = function.get("arguments")
    if arguments is None or arguments == "":
        given: Any = {}
    elif isinstance(arguments, str):
        try:
            given = json.loads(arguments)
        except (ValueError, RecursionError):
            raise _refuse(
                f"{at}.function.arguments is not valid JSON: {arguments[:80]!r}",
                f"{at}.function.arguments",
            ) from None
    else:
        given = arguments
    if not isinstance(given, dict):
        raise _refuse(f"{at}.function.arguments must be a JSON object", f"{at}.function.arguments")
    return {"type": "tool_use", "id": call_id, "name": function["name"], "input": given}


def _tool_result(message: Mapping[str, Any], at: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise _refuse(
            f"{at}.tool_call_id is missing: which call does it answer?", f"{at}.tool_call_id"
        )
    content = message["content"]
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, str):
        result["content"] = content
    else:
        result["content"] = [_block(p, f"{at}.content[{n}]") for n, p in enumerate(content)]
    is_error = message.get("is_error")
    if is_error is not None:
        if not isinstance(is_error, bool):
            raise _refuse(f"{at}.is_error must be true or false", f"{at}.is_error")
        result["is_error"] = is_error
    return result


def _block(part: Any, at: str) -> dict[str, Any]:
    """One content part as a Messages block, its extra keys (cache_control) kept."""
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, Mapping):
        raise _refuse(f"{at} must be an object", at)
    kind = part.get("type", "text")
    if kind in _NATIVE_BLOCKS and not (kind == "image" and "image_url" in part):
        return dict(part)
    extra = {k: v for k, v in part.items() if k not in ("type", kind)}
    if kind == "text":
        text = part.get("text", "")
        if not isinstance(text, str):
            raise _refuse(f"{at}.text must be a string", f"{at}.text")
        return {"type": "text", "text": text, **extra}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or ""), **extra}
    if kind == "image_url":
        return {"type": "image", "source": _image_source(part.get("image_url"), at), **extra}
    raise _refuse(f"{at}.type {kind!r} is not a content type Anthropic takes", f"{at}.type")


def _image_source(image: Any, at: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str):
        raise _refuse(f"{at}.image_url.url must be a string", f"{at}.image_url.url")
    detail = image.get("detail") if isinstance(image, Mapping) else None
    if detail not in (None, "auto"):
        raise _refuse(
            f"{at}.image_url.detail {detail!r}: Anthropic sizes images itself",
            f"{at}.image_url.detail",
        )
    scheme = url.partition(":")[0].lower()
    if scheme in ("http", "https"):
        return {"type": "url", "url": url}
    if scheme == "data":
        head, comma, data = url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if comma and encoding.lower() == "base64" and media_type:
            return {"type": "base64", "media_type": media_type.lower(), "data": data}
        raise _refuse(
            f"{at}.image_url.url must be a base64 data: URL with a media type",
            f"{at}.image_url.url",
        )
    raise _refuse(
        f"{at}.image_url.url must be http(s) or data:, not {scheme}:", f"{at}.image_url.url"
    )


def _mark_cache(turn: dict[str, Any], message: Mapping[str, Any], at: str) -> None:
    """A message-level `cache_control` (LiteLLM's way) goes on its last block."""
    mark = message.get("cache_control")
    if mark is None:
        return
    content = turn["content"]
    if isinstance(content, str):
        content = turn["content"] = [{"type": "text", "text": content}]
    if not content:
        raise _refuse(f"{at}.cache_control marks a message with no content", f"{at}.cache_control")
    content[-1] = {**content[-1], "cache_control": mark}


def _append(turns: list[dict[str, Any]], turn: dict[str, Any]) -> None:
    """Add a turn, merged into the last one when it has the same role."""
    if turns and turns[-1]["role"] == turn["role"]:
        last = turns[-1]
        last["content"] = _as_blocks(last["content"]) + _as_blocks(turn["content"])
        return
    turns.append(turn)


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
