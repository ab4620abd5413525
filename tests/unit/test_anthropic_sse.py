"""Anthropic's Messages stream decoder: one chunk per event, typed fields, typed errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codelinkava import errors
from codelinkava.chunk import AnswerBuilder, ChatChunk, ToolCallDelta, commits_answer
from codelinkava.formats.anthropic_sse import (
    ANTHROPIC_SSE,
    STOP_REASONS,
    AnthropicSSEDecoder,
    openai_usage,
)
from support.anthropic_streams import (
    TEXT_EVENTS,
    TEXT_STREAM,
    THINKING_STREAM,
    TOOL_ARGUMENTS,
    TOOL_ID,
    TOOL_STREAM,
    TOOL_TEXT,
    WHOLE_TOOL_MESSAGE,
    error_body,
    error_event,
)

Seen = tuple[Any, ...]


def decode(*pieces: bytes) -> list[ChatChunk]:
    decoder = AnthropicSSEDecoder()
    out = [chunk for piece in pieces for chunk in decoder.chunks(piece)]
    decoder.close()
    return out


def seen(chunks: list[ChatChunk]) -> list[Seen]:
    """Everything a chunk says, to compare two decodings of one stream."""
    return [
        (
            c.raw,
            c.data,
            c.content,
            c.role,
            [(t.index, t.id, t.type, t.name, t.arguments) for t in c.tool_calls or []],
            c.finish_reason,
            c.usage,
        )
        for c in chunks
    ]


def event(name: str, payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"event: {name}\ndata: {data}\n\n".encode()


def data_lines(stream: bytes) -> list[str]:
    return [line[6:] for line in stream.decode().split("\n") if line.startswith("data: ")]


START = event(
    "message_start",
    {"type": "message_start", "message": {"role": "assistant", "usage": {"input_tokens": 3}}},
)
STOP = event("message_stop", {"type": "message_stop"})


# the documented streams ----------------------------------------------------------------


def test_the_documented_text_stream_is_one_chunk_per_event_with_its_exact_text() -> None:
    chunks = decode(TEXT_STREAM)
    assert [c.data["type"] for c in chunks if c.data] == list(TEXT_EVENTS)
    assert [c.raw for c in chunks] == data_lines(TEXT_STREAM)
    assert [c.content for c in chunks] == [None, None, None, "Hello", "!", None, None, None]
    start, delta = chunks[0], chunks[6]
    assert start.role == "assistant" and start.usage is None  # the opening commits nothing
    assert delta.finish_reason == "stop"
    assert delta.usage == {
        "prompt_tokens": 25,
        "completion_tokens": 15,
        "total_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_the_documented_tool_stream_gives_openai_tool_call_deltas() -> None:
    chunks = decode(TOOL_STREAM)
    opening = next(c for c in chunks if c.tool_calls)
    assert opening.tool_calls == [
        ToolCallDelta(index=0, id=TOOL_ID, type="function", name="get_weather", arguments="")
    ]
    answer = AnswerBuilder()
    answer.extend(chunks)
    assert answer.text == TOOL_TEXT
    [call] = answer.tool_calls
    assert (call.id, call.name, call.arguments) == (TOOL_ID, "get_weather", TOOL_ARGUMENTS)
    assert json.loads(call.arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert answer.finish_reason == "tool_calls"
    assert answer.usage is not None and answer.usage["total_tokens"] == 472 + 89


def test_thinking_and_signature_deltas_are_data_only_chunks() -> None:
    chunks = decode(THINKING_STREAM)
    kinds = [(c.data or {}).get("delta", {}).get("type") for c in chunks]
    thinking = chunks[kinds.index("thinking_delta")]
    signature = chunks[kinds.index("signature_delta")]
    for chunk in (thinking, signature):
        assert (chunk.content, chunk.tool_calls, chunk.finish_reason) == (None, None, None)
        assert chunk.data is not None and chunk.raw is not None
    assert "×" in (thinking.raw or "")
    assert "".join(c.content or "" for c in chunks).startswith("The greatest common divisor")


def test_a_second_tool_use_block_is_the_second_tool_call() -> None:
    def tool(index: int, call_id: str) -> bytes:
        block = {"type": "tool_use", "id": call_id, "name": "f", "input": {}}
        return event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )

    def args(index: int, text: str) -> bytes:
        delta = {"type": "input_json_delta", "partial_json": text}
        return event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )

    text_block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}
    chunks = decode(
        START,
        event("content_block_start", text_block),
        tool(1, "a"),
        tool(2, "b"),
        args(2, '{"x": 2}'),
        args(1, '{"x": 1}'),
        STOP,
    )
    answer = AnswerBuilder()
    answer.extend(chunks)
    assert [(c.id, c.arguments) for c in answer.tool_calls] == [
        ("a", '{"x": 1}'),
        ("b", '{"x": 2}'),
    ]


@pytest.mark.parametrize(("stop_reason", "finish"), sorted(STOP_REASONS.items()))
def test_stop_reasons_map_to_finish_reasons(stop_reason: str, finish: str) -> None:
    delta = {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {}}
    chunks = decode(START, event("message_delta", delta), STOP)
    assert chunks[1].finish_reason == finish


def test_the_documented_mapping() -> None:
    assert STOP_REASONS["end_turn"] == "stop" and STOP_REASONS["max_tokens"] == "length"
    assert STOP_REASONS["tool_use"] == "tool_calls" and STOP_REASONS["refusal"] == "content_filter"
    assert STOP_REASONS["stop_sequence"] == "stop" and STOP_REASONS["pause_turn"] == "stop"


def test_an_unknown_stop_reason_is_kept_as_it_is() -> None:
    delta = {"type": "message_delta", "delta": {"stop_reason": "a_new_reason"}}
    assert decode(START, event("message_delta", delta), STOP)[1].finish_reason == "a_new_reason"


# usage -----------------------------------------------------------------------------


def test_cached_input_counts_in_the_prompt_and_is_said_apart() -> None:
    usage = {
        "input_tokens": 10,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 5,
        "output_tokens": 7,
    }
    assert openai_usage(usage) == {
        "prompt_tokens": 115,
        "completion_tokens": 7,
        "total_tokens": 122,
        "prompt_tokens_details": {"cached_tokens": 100},
        "cache_creation_input_tokens": 5,
    }


def test_message_delta_totals_replace_message_start_counts_and_keep_the_rest() -> None:
    start = {
        "type": "message_start",
        "message": {
            "role": "assistant",
            "usage": {"input_tokens": 40, "cache_read_input_tokens": 8, "output_tokens": 1},
        },
    }
    late = {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 12}}
    fuller = {
        "type": "message_delta",
        "delta": {},
        "usage": {"input_tokens": 41, "output_tokens": 13},
    }
    decoder = AnthropicSSEDecoder()
    list(decoder.chunks(event("message_start", start) + event("message_delta", late)))
    assert decoder.usage is not None
    assert decoder.usage["prompt_tokens"] == 48 and decoder.usage["completion_tokens"] == 12
    chunks = list(decoder.chunks(event("message_delta", fuller) + STOP))
    assert chunks[0].usage is not None and chunks[0].usage["prompt_tokens"] == 49
    decoder.close()


# every split, every line ending --------------------------------------------------------


STREAMS = [
    pytest.param(TEXT_STREAM, id="text"),
    pytest.param(TOOL_STREAM, id="tool"),
    pytest.param(THINKING_STREAM, id="thinking"),
]


@pytest.mark.parametrize("stream", STREAMS)
def test_byte_by_byte_gives_the_same_chunks(stream: bytes) -> None:
    assert seen(decode(*(stream[i : i + 1] for i in range(len(stream))))) == seen(decode(stream))


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("eol", [b"\r\n", b"\r"], ids=["crlf", "cr"])
def test_other_line_endings_give_the_same_chunks(stream: bytes, eol: bytes) -> None:
    assert seen(decode(stream.replace(b"\n", eol))) == seen(decode(stream))


def test_a_utf8_character_split_between_reads() -> None:
    at = THINKING_STREAM.index("×".encode()) + 1  # inside its two bytes
    assert seen(decode(THINKING_STREAM[:at], THINKING_STREAM[at:])) == seen(decode(THINKING_STREAM))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_split_of_a_recorded_stream_gives_the_same_chunks(data: st.DataObject) -> None:
    stream = data.draw(st.sampled_from([TEXT_STREAM, TOOL_STREAM, THINKING_STREAM]))
    eol = data.draw(st.sampled_from([b"\n", b"\r\n"]))
    stream = stream.replace(b"\n", eol)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(stream) - 1), max_size=40)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert seen(decode(*pieces)) == seen(decode(stream.replace(eol, b"\n")))


# the end ---------------------------------------------------------------------------------


def test_a_stream_without_message_stop_is_truncated() -> None:
    cut = TEXT_STREAM[: TEXT_STREAM.index(b"event: message_stop")]
    decoder = AnthropicSSEDecoder()
    assert len(list(decoder.chunks(cut))) == 7
    with pytest.raises(errors.StreamTruncatedError, match="without message_stop after 7 event"):
        decoder.close()


def test_message_stop_without_its_blank_line_still_ends_the_stream() -> None:
    decoder = AnthropicSSEDecoder()
    list(decoder.chunks(TEXT_STREAM.rstrip(b"\n") + b"\n"))
    decoder.close()
    assert decoder.done


def test_nothing_after_message_stop_is_read() -> None:
    decoder = AnthropicSSEDecoder()
    chunks = list(decoder.chunks(TEXT_STREAM + b"data: {not json}\n\n"))
    assert decoder.done and len(chunks) == len(TEXT_EVENTS)


def test_keep_alives_make_no_chunk() -> None:
    chunks = decode(START, b": keep-alive\n\n", b"event: ping\ndata:\n\n", STOP)
    assert [c.data["type"] for c in chunks if c.data] == ["message_start", "message_stop"]


def test_unknown_events_and_deltas_are_data_only_chunks() -> None:
    citation = {"type": "citations_delta", "citation": {"cited_text": "x"}}
    chunks = decode(
        START,
        event(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": citation}
        ),
        event("brand_new", {"type": "brand_new", "anything": [1, 2]}),
        STOP,
    )
    for chunk in chunks[1:3]:
        assert not commits_answer([chunk]) and chunk.data is not None


def test_before_answer_lasts_through_the_opening_events_only() -> None:
    decoder = AnthropicSSEDecoder()
    flags = []
    for name, data in zip(TEXT_EVENTS, data_lines(TEXT_STREAM), strict=True):
        list(decoder.chunks(f"event: {name}\ndata: {data}\n\n".encode()))
        flags.append(decoder.before_answer)
    assert flags == [True, True, True, False, False, False, False, False]
    tool = AnthropicSSEDecoder()
    list(tool.chunks(TOOL_STREAM[: TOOL_STREAM.index(b"event: content_block_delta")]))
    assert tool.before_answer
    opening = TOOL_STREAM.index(b'"type":"tool_use"')
    list(tool.chunks(TOOL_STREAM[TOOL_STREAM.index(b"event: content_block_delta") : opening]))
    assert not tool.before_answer  # text came


def test_the_text_view_carries_only_text() -> None:
    decoder = ANTHROPIC_SSE.decoder()
    assert list(decoder.texts(TOOL_STREAM)) == [t for t in _texts(TOOL_STREAM)]


def _texts(stream: bytes) -> list[str]:
    return [c.content for c in decode(stream) if c.content]


# errors ------------------------------------------------------------------------------------


def test_overloaded_error_is_a_529_the_retry_policy_knows() -> None:
    with pytest.raises(errors.ResponseStatusError) as info:
        decode(START, error_event("overloaded_error", "Overloaded"))
    assert info.value.status == 529 and not isinstance(info.value, errors.RateLimitError)
    assert "overloaded_error" in str(info.value) and "Overloaded" in str(info.value)
    assert json.loads(info.value.body)["error"]["type"] == "overloaded_error"


def test_rate_limit_error_is_a_rate_limit_error() -> None:
    with pytest.raises(errors.RateLimitError) as info:
        decode(START, error_event("rate_limit_error", "slow down"))
    assert info.value.status == 429 and "slow down" in str(info.value)


@pytest.mark.parametrize("kind", ["api_error", "invalid_request_error", "a_new_error"])
def test_other_error_events_are_upstream_errors_with_their_type(kind: str) -> None:
    with pytest.raises(errors.UpstreamError, match="it broke") as info:
        decode(START, error_event(kind, "it broke"))
    assert info.value.type == kind


def test_an_error_typed_event_without_an_event_name_is_an_error_too() -> None:
    body = error_body("api_error", "boom").decode()
    with pytest.raises(errors.UpstreamError, match="boom"):
        decode(START, f"data: {body}\n\n".encode())


def test_an_error_event_that_is_not_json_says_its_text() -> None:
    with pytest.raises(errors.UpstreamError, match="the gateway fell over"):
        decode(START, b"event: error\ndata: the gateway fell over\n\n")


def test_chunks_before_a_broken_event_still_come_out() -> None:
    decoder = AnthropicSSEDecoder()
    out: list[ChatChunk] = []
    with pytest.raises(errors.StreamError):
        for chunk in decoder.chunks(TEXT_STREAM[:300] + b"\n\ndata: {oops\n\n"):
            out.append(chunk)
    assert out and out[0].data is not None and out[0].data["type"] == "message_start"


def _delta(delta: Any, index: Any = 0) -> bytes:
    return event(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"data: {not json\n\n", "invalid JSON in a Messages event", id="json"),
        pytest.param(b"data: [1, 2]\n\n", "holds no JSON object", id="not-object"),
        pytest.param(b'data: {"index": 0}\n\n', "has no type", id="no-type"),
        pytest.param(
            event("content_block_delta", {"type": "message_stop"}),
            "named 'content_block_delta' holds a 'message_stop' event",
            id="name-mismatch",
        ),
        pytest.param(
            event("message_start", {"type": "message_start", "message": "hi"}),
            "message_start event has no dict message",
            id="message",
        ),
        pytest.param(_delta({"type": "text_delta", "text": "x"}, "0"), "no int index", id="index"),
        pytest.param(_delta("text"), "no dict delta", id="delta"),
        pytest.param(_delta({"type": "text_delta", "text": 5}), "no str delta.text", id="text"),
        pytest.param(
            _delta({"type": "input_json_delta", "partial_json": None}),
            "no str delta.partial_json",
            id="partial-json",
        ),
        pytest.param(
            _delta({"type": "input_json_delta", "partial_json": "{"}, 4),
            "content block 4, which no tool_use",
            id="json-for-no-tool",
        ),
        pytest.param(
            event("content_block_start", {"type": "content_block_start", "index": 0}),
            "no dict content_block",
            id="block",
        ),
        pytest.param(
            event("message_delta", {"type": "message_delta", "usage": {}}),
            "message_delta event has no dict delta",
            id="message-delta",
        ),
    ],
)
def test_a_malformed_event_is_a_stream_error_naming_what_is_wrong(
    body: bytes, message: str
) -> None:
    with pytest.raises(errors.StreamError, match=message) as info:
        decode(START, body, STOP)
    assert not isinstance(info.value, errors.UpstreamError)


# the whole (non-streamed) answer -------------------------------------------------------------


def test_a_whole_message_is_one_chunk_with_its_text_tools_end_and_usage() -> None:
    body = json.dumps(WHOLE_TOOL_MESSAGE)
    chunk = ANTHROPIC_SSE.parse_whole(body.encode())
    assert chunk.data == WHOLE_TOOL_MESSAGE and chunk.raw == body
    assert chunk.content == "I'll check the current weather in San Francisco for you."
    assert chunk.role == "assistant" and chunk.finish_reason == "tool_calls"
    assert chunk.tool_calls is not None
    [call] = chunk.tool_calls
    assert (call.index, call.id, call.type, call.name) == (
        0,
        "toolu_01A09q90qw90lq917835lq9",
        "function",
        "get_weather",
    )
    assert json.loads(call.arguments or "") == {"location": "San Francisco, CA", "unit": "celsius"}
    assert chunk.usage is not None and chunk.usage["prompt_tokens"] == 472
    assert chunk.usage["completion_tokens"] == 65


def test_a_whole_error_body_is_the_typed_error() -> None:
    with pytest.raises(errors.ResponseStatusError) as info:
        ANTHROPIC_SSE.parse_whole(error_body("overloaded_error", "Overloaded"))
    assert info.value.status == 529


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"<html>", "not valid JSON", id="html"),
        pytest.param(b"[]", "not a JSON object", id="list"),
        pytest.param(b'{"choices": []}', "not a Messages `message` object", id="openai"),
        pytest.param(b'{"type": "message", "content": "hi"}', "no list of content", id="content"),
    ],
)
def test_a_whole_answer_that_is_no_message_is_named(body: bytes, message: str) -> None:
    with pytest.raises(errors.StreamError, match=message):
        ANTHROPIC_SSE.parse_whole(body)


@pytest.mark.parametrize(
    ("content_type", "first", "kind"),
    [
        ("text/event-stream", TEXT_STREAM[:40], "stream"),
        ("application/json", b'{"type": "message"}', "whole"),
        ("text/event-stream", b'{"type": "error"}', "whole"),
        ("text/html", b"<html><body>502 Bad Gateway", "other"),
        ("text/plain", b"event: message_start\n", "stream"),
    ],
)
def test_classify(content_type: str, first: bytes, kind: str) -> None:
    assert ANTHROPIC_SSE.classify(content_type, first, final=True) == kind
