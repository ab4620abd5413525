"""How many cores other work leaves free: llama.cpp's thread count, chosen by load.

llama.cpp's threads meet at a barrier after every layer and spin while they
wait. On an idle 2-core machine two threads decode 1.6x faster than one (72 vs
45 tokens/s here); with one core taken by another process, two threads fall to
27 tokens/s while one keeps its 45, because each barrier waits for the thread
the scheduler has parked. So before each job (and every few dozen tokens
within one) the engine asks how busy its cores were with *other* work over the
last few tenths of a second -- the kernel's per-CPU counters for the cores this process may
use, less this process's own CPU time -- and uses the cores left over.

Jobs on one engine run one at a time, so concurrent streams on one gateway do
not compete for cores; other processes do (a second gateway worker with its own
engine, a test suite, a build), and that is what this sees.

`threads_for` and `parse_stat` are pure; `CpuMeter` reads `/proc/stat`
(Linux; elsewhere it knows nothing and the engine uses every core) on a
daemon thread, four times a second.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterable

__all__ = ["CpuMeter", "parse_stat", "threads_for"]

#: A window shorter than this says too little to act on: the choice stays as it was.
MIN_WINDOW = 0.05
#: How far back a look reaches: the load now, not the load of a minute ago.
RECENT = 0.3
#: Seconds between two background samples.
SAMPLE_EVERY = 0.25


def threads_for(cores: int, others_busy: float) -> int:
    """The cores that other work leaves free (rounded), at least one, at most `cores`."""
    return max(1, min(cores, round(cores - others_busy)))


def parse_stat(text: str, cpus: Iterable[int]) -> tuple[int, int]:
    """(busy, total) clock ticks summed over the given CPUs of a `/proc/stat` text.
    Idle and iowait are not busy; steal is (the hypervisor gave the time away)."""
    wanted = {f"cpu{n}" for n in cpus}
    busy = total = 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name not in wanted:
            continue
        ticks = [int(field) for field in rest.split()[:8]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
        total += sum(ticks)
        busy += sum(ticks) - idle
    return busy, total


class CpuMeter:
    """Other processes' load on this process's cores over the last moment.

    A daemon thread takes a sample every `SAMPLE_EVERY` seconds (a read of one
    small file, ~20 us), so a job that starts after a long idle gap sees the load
    of the last few tenths of a second, not the average since the previous job (when other
    processes may have been busy and gone).
    """

    def __init__(
        self,
        cpus: Iterable[int] | None = None,
        stat_path: str = "/proc/stat",
        *,
        background: bool = True,
    ) -> None:
        if cpus is None:
            try:
                cpus = os.sched_getaffinity(0)
            except AttributeError:  # not on Linux
                cpus = ()
        self.cpus = sorted(cpus)
        self._path = stat_path
        self._tick = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
        self._samples: deque[tuple[float, float, float]] = deque(maxlen=8)
        self._lock = threading.Lock()
        self._record()
        if background and self._samples:
            threading.Thread(
                target=self._sample_forever, name="codelinkava-cpu", daemon=True
            ).start()

    def _sample(self) -> tuple[float, float, float] | None:
        """(wall time, busy seconds on our cores, this process's CPU seconds)."""
        try:
            with open(self._path, encoding="ascii") as file:
                busy, _ = parse_stat(file.read(), self.cpus)
        except (OSError, ValueError):
            return None
        ours = os.times()
        return time.monotonic(), busy * self._tick, ours.user + ours.system

    def _record(self) -> tuple[float, float, float] | None:
        sample = self._sample()
        if sample is not None:
            with self._lock:
                self._samples.append(sample)
        return sample

    def _sample_forever(self) -> None:
        while self._record() is not None:
            time.sleep(SAMPLE_EVERY)

    def others_busy(self) -> float | None:
        """Cores' worth of other work over the last `RECENT` seconds or so; None when
        it cannot tell (no /proc/stat) or too little time has passed to say."""
        now = self._record()
        if now is None:
            return None
        with self._lock:
            samples = list(self._samples)
        older = [s for s in samples if now[0] - s[0] >= MIN_WINDOW]
        if not older:
            return None
        recent = [s for s in older if now[0] - s[0] <= RECENT]
        last = recent[0] if recent else older[-1]
        window = now[0] - last[0]
        others = (now[1] - last[1]) - (now[2] - last[2])
        return max(0.0, others / window)
