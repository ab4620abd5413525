"""The typed chunk: what a wire format's parser yields, whole (text is one view of it).

A chunk is one step of an answer as the model produced it: some text, a role,
pieces of tool calls, a refusal, logprobs, the reason it finished, the token
usage. `data` keeps the chunk's whole JSON object and `raw` the exact text it
came in, so a relay can forward what the upstream sent without re-encoding it.

`AnswerBuilder` folds chunks into the finished message -- tool-call argument
fragments joined per call -- for callers that want the answer whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AnswerBuilder",
    "ChatChunk",
    "ToolCall",
    "ToolCallDelta",
    "commits_answer",
    "usage_counts",
]


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of one tool call: the first piece names it, later ones add argument text."""

    index: int
    id: str | None = None
    type: str | None = None
    name: str | None = None
    arguments: str | None = None

    @classmethod
    def from_wire(cls, value: Mapping[str, Any], position: int = 0) -> ToolCallDelta:
        function = value.get("function")
        if not isinstance(function, Mapping):
            function = {}
        index = value.get("index")
        return cls(
            index=index if type(index) is int else position,
            id=_str_or_none(value.get("id")),
            type=_str_or_none(value.get("type")),
            name=_str_or_none(function.get("name")),
            arguments=_str_or_none(function.get("arguments")),
        )

    def to_wire(self) -> dict[str, Any]:
        """The OpenAI shape: `{"index", "id", "type", "function": {"name", "arguments"}}`."""
        out: dict[str, Any] = {"index": self.index}
        if self.id is not None:
            out["id"] = self.id
        if self.type is not None:
            out["type"] = self.type
        function: dict[str, Any] = {}
        if self.name is not None:
            function["name"] = self.name
        if self.arguments is not None:
            function["arguments"] = self.arguments
        out["function"] = function
        return out


@dataclass(slots=True)
class ToolCall:
    """A whole tool call: `arguments` is the JSON text the model wrote (parse it yourself)."""

    id: str
    name: str
    arguments: str
    type: str = "function"

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(slots=True)
class ChatChunk:
    """One chunk of an answer. Every field but `index` is None when the chunk lacks it."""

    content: str | None = None
    role: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    refusal: str | None = None
    logprobs: Any = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    index: int = 0
    #: The chunk's whole JSON object (id, model, system_fingerprint, every choice).
    data: dict[str, Any] | None = field(default=None, repr=False)
    #: The exact JSON text as the upstream sent it, when it came over a wire.
    raw: str | None = field(default=None, repr=False)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class AnswerBuilder:
    """Folds chunks into one assistant message, finish_reason and usage."""

    def __init__(self) -> None:
        self.role = "assistant"
        self.parts: list[str] = []
        self.refusal_parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.logprobs: list[Any] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self.chunks = 0

    def add(self, chunk: ChatChunk) -> None:
        self.chunks += 1
        if chunk.role:
            self.role = chunk.role
        if chunk.content:
            self.parts.append(chunk.content)
        if chunk.refusal:
            self.refusal_parts.append(chunk.refusal)
        if chunk.tool_calls:
            for delta in chunk.tool_calls:
                call = self._calls.setdefault(
                    delta.index, {"id": None, "type": "function", "name": "", "arguments": []}
                )
                if delta.id:
                    call["id"] = delta.id
                if delta.type:
                    call["type"] = delta.type
                if delta.name:
                    call["name"] += delta.name
                if delta.arguments:
                    call["arguments"].append(delta.arguments)
        if chunk.logprobs is not None:
            content = chunk.logprobs.get("content") if isinstance(chunk.logprobs, dict) else None
            if isinstance(content, list):
                self.logprobs.extend(content)
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage

    def extend(self, chunks: Iterable[ChatChunk]) -> None:
        for chunk in chunks:
            self.add(chunk)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(
                id=call["id"] or f"call_{index}",
                name=call["name"],
                arguments="".join(call["arguments"]),
                type=call["type"],
            )
            for index, call in sorted(self._calls.items())
        ]

    def message(self) -> dict[str, Any]:
        """The assistant message in OpenAI's shape."""
        calls = self.tool_calls
        message: dict[str, Any] = {
            "role": self.role,
            "content": self.text if (self.parts or not calls) else None,
        }
        if self.refusal_parts:
            message["refusal"] = "".join(self.refusal_parts)
        if calls:
            message["tool_calls"] = [call.to_wire() for call in calls]
        return message


def commits_answer(chunks: Iterable[ChatChunk]) -> bool:
    """Whether these chunks commit the answer to the upstream that sent them: text, a
    tool call, a refusal, the end, or usage. The one rule for every failover (the router,
    `RetryProvider`, the gateway's hold-back of the first chunks).

    A role-only opening chunk does not: an upstream that fails right after it has given
    the caller nothing, so the request may still go elsewhere, and a gateway may still
    answer with a real HTTP error instead of a 200 stream.
    """
    return any(
        chunk.content
        or chunk.tool_calls
        or chunk.refusal
        or chunk.finish_reason
        or chunk.usage is not None
        for chunk in chunks
    )


def usage_counts(usage: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """(prompt tokens, completion tokens) as an upstream's OpenAI-shaped usage reports
    them, each None when missing or not an integer. The one reading of `usage` for the
    router's limits, the gateway's metrics and the usage it reports."""
    if not usage:
        return None, None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (
        prompt if type(prompt) is int else None,
        completion if type(completion) is int else None,
    )
