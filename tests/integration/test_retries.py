"""Retries before the first chunk: which statuses, how often, how long; never after text."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from codelinkava import CodeLinkAva, Timeouts, errors
from codelinkava.retry import RetryPolicy
from support.counting import CountingTransport
from support.scripted import MESSAGES, SSE_HEADERS, Reply, Reset, ScriptedServer, Sleep, sse

OK = Reply(body=[sse("fine")])


async def ask(server: ScriptedServer, **kwargs: Any) -> str:
    async with asyncio.timeout(10):
        gen = CodeLinkAva.create_async_generator("m", MESSAGES, api_url=server.url(), **kwargs)
        return "".join([t async for t in gen])


def status(code: int, **headers: str) -> Reply:
    body = json.dumps({"error": {"message": f"status {code}"}}).encode()
    return Reply(status=code, headers={"Content-Type": "application/json", **headers}, body=[body])


async def test_429_with_retry_after_zero_then_success(server: ScriptedServer) -> None:
    server.reply(status(429, **{"Retry-After": "0"}), OK)
    start = time.monotonic()
    assert await ask(server) == "fine"
    assert len(server.requests) == 2
    assert time.monotonic() - start < 0.3  # Retry-After: 0 means no backoff


async def test_retry_after_ms_is_honoured(server: ScriptedServer) -> None:
    server.reply(status(429, **{"retry-after-ms": "250"}), OK)
    start = time.monotonic()
    assert await ask(server) == "fine"
    assert 0.25 <= time.monotonic() - start < 1.0
    assert len(server.requests) == 2


async def test_backoff_without_retry_after(server: ScriptedServer) -> None:
    server.reply(status(503), OK)
    start = time.monotonic()
    assert await ask(server) == "fine"
    # INITIAL_BACKOFF 0.5 s with up to 25 % jitter
    assert 0.37 <= time.monotonic() - start < 1.0


@pytest.mark.parametrize("code", [500, 502, 503, 504, 408, 409, 429])
@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_retryable_statuses_are_retried_max_retries_times(
    server: ScriptedServer, fast_backoff: None, code: int, max_retries: int
) -> None:
    server.reply(status(code))
    with pytest.raises(errors.ResponseStatusError) as info:
        await ask(server, max_retries=max_retries)
    assert info.value.status == code
    assert f"status {code}" in str(info.value)
    assert len(server.requests) == max_retries + 1


async def test_default_max_retries_is_two(server: ScriptedServer, fast_backoff: None) -> None:
    server.reply(status(500))
    with pytest.raises(errors.ResponseStatusError):
        await ask(server)
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, errors.ResponseStatusError),
        (404, errors.ResponseStatusError),
        (422, errors.ResponseStatusError),
        (401, errors.AuthenticationError),
        (403, errors.AuthenticationError),
    ],
)
async def test_client_errors_are_not_retried(
    server: ScriptedServer, fast_backoff: None, code: int, error: type[errors.ResponseStatusError]
) -> None:
    server.reply(status(code), OK)
    with pytest.raises(error) as info:
        await ask(server)
    assert type(info.value) is error
    assert info.value.status == code
    assert len(server.requests) == 1


async def test_retry_after_beyond_the_cap_raises_at_once(server: ScriptedServer) -> None:
    server.reply(status(429, **{"Retry-After": "3600"}), OK)
    start = time.monotonic()
    with pytest.raises(errors.RateLimitError) as info:
        await ask(server)
    assert info.value.retry_after == 3600
    assert info.value.status == 429
    assert time.monotonic() - start < 0.5
    assert len(server.requests) == 1


async def test_rate_limit_after_retries_carries_retry_after(server: ScriptedServer) -> None:
    server.reply(status(429, **{"Retry-After": "0"}))
    with pytest.raises(errors.RateLimitError) as info:
        await ask(server, max_retries=1)
    assert info.value.retry_after == 0
    assert len(server.requests) == 2


async def test_reset_before_headers_is_retried(server: ScriptedServer, fast_backoff: None) -> None:
    server.reply(Reply(before=[Reset()]), OK)
    assert await ask(server) == "fine"
    assert len(server.requests) == 2


async def test_reset_before_headers_every_time(server: ScriptedServer, fast_backoff: None) -> None:
    server.reply(Reply(before=[Reset()]))
    with pytest.raises(errors.ProviderConnectionError):
        await ask(server, max_retries=2)
    assert len(server.requests) == 3


async def test_nothing_is_retried_once_text_was_yielded(
    server: ScriptedServer, fast_backoff: None
) -> None:
    server.reply(Reply(body=[sse("partial", done=False), Sleep(0.02), Reset()]), OK)
    out: list[str] = []
    with pytest.raises(errors.StreamTruncatedError):
        async with asyncio.timeout(5):
            async for text in CodeLinkAva.create_async_generator(
                "m", MESSAGES, api_url=server.url(), max_retries=3
            ):
                out.append(text)
    assert out == ["partial"]
    assert len(server.requests) == 1


async def test_status_error_body_that_stalls_still_raises(server: ScriptedServer) -> None:
    server.reply(
        Reply(status=500, headers={"Content-Type": "text/plain"}, body=[b"upstream down", Reset()])
    )
    with pytest.raises(errors.ResponseStatusError, match="upstream down"):
        await ask(server, max_retries=0)


# Connection failures ----------------------------------------------------------------


async def test_connection_refused_after_retries(closed_port: int, fast_backoff: None) -> None:
    counting = CountingTransport()
    with pytest.raises(errors.ProviderConnectionError, match=f"127.0.0.1:{closed_port}"):
        async with asyncio.timeout(5):
            async for _ in CodeLinkAva.create_async_generator(
                "m",
                MESSAGES,
                api_url=f"http://127.0.0.1:{closed_port}/api/chat",
                transport=counting,
            ):
                pass
    assert counting.attempts == 3


@pytest.mark.parametrize(
    "url", ["not a url", "http://", "ftp://127.0.0.1/api/chat", "http://[::1/api", "://x"]
)
async def test_invalid_url_is_an_invalid_request_at_once(url: str) -> None:
    slow = RetryPolicy(initial_backoff=5.0)  # a retry would show
    with pytest.raises(errors.InvalidRequestError):
        async with asyncio.timeout(2):
            async for _ in CodeLinkAva.create_async_generator(
                "m", MESSAGES, api_url=url, retry=slow
            ):
                pass


async def test_headers_the_client_cannot_send(server: ScriptedServer) -> None:
    with pytest.raises(errors.InvalidRequestError):
        await ask(server, headers={"X-Bad": "a\r\nInjected: yes"})
    assert server.requests == []


async def test_sse_retry_field_does_not_change_anything(server: ScriptedServer) -> None:
    server.reply(Reply(headers=SSE_HEADERS, body=[b"retry: 10\n\n" + sse("x")]))
    assert await ask(server) == "x"


async def test_retry_after_as_an_http_date(server: ScriptedServer) -> None:
    server.reply(status(503, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), OK)
    start = time.monotonic()
    assert await ask(server) == "fine"  # a date in the past: retry at once
    assert time.monotonic() - start < 0.3
    assert len(server.requests) == 2


async def test_total_timeout_stops_retrying(server: ScriptedServer) -> None:
    server.reply(status(503, **{"Retry-After": "2"}))
    start = time.monotonic()
    with pytest.raises(errors.ResponseStatusError):
        await ask(server, timeout=Timeouts(total=1.0))
    assert time.monotonic() - start < 0.5  # no use waiting 2 s with 1 s left
    assert len(server.requests) == 1


# Redirects ------------------------------------------------------------------------


@pytest.mark.parametrize("code", [307, 308])
async def test_method_preserving_redirects_are_followed(server: ScriptedServer, code: int) -> None:
    server.reply(Reply(status=code, headers={"Location": "/moved"}), OK)
    assert await ask(server) == "fine"
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/api/chat"),
        ("POST", "/moved"),
    ]
    assert server.requests[1].body == server.requests[0].body


@pytest.mark.parametrize("code", [301, 302, 303])
async def test_redirect_that_would_drop_the_body_is_an_error(
    server: ScriptedServer, code: int
) -> None:
    server.reply(Reply(status=code, headers={"Location": "/moved"}), OK)
    with pytest.raises(errors.ResponseStatusError, match="/moved") as info:
        await ask(server)
    assert info.value.status == code
    assert server.requests[0].method == "POST"


async def test_reset_after_headers_before_any_body_is_retried(
    server: ScriptedServer, fast_backoff: None
) -> None:
    server.reply(Reply(body=[Reset()]), OK)
    assert await ask(server) == "fine"
    assert len(server.requests) == 2


async def test_reset_after_headers_every_time(server: ScriptedServer, fast_backoff: None) -> None:
    server.reply(Reply(body=[Reset()]))
    with pytest.raises(errors.ProviderConnectionError, match="before the answer began"):
        await ask(server, max_retries=1)
    assert len(server.requests) == 2
