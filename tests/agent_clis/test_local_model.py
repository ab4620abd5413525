"""Claude Code and Codex on the real local model (SmolLM2-135M), one short call each.

The model reads 2,048 tokens at most, so Claude Code is asked with a short system prompt
and no tools; the test checks that the CLI gets an answer, not what the model says.
Codex cannot be run without tools, and the model cannot choose among tools: its test
checks that the request gets through the Responses route to the model's own check and
is refused there by name (not with a 500, not with the field dropped).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codelinkava import LocalModel
from codelinkava.server import GatewaySettings
from support.live_gateway import LiveGateway, live_gateway

from .support import GATEWAY_KEY, run_claude, run_codex

pytestmark = pytest.mark.e2e

MODEL = LocalModel.default_model
SYSTEM = "You are a helpful assistant. Answer in one short sentence."


@pytest.fixture(scope="module")
def gateway() -> Iterator[LiveGateway]:
    with live_gateway(GatewaySettings(provider="local", api_key=GATEWAY_KEY)) as running:
        yield running


@pytest.mark.timeout(300)
def test_claude_code_answers_from_the_local_model(
    claude: Path, gateway: LiveGateway, tmp_path: Path
) -> None:
    # --bare: no hooks, plugins, CLAUDE.md; --tools "": no tools (the model is not asked
    # to choose one); the prompt fits the model's context.
    done = run_claude(
        claude, gateway.url, "What is 2+2?",
        "--model", MODEL, "--max-turns", "1", "--bare", "--tools", "", "--system-prompt", SYSTEM,
        home=tmp_path, api_key=GATEWAY_KEY, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip()


@pytest.mark.timeout(300)
def test_codex_reaches_the_local_model_which_refuses_to_choose_a_tool_by_name(
    codex: Path, gateway: LiveGateway, tmp_path: Path
) -> None:
    """Codex always offers tools (`request_user_input` at least) with `tool_choice: "auto"`,
    and the 135M model cannot decide when to call one: the gateway says so, naming the
    field. (Its `prompt_cache_key`, checked before, is accepted.)"""
    done = run_codex(
        codex, gateway.url, "Say hello.", home=tmp_path, api_key=GATEWAY_KEY, model=MODEL,
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert '"param":"tool_choice"' in done.stderr, done.stderr[-3000:]
    assert "cannot decide whether to call a tool" in done.stderr
