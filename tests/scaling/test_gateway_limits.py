"""The gateway's concurrency limit across processes through one Redis, and a gateway
that keeps serving while its Redis is away."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from codelinkava.server import GatewaySettings
from codelinkava.server.gate import SharedGate
from codelinkava.server.limiters import RedisLimiter
from support.live_gateway import LiveGateway, fronting, wait_until
from support.scripted import Reply, ScriptedServer, Stall, sse

from .support import RedisServer, gateways, wait_async

BODY = {"model": "m", "messages": [{"role": "user", "content": "Hello"}], "stream": True}
LIMIT = 3
GATEWAY_SLOTS = "codelinkava:limit:{gateway}:parallel"


async def post(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.post(f"{url}/v1/chat/completions", json=BODY) as response:
        return response.status, await response.read()


async def in_flight_in_redis(url: str) -> int:
    client = aioredis.from_url(url)
    try:
        return int(await client.zcard(GATEWAY_SLOTS))
    finally:
        await client.aclose()


@pytest.mark.parametrize("spread", [(5, 5), (1, 9), (9, 1)])
async def test_two_gateway_processes_share_one_concurrency_limit(
    redis_server: RedisServer,
    upstream: ScriptedServer,
    log_dir: Path,
    spread: tuple[int, int],
) -> None:
    """Each process alone would admit LIMIT; together, through Redis, they admit LIMIT."""
    upstream.reply(Reply(body=[Stall()]))  # every admitted request stays in flight
    args = ("--redis-url", redis_server.url, "--max-concurrency", str(LIMIT))
    with gateways(log_dir, upstream.url("/v1"), *args) as (first, second):
        urls = [first.url] * spread[0] + [second.url] * spread[1]
        async with aiohttp.ClientSession() as session:
            calls = [asyncio.create_task(post(session, url)) for url in urls]
            try:
                await wait_until(
                    lambda: (
                        sum(call.done() for call in calls) == len(urls) - LIMIT
                        and len(upstream.requests) == LIMIT
                    ),
                    within=30,
                )
                refused = [call.result() for call in calls if call.done()]
                assert all(status == 503 for status, _ in refused), refused
                assert all(b'"overloaded"' in body for _, body in refused)
                assert len(upstream.requests) == LIMIT  # every request is accounted for
                in_flight = first.health()["in_flight"] + second.health()["in_flight"]
                assert in_flight == LIMIT
                assert await in_flight_in_redis(redis_server.url) == LIMIT
            finally:
                for call in calls:  # the clients leave: the gateways release their places
                    call.cancel()
                await asyncio.gather(*calls, return_exceptions=True)
        await wait_until(lambda: first.health()["in_flight"] == 0, within=10)
        await wait_until(lambda: second.health()["in_flight"] == 0, within=10)
        await wait_async(lambda: _equals(in_flight_in_redis(redis_server.url), 0), within=10)

        upstream.reply(Reply(body=[sse("Hi")]))  # the places are free again, in both
        async with aiohttp.ClientSession() as session:
            for url in [first.url, second.url] * LIMIT:
                status, body = await post(session, url)
                assert status == 200, body


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_without_redis_each_process_has_its_own_limit(
    upstream: ScriptedServer, log_dir: Path
) -> None:
    """The contrast that makes the test above mean something: per process, two gateways
    admit twice the limit."""
    upstream.reply(Reply(body=[Stall()]))
    with gateways(log_dir, upstream.url("/v1"), "--max-concurrency", str(LIMIT)) as pair:
        urls = [pair[0].url] * 5 + [pair[1].url] * 5
        async with aiohttp.ClientSession() as session:
            calls = [asyncio.create_task(post(session, url)) for url in urls]
            try:
                await wait_until(
                    lambda: (
                        sum(call.done() for call in calls) == 10 - 2 * LIMIT
                        and len(upstream.requests) == 2 * LIMIT
                    ),
                    within=30,
                )
            finally:
                for call in calls:
                    call.cancel()
                await asyncio.gather(*calls, return_exceptions=True)


async def test_redis_stopped_mid_run_loses_no_request(
    redis_server: RedisServer, upstream: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="codelinkava.server.limiters")
    upstream.reply(Reply(body=[sse("Hello", ", world")]))
    settings = fronting(upstream.url("/v1"), redis_url=redis_server.url, max_concurrency=8)
    with patient_gateway(settings, redis_server.url) as gateway:
        limiter = gateway.app.state.gateway.shared_gate.limiter
        statuses: list[int] = []

        async def client(count: int) -> None:
            async with aiohttp.ClientSession() as session:
                for _ in range(count):
                    status, body = await post(session, gateway.url)
                    assert body.endswith(b"data: [DONE]\n\n"), body
                    statuses.append(status)

        runs = [asyncio.create_task(client(15)) for _ in range(4)]
        await wait_until(lambda: len(statuses) >= 10, within=30)
        await asyncio.to_thread(redis_server.stop)  # in the middle of the run
        await asyncio.gather(*runs)
        assert statuses == [200] * 60
        assert not limiter.shared
        down = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(down) == 1, caplog.text

        await asyncio.to_thread(redis_server.start)
        await wait_until(lambda: limiter.shared, within=10)
        statuses.clear()
        await client(5)
        assert statuses == [200] * 5
        assert await evalsha_calls(redis_server.url) >= 5  # counted in Redis again
        back = [r for r in caplog.records if "shared across processes again" in r.getMessage()]
        assert len(back) == 1, caplog.text
        assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1


@contextmanager
def patient_gateway(settings: GatewaySettings, redis_url: str) -> Iterator[LiveGateway]:
    """A live gateway whose limiter has a patient Redis deadline: on a busy machine a
    time-out before Redis stops would be a second "unreachable" line."""
    gateway = LiveGateway(settings)
    state = gateway.app.state.gateway
    state.shared_gate = SharedGate(
        state.gate, RedisLimiter(redis_url, timeout=2.0, probe_interval=0.05)
    )
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


async def evalsha_calls(url: str) -> int:
    client = aioredis.from_url(url)
    try:
        stats: dict[str, Any] = await client.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
    finally:
        await client.aclose()
