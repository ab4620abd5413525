"""The gateway with a router behind it: real uvicorn, real upstreams, real sockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from codelinkava.routing import HedgePolicy, Router, RouterSettings
from support.live_gateway import wait_until
from support.scripted import Recorded, Reply, Stall, chunk, event, sse

from .support import (
    FIRST,
    CountingLimits,
    RoutedGateway,
    Upstreams,
    deployment,
    routed_gateway,
    status,
)

HELLO = [{"role": "user", "content": "Hello"}]


async def chat(
    gateway: RoutedGateway, model: str = "m", *, stream: bool = True, **extra: Any
) -> tuple[int, str]:
    """POST /v1/chat/completions; (status, the text of the answer, or the error body)."""
    body = {"model": model, "messages": HELLO, "stream": stream, **extra}
    async with (
        asyncio.timeout(10),
        aiohttp.ClientSession() as session,
        session.post(gateway.url + "/v1/chat/completions", json=body) as response,
    ):
        raw = await response.read()
    if response.status != 200:
        return response.status, raw.decode()
    if not stream:
        return 200, json.loads(raw)["choices"][0]["message"]["content"]
    text = raw.decode()
    assert text.endswith("data: [DONE]\n\n"), text[-200:]
    pieces = []
    for line in text.split("\n\n")[:-2]:
        payload = json.loads(line.removeprefix("data: "))
        assert "error" not in payload, payload
        for choice in payload.get("choices", []):
            pieces.append(choice["delta"].get("content") or "")
    return 200, "".join(pieces)


async def test_models_lists_every_group_in_order(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    router = Router([deployment(a, "a", "qwen"), deployment(b, "b", "llama")])
    with routed_gateway(router) as gateway:
        async with aiohttp.ClientSession() as session:
            async with session.get(gateway.url + "/v1/models") as response:
                listing = await response.json()
            async with session.get(gateway.url + "/health") as response:
                health = await response.json()
    assert [m["id"] for m in listing["data"]] == ["qwen", "llama"]
    assert health["model"] == "qwen"


async def test_failover_is_invisible_to_the_client_and_told_to_the_hooks(
    upstreams: Upstreams,
) -> None:
    a, b = upstreams(2)
    a.reply(status(503))
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")])
    with routed_gateway(router) as gateway:
        assert await chat(gateway) == (200, "Hello, world")
        await wait_until(lambda: len(gateway.outcomes) == 1)
    outcome = gateway.outcomes[0]
    assert outcome.deployment == "b" and outcome.attempts == ["a"]
    assert outcome.status == 200 and outcome.error == "" and not outcome.fallback


async def test_a_whole_answer_is_routed_too(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(status(500))
    whole = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1,
        "model": "upstream-b",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "whole"},
                "finish_reason": "stop",
            }
        ],
    }
    b.reply(Reply(headers={"Content-Type": "application/json"}, body=[json.dumps(whole).encode()]))
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")])
    with routed_gateway(router) as gateway:
        assert await chat(gateway, stream=False) == (200, "whole")
    assert b.requests[0].json()["stream"] is False


async def test_an_unknown_model_is_a_404(upstreams: Upstreams) -> None:
    (a,) = upstreams(1)
    with routed_gateway(Router([deployment(a, "a")])) as gateway:
        code, body = await chat(gateway, "nope")
    assert code == 404 and json.loads(body)["error"]["code"] == "model_not_found"
    assert a.requests == []


async def test_every_deployment_down_is_a_502_naming_no_upstream(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(status(503))
    b.reply(status(500))
    with routed_gateway(Router([deployment(a, "a"), deployment(b, "b")])) as gateway:
        code, body = await chat(gateway)
    error = json.loads(body)["error"]
    assert code == 502 and error["code"] in ("upstream_status_500", "upstream_status_503")
    assert "127.0.0.1" not in body


async def test_fallback_is_reported(upstreams: Upstreams) -> None:
    a, spare = upstreams(2)
    a.reply(status(503))
    router = Router(
        [deployment(a, "a"), deployment(spare, "spare", "backup")],
        RouterSettings(fallbacks={"m": ("backup",)}),
    )
    with routed_gateway(router) as gateway:
        assert await chat(gateway) == (200, "Hello, world")
        await wait_until(lambda: len(gateway.outcomes) == 1)
    assert gateway.outcomes[0].fallback is True
    assert gateway.outcomes[0].deployment == "spare"


async def test_rate_limit_skips_are_reported(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    router = Router(
        [deployment(a, "a", weight=FIRST), deployment(b, "b")], limits=CountingLimits(full={"a"})
    )
    with routed_gateway(router) as gateway:
        assert await chat(gateway) == (200, "Hello, world")
        await wait_until(lambda: len(gateway.outcomes) == 1)
    assert gateway.outcomes[0].rate_limited == 1 and gateway.outcomes[0].deployment == "b"


async def test_a_deployment_killed_under_load_loses_no_request_without_text(
    upstreams: Upstreams,
) -> None:
    doomed, survivor = upstreams(2)
    doomed.reply(Reply(before=[Stall()]))  # holds every request it gets until it dies
    router = Router(
        [
            deployment(doomed, "doomed", options={"timeout": 30.0}),
            deployment(survivor, "survivor"),
        ],
        RouterSettings(routing_strategy="least-busy", allowed_fails=0, cooldown_time=60),
    )
    with routed_gateway(router) as gateway:
        requests = [asyncio.create_task(chat(gateway)) for _ in range(16)]
        await wait_until(lambda: len(doomed.requests) >= 4, within=10)
        assert not any(r.finished.is_set() for r in doomed.requests), "none has streamed"
        doomed.stop()  # killed: its connections drop, its port refuses
        answers = await asyncio.gather(*requests)
        assert answers == [(200, "Hello, world")] * 16
        after = [await chat(gateway) for _ in range(5)]
        assert after == [(200, "Hello, world")] * 5
        await wait_until(lambda: len(gateway.outcomes) == 21)
    # Every request it held failed over (and some that reached it as it died).
    failed_over = [o for o in gateway.outcomes if o.attempts == ["doomed"]]
    assert len(failed_over) >= len(doomed.requests) >= 4
    assert {o.deployment for o in gateway.outcomes} == {"survivor"}


async def test_a_deployment_back_up_is_back_in_rotation_after_its_cooldown(
    upstreams: Upstreams,
) -> None:
    a, b = upstreams(2)
    down = {"on": True}

    def answer(_request: Recorded) -> Reply:
        return (
            Reply(status=502, headers={"Content-Type": "text/plain"}, body=[b"x"])
            if down["on"]
            else Reply(body=[sse("from a")])
        )

    a.handler = answer
    router = Router(
        [deployment(a, "a", weight=FIRST), deployment(b, "b")],
        RouterSettings(allowed_fails=0, cooldown_time=0.3),
    )
    health = router.deployments()[0].health
    with routed_gateway(router) as gateway:
        assert await chat(gateway) == (200, "Hello, world")
        assert health.cooled_until is not None
        down["on"] = False
        assert await chat(gateway) == (200, "Hello, world"), "still cooling: b answers"
        loop = asyncio.get_running_loop()
        # The router's clock is the gateway thread's loop time: both are monotonic.
        await wait_until(lambda: loop.time() >= (health.cooled_until or 0) + 0.01, within=2)
        assert await chat(gateway) == (200, "from a")
        assert health.cooled_until is None


async def test_hedging_through_the_gateway(upstreams: Upstreams) -> None:
    slow, fast = upstreams(2)
    slow.reply(Reply(before=[Stall()]))
    fast.reply(Reply(body=[event(chunk("quick")), event("[DONE]")]))
    router = Router(
        [
            deployment(slow, "slow", weight=FIRST, options={"timeout": 30.0}),
            deployment(fast, "fast"),
        ],
        RouterSettings(hedging={"m": HedgePolicy(delay=0.05)}),
    )
    with routed_gateway(router) as gateway:
        assert await chat(gateway) == (200, "quick")
        await slow.wait_disconnect(within=2)
        await wait_until(lambda: len(gateway.outcomes) == 1)
    outcome = gateway.outcomes[0]
    assert outcome.deployment == "fast" and outcome.attempts == [] and outcome.hedge_tokens == 0


async def test_the_seed_wire_is_routed(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(status(503))
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")])
    with routed_gateway(router) as gateway:
        async with (
            aiohttp.ClientSession() as session,
            session.post(gateway.url + "/api/chat", json={"messages": HELLO}) as response,
        ):
            raw = (await response.read()).decode()
    assert response.status == 200
    texts = [
        json.loads(line.removeprefix("data: "))["choices"][0]["delta"].get("content", "")
        for line in raw.split("\n\n")
        if line.startswith("data: {")
    ]
    assert "".join(texts) == "Hello, world"
