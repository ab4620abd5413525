"""The workers section still runs: a tiny run, every answer checked, no peers, no timing asserts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_quick_workers_bench_verifies_every_answer(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "workers",
            "--no-peers",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    data = json.loads((tmp_path / "workers.json").read_text())["data"]
    routes = {"direct", "w1", "w2", "w4"}
    for name in routes:
        assert data["status"][name]["status"] == "ok", (name, data["status"][name])
    assert data["status"]["litellm"]["status"] == "not installed"
    n, rounds = data["settings"]["n"], data["settings"]["rounds"]
    assert set(data["runs"]) == set(data["modes"]) == {"keepalive", "close"}
    for mode, by_route in data["runs"].items():
        assert set(by_route) == routes, mode
        for name, answers in by_route.items():
            assert len(answers) == rounds, (mode, name)
            for answer in answers:
                # every answer came back whole, 200, exactly its own request's text
                assert answer["ok"], (mode, name, answer.get("errors") or answer.get("error"))
                assert answer["requests"] > 0
                assert answer["verified"] == answer["requests"], (mode, name)
                assert answer["error_count"] == 0 and answer["crosstalk"] == 0, (mode, name)
                assert answer["statuses"] == {"200": answer["requests"]}, (mode, name)
                assert answer["chunks"] == answer["requests"] * n, (mode, name)
                cpu = answer["cpu"]
                if name == "direct":
                    assert cpu["gateway_s"] is None
                else:
                    assert cpu["gateway_s"] > 0, (mode, name)
                    assert len(cpu["workers_s"]) >= int(name[1:]), (mode, name)
        assert set(data["summary"][mode]["ratios"]) >= {"w2/w1", "w4/w1", "w1/direct"}

    report = (tmp_path / "REPORT.md").read_text()
    assert "## Workers: requests/s with 1, 2 and 4 worker processes" in report
    assert "### keep-alive connections" in report and "### a new connection per request" in report
    assert "workers: 2 workers ≥ 1.5× one worker" in report  # the Targets rows
