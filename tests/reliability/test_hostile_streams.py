"""Hostile upstream bytes: fuzzed SSE and chunks raise only StreamError, in linear time.

The decoder (`codelinkava.sse`) and the chunk parser (`codelinkava.chunks`)
are fed arbitrary bytes in arbitrary pieces; the only exception allowed out
is `errors.StreamError` (or a subclass). Size attacks -- a 64 MiB line, a
million blank lines or empty events -- must end at the size limit or pass
in time linear in the input; the bounds below are hang detectors, set many
times above the measured figures quoted next to them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codelinkava import CodeLinkAva, errors
from codelinkava.formats.openai_chunks import ChatStreamParser, parse_whole
from codelinkava.formats.sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder
from support.scripted import Reply, ScriptedServer, sse

from .support import MESSAGES

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MIB = 1024 * 1024

# Strategies ----------------------------------------------------------------------

_FIELD = st.sampled_from(
    [
        b"data",
        b"data:",
        b"data: ",
        b"event:",
        b"event: error",
        b"id:",
        b"id: \x00",
        b"retry:",
        b"retry: ",
        b":",
        b"",
        b"\xef\xbb\xbf",
        b"dat",
        b"DATA:",
    ]
)
_VALUE = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"[DONE]",
            b"{}",
            b'{"choices":[]}',
            b'{"error":{"message":"x"}}',
            b"9" * 700,
            b"0" * 700 + b"7",
            b"\xe2\x82",
            b"\xff\xfe",
            b"{" * 50,
        ]
    ),
    st.builds(
        lambda v: json.dumps(v).encode(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=10,
        ),
    ),
)
_EOL = st.sampled_from([b"\n", b"\r", b"\r\n", b""])
sse_ish = st.lists(st.tuples(_FIELD, _VALUE, _EOL), max_size=30).map(
    lambda parts: b"".join(f + v + e for f, v, e in parts)
)
any_stream = st.one_of(st.binary(max_size=600), sse_ish)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "choices",
                    "delta",
                    "content",
                    "message",
                    "text",
                    "finish_reason",
                    "usage",
                    "error",
                    "role",
                    "index",
                    "x",
                ]
            )
            | st.text(max_size=5),
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)
chunkish = st.builds(
    lambda content, finish, extra, wrap: {
        "choices": wrap([{"delta": {"content": content}, "finish_reason": finish, **extra}]),
    },
    json_values,
    json_values,
    st.dictionaries(st.text(max_size=5), json_values, max_size=2),
    st.sampled_from([lambda c: c, lambda c: c[0], lambda c: {"0": c[0]}, lambda c: "x"]),
)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted({p % (len(data) + 1) for p in points})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


# Fuzz -----------------------------------------------------------------------------


@FUZZ
@given(
    any_stream,
    st.lists(st.integers(min_value=0), max_size=8),
    st.sampled_from([8, 64, DEFAULT_MAX_EVENT_SIZE]),
)
def test_decoder_raises_only_stream_error(data: bytes, points: list[int], limit: int) -> None:
    decoder = SSEDecoder(max_event_size=limit)
    try:
        for piece in cut(data, points):
            for ev in decoder.feed(piece):
                assert isinstance(ev, ServerSentEvent) and isinstance(ev.data, str)
        decoder.close()
    except errors.StreamError:
        pass


@FUZZ
@given(any_stream, st.lists(st.integers(min_value=0), max_size=8))
def test_decoder_and_parser_together_raise_only_stream_errors(
    data: bytes, points: list[int]
) -> None:
    decoder, parser = SSEDecoder(max_event_size=256), ChatStreamParser()
    try:
        for piece in cut(data, points):
            for ev in decoder.feed(piece):
                text = parser.feed(ev)
                assert text is None or (isinstance(text, str) and text)
        decoder.close()
        parser.check_end(decoder.discarded)
    except errors.StreamError:
        pass


@FUZZ
@given(st.one_of(json_values, chunkish), st.sampled_from(["message", "error", "ping"]))
def test_parser_raises_only_stream_errors_on_any_json(value: Any, event: str) -> None:
    data = json.dumps(value)
    try:
        text = ChatStreamParser().feed(ServerSentEvent(data, event=event))
        assert text is None or isinstance(text, str)
    except errors.StreamError:
        pass


@FUZZ
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps), chunkish.map(json.dumps)))
def test_parse_whole_raises_only_stream_errors(body: str) -> None:
    try:
        whole = parse_whole(body)
        assert whole.content is None or isinstance(whole.content, str)
    except errors.StreamError:
        pass


@pytest.mark.parametrize("digits", [b"1" * 5000, b"0" * 10000 + b"42", b"9" * 601])
def test_a_retry_field_with_thousands_of_digits_is_not_a_crash(digits: bytes) -> None:
    # Found by this suite: int() refused >4,300 digits with ValueError, out of feed().
    decoder = SSEDecoder()
    events = decoder.feed(b"retry: " + digits + b"\ndata: x\n\n")
    assert [e.data for e in events] == ["x"]
    assert decoder.retry == (42 if digits.endswith(b"42") else None)


@pytest.mark.parametrize("depth", [10_000, 200_000])
def test_json_nested_past_the_recursion_limit_is_a_stream_error(depth: int) -> None:
    for data in ("[" * depth, '{"error": ' + "[" * depth + "]" * depth + "}"):
        with pytest.raises(errors.StreamError):
            ChatStreamParser().feed(ServerSentEvent(data))
        with pytest.raises(errors.StreamError):
            parse_whole(data)


# Size attacks ------------------------------------------------------------------------


def timed(pieces: list[bytes], decoder: SSEDecoder | None = None) -> tuple[float, int, Any]:
    decoder = decoder or SSEDecoder()
    events = 0
    start = time.perf_counter()
    try:
        for piece in pieces:
            events += len(decoder.feed(piece))
        decoder.close()
        outcome: Any = None
    except errors.StreamError as exc:
        outcome = exc
    return time.perf_counter() - start, events, outcome


def assert_linear(run: Callable[[int], float], count: int) -> None:
    """`run(count)` takes at most ~linear time: compared with a tenth of the work, timed in
    the same process (best of three), it may take 25x (linear is 10x, quadratic 100x).
    A ratio, not seconds: it holds on a loaded machine and under coverage alike."""
    small = min(run(count // 10) for _ in range(3))
    large = run(count)
    assert large < 25 * small + 0.05, f"{large:.3f} s for {count:,} vs {small:.3f} s for a tenth"


@pytest.mark.parametrize("piece", [64 * MIB, 64 * 1024, 1024], ids=["whole", "64KiB", "1KiB"])
@pytest.mark.parametrize("line", [b"data: ", b"x", b": comment "])
def test_a_64_mib_line_stops_at_the_event_size_limit(piece: int, line: bytes) -> None:
    body = line + b"a" * (64 * MIB - len(line)) + b"\n\n"
    pieces = [body[i : i + piece] for i in range(0, len(body), piece)]
    seconds, events, outcome = timed(pieces)
    assert isinstance(outcome, errors.StreamError), outcome
    assert f"{DEFAULT_MAX_EVENT_SIZE:,}-byte limit" in str(outcome)
    assert events == 0
    # Measured: 4 ms whole, 1 ms in 64 KiB pieces, 6 ms in 1 KiB pieces (it stops at 16 MiB).
    assert seconds < 5.0


@pytest.mark.parametrize(
    "unit", [b"\n", b"\r\n", b"\r", b":\n", b"data:\n\n", b"event: x\n\n", b"id: 1\n\n"]
)
def test_a_million_blank_lines_or_empty_events_decode_in_linear_time(unit: bytes) -> None:
    def run(count: int) -> float:
        body = unit * count
        pieces = [body[i : i + 4096] for i in range(0, len(body), 4096)]
        seconds, events, outcome = timed(pieces)
        assert outcome is None
        assert events == (count if unit == b"data:\n\n" else 0)
        return seconds

    # Measured: 21 ms (1 M LF) to 0.51 s (1 M empty events) on the 2-core machine.
    assert_linear(run, 1_000_000)


def test_a_million_empty_events_are_keep_alives_and_the_end_is_still_checked() -> None:
    def run(count: int) -> float:
        decoder, parser = SSEDecoder(), ChatStreamParser()
        started = time.perf_counter()
        texts = [parser.feed(ev) for ev in decoder.feed(b"data:\n\n" * count)]
        seconds = time.perf_counter() - started
        assert len(texts) == count and set(texts) == {None}
        with pytest.raises(errors.StreamTruncatedError):
            parser.check_end()
        return seconds

    assert_linear(run, 1_000_000)


async def test_the_client_streams_past_a_million_blank_lines(upstream: ScriptedServer) -> None:
    blanks = b"\n" * 1_000_000 + b":" + b"\n" * 1_000_000
    upstream.reply(
        Reply(
            body=[
                *[blanks[i : i + 65536] for i in range(0, len(blanks), 65536)],
                sse("still", " here"),
            ]
        )
    )
    async with asyncio.timeout(15):
        got = [
            t
            async for t in CodeLinkAva.create_async_generator(
                "m", MESSAGES, api_url=upstream.url(), timeout=5
            )
        ]
    assert got == ["still", " here"]


async def test_the_client_refuses_a_64_mib_event(upstream: ScriptedServer) -> None:
    big = b"data: " + b"a" * (64 * MIB) + b"\n\n"
    upstream.reply(Reply(body=[big[i : i + MIB] for i in range(0, len(big), MIB)]))
    with pytest.raises(errors.StreamError, match="limit"):
        async with asyncio.timeout(15):
            async for _ in CodeLinkAva.create_async_generator(
                "m", MESSAGES, api_url=upstream.url(), timeout=5
            ):
                pass


async def test_blank_lines_under_a_wrong_label_are_not_quadratic(upstream: ScriptedServer) -> None:
    blank = b"\n" * 65536

    async def run(pieces: int) -> float:
        upstream.reply(
            Reply(headers={"Content-Type": "text/plain"}, body=[blank] * pieces + [sse("ok")])
        )
        started = time.perf_counter()
        async with asyncio.timeout(60):  # a hang fails here, not at the suite's timeout
            got = [
                t
                async for t in CodeLinkAva.create_async_generator(
                    "m", MESSAGES, api_url=upstream.url(), timeout=30
                )
            ]
        assert got == ["ok"]
        return time.perf_counter() - started

    # 32 MiB of blank lines, then a stream: ~0.2 s when linear, ~5 s when it was quadratic.
    # Against an eighth of it in the same run (linear: 8x, quadratic: 64x), so the check
    # holds on a loaded machine and under coverage alike.
    small = min([await run(64) for _ in range(3)])
    large = await run(512)
    assert large < 20 * small + 0.1, f"{large:.2f} s for 32 MiB vs {small:.2f} s for 4 MiB"
