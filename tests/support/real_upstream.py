"""A realistic OpenAI upstream for real client libraries, run direct and through the gateway.

`openai_handler(decide)` makes a `ScriptedServer.handler` that answers each
request by its content, as OpenAI's Chat Completions would: `decide(body)`
says what the assistant says (text or tool calls), and the handler renders it
as a whole `chat.completion` object (`stream` false or absent) or as the
`chat.completion.chunk` events OpenAI streams (role chunk, tool-call deltas
with `index`/`id`/`type`/`function.name` first and `function.arguments`
fragments after, the finish chunk, the usage chunk when
`stream_options.include_usage` asks for it, `[DONE]`). Everything is
deterministic: the same request gets byte-identical answers, so a run direct
and a run through the gateway can be compared.

`run_both(server, scenario)` runs a scenario (a function of the OpenAI base
URL) once against the scripted upstream directly and once through a live
gateway fronting it, and returns both results with the request bodies the
upstream received in each run.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .live_gateway import fronting, live_gateway
from .scripted import SSE_HEADERS, Recorded, Reply, ScriptedServer, split_every

__all__ = [
    "UPSTREAM_MODEL",
    "Answer",
    "Both",
    "ToolCall",
    "arun_both",
    "completion",
    "has_tool_result",
    "normalised",
    "openai_handler",
    "run_both",
    "stream_chunks",
    "tool_names",
]

T = TypeVar("T")

#: The model name the upstream reports (OpenAI answers with the dated snapshot).
UPSTREAM_MODEL = "gpt-4o-mini-2024-07-18"
FINGERPRINT = "fp_0ba0d124f1"
CREATED = 1_735_000_000


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments)  # OpenAI's own spacing: `{"city": "Paris"}`


@dataclass(frozen=True)
class Answer:
    """What the assistant says: text, or tool calls (OpenAI sends content null with those)."""

    content: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    #: A refusal instead of content (structured outputs' way of saying no).
    refusal: str | None = None
    #: How the streamed text is cut into deltas (None: one word per delta).
    pieces: Sequence[str] | None = None

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"


def _completion_id(body: dict[str, Any]) -> str:
    """Deterministic per request content: the same request gets the same id, either way."""
    digest = 0
    for byte in json.dumps(normalised(body), sort_keys=True).encode():
        digest = (digest * 131 + byte) % (1 << 64)
    return f"chatcmpl-{digest:016x}"


def _text_pieces(answer: Answer) -> list[str]:
    """How the text streams: the answer's own cut, else a word (with its space) per delta."""
    text = answer.content or ""
    if answer.pieces is not None:
        assert "".join(answer.pieces) == text, "the pieces must make up the text"
        return list(answer.pieces)
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _choices(body: dict[str, Any]) -> int:
    return int(body.get("n") or 1)


def _logprobs(body: dict[str, Any], pieces: Sequence[str]) -> dict[str, Any] | None:
    """OpenAI's `logprobs` for these tokens, when the request asks for them (text only)."""
    if not body.get("logprobs") or not pieces:
        return None
    top = int(body.get("top_logprobs") or 0)
    content = []
    for number, piece in enumerate(pieces):
        logprob = -round(0.01 * (number % 7 + 1), 4)
        content.append(
            {
                "token": piece,
                "logprob": logprob,
                "bytes": list(piece.encode()),
                "top_logprobs": [
                    {
                        "token": piece if rank == 0 else f"{piece}{rank}",
                        "logprob": logprob - rank,
                        "bytes": list((piece if rank == 0 else f"{piece}{rank}").encode()),
                    }
                    for rank in range(top)
                ],
            }
        )
    return {"content": content, "refusal": None}


def _usage(body: dict[str, Any], answer: Answer) -> dict[str, Any]:
    prompt = len(json.dumps(body.get("messages", []))) // 4
    said = (answer.content or "") + "".join(c.arguments_json for c in answer.tool_calls)
    completion_tokens = max(1, len(said) // 4) * _choices(body)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion(body: dict[str, Any], answer: Answer) -> dict[str, Any]:
    """A whole `chat.completion` object, as OpenAI answers `stream: false`."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.content,
        "refusal": answer.refusal,
        "annotations": [],
    }
    if answer.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for call in answer.tool_calls
        ]
    logprobs = None if answer.tool_calls else _logprobs(body, _text_pieces(answer))
    return {
        "id": _completion_id(body),
        "object": "chat.completion",
        "created": CREATED,
        "model": UPSTREAM_MODEL,
        "choices": [
            {
                "index": index,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": answer.finish_reason,
            }
            for index in range(_choices(body))
        ],
        "usage": _usage(body, answer),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def _fragments(text: str, size: int = 7) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def stream_chunks(body: dict[str, Any], answer: Answer) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects OpenAI streams for `answer` (no `[DONE]`).

    With `n` > 1, each choice's chunks in turn (`index` 0, 1, ...), then the usage chunk.
    """
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    completion_id = _completion_id(body)

    def chunk(
        index: int,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        logprobs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": UPSTREAM_MODEL,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [
                {
                    "index": index,
                    "delta": delta,
                    "logprobs": logprobs,
                    "finish_reason": finish_reason,
                }
            ],
        }
        if include_usage:
            out["usage"] = None
        return out

    chunks: list[dict[str, Any]] = []
    for choice in range(_choices(body)):
        if answer.tool_calls:
            for index, call in enumerate(answer.tool_calls):
                opening: dict[str, Any] = {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
                if index == 0:
                    opening = {"role": "assistant", "content": None, **opening, "refusal": None}
                chunks.append(chunk(choice, opening))
                for piece in _fragments(call.arguments_json):
                    delta = {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                    chunks.append(chunk(choice, delta))
        elif answer.refusal is not None:
            chunks.append(chunk(choice, {"role": "assistant", "content": None, "refusal": ""}))
            for piece in _fragments(answer.refusal, 11):
                chunks.append(chunk(choice, {"refusal": piece}))
        else:
            chunks.append(chunk(choice, {"role": "assistant", "content": "", "refusal": None}))
            for piece in _text_pieces(answer):
                chunks.append(chunk(choice, {"content": piece}, None, _logprobs(body, [piece])))
        chunks.append(chunk(choice, {}, answer.finish_reason))
    if include_usage:
        usage_chunk = chunk(0, {})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = _usage(body, answer)
        chunks.append(usage_chunk)
    return chunks


def _json(value: Any) -> bytes:
    """JSON as OpenAI writes it: compact, non-ASCII as UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


#: The size of the pieces the upstream writes its body in: odd, so events, JSON values and
#: multi-byte UTF-8 characters are cut across writes.
WRITE_SIZE = 23


def openai_handler(decide: Callable[[dict[str, Any]], Answer]) -> Callable[[Recorded], Reply]:
    """A `ScriptedServer.handler` answering each request as OpenAI would, by its content."""

    def handle(recorded: Recorded) -> Reply:
        assert recorded.path == "/v1/chat/completions", recorded.path
        body = recorded.json()
        answer = decide(body)
        if body.get("stream"):
            events = [b"data: " + _json(c) + b"\n\n" for c in stream_chunks(body, answer)]
            data = b"".join(events) + b"data: [DONE]\n\n"
            return Reply(headers=dict(SSE_HEADERS), body=split_every(data, WRITE_SIZE))
        payload = _json(completion(body, answer))
        return Reply(
            headers={"Content-Type": "application/json"}, body=split_every(payload, WRITE_SIZE)
        )

    return handle


# Reading requests ------------------------------------------------------------------


def tool_names(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools") or []]


def has_tool_result(body: dict[str, Any]) -> bool:
    return any(m.get("role") == "tool" for m in body.get("messages", []))


def normalised(body: dict[str, Any]) -> dict[str, Any]:
    """A request body with a missing `stream` read as `false`.

    Why: the gateway always states `stream` to its upstream (it sends the
    value the caller's request means, and OpenAI's default is `false`), while
    a client may leave it out of a whole-answer request (the `openai` SDK's
    `chat.completions.create()` called without `stream` sends none). A missing
    `stream` and `"stream": false` mean the same to OpenAI; nothing else is
    normalised.
    """
    out = dict(body)
    out.setdefault("stream", False)
    return out


# Running a scenario both ways ------------------------------------------------------


@dataclass
class Both(Generic[T]):
    """A scenario's result direct and through the gateway, with what the upstream got."""

    direct: T
    gateway: T
    direct_bodies: list[dict[str, Any]] = field(default_factory=list)
    gateway_bodies: list[dict[str, Any]] = field(default_factory=list)

    def assert_same_requests(self) -> None:
        """The upstream received equal bodies at each step, either way."""
        assert len(self.gateway_bodies) == len(self.direct_bodies), (
            f"{len(self.direct_bodies)} requests direct, {len(self.gateway_bodies)} via gateway"
        )
        for step, (direct, relayed) in enumerate(
            zip(self.direct_bodies, self.gateway_bodies, strict=True)
        ):
            assert normalised(relayed) == normalised(direct), f"request {step} differs"


def _bodies(server: ScriptedServer, start: int) -> list[dict[str, Any]]:
    return [r.json() for r in server.requests[start:]]


def run_both(server: ScriptedServer, scenario: Callable[[str], T]) -> Both[T]:
    """`scenario(base_url)` direct to the upstream, then through a gateway in front of it."""
    start = len(server.requests)
    direct = scenario(server.url("/v1"))
    direct_bodies = _bodies(server, start)
    start = len(server.requests)
    with live_gateway(fronting(server.url("/v1"))) as gateway:
        relayed = scenario(gateway.url + "/v1")
    assert direct_bodies, "the scenario sent nothing upstream"
    return Both(direct, relayed, direct_bodies, _bodies(server, start))


async def arun_both(server: ScriptedServer, scenario: Callable[[str], Awaitable[T]]) -> Both[T]:
    """`run_both` for an async scenario."""
    start = len(server.requests)
    direct = await scenario(server.url("/v1"))
    direct_bodies = _bodies(server, start)
    start = len(server.requests)
    with live_gateway(fronting(server.url("/v1"))) as gateway:
        relayed = await scenario(gateway.url + "/v1")
    assert direct_bodies, "the scenario sent nothing upstream"
    return Both(direct, relayed, direct_bodies, _bodies(server, start))
