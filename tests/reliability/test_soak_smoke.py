"""A small run of `bench/soak.py`; the real soak is not in the test run (docs/reliability.md).

Every phase at a few hundred requests: no crossed answers, no 5xx, flat RSS
and fds, the local worker stopping for departed clients, no leftover tasks,
sockets or warnings from 600 cancelled client streams.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_quick_soak_passes_every_check(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(out.read_text())
    for phase in ("gateway", "local", "client"):
        failed = [check for check, ok in results[phase]["checks"].items() if not ok]
        assert not failed, (phase, failed)
    gateway = results["gateway"]
    assert gateway["tally"].get("crossed or corrupted", 0) == 0
    assert gateway["tally"]["complete"] + gateway["tally"]["left mid-stream"] == gateway["requests"]
    assert results["client"]["tasks_after"] == results["client"]["tasks_before"]
