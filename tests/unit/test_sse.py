"""The SSE decoder, rule by rule, at every split point.

Each case runs on the whole stream, byte by byte, and at random splits, and
must decode the same way each time (the h11 habit). The WHATWG examples are
run by name:
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codelinkava.errors import StreamError
from codelinkava.formats.sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder

E = ServerSentEvent


class Decoded(NamedTuple):
    events: list[ServerSentEvent]
    discarded: ServerSentEvent | None
    retry: int | None


def run_decoder(pieces: Iterable[bytes], max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> Decoded:
    decoder = SSEDecoder(max_event_size=max_event_size)
    events: list[ServerSentEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.close())
    return Decoded(events, decoder.discarded, decoder.retry)


def split_at(stream: bytes, cuts: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def whole(stream: bytes) -> list[list[bytes]]:
    return [[stream]]


def byte_by_byte(stream: bytes) -> list[list[bytes]]:
    return [[stream[i : i + 1] for i in range(len(stream))]]


def random_splits(stream: bytes) -> list[list[bytes]]:
    rng = random.Random(len(stream))  # fixed seed per case: failures replay
    chunkings = []
    for _ in range(25):
        k = rng.randint(1, max(1, min(len(stream), 8)))
        chunkings.append(split_at(stream, rng.sample(range(len(stream) + 1), k)))
    return chunkings


Chunker = Callable[[bytes], list[list[bytes]]]


@pytest.fixture(
    params=[
        pytest.param(whole, id="whole"),
        pytest.param(byte_by_byte, id="byte_by_byte"),
        pytest.param(random_splits, id="random_splits"),
    ]
)
def decode(request: pytest.FixtureRequest) -> Callable[..., Decoded]:
    """Decode a stream under one way of cutting it; every cut in that way must agree."""
    chunker: Chunker = request.param

    def _decode(stream: bytes, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> Decoded:
        results = [run_decoder(pieces, max_event_size) for pieces in chunker(stream)]
        for other in results[1:]:
            assert other == results[0]
        return results[0]

    return _decode


def data_of(result: Decoded) -> list[str]:
    return [event.data for event in result.events]


# Line ends ------------------------------------------------------------------


def test_crlf_split_across_chunks(decode: Callable[..., Decoded]) -> None:
    # Were the LF after a chunk-final CR taken for a second line end, "a" and "b"
    # would be two events instead of one.
    stream = b"data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n"
    assert data_of(decode(stream)) == ["a\nb", "c"]


def test_crlf_split_across_chunks_explicit() -> None:
    result = run_decoder([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
    assert data_of(result) == ["a\nb"]


def test_lone_cr_line_end(decode: Callable[..., Decoded]) -> None:
    assert data_of(decode(b"data: a\rdata: b\r\rdata: c\r\r")) == ["a\nb", "c"]


def test_mixed_line_ends(decode: Callable[..., Decoded]) -> None:
    stream = b"data: a\rdata: b\ndata: c\r\n\ndata: d\n\r\n"
    assert data_of(decode(stream)) == ["a\nb\nc", "d"]


def test_cr_cr_is_two_line_ends() -> None:
    assert data_of(run_decoder([b"data: a\r", b"\r"])) == ["a"]


# The byte order mark ----------------------------------------------------------


def test_leading_bom_stripped(decode: Callable[..., Decoded]) -> None:
    assert data_of(decode(b"\xef\xbb\xbfdata: x\n\n")) == ["x"]


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param([b"\xef", b"\xbb", b"\xbfdata: x\n\n"], id="one_byte_each"),
        pytest.param([b"\xef\xbb", b"\xbfdata: x\n\n"], id="two_then_one"),
        pytest.param([b"\xef", b"\xbb\xbf", b"data: x\n\n"], id="one_then_two"),
        pytest.param([b"", b"\xef", b"", b"\xbb\xbfdata: x\n", b"\n"], id="with_empty_pieces"),
    ],
)
def test_leading_bom_split_across_chunks(pieces: list[bytes]) -> None:
    assert data_of(run_decoder(pieces)) == ["x"]


def test_only_the_first_bom_is_stripped(decode: Callable[..., Decoded]) -> None:
    # A second BOM belongs to the line: the field name is "\ufeffdata", which is ignored.
    assert data_of(decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n")) == ["y"]


def test_bom_after_the_start_is_not_stripped(decode: Callable[..., Decoded]) -> None:
    stream = b"data: a\n\n\xef\xbb\xbfdata: b\n\ndata: \xef\xbb\xbfc\n\n"
    assert data_of(decode(stream)) == ["a", "\ufeffc"]


def test_partial_bom_is_not_swallowed(decode: Callable[..., Decoded]) -> None:
    # Bytes that only begin like a BOM are kept (and make an unknown field here).
    assert data_of(decode(b"\xef\xbbdata: x\n\ndata: y\n\n")) == ["y"]


# Fields ------------------------------------------------------------------------


def test_comment_lines_ignored(decode: Callable[..., Decoded]) -> None:
    stream = b": hello\ndata: a\n:data: not data\n: \n\n:ping\n\n"
    assert data_of(decode(stream)) == ["a"]


def test_one_leading_space_stripped(decode: Callable[..., Decoded]) -> None:
    stream = b"data:  two\n\ndata:none\n\nevent:  spaced\ndata: x \n\n"
    result = decode(stream)
    assert result.events == [E(" two"), E("none"), E("x ", event=" spaced")]


def test_multiline_data_joined_with_lf(decode: Callable[..., Decoded]) -> None:
    assert data_of(decode(b"data: a\ndata: b\ndata:\ndata: c\n\n")) == ["a\nb\n\nc"]


def test_event_id_retry_fields(decode: Callable[..., Decoded]) -> None:
    stream = b"event: add\nid: 7\nretry: 1500\ndata: x\n\ndata: y\n\n"
    result = decode(stream)
    assert result.events == [
        E("x", event="add", id="7", retry=1500),
        E("y", event="message", id="7", retry=None),
    ]
    assert result.retry == 1500


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"1.5", id="decimal"),
        pytest.param(b"-1", id="negative"),
        pytest.param(b"abc", id="letters"),
        pytest.param(b"", id="empty"),
        pytest.param(b"1 ", id="trailing_space"),
        pytest.param(b"\xd9\xa1\xd9\xa2", id="arabic_indic_digits"),
        pytest.param(b"\xef\xbc\x95", id="fullwidth_digit"),
    ],
)
def test_non_digit_retry_ignored(decode: Callable[..., Decoded], value: bytes) -> None:
    stream = b"retry: 100\n\nretry: " + value + b"\ndata: x\n\n"
    result = decode(stream)
    assert result.events == [E("x", retry=None)]
    assert result.retry == 100


def test_retry_without_space(decode: Callable[..., Decoded]) -> None:
    result = decode(b"retry:0042\ndata: x\n\n")
    assert result.events == [E("x", retry=42)]
    assert result.retry == 42


def test_id_with_nul_ignored(decode: Callable[..., Decoded]) -> None:
    stream = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"
    assert decode(stream).events == [E("a", id="1"), E("b", id="1")]


def test_last_event_id_persists(decode: Callable[..., Decoded]) -> None:
    # NOTE: the spec never resets the last event ID between events, and an `id`
    # in a block without data still sets it.
    stream = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\n\ndata: c\n\nid: \ndata: d\n\ndata: e\n\n"
    assert decode(stream).events == [
        E("a", id="1"),
        E("b", id="1"),
        E("c", id="2"),
        E("d", id=""),
        E("e", id=""),
    ]


def test_block_without_data_not_dispatched(decode: Callable[..., Decoded]) -> None:
    # The event type and retry of an undispatched block do not leak into the next event.
    stream = b"event: add\nid: 3\nretry: 5\n\ndata: y\n\n"
    result = decode(stream)
    assert result.events == [E("y", event="message", id="3", retry=None)]
    assert result.retry == 5


def test_unknown_fields_ignored(decode: Callable[..., Decoded]) -> None:
    stream = b"foo: bar\nDATA: shout\nData: x\ndata : spaced\nevent\xff: x\ndata: ok\n\n"
    assert decode(stream).events == [E("ok")]


def test_field_without_colon(decode: Callable[..., Decoded]) -> None:
    stream = b"id: 5\nevent: add\nevent\nid\nretry\ndata\n\n"
    result = decode(stream)
    # "event" resets the type to "" (so "message"), "id" resets the ID, "data" is empty data.
    assert result.events == [E("", event="message", id="")]
    assert result.retry is None


def test_empty_data_line(decode: Callable[..., Decoded]) -> None:
    stream = b"data:\n\ndata: \n\ndata:\ndata:\n\n"
    assert data_of(decode(stream)) == ["", "", "\n"]


def test_feeding_nothing_changes_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n") == [E("x")]


def test_events_are_immutable() -> None:
    event = E("x")
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]


# The end of input -----------------------------------------------------------------


def test_unterminated_last_block_discarded(decode: Callable[..., Decoded]) -> None:
    result = decode(b"data: a\n\nevent: add\ndata: b\ndata: c")
    assert result.events == [E("a")]
    assert result.discarded == E("b\nc", event="add")


def test_unterminated_block_with_line_end_discarded(decode: Callable[..., Decoded]) -> None:
    result = decode(b"data: a\n\ndata: b\n")
    assert result.events == [E("a")]
    assert result.discarded == E("b")


def test_unterminated_done_is_kept_in_discarded(decode: Callable[..., Decoded]) -> None:
    result = decode(b"data: {}\n\ndata: [DONE]")
    assert data_of(result) == ["{}"]
    assert result.discarded is not None and result.discarded.data == "[DONE]"


def test_nothing_discarded_after_a_clean_end(decode: Callable[..., Decoded]) -> None:
    assert decode(b"data: a\n\n").discarded is None
    assert decode(b"data: a\n\n: trailing comment").discarded is None
    assert decode(b"data: a\n\nevent: x\n").discarded is None


def test_unterminated_last_line_sets_no_retry(decode: Callable[..., Decoded]) -> None:
    # Per spec the cut-off line is not a line: it cannot change the reconnection time.
    assert decode(b"retry: 7\n\nretry: 9").retry == 7


def test_close_dispatches_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.close() == []
    assert decoder.discarded == E("a")


# Text -----------------------------------------------------------------------------


def test_utf8_split_across_chunks(decode: Callable[..., Decoded]) -> None:
    text = "Привет, мир 👋🏽 — ünïcødé 漢字"
    stream = b"event: \xd0\xbf\xd0\xb8\xd0\xbd\xd0\xb3\nid: \xe2\x84\x96\ndata: " + text.encode()
    result = decode(stream + b"\ndata: " + text.encode() + b"\n\n")
    assert result.events == [E(f"{text}\n{text}", event="пинг", id="№")]


@pytest.mark.parametrize(
    "char",
    [
        pytest.param("Я", id="cyrillic_2_bytes"),
        pytest.param("€", id="3_bytes"),
        pytest.param("😀", id="emoji_4_bytes"),
    ],
)
def test_utf8_cut_inside_every_character(char: str) -> None:
    encoded = char.encode()
    stream = b"data: " + encoded * 3 + b"\n\n"
    for cut in range(len(b"data: "), len(stream)):
        assert data_of(run_decoder([stream[:cut], stream[cut:]])) == [char * 3]


def test_invalid_utf8_replaced(decode: Callable[..., Decoded]) -> None:
    assert data_of(decode(b"data: a\xffb\xe2\x82\n\n")) == ["a\ufffdb\ufffd"]


# Limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"data: " + b"x" * 200 + b"\n\n", id="one_long_data_line"),
        pytest.param(b"data: 0123456789\n" * 20 + b"\n", id="many_data_lines"),
        pytest.param(b"data\n" * 100 + b"\n", id="many_empty_data_lines"),
        pytest.param(b": " + b"c" * 200 + b"\ndata: ok\n\n", id="long_comment_line"),
        pytest.param(b"event: " + b"e" * 200 + b"\ndata: ok\n\n", id="long_field_line"),
        pytest.param(b"data: " + b"x" * 200, id="long_unterminated_line"),
        pytest.param(b"data: ok\n\n" + b"y" * 200, id="long_garbage_after_an_event"),
    ],
)
def test_max_event_size_raises_stream_error(decode: Callable[..., Decoded], stream: bytes) -> None:
    with pytest.raises(StreamError, match="larger than the 64-byte limit"):
        decode(stream, max_event_size=64)


def test_events_under_the_limit_pass(decode: Callable[..., Decoded]) -> None:
    # Each event (and each line) is under 64 bytes, the stream as a whole is not.
    stream = b"data: 0123456789\ndata: 0123456789\n\n" * 10
    assert data_of(decode(stream, max_event_size=64)) == ["0123456789\n0123456789"] * 10


def test_default_max_event_size() -> None:
    assert DEFAULT_MAX_EVENT_SIZE == 16 * 1024 * 1024
    assert isinstance(StreamError("x"), Exception)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("piece_size", [1024, 16])
def test_8_mib_event_decodes_in_linear_time(piece_size: int) -> None:
    # A decoder that re-joins or re-scans its buffer on every piece does
    # 8 MiB * (8 MiB / piece_size) / 2 bytes of work. In 1 KiB pieces that still
    # takes only about a second, so the 16-byte run is the one that tells: a
    # quadratic decoder (tried: re-joining the pending line per piece) passes 20 s
    # there, while this one takes about 0.3 s.
    text = ("Я" + "abcdefghij" * 10) * (8 * 1024 * 1024 // 102)
    payload = text.encode()
    stream = b"data: " + payload + b"\r\n\r\ndata: tail\r\n\r\n"
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for start in range(0, len(stream), piece_size):
        events.extend(decoder.feed(stream[start : start + piece_size]))
    decoder.close()
    assert len(events) == 2
    assert len(events[0].data) == len(text)
    assert events[0].data == text
    assert events[1].data == "tail"
    assert decoder.discarded is None


@pytest.mark.timeout(20)
@pytest.mark.parametrize("piece_size", [1024, 16])
def test_8_mib_of_short_lines_decodes_in_linear_time(piece_size: int) -> None:
    line = b"data: " + "строка".encode() + b"0123456789\r\n"
    count = 8 * 1024 * 1024 // len(line)
    stream = line * count + b"\r\n"
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for start in range(0, len(stream), piece_size):
        events.extend(decoder.feed(stream[start : start + piece_size]))
    assert len(events) == 1
    assert events[0].data == "\n".join(["строка0123456789"] * count)


# The WHATWG examples ------------------------------------------------------------------


def test_whatwg_example_stock_ticker(decode: Callable[..., Decoded]) -> None:
    stream = b"data: YHOO\ndata: +2\ndata: 10\n\n"
    assert decode(stream).events == [E("YHOO\n+2\n10")]


def test_whatwg_example_comment_and_ids(decode: Callable[..., Decoded]) -> None:
    stream = (
        b": test stream\n"
        b"\n"
        b"data: first event\n"
        b"id: 1\n"
        b"\n"
        b"data:second event\n"
        b"id\n"
        b"\n"
        b"data:  third event\n"
        b"\n"
    )
    assert decode(stream).events == [
        E("first event", id="1"),
        E("second event", id=""),
        E(" third event", id=""),
    ]


def test_whatwg_example_comment_and_ids_without_final_blank_line(
    decode: Callable[..., Decoded],
) -> None:
    # "the end of the stream is not enough to trigger the dispatch of the last event"
    stream = b": test stream\n\ndata: first event\nid: 1\n\ndata:  third event\n"
    result = decode(stream)
    assert result.events == [E("first event", id="1")]
    assert result.discarded == E(" third event", id="1")


def test_whatwg_example_empty_data_blocks(decode: Callable[..., Decoded]) -> None:
    # The first block fires "", the middle one a single newline, the last is discarded.
    result = decode(b"data\n\ndata\ndata\n\ndata:")
    assert data_of(result) == ["", "\n"]
    assert result.discarded == E("")


def test_whatwg_example_data_data_data(decode: Callable[..., Decoded]) -> None:
    result = decode(b"data\ndata\ndata\n\ndata:")
    assert data_of(result) == ["\n\n"]
    assert result.discarded == E("")


def test_whatwg_example_space_after_colon(decode: Callable[..., Decoded]) -> None:
    # "data:test" and "data: test" are two identical events.
    assert decode(b"data:test\n\ndata: test\n\n").events == [E("test"), E("test")]


# Property: any chunking, any stream --------------------------------------------------


def reference_decode(stream: bytes) -> Decoded:
    """The spec's algorithm, written plainly on the whole decoded text: the oracle."""
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    *lines, unterminated = re.split(r"\r\n|\r|\n", text)
    events: list[ServerSentEvent] = []
    data: list[str] = []
    event_type = ""
    last_id = ""
    block_retry: int | None = None
    retry: int | None = None

    def process(line: str) -> None:
        nonlocal event_type, last_id, block_retry, retry
        if line.startswith(":"):
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event_type = value
        elif name == "id":
            if "\0" not in value:
                last_id = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            block_retry = retry = int(value)

    for line in lines:
        if line:
            process(line)
            continue
        if data:
            events.append(E("\n".join(data), event_type or "message", last_id, block_retry))
        data, event_type, block_retry = [], "", None
    final_retry = retry
    discarded = None
    if unterminated:
        process(unterminated)
    if data:
        discarded = E("\n".join(data), event_type or "message", last_id, block_retry)
    return Decoded(events, discarded, final_retry)


_FRAGMENTS = [
    b"data",
    b"data:",
    b"data: ",
    b"event:",
    b"event: ",
    b"id:",
    b"id: ",
    b"retry:",
    b"retry: ",
    b":",
    b" ",
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"\r\n\r\n",
    b"x",
    b"[DONE]",
    b"12",
    b"0",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xd0\xaf",
    b"\xf0\x9f\x98\x80",
    b"\xf0\x9f",
    b"\x98\x80",
    b"\xff",
    b'{"a": 1}',
    b"message",
    b"error",
]

line_ends = st.sampled_from(["\n", "\r", "\r\n"])
line_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20)


@st.composite
def event_streams(draw: st.DrawFn) -> bytes:
    """A stream built from events, comments and fields, with mixed line ends."""
    out = [draw(st.sampled_from(["", "\ufeff"]))]
    for _ in range(draw(st.integers(0, 6))):
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(
                st.sampled_from(["data", "data", "comment", "event", "id", "retry", "bare"])
            )
            value = draw(line_text)
            if kind == "comment":
                line = ":" + value
            elif kind == "retry":
                line = (
                    "retry:"
                    + draw(st.sampled_from(["", " "]))
                    + draw(st.one_of(st.integers(0, 10**6).map(str), line_text))
                )
            elif kind == "bare":
                line = draw(st.sampled_from(["data", "event", "id", "retry"]))
            else:
                line = kind + draw(st.sampled_from([":", ": ", ":  "])) + value
            out.append(line + draw(line_ends))
        out.append(draw(line_ends))  # the blank line that dispatches
    if draw(st.booleans()):
        out.append("data: " + draw(line_text))  # an unterminated tail
    return "".join(out).encode()


@st.composite
def chunkings(draw: st.DrawFn, streams: st.SearchStrategy[bytes]) -> tuple[bytes, list[bytes]]:
    stream = draw(streams)
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=len(stream) + 1))
    pieces = split_at(stream, cuts)
    if draw(st.booleans()):  # empty pieces in between must change nothing
        pieces = [p for piece in pieces for p in (piece, b"")]
    return stream, pieces


@settings(max_examples=400, deadline=None)
@given(chunkings(event_streams()))
def test_any_chunking_of_an_event_stream_decodes_the_same(case: tuple[bytes, list[bytes]]) -> None:
    stream, pieces = case
    expected = run_decoder([stream])
    assert run_decoder(pieces) == expected
    assert run_decoder([stream[i : i + 1] for i in range(len(stream))]) == expected
    assert expected == reference_decode(stream)


@settings(max_examples=400, deadline=None)
@given(chunkings(st.lists(st.sampled_from(_FRAGMENTS), max_size=40).map(b"".join)))
def test_any_chunking_of_any_bytes_decodes_like_the_spec(case: tuple[bytes, list[bytes]]) -> None:
    stream, pieces = case
    expected = reference_decode(stream)
    assert run_decoder([stream]) == expected
    assert run_decoder(pieces) == expected
