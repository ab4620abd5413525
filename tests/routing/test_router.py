"""The router over real upstreams: spreading, retrying before text, cooldowns, fallbacks, limits."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from contextlib import aclosing

import pytest

from codelinkava import errors
from codelinkava.providers import LocalModel
from codelinkava.routing import Deployment, Router, RouteRecord, RouterSettings
from codelinkava.server.limiters import MemoryLimiter
from codelinkava.server.routed import DeploymentLimiter
from support.live_gateway import wait_until
from support.scripted import (
    Recorded,
    Reply,
    Reset,
    Sleep,
    Stall,
    chunk,
    event,
    sse,
)

from .support import FIRST, HELLO, CountingLimits, Upstreams, ask, deployment, status

OK = Reply(body=[sse("Hello", ", world")])


def switchable(down: Reply) -> tuple[dict[str, bool], Callable[[Recorded], Reply]]:
    """A handler that answers `down` while `state["down"]`, else OK."""
    state = {"down": True}

    def handle(_request: Recorded) -> Reply:
        return down if state["down"] else OK

    return state, handle


async def test_spreads_requests_over_the_group(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    router = Router([deployment(a, "a"), deployment(b, "b")], rng=random.Random(5))
    answers = [await ask(router) for _ in range(20)]
    assert {answer.text for answer in answers} == {"Hello, world"}
    assert a.requests and b.requests
    assert len(a.requests) + len(b.requests) == 20
    assert a.requests[0].json()["model"] == "upstream-a"
    assert {answer.record.deployment for answer in answers} == {"a", "b"}


async def test_the_default_model_is_the_first_group(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    router = Router([deployment(a, "a", "first"), deployment(b, "b", "second")])
    assert router.models() == ["first", "second"]
    answer = await ask(router, "")
    assert answer.record.deployment == "a" and answer.plan.model == "first"


async def test_a_failure_before_text_is_retried_on_another_deployment(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(status(503))
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")])
    answer = await ask(router)
    assert answer.text == "Hello, world"
    assert answer.record.attempts == ["a"] and answer.record.deployment == "b"
    assert len(a.requests) == 1 and len(b.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(Reply(before=[Reset()]), id="reset"),
        pytest.param(status(429), id="429"),
        pytest.param(status(401), id="bad-key"),
        pytest.param(status(404), id="404"),
        pytest.param(Reply(headers={"Content-Type": "text/html"}, body=[b"<html>"]), id="html"),
        pytest.param(Reply(body=[event({"error": {"message": "overloaded"}})]), id="in-stream"),
    ],
)
async def test_what_moves_on_to_the_next_deployment(upstreams: Upstreams, failure: Reply) -> None:
    a, b = upstreams(2)
    a.reply(failure)
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")])
    answer = await ask(router)
    assert answer.text == "Hello, world" and answer.record.attempts == ["a"]


async def test_an_unreachable_deployment_is_passed_over(
    upstreams: Upstreams, closed_port: int
) -> None:
    (b,) = upstreams(1)
    dead = deployment(
        b, "dead", weight=FIRST, options={"base_url": f"http://127.0.0.1:{closed_port}/v1"}
    )
    router = Router([dead, deployment(b, "b")])
    answer = await ask(router)
    assert answer.text == "Hello, world" and answer.record.attempts == ["dead"]


async def test_a_slow_first_chunk_times_out_and_moves_on(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(Reply(before=[Stall()]))
    slow = deployment(a, "a", weight=FIRST, options={"timeout": 0.2})
    router = Router([slow, deployment(b, "b")])
    answer = await ask(router)
    assert answer.text == "Hello, world" and answer.record.attempts == ["a"]
    await a.wait_disconnect(within=2)


@pytest.mark.parametrize("code", [400, 413, 422])
async def test_the_requests_own_faults_are_not_retried(upstreams: Upstreams, code: int) -> None:
    a, b = upstreams(2)
    a.reply(status(code))
    router = Router(
        [deployment(a, "a", weight=FIRST), deployment(b, "b")], RouterSettings(allowed_fails=0)
    )
    with pytest.raises(errors.ResponseStatusError) as info:
        await ask(router)
    assert info.value.status == code
    assert b.requests == []
    assert router.deployments()[0].health.cooled_until is None, "not the deployment's fault"


async def test_a_role_only_opening_does_not_commit_the_answer(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(Reply(body=[event(chunk(role="assistant", content="")), Sleep(0.05), Reset()]))
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")])
    answer = await ask(router)
    assert answer.text == "Hello, world" and answer.record.attempts == ["a"]


async def test_text_already_sent_is_never_retried(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(Reply(body=[event(chunk("Hello")), Sleep(0.05), Reset()]))
    router = Router(
        [deployment(a, "a", weight=FIRST), deployment(b, "b")], RouterSettings(allowed_fails=0)
    )
    plan = router.plan("m", list(HELLO), {"stream": True})
    seen: list[str] = []
    with pytest.raises(errors.ProviderError):
        async with aclosing(router.stream(plan)) as batches:
            async for batch in batches:
                seen.extend(c.content or "" for c in batch)
    assert seen == ["Hello"]
    assert b.requests == []
    # It broke mid-answer: that still counts against its health.
    assert router.deployments()[0].health.cooled_until is not None


async def test_num_retries_bounds_the_deployments_tried(upstreams: Upstreams) -> None:
    servers = upstreams(3)
    for server in servers:
        server.reply(status(503))
    router = Router(
        [deployment(s, name) for s, name in zip(servers, "abc", strict=True)],
        RouterSettings(num_retries=1),
    )
    with pytest.raises(errors.ResponseStatusError) as info:
        await ask(router)
    assert sum(len(s.requests) for s in servers) == 2
    assert info.value.status == 503
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert "every deployment tried failed before its first chunk" in notes


async def test_cooldown_then_a_probe_brings_it_back(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    state, a.handler = switchable(status(503))
    settings = RouterSettings(allowed_fails=0, cooldown_time=0.3)
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")], settings)
    first = await ask(router)
    assert first.record.attempts == ["a"]
    health = router.deployments()[0].health
    assert health.cooled_until is not None
    for _ in range(5):  # cooling down: nothing is sent to it
        assert (await ask(router)).record.deployment == "b"
    assert len(a.requests) == 1
    state["down"] = False
    loop = asyncio.get_running_loop()
    await wait_until(lambda: loop.time() >= (health.cooled_until or 0), within=2)
    probe = await ask(router)
    assert probe.record.deployment == "a" and probe.record.attempts == []
    assert health.cooled_until is None
    assert (await ask(router)).record.deployment == "a"  # back in rotation


async def test_a_failed_probe_cools_it_down_again(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(status(500))
    settings = RouterSettings(allowed_fails=0, cooldown_time=0.2)
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")], settings)
    await ask(router)
    health = router.deployments()[0].health
    loop = asyncio.get_running_loop()
    await wait_until(lambda: loop.time() >= (health.cooled_until or 0), within=2)
    answer = await ask(router)
    assert answer.record.attempts == ["a"] and answer.record.deployment == "b"
    assert health.cooldowns == 2 and len(a.requests) == 2


async def test_fallbacks_take_over_when_the_whole_group_is_down(upstreams: Upstreams) -> None:
    a1, a2, backup = upstreams(3)
    a1.reply(status(503))
    a2.reply(Reply(before=[Reset()]))
    router = Router(
        [deployment(a1, "a1"), deployment(a2, "a2"), deployment(backup, "backup", "spare")],
        RouterSettings(fallbacks={"m": ("spare",)}),
    )
    answer = await ask(router)
    assert answer.text == "Hello, world"
    assert answer.record.fallback is True and answer.record.deployment == "backup"
    assert sorted(answer.record.attempts) == ["a1", "a2"]
    assert backup.requests[0].json()["model"] == "upstream-backup"


async def test_a_group_all_cooling_down_without_fallback_is_unavailable(
    upstreams: Upstreams,
) -> None:
    (a,) = upstreams(1)
    a.reply(status(503))
    router = Router([deployment(a, "a")], RouterSettings(allowed_fails=0, cooldown_time=60))
    with pytest.raises(errors.ResponseStatusError):
        await ask(router)
    with pytest.raises(errors.ProviderNotWorkingError, match="cooling down"):
        await ask(router)
    assert len(a.requests) == 1


async def test_a_deployment_at_its_rate_limit_is_skipped(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    limits = CountingLimits(full={"a"})
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")], limits=limits)
    answer = await ask(router)
    assert answer.record.deployment == "b" and answer.record.rate_limited == 1
    assert answer.record.attempts == [] and a.requests == []


async def test_every_deployment_at_its_limit_is_a_rate_limit_error(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    limits = CountingLimits(full={"a", "b"})
    router = Router([deployment(a, "a"), deployment(b, "b")], limits=limits)
    with pytest.raises(errors.RateLimitError, match="at its rate limit"):
        await ask(router)
    assert a.requests == [] and b.requests == []


async def test_every_lease_is_released_once_with_its_tokens(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(status(503))
    usage = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    b.reply(
        Reply(
            body=[
                event(chunk("Hi")),
                event({**chunk(finish_reason="stop"), "usage": usage}),
                event("[DONE]"),
            ]
        )
    )
    limits = CountingLimits()
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")], limits=limits)
    await ask(router)
    assert limits.asked == ["a", "b"]
    assert limits.released == [("a", 1), ("b", 9)]  # a: our estimate of the prompt (5 chars / 4)
    assert limits.open == {"a": 0, "b": 0}
    await router.aclose()
    assert limits.closed


async def test_a_client_that_leaves_before_the_first_chunk_frees_everything(
    upstreams: Upstreams,
) -> None:
    (a,) = upstreams(1)
    a.reply(Reply(before=[Stall()]))
    limits = CountingLimits()
    router = Router([deployment(a, "a", options={"timeout": 30.0})], limits=limits)
    task = asyncio.create_task(ask(router))
    await wait_until(lambda: len(a.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await a.wait_disconnect(within=2)
    state = router.deployments()[0]
    assert state.in_flight == 0 and limits.open == {"a": 0}
    assert state.health.cooled_until is None


async def test_latency_based_routing_prefers_the_quicker_deployment(upstreams: Upstreams) -> None:
    slow, fast = upstreams(2)
    slow.reply(Reply(before=[Sleep(0.15)], body=[sse("Hello", ", world")]))
    router = Router(
        [deployment(slow, "slow"), deployment(fast, "fast")],
        RouterSettings(routing_strategy="latency-based-routing"),
    )
    first_two = {(await ask(router)).record.deployment for _ in range(2)}
    assert first_two == {"slow", "fast"}, "each is measured once"
    later = [(await ask(router)).record.deployment for _ in range(5)]
    assert later == ["fast"] * 5


async def test_least_busy_avoids_the_deployment_holding_a_stream(upstreams: Upstreams) -> None:
    busy, idle = upstreams(2)
    busy.reply(Reply(body=[event(chunk("x")), Stall()]))
    router = Router(
        [deployment(busy, "busy", options={"timeout": 30.0}), deployment(idle, "idle")],
        RouterSettings(routing_strategy="least-busy"),
    )
    # Occupy "busy": ask until the router's pick (a coin toss while both are idle) lands there.
    while True:
        plan = router.plan("m", list(HELLO), {"stream": True})
        held = router.stream(plan)
        await anext(held)
        if plan.record.deployment == "busy":
            break
        await held.aclose()
    try:
        later = [(await ask(router)).record.deployment for _ in range(5)]
        assert later == ["idle"] * 5
    finally:
        await held.aclose()
    assert router.deployments()[0].in_flight == 0


def test_plan_refuses_before_anything_is_sent(upstreams: Upstreams) -> None:
    (a,) = upstreams(1)
    local = Deployment(name="local", model_name="small", provider=LocalModel)
    router = Router([deployment(a, "a"), local])
    with pytest.raises(errors.ModelNotFoundError, match="'nope' is not served here"):
        router.plan("nope", list(HELLO), {})
    with pytest.raises(errors.InvalidRequestError) as info:
        router.plan("small", list(HELLO), {"audio": {"voice": "alloy"}})
    assert info.value.param == "audio"
    with pytest.raises(errors.InvalidRequestError, match="set by the server"):
        router.plan("m", list(HELLO), {"base_url": "http://elsewhere"})
    assert a.requests == []


def test_a_mixed_group_sends_a_field_only_where_it_is_honoured(upstreams: Upstreams) -> None:
    (a,) = upstreams(1)
    local = Deployment(name="local", model_name="m", provider=LocalModel)
    router = Router([deployment(a, "a"), local])
    plan = router.plan("m", list(HELLO), {"audio": {"voice": "alloy"}})
    assert [s.name for s in plan.groups[0][1]] == ["a"]
    assert plan.relays_openai_chunks is True
    assert router.plan("m", list(HELLO), {}).relays_openai_chunks is False


def test_router_refuses_names_it_does_not_serve(upstreams: Upstreams) -> None:
    (a,) = upstreams(1)
    with pytest.raises(errors.InvalidRequestError, match="fallbacks name the model 'x'"):
        Router([deployment(a, "a")], RouterSettings(fallbacks={"m": ("x",)}))
    with pytest.raises(errors.InvalidRequestError, match="at least one deployment"):
        Router([])


async def test_record_is_a_route_record_by_default(upstreams: Upstreams) -> None:
    (a,) = upstreams(1)
    router = Router([deployment(a, "a")])
    plan = router.plan("m", list(HELLO), {})
    assert isinstance(plan.record, RouteRecord)


async def test_the_gateways_limiter_enforces_each_deployments_rpm(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    limits = DeploymentLimiter(MemoryLimiter(), owns=True)
    router = Router([deployment(a, "a", weight=FIRST, rpm=2), deployment(b, "b")], limits=limits)
    answers = [await ask(router) for _ in range(4)]
    assert [x.record.deployment for x in answers] == ["a", "a", "b", "b"]
    assert [x.record.rate_limited for x in answers] == [0, 0, 1, 1]
    assert len(a.requests) == 2
    only_a = Router([deployment(a, "a", rpm=1)], limits=DeploymentLimiter(MemoryLimiter()))
    await ask(only_a)
    with pytest.raises(errors.RateLimitError):
        await ask(only_a)
    await router.aclose()
