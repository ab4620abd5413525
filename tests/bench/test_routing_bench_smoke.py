"""The routing section still runs: a tiny run, every answer checked, no timing asserts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(200)
def test_quick_routing_bench_reads_every_answer(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.routing_bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "routing.json").read_text())["data"]
    # Every answer was read to [DONE] without an error (the client raises otherwise).
    assert {s["n"] for s in data["overhead"]["stats"].values()} == {80}
    assert len(data["hedging"]) == 3
    for label, stats in data["hedging"].items():
        assert stats["n"] == 60, label
        assert stats["upstream_per_answer"] >= 1.0, label
    assert data["hedging"]["no hedge"]["upstream_per_answer"] == 1.0
    report = (tmp_path / "routing.md").read_text()
    assert "### What the router adds" in report and "### Hedged first chunk" in report
