"""`codelinkava` as a user runs it: a subprocess, nothing configured, the real model."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time

import pytest

from support.cli import one_error_line

from .conftest import MODEL, Gateway, clean_env, cli, free_port

pytestmark = pytest.mark.e2e


def run(
    *args: str, stdin: str | None = None, within: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=within,
        env=clean_env(),
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def test_chat_answers_the_readme_question() -> None:
    result = run("chat", "What is the capital of France?")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "Traceback" not in result.stderr


def test_chat_reads_the_prompt_from_stdin() -> None:
    result = run("chat", "-", "--max-tokens", "12", stdin="Say hello.")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_chat_with_system_and_temperature() -> None:
    result = run(
        "chat", "Name a fruit.", "--system", "Answer in one word.", "--temperature", "0.3",
        "--max-tokens", "8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_interactive_conversation_two_questions_then_eof() -> None:
    result = run("chat", "--max-tokens", "16", stdin="What is 2 + 2?\nName a colour.\n")
    assert result.returncode == 0, result.stderr
    answers = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(answers) >= 2, result.stdout
    assert "Traceback" not in result.stderr


def test_interactive_exit_command() -> None:
    result = run("chat", "--max-tokens", "8", stdin="Hi\n/exit\nnever asked\n")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(("chat", ""), "empty", id="empty-prompt"),
        pytest.param(("chat", "hi", "--max-tokens", "0"), "max_tokens", id="max-tokens-0"),
        pytest.param(
            ("serve", "--provider", "openai", "--timeout", "-1"), "timeout", id="bad-timeout"
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...], says: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert line.startswith("codelinkava: ")
    assert says in line


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("chat", "hi", "--provider", "nope"), id="unknown-provider"),
        pytest.param(("chat", "hi", "--temperature", "warm"), id="not-a-number"),
        pytest.param(("frobnicate",), id="unknown-command"),
        pytest.param((), id="no-command"),
    ],
)
def test_argument_errors_exit_2_without_traceback(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "usage: codelinkava" in result.stderr


def test_unreachable_base_url_exits_1_with_one_line() -> None:
    port = free_port()  # nothing listens there once the probe socket is closed
    result = run("chat", "hi", "--base-url", f"http://127.0.0.1:{port}/v1", "--timeout", "2")
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert line.startswith("codelinkava: ProviderConnectionError")
    assert f"127.0.0.1:{port}" in line
    assert result.stdout == ""


def test_chat_through_the_gateway_with_the_openai_provider(gateway: Gateway) -> None:
    result = run(
        "chat", "Say hi.", "--base-url", f"{gateway.url}/v1", "--model", MODEL,
        "--max-tokens", "8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_chat_through_the_gateway_without_model_uses_the_listed_one(gateway: Gateway) -> None:
    # No --model: the CLI asks GET /v1/models and uses the first id, not gpt-3.5-turbo (a 404).
    result = run("chat", "Say hi.", "--base-url", f"{gateway.url}/v1", "--max-tokens", "8")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_chat_through_the_gateway_with_the_codelinkava_provider(gateway: Gateway) -> None:
    result = run("chat", "Say hi.", "--api-url", f"{gateway.url}/api/chat", "--max-tokens", "8")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_providers_live_check(gateway: Gateway) -> None:
    closed = free_port()
    result = run(
        "providers", "--api-url", f"{gateway.url}/api/chat",
        "--base-url", f"http://127.0.0.1:{closed}/v1", "--timeout", "20",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert list(lines) == ["local", "anthropic", "codelinkava", "openai"]
    assert "ok (" in lines["local"], result.stdout
    assert "ok (" in lines["codelinkava"], result.stdout
    assert "down (ProviderConnectionError" in lines["openai"], result.stdout
    assert "down (ProviderConnectionError" in lines["anthropic"], result.stdout


def test_providers_shows_what_the_server_lists(gateway: Gateway) -> None:
    # The same truth as the gateway's GET /v1/models, not "(whatever the server serves)".
    result = run("providers", "--base-url", f"{gateway.url}/v1", "--timeout", "20")
    assert result.returncode == 0, result.stderr
    openai_line = next(line for line in result.stdout.splitlines() if line.startswith("openai"))
    assert f"models: {MODEL} " in openai_line, result.stdout
    assert "ok (" in openai_line, result.stdout


def test_providers_without_check() -> None:
    result = run("providers", "--no-check")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == [
        "local",
        "anthropic",
        "codelinkava",
        "openai",
    ]


def test_ctrl_c_stops_the_answer_and_the_conversation_goes_on() -> None:
    process = subprocess.Popen(
        cli("chat", "--max-tokens", "2000"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"Write a very long story about a dragon.\n")
        process.stdin.flush()
        first = b""
        deadline = time.monotonic() + 30
        while len(first) < 20 and time.monotonic() < deadline:  # the answer is streaming
            ready, _, _ = select.select([process.stdout], [], [], 1)
            if ready:
                first += os.read(process.stdout.fileno(), 4096)
        assert first.strip()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(b"Say hi.\n", timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert b"[stopped]" in err
    assert b"Traceback" not in err
    assert out.strip()  # the next question was answered
