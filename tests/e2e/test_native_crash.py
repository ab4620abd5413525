"""A crash inside llama.cpp never kills codelinkava without a word.

The crash is real: `CODELINKAVA_TEST_NATIVE_CRASH` makes the trial child die of
SIGSEGV in native code (as llama.cpp's AMX kernels do on a Sapphire Rapids Xeon),
so these hold on any CPU. Each test keeps its trial results in its own directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from codelinkava.errors import ProviderNotWorkingError
from codelinkava.providers._llama_check import (
    CACHE_DIR_ENV,
    CRASH_HOOK_ENV,
    cache_file,
    checked_settings,
    run_trial,
)
from codelinkava.providers._llama_setup import EngineSettings, open_llama
from codelinkava.providers.local import default_model_path
from support.cli import one_error_line
from support.scripted import Reply, ScriptedServer, sse

from .conftest import clean_env, cli, free_port, run_gateway

pytestmark = pytest.mark.e2e

QUESTION = "What is the capital of France?"


@pytest.fixture
def crashing(tmp_path: Path) -> dict[str, str]:
    """The environment of a machine where llama.cpp dies of SIGSEGV whatever it is given."""
    return {CRASH_HOOK_ENV: "always", CACHE_DIR_ENV: str(tmp_path)}


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Trial results of this process's checks, kept apart from the user's."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    return tmp_path


def run(*args: str, env: dict[str, str], within: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args),
        capture_output=True,
        text=True,
        timeout=within,
        env={**clean_env(), **env},
        stdin=subprocess.DEVNULL,
    )


def records(directory: str | Path) -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads(
        (Path(directory) / "engine-checks.json").read_text()
    )
    return data


def test_chat_reports_the_crash_in_one_line_and_remembers_it(crashing: dict[str, str]) -> None:
    result = run("chat", QUESTION, env=crashing)
    assert result.returncode == 1, result  # an exit status, not death by a signal
    line = one_error_line(result.stderr)
    assert "ProviderNotWorkingError" in line
    assert "SIGSEGV" in line
    assert "GGML_NATIVE=OFF" in line  # the build flag
    assert "--provider openai" in line  # another provider
    assert result.stdout == ""
    (kept,) = records(crashing[CACHE_DIR_ENV]).values()
    assert kept["settings"] is None

    again = run("chat", QUESTION, env=crashing)
    assert again.returncode == 1
    assert one_error_line(again.stderr) == line
    (still,) = records(crashing[CACHE_DIR_ENV]).values()
    assert still["checked_at"] == kept["checked_at"]  # read back, not tried again


def test_serve_does_not_start_and_says_why(crashing: dict[str, str]) -> None:
    result = run("serve", "--provider", "local", "--port", str(free_port()), env=crashing)
    assert result.returncode == 1, result
    assert "SIGSEGV" in one_error_line(result.stderr)


def test_providers_lists_the_local_model_as_unavailable(crashing: dict[str, str]) -> None:
    result = run("providers", "--timeout", "60", env=crashing)
    assert result.returncode == 0, result.stderr
    (local,) = [line for line in result.stdout.splitlines() if line.startswith("local ")]
    assert "unavailable" in local
    assert "SIGSEGV" in local


async def test_a_gateway_keeps_serving_its_other_deployments(
    crashing: dict[str, str], tmp_path: Path, log_dir: Path, upstream: ScriptedServer
) -> None:
    upstream.reply(Reply(body=[sse("Hello", "!", finish=True)]))
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: small\n"
        "    litellm_params: {model: local/smollm2}\n"
        "    model_info: {id: embedded}\n"
        "  - model_name: remote\n"
        f"    litellm_params: {{model: openai/m, api_base: '{upstream.url('/v1')}'}}\n"
    )
    with run_gateway(log_dir, "--config", str(config), env=crashing) as gateway:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{gateway.url}/health") as response:
                health = await response.json()
            assert response.status == 200
            assert health["status"] == "degraded"
            assert set(health["unavailable"]) == {"embedded"}
            assert "SIGSEGV" in health["unavailable"]["embedded"]

            chat = f"{gateway.url}/v1/chat/completions"
            body = {"messages": [{"role": "user", "content": "Hi"}], "stream": False}
            async with session.post(chat, json={**body, "model": "remote"}) as response:
                answer = await response.json()
            assert response.status == 200, answer
            assert answer["choices"][0]["message"]["content"] == "Hello!"

            async with session.post(chat, json={**body, "model": "small"}) as response:
                refused = await response.json()
            assert response.status == 503
            assert "SIGSEGV" in refused["error"]["message"]
    assert gateway.process.returncode == 0 or gateway.process.returncode < 0  # stopped by us


def test_a_crash_with_extra_buffers_on_is_tried_again_without(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a CPU without AMX the engine starts with llama.cpp's extra buffer types on; a
    crash there is followed by a trial with plain buffers, and that is what is kept."""
    monkeypatch.setenv(CRASH_HOOK_ENV, "extra-buffers")
    settings = checked_settings(default_model_path(), cpu=frozenset({"avx2", "fma"}))
    assert settings.extra_buffers is False
    assert "crashed" in settings.reason
    (kept,) = records(own_cache).values()
    assert kept["settings"] == settings.as_dict()
    assert kept["buffers"]  # what llama.cpp reported loading the weights into


def test_an_amx_cpu_gets_plain_buffers_without_a_crash_first(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CRASH_HOOK_ENV, "extra-buffers")  # would crash if they were tried
    settings = checked_settings(default_model_path(), cpu=frozenset({"avx2", "amx_int8"}))
    assert settings.extra_buffers is False
    assert "amx_int8" in settings.reason


def test_the_users_choice_is_not_worked_around(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CRASH_HOOK_ENV, "extra-buffers")
    monkeypatch.setenv("CODELINKAVA_LLAMA_EXTRA_BUFFERS", "on")
    with pytest.raises(ProviderNotWorkingError, match=r"SIGSEGV with extra buffer types on\)"):
        checked_settings(default_model_path(), cpu=frozenset({"avx2"}))
    assert str(cache_file()).startswith(str(own_cache))


def test_plain_buffers_hold_the_weights_in_ordinary_cpu_memory() -> None:
    crash, buffers = run_trial(default_model_path(), EngineSettings(False, "test"))
    assert crash is None
    assert buffers
    assert not [name for name in buffers if "AMX" in name or "REPACK" in name], buffers


def test_open_llama_asks_llama_cpp_for_plain_buffers() -> None:
    import llama_cpp

    assert llama_cpp.llama_model_default_params().use_extra_bufts is True  # what we change
    llm = open_llama(default_model_path(), EngineSettings(False, "test"), n_ctx=256, verbose=False)
    try:
        assert llm.model_params.use_extra_bufts is False
        assert llm.tokenize(b"Paris")  # the model is loaded and usable
    finally:
        llm.close()


def test_a_broken_model_file_is_an_error_not_a_crash(tmp_path: Path, own_cache: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(Exception, match="could not load the model") as caught:
        checked_settings(str(broken))
    assert not isinstance(caught.value, ProviderNotWorkingError)


def test_without_llama_cpp_python_the_cli_says_what_to_install(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.modules['llama_cpp'] = None  # as if llama-cpp-python were not installed\n"
        "from codelinkava.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "chat", QUESTION],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean_env(), CACHE_DIR_ENV: str(tmp_path)},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result
    line = one_error_line(result.stderr)
    assert "pip install 'codelinkava[local]'" in line


def test_an_illegal_instruction_says_to_build_for_this_cpu(tmp_path: Path) -> None:
    env = {CRASH_HOOK_ENV: "illegal-instruction", CACHE_DIR_ENV: str(tmp_path)}
    result = run("chat", QUESTION, env=env)
    assert result.returncode == 1, result
    line = one_error_line(result.stderr)
    assert "SIGILL" in line
    assert "GGML_NATIVE=ON" in line
