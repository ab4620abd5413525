"""Codex (`codex exec`, headless) through the gateway's Responses route.

Codex is given the gateway as a custom provider (`wire_api = "responses"`) in a fresh
CODEX_HOME, with the two settings a chat upstream needs (`CODEX_FOR_CHAT_UPSTREAMS`) and
its sub-agent tools off (`CODEX_NO_SUBAGENTS`). In front of an OpenAI-compatible upstream
it runs the shell command the upstream asks for, in its read-only sandbox, and sends the
output back; without each setting, the gateway refuses the field it brings by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.live_gateway import LiveGateway, fronting, live_gateway
from support.real_upstream import Answer, ToolCall, has_tool_result, openai_handler
from support.scripted import ScriptedServer

from .support import CODEX_FOR_CHAT_UPSTREAMS, CODEX_NO_SUBAGENTS, GATEWAY_KEY, run_codex

MODEL = "gpt-4o-mini"
SHELL = ToolCall("call_6x7", "exec_command", {"cmd": "echo $((6*7))"})


@pytest.fixture
def gateway(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    with live_gateway(fronting(upstream.url("/v1"), api_key=GATEWAY_KEY)) as running:
        yield running


def shell_then_answer(body: dict[str, Any]) -> Answer:
    """Ask for the shell command; once its output is in, say its last line."""
    if not has_tool_result(body):
        return Answer(tool_calls=[SHELL])
    result = next(m["content"] for m in body["messages"] if m["role"] == "tool")
    return Answer(content=f"The shell said {result.strip().splitlines()[-1]}.")


def test_codex_runs_the_command_the_upstream_asks_for_and_sends_its_output(
    codex: Path, upstream: ScriptedServer, gateway: LiveGateway, tmp_path: Path
) -> None:
    upstream.handler = openai_handler(shell_then_answer)
    done = run_codex(
        codex, gateway.url, "What is six times seven? Use the shell.",
        home=tmp_path, api_key=GATEWAY_KEY, model=MODEL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "The shell said 42."
    first, second = (r.json() for r in upstream.requests)
    assert first["model"] == MODEL and first["stream"] is True
    assert [m["role"] for m in first["messages"]][-1] == "user"
    assert "developer" not in {m["role"] for m in first["messages"]}  # sent as system
    assert all(tool["type"] == "function" for tool in first["tools"])
    assert "exec_command" in {tool["function"]["name"] for tool in first["tools"]}
    call, result = second["messages"][-2:]
    (sent,) = call["tool_calls"]
    assert sent["id"] == SHELL.id and sent["function"]["name"] == "exec_command"
    assert json.loads(sent["function"]["arguments"]) == SHELL.arguments
    assert result["role"] == "tool" and result["tool_call_id"] == SHELL.id
    assert result["content"].rstrip().endswith("Output:\n42")


@pytest.mark.parametrize(
    ("settings", "tables", "field"),
    [
        pytest.param(
            'web_search = "disabled"', CODEX_NO_SUBAGENTS, "reasoning.summary", id="summary"
        ),
        pytest.param(
            'model_reasoning_summary = "none"', CODEX_NO_SUBAGENTS, "tools[7].type", id="search"
        ),
        pytest.param(CODEX_FOR_CHAT_UPSTREAMS, "", "tools[4].type", id="sub-agent-tools"),
    ],
)
def test_without_a_setting_the_field_it_brings_is_refused_by_name(
    codex: Path,
    upstream: ScriptedServer,
    gateway: LiveGateway,
    tmp_path: Path,
    settings: str,
    tables: str,
    field: str,
) -> None:
    done = run_codex(
        codex, gateway.url, "Say hi", home=tmp_path, api_key=GATEWAY_KEY, model=MODEL,
        settings=settings, tables=tables,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    assert f'"param":"{field}"' in done.stderr, done.stderr[-3000:]
    assert upstream.requests == []  # refused, not sent on with the field dropped
