"""Routing strategies: which of the available deployments of a group gets the next attempt.

The names and meanings of LiteLLM's router, so a config written for it means
the same here:

| `routing_strategy`        | picks                                                        |
|---------------------------|--------------------------------------------------------------|
| `simple-shuffle`          | at random, weighted by `weight` (else `rpm`, else `tpm`)     |
| `least-busy`              | the fewest attempts open in this process; ties at random     |
| `latency-based-routing`   | the soonest first chunk lately; unmeasured deployments first |

Each is a function of the candidates and a random source, nothing else: cheap
(a pass over a handful of deployments) and testable with a seeded `Random`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from .state import DeploymentState

__all__ = ["STRATEGIES", "Strategy", "least_busy", "lowest_latency", "simple_shuffle"]

Strategy = Callable[[Sequence[DeploymentState], random.Random], DeploymentState]


def _share(state: DeploymentState) -> float:
    deployment = state.deployment
    if deployment.weight != 1.0:
        return deployment.weight
    return float(deployment.rpm or deployment.tpm or 1)


def simple_shuffle(candidates: Sequence[DeploymentState], rng: random.Random) -> DeploymentState:
    if len(candidates) == 1:
        return candidates[0]
    shares = [_share(state) for state in candidates]
    return rng.choices(candidates, weights=shares)[0]


def least_busy(candidates: Sequence[DeploymentState], rng: random.Random) -> DeploymentState:
    fewest = min(state.in_flight for state in candidates)
    idle = [state for state in candidates if state.in_flight == fewest]
    return idle[0] if len(idle) == 1 else rng.choice(idle)


def lowest_latency(candidates: Sequence[DeploymentState], rng: random.Random) -> DeploymentState:
    unmeasured = [state for state in candidates if state.first_chunk.value is None]
    if unmeasured:  # measure every deployment before trusting the averages
        return unmeasured[0] if len(unmeasured) == 1 else rng.choice(unmeasured)
    return min(candidates, key=lambda state: state.first_chunk.value or 0.0)


STRATEGIES: dict[str, Strategy] = {
    "simple-shuffle": simple_shuffle,
    "least-busy": least_busy,
    "latency-based-routing": lowest_latency,
}
