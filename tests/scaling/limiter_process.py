"""A `RedisLimiter` in a process of its own, for the scaling tests (run as a script).

Connects, prints `ready`, waits for a line on stdin (so several processes
start together), then fires COUNT acquires at once under KEY with `rpm` and
prints how many were granted.
"""

from __future__ import annotations

import asyncio
import sys

from codelinkava.server.limiters import LimitSpec, RedisLimiter


async def run(url: str, key: str, rpm: int, count: int) -> int:
    limiter = RedisLimiter(url, timeout=5.0)
    try:
        spec = LimitSpec(rpm=rpm)
        await limiter.try_acquire("warm-up", LimitSpec(rpm=1000))  # connect before the start
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        leases = await asyncio.gather(*(limiter.try_acquire(key, spec) for _ in range(count)))
        assert limiter.shared, "Redis failed during the run"
        return sum(lease is not None for lease in leases)
    finally:
        await limiter.aclose()


def main() -> None:
    url, key, rpm, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(f"granted {asyncio.run(run(url, key, rpm, count))}", flush=True)


if __name__ == "__main__":
    main()
