"""Chat-completion chunks to text: what every event of the wire format means."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codelinkava.errors import StreamError, StreamTruncatedError, UpstreamError
from codelinkava.formats.openai_chunks import (
    ChatStreamParser,
    _general_chunk,
    _plain_text_chunk,
    parse_whole,
    upstream_error,
)
from codelinkava.formats.sse import ServerSentEvent


def event(data: Any, name: str = "message") -> ServerSentEvent:
    """An SSE event whose data is `data`, JSON-encoded unless it is already a string."""
    return ServerSentEvent(data if isinstance(data, str) else json.dumps(data), event=name)


def chunk(
    content: Any = None, *, role: str | None = None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An OpenAI-shaped streaming chunk."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


DONE = ServerSentEvent("[DONE]")


# Text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "text"),
    [
        pytest.param(chunk("Hello"), "Hello", id="delta_content"),
        pytest.param(chunk(" мир 👋"), " мир 👋", id="unicode"),
        pytest.param(chunk("\n"), "\n", id="newline_only"),
        pytest.param(chunk("Hi", role="assistant"), "Hi", id="role_and_content"),
        pytest.param(
            {"choices": [{"message": {"role": "assistant", "content": "whole"}}]},
            "whole",
            id="message_object",
        ),
        pytest.param({"choices": [{"text": "legacy"}]}, "legacy", id="legacy_text"),
        pytest.param(
            {"choices": [{"delta": {"content": "a"}}, {"delta": {"content": "b"}}]},
            "a",
            id="first_choice_only",
        ),
    ],
)
def test_text_extraction(data: dict[str, Any], text: str) -> None:
    parser = ChatStreamParser()
    assert parser.feed(event(data)) == text
    assert not parser.complete


def test_a_whole_stream() -> None:
    parser = ChatStreamParser()
    events = [
        event(chunk("", role="assistant")),
        event(chunk("Hel")),
        event(chunk("lo")),
        event(chunk(finish="stop")),
        DONE,
    ]
    assert [parser.feed(e) for e in events] == [None, "Hel", "lo", None, None]
    assert parser.done
    assert parser.finish_reason == "stop"
    assert parser.chunks == 4
    parser.check_end()


@pytest.mark.parametrize(
    "data",
    [pytest.param("[DONE]", id="exact"), pytest.param(" [DONE] ", id="padded")],
)
def test_done_ends_the_stream(data: str) -> None:
    parser = ChatStreamParser()
    assert not parser.complete
    assert parser.feed(ServerSentEvent(data)) is None
    assert parser.done
    assert parser.complete
    assert parser.finish_reason is None
    parser.check_end()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(chunk(role="assistant"), id="role_only"),
        pytest.param(chunk("", role="assistant"), id="role_and_empty_content"),
        pytest.param(chunk(None), id="empty_delta"),
        pytest.param({"choices": [{"delta": {"content": None}}]}, id="null_content"),
        pytest.param(
            {"choices": [{"delta": {"tool_calls": [{"index": 0}]}}]}, id="tool_call_delta"
        ),
    ],
)
def test_role_only_delta_skipped(data: dict[str, Any]) -> None:
    parser = ChatStreamParser()
    assert parser.feed(event(data)) is None
    assert not parser.complete


def test_usage_chunk_skipped_and_usage_kept() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    parser = ChatStreamParser()
    assert parser.feed(event(chunk("Hi", finish="stop"))) == "Hi"
    assert parser.feed(event({"id": "x", "choices": [], "usage": usage})) is None
    assert parser.usage == usage
    # A later chunk without usage (or with "usage": null) does not forget it.
    assert parser.feed(event(chunk("", usage=None))) is None
    assert parser.usage == usage


def test_usage_on_a_chunk_with_choices_is_kept() -> None:
    usage = {"total_tokens": 3}
    parser = ChatStreamParser()
    assert parser.feed(event(chunk("x", usage=usage))) == "x"
    assert parser.usage == usage


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"choices": []}, id="empty_choices"),
        pytest.param({"choices": None}, id="null_choices"),
        pytest.param({}, id="empty_object"),
        pytest.param({"error": None, "choices": []}, id="null_error"),
    ],
)
def test_chunks_without_choices_skipped(data: dict[str, Any]) -> None:
    parser = ChatStreamParser()
    assert parser.feed(event(data)) is None
    assert parser.usage is None
    assert not parser.complete


def test_other_named_events_skipped() -> None:
    parser = ChatStreamParser()
    assert parser.feed(ServerSentEvent("not json at all", event="ping")) is None
    assert parser.feed(ServerSentEvent("[DONE]", event="ping")) is None
    assert not parser.complete


# The end ------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["stop", "length", "content_filter", "tool_calls"])
def test_finish_reason_makes_complete(reason: str) -> None:
    parser = ChatStreamParser()
    assert parser.feed(event(chunk("last", finish=reason))) == "last"
    assert parser.complete
    assert not parser.done
    assert parser.finish_reason == reason
    parser.check_end()


def test_null_finish_reason_is_not_an_end() -> None:
    parser = ChatStreamParser()
    parser.feed(event(chunk("a", finish=None)))
    assert not parser.complete
    assert parser.finish_reason is None


def test_check_end_raises_truncated() -> None:
    parser = ChatStreamParser()
    parser.feed(event(chunk("Hel")))
    parser.feed(event(chunk("lo")))
    with pytest.raises(StreamTruncatedError, match=r"without \[DONE\].*after 2 chunk"):
        parser.check_end()


def test_check_end_on_an_empty_stream_raises_truncated() -> None:
    with pytest.raises(StreamTruncatedError):
        ChatStreamParser().check_end()
    assert issubclass(StreamTruncatedError, StreamError)


@pytest.mark.parametrize(
    "data", [pytest.param("[DONE]", id="exact"), pytest.param("[DONE]\n", id="trailing_lf")]
)
def test_discarded_done_counts(data: str) -> None:
    parser = ChatStreamParser()
    parser.feed(event(chunk("text")))
    parser.check_end(ServerSentEvent(data))
    assert parser.done


@pytest.mark.parametrize(
    "discarded",
    [
        pytest.param(None, id="nothing"),
        pytest.param(ServerSentEvent(json.dumps(chunk("more"))), id="a_text_chunk"),
        pytest.param(ServerSentEvent("[DON"), id="a_cut_done"),
    ],
)
def test_discarded_other_block_is_truncation(discarded: ServerSentEvent | None) -> None:
    parser = ChatStreamParser()
    parser.feed(event(chunk("text")))
    with pytest.raises(StreamTruncatedError):
        parser.check_end(discarded)
    assert not parser.done


# Errors in the stream ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message", "code", "kind"),
    [
        pytest.param(
            {"error": {"message": "model overloaded", "type": "server_error", "code": 503}},
            "model overloaded",
            503,
            "server_error",
            id="openai_shape",
        ),
        pytest.param(
            {"error": {"message": "bad key", "code": "invalid_api_key"}},
            "bad key",
            "invalid_api_key",
            None,
            id="string_code",
        ),
        pytest.param({"error": "quota exceeded"}, "quota exceeded", None, None, id="string"),
        pytest.param(
            {"error": {"code": 42}}, '{"code": 42}', 42, None, id="no_message_quotes_payload"
        ),
        pytest.param(
            {"choices": [], "error": {"message": "late"}}, "late", None, None, id="empty_choices"
        ),
    ],
)
def test_error_payload_raises_upstream_error(
    data: dict[str, Any], message: str, code: Any, kind: str | None
) -> None:
    parser = ChatStreamParser()
    with pytest.raises(UpstreamError) as info:
        parser.feed(event(data))
    assert str(info.value) == f"upstream error: {message}"
    assert info.value.code == code
    assert info.value.type == kind


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param('{"error": {"message": "rate limited"}}', "rate limited", id="json_error"),
        pytest.param('{"message": "boom"}', "boom", id="json_message"),
        pytest.param("something broke", "something broke", id="plain_text"),
        pytest.param("", "event: error with no data", id="no_data"),
        pytest.param("[" * 100_000, "[" * 100_000, id="nested_too_deep"),
    ],
)
def test_event_error_raises_upstream_error(data: str, message: str) -> None:
    parser = ChatStreamParser()
    with pytest.raises(UpstreamError) as info:
        parser.feed(ServerSentEvent(data, event="error"))
    assert str(info.value) == f"upstream error: {message}"


def test_upstream_error_of_odd_payloads() -> None:
    assert str(upstream_error(None)) == "upstream error: null"
    assert str(upstream_error(["a", 1])) == 'upstream error: ["a", 1]'
    assert str(upstream_error({"message": ""})) == 'upstream error: {"message": ""}'
    assert str(upstream_error({"message": "ü"})) == "upstream error: ü"
    assert isinstance(upstream_error(object()), UpstreamError)  # never a TypeError
    assert upstream_error({"code": 1.5, "type": 3}).code is None
    assert upstream_error({"code": 1.5, "type": 3}).type is None


# A broken stream ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("{not json", id="broken_object"),
        pytest.param('{"choices": [{"delta": {"content": "cut', id="cut_off"),
        pytest.param("<html><body>502 Bad Gateway</body></html>", id="html"),
        pytest.param("DONE", id="done_without_brackets"),
    ],
)
def test_invalid_json_raises_stream_error_quoting_the_line(data: str) -> None:
    parser = ChatStreamParser()
    with pytest.raises(StreamError) as info:
        parser.feed(ServerSentEvent(data))
    assert type(info.value) is StreamError
    assert "invalid JSON" in str(info.value)
    assert repr(data) in str(info.value)


@pytest.mark.parametrize("data", ["", " ", "\n", " \n "])
def test_an_event_with_empty_data_is_a_keep_alive(data: str) -> None:
    parser = ChatStreamParser()
    assert parser.feed(ServerSentEvent(data)) is None
    assert parser.feed_chunk(ServerSentEvent(data)) is None
    assert parser.feed(ServerSentEvent('{"choices":[{"delta":{"content":"a"}}]}')) == "a"
    assert not parser.complete


def test_a_long_invalid_line_is_quoted_in_part() -> None:
    data = "x" * 10_000
    with pytest.raises(StreamError) as info:
        ChatStreamParser().feed(ServerSentEvent(data))
    assert repr("x" * 200 + "...") in str(info.value)
    assert len(str(info.value)) < 300


def test_json_nested_too_deep_raises_stream_error() -> None:
    with pytest.raises(StreamError, match="invalid JSON"):
        ChatStreamParser().feed(ServerSentEvent("[" * 100_000))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("[1, 2]", id="array"),
        pytest.param('"text"', id="string"),
        pytest.param("42", id="number"),
        pytest.param("null", id="null"),
        pytest.param("true", id="bool"),
    ],
)
def test_non_object_json_raises_stream_error(data: str) -> None:
    with pytest.raises(StreamError, match="no JSON object") as info:
        ChatStreamParser().feed(ServerSentEvent(data))
    assert repr(data) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(5, id="number"),
        pytest.param({"text": "x"}, id="object"),
        pytest.param(["x"], id="array"),
        pytest.param(True, id="true"),
        pytest.param(0, id="zero"),
        pytest.param(False, id="false"),
        pytest.param([], id="empty_array"),
    ],
)
def test_non_string_content_raises_stream_error(content: Any) -> None:
    with pytest.raises(StreamError, match="not a string"):
        ChatStreamParser().feed(event(chunk(content)))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"choices": "abc"}, id="choices_string"),
        pytest.param({"choices": [5]}, id="choice_number"),
        pytest.param({"choices": [{"delta": "text"}]}, id="delta_string"),
        pytest.param({"choices": [{"delta": ["text"]}]}, id="delta_array"),
        pytest.param({"choices": {"0": {}}}, id="choices_object"),
    ],
)
def test_malformed_chunk_raises_stream_error(data: dict[str, Any]) -> None:
    with pytest.raises(StreamError, match="not a chat-completion chunk"):
        ChatStreamParser().feed(event(data))


# Answers with stream: false --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {
                "choices": [
                    {"message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}
                ],
                "usage": {"total_tokens": 9},
            },
            ("Paris.", "stop", {"total_tokens": 9}),
            id="normal",
        ),
        pytest.param(
            {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": []}}]},
            ("", None, None),
            id="null_content",
        ),
        pytest.param(
            {"choices": [{"text": "legacy", "finish_reason": "length"}]},
            ("legacy", "length", None),
            id="legacy_text",
        ),
        pytest.param(
            {"choices": [{"delta": {"content": "d"}}], "usage": "n/a"},
            ("d", None, None),
            id="delta_and_bad_usage",
        ),
    ],
)
def test_parse_whole(body: dict[str, Any], expected: tuple[Any, ...]) -> None:
    whole = parse_whole(json.dumps(body))
    assert (whole.content or "", whole.finish_reason, whole.usage) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"error": {"message": "no such model"}}, "no such model", id="openai_shape"),
        pytest.param({"error": "denied"}, "denied", id="string"),
    ],
)
def test_parse_whole_error(body: dict[str, Any], message: str) -> None:
    with pytest.raises(UpstreamError, match=f"^upstream error: {message}$"):
        parse_whole(json.dumps(body))


@pytest.mark.parametrize(
    ("body", "match"),
    [
        pytest.param("<html>oops</html>", "not valid JSON", id="html"),
        pytest.param("", "not valid JSON", id="empty"),
        pytest.param("[" * 100_000, "not valid JSON", id="nested_too_deep"),
        pytest.param("[]", "not a JSON object", id="array"),
        pytest.param("{}", "no choices", id="no_choices"),
        pytest.param('{"choices": []}', "no choices", id="empty_choices"),
        pytest.param('{"choices": [5]}', "no choices", id="choice_number"),
        pytest.param('{"choices": null}', "no choices", id="null_choices"),
        pytest.param('{"choices": [{"message": {"content": 5}}]}', "not a string", id="number"),
        pytest.param('{"choices": [{"text": ["x"]}]}', "not a string", id="text_array"),
    ],
)
def test_parse_whole_malformed(body: str, match: str) -> None:
    with pytest.raises(StreamError, match=match) as info:
        parse_whole(body)
    assert not isinstance(info.value, UpstreamError)


# The plain-text shortcut gives what the general rules give --------------------------------

_DELTAS = st.fixed_dictionaries(
    {"content": st.one_of(st.text(max_size=5), st.none(), st.integers())},
    optional={
        "role": st.one_of(st.just("assistant"), st.none(), st.integers()),
        "refusal": st.none(),
        "tool_calls": st.just([{"index": 0, "function": {"arguments": "{"}}]),
    },
)
_CHOICES = st.fixed_dictionaries(
    {"delta": _DELTAS},
    optional={
        "index": st.one_of(st.integers(0, 3), st.text(max_size=2)),
        "finish_reason": st.one_of(st.none(), st.just("stop")),
        "logprobs": st.one_of(st.none(), st.just({"content": []})),
    },
)


@given(_CHOICES, st.one_of(st.none(), st.just({"total_tokens": 1})))
def test_the_plain_text_shortcut_agrees_with_the_general_rules(
    choice: dict[str, Any], usage: dict[str, Any] | None
) -> None:
    chunk = {"choices": [choice], "usage": usage}
    raw = json.dumps(chunk)
    plain = _plain_text_chunk(chunk, chunk["choices"], usage, raw)
    if plain is None:
        return  # not the plain shape: the general rules alone decide
    assert plain == _general_chunk(chunk, chunk["choices"], usage, raw)
    assert plain.data is chunk and plain.raw == raw
