"""`GET /metrics`: Prometheus text that prometheus-client's own parser reads, behind the key,
counting exactly the requests a test sent; and the outcome hook's arithmetic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from codelinkava.server.backend import Backend, Call
from codelinkava.server.metrics import OTHER_MODEL, GatewayMetrics
from codelinkava.server.outcome import Outcome
from support.live_gateway import LiveGateway, fronting, live_gateway, wait_until
from support.scripted import Recorded, Reply, ScriptedServer, Sleep, Stall, chunk, event

from .support import metric, metric_names

KEY = "metrics-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
USAGE = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
METRICS = {
    "codelinkava_requests",
    "codelinkava_time_to_first_token_seconds",
    "codelinkava_inter_token_seconds",
    "codelinkava_tokens",
    "codelinkava_in_flight",
    "codelinkava_upstream_failures",
    "codelinkava_fallbacks",
    "codelinkava_rate_limited",
}


def streamed_answer() -> Reply:
    """Two pieces a pause apart (two reads, so an inter-token gap), then usage and [DONE]."""
    usage = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": USAGE}
    return Reply(
        body=[
            event(chunk("Hel", role="assistant")),
            Sleep(0.05),
            event(chunk("lo")) + event(chunk(finish_reason="stop")),
            Sleep(0.05),
            event(usage) + event("[DONE]"),
        ]
    )


def whole_answer() -> Reply:
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello"},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
    return Reply(headers={"Content-Type": "application/json"}, body=[json.dumps(answer).encode()])


def by_prompt(recorded: Recorded) -> Reply:
    """The upstream answers by what the user said: ok, fail, stall."""
    said = recorded.json()["messages"][-1]["content"]
    if said == "fail":
        return Reply(status=500, headers={"Content-Type": "text/plain"}, body=[b"broken"])
    if said == "stall":
        return Reply(body=[Stall()])
    return streamed_answer() if recorded.json().get("stream") else whole_answer()


@pytest.fixture
def gateway(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    upstream.handler = by_prompt
    settings = fronting(upstream.url("/v1"), api_key=KEY, max_concurrency=1)
    with live_gateway(settings) as running:
        yield running


def outcomes_of(gateway: LiveGateway) -> list[Outcome]:
    """Every outcome the gateway's hooks hear from now on."""
    heard: list[Outcome] = []
    gateway.app.state.gateway.hooks.append(heard.append)
    return heard


async def chat(
    session: aiohttp.ClientSession, gateway: LiveGateway, said: str, *, stream: bool = True
) -> int:
    body = {"model": "m", "messages": [{"role": "user", "content": said}], "stream": stream}
    async with session.post(
        f"{gateway.url}/v1/chat/completions", json=body, headers=AUTH
    ) as response:
        await response.read()
        return response.status


async def scrape(gateway: LiveGateway, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gateway.url}/metrics", headers=AUTH if headers is None else headers) as r,
    ):
        return r.status, await r.text()


def idle(gateway: LiveGateway) -> bool:
    return bool(gateway.app.state.gateway.gate.in_flight == 0)


async def test_metrics_count_the_requests_sent(gateway: LiveGateway) -> None:
    heard = outcomes_of(gateway)
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            assert await chat(session, gateway, "ok") == 200
        assert await chat(session, gateway, "ok", stream=False) == 200
        for _ in range(2):
            assert await chat(session, gateway, "fail") == 502
        held = asyncio.create_task(chat(session, gateway, "stall"))
        await wait_until(lambda: gateway.app.state.gateway.gate.in_flight == 1)
        status, text = await scrape(gateway)
        assert status == 200
        assert metric(text, "codelinkava_in_flight") == 1
        assert await chat(session, gateway, "ok") == 503  # at the limit of 1
        held.cancel()
        await asyncio.gather(held, return_exceptions=True)
    await wait_until(lambda: idle(gateway) and len(heard) == 8)

    status, text = await scrape(gateway)
    assert status == 200
    assert metric_names(text) >= METRICS
    requests = "codelinkava_requests_total"
    assert metric(text, requests) == 8
    assert metric(text, requests, {"status": "200"}) == 5  # 4 answers and the abandoned stall
    assert metric(text, requests, {"status": "502"}) == 2
    assert metric(text, requests, {"status": "503"}) == 1
    assert metric(text, requests, {"status": "503", "deployment": ""}) == 1
    assert metric(text, requests, {"model": "m", "deployment": "OpenAICompatible"}) == 7
    assert metric(text, "codelinkava_tokens_total", {"kind": "prompt"}) == 4 * 7
    assert metric(text, "codelinkava_tokens_total", {"kind": "completion"}) == 4 * 2
    assert metric(text, "codelinkava_time_to_first_token_seconds_count") == 3  # streams only
    ttfts = [o.time_to_first_chunk for o in heard if o.stream and o.first_chunk is not None]
    assert metric(text, "codelinkava_time_to_first_token_seconds_sum") == pytest.approx(
        sum(t for t in ttfts if t is not None)
    )
    gaps = sum(len(o.batch_times) for o in heard)
    assert gaps >= 3  # the pauses split every stream into several reads
    assert metric(text, "codelinkava_inter_token_seconds_count") == gaps
    assert metric(text, "codelinkava_in_flight") == 0
    assert metric(text, "codelinkava_rate_limited_total") == 1
    assert metric(text, "codelinkava_upstream_failures_total") == 2  # the two 502s
    assert metric(text, "codelinkava_fallbacks_total") == 0


async def test_metrics_need_the_key(gateway: LiveGateway) -> None:
    assert (await scrape(gateway, headers={}))[0] == 401
    assert (await scrape(gateway, headers={"Authorization": "Bearer wrong"}))[0] == 401
    status, text = await scrape(gateway)
    assert status == 200 and "codelinkava_in_flight" in text


async def test_metrics_are_open_on_a_gateway_without_a_key(upstream: ScriptedServer) -> None:
    with live_gateway(fronting(upstream.url("/v1"))) as gateway:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{gateway.url}/metrics") as response,
        ):
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=")
            assert metric_names(await response.text()) >= METRICS


class RoutedLike:
    """A backend that reports what a router would: failed attempts, a fallback, skipped
    deployments, hedged tokens, and the deployment that answered."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def models(self) -> list[str]:
        return self.inner.models()

    async def warm_up(self) -> None:
        return None

    def open(self, model: str, messages: list[dict[str, Any]], fields: dict[str, Any]) -> Call:
        call = self.inner.open(model, messages, fields)
        call.deployment = "west-1"
        call.attempts = ["east-1", "east-2"]
        call.fallback = True
        call.rate_limited = 3
        call.hedge_tokens = 5
        return call

    async def aclose(self) -> None:
        return None


async def test_router_outcomes_reach_their_counters(gateway: LiveGateway) -> None:
    state = gateway.app.state.gateway
    state.backend = RoutedLike(state.backend)
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            assert await chat(session, gateway, "ok") == 200
    await wait_until(lambda: idle(gateway))
    _, text = await scrape(gateway)
    assert metric(text, "codelinkava_requests_total", {"deployment": "west-1"}) == 2
    assert metric(text, "codelinkava_upstream_failures_total") == 4
    assert metric(text, "codelinkava_fallbacks_total") == 2
    assert metric(text, "codelinkava_rate_limited_total") == 6
    assert metric(text, "codelinkava_tokens_total", {"kind": "hedge"}) == 10


# The hook's arithmetic, on outcomes made here ---------------------------------------


def parsed(metrics: GatewayMetrics) -> str:
    return metrics.exposition().decode()


def test_inter_token_gaps_come_from_the_batch_times() -> None:
    metrics = GatewayMetrics()
    metrics.admitted()
    outcome = Outcome("/v1/chat/completions", "m", True, started=10.0, deployment="d")
    outcome.first_chunk, outcome.batch_times, outcome.ended = 10.5, [11.0, 11.25, 11.5], 11.5
    outcome.prompt_tokens, outcome.completion_tokens = 3, 4
    metrics.observe(outcome)
    text = parsed(metrics)
    assert metric(text, "codelinkava_time_to_first_token_seconds_sum") == 0.5
    assert metric(text, "codelinkava_inter_token_seconds_count") == 3
    assert metric(text, "codelinkava_inter_token_seconds_sum") == pytest.approx(1.0)
    assert metric(text, "codelinkava_inter_token_seconds_bucket", {"le": "0.25"}) == 2
    assert metric(text, "codelinkava_tokens_total", {"kind": "prompt"}) == 3
    assert metric(text, "codelinkava_tokens_total", {"kind": "completion"}) == 4
    assert metric(text, "codelinkava_in_flight") == 0


@pytest.mark.parametrize(
    ("status", "error", "attempts", "failures"),
    [
        (502, "upstream_unreachable", [], 1),  # a single provider's upstream failed
        (504, "upstream_timeout", [], 1),
        (429, "upstream_rate_limited", [], 1),
        (400, "upstream_status_400", [], 0),  # the request was refused, the upstream is fine
        (502, "upstream_status_500", ["a", "b"], 2),  # a router listed both, the last included
        (200, "", ["a"], 1),  # a router's first deployment failed, the second answered
        (503, "provider_not_working", [], 0),
    ],
)
def test_upstream_failures(status: int, error: str, attempts: list[str], failures: int) -> None:
    metrics = GatewayMetrics()
    metrics.admitted()
    outcome = Outcome("/api/chat", "m", True, started=0.0, status=status, error=error)
    outcome.attempts = attempts
    metrics.observe(outcome)
    assert metric(parsed(metrics), "codelinkava_upstream_failures_total") == failures


def test_a_whole_answer_has_no_time_to_first_token() -> None:
    metrics = GatewayMetrics()
    metrics.admitted()
    outcome = Outcome("/v1/chat/completions", "m", False, started=1.0, first_chunk=2.0)
    metrics.observe(outcome)
    text = parsed(metrics)
    assert metric(text, "codelinkava_time_to_first_token_seconds_count") == 0
    assert metric(text, "codelinkava_requests_total", {"status": "200"}) == 1


def test_model_names_beyond_the_cap_count_as_other() -> None:
    metrics = GatewayMetrics(max_models=2)
    for name in ("a", "b", "c", "d", "a"):
        metrics.admitted()
        metrics.observe(Outcome("/api/chat", name, True, started=0.0))
    text = parsed(metrics)
    requests = "codelinkava_requests_total"
    assert metric(text, requests, {"model": "a"}) == 2
    assert metric(text, requests, {"model": "b"}) == 1
    assert metric(text, requests, {"model": OTHER_MODEL}) == 2


def test_each_app_counts_in_its_own_registry() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()
    first.admitted()
    first.observe(Outcome("/api/chat", "m", True, started=0.0))
    assert metric(parsed(first), "codelinkava_requests_total") == 1
    assert metric(parsed(second), "codelinkava_requests_total") == 0
