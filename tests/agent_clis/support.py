"""Running Claude Code and Codex headless, bounded and offline, against a gateway on 127.0.0.1.

The CLIs are the npm registry's, pinned in `./dev` (`agent_clis`), which installs them
and exports their folder as `CODELINKAVA_AGENT_BIN`. Without that variable, or without
the two programs in it, every test here fails (it does not skip): CI has them, and a
suite that skips where they are missing would pass without testing anything.

Each run gets a fresh HOME (and CODEX_HOME) under the test's tmp_path, an environment
with nothing in it but PATH and what the run sets, a working folder of its own, and a
timeout; the gateway and every upstream listen on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

__all__ = [
    "AGENT_BIN_ENV",
    "CLAUDE_FOR_CHAT_UPSTREAMS",
    "CODEX_CONFIG",
    "CODEX_FOR_CHAT_UPSTREAMS",
    "CODEX_NO_SUBAGENTS",
    "GATEWAY_KEY",
    "agent_binary",
    "run_claude",
    "run_codex",
]

AGENT_BIN_ENV = "CODELINKAVA_AGENT_BIN"
#: The gateway's own key: Claude Code sends it as `x-api-key`, Codex as a Bearer token.
GATEWAY_KEY = "k-agents"

#: What Claude Code needs to send only what a chat upstream can honour (the gateway
#: refuses each of the three by name otherwise): no `output_config.effort`, no
#: `thinking`, no `cache_control` on the system prompt, messages and tools.
CLAUDE_FOR_CHAT_UPSTREAMS: Mapping[str, str] = {
    "CLAUDE_CODE_EFFORT_LEVEL": "unset",
    "CLAUDE_CODE_DISABLE_THINKING": "1",
    "DISABLE_PROMPT_CACHING": "1",
}
#: Offline: no telemetry, error reports, update checks (only the gateway is asked).
_CLAUDE_QUIET = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}

#: Codex with the gateway as its provider, and what a chat upstream cannot serve
#: switched off: reasoning summaries (`reasoning.summary`), the hosted web search
#: (`tools[N].type`), the sub-agent tools (a `namespace` tool group). No retries: a
#: refusal shows at once.
CODEX_CONFIG = """\
model = "{model}"
model_provider = "codelinkava"
{settings}
check_for_update_on_startup = false

[model_providers.codelinkava]
name = "codelinkava gateway"
base_url = "{url}/v1"
wire_api = "responses"
env_key = "CODELINKAVA_API_KEY"
request_max_retries = 0
stream_max_retries = 0

{tables}"""
CODEX_FOR_CHAT_UPSTREAMS = 'model_reasoning_summary = "none"\nweb_search = "disabled"'
CODEX_NO_SUBAGENTS = "[agents]\nenabled = false\n"


def agent_binary(name: str) -> Path:
    """`$CODELINKAVA_AGENT_BIN/NAME`; the test fails, naming what is missing, without it."""
    folder = os.environ.get(AGENT_BIN_ENV)
    if not folder:
        pytest.fail(
            f"{AGENT_BIN_ENV} is not set: `./dev test` installs Claude Code and Codex (npm, "
            f"pinned) and sets it; or `export {AGENT_BIN_ENV}=<folder holding claude and codex>`",
            pytrace=False,
        )
    program = Path(folder) / name
    if not (program.is_file() and os.access(program, os.X_OK)):
        pytest.fail(f"{AGENT_BIN_ENV}={folder} holds no runnable {name!r}", pytrace=False)
    return program


def _environment(home: Path, values: Mapping[str, str]) -> dict[str, str]:
    """PATH (node for Codex's launcher, a shell for the tools), a fresh HOME, the values."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **values}


def _run(
    command: Sequence[str], env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        list(command),
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_claude(
    claude: Path,
    base_url: str,
    prompt: str,
    *args: str,
    home: Path,
    api_key: str,
    env: Mapping[str, str] = CLAUDE_FOR_CHAT_UPSTREAMS,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`claude -p PROMPT ARGS` with ANTHROPIC_BASE_URL at `base_url`, in `cwd` (`home`/work
    unless given)."""
    values = {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": api_key,
        **_CLAUDE_QUIET,
        **env,
    }
    command = [str(claude), "-p", prompt, *args]
    return _run(command, _environment(home, values), cwd or home / "work", timeout)


def run_codex(
    codex: Path,
    base_url: str,
    prompt: str,
    *,
    home: Path,
    api_key: str,
    model: str,
    settings: str = CODEX_FOR_CHAT_UPSTREAMS,
    tables: str = CODEX_NO_SUBAGENTS,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`codex exec PROMPT` with the gateway at `base_url` as its provider (CODEX_HOME=home)."""
    home.mkdir(parents=True, exist_ok=True)
    config = CODEX_CONFIG.format(model=model, url=base_url, settings=settings, tables=tables)
    (home / "config.toml").write_text(config)
    values = {"CODEX_HOME": str(home), "CODELINKAVA_API_KEY": api_key}
    command = [str(codex), "exec", "--skip-git-repo-check", prompt]
    return _run(command, _environment(home, values), home / "work", timeout)
