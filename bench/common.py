"""What the sections share: the run's settings, worker processes, statistics, Markdown."""

from __future__ import annotations

import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ROOT",
    "Config",
    "Worker",
    "fmt",
    "machine",
    "median",
    "percentile",
    "table",
]

ROOT = Path(__file__).resolve().parent.parent
PEERS_PYTHON = ROOT / "bench" / ".venv-peers" / "bin" / "python"


@dataclass
class Config:
    """The settings of one `python -m bench` run."""

    quick: bool = False
    n: int = 2000  # chunks per stream, fast mode
    rounds: int = 5
    out: Path = ROOT / "bench" / "results"
    peers: bool = True  # use bench/.venv-peers when it exists
    python: str = sys.executable
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr, flush=True))

    @property
    def peers_python(self) -> str | None:
        if self.peers and PEERS_PYTHON.exists():
            return str(PEERS_PYTHON)
        return None

    def python_for(self, venv: str) -> str | None:
        return self.python if venv == "main" else self.peers_python


class Worker:
    """A `python -m bench.runner serve` process (or `args`, a worker speaking the same
    JSON-lines protocol): send a JSON command, wait for its answer."""

    def __init__(
        self, python: str, log_path: Path, args: Sequence[str] = ("-m", "bench.runner", "serve")
    ) -> None:
        self._log = open(log_path, "a")  # noqa: SIM115 -- closed in close()
        self.proc = subprocess.Popen(
            [python, *args], cwd=ROOT, env=runner_env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        self._answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._answers.put(line)
        self._answers.put("")

    def ask(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(command) + "\n")
            self.proc.stdin.flush()
            line = self._answers.get(timeout=timeout)
        except (OSError, queue.Empty):
            self.close(kill=True)
            return {"ok": False, "error": f"no answer within {timeout:.0f}s (worker stopped)"}
        if not line:
            return {"ok": False, "error": "the worker exited"}
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                try:
                    assert self.proc.stdin is not None
                    self.proc.stdin.write('{"op": "quit"}\n')
                    self.proc.stdin.close()
                    self.proc.wait(30)
                except (OSError, subprocess.TimeoutExpired):
                    self.proc.kill()
        self.proc.wait()
        self._log.close()


def runner_env() -> dict[str, str]:
    env = dict(os.environ)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # LiteLLM offline: no cost-map download
    env.pop("OPENAI_BASE_URL", None)
    env.pop("CODELINKAVA_API_URL", None)
    return env


def run_once(cmd: Sequence[str], timeout: float, log_path: Path) -> dict[str, Any]:
    """Run a one-shot runner command (a fresh process) and return its JSON answer."""
    with open(log_path, "a") as log:
        try:
            proc = subprocess.run(
                list(cmd), cwd=ROOT, env=runner_env(), stdout=subprocess.PIPE, stderr=log,
                text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"did not finish within {timeout:.0f}s"}
    lines = proc.stdout.strip().splitlines()
    if not lines:
        error = f"exited {proc.returncode} with no answer (see logs/{log_path.name})"
        return {"ok": False, "error": error}
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer


# ---- statistics -----------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


# ---- Markdown ---------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
