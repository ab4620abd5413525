"""Section `import`: what importing the library costs a program, against its peers.

Each figure is the median over fresh interpreters of (a) the wall time of
`python -c "import X"` minus that of `python -c "pass"`, and (b) the time
`python -X importtime` attributes to the statement's own imports (everything
imported at top level after start-up). A first, unmeasured run warms the
bytecode caches.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import plots
from bench.common import Config, fmt, median, runner_env, table

__all__ = ["render", "run"]

TITLE = "Import time"
TARGET_MS = 100.0

# (label, virtualenv, statement)
CASES = (
    ("codelinkava", "main", "import codelinkava"),
    ("codelinkava + first request's imports", "main", "import codelinkava, codelinkava._chat"),
    ("aiohttp (reference)", "main", "import aiohttp"),
    ("openai", "main", "import openai"),
    ("litellm", "peers", "import litellm"),
    ("g4f", "peers", "import g4f"),
)


def _importtime_us(stderr: str, startup: set[str]) -> float:
    """Sum of the cumulative times of top-level imports that start-up does not do."""
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line[len("import time:"):].split("|", 2)
        if name.startswith(" ") and not name.startswith("  ") and name.strip() not in startup:
            total += int(cumulative)
    return float(total)


def _run(python: str, code: str, importtime: bool) -> tuple[float, str]:
    args = [python, *(["-X", "importtime"] if importtime else []), "-c", code]
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=tempfile.gettempdir(), env=runner_env(), capture_output=True,
                          text=True, timeout=300)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {proc.returncode}")
    return wall, proc.stderr


def run(cfg: Config) -> dict[str, Any]:
    repeat = 3 if cfg.quick else 9
    rows = []
    for label, venv, code in CASES:
        python = cfg.python_for(venv)
        if python is None:
            rows.append({"label": label, "statement": code, "status": "not installed"})
            continue
        cfg.log(f"import: {code} ({repeat}×)")
        try:
            _, base_err = _run(python, "pass", True)
            startup = {ln.split("|")[2].strip() for ln in base_err.splitlines()
                       if ln.startswith("import time:") and "cumulative" not in ln}
            _run(python, code, False)  # warm the bytecode caches
            walls, empties, own = [], [], []
            for _ in range(repeat):
                empties.append(_run(python, "pass", False)[0])
                walls.append(_run(python, code, False)[0])
                own.append(_importtime_us(_run(python, code, True)[1], startup))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            rows.append({"label": label, "statement": code, "status": f"failed: {exc}"})
            continue
        rows.append({
            "label": label, "statement": code, "status": "ok",
            "wall_ms": (median(walls) - median(empties)) * 1e3,
            "wall_ms_min": (min(walls) - median(empties)) * 1e3,
            "wall_ms_max": (max(walls) - median(empties)) * 1e3,
            "importtime_ms": median(own) / 1e3,
            "runs": repeat,
        })
    return {"rows": rows, "target_ms": TARGET_MS}


def render(data: dict[str, Any], out_dir: Path) -> str:
    rows = data["rows"]
    ok = [r for r in rows if r["status"] == "ok"]
    table_rows = []
    for r in rows:
        if r["status"] != "ok":
            table_rows.append([r["label"], f"`{r['statement']}`", r["status"], "", ""])
            continue
        table_rows.append([
            r["label"], f"`{r['statement']}`",
            f"**{fmt(r['wall_ms'], 1)}** ({fmt(r['wall_ms_min'], 1)}–{fmt(r['wall_ms_max'], 1)})",
            fmt(r["importtime_ms"], 1), str(r["runs"]),
        ])
    lines = [
        f"## {TITLE}",
        "",
        __doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else "",
        "",
        table(["what", "statement", "wall ms, median (min–max)", "-X importtime ms", "runs"],
              table_rows),
        "",
    ]
    if ok:
        lines.append(f"![import time]({plots.import_figure(ok, out_dir)})")
    return "\n".join(lines) + "\n"
