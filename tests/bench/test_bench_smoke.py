"""The benchmark still runs: a tiny client run, no peers, no timing asserts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_quick_client_bench_writes_a_verified_report(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "client",
            "--no-peers",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    report = (tmp_path / "REPORT.md").read_text()
    for heading in (
        "# codelinkava benchmarks",
        "## Targets",
        "## Client: turning an SSE stream into text",
        "### Single stream, fast",
        "### Single stream, paced",
        "### Concurrent streams on one event loop",
        "### Where codelinkava's time goes",
    ):
        assert heading in report
    for png in ("client_cpu_per_chunk.png", "client_concurrency.png"):
        assert (tmp_path / png).stat().st_size > 0

    data = json.loads((tmp_path / "client.json").read_text())["data"]
    local = [name for name, c in data["labels"].items() if c["venv"] == "main"]
    assert {"floor", "seed", "codelinkava", "codelinkava_openai", "openai"} <= set(local)
    for name in local:
        assert data["status"][name]["status"] == "ok", (name, data["status"][name])
        for mode in ("fast", "paced"):
            runs = data["single"][mode][name]
            want = data["settings"]["rounds" if mode == "fast" else "paced_rounds"]
            assert len(runs) == want
            assert all(run["ok"] for run in runs), (name, mode)
        for level in data["settings"]["levels"]:
            assert data["concurrency"][name][level]["ok"], (name, level)
    for name in ("litellm", "g4f"):
        assert data["status"][name]["status"] == "not installed"
        assert name not in data["single"]["fast"]
    assert data["profile"]["fast"]["ok"]
