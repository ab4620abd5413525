"""The gateway's streams on the wire, fronting a scripted upstream over real sockets."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from support.live_gateway import LiveGateway, fronting, live_gateway, wait_until
from support.scripted import Reply, ScriptedServer, Sleep, Stall, chunk, event, sse

HELLO = [{"role": "user", "content": "Hello"}]
TEXTS = ["Hello", ", мир", " 😀", ' "quoted"\n']


def data_events(raw: bytes) -> list[str]:
    """The payloads of an SSE body, checking that each event is exactly `data: X\\n\\n`."""
    text = raw.decode()
    assert text.endswith("data: [DONE]\n\n"), text[-80:]
    events = text.split("\n\n")
    assert events[-1] == ""
    for e in events[:-1]:
        assert e.startswith("data: "), e
        assert "\n" not in e and "\r" not in e, e
    return [e[len("data: ") :] for e in events[:-1]]


@dataclass
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


async def post(gateway: LiveGateway, path: str, body: dict[str, Any]) -> Answer:
    async with (
        asyncio.timeout(10),
        aiohttp.ClientSession() as session,
        session.post(gateway.url + path, json=body) as response,
    ):
        return Answer(response.status, response.headers, await response.read())


@pytest.fixture
def gateway(server: ScriptedServer) -> Any:
    with live_gateway(fronting(server.url("/v1"))) as running:
        yield running


async def test_v1_relays_the_upstream_chunks_as_sent(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    upstream = [
        chunk(role="assistant", content=""),
        *[chunk(t) for t in TEXTS],
        {**chunk(finish_reason="stop"), "system_fingerprint": "fp_1", "x_vendor": [1, None]},
    ]
    server.reply(Reply(body=[b"".join(event(c) for c in upstream) + event("[DONE]")]))
    body = {"model": "gpt-x", "messages": HELLO, "stream": True}
    response = await post(gateway, "/v1/chat/completions", body)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    events = data_events(response.body)
    assert events == [json.dumps(c) for c in upstream] + ["[DONE]"]  # the JSON text untouched


async def test_stream_shape(gateway: LiveGateway, server: ScriptedServer) -> None:
    """`/api/chat`, the seed's wire: our own text chunks, whatever the upstream sent."""
    server.reply(Reply(body=[sse(*TEXTS, finish=True)]))
    body = {"model": "gpt-x", "messages": HELLO, "stream": True}
    response = await post(gateway, "/api/chat", body)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert "Content-Length" not in response.headers
    assert "Content-Encoding" not in response.headers
    events = data_events(response.body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) == len(TEXTS) + 1
    first, last = chunks[0], chunks[-1]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": TEXTS[0]}
    assert [c["choices"][0]["delta"] for c in chunks[1:-1]] == [{"content": t} for t in TEXTS[1:]]
    assert last["choices"][0]["delta"] == {}
    assert last["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    for c in chunks:
        assert c["object"] == "chat.completion.chunk"
        assert c["id"] == first["id"] and c["id"].startswith("chatcmpl-")
        assert c["created"] == first["created"]
        assert c["model"] == "gpt-x"
        assert c["choices"][0]["index"] == 0
        assert "usage" not in c
    # The seed's parser: `json.loads(line[6:-1])` on each line, text in choices[0].delta.content.
    raw = response.body
    lines = [line + "\n" for line in raw.decode().split("\n")]
    seen = [
        json.loads(line[6:-1])["choices"][0]["delta"].get("content")
        for line in lines
        if line.startswith("data: ") and not line.startswith("data: [DONE]")
    ]
    assert "".join(t for t in seen if t) == "".join(TEXTS)


async def test_api_chat_sends_the_seed_defaults_upstream(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    await post(gateway, "/api/chat", {"messages": HELLO})
    sent = server.requests[-1].json()
    assert sent["messages"] == HELLO
    assert sent["temperature"] == 0.6
    assert sent["stream"] is True


async def test_include_usage_relays_the_upstreams_usage(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    server.reply(
        Reply(
            body=[
                sse("a", "b", finish=True, done=False)
                + event({**chunk(), "choices": [], "usage": usage})
                + event("[DONE]")
            ]
        )
    )
    body = {
        "model": "m",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = await post(gateway, "/v1/chat/completions", body)
    assert server.requests[-1].json()["stream_options"] == {"include_usage": True}
    chunks = [json.loads(e) for e in data_events(response.body)[:-1]]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == usage  # the upstream's count, not an estimate
    assert sum(1 for c in chunks if c.get("usage")) == 1


async def test_include_usage_counts_when_the_upstream_sends_none(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    server.reply(Reply(body=[sse("a", "b", "c", finish=True)]))
    body = {
        "model": "m",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = await post(gateway, "/v1/chat/completions", body)
    chunks = [json.loads(e) for e in data_events(response.body)[:-1]]
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["completion_tokens"] == 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_upstream_finish_reason_is_passed_on(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    server.reply(
        Reply(body=[event(chunk("a")), event(chunk(finish_reason="length")), event("[DONE]")])
    )
    response = await post(gateway, "/v1/chat/completions", {"messages": HELLO, "stream": True})
    chunks = [json.loads(e) for e in data_events(response.body)[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_empty_answer_still_has_role_finish_and_done(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    server.reply(Reply(body=[event("[DONE]")]), Reply(body=[event("[DONE]")]))
    response = await post(gateway, "/api/chat", {"messages": HELLO, "stream": True})
    chunks = [json.loads(e) for e in data_events(response.body)[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # /v1 relays what the upstream sent: here, nothing but the end.
    response = await post(gateway, "/v1/chat/completions", {"messages": HELLO, "stream": True})
    assert data_events(response.body) == ["[DONE]"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
async def test_non_streaming_answer(
    gateway: LiveGateway, server: ScriptedServer, path: str
) -> None:
    server.reply(Reply(body=[sse(*TEXTS, finish=True)]))
    response = await post(gateway, path, {"model": "m", "messages": HELLO, "stream": False})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    answer = json.loads(response.body)
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "m"
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "".join(TEXTS)},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    usage = answer["usage"]
    assert usage["completion_tokens"] == len(TEXTS)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_models_and_health(gateway: LiveGateway) -> None:
    async with asyncio.timeout(10), aiohttp.ClientSession() as session:
        async with session.get(gateway.url + "/v1/models") as response:
            models = await response.json()
        async with session.get(gateway.url + "/health") as response:
            health = await response.json()
    assert models == {
        "object": "list",
        "data": [
            {"id": "gpt-3.5-turbo", "object": "model", "created": 0, "owned_by": "codelinkava"}
        ],
    }
    assert health["status"] == "ok" and health["provider"] == "openai"


async def test_request_fields_reach_the_upstream_as_sent(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    body = {
        "model": "m",
        "messages": HELLO,
        "stream": True,
        "temperature": 0.1,
        "top_p": 0.5,
        "max_completion_tokens": 7,
        "stop": ["\n"],
        "seed": 3,
        "user": "u-1",
        "vendor_knob": {"a": 1},
    }
    response = await post(gateway, "/v1/chat/completions", body)
    assert response.status == 200
    sent = server.requests[-1].json()
    assert sent == body  # every field as the caller sent it, none renamed or dropped


# Flushing and disconnects ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
async def test_each_chunk_is_flushed_before_the_upstream_sends_the_next(
    gateway: LiveGateway, server: ScriptedServer, path: str
) -> None:
    server.reply(
        Reply(
            body=[
                event(chunk("one")),
                event(chunk("two")),
                event(chunk("three")),
                sse(finish=True),
            ],
            delay=0.2,
        )
    )
    loop = asyncio.get_running_loop()
    arrivals: list[tuple[float, bytes]] = []
    async with asyncio.timeout(10), aiohttp.ClientSession() as session:
        started = loop.time()
        body = {"messages": HELLO, "stream": True}
        async with session.post(gateway.url + path, json=body) as response:
            async for line in response.content:
                if line.startswith(b"data: "):
                    arrivals.append((loop.time() - started, line))
    texts = [
        json.loads(line[6:])["choices"][0]["delta"].get("content")
        for _, line in arrivals
        if not line.startswith(b"data: [DONE]")
    ]
    assert texts[:3] == ["one", "two", "three"]
    first, second, third = (at for at, _ in arrivals[:3])
    end = arrivals[-1][0]
    assert end >= 0.55  # the upstream took 3 x 0.2 s
    assert first < 0.2  # "one" arrived before the upstream even sent "two"
    assert 0.15 < second - first < 0.35
    assert 0.15 < third - second < 0.35


async def test_client_disconnect_closes_the_upstream_request(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    server.reply(Reply(body=[event(chunk("one")), Stall()]))
    async with asyncio.timeout(10), aiohttp.ClientSession() as session:
        response = await session.post(
            gateway.url + "/v1/chat/completions", json={"messages": HELLO, "stream": True}
        )
        await response.content.readuntil(b"\n\n")
        response.close()
        left_after = await server.wait_disconnect(within=2.0)
    assert left_after < 0.5
    await wait_until(lambda: gateway.app.state.gateway.gate.in_flight == 0)


async def test_client_that_leaves_before_the_first_chunk_frees_its_slot(
    gateway: LiveGateway, server: ScriptedServer
) -> None:
    server.reply(Reply(before=[Stall()]))
    async with asyncio.timeout(10), aiohttp.ClientSession() as session:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await session.post(
                    gateway.url + "/v1/chat/completions", json={"messages": HELLO, "stream": True}
                )
    await server.wait_disconnect(within=2.0)
    await wait_until(lambda: gateway.app.state.gateway.gate.in_flight == 0)


async def test_slow_upstream_first_chunk_is_waited_for(server: ScriptedServer) -> None:
    server.reply(Reply(body=[Sleep(0.5), sse("late", finish=True)]))
    with live_gateway(fronting(server.url("/v1"))) as gateway:
        response = await post(gateway, "/v1/chat/completions", {"messages": HELLO, "stream": True})
    chunks = [json.loads(e) for e in data_events(response.body)[:-1]]
    assert chunks[0]["choices"][0]["delta"]["content"] == "late"


async def test_fronting_a_codelinkava_upstream(server: ScriptedServer) -> None:
    server.reply(Reply(body=[sse("via", " api/chat")]))
    with live_gateway(fronting(server.url("/api/chat"), provider="codelinkava")) as gateway:
        response = await post(gateway, "/v1/chat/completions", {"messages": HELLO, "stream": True})
    chunks = [json.loads(e) for e in data_events(response.body)[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "via api/chat"
    sent = server.requests[-1]
    assert sent.path == "/api/chat"
    assert "model" not in sent.json()
