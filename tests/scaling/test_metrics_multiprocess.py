"""Metrics across worker processes: prometheus-client's multiprocess mode, set up by
`prepare_multiprocess_dir()` as the code that starts the workers does."""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import values

from codelinkava.server.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
from support.live_gateway import wait_until
from support.scripted import Recorded, Reply, ScriptedServer, Stall, chunk, event

from .support import GatewayProcess, gateways, metric

USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def by_prompt(recorded: Recorded) -> Reply:
    if recorded.json()["messages"][-1]["content"] == "stall":
        return Reply(body=[Stall()])
    usage = {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": USAGE}
    return Reply(body=[event(chunk("Hi", role="assistant")) + event(usage) + event("[DONE]")])


async def chat(session: aiohttp.ClientSession, gateway: GatewayProcess, said: str) -> int:
    body = {"model": "m", "messages": [{"role": "user", "content": said}], "stream": True}
    async with session.post(f"{gateway.url}/v1/chat/completions", json=body) as response:
        await response.read()
        return response.status


def scrape(gateway: GatewayProcess) -> str:
    with urllib.request.urlopen(f"{gateway.url}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


@pytest.fixture
def multiprocess_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`prepare_multiprocess_dir` as the worker starter calls it; this process's environment
    and prometheus-client's value class are put back afterwards."""
    monkeypatch.setenv(MULTIPROC_ENV, "restored-after-the-test")
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale")  # an earlier run's leftovers
    prepared = prepare_multiprocess_dir(directory)
    assert prepared == directory and os.environ[MULTIPROC_ENV] == str(directory)
    assert list(directory.iterdir()) == []
    assert values.ValueClass is not values.MutexValue  # metrics made from now on write files
    return directory


async def test_metrics_add_up_across_worker_processes(
    multiprocess_dir: Path, upstream: ScriptedServer, log_dir: Path
) -> None:
    upstream.handler = by_prompt
    env = {MULTIPROC_ENV: os.environ[MULTIPROC_ENV]}  # what the workers inherit
    with gateways(log_dir, upstream.url("/v1"), **env) as (first, second):
        async with aiohttp.ClientSession() as session:
            for gateway in (first, first, first, second, second):
                assert await chat(session, gateway, "hello") == 200
            await wait_until(
                lambda: first.health()["in_flight"] == 0 and second.health()["in_flight"] == 0
            )
            for gateway in (first, second):  # either worker's scrape sees both
                text = scrape(gateway)
                assert metric(text, "codelinkava_requests_total", {"status": "200"}) == 5
                assert metric(text, "codelinkava_tokens_total", {"kind": "prompt"}) == 25
                assert metric(text, "codelinkava_tokens_total", {"kind": "completion"}) == 15
                assert metric(text, "codelinkava_time_to_first_token_seconds_count") == 5

            held = [asyncio.create_task(chat(session, g, "stall")) for g in (first, second)]
            await wait_until(lambda: len(upstream.requests) == 7, within=10)
            assert metric(scrape(first), "codelinkava_in_flight") == 2
            assert metric(scrape(second), "codelinkava_in_flight") == 2
            for task in held:
                task.cancel()
            await asyncio.gather(*held, return_exceptions=True)
            await wait_until(lambda: metric(scrape(first), "codelinkava_in_flight") == 0)
            assert metric(scrape(second), "codelinkava_requests_total") == 7

            # A worker killed with a response open: its in-flight count goes with it,
            # what it counted stays.
            held = [asyncio.create_task(chat(session, second, "stall"))]
            await wait_until(lambda: metric(scrape(first), "codelinkava_in_flight") == 1)
            second.process.send_signal(signal.SIGKILL)
            second.process.wait(10)
            assert metric(scrape(first), "codelinkava_in_flight") == 0
            assert metric(scrape(first), "codelinkava_requests_total") == 7
            await asyncio.gather(*held, return_exceptions=True)
