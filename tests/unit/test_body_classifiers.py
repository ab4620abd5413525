"""What a 2xx body is, from its label and first bytes: `WireFormat.classify` (the default in
`formats/base.py`) and the OpenAI SSE format's own sniffing (`formats/openai_sse.py`).

The core (`_chat._classify`) asks with `final=False` while more bytes may come, and
once more with `final=True` before deciding; None means "too few bytes to tell".
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codelinkava.chunk import ChatChunk
from codelinkava.formats import base
from codelinkava.formats.base import StreamDecoder, WireFormat, is_html, is_json
from codelinkava.formats.openai_sse import OPENAI_SSE

BOM = b"\xef\xbb\xbf"


class Plain(WireFormat):
    """A format that keeps WireFormat's default classify."""

    stream_media_types = frozenset({"application/x-ndjson"})

    def decoder(self) -> StreamDecoder:
        raise NotImplementedError

    def parse_whole(self, body: bytes) -> ChatChunk:
        raise NotImplementedError


PLAIN = Plain()


# is_json / is_html --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "json_", "html"),
    [
        (b'{"a": 1}', True, False),
        (b'  \r\n\t{"a"', True, False),
        (BOM + b'{"a"', True, False),
        (BOM + b"\n<html>", False, True),
        (b"<!DOCTYPE html>", False, True),
        (b"[1, 2]", False, False),
        (b"data: {}", False, False),
        (b"", False, False),
        (b" " * 64 + b"{", False, False),  # only the first 64 bytes are looked at
    ],
)
def test_is_json_and_is_html(first: bytes, json_: bool, html: bool) -> None:
    assert is_json(first) is json_
    assert is_html(first) is html


def test_the_helpers_are_exported() -> None:
    assert {"is_json", "is_html", "BodyKind"} <= set(base.__all__)


# The default classify -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "first", "final", "kind"),
    [
        ("application/x-ndjson", b'{"a":1}\n', False, "stream"),
        ("application/x-ndjson", b"<html>", False, "other"),  # markup under the stream label
        ("application/json", b"<html>", False, "whole"),  # the JSON label is trusted
        ("application/problem+json", b"anything", False, "whole"),
        ("text/plain", b'{"a":1}', False, "whole"),
        ("text/plain", b"hello", False, "other"),
        ("text/html", b"<html>", False, "other"),
        ("text/plain", b"  \n", False, None),  # blank so far: read more
        ("text/plain", b"", False, None),
        ("text/plain", b"  \n", True, "other"),
    ],
)
def test_default_classify(content_type: str, first: bytes, final: bool, kind: str | None) -> None:
    assert PLAIN.classify(content_type, first, final=final) == kind


def test_default_classify_sends_an_html_page_under_a_stream_label_on_by_content() -> None:
    # an HTML page labelled as the stream type falls through to the label checks and the
    # sniff, which takes it for "other" -- final or not
    assert PLAIN.classify("application/x-ndjson", b"<html>", final=True) == "other"
    # a JSON object under the stream label is a stream all the same (only markup is checked)
    assert PLAIN.classify("application/x-ndjson", b'{"error": {}}', final=False) == "stream"


# OpenAI SSE's classify -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (b"data: {}\n\n", "stream"),
        (b"", "stream"),  # nothing to contradict the label
        (b'{"error": {"message": "x"}}', "whole"),  # an error answer under the stream label
        (b"  " + BOM, "stream"),  # a BOM after blank space is not skipped: not JSON, not HTML
        (BOM + b'{"id": 1}', "whole"),
        (b"<html><body>502</body></html>", "other"),
        (b"\n\n<!doctype html>", "other"),
        (b"hello", "stream"),  # the label is trusted for anything else
    ],
)
def test_sse_label(first: bytes, kind: str) -> None:
    assert OPENAI_SSE.classify("text/event-stream", first, final=False) == kind


@pytest.mark.parametrize(
    "start", [b"data: {}", b"event: ping", b"id: 1", b"retry: 10", b": keep-alive"]
)
@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "", "application/octet-stream"]
)
def test_an_unlabelled_stream_is_sniffed(start: bytes, content_type: str) -> None:
    assert OPENAI_SSE.classify(content_type, start, final=False) == "stream"
    assert OPENAI_SSE.classify(content_type, BOM + b"\r\n" + start, final=False) == "stream"


@pytest.mark.parametrize(
    "prefix",
    [b"d", b"da", b"dat", b"data", b"ev", b"\n\n", b"  ", BOM[:1], BOM[:2], BOM, BOM + b"\n"],
)
def test_too_few_bytes_to_tell(prefix: bytes) -> None:
    assert OPENAI_SSE.classify("application/json", prefix, final=False) is None


def test_blank_lines_only_are_a_stream_once_final() -> None:
    assert OPENAI_SSE.classify("text/plain", b"\n\n\n", final=True) == "stream"
    assert OPENAI_SSE.classify("text/plain", b"", final=True) == "stream"


def test_a_prefix_of_a_field_name_is_a_stream_once_final() -> None:
    # "dat" could still become "data:", and at the end the sniff says stream
    assert OPENAI_SSE.classify("application/json", b"dat", final=True) == "stream"


@pytest.mark.parametrize(
    ("content_type", "first", "kind"),
    [
        ("application/json", b'{"id": "x", "choices": []}', "whole"),
        ("application/json", b"[1]", "whole"),  # labelled JSON: a whole answer
        ("application/vnd.api+json", b"[1]", "whole"),
        ("text/plain", b'{"id": "x"}', "whole"),  # sniffed JSON
        ("text/html", b"<html>", "other"),
        ("text/plain", b"Service Unavailable", "other"),
        ("application/json", b"<html>", "whole"),  # the JSON label wins over markup
    ],
)
def test_other_labels(content_type: str, first: bytes, kind: str) -> None:
    assert OPENAI_SSE.classify(content_type, first, final=False) == kind


def test_a_word_that_merely_starts_like_a_field_is_not_sse() -> None:
    assert OPENAI_SSE.classify("text/plain", b"database down", final=False) == "other"
    assert OPENAI_SSE.classify("text/plain", b"identity", final=False) == "other"


def test_sse_decoder_is_fresh_per_call() -> None:
    first, second = OPENAI_SSE.decoder(), OPENAI_SSE.decoder()
    assert first is not second
    chunks: Iterator[ChatChunk] = first.chunks(
        b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n'
    )
    assert [chunk.content for chunk in chunks] == ["a"]
