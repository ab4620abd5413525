"""Faults behind the gateway: the caller hears of each in the documented way, and the
gateway stays healthy for the next request.

- After the first chunk: a 200 stream ending in `data: {"error": ...}` then `data: [DONE]`.
- Before it: an HTTP error in OpenAI's shape `{"error": {"message", "type", "code"}}`.

The gateway is `create_app(GatewaySettings(provider="openai", base_url=<upstream>))`
on uvicorn, with 1 s upstream limits and no retries (see conftest).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from support.live_gateway import LiveGateway, live_gateway
from support.scripted import Close, Reply, Reset, ScriptedServer, Stall, event, sse

from .conftest import UPSTREAM_TIMEOUT, gateway_settings
from .support import MESSAGES, Answer, assert_http_error, assert_in_stream_error, call

HTML = b"<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>"
HALF_EURO = b'data: {"choices":[{"delta":{"content":"\xe2\x82'
#: A caller must hear of any fault within the upstream limit plus this.
MARGIN = 5.0

# After the first chunk: (upstream script, error code in the stream)
IN_STREAM = {
    "reset mid-stream": (Reply(body=[sse("a", "b", done=False), Reset()]), "upstream_bad_stream"),
    "close mid-stream": (Reply(body=[sse("a", done=False), Close()]), "upstream_bad_stream"),
    "stall after 2 chunks": (Reply(body=[sse("a", "b", done=False), Stall()]), "upstream_timeout"),
    "half a UTF-8 character, then close": (
        Reply(body=[sse("a", done=False), HALF_EURO, Close()]),
        "upstream_bad_stream",
    ),
    "half a UTF-8 character, then EOF": (
        Reply(raw=True, body=[sse("a", done=False), HALF_EURO]),
        "upstream_bad_stream",
    ),
    "invalid JSON mid-stream": (
        Reply(body=[sse("a", done=False), event("{oops"), Stall()]),
        "upstream_bad_stream",
    ),
    "upstream error event mid-stream": (
        Reply(body=[sse("a", done=False), event({"error": {"message": "model fell over"}})]),
        "upstream_bad_stream",
    ),
}

# Before the first chunk: (upstream script, HTTP status, error code(s))
BEFORE: dict[str, tuple[Reply, int, str | tuple[str, ...]]] = {
    "reset before the headers": (Reply(before=[Reset()]), 502, "upstream_unreachable"),
    "close before the headers": (Reply(before=[Close()]), 502, "upstream_unreachable"),
    "stall before the headers": (Reply(before=[Stall()]), 504, "upstream_timeout"),
    "stall after the headers": (Reply(body=[Stall()]), 504, "upstream_timeout"),
    "reset after the headers": (
        Reply(body=[Reset()]),
        502,
        ("upstream_unreachable", "upstream_bad_stream"),  # either names it fairly
    ),
    "200 with an HTML page": (
        Reply(headers={"Content-Type": "text/html"}, body=[HTML]),
        502,
        "upstream_bad_stream",
    ),
    "200 with an HTML page labelled text/event-stream": (
        Reply(body=[HTML]),
        502,
        "upstream_bad_stream",
    ),
    "role chunk only, then reset": (
        Reply(body=[event({"choices": [{"delta": {"role": "assistant"}}]}), Reset()]),
        502,
        "upstream_bad_stream",
    ),
    "not HTTP at all": (
        Reply(before=[b"SSH-2.0-OpenSSH_9.6\r\n", Close()]),
        502,
        "upstream_unreachable",
    ),
    **{
        f"{status}{' with Retry-After' if after else ''}": (
            Reply(
                status=status,
                headers={"Content-Type": "text/html", **({"Retry-After": "1"} if after else {})},
                body=[HTML],
            ),
            502,
            f"upstream_status_{status}",
        )
        for status in (502, 503, 504)
        for after in (False, True)
    },
}


async def still_healthy(gateway: LiveGateway, upstream: ScriptedServer | None) -> None:
    """/health answers, and (with a working upstream) a good request streams in full."""
    health = await call(gateway.url, "/health", method="GET", within=5)
    assert health.status == 200 and health.json()["status"] == "ok"
    if upstream is not None:
        upstream.reply(Reply(body=[sse("all", " good")]))
        answer = await call(gateway.url, within=5)
        assert answer.status == 200 and answer.text == "all good", answer
        assert answer.events[-1] == "[DONE]"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
@pytest.mark.parametrize("case", list(IN_STREAM))
async def test_fault_after_the_first_chunk_is_an_in_stream_error(
    gateway: LiveGateway, upstream: ScriptedServer, case: str, path: str
) -> None:
    reply, code = IN_STREAM[case]
    upstream.reply(reply)
    answer = await call(gateway.url, path, within=UPSTREAM_TIMEOUT + MARGIN)
    error = assert_in_stream_error(answer)
    assert error["code"] == code, error
    assert error["type"] == "upstream_error"
    assert answer.text.startswith("a")
    await still_healthy(gateway, upstream)


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("case", list(BEFORE))
async def test_fault_before_the_first_chunk_is_an_http_error(
    gateway: LiveGateway, upstream: ScriptedServer, case: str, stream: bool
) -> None:
    reply, status, code = BEFORE[case]
    upstream.reply(reply)
    body = {"model": "m", "messages": MESSAGES, "stream": stream}
    answer = await call(gateway.url, body=body, within=UPSTREAM_TIMEOUT + MARGIN)
    error = assert_http_error(answer, status)
    assert error["code"] in ((code,) if isinstance(code, str) else code), error
    await still_healthy(gateway, upstream)


async def test_a_fault_after_the_first_chunk_of_a_whole_answer_is_an_http_error(
    gateway: LiveGateway, upstream: ScriptedServer
) -> None:
    upstream.reply(Reply(body=[sse("a", "b", done=False), Reset()]))
    body = {"model": "m", "messages": MESSAGES, "stream": False}
    answer = await call(gateway.url, body=body, within=UPSTREAM_TIMEOUT + MARGIN)
    assert assert_http_error(answer, 502)["code"] == "upstream_bad_stream"
    await still_healthy(gateway, upstream)


async def test_a_retrying_gateway_serves_through_a_503(upstream: ScriptedServer) -> None:
    upstream.reply(
        Reply(status=503, headers={"Retry-After": "0"}, body=[b"busy"]),
        Reply(body=[sse("second", " try")]),
    )
    upstream.requests.clear()
    settings = gateway_settings(upstream.url("/v1"), provider_options={"max_retries": 2})
    with live_gateway(settings) as gateway:
        answer = await call(gateway.url, within=UPSTREAM_TIMEOUT + MARGIN)
        assert answer.status == 200 and answer.text == "second try", answer
    assert len(upstream.requests) == 2


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def unreachable_upstreams(port: int, live: int) -> dict[str, str]:
    return {
        "refused connection": f"http://127.0.0.1:{port}/v1",
        "unresolvable host": "http://upstream.reliability.invalid/v1",
        "TLS to a plain-HTTP port": f"https://127.0.0.1:{live}/v1",
    }


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("case", list(unreachable_upstreams(0, 0)))
async def test_unreachable_upstream_is_a_502(
    upstream: ScriptedServer, closed_port: int, case: str, stream: bool
) -> None:
    upstream.reply(Reply(body=[sse("never")]))
    base_url = unreachable_upstreams(closed_port, upstream.port)[case]
    with live_gateway(gateway_settings(base_url)) as gateway:
        body = {"model": "m", "messages": MESSAGES, "stream": stream}
        answer = await call(gateway.url, body=body, within=UPSTREAM_TIMEOUT + MARGIN)
        error = assert_http_error(answer, 502)
        assert error["code"] == "upstream_unreachable", error
        await still_healthy(gateway, None)


async def test_twenty_faulty_streams_at_once_leave_the_gateway_idle(
    gateway: LiveGateway, upstream: ScriptedServer
) -> None:
    faults = [case for case in IN_STREAM.values()] + [(r, c) for r, _s, c in BEFORE.values()]

    def handler(recorded: object) -> Reply:
        index = len(upstream.requests) - 1
        return faults[index % len(faults)][0]

    upstream.handler = handler
    answers: list[Answer] = await asyncio.gather(
        *(call(gateway.url, within=UPSTREAM_TIMEOUT + MARGIN) for _ in range(20))
    )
    for answer in answers:
        if answer.status == 200:
            assert_in_stream_error(answer)
        else:
            assert_http_error(answer, (502, 504))
    upstream.handler = None
    health = (await call(gateway.url, "/health", method="GET")).json()
    assert health["in_flight"] == 0, health
    await still_healthy(gateway, upstream)
