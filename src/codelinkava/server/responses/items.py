"""Pure: Responses input items, tools, tool_choice and text.format in chat terms.

Each function reads one part of a Responses body as the caller sent it (plain
JSON) and either returns its chat counterpart or raises InvalidRequestError
with the exact path at fault (`input[3].content[1].file_id`, `tools[0].type`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codelinkava.errors import InvalidRequestError

from .wire import TextFormat

__all__ = [
    "chat_response_format",
    "chat_tool_choice",
    "chat_tools",
    "echoed_tool",
    "input_messages",
]

_ROLES = ("user", "system", "developer", "assistant")
#: Keys an item may carry beside its content: ids and statuses from an earlier output,
#: which label the item and change nothing the model reads.
_MESSAGE_KEYS = frozenset({"type", "role", "content", "id", "status", "phase"})
_CALL_KEYS = frozenset({"type", "call_id", "name", "arguments", "id", "status", "caller"})
_OUTPUT_KEYS = frozenset({"type", "call_id", "output", "id", "status", "caller", "name"})
_PART_KEYS = {
    "input_text": frozenset({"type", "text"}),
    "input_image": frozenset({"type", "image_url", "file_id", "detail"}),
    "input_file": frozenset({"type", "file_data", "file_id", "file_url", "filename", "detail"}),
    "output_text": frozenset({"type", "text", "annotations", "logprobs"}),
    "refusal": frozenset({"type", "refusal"}),
}
_TOOL_KEYS = frozenset(
    {
        "type", "name", "description", "parameters", "strict",
        "defer_loading", "allowed_callers", "output_schema",
    }
)  # fmt: skip
_CHOICES = ("auto", "none", "required")
_NOT_ITEMS = {
    "reasoning": "reasoning items cannot be replayed to a chat upstream (the gateway never "
    "produces them); leave them out",
    "item_reference": "items are not stored by id here; send the item itself, or continue "
    "with previous_response_id",
}


def _refuse(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(f"{param}: {message}", param=param)


def _check_keys(item: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in item:
        if key not in allowed and item[key] is not None:
            raise _refuse(f"the key {key!r} is not honoured here", f"{where}.{key}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _refuse("must be a string", where)
    return value


# Input items ---------------------------------------------------------------------------


def input_messages(
    value: str | list[Any] | None, before: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`input` as chat messages; `before` is the stored conversation it continues (its
    tool calls are the ones a `function_call_output` may answer)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    known = _call_ids(before)
    out: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        where = f"input[{index}]"
        if not isinstance(item, Mapping):
            raise _refuse("an input item must be an object", where)
        kind = item.get("type")
        if kind == "message" or (kind is None and "role" in item):
            out.append(_message(item, where))
        elif kind == "function_call":
            _function_call(item, where, out, known)
        elif kind == "function_call_output":
            out.append(_function_output(item, where, known))
        elif isinstance(kind, str) and kind in _NOT_ITEMS:
            raise _refuse(_NOT_ITEMS[kind], f"{where}.type")
        else:
            raise _refuse(
                f"input items of type {kind!r} are not served: send messages, function_call "
                "and function_call_output items (built-in tools are not served)",
                f"{where}.type",
            )
    return out


def _call_ids(messages: list[dict[str, Any]]) -> set[str]:
    ids = set()
    for message in messages:
        for call in message.get("tool_calls") or ():
            ids.add(call["id"])
    return ids


def _message(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    _check_keys(item, _MESSAGE_KEYS, where)
    role = item.get("role")
    if role not in _ROLES:
        raise _refuse(f"role {role!r} is not one of {', '.join(_ROLES)}", f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": "system" if role == "developer" else role, "content": content}
    if not isinstance(content, list):
        raise _refuse("must be a string or a list of content parts", f"{where}.content")
    if role == "assistant":
        return _assistant(content, f"{where}.content")
    parts = [_input_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]
    # NOTE: developer messages are system messages to every chat upstream (OpenAI's
    # chat API itself reads system as developer for the models that have one).
    chat_role = "system" if role == "developer" else str(role)
    if len(parts) == 1 and parts[0]["type"] == "text":
        return {"role": chat_role, "content": parts[0]["text"]}
    return {"role": chat_role, "content": parts}


def _assistant(content: list[Any], where: str) -> dict[str, Any]:
    """An earlier answer: its text pieces joined, its refusal kept as one."""
    texts: list[str] = []
    refusals: list[str] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("output_text", "input_text"):
            _check_keys(part, _PART_KEYS["output_text"], at)
            texts.append(_text(part.get("text"), f"{at}.text"))
        elif kind == "refusal":
            _check_keys(part, _PART_KEYS["refusal"], at)
            refusals.append(_text(part.get("refusal"), f"{at}.refusal"))
        else:
            raise _refuse(
                f"an assistant message holds output_text and refusal parts, not {kind!r}",
                f"{at}.type",
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    if refusals:
        message["refusal"] = "".join(refusals)
    return message


def _input_part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if not isinstance(kind, str) or kind not in ("input_text", "input_image", "input_file"):
        raise _refuse(
            f"content parts here are input_text, input_image or input_file, not {kind!r}",
            f"{where}.type",
        )
    _check_keys(part, _PART_KEYS[kind], where)
    if kind == "input_text":
        return {"type": "text", "text": _text(part.get("text"), f"{where}.text")}
    if part.get("file_id") is not None:
        raise _refuse(
            "files are not stored here (there is no Files API): send the image or file "
            "itself (image_url, file_data)",
            f"{where}.file_id",
        )
    if kind == "input_image":
        return _image(part, where)
    if part.get("file_url") is not None:
        raise _refuse("chat upstreams take files inline: send file_data", f"{where}.file_url")
    file: dict[str, Any] = {"file_data": _text(part.get("file_data"), f"{where}.file_data")}
    if part.get("filename") is not None:
        file["filename"] = _text(part["filename"], f"{where}.filename")
    return {"type": "file", "file": file}


def _image(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Only http(s) and data: images: a `file:` URL would pick a file on the upstream's host."""
    url = _text(part.get("image_url"), f"{where}.image_url")
    scheme = url.partition(":")[0].lower()
    if scheme not in ("http", "https", "data"):
        raise _refuse(f"must be an http(s) or data: URL, not {scheme}:", f"{where}.image_url")
    image: dict[str, Any] = {"url": url}
    detail = part.get("detail")
    if detail is not None:
        image["detail"] = _text(detail, f"{where}.detail")
    return {"type": "image_url", "image_url": image}


def _function_call(
    item: Mapping[str, Any], where: str, out: list[dict[str, Any]], known: set[str]
) -> None:
    """A tool call the model made: one more call of the assistant message just before it
    (parallel calls are one chat message), or a message of its own."""
    _check_keys(item, _CALL_KEYS, where)
    _direct_caller(item, where)
    call_id = _text(item.get("call_id"), f"{where}.call_id")
    name = _text(item.get("name"), f"{where}.name")
    arguments = _text(item.get("arguments"), f"{where}.arguments")
    if not call_id or not name:
        raise _refuse("a function call needs a call_id and a name", f"{where}.call_id")
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    known.add(call_id)
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if not last.get("content"):
            last["content"] = None
        return
    out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_output(item: Mapping[str, Any], where: str, known: set[str]) -> dict[str, Any]:
    _check_keys(item, _OUTPUT_KEYS, where)
    _direct_caller(item, where)
    call_id = _text(item.get("call_id"), f"{where}.call_id")
    if call_id not in known:
        raise _refuse(
            f"no function_call with call_id {call_id!r} comes before this output (in this "
            "input or the previous response's)",
            f"{where}.call_id",
        )
    output = item.get("output")
    if isinstance(output, str):
        return {"role": "tool", "tool_call_id": call_id, "content": output}
    if not isinstance(output, list):
        raise _refuse("must be a string or a list of input_text parts", f"{where}.output")
    parts = []
    for j, part in enumerate(output):
        at = f"{where}.output[{j}]"
        if not isinstance(part, Mapping) or part.get("type") != "input_text":
            raise _refuse("chat tool results hold text only: send input_text parts", at)
        _check_keys(part, _PART_KEYS["input_text"], at)
        parts.append({"type": "text", "text": _text(part.get("text"), f"{at}.text")})
    content: Any = parts[0]["text"] if len(parts) == 1 else parts
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _direct_caller(item: Mapping[str, Any], where: str) -> None:
    caller = item.get("caller")
    if caller is not None and (not isinstance(caller, Mapping) or caller.get("type") != "direct"):
        raise _refuse("programmatic tool calling is not served", f"{where}.caller")


# Tools ---------------------------------------------------------------------------------


def chat_tools(tools: list[Any] | None) -> list[dict[str, Any]] | None:
    """Function tools in chat's shape; any other tool type is refused by name."""
    if tools is None:
        return None
    out = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if kind != "function":
            raise _refuse(
                f"tools of type {kind!r} are not served: this gateway calls function tools "
                "(type 'function') only; built-in tools need OpenAI's own servers",
                f"{where}.type",
            )
        _check_keys(tool, _TOOL_KEYS, where)
        for key, allowed in (
            ("defer_loading", (None, False)),
            ("allowed_callers", (None, ["direct"])),
        ):
            if tool.get(key) not in allowed:
                raise _refuse("tool search and programmatic calls are not served", f"{where}.{key}")
        function: dict[str, Any] = {"name": _text(tool.get("name"), f"{where}.name")}
        if not function["name"]:
            raise _refuse("a function tool needs a name", f"{where}.name")
        if tool.get("description") is not None:
            function["description"] = _text(tool["description"], f"{where}.description")
        parameters = tool.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, Mapping):
                raise _refuse("must be a JSON Schema object", f"{where}.parameters")
            function["parameters"] = dict(parameters)
        strict = tool.get("strict")
        if strict is not None:
            if not isinstance(strict, bool):
                raise _refuse("must be true or false", f"{where}.strict")
            function["strict"] = strict
        out.append({"type": "function", "function": function})
    return out


def echoed_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A (checked) function tool as the Response object lists it."""
    return {
        "type": "function",
        "name": tool.get("name"),
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


def chat_tool_choice(choice: str | Mapping[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        if choice not in _CHOICES:
            raise _refuse(f"must be one of {', '.join(_CHOICES)} or an object", "tool_choice")
        return choice
    kind = choice.get("type")
    if kind == "function":
        name = _text(choice.get("name"), "tool_choice.name")
        return {"type": "function", "function": {"name": name}}
    if kind == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            raise _refuse("must be auto or required", "tool_choice.mode")
        tools = choice.get("tools")
        if not isinstance(tools, list):
            raise _refuse("must be a list of function tools", "tool_choice.tools")
        named = []
        for index, tool in enumerate(tools):
            at = f"tool_choice.tools[{index}]"
            if not isinstance(tool, Mapping) or tool.get("type") != "function":
                raise _refuse("only function tools are served", f"{at}.type")
            named.append(
                {"type": "function", "function": {"name": _text(tool.get("name"), f"{at}.name")}}
            )
        return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": named}}
    raise _refuse(
        f"tool_choice of type {kind!r} is not served: only function tools are "
        '(use "auto", "none", "required", {"type": "function", "name": ...} or allowed_tools)',
        "tool_choice.type",
    )


def chat_response_format(fmt: TextFormat) -> dict[str, Any] | None:
    """`text.format` as a chat `response_format` (None for plain text)."""
    if fmt.type != "json_schema":
        for name, value in (("name", fmt.name), ("schema", fmt.json_schema)):
            if value is not None:
                raise _refuse(f"applies to json_schema, not {fmt.type}", f"text.format.{name}")
        return None if fmt.type == "text" else {"type": "json_object"}
    if fmt.name is None:
        raise _refuse("a json_schema format needs a name", "text.format.name")
    if fmt.json_schema is None:
        raise _refuse("a json_schema format needs a schema", "text.format.schema")
    schema: dict[str, Any] = {"name": fmt.name, "schema": fmt.json_schema}
    if fmt.strict is not None:
        schema["strict"] = fmt.strict
    if fmt.description is not None:
        schema["description"] = fmt.description
    return {"type": "json_schema", "json_schema": schema}
