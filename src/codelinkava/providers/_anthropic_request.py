"""OpenAI-shaped chat messages and fields -> an Anthropic Messages request body. Pure.

Every caller of the library (and every gateway route) speaks OpenAI's chat
messages; this module says what each part of them is in Messages terms, and
refuses by name what has no honest translation, so nothing is dropped on the
way: `system`/`developer` messages become `system` (one that comes after the
conversation has begun stays in its place, as a `system` turn, when the call
carries Anthropic's `mid-conversation-system` beta: that is what a Messages
caller sent, Claude Code among them); text and image parts
become blocks (their extra keys, `cache_control`, kept); assistant
`tool_calls` become `tool_use` blocks; `tool` messages become `tool_result`
blocks in a user turn; turns of one role in a row are merged, as Messages
wants. Content blocks already in Anthropic's own shape (`image` with a
`source`, `document`, `thinking`, `tool_use`, `tool_result`, ...) travel as
sent, for a caller that speaks Messages natively.

The other fields are `_anthropic_fields`'. Each error is an
`InvalidRequestError` whose `param` names the field at fault
(`messages[2].tool_calls[0].function.arguments`, `response_format`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequestError
from ._anthropic_fields import REQUEST_FIELDS, translate_fields

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "MID_CONVERSATION_SYSTEM",
    "REQUEST_FIELDS",
    "messages_body",
    "translate_fields",
    "translate_messages",
]

#: The beta (by its name, whatever its date) under which Messages takes `system` turns.
MID_CONVERSATION_SYSTEM = "mid-conversation-system-"
#: Messages requires `max_tokens`; this is sent when the caller gives none.
DEFAULT_MAX_TOKENS = 4096
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


def _refuse(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def messages_body(
    model: str, messages: list[dict[str, Any]], fields: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The Messages request body for this call, and the `anthropic-beta` values to send."""
    translated, betas = translate_fields(fields)
    in_place = any(beta.startswith(MID_CONVERSATION_SYSTEM) for beta in betas)
    system, turns = translate_messages(messages, system_turns=in_place)
    body: dict[str, Any] = {"model": model, "max_tokens": DEFAULT_MAX_TOKENS}
    if system is not None:
        body["system"] = system
    body["messages"] = turns
    body.update(translated)
    return body, betas


# messages ---------------------------------------------------------------------------


def translate_messages(
    messages: list[dict[str, Any]], *, system_turns: bool = False
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """(`system`, `messages`) for checked OpenAI chat messages; with `system_turns` a system
    message after the first turn stays a `system` turn in its place."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        at = f"messages[{index}]"
        _check_keys(message, at)
        role = message["role"]
        if role in ("system", "developer") and system_turns and turns:
            blocks = _system_blocks(message.get("content"), at)
            turns.append({"role": "system", "content": _system(blocks) or ""})
            continue
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
    """Refuse a key that would change the answer; a tool message's `name` repeats what
    its tool_call_id already says, so it goes."""
    for key, value in message.items():
        if key == "name" and message.get("role") == "tool":
            continue
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
