"""Stored responses: what `GET /v1/responses/{id}` returns and `previous_response_id` continues.

A record is the finished Response object and the conversation a continuation
rebuilds on (the chat messages of every turn so far, its answer included, but
not its instructions: OpenAI does not carry those over). It is kept as its
JSON bytes, so what is stored cannot change after the fact and its size is known.

- `MemoryStore`: this process only; bounded by entries and bytes (least
  recently used first out) and by age (`ttl`).
- `RedisStore`: one key per response with the TTL, so every worker and host
  naming the same Redis answers for every response. Its size is Redis's to
  bound (`maxmemory`); a record over `max_bytes` is not stored, here as there.
  Each call has a deadline: a Redis that does not answer makes a lookup fail
  with `StoreUnavailableError` (a 503), never hang.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from codelinkava.errors import ProviderNotWorkingError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "MemoryStore",
    "RedisStore",
    "ResponseStore",
    "StoreUnavailableError",
    "StoredResponse",
    "make_store",
]

log = logging.getLogger("codelinkava.server.responses")


class StoreUnavailableError(ProviderNotWorkingError):
    """The shared store (Redis) did not answer in time (a 503: try again shortly)."""


@dataclass(frozen=True)
class StoredResponse:
    """One finished response and the conversation up to and including its answer."""

    response: dict[str, Any]
    messages: list[dict[str, Any]]

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"response": self.response, "messages": self.messages},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> StoredResponse:
        record = json.loads(data)
        return cls(record["response"], record["messages"])


class ResponseStore(Protocol):
    """Where finished responses are kept for a while."""

    async def put(self, response_id: str, record: StoredResponse) -> None:
        """Keep it (a record too large to keep is logged and left out)."""

    async def get(self, response_id: str) -> StoredResponse | None:
        """The record, or None when it was never stored, was deleted or has expired."""

    async def delete(self, response_id: str) -> bool:
        """Forget it; False when there was nothing to forget."""

    async def aclose(self) -> None:
        """Release connections."""


def _too_large(response_id: str, size: int, limit: int) -> bool:
    if size <= limit:
        return False
    log.warning(
        "response %s is %d bytes, over the store's %d: not stored", response_id, size, limit
    )
    return True


class MemoryStore:
    """This process's responses: at most `max_entries` and `max_bytes`, each for `ttl` s."""

    def __init__(
        self,
        *,
        max_entries: int = 1000,
        max_bytes: int = 64 * 1024 * 1024,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._records: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._records)

    async def put(self, response_id: str, record: StoredResponse) -> None:
        data = record.to_bytes()
        if _too_large(response_id, len(data), self.max_bytes):
            return
        self._drop(response_id)
        self._records[response_id] = (self._clock() + self.ttl, data)
        self.bytes += len(data)
        self._expire()
        while len(self._records) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self._records))
            self._drop(oldest)

    async def get(self, response_id: str) -> StoredResponse | None:
        entry = self._records.get(response_id)
        if entry is None:
            return None
        expires, data = entry
        if expires <= self._clock():
            self._drop(response_id)
            return None
        self._records.move_to_end(response_id)  # recently used: the last to go
        return StoredResponse.from_bytes(data)

    async def delete(self, response_id: str) -> bool:
        await self.get(response_id)  # an expired record is gone already
        return self._drop(response_id)

    async def aclose(self) -> None:
        self._records.clear()
        self.bytes = 0

    def _drop(self, response_id: str) -> bool:
        entry = self._records.pop(response_id, None)
        if entry is None:
            return False
        self.bytes -= len(entry[1])
        return True

    def _expire(self) -> None:
        """Drop expired records from the old end (insertion is in expiry order, reads
        reorder it; a record read recently but expired waits for its own `get`)."""
        now = self._clock()
        while self._records:
            oldest = next(iter(self._records))
            if self._records[oldest][0] > now:
                return
            self._drop(oldest)


def _without_maintenance_notifications() -> dict[str, Any]:
    """As `limits.py` does: no maintenance notifications, so our deadline stays ours."""
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:  # older redis-py
        return {}
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}


class RedisStore:
    """Responses in Redis: one key each (`prefix` + id) expiring after `ttl` seconds."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 3600.0,
        max_bytes: int = 64 * 1024 * 1024,
        timeout: float = 1.0,
        prefix: str = "codelinkava:response:",
    ) -> None:
        from redis.asyncio import BlockingConnectionPool, Redis

        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=16,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            **_without_maintenance_notifications(),
        )
        self._client: Redis = Redis.from_pool(pool)
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.prefix = prefix

    async def put(self, response_id: str, record: StoredResponse) -> None:
        data = record.to_bytes()
        if _too_large(response_id, len(data), self.max_bytes):
            return
        try:
            await self._call(
                self._client.set(self.prefix + response_id, data, px=int(self.ttl * 1000))
            )
        except StoreUnavailableError as exc:
            log.warning("response %s not stored: %s", response_id, exc)

    async def get(self, response_id: str) -> StoredResponse | None:
        data = await self._call(self._client.get(self.prefix + response_id))
        return None if data is None else StoredResponse.from_bytes(data)

    async def delete(self, response_id: str) -> bool:
        removed = await self._call(self._client.delete(self.prefix + response_id))
        return bool(removed)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, command: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await command
        except Exception as exc:
            raise StoreUnavailableError(
                f"the response store (Redis) did not answer: {type(exc).__name__}"
            ) from exc


def make_store(
    redis_url: str | None, *, max_entries: int, max_bytes: int, ttl: float
) -> ResponseStore:
    """Shared through Redis when a URL is given, else this process's memory."""
    if redis_url:
        return RedisStore(redis_url, ttl=ttl, max_bytes=max_bytes)
    return MemoryStore(max_entries=max_entries, max_bytes=max_bytes, ttl=ttl)
