"""The limiters: exact under concurrency, shared across processes through a real Redis,
per process (and said so once) while Redis is away, shared again when it is back."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from codelinkava.routing import Lease
from codelinkava.server.limiters import (
    Limiter,
    LimitSpec,
    MemoryLimiter,
    RedisLimiter,
    make_limiter,
    redact_url,
)
from support.live_gateway import wait_until

from .support import HERE, RedisServer, child_env, stop_process, wait_async

LIMITS_LOG = "codelinkava.server.limiters"


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Limiter]:
    """Each behaviour below holds for both limiters."""
    if request.param == "memory":
        yield MemoryLimiter()
        return
    server = RedisServer(tmp_path)
    server.start()
    shared = RedisLimiter(server.url, timeout=5.0)  # a loaded CI box must not fall back
    try:
        yield shared
        assert shared.shared, "Redis failed during the test: the counts were per process"
    finally:
        await shared.aclose()
        server.stop()


async def acquire_all(limiter: Limiter, key: str, spec: LimitSpec, count: int) -> list[Lease]:
    results = await asyncio.gather(*(limiter.try_acquire(key, spec) for _ in range(count)))
    return [lease for lease in results if lease is not None]


async def test_concurrent_acquires_never_overshoot_rpm(limiter: Limiter) -> None:
    leases = await acquire_all(limiter, "deployment-a", LimitSpec(rpm=50), 200)
    assert len(leases) == 50
    assert await limiter.try_acquire("deployment-a", LimitSpec(rpm=50)) is None
    for lease in leases:  # releasing does not give back a request of the minute
        await lease.release()
    assert await limiter.try_acquire("deployment-a", LimitSpec(rpm=50)) is None
    assert await limiter.try_acquire("deployment-b", LimitSpec(rpm=50)) is not None  # own count


async def test_concurrent_acquires_never_overshoot_max_parallel(limiter: Limiter) -> None:
    spec = LimitSpec(max_parallel=10)
    leases = await acquire_all(limiter, "d", spec, 200)
    assert len(leases) == 10
    assert await limiter.try_acquire("d", spec) is None
    await leases[0].release()
    await leases[0].release()  # idempotent: frees one slot, not two
    assert len(await acquire_all(limiter, "d", spec, 5)) == 1
    for lease in leases[1:]:
        await lease.release()
    assert len(await acquire_all(limiter, "d", spec, 20)) == 9


async def test_tokens_count_against_tpm_when_released(limiter: Limiter) -> None:
    spec = LimitSpec(tpm=100)
    first = await limiter.try_acquire("d", spec)
    second = await limiter.try_acquire("d", spec)
    assert first is not None and second is not None  # nothing counted yet
    await first.release(60)
    third = await limiter.try_acquire("d", spec)
    assert third is not None  # 60 < 100
    await second.release(40)
    await second.release(40)  # counted once
    assert await limiter.try_acquire("d", spec) is None  # 100 reached
    await third.release(0)


async def test_every_limit_of_a_spec_holds_together(limiter: Limiter) -> None:
    spec = LimitSpec(rpm=5, max_parallel=2)
    held = await acquire_all(limiter, "d", spec, 10)
    assert len(held) == 2
    for lease in held:
        await lease.release()
    again = await acquire_all(limiter, "d", spec, 10)
    assert len(again) == 2  # 4 of 5 used
    for lease in again:
        await lease.release()
    leases = await acquire_all(limiter, "d", LimitSpec(rpm=5, max_parallel=10), 10)
    assert len(leases) == 1  # the fifth of the minute


@pytest.mark.parametrize(
    "spec", [LimitSpec(rpm=0), LimitSpec(tpm=0), LimitSpec(max_parallel=0)], ids=str
)
async def test_a_limit_of_zero_lets_nothing_through(limiter: Limiter, spec: LimitSpec) -> None:
    assert await limiter.try_acquire("closed", spec) is None


async def test_no_limits_always_fits(limiter: Limiter) -> None:
    leases = await acquire_all(limiter, "free", LimitSpec(), 100)
    assert len(leases) == 100
    for lease in leases:
        await lease.release(1000)
    assert len(await acquire_all(limiter, "free", LimitSpec(), 100)) == 100


async def test_no_limits_costs_no_redis_round_trip(redis_server: RedisServer) -> None:
    limiter = RedisLimiter(redis_server.url, timeout=5.0)
    client = aioredis.from_url(redis_server.url)
    try:
        assert await limiter.try_acquire("d", LimitSpec(rpm=10)) is not None
        before = await evalsha_calls(client)
        for _ in range(10):
            lease = await limiter.try_acquire("d", LimitSpec())
            assert lease is not None
            await lease.release(50)
        assert await evalsha_calls(client) == before
    finally:
        await client.aclose()
        await limiter.aclose()


async def evalsha_calls(client: aioredis.Redis) -> int:
    stats: dict[str, Any] = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def test_memory_limiter_is_exact_across_threads() -> None:
    limiter = MemoryLimiter()
    granted: list[int] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        mine = sum(limiter.acquire_now("d", LimitSpec(rpm=50)) is not None for _ in range(25))
        granted.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sum(granted) == 50


async def test_memory_window_slides_by_the_second() -> None:
    now = [1000.0]
    limiter = MemoryLimiter(clock=lambda: now[0])
    spec = LimitSpec(rpm=3, tpm=10)
    assert len(await acquire_all(limiter, "d", spec, 2)) == 2
    now[0] += 30
    leases = await acquire_all(limiter, "d", spec, 5)
    assert len(leases) == 1  # 3 within the minute
    await leases[0].release(10)
    now[0] += 30  # the first two left the window; the tokens (at +30 s) did not
    assert await limiter.try_acquire("d", spec) is None
    now[0] += 30
    assert len(await acquire_all(limiter, "d", spec, 5)) == 3


async def test_redis_window_is_the_last_sixty_seconds_of_redis_time(
    redis_server: RedisServer,
) -> None:
    limiter = RedisLimiter(redis_server.url, timeout=5.0)
    client = aioredis.from_url(redis_server.url)
    try:
        now = int((await client.time())[0])
        requests = "codelinkava:limit:{d}:requests"
        await client.hset(requests, str(now - 61), 1000)  # older than a minute: ignored
        assert await limiter.try_acquire("d", LimitSpec(rpm=5)) is not None
        assert not await client.hexists(requests, str(now - 61))  # and cleared
        await client.hset(requests, str(now - 30), 1000)  # within the minute: counted
        assert await limiter.try_acquire("d", LimitSpec(rpm=5)) is None
    finally:
        await client.aclose()
        await limiter.aclose()


def run_limiter_processes(url: str, counts: list[int], rpm: int) -> list[int]:
    """One process per count, each firing that many acquires at once, started together."""
    processes = [
        subprocess.Popen(
            [sys.executable, str(HERE / "limiter_process.py"), url, "shared", str(rpm), str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
            text=True,
        )
        for n in counts
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()  # blocks until ready or exited
            assert line.strip() == "ready", process.communicate(timeout=30)
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        granted = []
        for process in processes:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            granted.append(int(out.split()[-1]))
        return granted
    finally:
        for process in processes:
            stop_process(process)


@pytest.mark.parametrize("counts", [[100, 100], [10, 190], [0, 200]])
def test_two_processes_sharing_redis_let_exactly_rpm_through(
    redis_server: RedisServer, counts: list[int]
) -> None:
    granted = run_limiter_processes(redis_server.url, counts, rpm=50)
    assert sum(granted) == 50, granted


async def test_a_crashed_holders_slot_expires(redis_server: RedisServer) -> None:
    spec = LimitSpec(max_parallel=1)
    crashed = RedisLimiter(redis_server.url, timeout=5.0, lease_ttl=0.5)
    assert await crashed.try_acquire("d", spec) is not None
    await crashed.aclose()  # gone without releasing: no more renewals
    other = RedisLimiter(redis_server.url, timeout=5.0)
    try:
        assert await other.try_acquire("d", spec) is None
        leases: list[Lease] = []

        async def slot_free() -> bool:
            lease = await other.try_acquire("d", spec)
            if lease is not None:
                leases.append(lease)
            return lease is not None

        await wait_async(slot_free, within=10)
        await leases[0].release()
    finally:
        await other.aclose()


async def test_a_live_holder_keeps_its_slot_past_the_ttl(redis_server: RedisServer) -> None:
    spec = LimitSpec(max_parallel=1)
    holder = RedisLimiter(redis_server.url, timeout=5.0, lease_ttl=1.5)
    other = RedisLimiter(redis_server.url, timeout=5.0)
    client = aioredis.from_url(redis_server.url)
    try:
        lease = await holder.try_acquire("d", spec)
        assert lease is not None
        parallel = "codelinkava:limit:{d}:parallel"
        (_, first_expiry), *_ = await client.zrange(parallel, 0, -1, withscores=True)

        async def renewed_twice_over() -> bool:  # more than two TTLs have passed
            scores = await client.zrange(parallel, 0, -1, withscores=True)
            return bool(scores) and scores[0][1] >= first_expiry + 3000

        await wait_async(renewed_twice_over, within=20)
        assert await other.try_acquire("d", spec) is None
        await lease.release()
        assert await other.try_acquire("d", spec) is not None
    finally:
        await client.aclose()
        await holder.aclose()
        await other.aclose()


async def test_redis_away_then_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LIMITS_LOG)
    limiter = RedisLimiter(redis_server.url, timeout=2.0, probe_interval=0.05)
    spec = LimitSpec(rpm=1000, max_parallel=100)
    try:
        held = await limiter.try_acquire("d", spec)
        assert held is not None and limiter.shared
        redis_server.stop()
        leases = await acquire_all(limiter, "d", spec, 20)  # served, per process
        assert len(leases) == 20
        assert not limiter.shared
        await held.release(5)  # its store is gone: forgotten, never raised
        for lease in leases:
            await lease.release()
        assert len(await acquire_all(limiter, "d", spec, 20)) == 20
        away = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(away) == 1, caplog.text
        assert "per process" in away[0].getMessage()

        redis_server.start()
        await wait_until(lambda: limiter.shared, within=10)
        assert await limiter.try_acquire("d", spec) is not None
        client = aioredis.from_url(redis_server.url)
        try:  # counted in the new Redis
            assert await client.exists("codelinkava:limit:{d}:parallel") == 1
        finally:
            await client.aclose()
        back = [r for r in caplog.records if "shared across processes again" in r.getMessage()]
        assert len(back) == 1, caplog.text
        assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    finally:
        await limiter.aclose()


async def test_a_hung_redis_never_hangs_a_request(caplog: pytest.LogCaptureFixture) -> None:
    """A Redis that accepts connections and never answers: each caller waits at most the
    deadline, once; then limits are per process and nobody waits."""
    caplog.set_level(logging.WARNING, logger=LIMITS_LOG)
    silent: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    limiter = RedisLimiter(f"redis://127.0.0.1:{port}/0", timeout=0.25)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = await asyncio.gather(
            *(limiter.try_acquire("d", LimitSpec(max_parallel=3)) for _ in range(5))
        )
        assert loop.time() - started < 2.0
        assert sum(lease is not None for lease in first) == 3  # per process, still limited
        started = loop.time()
        assert await limiter.try_acquire("e", LimitSpec(max_parallel=3)) is not None
        assert loop.time() - started < 0.1  # no more waiting on the silent Redis
        assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    finally:
        await limiter.aclose()
        for writer in silent:
            writer.close()
        server.close()
        await server.wait_closed()


def test_make_limiter_picks_by_url() -> None:
    assert isinstance(make_limiter(None), MemoryLimiter)
    shared = make_limiter("redis://127.0.0.1:1/0")
    assert isinstance(shared, RedisLimiter)
    asyncio.run(shared.aclose())


def test_the_log_never_shows_the_redis_password() -> None:
    assert redact_url("redis://user:hunter2@cache.internal:6380/2") == (
        "redis://cache.internal:6380/2"
    )
    assert "hunter2" not in redact_url("rediss://:hunter2@cache:6379")
