"""Routing strategies and the first-chunk statistics they and the hedge read."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from codelinkava.errors import InvalidRequestError
from codelinkava.providers import OpenAICompatible
from codelinkava.routing import Deployment, HedgePolicy, RouterSettings
from codelinkava.routing.health import Health
from codelinkava.routing.latency import FirstChunkTimes, MovingAverage
from codelinkava.routing.state import DeploymentState
from codelinkava.routing.strategies import least_busy, lowest_latency, simple_shuffle


def state(name: str, **params: Any) -> DeploymentState:
    deployment = Deployment(name=name, model_name="m", provider=OpenAICompatible, **params)
    return DeploymentState(deployment, Health(3, 5.0))


def test_simple_shuffle_follows_the_weights() -> None:
    heavy, light = state("heavy", weight=3.0), state("light")
    rng = random.Random(7)
    picks = Counter(simple_shuffle([heavy, light], rng).name for _ in range(4000))
    assert 2800 < picks["heavy"] < 3200, picks


def test_simple_shuffle_falls_back_to_rpm_as_the_weight() -> None:
    big, small = state("big", rpm=900), state("small", rpm=100)
    rng = random.Random(3)
    picks = Counter(simple_shuffle([big, small], rng).name for _ in range(2000))
    assert picks["big"] > 1700, picks


def test_least_busy_takes_the_fewest_open_attempts() -> None:
    a, b, c = state("a"), state("b"), state("c")
    a.in_flight, b.in_flight, c.in_flight = 3, 1, 2
    assert least_busy([a, b, c], random.Random(0)) is b


def test_least_busy_spreads_ties() -> None:
    a, b = state("a"), state("b")
    rng = random.Random(1)
    assert {least_busy([a, b], rng).name for _ in range(50)} == {"a", "b"}


def test_lowest_latency_measures_every_deployment_first() -> None:
    fast, new = state("fast"), state("new")
    fast.first_chunk.add(0.01)
    assert lowest_latency([fast, new], random.Random(0)) is new
    new.first_chunk.add(0.5)
    assert lowest_latency([fast, new], random.Random(0)) is fast


def test_moving_average_leans_to_recent_samples() -> None:
    average = MovingAverage(alpha=0.5)
    assert average.value is None
    average.add(1.0)
    average.add(0.0)
    assert average.value == 0.5


def test_p95_needs_enough_samples_then_follows_them() -> None:
    times = FirstChunkTimes(size=100, min_samples=20)
    for _ in range(19):
        times.add(0.1)
    assert times.p95() is None
    times.add(0.1)
    assert times.p95() == 0.1
    for value in range(1, 101):  # the window now holds 1..100 ms
        times.add(value / 1000)
    assert times.p95() == pytest.approx(0.095)


def test_hedge_waits_the_fixed_delay_or_the_capped_p95() -> None:
    times = FirstChunkTimes(min_samples=1)
    assert HedgePolicy(delay=0.25).wait(times) == 0.25
    assert HedgePolicy(max_delay=1.5).wait(times) == 1.5  # no p95 yet
    times.add(0.2)
    assert HedgePolicy(max_delay=1.5).wait(times) == 0.2
    times2 = FirstChunkTimes(min_samples=1)
    times2.add(9.0)
    assert HedgePolicy(max_delay=1.5).wait(times2) == 1.5


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        pytest.param(
            {"routing_strategy": "usage-based-routing"}, "usage-based-routing", id="strategy"
        ),
        pytest.param({"num_retries": -1}, "num_retries", id="retries"),
        pytest.param({"allowed_fails": 1.5}, "allowed_fails", id="fails"),
        pytest.param({"cooldown_time": float("nan")}, "cooldown_time", id="cooldown"),
    ],
)
def test_router_settings_refuse_what_they_cannot_do(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidRequestError, match=named):
        RouterSettings(**settings)
