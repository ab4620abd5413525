"""Every failure under `/v1/messages` in Anthropic's shape, as the `anthropic` SDK sorts them.

`{"type": "error", "error": {"type", "message"}, "request_id"}` with Anthropic's
statuses: the middleware's 401 and 413, FastAPI's malformed-body 400, the
translator's 400s naming the field, an upstream's 429 (with its wait), the
gateway's own concurrency limit as 529, and an `event: error` once a stream
has started.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from support.anthropic_sdk import anthropic_client, close_anthropic_clients
from support.live_gateway import LiveGateway, fronting, live_gateway
from support.scripted import Reply, Reset, ScriptedServer, Stall, chunk, event, running_server, sse

MODEL = "gpt-4o-mini"
KEY = "messages-test-key"
QUESTION = [{"role": "user", "content": "Hi!"}]


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_anthropic_clients()


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedServer]:
    with running_server() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(upstream: ScriptedServer) -> None:
    upstream.handler = None
    upstream.reply(Reply(body=[sse("fine", finish=True)]))


@pytest.fixture(scope="module")
def gateway(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    """Keyed, one answer at a time, bodies of at most 8 KiB."""
    settings = fronting(
        upstream.url("/v1"), api_key=KEY, max_concurrency=1, max_body_bytes=8 * 1024
    )
    with live_gateway(settings) as running:
        yield running


def client(gateway: LiveGateway, key: str = KEY) -> anthropic.Anthropic:
    return anthropic_client(gateway.url, api_key=key)


def post(gateway: LiveGateway, body: bytes, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        gateway.url + headers.pop("path", "/v1/messages"),
        data=body,
        headers={"x-api-key": KEY, "content-type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def anthropic_error(data: bytes) -> dict[str, Any]:
    """The error object of a body in Anthropic's shape (and nothing else in it)."""
    body = json.loads(data)
    assert set(body) == {"type", "error", "request_id"}, body
    assert body["type"] == "error" and body["request_id"].startswith("req_")
    assert set(body["error"]) == {"type", "message"}, body
    error: dict[str, Any] = body["error"]
    return error


# The SDK's error classes ----------------------------------------------------------------------


def test_a_wrong_key_is_an_authentication_error(gateway: LiveGateway) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(gateway, key="wrong").messages.create(model=MODEL, max_tokens=8, messages=QUESTION)
    assert caught.value.status_code == 401
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def test_a_bearer_key_works_as_well(gateway: LiveGateway) -> None:
    sdk = anthropic_client(gateway.url, auth_token=KEY)
    assert sdk.messages.create(model=MODEL, max_tokens=8, messages=QUESTION).content


def test_an_upstream_429_is_a_rate_limit_error_with_the_wait(
    gateway: LiveGateway, upstream: ScriptedServer
) -> None:
    upstream.reply(
        Reply(
            status=429,
            headers={"Content-Type": "application/json", "Retry-After": "7"},
            body=[b'{"error": {"message": "slow down", "type": "rate_limit_exceeded"}}'],
        )
    )
    with pytest.raises(anthropic.RateLimitError) as caught:
        client(gateway).messages.create(model=MODEL, max_tokens=8, messages=QUESTION)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"] == {"type": "rate_limit_error", "message": "slow down"}  # type: ignore[index]
    assert caught.value.request_id and caught.value.request_id.startswith("req_")


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        pytest.param([{"role": "assistant", "content": "Hi"}], "messages.0.role", id="first-role"),
        pytest.param([{"role": "system", "content": "Hi"}], "messages.0.role", id="no-system-role"),
        pytest.param(
            [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": "Let me see."},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_nope", "content": "x"}
                    ],
                },
            ],
            "messages.2.content.0.tool_use_id",
            id="unmatched-tool-result",
        ),
    ],
)
def test_bad_turns_are_bad_requests_naming_the_field(
    gateway: LiveGateway, upstream: ScriptedServer, messages: list[dict[str, Any]], param: str
) -> None:
    before = len(upstream.requests)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(gateway).messages.create(model=MODEL, max_tokens=8, messages=messages)  # type: ignore[arg-type]
    error = caught.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert param in error["message"], error
    assert len(upstream.requests) == before  # refused before anything was sent


def test_what_the_upstream_cannot_honour_is_refused_by_name(gateway: LiveGateway) -> None:
    sdk = client(gateway)
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(
            model=MODEL,
            max_tokens=8,
            messages=QUESTION,
            thinking={"type": "enabled", "budget_tokens": 1024},
        )
    assert caught.value.body["error"]["message"].startswith("thinking: ")  # type: ignore[index]
    cached = [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": cached}]
        )
    assert "messages.0.content.0.cache_control" in caught.value.body["error"]["message"]  # type: ignore[index]


# Errors from before any route: the middleware and FastAPI's handlers ----------------------------


@pytest.mark.parametrize(
    ("body", "status", "kind", "says"),
    [
        pytest.param(
            b'{"model": "m", "messages": [', 400, "invalid_request_error", "JSON", id="broken-json"
        ),
        pytest.param(
            json.dumps({"model": "m", "messages": QUESTION}).encode(),
            400,
            "invalid_request_error",
            "max_tokens",
            id="no-max-tokens",
        ),
        pytest.param(
            json.dumps(
                {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]}
            ).encode(),
            400,
            "invalid_request_error",
            "messages.0.content",
            id="content-not-text",
        ),
        pytest.param(
            json.dumps(
                {"model": "m", "max_tokens": 5, "messages": QUESTION, "temperature": 1.5}
            ).encode(),
            400,
            "invalid_request_error",
            "temperature",
            id="temperature-above-one",
        ),
        pytest.param(b"x" * (9 * 1024), 413, "request_too_large", "larger", id="too-large"),
    ],
)
def test_early_errors_come_in_anthropics_shape(
    gateway: LiveGateway, body: bytes, status: int, kind: str, says: str
) -> None:
    got, headers, data = post(gateway, body)
    assert got == status, data
    error = anthropic_error(data)
    assert error["type"] == kind and says in error["message"], error
    assert headers["request-id"].startswith("req_")


def test_the_middlewares_401_and_count_tokens_errors_come_in_anthropics_shape(
    gateway: LiveGateway,
) -> None:
    status, _, data = post(gateway, b"{}", **{"x-api-key": "wrong"})
    assert status == 401 and anthropic_error(data)["type"] == "authentication_error"
    path = "/v1/messages/count_tokens"
    status, _, data = post(gateway, b"{}", path=path)
    assert status == 400 and anthropic_error(data)["type"] == "invalid_request_error"
    body = json.dumps({"model": "m", "messages": QUESTION, "api_key": "x"}).encode()
    status, _, data = post(gateway, body, path=path)
    assert status == 400 and "api_key" in anthropic_error(data)["message"]
    # the chat routes keep OpenAI's shape
    status, _, data = post(gateway, b"{", path="/v1/chat/completions")
    assert status == 400 and set(json.loads(data)) == {"error"}


def test_at_the_concurrency_limit_the_gateway_is_overloaded(
    gateway: LiveGateway, upstream: ScriptedServer
) -> None:
    upstream.reply(Reply(body=[event(chunk("busy")), Stall()]))
    held, done = threading.Event(), threading.Event()
    sdk = client(gateway)

    def hold() -> None:
        with sdk.messages.stream(model=MODEL, max_tokens=8, messages=QUESTION) as stream:
            for _ in stream.text_stream:
                held.set()
                done.wait(5)  # the one admitted stream stays open meanwhile
                break

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        with pytest.raises(anthropic.OverloadedError) as caught:
            sdk.messages.create(model=MODEL, max_tokens=8, messages=QUESTION)
        assert caught.value.status_code == 529
        assert caught.value.response.headers["retry-after"] == "1"
        assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    finally:
        done.set()
        holder.join(10)


def test_a_failure_after_the_start_is_an_error_event(
    gateway: LiveGateway, upstream: ScriptedServer
) -> None:
    upstream.reply(Reply(body=[event(chunk("partial")), Reset()]))
    body = json.dumps({"model": MODEL, "max_tokens": 8, "stream": True, "messages": QUESTION})
    status, _, data = post(gateway, body.encode())
    assert status == 200
    *_, last = data.decode().strip().split("\n\n")
    name, payload = last.split("\n")
    assert name == "event: error"
    error = json.loads(payload.removeprefix("data: "))
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    assert b"text_delta" in data and b"message_stop" not in data
    with (
        pytest.raises(anthropic.APIStatusError),
        client(gateway).messages.stream(model=MODEL, max_tokens=8, messages=QUESTION) as stream,
    ):
        list(stream.text_stream)
