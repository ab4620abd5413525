"""`Deployment`: one upstream that serves a model name, as the operator configured it.

A value, fixed at start-up: which provider, which set-up options (URL, key,
model file), the upstream's own name for the model, and the limits the
operator gave it. Several deployments under one `model_name` form a model
group that the router spreads requests over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..providers.base import AsyncGeneratorProvider

__all__ = ["Deployment"]


@dataclass(frozen=True)
class Deployment:
    """One upstream under one model name.

    `options` are passed to the provider on every call and never come from a
    request: they hold the destination and the key, so they are left out of
    `repr` (a deployment may be logged).
    """

    #: What the metrics and the logs call it (the config's `model_info.id`, else
    #: `<model_name>-<n>`).
    name: str
    #: The model group it serves: the name clients ask for.
    model_name: str
    provider: type[AsyncGeneratorProvider]
    #: The model name sent upstream ("" for providers that serve one model).
    upstream_model: str = ""
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: The provider's `timeout` for streamed requests, when it differs from `options`'.
    stream_timeout: float | None = None
    #: Its share of the traffic under `simple-shuffle`.
    weight: float = 1.0
    #: Limits the rate limiter enforces (None: no limit): requests and tokens per
    #: minute, requests at once.
    rpm: int | None = None
    tpm: int | None = None
    max_parallel_requests: int | None = None

    def call_options(self, stream: bool) -> dict[str, Any]:
        """The provider options for one call: `stream_timeout` replaces `timeout` when streaming."""
        options = dict(self.options)
        if stream and self.stream_timeout is not None:
            options["timeout"] = self.stream_timeout
        return options

    def describe(self) -> str:
        """For people: the provider and where it sends, never its key."""
        where = self.provider.describe_endpoint(self.options)
        return f"{self.name} ({self.provider.__name__} {where})"
