"""Faults between the client and its upstream: each raises the documented typed error in time.

Every case runs against both providers on the shared core (CodeLinkAva posts
to `api_url`, OpenAICompatible to `{base_url}/chat/completions`), with short
limits, under a deadline of those limits plus a margin: a hang fails the test.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from codelinkava import CodeLinkAva, OpenAICompatible, Timeouts, errors
from support.scripted import (
    Close,
    Reply,
    Reset,
    ScriptedServer,
    Stall,
    event,
    sse,
)

from .support import MESSAGES

LIMITS = Timeouts(connect=1.0, first_chunk=1.0, idle=0.5)
#: A fault must surface within the largest limit that applies, plus this.
MARGIN = 4.0
HTML = b"<!doctype html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
HALF_EURO = b'data: {"choices":[{"delta":{"content":"\xe2\x82'  # 2 of the 3 bytes of U+20AC


pytestmark = pytest.mark.usefixtures("fast_backoff")


@pytest.fixture(params=["codelinkava", "openai"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Outcome:
    texts: list[str]
    error: BaseException | None
    seconds: float


def target(provider: str, base: str) -> tuple[Any, dict[str, str]]:
    """The provider class and the keyword argument pointing it at `base` (http://host:port)."""
    if provider == "codelinkava":
        return CodeLinkAva, {"api_url": base + "/api/chat"}
    return OpenAICompatible, {"base_url": base + "/v1"}


async def run(provider: str, base: str, within: float = 1.0 + MARGIN, **kwargs: Any) -> Outcome:
    cls, where = target(provider, base)
    kwargs.setdefault("timeout", LIMITS)
    texts: list[str] = []
    error: BaseException | None = None
    start = time.monotonic()
    try:
        async with asyncio.timeout(within):
            async for text in cls.create_async_generator("m", MESSAGES, **where, **kwargs):
                texts.append(text)
    except TimeoutError as exc:
        if not isinstance(exc, errors.ProviderTimeoutError):
            raise AssertionError(f"the client hung for more than {within}s") from exc
        error = exc
    except Exception as exc:
        error = exc
    return Outcome(texts, error, time.monotonic() - start)


def base_of(server: ScriptedServer) -> str:
    return f"http://127.0.0.1:{server.port}"


# (script, expected error class, text that reaches the caller first, upstream requests made)
STREAM_FAULTS: dict[str, tuple[Reply, type[errors.ProviderError], list[str], int]] = {
    "reset mid-stream": (
        Reply(body=[sse("a", "b", done=False), Reset()]),
        errors.StreamTruncatedError,
        ["a", "b"],
        1,
    ),
    "clean close mid-stream": (
        Reply(body=[sse("a", done=False), Close()]),
        errors.StreamTruncatedError,
        ["a"],
        1,
    ),
    "stall after 2 chunks": (
        Reply(body=[sse("a", "b", done=False), Stall()]),
        errors.ProviderTimeoutError,
        ["a", "b"],
        1,
    ),
    "half a UTF-8 character, then close": (
        Reply(body=[sse("a", done=False), HALF_EURO, Close()]),
        errors.StreamTruncatedError,
        ["a"],
        1,
    ),
    "half a UTF-8 character, then EOF (no chunked framing)": (
        Reply(raw=True, body=[sse("a", done=False), HALF_EURO]),
        errors.StreamTruncatedError,
        ["a"],
        1,
    ),
    "half a UTF-8 character, then reset": (
        Reply(body=[sse("a", done=False), HALF_EURO, Reset()]),
        errors.StreamTruncatedError,
        ["a"],
        1,
    ),
    "200 with an HTML page": (
        Reply(headers={"Content-Type": "text/html"}, body=[HTML]),
        errors.StreamError,
        [],
        1,
    ),
    "200 with an HTML page labelled text/event-stream": (
        Reply(body=[HTML]),
        errors.StreamError,
        [],
        1,
    ),
    "200 with an empty body": (
        Reply(body=[]),
        errors.StreamTruncatedError,
        [],
        1,
    ),
    "stall before the headers": (
        Reply(before=[Stall()]),
        errors.ProviderTimeoutError,
        [],
        1,
    ),
    "stall after the headers": (
        Reply(body=[Stall()]),
        errors.ProviderTimeoutError,
        [],
        1,
    ),
    "reset before the headers": (
        Reply(before=[Reset()]),
        errors.ProviderConnectionError,
        [],
        3,
    ),
    "close before the headers": (
        Reply(before=[Close()]),
        errors.ProviderConnectionError,
        [],
        3,
    ),
    "not HTTP at all": (
        Reply(before=[b"SSH-2.0-OpenSSH_9.6\r\n", Close()]),
        errors.ProviderConnectionError,
        [],
        3,
    ),
    "invalid JSON after a chunk": (
        Reply(body=[sse("a", done=False), event("{not json"), Stall()]),
        errors.StreamError,
        ["a"],
        1,
    ),
    "an error event mid-stream": (
        Reply(body=[sse("a", done=False), event({"error": {"message": "overloaded"}}), Stall()]),
        errors.UpstreamError,
        ["a"],
        1,
    ),
}


@pytest.mark.parametrize("case", list(STREAM_FAULTS))
async def test_stream_fault_raises_the_typed_error_in_time(
    upstream: ScriptedServer, provider: str, case: str
) -> None:
    reply, expected, texts, requests = STREAM_FAULTS[case]
    upstream.reply(reply)
    before = len(upstream.requests)
    outcome = await run(provider, base_of(upstream))
    assert isinstance(outcome.error, expected), outcome
    if expected is not errors.StreamError:
        assert type(outcome.error) is expected, outcome
    assert outcome.texts == texts
    assert len(upstream.requests) - before == requests  # no retry once text was seen
    if expected is errors.ProviderTimeoutError:
        assert isinstance(outcome.error, TimeoutError)


async def test_html_labelled_as_event_stream_is_named_as_such(upstream: ScriptedServer) -> None:
    upstream.reply(Reply(body=[HTML]))
    outcome = await run("codelinkava", base_of(upstream))
    assert type(outcome.error) is errors.StreamError, outcome
    assert "502 Bad Gateway" in str(outcome.error)


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize("retry_after", [None, "0", "1"])
async def test_gateway_statuses_are_retried_then_raised(
    upstream: ScriptedServer, provider: str, status: int, retry_after: str | None
) -> None:
    headers = {"Content-Type": "text/html"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    upstream.reply(Reply(status=status, headers=headers, body=[HTML]))
    before = len(upstream.requests)
    outcome = await run(provider, base_of(upstream), within=2 * 1.0 + MARGIN, max_retries=1)
    assert type(outcome.error) is errors.ResponseStatusError, outcome
    assert outcome.error.status == status
    assert "502 Bad Gateway" in outcome.error.body
    assert len(upstream.requests) - before == 2


async def test_retry_after_over_the_cap_is_raised_at_once(
    upstream: ScriptedServer, provider: str
) -> None:
    upstream.reply(Reply(status=503, headers={"Retry-After": "3600"}, body=[b"busy"]))
    before = len(upstream.requests)
    outcome = await run(provider, base_of(upstream), max_retries=5)
    assert type(outcome.error) is errors.ResponseStatusError, outcome
    assert len(upstream.requests) - before == 1


async def test_a_503_then_a_good_stream_is_served(upstream: ScriptedServer, provider: str) -> None:
    upstream.reply(
        Reply(status=503, headers={"Retry-After": "0"}, body=[b"busy"]),
        Reply(body=[sse("fine")]),
    )
    upstream.requests.clear()
    outcome = await run(provider, base_of(upstream), max_retries=2)
    assert outcome.error is None and outcome.texts == ["fine"]


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]  # bound, not listening: connections are refused


async def test_refused_connection(provider: str, closed_port: int) -> None:
    outcome = await run(provider, f"http://127.0.0.1:{closed_port}", max_retries=1)
    assert type(outcome.error) is errors.ProviderConnectionError, outcome
    assert f"127.0.0.1:{closed_port}" in str(outcome.error)


async def test_unresolvable_host(provider: str) -> None:
    # RFC 6761: `.invalid` never resolves; the resolver answers NXDOMAIN locally.
    outcome = await run(provider, "http://upstream.reliability.invalid", max_retries=1)
    assert type(outcome.error) is errors.ProviderConnectionError, outcome
    assert "upstream.reliability.invalid" in str(outcome.error)


async def test_tls_to_a_plain_http_port(upstream: ScriptedServer, provider: str) -> None:
    upstream.reply(Reply(body=[sse("never")]))
    outcome = await run(provider, f"https://127.0.0.1:{upstream.port}", max_retries=1)
    assert isinstance(outcome.error, errors.ProviderConnectionError), outcome
    assert outcome.texts == []


@pytest.mark.parametrize("case", ["reset mid-stream", "stall after 2 chunks"])
def test_the_sync_bridge_raises_the_same_typed_errors(upstream: ScriptedServer, case: str) -> None:
    reply, expected, texts, _requests = STREAM_FAULTS[case]
    upstream.reply(reply)
    got: list[str] = []
    start = time.monotonic()
    with pytest.raises(expected):
        for text in CodeLinkAva.create_completion(
            "m", MESSAGES, api_url=upstream.url(), timeout=LIMITS
        ):
            got.append(text)
    assert got == texts
    assert time.monotonic() - start < 1.0 + MARGIN
