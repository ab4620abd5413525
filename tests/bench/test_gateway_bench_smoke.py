"""The gateway section still runs: a tiny run, no peers, no timing asserts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_quick_gateway_bench_verifies_every_stream(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "gateway",
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
        "## Targets",
        "## Gateway: what `codelinkava serve` adds",
        "### Paced",
        "### Fast",
        "### Where `codelinkava serve`'s time goes",
    ):
        assert heading in report
    assert (tmp_path / "gateway.png").stat().st_size > 0

    data = json.loads((tmp_path / "gateway.json").read_text())["data"]
    ours = ("direct", "relay", "codelinkava", "codelinkava-messages", "codelinkava-responses")
    for name in ours:
        assert data["status"][name]["status"] == "ok", (name, data["status"][name])
    for name in ("litellm", "g4f"):
        assert data["status"][name]["status"] == "not installed"
    for cell in data["cells"]:
        runs = data["results"][f"{cell['mode']}/{cell['c']}"]
        assert set(runs) == set(ours)
        for name, answers in runs.items():
            assert len(answers) == data["settings"]["rounds"]
            for answer in answers:
                assert answer["ok"], (name, cell, answer.get("errors"))
                assert answer["verified"] == answer["c"] == cell["c"] * cell["repeat"]
                assert answer["crosstalk"] == 0
                assert answer["chunks"] == answer["c"] * cell["n"]
                if name != "direct":
                    assert "gateway_cpu_s" in answer
    for mode in ("fast", "paced"):
        assert data["profile"][mode]["ok"], data["profile"][mode]
    # the Messages route is measured beside the chat route, against its targets
    assert "/v1/messages: CPU per relayed chunk ≤ 1.5× the chat route's" in report
    assert "/v1/responses: CPU per relayed chunk ≤ 1.5× the chat route's" in report
