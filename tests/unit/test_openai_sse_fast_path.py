"""The OpenAI SSE decoder's fast path gives what the general SSE rules give, event for event.

The reference is `SSEDecoder` + `ChatStreamParser` fed the same bytes; the
decoder under test takes its fast path for plain `data: {...}` events and
falls back for everything else. Streams mix both, cut at arbitrary points.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from codelinkava import errors
from codelinkava.formats.openai_chunks import ChatStreamParser
from codelinkava.formats.openai_sse import OpenAISSEDecoder
from codelinkava.formats.sse import SSEDecoder

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


def _chunk(text: str, finish: str | None = None) -> str:
    return json.dumps(
        {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
    )


EVENTS = st.one_of(
    TEXT.map(lambda t: f"data: {_chunk(t)}\n\n"),  # the fast path
    TEXT.map(lambda t: f"data:{_chunk(t)}\n\n"),  # no space: general rules
    TEXT.map(lambda t: f": keep-alive {t!r}\n\n"),
    st.just("event: ping\ndata: {}\n\n"),
    st.just("data:\n\n"),
    st.just("\n\n"),
    TEXT.map(lambda t: f"id: 7\ndata: {_chunk(t)}\n\n"),
    TEXT.map(lambda t: f"data: {_chunk(t)}\r\n\r\n"),  # a CR: general rules from here on
    TEXT.map(lambda t: f"data: {_chunk(t, 'stop')}\n\n"),
    st.just('data: {"choices": [], "usage": {"total_tokens": 3}}\n\n'),
    st.just("data: {not json\n\n"),
    st.just('data: {"error": {"message": "boom"}}\n\n'),
)


def _run(decode: Any, pieces: list[bytes], close: Any) -> tuple[list[Any], str | None]:
    out: list[Any] = []
    try:
        for piece in pieces:
            out.extend(decode(piece))
        close()
    except errors.StreamError as exc:
        return out, type(exc).__name__
    return out, None


def _reference(pieces: list[bytes]) -> tuple[list[Any], str | None]:
    sse, parser = SSEDecoder(), ChatStreamParser()

    def decode(piece: bytes) -> list[Any]:
        got = []
        for event in sse.feed(piece):
            chunk = parser.feed_chunk(event)
            if chunk is not None:
                got.append((chunk.content, chunk.finish_reason, chunk.usage, chunk.raw))
        return got

    def close() -> None:
        sse.close()
        parser.check_end(sse.discarded)

    return _run(decode, pieces, close)


def _fast(pieces: list[bytes]) -> tuple[list[Any], str | None]:
    decoder = OpenAISSEDecoder()

    def decode(piece: bytes) -> list[Any]:
        return [(c.content, c.finish_reason, c.usage, c.raw) for c in decoder.chunks(piece)]

    return _run(decode, pieces, decoder.close)


def _cut(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts})
    bounds = [0, *points, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENTS, max_size=12), st.booleans(), st.lists(st.integers(0, 10_000), max_size=6))
def test_the_fast_path_matches_the_general_rules(
    events: list[str], done: bool, cuts: list[int]
) -> None:
    body = "".join(events).encode() + (b"data: [DONE]\n\n" if done else b"")
    pieces = _cut(body, cuts)
    assert _fast(pieces) == _reference(pieces)


@settings(max_examples=100, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=20), st.lists(st.integers(0, 10_000), max_size=8))
def test_the_text_view_matches_the_chunk_view(texts: list[str], cuts: list[int]) -> None:
    body = b"".join(f"data: {_chunk(t)}\n\n".encode() for t in texts) + b"data: [DONE]\n\n"
    pieces = _cut(body, cuts)
    decoder = OpenAISSEDecoder()
    got = [t for piece in pieces for t in decoder.texts(piece)]
    decoder.close()
    assert got == [t for t in texts if t]
    assert decoder.done


def test_a_stream_that_ends_without_its_blank_line_still_counts_its_done() -> None:
    decoder = OpenAISSEDecoder()
    assert [c.content for c in decoder.chunks(f"data: {_chunk('a')}\n\ndata: [DONE]".encode())] == [
        "a"
    ]
    decoder.close()  # `data: [DONE]` without its blank line is the end, as the seed read it
    assert decoder.done
