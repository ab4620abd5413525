"""The gateway process dying or shutting down under streaming clients.

- Killed (SIGKILL) mid-stream: every client gets a typed error, not a hang;
  while it is down new calls are refused with a typed error; once restarted
  on the same port it serves again.
- SIGTERM with `--grace N`: the listening socket closes at once (new
  connections refused), in-flight streams finish in full, the process exits.
  Streams that outlive the grace period are cut, and their clients hear so.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

import pytest

from codelinkava import OpenAICompatible, errors
from support.scripted import Reply, ScriptedServer, Stall, chunk, event

from .support import MESSAGES, call, start_serve

PIECES = 40
SLOW_STREAM = Reply(
    body=[event(chunk(f"{i} ")) for i in range(PIECES)] + [event("[DONE]")], delay=0.05
)  # 2 s in all
LIMIT = 2.0  # the client's connect / first-chunk / idle limits
MARGIN = 5.0
#: uvicorn re-raises the signal it caught once it has shut down, so the exit is -SIGTERM.
CLEAN_EXIT = (0, -signal.SIGTERM)


def proxy_args(upstream: ScriptedServer, *extra: str) -> tuple[str, ...]:
    return (
        "--provider", "openai", "--base-url", upstream.url("/v1"),
        "--timeout", "2", "--max-retries", "0", "--log-level", "warning", *extra,
    )  # fmt: skip


async def stream_into(
    url: str, out: list[str], limit: float = LIMIT, **kwargs: object
) -> BaseException | None:
    """Stream from the gateway into `out`; the error it ended with (None if it finished)."""
    try:
        async with asyncio.timeout(limit + MARGIN):
            async for text in OpenAICompatible.create_async_generator(
                "m", MESSAGES, base_url=url + "/v1", timeout=limit, **kwargs
            ):
                out.append(text)
    except TimeoutError as exc:
        if not isinstance(exc, errors.ProviderTimeoutError):
            raise AssertionError("the client hung") from exc
        return exc
    except errors.ProviderError as exc:
        return exc
    return None


def refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True


async def wait_for(condition: object, within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


async def test_killed_gateway_gives_streaming_clients_a_typed_error(
    upstream: ScriptedServer, log_dir: Path
) -> None:
    upstream.reply(SLOW_STREAM)
    served = start_serve(log_dir, *proxy_args(upstream))
    try:
        outs: list[list[str]] = [[] for _ in range(8)]
        tasks = [asyncio.create_task(stream_into(served.url, out, max_retries=0)) for out in outs]
        await wait_for(lambda: all(len(out) >= 2 for out in outs), 10)
        served.stop(signal.SIGKILL)
        results = await asyncio.gather(*tasks)
        for out, result in zip(outs, results, strict=True):
            assert isinstance(result, errors.StreamTruncatedError), result
            assert 2 <= len(out) < PIECES

        # Down: refused at once, as a typed error, retries included.
        out: list[str] = []
        down = await stream_into(served.url, out, max_retries=2)
        assert isinstance(down, errors.ProviderConnectionError), down

        # Back on the same port: served again.
        upstream.reply(Reply(body=[event(chunk("back")), event("[DONE]")]))
        served = start_serve(log_dir, *proxy_args(upstream), port=served.port)
        out = []
        assert await stream_into(served.url, out) is None
        assert out == ["back"]
    finally:
        served.stop(signal.SIGKILL)


async def test_sigterm_lets_in_flight_streams_finish_and_refuses_new_ones(
    upstream: ScriptedServer, log_dir: Path
) -> None:
    upstream.reply(SLOW_STREAM)
    served = start_serve(log_dir, *proxy_args(upstream, "--grace", "10"))
    try:
        outs: list[list[str]] = [[] for _ in range(4)]
        tasks = [asyncio.create_task(stream_into(served.url, out)) for out in outs]
        await wait_for(lambda: all(len(out) >= 3 for out in outs), 10)
        sent = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        await wait_for(lambda: refuses(served.port), 3)  # the listener closes at once
        assert any(len(out) < PIECES for out in outs)  # ... while the streams still run
        results = await asyncio.gather(*tasks)
        assert results == [None] * len(outs)
        assert outs == [[f"{i} " for i in range(PIECES)]] * len(outs)
        await wait_for(lambda: served.process.poll() is not None, 10 + MARGIN)
        assert served.process.returncode in CLEAN_EXIT, served.output()
        assert time.monotonic() - sent < 10 + MARGIN
    finally:
        served.stop(signal.SIGKILL)


async def test_streams_past_the_grace_period_are_cut_with_a_typed_error(
    upstream: ScriptedServer, log_dir: Path
) -> None:
    upstream.reply(Reply(body=[event(chunk("a")), Stall()]))
    served = start_serve(log_dir, *proxy_args(upstream, "--grace", "1", "--timeout", "30"))
    try:
        out: list[str] = []
        task = asyncio.create_task(stream_into(served.url, out, limit=30))
        await wait_for(lambda: out == ["a"], 10)
        served.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(1 + MARGIN):
            result = await task
        assert isinstance(result, errors.StreamTruncatedError), result
        await wait_for(lambda: served.process.poll() is not None, 1 + MARGIN)
    finally:
        served.stop(signal.SIGKILL)


async def test_a_sigterm_while_idle_exits_at_once(upstream: ScriptedServer, log_dir: Path) -> None:
    served = start_serve(log_dir, *proxy_args(upstream, "--grace", "30"))
    try:
        answer = await call(served.url, "/health", method="GET")
        assert answer.status == 200
        served.process.send_signal(signal.SIGTERM)
        await wait_for(lambda: served.process.poll() is not None, MARGIN)
        assert served.process.returncode in CLEAN_EXIT
    finally:
        served.stop(signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_the_process_stops_on_either_signal(
    upstream: ScriptedServer, log_dir: Path, sig: signal.Signals
) -> None:
    served = start_serve(log_dir, *proxy_args(upstream, "--grace", "1"))
    try:
        served.process.send_signal(sig)
        await wait_for(lambda: served.process.poll() is not None, 1 + MARGIN)
    finally:
        served.stop(signal.SIGKILL)
