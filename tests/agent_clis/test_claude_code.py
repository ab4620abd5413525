"""Claude Code (`claude -p`, headless) through the gateway's Messages route.

In front of an OpenAI-compatible upstream, with the three settings that keep it to what
such an upstream can honour (`support.CLAUDE_FOR_CHAT_UPSTREAMS`), it answers, and runs a
tool the upstream asks for and sends its result back; without each setting, the gateway
refuses the field it brings by name, and the CLI shows that refusal. In front of an
upstream that speaks Messages itself, Claude Code needs no settings at all: what the
upstream is asked through the gateway is what Claude Code asks it directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codelinkava.server import GatewaySettings
from support.anthropic_streams import TEXT_STREAM, stream
from support.live_gateway import LiveGateway, fronting, live_gateway
from support.real_upstream import Answer, ToolCall, has_tool_result, openai_handler
from support.scripted import ScriptedServer

from .support import CLAUDE_FOR_CHAT_UPSTREAMS, GATEWAY_KEY, run_claude

MODEL = "gpt-4o-mini"
#: What an OpenAI upstream may be sent for Claude Code's requests: nothing of Anthropic's.
CHAT_FIELDS = {"model", "messages", "stream", "stream_options", "max_tokens", "tools", "user"}
SHELL = ToolCall("call_6x7", "Bash", {"command": "echo $((6*7))", "description": "Multiply"})


@pytest.fixture
def gateway(upstream: ScriptedServer) -> Iterator[LiveGateway]:
    with live_gateway(fronting(upstream.url("/v1"), api_key=GATEWAY_KEY)) as running:
        yield running


def shell_then_answer(body: dict[str, Any]) -> Answer:
    """Ask for the shell command; once its result is in, say what it was."""
    if not has_tool_result(body):
        return Answer(tool_calls=[SHELL])
    result = next(m["content"] for m in body["messages"] if m["role"] == "tool")
    return Answer(content=f"The shell said {result.strip()}.")


def test_claude_code_answers_through_the_gateway(
    claude: Path, upstream: ScriptedServer, gateway: LiveGateway, tmp_path: Path
) -> None:
    upstream.handler = openai_handler(lambda body: Answer("Hello from the gateway."))
    done = run_claude(
        claude, gateway.url, "Say hi", "--model", MODEL, "--max-turns", "1",
        home=tmp_path, api_key=GATEWAY_KEY,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "Hello from the gateway."
    (asked,) = [r.json() for r in upstream.requests]
    assert set(asked) <= CHAT_FIELDS, set(asked) - CHAT_FIELDS
    assert asked["model"] == MODEL and asked["stream"] is True
    assert asked["stream_options"] == {"include_usage": True}
    # its system prompt, the question, and its mid-conversation system message, in place
    roles = [message["role"] for message in asked["messages"]]
    assert roles == ["system", "user", "system"]
    assert all(isinstance(m["content"], str) and m["content"] for m in asked["messages"][::2])
    names = {tool["function"]["name"] for tool in asked["tools"]}
    assert {"Bash", "Read", "Edit"} <= names
    assert all(tool["type"] == "function" for tool in asked["tools"])


def test_claude_code_runs_the_tool_the_upstream_asks_for_and_sends_its_result(
    claude: Path, upstream: ScriptedServer, gateway: LiveGateway, tmp_path: Path
) -> None:
    upstream.handler = openai_handler(shell_then_answer)
    done = run_claude(
        claude, gateway.url, "What is six times seven? Use the shell.",
        "--model", MODEL, "--max-turns", "3", "--allowedTools", "Bash",
        home=tmp_path, api_key=GATEWAY_KEY,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "The shell said 42."
    first, second = (r.json() for r in upstream.requests)
    assert not has_tool_result(first)
    call, result = second["messages"][-2:]
    assert call["role"] == "assistant"
    (sent,) = call["tool_calls"]  # the upstream's call, as the CLI saw it and sent it back
    assert sent["function"]["name"] == "Bash"
    assert json.loads(sent["function"]["arguments"]) == SHELL.arguments
    assert result == {"role": "tool", "tool_call_id": sent["id"], "content": "42"}


def test_the_settings_can_live_in_claude_codes_settings_file(
    claude: Path, upstream: ScriptedServer, gateway: LiveGateway, tmp_path: Path
) -> None:
    """The README's `~/.claude/settings.json`: the model and the three settings (the
    gateway's URL and key stay in the environment: see the README)."""
    upstream.handler = openai_handler(lambda body: Answer("Hello from the gateway."))
    (tmp_path / ".claude").mkdir()
    settings = {"model": MODEL, "env": dict(CLAUDE_FOR_CHAT_UPSTREAMS)}
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(settings))
    done = run_claude(
        claude, gateway.url, "Say hi", "--max-turns", "1",
        home=tmp_path, api_key=GATEWAY_KEY, env={},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "Hello from the gateway."
    assert upstream.requests[-1].json()["model"] == MODEL


@pytest.mark.parametrize(
    ("left_out", "args", "field"),
    [
        pytest.param("DISABLE_PROMPT_CACHING", (), "system.1.cache_control", id="cache-control"),
        pytest.param("CLAUDE_CODE_DISABLE_THINKING", (), "thinking", id="thinking"),
        pytest.param("CLAUDE_CODE_EFFORT_LEVEL", (), "output_config", id="effort"),
        # Claude's own models pin their effort whatever the setting says
        pytest.param(None, ("--model", "claude-opus-4-8"), "output_config", id="pinned-effort"),
    ],
)
def test_without_a_setting_the_field_it_brings_is_refused_by_name(
    claude: Path,
    upstream: ScriptedServer,
    gateway: LiveGateway,
    tmp_path: Path,
    left_out: str | None,
    args: tuple[str, ...],
    field: str,
) -> None:
    settings = {k: v for k, v in CLAUDE_FOR_CHAT_UPSTREAMS.items() if k != left_out}
    done = run_claude(
        claude, gateway.url, "Say hi", "--model", MODEL, "--max-turns", "1", *args,
        home=tmp_path, api_key=GATEWAY_KEY, env=settings,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith(f"API Error: 400 {field}: "), done.stdout
    assert "cannot be honoured" in done.stdout
    assert upstream.requests == []  # refused, not sent on with the field dropped


# An upstream that speaks Messages: the same request direct and through the gateway ------


def _as_asked(body: dict[str, Any], home: Path) -> dict[str, Any]:
    """The request without what differs from one run to the next: HOME, the session ids."""
    text = json.dumps(body).replace(str(home), "$HOME")
    same: dict[str, Any] = json.loads(text)
    user = json.loads(same["metadata"]["user_id"])
    same["metadata"]["user_id"] = sorted(user)  # device_id, session_id...: their names
    return same


def test_in_front_of_a_messages_upstream_claude_code_asks_what_it_asks_direct(
    claude: Path, upstream: ScriptedServer, tmp_path: Path
) -> None:
    """No settings: thinking, cache_control, output_config, context_management, the
    mid-conversation system message and the betas all reach the upstream as sent."""
    upstream.reply(stream(TEXT_STREAM))
    options = {"base_url": upstream.url(""), "api_key": "sk-ant-upstream", "max_retries": 0}
    settings = GatewaySettings(
        provider="anthropic", provider_options=options, api_key=GATEWAY_KEY, preload=False
    )
    runs = []
    with live_gateway(settings) as gateway:
        for name, url, key in (
            ("direct", upstream.url(""), "sk-ant-upstream"),
            ("gateway", gateway.url, GATEWAY_KEY),
        ):
            home = tmp_path / name
            done = run_claude(
                claude, url, "Say hi", "--max-turns", "1",
                home=home, api_key=key, env={}, cwd=tmp_path / "work",
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            assert done.stdout.strip() == "Hello!"
            asked = [r for r in upstream.requests if r.method == "POST"][-1]
            runs.append((_as_asked(asked.json(), home), asked.headers))
    (direct, direct_headers), (through, through_headers) = runs
    assert through == direct
    assert {"thinking", "output_config", "context_management"} <= set(direct)
    assert "system" in [message["role"] for message in direct["messages"]]
    for header in ("anthropic-beta", "anthropic-version"):
        assert through_headers[header] == direct_headers[header]
    assert through_headers["x-api-key"] == "sk-ant-upstream"
