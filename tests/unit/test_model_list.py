"""`server/model_list.py`: the upstream's model list, cached, refreshed, and never a failure.

A fake clock moves time; the "upstream" is a function that counts its questions and
answers (or fails) as each test says, so every rule is checked without a network.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from codelinkava import errors
from codelinkava.server.model_list import ModelList


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """Answers `answers` in turn (the last repeats): a list of names, or an exception."""

    def __init__(self, *answers: list[str] | BaseException) -> None:
        self.answers = list(answers)
        self.asked = 0
        self.release: asyncio.Event | None = None  # set: each question waits for it

    async def __call__(self) -> list[str]:
        self.asked += 1
        if self.release is not None:
            await self.release.wait()
        answer = self.answers[min(self.asked, len(self.answers)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        return list(answer)


def listing(upstream: Upstream, clock: Clock, ttl: float = 60.0) -> ModelList:
    return ModelList(upstream, "fallback-model", ttl, retry_after=5.0, clock=clock)


async def settle() -> None:
    """Let a refresh started in the background run to its end."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_fresh_names_asks_once_then_keeps_the_answer_for_ttl() -> None:
    clock, upstream = Clock(), Upstream(["a", "b"], ["c"])
    models = listing(upstream, clock)
    assert await models.fresh_names() == ["a", "b"]
    clock.now += 59.9
    assert await models.fresh_names() == ["a", "b"]
    assert upstream.asked == 1
    clock.now += 0.1
    assert await models.fresh_names() == ["c"]
    assert upstream.asked == 2


async def test_names_never_asks_first_and_falls_back_to_the_served_name() -> None:
    clock, upstream = Clock(), Upstream(["a"])
    models = listing(upstream, clock)
    assert models.names() == ["fallback-model"]
    await settle()
    assert upstream.asked == 0  # the hot path never starts the first question


async def test_names_refreshes_in_the_background_once_due() -> None:
    clock, upstream = Clock(), Upstream(["a"], ["b"])
    models = listing(upstream, clock)
    await models.fresh_names()
    clock.now += 60
    assert models.names() == ["a"]  # the old list at once: no waiting on the hot path
    assert models.names() == ["a"]
    await settle()
    assert upstream.asked == 2  # one refresh for both reads
    assert models.names() == ["b"]


async def test_one_question_in_flight_however_many_wait() -> None:
    clock, upstream = Clock(), Upstream(["a"])
    upstream.release = asyncio.Event()
    models = listing(upstream, clock)
    waiting = [asyncio.create_task(models.fresh_names()) for _ in range(5)]
    await settle()
    upstream.release.set()
    assert await asyncio.gather(*waiting) == [["a"]] * 5
    assert upstream.asked == 1


async def test_a_caller_that_leaves_does_not_cancel_the_question() -> None:
    clock, upstream = Clock(), Upstream(["a"])
    upstream.release = asyncio.Event()
    models = listing(upstream, clock)
    leaving = asyncio.create_task(models.fresh_names())
    await settle()
    leaving.cancel()
    staying = asyncio.create_task(models.fresh_names())
    await settle()
    upstream.release.set()
    assert await staying == ["a"]
    assert upstream.asked == 1


async def test_a_failure_keeps_the_last_good_list_and_is_asked_again_sooner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = errors.ProviderConnectionError("connection refused")
    clock, upstream = Clock(), Upstream(["a", "b"], down, down, ["c"])
    models = listing(upstream, clock)
    await models.fresh_names()
    clock.now += 60
    with caplog.at_level(logging.DEBUG, logger="codelinkava.server"):
        assert await models.fresh_names() == ["a", "b"]
        clock.now += 4.9
        assert await models.fresh_names() == ["a", "b"]
        assert upstream.asked == 2
        clock.now += 0.1  # retry_after, not the ttl
        assert await models.fresh_names() == ["a", "b"]
        clock.now += 5
        assert await models.fresh_names() == ["c"]
    assert upstream.asked == 4
    levels = [r.levelno for r in caplog.records if "could not list" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG]  # logged once while it stays down
    assert "ProviderConnectionError: connection refused" in caplog.records[0].getMessage()
    assert "serving a, b" in caplog.records[0].getMessage()


async def test_never_listed_falls_back_to_the_served_name() -> None:
    clock, upstream = Clock(), Upstream(errors.StreamError("not a model list"))
    assert await listing(upstream, clock).fresh_names() == ["fallback-model"]


async def test_an_empty_or_repeating_list() -> None:
    clock, upstream = Clock(), Upstream([], ["a", "a", "", "b"])
    models = listing(upstream, clock)
    assert await models.fresh_names() == ["fallback-model"]  # the upstream named none
    clock.now += 5
    assert await models.fresh_names() == ["a", "b"]


async def test_a_bug_behind_the_hook_is_logged_with_its_traceback_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, upstream = Clock(), Upstream(KeyError("data"))
    with caplog.at_level(logging.WARNING, logger="codelinkava.server"):
        assert await listing(upstream, clock).fresh_names() == ["fallback-model"]
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None


async def test_a_question_that_hangs_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("codelinkava.server.model_list.LISTING_DEADLINE", 0.05)
    clock, upstream = Clock(), Upstream(["a"])
    upstream.release = asyncio.Event()  # never set
    async with asyncio.timeout(2):
        assert await listing(upstream, clock).fresh_names() == ["fallback-model"]


async def test_aclose_cancels_the_question_in_flight() -> None:
    clock, upstream = Clock(), Upstream(["a"])
    upstream.release = asyncio.Event()
    models = listing(upstream, clock)
    task = asyncio.create_task(models.fresh_names())
    await settle()
    await models.aclose()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_names_outside_an_event_loop_only_reads() -> None:
    clock, upstream = Clock(), Upstream(["a"])
    models = listing(upstream, clock)
    asyncio.run(models.fresh_names())
    clock.now += 60
    assert models.names() == ["a"]  # no loop to refresh in: the old list, no error
    assert upstream.asked == 1


@pytest.mark.parametrize("ttl", [-1.0, float("nan")])
def test_a_negative_ttl_is_refused(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        ModelList(Upstream(["a"]), "m", ttl)


async def test_aclose_leaves_another_loops_question_to_that_loop() -> None:
    clock, upstream = Clock(), Upstream(["a"])
    upstream.release = asyncio.Event()  # never set: the question hangs until cancelled
    models = listing(upstream, clock)
    outcome: list[str] = []

    def other_loop() -> None:
        async def ask() -> None:
            try:
                await models.fresh_names()
            except asyncio.CancelledError:
                outcome.append("cancelled")

        asyncio.run(ask())

    thread = threading.Thread(target=other_loop)
    thread.start()
    for _ in range(200):
        if upstream.asked:
            break
        await asyncio.sleep(0.005)
    await models.aclose()  # not "attached to a different loop": that loop cancels its own
    thread.join(2)
    assert not thread.is_alive() and outcome == ["cancelled"]
