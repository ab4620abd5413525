"""Fixtures: a scripted upstream on 127.0.0.1 and the gateway in front of it, both in-process.

The gateway is `create_app(GatewaySettings(provider="openai", ...))` on a real
uvicorn (see `support.live_gateway`), with short upstream limits (1 s
timeouts, no retries) so a fault shows within a second. Each test scripts the
upstream through `upstream.handler` or `upstream.reply(...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codelinkava.server import GatewaySettings
from support.live_gateway import LiveGateway, live_gateway
from support.scripted import ScriptedServer, running_server

#: The gateway's limits towards the upstream in these tests.
UPSTREAM_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedServer]:
    with running_server() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_script(request: pytest.FixtureRequest) -> None:
    if "upstream" in request.fixturenames:
        server: ScriptedServer = request.getfixturevalue("upstream")
        server.handler = None
        server.script = []


def gateway_settings(base_url: str, **overrides: Any) -> GatewaySettings:
    """The openai provider in front of `base_url`, 1 s limits, no retries, no key, and no
    `preload`: nothing asked at start-up, so the upstream sees only what a test sends."""
    options = {"base_url": base_url, "timeout": UPSTREAM_TIMEOUT, "max_retries": 0}
    options.update(overrides.pop("provider_options", {}))
    overrides.setdefault("api_key", None)
    overrides.setdefault("preload", False)
    return GatewaySettings(provider="openai", provider_options=options, **overrides)


@pytest.fixture(scope="module")
def gateway(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    """The gateway in front of the scripted upstream (openai provider, 1 s limits, no retries)."""
    with live_gateway(gateway_settings(upstream.url("/v1"))) as running:
        yield running


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve-logs")
