"""Content blocks, tools and tool results of a Messages request, checked and translated.

Each method takes one block and its path (`messages.1.content.0`), returns its
OpenAI counterpart (a content part, a tool call, a `tool` message, a function
tool), and raises `InvalidRequestError` naming the path of what it cannot take.
With `native` (the upstream speaks Messages itself) what has no counterpart
travels as sent: Anthropic's keys (`cache_control`, `citations`) stay on the
part, blocks of other types are passed on as their own dicts. Pure, no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from codelinkava.errors import InvalidRequestError

__all__ = ["Blocks", "joined", "kind_of"]

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_TEXT_KEYS = frozenset({"type", "text"})
_IMAGE_KEYS = frozenset({"type", "source"})
_TOOL_USE_KEYS = frozenset({"type", "id", "name", "input"})
_TOOL_RESULT_KEYS = frozenset({"type", "tool_use_id", "content", "is_error"})
_TOOL_KEYS = frozenset({"type", "name", "description", "input_schema", "strict"})


class Blocks:
    """The blocks of one request: checked, translated, named by path when refused."""

    def __init__(self, native: bool) -> None:
        self.native = native

    def text(self, block: Any, at: str, kinds: tuple[str, ...] = ("text",)) -> dict[str, Any]:
        kind = kind_of(block, at)
        if kind not in kinds:
            raise InvalidRequestError(f"expected a text block, not {kind!r}", param=f"{at}.type")
        text = block.get("text")
        if not isinstance(text, str):
            raise InvalidRequestError("a text block's `text` must be a string", param=f"{at}.text")
        part: dict[str, Any] = {"type": "text", "text": text}
        return self.extras(block, part, at, _TEXT_KEYS)

    def image(self, block: dict[str, Any], at: str) -> dict[str, Any]:
        source = block.get("source")
        if not isinstance(source, dict):
            raise InvalidRequestError(
                "an image block needs a `source` object", param=f"{at}.source"
            )
        kind = source.get("type")
        if kind == "base64":
            media_type, data = source.get("media_type"), source.get("data")
            if media_type not in _IMAGE_TYPES:
                raise InvalidRequestError(
                    f"must be one of {', '.join(sorted(_IMAGE_TYPES))}",
                    param=f"{at}.source.media_type",
                )
            if not isinstance(data, str) or not data:
                raise InvalidRequestError("must be base64 text", param=f"{at}.source.data")
            url = f"data:{media_type};base64,{data}"
        elif kind == "url":
            given = source.get("url")
            url = given if isinstance(given, str) else ""
            if url.partition(":")[0].lower() not in ("http", "https"):
                raise InvalidRequestError("must be an http(s) URL", param=f"{at}.source.url")
        elif self.native:
            return dict(block)  # a `file` source, say: the upstream knows it
        else:
            raise InvalidRequestError(
                f"image sources of type {kind!r} cannot be sent on; use base64 or url",
                param=f"{at}.source.type",
            )
        part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
        return self.extras(block, part, at, _IMAGE_KEYS)

    def tool_use(self, block: dict[str, Any], at: str) -> dict[str, Any]:
        call_id, name, arguments = block.get("id"), block.get("name"), block.get("input")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequestError("a tool_use block needs an `id`", param=f"{at}.id")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError("a tool_use block needs a `name`", param=f"{at}.name")
        if not isinstance(arguments, dict):
            raise InvalidRequestError("must be an object", param=f"{at}.input")
        call: dict[str, Any] = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
        }
        return self.extras(block, call, at, _TOOL_USE_KEYS)

    def tool_result(self, block: dict[str, Any], at: str, offered: set[str]) -> dict[str, Any]:
        call_id = block.get("tool_use_id")
        if not isinstance(call_id, str) or call_id not in offered:
            raise InvalidRequestError(
                f"tool_result block for tool_use id {call_id!r} has no matching tool_use block "
                "in the message before it",
                param=f"{at}.tool_use_id",
            )
        content = self.result_content(block.get("content"), f"{at}.content")
        message: dict[str, Any] = {"role": "tool", "tool_call_id": call_id, "content": content}
        is_error = block.get("is_error")
        if is_error is not None and not isinstance(is_error, bool):
            raise InvalidRequestError("must be true or false", param=f"{at}.is_error")
        if is_error and self.native:
            message["is_error"] = True
        elif is_error:
            message["content"] = "Error: " + _text_of(content)
        return self.extras(block, message, at, _TOOL_RESULT_KEYS)

    def result_content(self, content: Any, at: str) -> str | list[dict[str, Any]]:
        """A tool result's text (a string; a list of parts where a Messages upstream takes
        images or cache_control in it)."""
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        if not isinstance(content, list):
            raise InvalidRequestError("must be a string or a list of blocks", param=at)
        parts = []
        for k, block in enumerate(content):
            kind = kind_of(block, f"{at}.{k}")
            if kind == "text":
                parts.append(self.text(block, f"{at}.{k}"))
            elif self.native:
                parts.append(self.image(block, f"{at}.{k}") if kind == "image" else dict(block))
            else:
                raise InvalidRequestError(
                    f"a tool result sent to this upstream carries text only, not {kind!r}",
                    param=f"{at}.{k}.type",
                )
        if not self.native or all(set(part) == {"type", "text"} for part in parts):
            return "\n".join(part["text"] for part in parts)
        return parts

    def tool(self, tool: dict[str, Any], at: str) -> dict[str, Any]:
        kind = tool.get("type")
        if kind not in (None, "custom"):
            if self.native:
                return dict(tool)  # a server tool (web search, bash...): the upstream runs it
            raise InvalidRequestError(
                f"tools of type {kind!r} run on Anthropic's servers; this upstream takes "
                "custom tools only",
                param=f"{at}.type",
            )
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError("a tool needs a `name`", param=f"{at}.name")
        if not isinstance(schema, dict):
            raise InvalidRequestError(
                "a tool needs an `input_schema` object", param=f"{at}.input_schema"
            )
        function: dict[str, Any] = {"name": name, "parameters": schema}
        description = tool.get("description")
        if description is not None:
            if not isinstance(description, str):
                raise InvalidRequestError("must be a string", param=f"{at}.description")
            function["description"] = description
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        return self.extras(tool, {"type": "function", "function": function}, at, _TOOL_KEYS)

    def foreign(self, block: dict[str, Any], at: str, kind: str) -> dict[str, Any]:
        """A block with no OpenAI counterpart (thinking, document, search_result, ...)."""
        if self.native:
            return dict(block)
        raise InvalidRequestError(
            f"{kind!r} blocks cannot be sent to an upstream that does not speak Anthropic's "
            "Messages",
            param=f"{at}.type",
        )

    def extras(
        self, block: dict[str, Any], out: dict[str, Any], at: str, known: frozenset[str]
    ) -> dict[str, Any]:
        """`out` with the block's other keys (cache_control, citations...): kept for a
        Messages upstream, refused by name for any other."""
        for key, value in block.items():
            if key in known:
                continue
            if not self.native:
                raise InvalidRequestError(
                    f"`{key}` is Anthropic's own, and this upstream does not speak Anthropic's "
                    "Messages: it cannot be honoured",
                    param=f"{at}.{key}",
                )
            out[key] = value
        return out


def kind_of(block: Any, at: str) -> str:
    if not isinstance(block, dict):
        raise InvalidRequestError("a content block must be an object", param=at)
    kind = block.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidRequestError("a content block needs a `type`", param=f"{at}.type")
    return kind


def joined(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One plain text part as a string (what every upstream takes), else the parts."""
    if len(parts) == 1 and set(parts[0]) == {"type", "text"}:
        text: str = parts[0]["text"]
        return text
    return parts


def _text_of(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
