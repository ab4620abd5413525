"""The thread count chosen by load: the arithmetic, the kernel's counters, and a real
process spinning beside us."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from codelinkava.providers._cpu_load import CpuMeter, parse_stat, threads_for

SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
STAT = """cpu  400 0 100 1500 0 0 0 0 0 0
cpu0 100 0 50 850 0 0 0 0 0 0
cpu1 300 0 50 650 0 0 0 0 0 0
intr 12345
"""


@pytest.mark.parametrize(
    ("cores", "others", "threads"),
    [
        (2, 0.0, 2),  # an idle machine: every core
        (2, 0.3, 2),  # a little other work: still every core
        (2, 1.0, 1),  # one core taken: the other
        (2, 2.0, 1),  # both taken: never fewer than one
        (8, 2.6, 5),
        (1, 0.0, 1),
        (4, -1.0, 4),  # a negative reading (clock skew) never asks for more than there is
    ],
)
def test_threads_are_the_cores_other_work_leaves(cores: int, others: float, threads: int) -> None:
    assert threads_for(cores, others) == threads


def test_parse_stat_sums_the_given_cpus_only() -> None:
    assert parse_stat(STAT, [0]) == (150, 1000)
    assert parse_stat(STAT, [1]) == (350, 1000)
    assert parse_stat(STAT, [0, 1]) == (500, 2000)
    assert parse_stat(STAT, [7]) == (0, 0)  # the aggregate `cpu` line is never counted


def test_a_meter_without_proc_stat_knows_nothing(tmp_path: Path) -> None:
    meter = CpuMeter(cpus=[0], stat_path=str(tmp_path / "missing"), background=False)
    time.sleep(0.06)
    assert meter.others_busy() is None


def test_a_meter_reads_the_counters_it_is_given(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(STAT)
    meter = CpuMeter(cpus=[0, 1], stat_path=str(stat), background=False)
    time.sleep(0.06)
    assert meter.others_busy() == 0.0  # nothing moved
    assert meter.others_busy() == 0.0  # still looking back at the same window


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="the kernel's counters are Linux's")
def test_a_meter_sees_another_process_spin() -> None:
    meter = CpuMeter()
    spinner = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=0.6)])
    try:
        spinner.wait(10)
    finally:
        spinner.kill()
    others = meter.others_busy()
    assert others is not None
    assert others > 0.4  # about one core's worth, for about the window


def test_a_look_after_an_idle_gap_sees_the_load_now_not_the_average(tmp_path: Path) -> None:
    """Busy for a second, then idle for a second: a look after the gap reports the idle
    now, not the half-busy average since the meter began. The counters are written
    here, one core's worth of ticks a second, so nothing else on the machine counts."""
    stat = tmp_path / "stat"
    meter = CpuMeter(cpus=[0], stat_path=str(stat), background=False)
    per_second = round(1 / meter._tick)
    busy = total = 0

    def advance(seconds: float, busy_share: float) -> None:
        nonlocal busy, total
        time.sleep(seconds)
        busy += round(per_second * seconds * busy_share)
        total += round(per_second * seconds)
        stat.write_text(f"cpu0 {busy} 0 0 {total - busy} 0 0 0 0\n")
        meter._record()  # what the background thread does four times a second

    advance(0.0, 0.0)
    for _ in range(4):
        advance(0.25, 1.0)
    during = meter.others_busy()
    for _ in range(4):
        advance(0.25, 0.0)
    after = meter.others_busy()
    assert during is not None and during > 0.7
    assert after is not None and after < 0.2
