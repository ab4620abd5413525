"""Cooldown and probe bookkeeping, on times the test chooses."""

from __future__ import annotations

from codelinkava.routing.health import FAILURE_WINDOW, Health


def test_cools_down_only_past_the_allowed_failures() -> None:
    health = Health(allowed_fails=2, cooldown_time=10.0)
    for now in (1.0, 2.0):
        health.failed(now, probe=False)
        assert health.available(now)
    health.failed(3.0, probe=False)
    assert health.cooled_until == 13.0
    assert not health.available(12.9)
    assert health.cooldowns == 1


def test_zero_allowed_fails_cools_down_at_the_first_failure() -> None:
    health = Health(allowed_fails=0, cooldown_time=5.0)
    health.failed(0.0, probe=False)
    assert not health.available(1.0)


def test_failures_older_than_the_window_do_not_count() -> None:
    health = Health(allowed_fails=1, cooldown_time=5.0)
    health.failed(0.0, probe=False)
    health.failed(FAILURE_WINDOW + 0.5, probe=False)
    assert health.cooled_until is None
    health.failed(FAILURE_WINDOW + 1.0, probe=False)
    assert health.cooled_until == FAILURE_WINDOW + 6.0


def test_one_probe_at_a_time_after_the_cooldown() -> None:
    health = Health(allowed_fails=0, cooldown_time=5.0)
    health.failed(0.0, probe=False)
    assert not health.due_for_probe(4.9)
    assert health.due_for_probe(5.0)
    assert health.start(5.0) is True
    assert not health.available(5.1), "a second request while the probe is out"
    assert health.start(5.1) is False


def test_a_probe_that_streams_brings_it_back() -> None:
    health = Health(allowed_fails=0, cooldown_time=5.0)
    health.failed(0.0, probe=False)
    probe = health.start(6.0)
    health.succeeded(probe)
    assert health.cooled_until is None
    assert health.available(6.0)
    assert not health.due_for_probe(6.0)


def test_a_probe_that_fails_starts_another_cooldown_at_once() -> None:
    health = Health(allowed_fails=3, cooldown_time=5.0)
    for now in range(4):
        health.failed(float(now), probe=False)
    assert health.cooled_until == 8.0
    probe = health.start(8.0)
    health.failed(8.5, probe)
    assert health.cooled_until == 13.5
    assert health.cooldowns == 2


def test_an_abandoned_probe_lets_the_next_request_probe() -> None:
    health = Health(allowed_fails=0, cooldown_time=1.0)
    health.failed(0.0, probe=False)
    probe = health.start(2.0)
    health.abandoned(probe)
    assert health.due_for_probe(2.0)


def test_success_of_a_request_that_is_not_the_probe_leaves_the_cooldown() -> None:
    health = Health(allowed_fails=0, cooldown_time=5.0)
    health.failed(0.0, probe=False)
    health.succeeded(probe=False)  # an answer that started before the cooldown
    assert health.cooled_until == 5.0
