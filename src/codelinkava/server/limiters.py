"""Rate and concurrency limits: per process in memory, or shared through one Redis.

A `Limiter` answers one question atomically: may one more request under `key`
start now, within its `LimitSpec` (requests per minute, tokens per minute,
requests in flight)? Yes is a `Lease`, released exactly once when the request
is over with the tokens it used; no is None, at once -- a limit never queues.

- `MemoryLimiter` counts in this process: right for one worker, and what a
  shared limiter falls back to while its store is away.
- `RedisLimiter` counts in Redis, so a limit holds across every worker and
  host that names the same Redis. Each acquire is one `EVALSHA` of a Lua
  script that checks and counts in one step: no read-then-write race, so
  concurrent acquires never overshoot (LiteLLM's router users report limits
  overshot under concurrent calls; a script cannot be interleaved). Every
  call has a short deadline: a hung Redis costs a request at most that, then
  limits fall back to per process and the log says so once; a background
  probe notices when Redis answers again, and the log says that once too.

Windows: requests and tokens are counted in one-second buckets, and a check
sums the last 60 of them -- a sliding minute, exact to the second, on Redis's
own clock (hosts' clocks need not agree). Parallel slots are lease ids in a
sorted set scored by their expiry; the holder renews its leases while they
are open, so a worker that crashed frees its slots after `lease_ttl` seconds
instead of holding them for ever.

Tokens are known only when a request ends, so `tpm` refuses a request once the
minute's counted tokens reach it; requests already running may carry the
count past it (no limiter can know an answer's length in advance).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from codelinkava.routing.limits import UNLIMITED, Lease

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = [
    "LimitSpec",
    "Limiter",
    "MemoryLease",
    "MemoryLimiter",
    "RedisLimiter",
    "make_limiter",
]

log = logging.getLogger("codelinkava.server.limiters")

#: Seconds in a rate window, and the one-second buckets it is counted in.
WINDOW = 60


@dataclass(frozen=True)
class LimitSpec:
    """The limits of one key; None is no limit."""

    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # tokens per minute
    max_parallel: int | None = None  # requests in flight at once

    @property
    def counts_tokens(self) -> bool:
        return self.tpm is not None


class Limiter(Protocol):
    """Decides whether one more request under a key fits in its limits now."""

    async def try_acquire(self, key: str, spec: LimitSpec) -> Lease | None:
        """A lease, or None: over rpm / tpm / max_parallel right now."""

    async def aclose(self) -> None:
        """Release connections and background tasks."""


def make_limiter(redis_url: str | None) -> Limiter:
    """Shared through Redis when a URL is given, else per process."""
    return RedisLimiter(redis_url) if redis_url else MemoryLimiter()


# In memory -----------------------------------------------------------------------


class _Buckets:
    """Counts per second over the last `WINDOW` seconds."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def total(self, second: int) -> int:
        oldest = second - WINDOW
        stale = [s for s in self.counts if s <= oldest]
        for s in stale:
            del self.counts[s]
        return sum(self.counts.values())

    def add(self, second: int, amount: int) -> None:
        self.counts[second] = self.counts.get(second, 0) + amount


class _KeyState:
    __slots__ = ("parallel", "requests", "tokens")

    def __init__(self) -> None:
        self.requests = _Buckets()
        self.tokens = _Buckets()
        self.parallel = 0


class MemoryLease:
    """A place held in this process's count: released at once, no store to wait for."""

    __slots__ = ("_limiter", "_spec", "_state")

    def __init__(self, limiter: MemoryLimiter, state: _KeyState, spec: LimitSpec) -> None:
        self._limiter: MemoryLimiter | None = limiter
        self._state = state
        self._spec = spec

    async def release(self, tokens: int = 0) -> None:
        self.release_now(tokens)

    def release_now(self, tokens: int = 0) -> None:
        """`release` without awaiting: nothing here waits."""
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter._give_back(self._state, self._spec, tokens)


class MemoryLimiter:
    """Limits counted in this process (thread-safe; each check-and-count under one lock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._keys: dict[str, _KeyState] = {}
        self._lock = threading.Lock()

    async def try_acquire(self, key: str, spec: LimitSpec) -> Lease | None:
        return self.acquire_now(key, spec)

    def acquire_now(self, key: str, spec: LimitSpec) -> MemoryLease | None:
        """`try_acquire` without awaiting: nothing here waits."""
        second = int(self._clock())
        with self._lock:
            state = self._keys.get(key)
            if state is None:
                state = self._keys[key] = _KeyState()
            if spec.max_parallel is not None and state.parallel >= spec.max_parallel:
                return None
            if spec.rpm is not None and state.requests.total(second) >= spec.rpm:
                return None
            if spec.tpm is not None and state.tokens.total(second) >= spec.tpm:
                return None
            state.parallel += 1
            if spec.rpm is not None:
                state.requests.add(second, 1)
        return MemoryLease(self, state, spec)

    def _give_back(self, state: _KeyState, spec: LimitSpec, tokens: int) -> None:
        with self._lock:
            state.parallel -= 1
            if spec.tpm is not None and tokens > 0:
                state.tokens.add(int(self._clock()), tokens)

    async def aclose(self) -> None:
        return None


# Through Redis -------------------------------------------------------------------

#: KEYS: requests hash, tokens hash, parallel zset.
#: ARGV: rpm, tpm, max_parallel (-1: no limit), lease id, lease ttl in ms.
#: Returns 1 (a lease) or 0 (at a limit). Reads and writes in one step.
_ACQUIRE = """
local t = redis.call('TIME')
local second = tonumber(t[1])
local now_ms = second * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm, parallel = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl_ms = tonumber(ARGV[5])

local function window_total(key)
  local fields = redis.call('HGETALL', key)
  local total, stale = 0, {}
  for i = 1, #fields, 2 do
    if tonumber(fields[i]) <= second - 60 then
      stale[#stale + 1] = fields[i]
    else
      total = total + tonumber(fields[i + 1])
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  return total
end

if parallel >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms)
  if redis.call('ZCARD', KEYS[3]) >= parallel then return 0 end
end
if rpm >= 0 and window_total(KEYS[1]) >= rpm then return 0 end
if tpm >= 0 and window_total(KEYS[2]) >= tpm then return 0 end
if parallel >= 0 then
  redis.call('ZADD', KEYS[3], now_ms + ttl_ms, ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ttl_ms)
end
if rpm >= 0 then
  redis.call('HINCRBY', KEYS[1], second, 1)
  redis.call('EXPIRE', KEYS[1], 61)
end
return 1
"""

#: KEYS: tokens hash, parallel zset. ARGV: tokens, lease id ("" when no slot is held).
_RELEASE = """
if ARGV[2] ~= '' then redis.call('ZREM', KEYS[2], ARGV[2]) end
local tokens = tonumber(ARGV[1])
if tokens > 0 then
  redis.call('HINCRBY', KEYS[1], tonumber(redis.call('TIME')[1]), tokens)
  redis.call('EXPIRE', KEYS[1], 61)
end
return 1
"""

#: KEYS: parallel zset. ARGV: lease ttl in ms, then the ids of the leases still open.
_RENEW = """
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""


def _or_unlimited(limit: int | None) -> int:
    return -1 if limit is None else limit


def _redis_keys(prefix: str, key: str) -> tuple[str, str, str]:
    """The requests, tokens and parallel keys of one limit key (one hash slot: `{key}`)."""
    base = f"{prefix}{{{key}}}"
    return f"{base}:requests", f"{base}:tokens", f"{base}:parallel"


def redact_url(url: str) -> str:
    """`redis://host:port/db` without user or password, for the log."""
    parts = urlsplit(url)
    host = parts.hostname or parts.path or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path if parts.hostname else ''}"


def _without_maintenance_notifications() -> dict[str, Any]:
    """redis-py >= 7 asks each new connection for maintenance notifications, which may
    stretch time-outs to seconds during a failover: off, so our deadline stays ours."""
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:  # older redis-py: nothing to switch off
        return {}
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}


_FREE = UNLIMITED
_NO_LIMITS = LimitSpec()


class _RedisLease:
    __slots__ = ("_keys", "_lease_id", "_limiter", "_spec")

    def __init__(
        self, limiter: RedisLimiter, keys: tuple[str, str, str], spec: LimitSpec, lease_id: str
    ) -> None:
        self._limiter: RedisLimiter | None = limiter
        self._keys = keys
        self._spec = spec
        self._lease_id = lease_id

    async def release(self, tokens: int = 0) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            await limiter._release(self._keys, self._spec, self._lease_id, tokens)


class RedisLimiter:
    """Limits shared by every process that names this Redis; per process while it is away.

    `timeout` bounds each Redis call (a hung Redis never hangs a request);
    `probe_interval` is how often, while Redis is away, it is asked again;
    `lease_ttl` is how long a crashed holder's parallel slot outlives it;
    `max_connections` caps this process's connections (requests wait for one
    within `timeout`).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.25,
        probe_interval: float = 1.0,
        lease_ttl: float = 60.0,
        max_connections: int = 16,
        prefix: str = "codelinkava:limit:",
    ) -> None:
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # no retries: the fallback is the answer to a failure
            **_without_maintenance_notifications(),
        )
        self._client: Redis = Redis.from_pool(pool)
        self._acquire: AsyncScript = self._client.register_script(_ACQUIRE)
        self._release_script: AsyncScript = self._client.register_script(_RELEASE)
        self._renew: AsyncScript = self._client.register_script(_RENEW)
        self.where = redact_url(url)
        self.timeout = timeout
        self.probe_interval = probe_interval
        self.lease_ttl = lease_ttl
        self.prefix = prefix
        self._fallback = MemoryLimiter()
        self._shared = True
        self._open: dict[str, set[str]] = {}  # parallel key -> ids of the leases held here
        self._probe: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._forgetting: set[asyncio.Task[None]] = set()  # held: the loop's references are weak
        self._closed = False

    @property
    def shared(self) -> bool:
        """True while limits are counted in Redis; False while they are per process."""
        return self._shared

    async def try_acquire(self, key: str, spec: LimitSpec) -> Lease | None:
        if spec == _NO_LIMITS:  # nothing to count: no round trip
            return _FREE
        if not self._shared or self._closed:
            return self._fallback.acquire_now(key, spec)
        keys = _redis_keys(self.prefix, key)
        lease_id = secrets.token_hex(8)
        args = (
            _or_unlimited(spec.rpm),
            _or_unlimited(spec.tpm),
            _or_unlimited(spec.max_parallel),
            lease_id,
            int(self.lease_ttl * 1000),
        )
        try:
            async with asyncio.timeout(self.timeout):
                granted = await self._acquire(keys=keys, args=args)
        except asyncio.CancelledError:  # the caller left; the script may have run
            if spec.max_parallel is not None:
                self._forget_later(keys, lease_id)
            raise
        except Exception as exc:
            if spec.max_parallel is not None:  # the script may have run: free its slot
                self._forget_later(keys, lease_id)
            self._lost(exc)
            return self._fallback.acquire_now(key, spec)
        if not granted:
            return None
        if spec.max_parallel is not None:
            self._open.setdefault(keys[2], set()).add(lease_id)
            self._start_renewing()
        return _RedisLease(self, keys, spec, lease_id)

    async def _release(
        self, keys: tuple[str, str, str], spec: LimitSpec, lease_id: str, tokens: int
    ) -> None:
        holds_slot = spec.max_parallel is not None
        if holds_slot:
            self._open.get(keys[2], set()).discard(lease_id)
        counted = tokens if spec.counts_tokens and tokens > 0 else 0
        if (not holds_slot and not counted) or self._closed:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self._release_script(
                    keys=keys[1:], args=(counted, lease_id if holds_slot else "")
                )
        except Exception as exc:  # the slot expires on its own (`lease_ttl`)
            self._lost(exc)

    def _forget_later(self, keys: tuple[str, str, str], lease_id: str) -> None:
        """Best effort, in the background: free a slot an interrupted acquire may have taken."""

        async def forget() -> None:
            try:
                async with asyncio.timeout(self.timeout):
                    await self._release_script(keys=keys[1:], args=(0, lease_id))
            except Exception:
                log.debug("could not free an interrupted lease; it expires on its own")

        task = asyncio.get_running_loop().create_task(forget())
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)

    # Redis away and back

    def _lost(self, exc: BaseException) -> None:
        """Redis failed a call: per-process limits until the probe hears it again."""
        if not self._shared or self._closed:
            return
        self._shared = False
        log.warning(
            "Redis at %s is unreachable (%s): limits are per process until it is back",
            self.where,
            type(exc).__name__,
        )
        self._probe = asyncio.get_running_loop().create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            try:
                async with asyncio.timeout(self.timeout):
                    await self._client.ping()
            except Exception:
                continue
            self._shared = True
            log.warning("Redis at %s is back: limits are shared across processes again", self.where)
            return

    # Renewing the slots held here, so only a crashed holder's slots expire

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_open_leases())

    async def _renew_open_leases(self) -> None:
        ttl_ms = int(self.lease_ttl * 1000)
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            for parallel_key, ids in list(self._open.items()):
                if not ids:
                    del self._open[parallel_key]
                    continue
                try:
                    async with asyncio.timeout(self.timeout):
                        await self._renew(keys=(parallel_key,), args=(ttl_ms, *ids))
                except Exception as exc:
                    self._lost(exc)

    async def aclose(self) -> None:
        """Idempotent (a gateway and a router may share one limiter and both close it)."""
        if self._closed:
            return
        self._closed = True
        for task in (self._probe, self._renewer, *self._forgetting):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._client.aclose()
