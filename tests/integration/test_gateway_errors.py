"""How the gateway reports trouble: upstream failures, bad requests, keys and limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from codelinkava.server import GatewaySettings
from support.live_gateway import LiveGateway, fronting, live_gateway, wait_until
from support.scripted import (
    SSE_HEADERS,
    Close,
    Reply,
    Reset,
    ScriptedServer,
    Stall,
    chunk,
    event,
    running_server,
    sse,
)

HELLO = [{"role": "user", "content": "Hello"}]
JSON = {"Content-Type": "application/json"}


async def call(
    url: str,
    body: Any = None,
    *,
    method: str = "POST",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    async with (
        asyncio.timeout(10),
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, data=data, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.read()


def error_of(raw: bytes) -> dict[str, Any]:
    payload = json.loads(raw)
    assert list(payload) == ["error"]
    error: dict[str, Any] = payload["error"]
    assert {"message", "type", "code"} <= set(error)
    assert error["message"]
    return error


def events_of(raw: bytes) -> list[str]:
    text = raw.decode()
    assert text.endswith("\n\n")
    parts = text.split("\n\n")[:-1]
    assert all(p.startswith("data: ") and "\n" not in p for p in parts), text
    return [p[6:] for p in parts]


# One upstream and two gateways for the module (a gateway takes ~0.2 s to stop); tests that
# need more replies than one, or other settings, make their own.


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedServer]:
    with running_server() as running:
        yield running


@pytest.fixture
def server(upstream: ScriptedServer) -> ScriptedServer:
    """The module's upstream, its script and records reset for this test."""
    upstream.reply()
    upstream.requests.clear()
    return upstream


@pytest.fixture(scope="module")
def gateway(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    settings = fronting(upstream.url("/v1"), provider_options={"timeout": 0.5})
    with live_gateway(settings) as running:
        yield running


@pytest.fixture(scope="module")
def keyed(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    with live_gateway(fronting(upstream.url("/v1"), api_key="sesame")) as running:
        yield running


def chat_url(gateway: LiveGateway) -> str:
    return gateway.url + "/v1/chat/completions"


# Before the first chunk: a real HTTP error ------------------------------------------------

BEFORE = [
    pytest.param(
        Reply(status=500, headers=JSON, body=[b'{"error": {"message": "kaput"}}']),
        502,
        "upstream_status_500",
        "kaput",
        id="upstream-500",
    ),
    pytest.param(
        Reply(status=503, headers={"Content-Type": "text/plain"}, body=[b"down for repairs"]),
        502,
        "upstream_status_503",
        "down for repairs",
        id="upstream-503",
    ),
    pytest.param(
        Reply(status=401, headers=JSON, body=[b'{"error": {"message": "bad key sk-12ab"}}']),
        502,
        "upstream_status_401",
        "refused the gateway's credentials",
        id="upstream-401-is-not-the-clients-fault",
    ),
    pytest.param(
        Reply(status=400, headers=JSON, body=[b'{"error": {"message": "context too long"}}']),
        400,
        "upstream_status_400",
        "context too long",
        id="upstream-400-passed-on",
    ),
    pytest.param(
        Reply(status=404, headers=JSON, body=[b'{"error": {"message": "no such model"}}']),
        404,
        "upstream_status_404",
        "no such model",
        id="upstream-404-passed-on",
    ),
    pytest.param(Reply(before=[Stall()]), 504, "upstream_timeout", "", id="no-response"),
    pytest.param(Reply(body=[Stall()]), 504, "upstream_timeout", "", id="headers-then-silence"),
    pytest.param(Reply(before=[Reset()]), 502, None, "", id="reset-before-response"),
    pytest.param(
        Reply(headers={"Content-Type": "text/html"}, body=[b"<html><body>Login</body></html>"]),
        502,
        "upstream_bad_stream",
        "",
        id="html-page",
    ),
    pytest.param(
        Reply(body=[b"data: {not json}\n\n"]), 502, "upstream_bad_stream", "", id="bad-json"
    ),
    pytest.param(
        Reply(body=[event({"error": {"message": "model overloaded"}})]),
        502,
        "upstream_bad_stream",
        "model overloaded",
        id="error-event",
    ),
    pytest.param(Reply(body=[Close()]), 502, None, "", id="empty-stream"),
]


@pytest.mark.parametrize(("reply", "status", "code", "says"), BEFORE)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
async def test_failure_before_the_first_chunk_is_an_http_error(
    gateway: LiveGateway,
    server: ScriptedServer,
    reply: Reply,
    status: int,
    code: str | None,
    says: str,
    stream: bool,
) -> None:
    server.reply(reply)
    got, headers, raw = await call(chat_url(gateway), {"messages": HELLO, "stream": stream})
    assert got == status, raw
    assert headers["Content-Type"] == "application/json"
    error = error_of(raw)
    if code is not None:
        assert error["code"] == code
    assert says in error["message"]
    # The caller never learns where the upstream is, nor what it said about our key.
    assert "127.0.0.1" not in error["message"]
    assert f":{server.port}" not in error["message"]
    assert "sk-12ab" not in error["message"]
    assert error["type"] in ("upstream_error", "invalid_request_error")
    await wait_until(lambda: gateway.app.state.gateway.gate.in_flight == 0)


async def test_unreachable_upstream_is_502(closed_port: int) -> None:
    with live_gateway(fronting(f"http://127.0.0.1:{closed_port}/v1")) as gateway:
        status, _, raw = await call(chat_url(gateway), {"messages": HELLO, "stream": True})
    assert status == 502
    assert error_of(raw)["code"] == "upstream_unreachable"


@pytest.mark.parametrize("retry_after", ["3", None])
async def test_upstream_rate_limit_is_429(
    gateway: LiveGateway, server: ScriptedServer, retry_after: str | None
) -> None:
    headers = dict(JSON) | ({"Retry-After": retry_after} if retry_after else {})
    server.reply(Reply(status=429, headers=headers, body=[b'{"error": {"message": "slow"}}']))
    status, got, raw = await call(chat_url(gateway), {"messages": HELLO, "stream": True})
    assert status == 429
    assert got.get("Retry-After") == retry_after
    assert error_of(raw)["type"] == "rate_limit_error"


async def test_gateway_retries_before_the_first_chunk(
    server: ScriptedServer, fast_backoff: None
) -> None:
    server.reply(
        Reply(status=503, headers=JSON, body=[b"{}"]),
        Reply(body=[sse("second", " time", finish=True)]),
    )
    settings = fronting(server.url("/v1"), provider_options={"max_retries": 1})
    with live_gateway(settings) as gateway:
        status, _, raw = await call(chat_url(gateway), {"messages": HELLO})
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == "second time"
    assert len(server.requests) == 2


# After the first chunk: in the stream, then [DONE] -------------------------------------------

AFTER = [
    pytest.param([Reset()], "upstream_", id="reset"),
    pytest.param([Close()], "upstream_bad_stream", id="cut-off"),
    pytest.param([Stall()], "upstream_timeout", id="silence"),
    pytest.param([b"data: {oops\n\n"], "upstream_bad_stream", id="bad-json"),
    pytest.param(
        [event({"error": {"message": "overloaded, sorry", "type": "server_error"}})],
        "upstream_bad_stream",
        id="error-event",
    ),
]


@pytest.mark.parametrize(("then", "code"), AFTER)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
async def test_failure_after_the_first_chunk_is_sent_in_stream(
    gateway: LiveGateway, server: ScriptedServer, then: list[Any], code: str, path: str
) -> None:
    server.reply(Reply(body=[event(chunk("one")), event(chunk(" two")), *then]))
    status, headers, raw = await call(gateway.url + path, {"messages": HELLO, "stream": True})
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    events = events_of(raw)
    assert [json.loads(e)["choices"][0]["delta"]["content"] for e in events[:2]] == ["one", " two"]
    error = json.loads(events[2])["error"]
    assert {"message", "type", "code"} <= set(error)
    assert error["code"].startswith(code)
    assert events[3:] == ["[DONE]"]
    await wait_until(lambda: gateway.app.state.gateway.gate.in_flight == 0)


async def test_upstream_error_message_reaches_the_client(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    server.reply(Reply(body=[event(chunk("one")), event({"error": {"message": "GPU on fire"}})]))
    _, _, raw = await call(chat_url(gateway), {"messages": HELLO, "stream": True})
    assert "GPU on fire" in json.loads(events_of(raw)[1])["error"]["message"]


async def test_failure_mid_answer_without_stream_is_an_http_error(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    server.reply(Reply(body=[event(chunk("one")), Reset()]))
    status, _, raw = await call(chat_url(gateway), {"messages": HELLO, "stream": False})
    assert status == 502
    assert error_of(raw)["type"] == "upstream_error"


# Bad requests ----------------------------------------------------------------------------------

VALID: dict[str, Any] = {"messages": HELLO}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param({"messages": []}, "messages", id="empty-messages"),
        pytest.param({}, "messages: Field required", id="no-messages"),
        pytest.param({"messages": [{"role": "robot", "content": "x"}]}, "role", id="bad-role"),
        pytest.param({"messages": [{"content": "x"}]}, "role", id="no-role"),
        pytest.param(
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "has no 'image_url'",
            id="image-part-without-its-url",
        ),
        pytest.param({**VALID, "temperature": 5}, "temperature", id="temperature-5"),
        pytest.param({**VALID, "temperature": "hot"}, "temperature", id="temperature-text"),
        pytest.param({**VALID, "top_p": 1.5}, "top_p", id="top-p-1.5"),
        pytest.param({**VALID, "max_tokens": -1}, "max_tokens", id="max-tokens-negative"),
        pytest.param({**VALID, "n": 0}, "n", id="n-0"),
        pytest.param({**VALID, "stop": ["a", "b", "c", "d", "e"]}, "stop", id="five-stops"),
        pytest.param({**VALID, "stream": "yes please"}, "stream", id="stream-text"),
    ],
)
async def test_invalid_body_is_400(gateway: LiveGateway, body: Any, says: str) -> None:
    status, _, raw = await call(chat_url(gateway), body)
    assert status == 400
    error = error_of(raw)
    assert error["type"] == "invalid_request_error"
    assert says in error["message"]


@pytest.mark.parametrize(
    ("data", "content_type", "says"),
    [
        pytest.param(b'{"messages": ', "application/json", "not valid JSON", id="truncated"),
        pytest.param(b"", "application/json", "JSON", id="empty"),
        pytest.param(b'"hi"', "application/json", "JSON object", id="string"),
        pytest.param(b'{"messages": []}', "text/plain", "Content-Type", id="text-plain"),
    ],
)
async def test_unparseable_body_is_400(
    gateway: LiveGateway, data: bytes, content_type: str, says: str
) -> None:
    status, _, raw = await call(
        chat_url(gateway), data=data, headers={"Content-Type": content_type}
    )
    assert status == 400
    assert says in error_of(raw)["message"]


async def test_too_many_messages_is_400(server: ScriptedServer) -> None:
    with live_gateway(fronting(server.url("/v1"), max_messages=3)) as gateway:
        status, _, raw = await call(chat_url(gateway), {"messages": HELLO * 4})
    assert status == 400
    assert error_of(raw)["code"] == "too_many_messages"
    assert server.requests == []


async def test_unknown_route_is_404_in_openai_shape(gateway: LiveGateway) -> None:
    status, _, raw = await call(gateway.url + "/v1/completions", VALID)
    assert status == 404
    assert error_of(raw)["code"] == "not_found"


# The key -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param({"Authorization": "Bearer open"}, id="wrong"),
        pytest.param({"Authorization": "Bearer sesame-and-more"}, id="longer"),
        pytest.param({"Authorization": "sesame"}, id="no-scheme"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat", "/v1/models", "/docs"])
async def test_wrong_or_missing_key_is_401(
    keyed: LiveGateway, server: ScriptedServer, headers: dict[str, str], path: str
) -> None:
    method = "POST" if "chat" in path else "GET"
    status, got, raw = await call(keyed.url + path, VALID, method=method, headers=headers)
    assert status == 401
    assert got["WWW-Authenticate"] == "Bearer"
    assert error_of(raw)["code"] == "invalid_api_key"
    assert server.requests == []


async def test_right_key_is_served_and_health_is_open(keyed: LiveGateway) -> None:
    status, _, _ = await call(chat_url(keyed), VALID, headers={"Authorization": "Bearer sesame"})
    assert status == 200
    status, _, _ = await call(chat_url(keyed), VALID, headers={"Authorization": "bearer   sesame "})
    assert status == 200
    status, _, _ = await call(keyed.url + "/health", method="GET")
    assert status == 200


# Limits ----------------------------------------------------------------------------------------


async def test_body_over_the_limit_is_413(server: ScriptedServer) -> None:
    big = {"messages": [{"role": "user", "content": "x" * 2000}]}
    with live_gateway(fronting(server.url("/v1"), max_body_bytes=1000)) as gateway:
        status, _, raw = await call(chat_url(gateway), big)
        assert status == 413
        assert error_of(raw)["code"] == "request_too_large"

        # No Content-Length: the limit holds while the body streams in. A raw socket, so the
        # whole request is written before the answer is read (the 413 comes early).
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
            pieces = [b" " * 100] * 20 + [json.dumps(big).encode()]
            writer.write(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
                + b"0\r\n\r\n"
            )
            await writer.drain()
            answer = await reader.read()
            writer.close()
            await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b"request_too_large" in answer
        status, _, _ = await call(chat_url(gateway), VALID)
        assert status == 200
    assert len(server.requests) == 1


async def test_over_the_concurrency_limit_is_503_never_a_hang(server: ScriptedServer) -> None:
    server.reply(Reply(body=[event(chunk("held")), Stall()]), Reply(body=[sse("ok", finish=True)]))
    settings = fronting(server.url("/v1"), max_concurrency=1, provider_options={"timeout": 30})
    with live_gateway(settings) as gateway:
        async with asyncio.timeout(10), aiohttp.ClientSession() as session:
            holder = await session.post(chat_url(gateway), json={**VALID, "stream": True})
            await holder.content.readuntil(b"\n\n")
            async with asyncio.timeout(1):
                status, headers, raw = await call(chat_url(gateway), VALID)
            assert status == 503
            assert headers["Retry-After"] == "1"
            assert error_of(raw)["code"] == "overloaded"
            holder.close()
            await wait_until(lambda: gateway.app.state.gateway.gate.in_flight == 0)
            status, _, _ = await call(chat_url(gateway), VALID)
            assert status == 200
        assert gateway.app.state.gateway.gate.refused == 1


async def test_settings_cannot_be_reached_from_a_request(server: ScriptedServer) -> None:
    settings = GatewaySettings(
        provider="openai",
        provider_options={"base_url": server.url("/v1"), "api_key": "upstream-key"},
        api_key=None,
        preload=False,  # no model listing at start-up: the upstream sees only the chat
    )
    with live_gateway(settings) as gateway:
        for name, value in [
            ("api_key", "mine"),
            ("base_url", "http://127.0.0.1:1/v1"),
            ("proxy", "http://127.0.0.1:1"),
            ("headers", {"Authorization": "Bearer mine"}),
            ("model_path", "/etc/passwd"),
            ("timeout", 0.001),
        ]:
            status, _, raw = await call(chat_url(gateway), {**VALID, name: value})
            assert status == 400, name
            error = json.loads(raw)["error"]
            assert error["param"] == name
            assert name in error["message"]
        status, _, _ = await call(chat_url(gateway), VALID)
    assert status == 200
    assert len(server.requests) == 1  # only the last request reached the upstream
    sent = server.requests[-1]
    assert sent.headers["Authorization"] == "Bearer upstream-key"
    assert set(sent.json()) == {"model", "messages", "stream"}


async def test_sse_headers_of_the_scripted_upstream_are_not_copied(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    server.reply(Reply(headers={**SSE_HEADERS, "X-Upstream-Secret": "1"}, body=[sse("a")]))
    _, headers, _ = await call(chat_url(gateway), {**VALID, "stream": True})
    assert "X-Upstream-Secret" not in headers


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        ("tool_choice", "required"),
        ("logprobs", True),
        ("n", 2),
    ],
)
async def test_api_chat_refuses_what_text_deltas_cannot_carry(
    server: ScriptedServer, field: str, value: object
) -> None:
    with live_gateway(fronting(server.url("/v1"))) as gateway:
        status, _, raw = await call(f"{gateway.url}/api/chat", {**VALID, field: value})
        assert status == 400, raw
        error = json.loads(raw)["error"]
        assert error["param"] == field and "/v1/chat/completions" in error["message"]
        status, _, _ = await call(chat_url(gateway), {**VALID, field: value, "stream": False})
    assert len(server.requests) == 1  # /v1 forwarded it; /api/chat sent nothing
    assert server.requests[0].json()[field] == value
