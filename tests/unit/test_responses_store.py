"""The in-memory store of responses (`server/responses/store.py`): bounded by entries,
bytes and age. (The Redis store runs against a real redis-server in
`scaling/test_responses_store.py`.)"""

from __future__ import annotations

from typing import Any

from codelinkava.server.responses.store import MemoryStore, StoredResponse


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(text: str = "x") -> StoredResponse:
    return StoredResponse({"id": "resp", "output": [text]}, [{"role": "user", "content": text}])


async def ids(store: MemoryStore, *names: str) -> list[str]:
    return [name for name in names if await store.get(name) is not None]


async def test_a_record_comes_back_as_it_was_stored_and_cannot_be_changed_through_it() -> None:
    store = MemoryStore()
    await store.put("a", record("hello"))
    got = await store.get("a")
    assert got == record("hello")
    assert got is not None
    got.messages.append({"role": "user", "content": "tampered"})
    assert await store.get("a") == record("hello")


async def test_the_least_recently_used_goes_first_past_the_entry_limit() -> None:
    store = MemoryStore(max_entries=2)
    await store.put("a", record())
    await store.put("b", record())
    await store.get("a")  # a is now the more recently used
    await store.put("c", record())
    assert await ids(store, "a", "b", "c") == ["a", "c"]
    assert len(store) == 2


async def test_the_byte_limit_holds() -> None:
    size = len(record("0123456789").to_bytes())
    store = MemoryStore(max_bytes=size * 2 + 1)
    for name in "abc":
        await store.put(name, record("0123456789"))
    assert await ids(store, "a", "b", "c") == ["b", "c"]
    assert store.bytes == size * 2


async def test_a_record_over_the_byte_limit_is_not_stored(caplog: Any) -> None:
    store = MemoryStore(max_bytes=10)
    await store.put("big", record("far more than ten bytes"))
    assert await store.get("big") is None and store.bytes == 0
    assert "not stored" in caplog.text


async def test_records_expire_after_the_ttl() -> None:
    clock = Clock()
    store = MemoryStore(ttl=10, clock=clock)
    await store.put("a", record())
    clock.now = 5
    await store.put("b", record())
    clock.now = 10
    assert await ids(store, "a", "b") == ["b"]
    clock.now = 16
    await store.put("c", record())  # expired records go as new ones come
    assert len(store) == 1 and await ids(store, "c") == ["c"]


async def test_delete_says_whether_there_was_anything() -> None:
    store = MemoryStore()
    await store.put("a", record())
    assert await store.delete("a") is True
    assert await store.delete("a") is False
    assert await store.get("a") is None and store.bytes == 0


async def test_storing_again_under_an_id_replaces_it() -> None:
    store = MemoryStore()
    await store.put("a", record("one"))
    await store.put("a", record("two"))
    assert await store.get("a") == record("two")
    assert store.bytes == len(record("two").to_bytes())
