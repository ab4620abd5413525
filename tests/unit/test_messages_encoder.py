"""The Messages encoder, byte by byte: event order, block indexes, ids, usage, stop reasons,
the relay of an Anthropic upstream's own events, whole answers, and the error shape."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from codelinkava import errors
from codelinkava.chunk import AnswerBuilder, ChatChunk, ToolCallDelta
from codelinkava.server.backend import Call
from codelinkava.server.messages import ANTHROPIC_ERRORS, MessagesEncoder
from codelinkava.server.messages.encoder import anthropic_usage, tool_use_id
from codelinkava.server.messages.errors import anthropic_error

_EVENT = re.compile(rb"event: ([a-z_]+)\ndata: ([^\n]*)\n\n")


def events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The stream as (event, data); fails unless every byte belongs to a well-framed event
    whose name is its data's `type`."""
    out, at = [], 0
    for match in _EVENT.finditer(data):
        assert match.start() == at, data[at : match.start()]
        at = match.end()
        name, payload = match.group(1).decode(), json.loads(match.group(2))
        assert payload["type"] == name, (name, payload)
        out.append((name, payload))
    assert at == len(data), data[at:]
    return out


def encoder(**kwargs: Any) -> MessagesEncoder:
    kwargs.setdefault("prompt_estimate", 7)
    return MessagesEncoder("claude-test", request_id="req_1", **kwargs)


def stream(enc: MessagesEncoder, *batches: list[ChatChunk]) -> list[tuple[str, dict[str, Any]]]:
    data = b"".join(enc.stream_batch(batch) for batch in batches) + enc.stream_end()
    return events(data)


def names(evs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [name for name, _ in evs]


def tool(
    index: int, *, id: str | None = None, name: str | None = None, args: str | None = None
) -> ChatChunk:
    return ChatChunk(tool_calls=[ToolCallDelta(index=index, id=id, name=name, arguments=args)])


USAGE = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}


def test_a_text_answer_streams_in_anthropics_order() -> None:
    evs = stream(
        encoder(),
        [ChatChunk(role="assistant", content="Hel")],
        [ChatChunk(content="lo")],
        [ChatChunk(finish_reason="stop", usage=USAGE)],
    )
    assert names(evs) == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    message = evs[0][1]["message"]
    assert message["id"].startswith("msg_") and len(message["id"]) > 8
    assert message | {"id": None} == {
        "id": None,
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 7, "output_tokens": 0},
    }
    assert evs[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert [e[1]["delta"] for e in evs[3:5]] == [
        {"type": "text_delta", "text": "Hel"},
        {"type": "text_delta", "text": "lo"},
    ]
    assert evs[5][1] == {"type": "content_block_stop", "index": 0}
    assert evs[6][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"input_tokens": 12, "output_tokens": 3},
    }


def test_text_then_two_tool_calls_are_three_blocks_in_turn() -> None:
    evs = stream(
        encoder(),
        [ChatChunk(role="assistant", content="Looking.")],
        [tool(0, id="call_a", name="get_weather", args=""), tool(0, args='{"city":')],
        [tool(0, args=' "Paris"}')],
        [tool(1, id="call_b", name="get_time", args='{"tz": "CET"}')],
        [ChatChunk(finish_reason="tool_calls")],
    )
    starts = [e for n, e in evs if n == "content_block_start"]
    stops = [e["index"] for n, e in evs if n == "content_block_stop"]
    assert [s["index"] for s in starts] == [0, 1, 2] and stops == [0, 1, 2]
    assert starts[1]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_call_a",
        "name": "get_weather",
        "input": {},
    }
    assert starts[2]["content_block"]["id"] == "toolu_call_b"
    deltas: dict[int, str] = {}
    for name, payload in evs:
        if name == "content_block_delta" and payload["delta"]["type"] == "input_json_delta":
            deltas[payload["index"]] = (
                deltas.get(payload["index"], "") + payload["delta"]["partial_json"]
            )
    assert {i: json.loads(text) for i, text in deltas.items()} == {
        1: {"city": "Paris"},
        2: {"tz": "CET"},
    }
    # each block stops before the next starts: never interleaved
    order = [
        (n, e.get("index"))
        for n, e in evs
        if n.startswith("content_block_") and n != "content_block_delta"
    ]
    assert order == [
        ("content_block_start", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_stop", 2),
    ]
    assert evs[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_arguments_before_the_name_wait_for_it() -> None:
    evs = stream(
        encoder(),
        [tool(0, id="call_x", args='{"a"')],
        [tool(0, name="f", args=": 1}")],
        [ChatChunk(finish_reason="tool_calls")],
    )
    start = next(e for n, e in evs if n == "content_block_start")
    assert start["content_block"]["name"] == "f"
    partial = "".join(e["delta"]["partial_json"] for n, e in evs if n == "content_block_delta")
    assert json.loads(partial) == {"a": 1}


def test_an_answer_with_no_content_has_no_blocks() -> None:
    evs = stream(encoder(), [ChatChunk(finish_reason="length")])
    assert names(evs) == ["message_start", "ping", "message_delta", "message_stop"]
    assert evs[2][1]["delta"]["stop_reason"] == "max_tokens"
    assert evs[2][1]["usage"] == {"input_tokens": 7, "output_tokens": 0}  # our own count


@pytest.mark.parametrize(
    ("finish", "data", "reason", "sequence"),
    [
        pytest.param("stop", None, "end_turn", None, id="stop"),
        pytest.param("length", None, "max_tokens", None, id="length"),
        pytest.param("content_filter", None, "refusal", None, id="content-filter"),
        pytest.param(
            "stop",
            {"choices": [{"index": 0, "finish_reason": "stop", "stop_reason": "END"}]},
            "stop_sequence",
            "END",
            id="vllm-stop-sequence",
        ),
        pytest.param(
            "stop",
            {"choices": [{"index": 0, "finish_reason": "stop", "stop_reason": 2}]},
            "end_turn",
            None,
            id="stop-token-id",
        ),
    ],
)
def test_stop_reasons(finish: str, data: Any, reason: str, sequence: str | None) -> None:
    enc = encoder(stop_sequences=["END"])
    evs = stream(enc, [ChatChunk(content="x")], [ChatChunk(finish_reason=finish, data=data)])
    assert evs[-2][1]["delta"] == {"stop_reason": reason, "stop_sequence": sequence}


def test_usage_is_mapped_back_the_anthropic_way() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 30},
        "cache_creation_input_tokens": 20,
    }
    assert anthropic_usage(usage, 0, 0) == {
        "input_tokens": 50,
        "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 30,
        "output_tokens": 9,
    }
    assert anthropic_usage(None, pieces=4, prompt_estimate=11) == {
        "input_tokens": 11,
        "output_tokens": 4,
    }


def test_an_error_after_the_start_is_an_error_event() -> None:
    enc = encoder()
    head = enc.stream_batch([ChatChunk(content="Hi")])
    tail = enc.stream_error(errors.RateLimitError("slow down", retry_after=3))
    evs = events(head + tail)
    assert evs[-1] == (
        "error",
        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
    )
    lost = events(encoder().stream_error(errors.ProviderConnectionError("refused")))
    assert lost[0][1]["error"]["type"] == "api_error"


def test_tool_ids_keep_the_upstreams_behind_toolu() -> None:
    assert tool_use_id("call_abc") == "toolu_call_abc"
    assert tool_use_id("toolu_01XYZ") == "toolu_01XYZ"
    assert re.fullmatch(r"toolu_[0-9a-f]{24}", tool_use_id(None))


def test_a_whole_answer_is_one_message() -> None:
    answer = AnswerBuilder()
    answer.extend(
        [
            ChatChunk(role="assistant", content="Sure."),
            tool(0, id="call_a", name="get_weather", args='{"city": "Oslo"}'),
            tool(1, id="call_b", name="broken", args="{not json"),
            ChatChunk(finish_reason="tool_calls", usage=USAGE),
        ]
    )
    enc = encoder()
    body = json.loads(enc.whole(answer, None))
    assert body["id"].startswith("msg_")
    assert body["content"] == [
        {"type": "text", "text": "Sure."},
        {
            "type": "tool_use",
            "id": "toolu_call_a",
            "name": "get_weather",
            "input": {"city": "Oslo"},
        },
        {"type": "tool_use", "id": "toolu_call_b", "name": "broken", "input": "{not json"},
    ]
    assert body["stop_reason"] == "tool_use" and body["stop_sequence"] is None
    assert body["usage"] == {"input_tokens": 12, "output_tokens": 3}
    assert (b"request-id", b"req_1") in enc.whole_headers(b"{}")


# An Anthropic upstream's own events, relayed ---------------------------------------------------


async def _no_batches() -> Any:
    if False:
        yield []


def native_call() -> Call:
    return Call(
        batches=_no_batches(),
        deployment="native",
        relays_openai_chunks=False,
        relays_anthropic_events=True,
    )


def test_a_native_upstreams_events_go_out_as_it_sent_them() -> None:
    raws = [
        '{"type": "message_start", "message": {"id": "msg_up", "usage": {"input_tokens": 5}}}',
        '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}',
        '{"type":"ping"}',
    ]
    chunks = [ChatChunk(data=json.loads(raw), raw=raw) for raw in raws]
    chunks[1].content = "Hi"
    enc = encoder()
    enc.bind(native_call())
    out = enc.stream_batch(chunks) + enc.stream_end()
    assert out == b"".join(
        b"event: " + json.loads(raw)["type"].encode() + b"\ndata: " + raw.encode() + b"\n\n"
        for raw in raws
    )
    assert enc.pieces == 1
    whole = '{"type": "message", "id": "msg_up", "content": []}'
    assert (
        enc.whole(AnswerBuilder(), ChatChunk(data=json.loads(whole), raw=whole)) == whole.encode()
    )


def test_a_relayed_event_never_breaks_the_framing() -> None:
    enc = encoder()
    enc.bind(native_call())
    raw = '{"type": "message_stop",\n "x": 1}'
    hostile = {"type": "a\nevent: injected"}
    out = enc.stream_batch(
        [
            ChatChunk(data=json.loads(raw), raw=raw),
            ChatChunk(data=hostile, raw=json.dumps(hostile)),
            ChatChunk(content="made by a wrapper"),  # nothing of the upstream's: not relayed
        ]
    )
    assert [name for name, _ in _loose(out)] == ["message_stop", "message"]


def _loose(data: bytes) -> list[tuple[str, str]]:
    return [(m.group(1).decode(), m.group(2).decode()) for m in _EVENT.finditer(data)]


# The error shape ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(
            (400, "invalid_request_error", "invalid_request"),
            (400, "invalid_request_error"),
            id="400",
        ),
        pytest.param(
            (401, "authentication_error", "invalid_api_key"),
            (401, "authentication_error"),
            id="401",
        ),
        pytest.param((403, "upstream_error", "x"), (403, "permission_error"), id="403"),
        pytest.param(
            (404, "invalid_request_error", "model_not_found"),
            (404, "not_found_error"),
            id="404-model",
        ),
        pytest.param((404, "not_found", "not_found"), (404, "not_found_error"), id="404"),
        pytest.param(
            (413, "invalid_request_error", "request_too_large"),
            (413, "request_too_large"),
            id="413-ours",
        ),
        pytest.param(
            (413, "too_big", "request_too_large"), (413, "request_too_large"), id="413-any"
        ),
        pytest.param(
            (429, "rate_limit_error", "upstream_rate_limited"), (429, "rate_limit_error"), id="429"
        ),
        pytest.param(
            (503, "overloaded_error", "overloaded"), (529, "overloaded_error"), id="our-503"
        ),
        pytest.param((502, "upstream_error", "upstream_unreachable"), (502, "api_error"), id="502"),
        pytest.param(
            (529, "overloaded_error", "upstream_status_529"),
            (529, "overloaded_error"),
            id="529-relayed",
        ),
        pytest.param((400, "billing_error", "x"), (400, "billing_error"), id="specific-kept"),
        pytest.param((500, "server_error", "internal"), (500, "api_error"), id="500"),
        pytest.param(
            (405, "invalid_request_error", "method_not_allowed"),
            (405, "invalid_request_error"),
            id="405",
        ),
    ],
)
def test_errors_take_anthropics_types_and_statuses(
    given: tuple[int, str, str], expected: tuple[int, str]
) -> None:
    assert anthropic_error(*given) == expected


def test_the_shape_names_the_field_and_carries_a_request_id() -> None:
    response = ANTHROPIC_ERRORS(
        400, "must be an object", "invalid_request_error", "x", param="messages.0.content.1.input"
    )
    body = json.loads(bytes(response.body))
    assert body["type"] == "error"
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": "messages.0.content.1.input: must be an object",
    }
    assert body["request_id"].startswith("req_")
    assert response.headers["request-id"] == body["request_id"]
