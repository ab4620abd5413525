"""What a client gets when something is wrong: its key, its request, the limits, the upstream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import pytest

from support.scripted import Reply, Reset, ScriptedServer, Sleep, Stall, chunk, event, sse

from .conftest import API_KEY, MODEL, Gateway

pytestmark = pytest.mark.e2e

HELLO = [{"role": "user", "content": "Hello"}]


async def request(
    method: str,
    url: str,
    *,
    body: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    within: float = 15,
) -> tuple[int, dict[str, str], bytes]:
    async with (
        asyncio.timeout(within),
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, data=data, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.read()


def error_of(raw: bytes) -> dict[str, Any]:
    """The OpenAI-shaped error object in a body, checked for shape."""
    payload = json.loads(raw)
    assert set(payload) == {"error"}
    error: dict[str, Any] = payload["error"]
    assert {"message", "type", "code"} <= set(error)
    assert isinstance(error["message"], str) and error["message"]
    return error


def data_events(raw: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, checking every event is `data: ...\\n\\n`."""
    events = raw.decode().split("\n\n")
    assert events[-1] == ""
    assert all(e.startswith("data: ") and "\n" not in e for e in events[:-1]), raw
    return [e[len("data: ") :] for e in events[:-1]]


# The API key ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-key"),
        pytest.param({"Authorization": f"Basic {API_KEY}"}, id="wrong-scheme"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
async def test_missing_or_wrong_key_is_401(
    keyed_gateway: Gateway, headers: dict[str, str], path: str
) -> None:
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 4}
    status, got, raw = await request("POST", keyed_gateway.url + path, body=body, headers=headers)
    assert status == 401
    assert got["WWW-Authenticate"] == "Bearer"
    error = error_of(raw)
    assert error["type"] == "authentication_error"
    assert "API key" in error["message"]


async def test_models_need_the_key_and_health_does_not(keyed_gateway: Gateway) -> None:
    status, _, _ = await request("GET", f"{keyed_gateway.url}/v1/models")
    assert status == 401
    status, _, _ = await request(
        "GET", f"{keyed_gateway.url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert status == 200
    status, _, raw = await request("GET", f"{keyed_gateway.url}/health")
    assert status == 200
    assert json.loads(raw)["status"] == "ok"


def test_openai_sdk_with_a_wrong_key_raises_authentication_error(keyed_gateway: Gateway) -> None:
    with (
        openai.OpenAI(base_url=f"{keyed_gateway.url}/v1", api_key="wrong", max_retries=0) as c,
        pytest.raises(openai.AuthenticationError) as info,
    ):
        c.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=4, timeout=15)
    assert info.value.status_code == 401


def test_openai_sdk_with_the_key_streams(keyed_gateway: Gateway) -> None:
    with (
        openai.OpenAI(base_url=f"{keyed_gateway.url}/v1", api_key=API_KEY, max_retries=0) as c,
        c.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=8, stream=True, timeout=15
        ) as stream,
    ):
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.strip()


# Bad requests -----------------------------------------------------------------------

VALID: dict[str, Any] = {"model": MODEL, "messages": HELLO, "max_tokens": 4}


@pytest.mark.parametrize(
    ("data", "content_type", "says"),
    [
        pytest.param({**VALID, "messages": []}, None, "messages", id="empty-messages"),
        pytest.param(
            {**VALID, "messages": [{"role": "wizard", "content": "hi"}]},
            None,
            "role",
            id="bad-role",
        ),
        pytest.param({**VALID, "temperature": 5}, None, "temperature", id="temperature-5"),
        pytest.param({**VALID, "max_tokens": 0}, None, "max_tokens", id="max-tokens-0"),
        pytest.param({**VALID, "messages": "hi"}, None, "messages", id="messages-not-a-list"),
        pytest.param({"model": MODEL}, None, "messages", id="no-messages"),
        pytest.param(b'{"messages": [', "application/json", "not valid JSON", id="broken-json"),
        pytest.param(b"[1, 2]", "application/json", "JSON object", id="json-array"),
        pytest.param(
            json.dumps(VALID).encode(), "text/plain", "Content-Type", id="non-json-content-type"
        ),
        pytest.param(b"messages=hi", "application/x-www-form-urlencoded", "JSON", id="form"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
async def test_invalid_request_is_400_saying_what_is_wrong(
    gateway: Gateway, data: Any, content_type: str | None, says: str, path: str
) -> None:
    if isinstance(data, bytes):
        assert content_type is not None
        status, _, raw = await request(
            "POST", gateway.url + path, data=data, headers={"Content-Type": content_type}
        )
    else:
        status, _, raw = await request("POST", gateway.url + path, body=data)
    assert status == 400
    error = error_of(raw)
    assert error["type"] == "invalid_request_error"
    assert says in error["message"]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
async def test_unknown_model_is_404(gateway: Gateway, stream: bool) -> None:
    body = {"model": "gpt-17", "messages": HELLO, "stream": stream, "max_tokens": 4}
    status, _, raw = await request("POST", f"{gateway.url}/v1/chat/completions", body=body)
    assert status == 404
    error = error_of(raw)
    assert error["code"] == "model_not_found"
    assert "gpt-17" in error["message"]


def test_openai_sdk_unknown_model_raises_not_found(gateway: Gateway) -> None:
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0) as client,
        pytest.raises(openai.NotFoundError),
    ):
        client.chat.completions.create(model="gpt-17", messages=HELLO, timeout=15)


async def test_unknown_route_and_method(gateway: Gateway) -> None:
    status, _, raw = await request("GET", f"{gateway.url}/v2/nothing")
    assert status == 404
    error_of(raw)
    status, _, raw = await request("GET", f"{gateway.url}/v1/chat/completions")
    assert status == 405
    error_of(raw)


async def test_request_fields_that_choose_a_file_or_an_upstream_are_refused(
    gateway: Gateway,
) -> None:
    body = {
        **VALID,
        "model_path": "/etc/passwd",
        "api_url": "http://127.0.0.1:1/api/chat",
        "base_url": "http://127.0.0.1:1/v1",
        "proxy": "http://127.0.0.1:1",
    }
    status, _, raw = await request("POST", f"{gateway.url}/v1/chat/completions", body=body)
    assert status == 400, raw  # refused by name, never silently ignored
    assert error_of(raw)["param"] in body
    status, _, raw = await request("POST", f"{gateway.url}/v1/chat/completions", body=VALID)
    assert status == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"]


# Limits -------------------------------------------------------------------------------


async def test_body_over_the_limit_is_413(limited_gateway: Gateway) -> None:
    big = {**VALID, "messages": [{"role": "user", "content": "x" * 5000}]}
    status, _, raw = await request("POST", f"{limited_gateway.url}/v1/chat/completions", body=big)
    assert status == 413
    error = error_of(raw)
    assert "4,096" in error["message"]


async def test_body_under_the_limit_is_served(limited_gateway: Gateway) -> None:
    status, _, raw = await request("POST", f"{limited_gateway.url}/v1/chat/completions", body=VALID)
    assert status == 200, raw


async def test_over_the_concurrency_limit_is_503_at_once(limited_gateway: Gateway) -> None:
    url = f"{limited_gateway.url}/v1/chat/completions"
    long = {**VALID, "stream": True, "max_tokens": 1000}
    async with asyncio.timeout(30), aiohttp.ClientSession() as session:
        first = await session.post(url, json=long)
        try:
            assert first.status == 200
            await first.content.readuntil(b"\n\n")  # the stream is under way
            async with asyncio.timeout(2):  # refused at once, never queued
                async with session.post(url, json=VALID) as second:
                    assert second.status == 503
                    assert second.headers["Retry-After"] == "1"
                    error = error_of(await second.read())
            assert error["code"] == "overloaded"
        finally:
            first.close()
        while True:  # the slot comes back once the first client has gone
            async with session.get(f"{limited_gateway.url}/health") as health:
                if (await health.json())["in_flight"] == 0:
                    break
            await asyncio.sleep(0.01)
        async with session.post(url, json=VALID) as third:
            assert third.status == 200


# The gateway as a proxy: upstream failures ----------------------------------------------


@pytest.fixture
def proxy(proxy_gateway: Gateway, upstream: ScriptedServer) -> Iterator[Gateway]:
    upstream.requests.clear()
    try:
        yield proxy_gateway
    finally:
        upstream.handler = None


def reply_with(upstream: ScriptedServer, reply: Reply) -> None:
    upstream.handler = lambda recorded: reply


async def test_error_after_the_first_chunk_is_sent_in_stream(
    proxy: Gateway, upstream: ScriptedServer
) -> None:
    reply_with(
        upstream, Reply(body=[event(chunk("one", role="assistant")), event(chunk(" two")), Reset()])
    )
    body = {"model": "m", "messages": HELLO, "stream": True}
    status, headers, raw = await request("POST", f"{proxy.url}/v1/chat/completions", body=body)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    events = data_events(raw)
    assert [json.loads(e)["choices"][0]["delta"].get("content") for e in events[:2]] == [
        "one",
        " two",
    ]
    error = json.loads(events[2])["error"]
    assert {"message", "type", "code"} <= set(error)
    assert error["type"] == "upstream_error"
    assert events[3:] == ["[DONE]"]


async def test_stall_after_the_first_chunk_is_an_in_stream_timeout(
    proxy: Gateway, upstream: ScriptedServer
) -> None:
    reply_with(upstream, Reply(body=[event(chunk("one")), Stall()]))
    body = {"model": "m", "messages": HELLO, "stream": True}
    status, _, raw = await request("POST", f"{proxy.url}/api/chat", body=body)
    assert status == 200
    events = data_events(raw)
    assert json.loads(events[1])["error"]["code"] == "upstream_timeout"
    assert events[-1] == "[DONE]"


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
async def test_upstream_error_status_before_the_first_chunk_is_502(
    proxy: Gateway, upstream: ScriptedServer, stream: bool
) -> None:
    reply_with(
        upstream,
        Reply(
            status=500,
            headers={"Content-Type": "application/json"},
            body=[b'{"error": {"message": "the upstream broke"}}'],
        ),
    )
    body = {"model": "m", "messages": HELLO, "stream": stream}
    status, _, raw = await request("POST", f"{proxy.url}/v1/chat/completions", body=body)
    assert status == 502
    error = error_of(raw)
    assert error["type"] == "upstream_error"
    assert error["code"] == "upstream_status_500"


async def test_upstream_silence_before_the_first_chunk_is_504(
    proxy: Gateway, upstream: ScriptedServer
) -> None:
    reply_with(upstream, Reply(before=[Stall()]))
    body = {"model": "m", "messages": HELLO, "stream": True}
    status, _, raw = await request("POST", f"{proxy.url}/v1/chat/completions", body=body, within=10)
    assert status == 504
    assert error_of(raw)["code"] == "upstream_timeout"


async def test_upstream_reset_before_the_first_chunk_is_502(
    proxy: Gateway, upstream: ScriptedServer
) -> None:
    reply_with(upstream, Reply(before=[Reset()]))
    body = {"model": "m", "messages": HELLO, "stream": True}
    status, _, raw = await request("POST", f"{proxy.url}/v1/chat/completions", body=body)
    assert status == 502
    assert error_of(raw)["type"] == "upstream_error"


async def test_upstream_rate_limit_passes_retry_after_on(
    proxy: Gateway, upstream: ScriptedServer
) -> None:
    reply_with(
        upstream,
        Reply(
            status=429,
            headers={"Content-Type": "application/json", "Retry-After": "7"},
            body=[b'{"error": {"message": "slow down"}}'],
        ),
    )
    body = {"model": "m", "messages": HELLO}
    status, headers, raw = await request("POST", f"{proxy.url}/v1/chat/completions", body=body)
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert error_of(raw)["type"] == "rate_limit_error"


async def test_request_cannot_choose_the_upstream_it_is_refused_by_name(
    proxy: Gateway, upstream: ScriptedServer
) -> None:
    decoy = ScriptedServer()
    decoy.start()
    try:
        reply_with(upstream, Reply(body=[sse("from", " the configured upstream", finish=True)]))
        body = {
            "model": "m",
            "messages": HELLO,
            "stream": False,
            "base_url": decoy.url("/v1"),
            "api_url": decoy.url("/api/chat"),
            "headers": {"X-Evil": "1"},
            "proxy": decoy.url("/"),
            "api_key": "stolen",
        }
        status, _, raw = await request("POST", f"{proxy.url}/v1/chat/completions", body=body)
        assert status == 400, raw
        assert error_of(raw)["param"] in body
        plain = {k: v for k, v in body.items() if k in ("model", "messages", "stream")}
        status, _, raw = await request("POST", f"{proxy.url}/v1/chat/completions", body=plain)
    finally:
        decoy.stop()
    assert status == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == "from the configured upstream"
    assert decoy.requests == []
    sent = upstream.requests[-1]
    assert not {"base_url", "api_url", "headers", "proxy", "api_key"} & set(sent.json())
    assert "X-Evil" not in sent.headers
    assert "Authorization" not in sent.headers


async def test_proxy_relays_the_upstream_stream_as_it_comes(
    proxy: Gateway, upstream: ScriptedServer
) -> None:
    reply_with(
        upstream,
        Reply(body=[event(chunk("a")), Sleep(0.3), event(chunk("b")), sse(finish=True)]),
    )
    body = {"model": "m", "messages": HELLO, "stream": True}
    loop = asyncio.get_running_loop()
    async with (
        asyncio.timeout(10),
        aiohttp.ClientSession() as session,
        session.post(f"{proxy.url}/v1/chat/completions", json=body) as response,
    ):
        first = await response.content.readuntil(b"\n\n")
        first_at = loop.time()
        rest = await response.read()
        rest_at = loop.time()
    assert json.loads(first[6:])["choices"][0]["delta"]["content"] == "a"
    assert rest_at - first_at >= 0.2  # "a" arrived before "b" was sent
    assert rest.endswith(b"data: [DONE]\n\n")
