"""`codelinkava serve --workers N --redis-url URL`, the command a user runs, end to end.

The other scaling tests start gateways from their own launcher; this one runs
the CLI: two uvicorn workers built from one spec, limits through a real Redis,
metrics added up across the workers, the key required on /metrics.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import redis

from support.scripted import Reply, ScriptedServer, sse

from .support import RedisServer, child_env, free_port, healthy, metric, stop_process

KEY = "serve-cli-key"
START_WITHIN = 60.0


def _post(url: str) -> int:
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}',
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _get(url: str, key: str | None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""


def _script_calls(port: int) -> int:
    """How many limiter scripts Redis has run (EVALSHA), from its own statistics."""
    stats = redis.Redis(port=port).info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def test_serve_workers_share_redis_and_add_up_their_metrics(
    redis_server: RedisServer, upstream: ScriptedServer, log_dir: Path
) -> None:
    upstream.reply(Reply(body=[sse("ok", finish=True)]))
    port = free_port()
    command = [
        sys.executable, "-m", "codelinkava.cli", "serve", "--provider", "openai",
        "--base-url", upstream.url("/v1"), "--max-retries", "0", "--port", str(port),
        "--workers", "2", "--redis-url", redis_server.url, "--api-key", KEY,
        "--log-level", "warning", "--grace", "1",
    ]  # fmt: skip
    log = log_dir / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=child_env())
    try:
        deadline = time.monotonic() + START_WITHIN
        while healthy(url, 0.5) is None:
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
        sent = 0
        deadline = time.monotonic() + 20
        # The workers reach Redis: its script runs for the gateway's shared concurrency gate.
        while sent < 10 or _script_calls(redis_server.port) == 0:
            assert _post(url) == 200
            sent += 1
            assert time.monotonic() < deadline, "the workers never used Redis"
        status, _ = _get(f"{url}/metrics", None)
        assert status == 401  # behind the key, like every route but /health and the page
        status, text = _get(f"{url}/metrics", KEY)
        assert status == 200
        # Each scrape reaches one worker; the multiprocess directory makes it count both.
        assert metric(text, "codelinkava_requests_total", {"status": "200"}) == sent
        assert metric(text, "codelinkava_in_flight") == 0
    finally:
        stop_process(process)
    # Besides the chats, each worker asked which models the upstream serves (no --model).
    chats = [r for r in upstream.requests if r.path == "/v1/chat/completions"]
    assert len(chats) == sent
    assert {r.path for r in upstream.requests} == {"/v1/chat/completions", "/v1/models"}
    assert "Traceback" not in log.read_text(errors="replace")
