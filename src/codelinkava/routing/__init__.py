"""Routing over many upstreams: deployments grouped by model name, retries before the
first chunk, cooldowns, fallbacks, hedged first chunks, and the LiteLLM-style config
file that describes them.

    config = load_config("config.yaml")
    router = config.router()                  # or Router(deployments, RouterSettings(...))
    plan = router.plan("my-model", messages, {"stream": True})
    async for batch in router.stream(plan):
        ...

Needs no web framework: the gateway wraps a `Router` in `server.routed.RouterBackend`.
The config file's names need pydantic (the server extra): they are imported on first
use, so a `Router` built in code needs neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .deployment import Deployment
from .limits import DeploymentLimits, Lease, NoLimits
from .record import RouteRecord, RouteReport
from .router import Plan, Router
from .settings import HedgePolicy, RouterSettings

if TYPE_CHECKING:
    from .config_file import ConfigError, GatewayConfig, RedisSettings, load_config, parse_config

__all__ = [
    "ConfigError",
    "Deployment",
    "DeploymentLimits",
    "GatewayConfig",
    "HedgePolicy",
    "Lease",
    "NoLimits",
    "Plan",
    "RedisSettings",
    "RouteRecord",
    "RouteReport",
    "Router",
    "RouterSettings",
    "load_config",
    "parse_config",
]


def __getattr__(name: str) -> object:
    if name in {"ConfigError", "GatewayConfig", "RedisSettings", "load_config", "parse_config"}:
        from . import config_file

        return getattr(config_file, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
