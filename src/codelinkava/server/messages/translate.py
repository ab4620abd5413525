"""A Messages request in the backends' terms: OpenAI chat messages and fields. Pure, no I/O.

What maps, and how:

- `system` (a string or text blocks) -> the first message, role `system`;
  several blocks are joined by a blank line.
- a `system` turn inside `messages` (Anthropic's mid-conversation system
  messages, which Claude Code sends) -> an OpenAI `system` message at that
  place, its text blocks joined the same way; one between an assistant's
  tool calls and their results comes right after the `tool` messages.
- user content: `text` -> text parts, `image` (a base64 or URL source) -> an
  `image_url` part (base64 as a `data:` URL); `tool_result` blocks -> `tool`
  messages (`tool_call_id`, their text), ahead of the turn's other blocks, as
  OpenAI wants a tool call's results right after it. `is_error` becomes an
  `Error: ` prefix (or stays `is_error` on the message for a Messages upstream).
- assistant content: `text` -> content, `tool_use` -> `tool_calls` (arguments:
  the JSON text of `input`).
- `tools` -> function tools (`input_schema` is the `parameters`; an empty list
  is no `tools`, as OpenAI refuses `[]`), `tool_choice`
  auto / any / tool / none -> "auto" / "required" / the named function /
  "none", `disable_parallel_tool_use` -> `parallel_tool_calls: false`,
  `stop_sequences` -> `stop`, `metadata.user_id` -> `user`; `max_tokens`,
  `temperature`, `top_p`, `top_k`, `stream` keep their names.

A single text block is sent as a plain string (what every upstream takes),
several as a list of text parts.

What does not map is refused with an `InvalidRequestError` naming its path
(`messages.2.content.0.cache_control`) -- unless the upstream speaks Messages
itself (`native`): then Anthropic-only fields (`thinking`, `service_tier`,
unknown ones) go into the fields under their own names, `cache_control` stays
on the part, message or tool it was on, blocks with no OpenAI counterpart
(`thinking`, `document`, ...) travel as their own dicts among the parts,
server tools as their own dicts among the tools, and `anthropic-beta` as the
field `anthropic_beta`. The provider in front of such an upstream writes them
back as they came.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codelinkava.errors import InvalidRequestError

from .blocks import Blocks, joined, kind_of
from .wire import CountTokensRequest, MessageParam, MessagesRequest

__all__ = ["ANTHROPIC_ONLY_FIELDS", "Translation", "translate"]

#: Messages fields with no counterpart in OpenAI's chat API: forwarded to an upstream that
#: speaks Messages, refused anywhere else. (Any other unknown field is treated the same.)
ANTHROPIC_ONLY_FIELDS = frozenset(
    {
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "output_format",
        "output_config",
        "inference_geo",
        "cache_control",
        "speed",
        "diagnostics",
    }
)
_CHOICE_KEYS = frozenset({"type", "name", "disable_parallel_tool_use"})


@dataclass
class Translation:
    """The request in OpenAI's terms."""

    messages: list[dict[str, Any]]
    fields: dict[str, Any]


def translate(
    body: MessagesRequest | CountTokensRequest, *, native: bool, betas: Sequence[str] = ()
) -> Translation:
    """The body as OpenAI chat messages and fields; `native`: the upstream speaks Messages."""
    blocks = Blocks(native)
    messages = _system(blocks, body.system)
    messages.extend(_conversation(blocks, body.messages))
    fields: dict[str, Any] = {}
    # No tools (`[]`, what Claude Code sends with `--tools ""`) is no `tools` for OpenAI,
    # which refuses an empty list; a Messages upstream gets the list as sent.
    if body.tools or (body.tools is not None and native):
        fields["tools"] = [blocks.tool(tool, f"tools.{i}") for i, tool in enumerate(body.tools)]
    if body.tool_choice is not None:
        fields.update(_tool_choice(body.tool_choice, bool(body.tools)))
    if isinstance(body, MessagesRequest):
        fields.update(_sampling(body))
    for name, value in (body.model_extra or {}).items():
        if not native:
            raise InvalidRequestError(_not_honoured(name), param=name)
        fields[name] = value
    if native and betas:
        fields["anthropic_beta"] = list(betas)
    return Translation(messages, fields)


def _not_honoured(name: str) -> str:
    if name in ANTHROPIC_ONLY_FIELDS:
        return (
            f"`{name}` is Anthropic's own, and the upstream that answers this model does not "
            "speak Anthropic's Messages: it cannot be honoured"
        )
    return f"unknown field `{name}`: it is not part of the Messages API this gateway serves"


def _sampling(body: MessagesRequest) -> dict[str, Any]:
    fields: dict[str, Any] = {"max_tokens": body.max_tokens}
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(body, name)
        if value is not None:
            fields[name] = value
    if body.stop_sequences:
        fields["stop"] = list(body.stop_sequences)
    if body.metadata is not None:
        for key, value in body.metadata.items():
            if key != "user_id":
                raise InvalidRequestError(
                    f"unknown field `{key}`: metadata takes `user_id` only",
                    param=f"metadata.{key}",
                )
            if value is not None and not isinstance(value, str):
                raise InvalidRequestError("must be a string", param="metadata.user_id")
            if value:
                fields["user"] = value
    return fields


def _tool_choice(choice: dict[str, Any], has_tools: bool) -> dict[str, Any]:
    """OpenAI's `tool_choice` (and `parallel_tool_calls`) for Anthropic's."""
    for key in choice:
        if key not in _CHOICE_KEYS:
            raise InvalidRequestError(f"unknown field `{key}`", param=f"tool_choice.{key}")
    kind = choice.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        raise InvalidRequestError(
            f"must be one of auto, any, tool, none (got {kind!r})", param="tool_choice.type"
        )
    if not has_tools:
        if kind in ("auto", "none"):
            return {}  # without tools both mean a text answer, which is what comes
        raise InvalidRequestError(f"`{kind}` needs tools, and none were given", param="tool_choice")
    fields: dict[str, Any] = {}
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(
                "a tool choice of type `tool` names the tool", param="tool_choice.name"
            )
        fields["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        fields["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    parallel = choice.get("disable_parallel_tool_use")
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidRequestError(
            "must be true or false", param="tool_choice.disable_parallel_tool_use"
        )
    if parallel and kind != "none":
        fields["parallel_tool_calls"] = False
    return fields


def _system(blocks: Blocks, system: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if system is None or system == "" or system == []:
        return []
    return [_system_message(blocks, system, "system")]


def _system_message(blocks: Blocks, content: str | list[dict[str, Any]], at: str) -> dict[str, Any]:
    """The system prompt, or a system turn inside the conversation: text only."""
    if isinstance(content, str):
        return {"role": "system", "content": content}
    parts = [blocks.text(block, f"{at}.{i}", kinds=("text",)) for i, block in enumerate(content)]
    if blocks.native:
        return {"role": "system", "content": parts}
    return {"role": "system", "content": "\n\n".join(part["text"] for part in parts)}


def _conversation(blocks: Blocks, turns: list[MessageParam]) -> list[dict[str, Any]]:
    if turns[0].role != "user":
        raise InvalidRequestError(
            "the first message must use the `user` role", param="messages.0.role"
        )
    messages: list[dict[str, Any]] = []
    offered: set[str] = set()  # the tool_use ids of the turn before
    held: list[dict[str, Any]] = []  # system turns between tool calls and their results
    last = len(turns) - 1
    for i, turn in enumerate(turns):
        where = f"messages.{i}"
        if turn.content in ("", []):
            if turn.role == "assistant" and i == last:
                break  # an empty final turn asks for nothing: the answer follows anyway
            raise InvalidRequestError(
                "all messages must have non-empty content except for an optional final "
                "assistant message",
                param=f"{where}.content",
            )
        if turn.role == "system":
            system = _system_message(blocks, turn.content, f"{where}.content")
            # OpenAI wants a call's results right after it: a note between the two comes
            # after the results, as the turn's own text does.
            (held if offered and not blocks.native else messages).append(system)
        elif turn.role == "user":
            answered = _user(blocks, turn.content, where, offered)
            results = sum(1 for message in answered if message["role"] == "tool")
            messages.extend([*answered[:results], *held, *answered[results:]])
            held, offered = [], set()
        else:
            messages.extend(held)
            held = []
            message, offered = _assistant(blocks, turn.content, where)
            messages.append(message)
    messages.extend(held)
    return messages


def _user(
    blocks: Blocks, content: str | list[dict[str, Any]], where: str, offered: set[str]
) -> list[dict[str, Any]]:
    """The turn's tool results as `tool` messages, then the rest as one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        at = f"{where}.content.{j}"
        kind = kind_of(block, at)
        if kind == "tool_result":
            results.append(blocks.tool_result(block, at, offered))
        elif kind == "image":
            parts.append(blocks.image(block, at))
        elif kind == "text":
            parts.append(blocks.text(block, at))
        elif kind == "tool_use":
            raise InvalidRequestError("a user turn carries no tool_use blocks", param=f"{at}.type")
        else:
            parts.append(blocks.foreign(block, at, kind))
    if parts:
        results.append({"role": "user", "content": joined(parts)})
    return results


def _assistant(
    blocks: Blocks, content: str | list[dict[str, Any]], where: str
) -> tuple[dict[str, Any], set[str]]:
    """The assistant message, and the ids of the tool calls it made."""
    if isinstance(content, str):
        return {"role": "assistant", "content": content}, set()
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        at = f"{where}.content.{j}"
        kind = kind_of(block, at)
        if kind == "text":
            parts.append(blocks.text(block, at))
        elif kind == "tool_use":
            calls.append(blocks.tool_use(block, at))
        elif kind in ("image", "tool_result"):
            raise InvalidRequestError(
                f"an assistant turn carries no {kind} blocks", param=f"{at}.type"
            )
        else:
            parts.append(blocks.foreign(block, at, kind))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": joined(parts) if parts else None,
    }
    if calls:
        message["tool_calls"] = calls
    return message, {call["id"] for call in calls}
