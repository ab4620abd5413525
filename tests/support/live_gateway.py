"""The gateway app served in-process by a real uvicorn on 127.0.0.1, on its own thread.

The test holds the socket from the start (bound to port 0, handed to uvicorn),
so there is no race for a free port; the server runs on a thread with its own
event loop, so tests on any loop (or none) can talk to it over the network.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from codelinkava.server import GatewaySettings, create_app
from codelinkava.server.backend import Backend

__all__ = ["LiveGateway", "fronting", "live_gateway", "wait_until"]


class LiveGateway:
    """`create_app(settings, backend=backend)` on uvicorn, in a background thread."""

    def __init__(self, settings: GatewaySettings, backend: Backend | None = None) -> None:
        self.app = create_app(settings, backend=backend)
        self.settings = settings
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="live-gateway", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.server.serve(sockets=[self._sock]))
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException as exc:  # reported by start()/stop()
            self._error = exc
        finally:
            loop.close()

    def start(self, within: float = 30.0) -> None:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(within / 0.01)):
            if self.server.started or self._error is not None or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self.server.started:
            self.stop()
            raise RuntimeError(f"the gateway did not start: {self._error!r}")

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)
        self._sock.close()
        assert not self._thread.is_alive(), "the gateway did not stop"
        if self._error is not None:
            raise self._error


@contextmanager
def live_gateway(
    settings: GatewaySettings, backend: Backend | None = None
) -> Iterator[LiveGateway]:
    """A started gateway for the block; stopped (and checked for errors) afterwards."""
    gateway = LiveGateway(settings, backend)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


def fronting(upstream_url: str, provider: str = "openai", **settings: Any) -> GatewaySettings:
    """Settings for a gateway in front of `upstream_url` (a base URL, or /api/chat's URL).

    No retries and a 2 s limit by default, so failures show at once. No `preload`: the
    gateway asks the upstream nothing at start-up (which models it lists, without a
    `model`), so a scripted upstream sees only the requests a test sends; `/v1/models`
    still asks it (integration/test_models.py).
    """
    options: dict[str, Any] = {"max_retries": 0, "timeout": 2.0}
    options.update(settings.pop("provider_options", {}))
    options["base_url" if provider == "openai" else "api_url"] = upstream_url
    settings.setdefault("api_key", None)
    settings.setdefault("preload", False)
    return GatewaySettings(provider=provider, provider_options=options, **settings)


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll `condition` until it holds; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not true within {within} s: {condition}")
        await asyncio.sleep(0.005)
