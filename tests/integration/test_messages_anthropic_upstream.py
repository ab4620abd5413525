"""`/v1/messages` in front of the `Anthropic` provider and a server that speaks Messages.

The direct reference exists here: the `anthropic` SDK runs each scenario against
the scripted Messages server directly, then through a live gateway
(`--provider anthropic`) fronting the same server. The SDK must read the same
message both ways, the event stream must reach it byte for byte, and what the
upstream is asked must carry the caller's own Anthropic fields (`thinking`,
`cache_control`, `anthropic-beta`).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from codelinkava.server import GatewaySettings
from support.anthropic_sdk import anthropic_client, close_anthropic_clients
from support.anthropic_streams import (
    TEXT_STREAM,
    THINKING_STREAM,
    TOOL_ARGUMENTS,
    TOOL_ID,
    TOOL_STREAM,
    WHOLE_TOOL_MESSAGE,
    status,
    stream,
)
from support.live_gateway import LiveGateway, live_gateway
from support.scripted import Reply, ScriptedServer, running_server

KEY = "sk-ant-upstream"
QUESTION = [{"role": "user", "content": "What is the weather like in San Francisco?"}]


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_anthropic_clients()


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedServer]:
    with running_server() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    options = {"base_url": upstream.url(""), "api_key": KEY, "max_retries": 0, "timeout": 2}
    settings = GatewaySettings(provider="anthropic", provider_options=options, api_key=None)
    with live_gateway(settings) as running:
        yield running


def both(upstream: ScriptedServer, gateway: LiveGateway, reply: Reply, scenario: Any) -> Any:
    """The scenario's result direct and through the gateway, and the two requests."""
    results = []
    for base_url in (upstream.url(""), gateway.url):
        upstream.reply(reply)
        sdk = anthropic_client(base_url, api_key=KEY)
        results.append(scenario(sdk))
    return results, [r.json() for r in upstream.requests[-2:]]


def test_a_streamed_tool_call_reads_the_same_direct_and_through(
    upstream: ScriptedServer, gateway: LiveGateway
) -> None:
    def scenario(sdk: anthropic.Anthropic) -> Any:
        with sdk.messages.stream(model="claude-x", max_tokens=256, messages=QUESTION) as events:
            return events.get_final_message().model_dump()

    (direct, through), (asked_direct, asked_through) = both(
        upstream, gateway, stream(TOOL_STREAM), scenario
    )
    assert through == direct
    assert through["content"][1]["id"] == TOOL_ID
    assert through["content"][1]["input"] == json.loads(TOOL_ARGUMENTS)
    for name in ("model", "max_tokens", "messages", "stream"):
        assert asked_through[name] == asked_direct[name], name


def test_a_whole_message_reads_the_same_direct_and_through(
    upstream: ScriptedServer, gateway: LiveGateway
) -> None:
    whole = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(WHOLE_TOOL_MESSAGE).encode()]
    )
    (direct, through), _ = both(
        upstream,
        gateway,
        whole,
        lambda sdk: sdk.messages.create(model="claude-x", max_tokens=256, messages=QUESTION),
    )
    assert through.model_dump() == direct.model_dump()


def test_the_event_stream_is_relayed_byte_for_byte(
    upstream: ScriptedServer, gateway: LiveGateway
) -> None:
    for recorded in (TEXT_STREAM, TOOL_STREAM, THINKING_STREAM):
        upstream.reply(stream(recorded))
        body = {"model": "claude-x", "max_tokens": 256, "stream": True, "messages": QUESTION}
        request = urllib.request.Request(
            gateway.url + "/v1/messages",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.read() == _one_line_per_data(recorded)


def _one_line_per_data(recorded: bytes) -> bytes:
    """The recording as the gateway frames it: each event's JSON text kept exactly."""
    out = []
    for block in recorded.decode().strip().split("\n\n"):
        name, data = block.split("\n", 1)
        out.append(f"{name}\n{data}\n\n")
    return "".join(out).encode()


def test_anthropics_own_fields_and_betas_reach_the_upstream(
    upstream: ScriptedServer, gateway: LiveGateway
) -> None:
    upstream.reply(stream(TEXT_STREAM))
    cached = {
        "type": "text",
        "text": "A long, cached context.",
        "cache_control": {"type": "ephemeral"},
    }
    sdk = anthropic_client(gateway.url)
    with sdk.messages.stream(
        model="claude-x",
        max_tokens=2048,
        system=[cached],
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": [cached, {"type": "text", "text": "27 * 453?"}]}],
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    ) as events:
        final = events.get_final_message()
    assert final.content[0].text == "Hello!"  # type: ignore[union-attr]
    asked = upstream.requests[-1]
    sent = asked.json()
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert sent["system"] == [cached]
    assert sent["messages"][0]["content"][0] == cached
    assert "interleaved-thinking-2025-05-14" in asked.headers["anthropic-beta"]
    assert asked.headers["x-api-key"] == KEY  # the operator's key, never the caller's


def test_an_upstream_overload_reaches_the_sdk_as_one(
    upstream: ScriptedServer, gateway: LiveGateway
) -> None:
    upstream.reply(status(529, "overloaded_error", "Overloaded"))
    sdk = anthropic_client(gateway.url)
    with pytest.raises(anthropic.OverloadedError) as caught:
        sdk.messages.create(model="claude-x", max_tokens=16, messages=QUESTION)
    assert caught.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}  # type: ignore[index]
