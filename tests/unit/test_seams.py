"""The three seams, exercised without a socket: transport, retry policy, wire format.

Everything here goes through public names only (`codelinkava.transport`,
`codelinkava.retry`, `codelinkava.formats`, `codelinkava.request`,
`codelinkava.providers`), the way a user adding a transport or a format would.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterator
from typing import Any, ClassVar

import aiohttp
import pytest

from codelinkava import ChatChunk, CodeLinkAva, OpenAICompatible, RetryPolicy, Timeouts, errors
from codelinkava.config import split_options
from codelinkava.formats import StreamDecoder, WireFormat
from codelinkava.providers import HTTPChatProvider
from codelinkava.request import ChatRequest
from codelinkava.transports import MockResponse, MockTransport, TransportRequest
from codelinkava.types import Messages, validate_messages
from support.builders import FAST_RETRY as FAST
from support.builders import sse

MESSAGES = [{"role": "user", "content": "hi"}]


async def collect(**kwargs: Any) -> list[str]:
    return [t async for t in CodeLinkAva.create_async_generator("m", MESSAGES, **kwargs)]


# The transport seam ----------------------------------------------------------------------


async def test_the_mock_transport_sees_the_seeds_request_byte_for_byte() -> None:
    transport = MockTransport(lambda request: MockResponse(body=sse("Hel", "lo")))
    assert await collect(transport=transport, api_url="http://upstream.test/api/chat") == [
        "Hel",
        "lo",
    ]
    (sent,) = transport.requests
    assert sent.method == "POST" and sent.url == "http://upstream.test/api/chat"
    assert json.loads(sent.body) == {"messages": MESSAGES, "temperature": 0.6, "stream": True}
    assert sent.headers["Origin"] == CodeLinkAva.url
    assert transport.responses[0].finished  # drained after [DONE]: the connection is reusable


async def test_retries_follow_the_policy_and_the_servers_wait() -> None:
    answers = [
        MockResponse(status=503, headers={"retry-after-ms": "5"}, body=b"busy"),
        MockResponse(status=429, headers={"Retry-After": "0"}, body=b"slow down"),
        MockResponse(body=sse("ok")),
    ]
    transport = MockTransport(lambda request: answers.pop(0))
    assert await collect(transport=transport, retry=FAST) == ["ok"]
    assert len(transport.requests) == 3


async def test_a_status_outside_the_policy_is_raised_at_once() -> None:
    transport = MockTransport(lambda request: MockResponse(status=503, body=b"down"))
    policy = RetryPolicy(statuses=frozenset({429}), initial_backoff=0.001)
    with pytest.raises(errors.ResponseStatusError) as info:
        await collect(transport=transport, retry=policy)
    assert info.value.status == 503 and len(transport.requests) == 1


async def test_max_retries_changes_only_the_count_of_the_providers_policy() -> None:
    transport = MockTransport(lambda request: MockResponse(status=500, body=b"x"))
    with pytest.raises(errors.ResponseStatusError):
        await collect(transport=transport, retry=FAST, max_retries=4)
    assert len(transport.requests) == 5


async def test_a_wait_longer_than_the_cap_is_not_waited_for() -> None:
    transport = MockTransport(
        lambda request: MockResponse(status=429, headers={"Retry-After": "3600"}, body=b"")
    )
    with pytest.raises(errors.RateLimitError) as info:
        await collect(transport=transport, retry=FAST)
    assert info.value.retry_after == 3600 and len(transport.requests) == 1


async def test_connection_errors_are_retried_unless_the_policy_says_not() -> None:
    def refuse(request: TransportRequest) -> MockResponse:
        raise errors.ProviderConnectionError("refused")

    transport = MockTransport(refuse)
    with pytest.raises(errors.ProviderConnectionError):
        await collect(transport=transport, retry=FAST)
    assert len(transport.requests) == 3
    strict = MockTransport(refuse)
    with pytest.raises(errors.ProviderConnectionError):
        await collect(transport=strict, retry=RetryPolicy(retry_connection_errors=False))
    assert len(strict.requests) == 1


async def test_nothing_is_retried_once_text_reached_the_caller() -> None:
    # The break after the first piece: the response raises StreamTruncatedError (a real
    # transport's translation of a reset); the core must not try again.
    transport = MockTransport(
        lambda request: MockResponse(
            body=[sse("a", done=False), errors.StreamTruncatedError("cut")]
        )
    )
    got: list[str] = []
    with pytest.raises(errors.StreamTruncatedError):
        async for text in CodeLinkAva.create_async_generator(
            "m", MESSAGES, transport=transport, retry=FAST
        ):
            got.append(text)
    assert got == ["a"] and len(transport.requests) == 1


async def test_idle_timeout_on_a_stalled_mock_stream() -> None:
    transport = MockTransport(lambda request: MockResponse(body=[sse("a", done=False), 5.0]))
    with pytest.raises(errors.ProviderTimeoutError) as info:
        async with asyncio.timeout(3):
            await collect(transport=transport, timeout=Timeouts(idle=0.05))
    assert info.value.phase == "idle"


async def test_a_whole_json_answer_and_its_chunk() -> None:
    whole = {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x": 1}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    body = json.dumps(whole).encode()
    transport = MockTransport(
        lambda request: MockResponse(headers={"content-type": "application/json"}, body=body)
    )
    chunks = [
        c
        async for c in OpenAICompatible.create_async_chunks(
            "m", MESSAGES, stream=False, transport=transport, base_url="http://up.test/v1"
        )
    ]
    (chunk,) = chunks
    assert chunk.raw == body.decode() and chunk.data == whole
    assert chunk.finish_reason == "tool_calls" and chunk.usage == whole["usage"]
    assert chunk.tool_calls is not None and chunk.tool_calls[0].name == "f"
    assert json.loads(transport.requests[0].body)["stream"] is False


def test_every_aiohttp_exception_maps_to_one_of_ours() -> None:
    """`_http.translate_error` is the one place aiohttp's exceptions become ours."""
    from codelinkava.transports.aiohttp import translate_error

    classes = [
        value
        for name in dir(aiohttp)
        if inspect.isclass(value := getattr(aiohttp, name))
        and issubclass(value, BaseException)
        and value.__module__.startswith("aiohttp")
    ]
    assert len(classes) > 20
    for cls in classes:
        exc = _instance(cls)
        mapped = translate_error(exc, "http://127.0.0.1:9/x", phase="first_chunk")
        assert isinstance(mapped, errors.ProviderError), cls
        assert type(mapped) is not errors.ProviderError, cls  # a specific one, never the base


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance of an aiohttp exception, whatever its constructor wants."""
    from unittest.mock import MagicMock

    for args in ((), ("boom",), (1, "boom"), (MagicMock(), OSError(111, "refused"))):
        try:
            exc = cls(*args)
            str(exc)  # some build lazily and fail only when shown
            return exc
        except (TypeError, AttributeError):
            continue
    required = [
        p
        for p in inspect.signature(cls).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return cls(*[MagicMock() for _ in required])


# The retry policy --------------------------------------------------------------------------


def test_the_policy_refuses_nonsense() -> None:
    for bad in ({"max_retries": -1}, {"max_retries": True}, {"jitter": 2}, {"max_backoff": -1}):
        with pytest.raises(errors.InvalidRequestError):
            RetryPolicy(**bad)


def test_backoff_doubles_is_capped_and_jittered() -> None:
    policy = RetryPolicy(initial_backoff=1, max_backoff=4, jitter=0.25)
    for attempt, top in [(0, 1), (1, 2), (2, 4), (5, 4)]:
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(0.75 * top <= d <= top for d in delays) and len(delays) > 1
    assert policy.delay(3, retry_after=2.5) == 2.5


def test_options_take_a_policy_per_call_over_the_providers() -> None:
    options, body = split_options({"retry": FAST, "temperature": 1}, RetryPolicy(max_retries=9))
    assert options.retry is FAST and body == {"temperature": 1}
    options, _ = split_options({}, RetryPolicy(max_retries=9))
    assert options.max_retries == 9
    with pytest.raises(errors.InvalidRequestError):
        split_options({"retry": 3})


# The wire-format seam: a made-up format, written only against the public seams ---------------


class NDJSONDecoder(StreamDecoder):
    """One JSON object a line: `{"text"}`, `{"done": true, "reason"}` or `{"fault"}`."""

    def __init__(self) -> None:
        self.pending = b""
        self.done = False
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    def chunks(self, data: bytes) -> Iterator[ChatChunk]:
        *lines, self.pending = (self.pending + data).split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                raise errors.StreamError(f"not a JSON line: {line[:40]!r}") from None
            if "fault" in item:
                raise errors.UpstreamError(f"upstream error: {item['fault']}")
            if item.get("done"):
                self.done = True
                self.finish_reason = item.get("reason", "stop")
                self.usage = item.get("usage")
                yield ChatChunk(finish_reason=self.finish_reason, usage=self.usage)
                return
            yield ChatChunk(content=item["text"], raw=line.decode())

    def close(self) -> None:
        if not self.done:
            raise errors.StreamTruncatedError("the NDJSON stream ended without its done line")


class NDJSON(WireFormat):
    name = "ndjson"
    stream_media_types = frozenset({"application/x-ndjson"})
    accept = "application/x-ndjson"

    def decoder(self) -> NDJSONDecoder:
        return NDJSONDecoder()

    def parse_whole(self, body: bytes) -> ChatChunk:
        item = json.loads(body)
        return ChatChunk(content=item["text"], finish_reason="stop")


class LineChat(HTTPChatProvider):
    """A provider for the made-up format: its request names the format; nothing else."""

    working: ClassVar[bool] = True
    default_model: ClassVar[str] = "line-1"

    @classmethod
    def build_request(cls, model: str, messages: Messages, kwargs: dict[str, Any]) -> ChatRequest:
        kwargs = dict(kwargs)
        url = kwargs.pop("url", "http://lines.test/chat")
        options, extra = split_options(kwargs, cls.retry_policy)
        body = {"model": model, "prompt": validate_messages(messages), **extra}
        headers = {"Accept": NDJSON.accept, **options.headers}
        return ChatRequest(url, headers, body, options, wire=NDJSON())


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def test_a_new_format_streams_through_the_unchanged_core() -> None:
    body = ndjson({"text": "Hel"}, {"text": "lo"}, {"done": True, "usage": {"total_tokens": 3}})
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]  # lines split across reads
    transport = MockTransport(
        lambda request: MockResponse(headers={"content-type": "application/x-ndjson"}, body=pieces)
    )
    texts = [
        t async for t in LineChat.create_async_generator("line-1", MESSAGES, transport=transport)
    ]
    assert texts == ["Hel", "lo"]
    answer = await LineChat.create_async_answer("line-1", MESSAGES, transport=transport)
    assert answer.text == "Hello" and answer.usage == {"total_tokens": 3}
    assert "".join(LineChat.create_completion("line-1", MESSAGES, transport=transport)) == "Hello"


async def test_a_new_format_gets_the_cores_errors_and_retries() -> None:
    truncated = MockTransport(
        lambda request: MockResponse(
            headers={"content-type": "application/x-ndjson"}, body=ndjson({"text": "a"})
        )
    )
    with pytest.raises(errors.StreamTruncatedError):
        await LineChat.create_async("line-1", MESSAGES, transport=truncated)
    faulty = MockTransport(
        lambda request: MockResponse(
            headers={"content-type": "application/x-ndjson"},
            body=ndjson({"text": "a"}, {"fault": "overloaded"}),
        )
    )
    got: list[str] = []
    with pytest.raises(errors.UpstreamError, match="overloaded"):
        async for text in LineChat.create_async_generator("line-1", MESSAGES, transport=faulty):
            got.append(text)
    assert got == ["a"]
    answers = [MockResponse(status=502, body=b"bad gateway"), MockResponse(
        headers={"content-type": "application/x-ndjson"}, body=ndjson({"text": "ok"}, {"done": 1})
    )]  # fmt: skip
    flaky = MockTransport(lambda request: answers.pop(0))
    assert await LineChat.create_async("line-1", MESSAGES, transport=flaky, retry=FAST) == "ok"
    html = MockTransport(
        lambda request: MockResponse(headers={"content-type": "text/html"}, body=b"<html>502")
    )
    with pytest.raises(errors.StreamError, match="expected ndjson"):
        await LineChat.create_async("line-1", MESSAGES, transport=html)
