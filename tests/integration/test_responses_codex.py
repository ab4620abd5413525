"""OpenAI's Codex CLI, headless (`codex exec`), through the gateway's Responses route.

Codex comes from the npm registry (`npm install @openai/codex`, ~420 MB with its
binary), so the test runs where `codex` is on PATH or `CODELINKAVA_CODEX` names
it, and is skipped elsewhere. Codex is pointed at a live gateway as a custom
provider (`wire_api = "responses"`), with what a chat upstream cannot serve
switched off: reasoning summaries, the hosted web search, and the multi-agent
tools (a `namespace` tool group). It was also run in a network
namespace with only loopback: it needs nothing else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support.live_gateway import fronting, live_gateway
from support.real_upstream import Answer, openai_handler
from support.scripted import ScriptedServer

CODEX = os.environ.get("CODELINKAVA_CODEX") or shutil.which("codex")
pytestmark = pytest.mark.skipif(CODEX is None, reason="codex (npm @openai/codex) is not installed")

CONFIG = """\
model = "gpt-4o-mini"
model_provider = "codelinkava"
model_reasoning_summary = "none"
web_search = "disabled"
check_for_update_on_startup = false

[model_providers.codelinkava]
name = "codelinkava gateway"
base_url = "{url}/v1"
wire_api = "responses"
env_key = "CODELINKAVA_API_KEY"

[features]
multi_agent = false
"""


@pytest.mark.timeout(180)
def test_codex_exec_answers_through_the_gateway(server: ScriptedServer, tmp_path: Path) -> None:
    assert CODEX is not None
    server.handler = openai_handler(lambda body: Answer("Hello from the gateway."))
    with live_gateway(fronting(server.url("/v1"), api_key="k-codex")) as gateway:
        (tmp_path / "config.toml").write_text(CONFIG.format(url=gateway.url))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
        env.update(CODEX_HOME=str(tmp_path), HOME=str(tmp_path), CODELINKAVA_API_KEY="k-codex")
        done = subprocess.run(
            [CODEX, "exec", "--skip-git-repo-check", "Say hello."],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=150,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "Hello from the gateway."
    body = server.requests[-1].json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert [m["role"] for m in body["messages"]][-1] == "user"
    assert "developer" not in {m["role"] for m in body["messages"]}  # as system
    assert all(tool["type"] == "function" for tool in body["tools"])
    assert "client_metadata" not in body  # about the client, not the answer
