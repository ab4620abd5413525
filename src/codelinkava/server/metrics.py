"""Prometheus metrics at `GET /metrics`, behind the key like every route but `/health`.

    codelinkava_requests_total{model,deployment,status}   every chat request, refusals included
    codelinkava_time_to_first_token_seconds               streams: admission to first chunk
    codelinkava_inter_token_seconds                       streams: gaps between chunk batches
    codelinkava_tokens_total{kind}                        prompt / completion (/ hedge: tokens
                                                          of hedged attempts that lost the race)
    codelinkava_in_flight                                 responses open now
    codelinkava_upstream_failures_total                   upstreams that failed before a chunk
    codelinkava_fallbacks_total                           answers a fallback group gave
    codelinkava_rate_limited_total                        deployments skipped at their limits,
                                                          plus 503s at the gateway's own limit

Everything but the in-flight gauge comes from the `Outcome` each response
hands its hooks when it ends; the gauge goes up at admission and down at
that end.

One process: each app has its own `CollectorRegistry` (tests build many
apps in one process). Several worker processes: whoever starts them calls
`prepare_multiprocess_dir()` first, which names a directory in
`PROMETHEUS_MULTIPROC_DIR`; each worker then writes its values to files
there (prometheus-client's multiprocess mode) and any worker's `/metrics`
adds up all of them -- so a scrape through the load balancer is right
whichever worker answers.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.responses import Response

from .outcome import Outcome
from .state import OVERLOADED

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .state import GatewayState

__all__ = [
    "MULTIPROC_ENV",
    "GatewayMetrics",
    "install_metrics",
    "prepare_multiprocess_dir",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
INTER_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
#: Distinct `model` label values kept per process; later names count as "other". A
#: request names its model, so without a cap any client could grow the metrics for ever.
MAX_MODELS = 100
OTHER_MODEL = "other"


def prepare_multiprocess_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Before starting worker processes: an empty directory for their metric files.

    Call it in the process that starts the workers, before it starts them:
    it names the directory in `PROMETHEUS_MULTIPROC_DIR`, which the workers
    inherit, and removes the files an earlier run left there (the docs of
    prometheus-client ask for a clean directory at each start). No `path`:
    a new temporary directory, which the caller removes when the workers
    are gone. Returns the directory.
    """
    directory = Path(path) if path else Path(tempfile.mkdtemp(prefix="codelinkava-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    _use_multiprocess_values()
    return directory


def _use_multiprocess_values() -> None:
    """prometheus-client picks where values live when it is first imported; if it was
    imported before `PROMETHEUS_MULTIPROC_DIR` was set, pick again (for metrics made later)."""
    values: Any = sys.modules.get("prometheus_client.values")
    if values is None or not os.environ.get(MULTIPROC_ENV):
        return
    if values.ValueClass is values.MutexValue:
        values.ValueClass = values.get_value_class()


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _forget_dead_workers(directory: str) -> None:
    """A worker that died with responses open leaves its in-flight gauge behind: drop it."""
    for name in os.listdir(directory):
        found = _LIVE_GAUGE_FILE.match(name)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, someone else's


def _upstream_failures(outcome: Outcome) -> int:
    """Deployments that failed before the first chunk: a router lists them in `attempts`;
    a single provider lists none, so its own failure (a 502/504/429 from upstream) counts one."""
    if outcome.attempts:
        return len(outcome.attempts)
    failed_upstream = outcome.error.startswith("upstream_") and outcome.status >= 429
    return 1 if failed_upstream and outcome.first_chunk is None else 0


class GatewayMetrics:
    """The gateway's metrics: an outcome hook, an admission hook, and their exposition."""

    def __init__(self, *, max_models: int = MAX_MODELS) -> None:
        self.directory = os.environ.get(MULTIPROC_ENV) or None
        if self.directory:
            _use_multiprocess_values()
        # Multiprocess mode: the metrics write to files, and a registry reads them all.
        own = None if self.directory else CollectorRegistry()
        self.requests = Counter(
            "codelinkava_requests",
            "Chat requests, by model asked, deployment that answered, and HTTP status",
            ["model", "deployment", "status"],
            registry=own,
        )
        self.time_to_first_token = Histogram(
            "codelinkava_time_to_first_token_seconds",
            "Streamed answers: seconds from admission to the first chunk sent",
            buckets=TTFT_BUCKETS,
            registry=own,
        )
        self.inter_token = Histogram(
            "codelinkava_inter_token_seconds",
            "Streamed answers: seconds between consecutive chunk batches sent",
            buckets=INTER_TOKEN_BUCKETS,
            registry=own,
        )
        self.tokens = Counter(
            "codelinkava_tokens",
            "Tokens: prompt, completion, and hedge (hedged attempts cancelled after losing)",
            ["kind"],
            registry=own,
        )
        self.in_flight = Gauge(
            "codelinkava_in_flight",
            "Chat responses open now",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.upstream_failures = Counter(
            "codelinkava_upstream_failures",
            "Deployments that failed before the first chunk",
            registry=own,
        )
        self.fallbacks = Counter(
            "codelinkava_fallbacks", "Answers given by a fallback model group", registry=own
        )
        self.rate_limited = Counter(
            "codelinkava_rate_limited",
            "Deployments skipped at their rpm/tpm/parallel limits, and requests refused at "
            "the gateway's concurrency limit",
            registry=own,
        )
        self.registry = own if own is not None else self._multiprocess_registry()
        self.max_models = max_models
        self._models: set[str] = set()

    def _multiprocess_registry(self) -> CollectorRegistry:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]
        return registry

    # hooks

    def admitted(self) -> None:
        self.in_flight.inc()

    def observe(self, outcome: Outcome) -> None:
        """An outcome hook: count one response as it ends."""
        model = self._model_label(outcome.model)
        self.requests.labels(model, outcome.deployment, str(outcome.status)).inc()
        if outcome.error == OVERLOADED:  # refused at admission: never in flight
            self.rate_limited.inc()
            return
        self.in_flight.dec()
        if outcome.rate_limited:
            self.rate_limited.inc(outcome.rate_limited)
        failures = _upstream_failures(outcome)
        if failures:
            self.upstream_failures.inc(failures)
        if outcome.fallback:
            self.fallbacks.inc()
        self._observe_times(outcome)
        self._count_tokens(outcome)

    def _observe_times(self, outcome: Outcome) -> None:
        first = outcome.first_chunk
        if not outcome.stream or first is None:
            return
        self.time_to_first_token.observe(first - outcome.started)
        previous = first
        for sent in outcome.batch_times:
            self.inter_token.observe(sent - previous)
            previous = sent

    def _count_tokens(self, outcome: Outcome) -> None:
        for kind, count in (
            ("prompt", outcome.prompt_tokens),
            ("completion", outcome.completion_tokens),
            ("hedge", outcome.hedge_tokens),
        ):
            if count:
                self.tokens.labels(kind).inc(count)

    def _model_label(self, model: str) -> str:
        if model in self._models:
            return model
        if len(self._models) < self.max_models:
            self._models.add(model)
            return model
        return OTHER_MODEL

    # exposition

    def exposition(self) -> bytes:
        """The Prometheus text format: this process's values, or every worker's."""
        if self.directory:
            _forget_dead_workers(self.directory)
        return generate_latest(self.registry)

    def endpoint(self) -> Response:
        """`GET /metrics` (sync: FastAPI runs it on a thread, off the event loop)."""
        return Response(self.exposition(), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> GatewayMetrics:
    """Count every chat response of `app` and serve `GET /metrics`."""
    state: GatewayState = app.state.gateway
    metrics = GatewayMetrics()
    state.hooks.append(metrics.observe)
    state.on_admit.append(metrics.admitted)
    app.add_api_route("/metrics", metrics.endpoint, methods=["GET"], include_in_schema=False)
    app.state.metrics = metrics
    return metrics
