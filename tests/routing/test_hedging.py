"""Hedged first chunk: a second deployment raced against a slow first one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, ClassVar

import pytest

from codelinkava import errors
from codelinkava.chunk import ChatChunk
from codelinkava.providers import AsyncGeneratorProvider
from codelinkava.routing import Deployment, HedgePolicy, Router, RouterSettings
from codelinkava.types import Messages
from support.live_gateway import wait_until
from support.scripted import Recorded, Reply, Sleep, Stall, sse

from .support import FIRST, HELLO, CountingLimits, Upstreams, ask, deployment

OK = Reply(body=[sse("Hello", ", world")])


def hedged(delay: float | None = 0.05, **settings: Any) -> RouterSettings:
    policy = HedgePolicy(delay=delay) if delay is not None else HedgePolicy(max_delay=5.0)
    return RouterSettings(hedging={"m": policy}, **settings)


async def test_a_slow_first_deployment_loses_to_the_hedge(upstreams: Upstreams) -> None:
    slow, fast = upstreams(2)
    slow.reply(Reply(before=[Stall()]))
    limits = CountingLimits()
    router = Router(
        [
            deployment(slow, "slow", weight=FIRST, options={"timeout": 30.0}),
            deployment(fast, "fast"),
        ],
        hedged(0.05),
        limits=limits,
    )
    started = time.monotonic()
    answer = await ask(router)
    assert time.monotonic() - started < 1.0
    assert answer.text == "Hello, world"
    assert answer.record.deployment == "fast"
    assert answer.record.attempts == [] and answer.record.hedge_tokens == 0
    await slow.wait_disconnect(within=2)  # the loser's upstream connection is closed at once
    assert [s.in_flight for s in router.deployments()] == [0, 0]
    assert limits.open == {"slow": 0, "fast": 0}
    assert router.deployments()[0].health.cooled_until is None, "losing is not failing"


async def test_a_quick_first_deployment_is_not_hedged(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")], hedged(1.0))
    for _ in range(3):
        assert (await ask(router)).record.deployment == "a"
    assert b.requests == []


async def test_a_failure_before_the_delay_moves_on_at_once(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(Reply(status=503, headers={"Content-Type": "application/json"}, body=[b"{}"]))
    router = Router([deployment(a, "a", weight=FIRST), deployment(b, "b")], hedged(5.0))
    started = time.monotonic()
    answer = await ask(router)
    assert time.monotonic() - started < 1.0, "did not wait for the hedge delay"
    assert answer.record.attempts == ["a"] and answer.record.deployment == "b"


async def test_the_first_to_stream_wins_even_if_it_is_the_first_attempt(
    upstreams: Upstreams,
) -> None:
    a, b = upstreams(2)
    a.reply(Reply(before=[Sleep(0.2)], body=[sse("from a")]))
    b.reply(Reply(before=[Stall()]))
    router = Router(
        [deployment(a, "a", weight=FIRST), deployment(b, "b", options={"timeout": 30.0})],
        hedged(0.02),
    )
    answer = await ask(router)
    assert answer.text == "from a" and answer.record.deployment == "a"
    await b.wait_disconnect(within=2)


async def test_both_failing_is_the_last_error(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(
        Reply(before=[Sleep(0.1)], status=502, headers={"Content-Type": "text/plain"}, body=[b"a"])
    )
    b.reply(Reply(status=503, headers={"Content-Type": "text/plain"}, body=[b"b"]))
    router = Router(
        [deployment(a, "a", weight=FIRST), deployment(b, "b")], hedged(0.02, num_retries=0)
    )
    with pytest.raises(errors.ResponseStatusError) as info:
        await ask(router)
    assert info.value.status == 502  # b failed first, then a
    assert len(a.requests) == 1 and len(b.requests) == 1


async def test_the_p95_delay_follows_the_groups_first_chunks(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    slow = {"on": False}

    def answer(_request: Recorded) -> Reply:
        return Reply(before=[Stall()]) if slow["on"] else OK

    a.handler = answer
    router = Router(
        [deployment(a, "a", weight=FIRST, options={"timeout": 30.0}), deployment(b, "b")],
        hedged(None),  # p95, at most 5 s
    )
    for _ in range(25):  # quick first chunks teach the group its p95
        await ask(router)
    p95 = router.first_chunk_times("m").p95()
    assert p95 is not None and p95 < 0.2
    slow["on"] = True
    started = time.monotonic()
    result = await ask(router)
    assert result.record.deployment == "b"
    assert time.monotonic() - started < 1.0, "hedged after the p95, not after max_delay"


class Gated(AsyncGeneratorProvider):
    """An in-process provider whose first chunk waits for the test's word (`gate=`)."""

    gates: ClassVar[dict[str, asyncio.Event]] = {}
    working = True
    uses_network = False

    @classmethod
    async def create_async_chunk_batches(
        cls, model: str, messages: Messages, **kwargs: Any
    ) -> AsyncGenerator[list[ChatChunk], None]:
        await cls.gates[kwargs["gate"]].wait()
        yield [ChatChunk(content="one"), ChatChunk(content="two")]
        yield [ChatChunk(content="three", finish_reason="stop")]


async def test_a_loser_that_had_streamed_counts_its_tokens() -> None:
    Gated.gates = {"a": asyncio.Event(), "b": asyncio.Event()}
    router = Router(
        [
            Deployment("a", "m", Gated, options={"gate": "a"}, weight=FIRST),
            Deployment("b", "m", Gated, options={"gate": "b"}),
        ],
        hedged(0.01),
    )
    plan = router.plan("m", list(HELLO), {})
    batches = router.stream(plan)
    first = asyncio.ensure_future(anext(batches))
    # Past the hedge delay both attempts are open, neither has streamed.
    await wait_until(lambda: [s.in_flight for s in router.deployments()] == [1, 1])
    assert not first.done()
    Gated.gates["a"].set()
    Gated.gates["b"].set()  # both first chunks land in the same turn of the loop
    async with aclosing(batches):
        texts = [c.content for c in await first]
        async for batch in batches:
            texts += [c.content for c in batch]
    assert texts == ["one", "two", "three"]
    assert plan.record.deployment == "a"
    # Everything b streamed before it was cancelled: its first batch and the one its pump
    # had read ahead, thrown away.
    assert plan.record.hedge_tokens == 3
    assert [s.in_flight for s in router.deployments()] == [0, 0]


async def test_a_client_that_leaves_mid_race_closes_both_attempts(upstreams: Upstreams) -> None:
    a, b = upstreams(2)
    a.reply(Reply(before=[Stall()]))
    b.reply(Reply(before=[Stall()]))
    limits = CountingLimits()
    slow = {"timeout": 30.0}
    router = Router(
        [deployment(a, "a", weight=FIRST, options=slow), deployment(b, "b", options=slow)],
        hedged(0.02),
        limits=limits,
    )
    task = asyncio.create_task(ask(router))
    await wait_until(lambda: len(a.requests) == 1 and len(b.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await a.wait_disconnect(within=2)
    await b.wait_disconnect(within=2)
    assert [s.in_flight for s in router.deployments()] == [0, 0]
    assert limits.open == {"a": 0, "b": 0}
    assert all(s.health.cooled_until is None for s in router.deployments())
