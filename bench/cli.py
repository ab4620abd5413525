"""`python -m bench`: run the benchmark sections and write `bench/results/REPORT.md`.

Each section (see `SECTIONS`) is a module with `run(config) -> dict` and
`render(data, out_dir) -> str`. A run saves each section's data as
`<section>.json` in the output folder, then renders REPORT.md from every
section file there, so `--only gateway` (say) refreshes one section and keeps
the others, each stamped with when it ran.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Config, fmt, machine, table

__all__ = ["SECTIONS", "main"]

#: name -> module
SECTIONS = {
    "client": "bench.client_bench",
    "import": "bench.import_bench",
    "gateway": "bench.gateway_bench",
    "local": "bench.local_model",  # the embedded model through the gateway vs llama.cpp direct
    "threads": "bench.local_threads",  # llama.cpp threads: fixed counts vs chosen by load
    "routing": "bench.routing_bench",  # what the router adds; hedging and the first-chunk tail
    "workers": "bench.workers_bench",  # requests/s at 1, 2, 4 workers; LiteLLM's proxy alike
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, a smoke test (writes to bench/results-quick/)")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append",
                        help="run only this section (repeatable)")
    parser.add_argument("-n", type=int, help="chunks per stream, fast mode (default 2000)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    parser.add_argument("--out", type=Path, help="output folder (default bench/results/)")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: re-render REPORT.md from the saved section data")
    parser.add_argument("--no-peers", action="store_true",
                        help="leave out LiteLLM and g4f even if bench/.venv-peers exists")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    cfg = Config(quick=args.quick, peers=not args.no_peers)
    if args.quick:
        cfg.n, cfg.rounds = 50, 2
        cfg.out = ROOT / "bench" / "results-quick"
    cfg.n = args.n or cfg.n
    cfg.rounds = args.rounds or cfg.rounds
    cfg.out = (args.out or cfg.out).resolve()
    cfg.out.mkdir(parents=True, exist_ok=True)
    for name in [] if args.render_only else args.only or list(SECTIONS):
        module = importlib.import_module(SECTIONS[name])
        cfg.log(f"bench: section {name}")
        t0 = time.time()
        data = module.run(cfg)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0))
        record = {"section": name, "started": started,
                  "seconds": round(time.time() - t0, 1), "quick": cfg.quick,
                  "machine": machine(), "data": data}
        (cfg.out / f"{name}.json").write_text(json.dumps(record, indent=1, ensure_ascii=False))
    report = render_report(cfg.out)
    cfg.log(f"bench: wrote {report}")
    return 0


def render_report(out: Path) -> Path:
    records = {}
    for name in SECTIONS:
        path = out / f"{name}.json"
        if path.exists():
            records[name] = json.loads(path.read_text())
    body = []
    for name, record in records.items():
        module = importlib.import_module(SECTIONS[name])
        body.append(module.render(record["data"], out))
    report = out / "REPORT.md"
    report.write_text("\n".join([_header(records), _targets(records), *body]))
    return report


def _header(records: dict[str, Any]) -> str:
    lines = ["# codelinkava benchmarks", "",
             "Written by `./dev bench` (`python -m bench`); numbers from one machine, measured "
             "side by side in the runs listed here. Regenerate rather than edit; the analysis "
             "and recommendations are in `bench/FINDINGS.md`.", ""]
    rows = []
    for name, r in records.items():
        m = r["machine"]
        rows.append([name, r["started"], f"{r['seconds']:.0f} s", "yes" if r["quick"] else "no",
                     f"{m['nproc']} × {m['cpu']}, {m['memory']}, Linux {m['kernel']}",
                     f"Python {m['python']}"])
    lines += [table(["section", "ran at", "took", "quick", "machine (nproc × CPU)", "Python"],
                    rows)]
    client = records.get("client", {}).get("data", {})
    for venv, versions in (client.get("versions") or {}).items():
        if versions:
            listed = ", ".join(f"{k} {v}" for k, v in versions.items())
            where = "project .venv" if venv == "main" else "bench/.venv-peers"
            lines += ["", f"Packages ({where}): {listed}."]
    return "\n".join(lines) + "\n"


def _targets(records: dict[str, Any]) -> str:
    from bench.client_bench import summarize

    rows = []
    client = records.get("client", {}).get("data")
    if client:
        for mode in ("fast", "paced"):
            st = summarize(client, mode)
            ours = st.get("codelinkava", {}).get("cpu")
            for peer, limit, text in (("floor", 1.5, "≤ 1.5× the floor"),
                                      ("openai", 0.1, "≤ 1/10 of the openai SDK"),
                                      ("litellm", 0.1, "≤ 1/10 of LiteLLM")):
                other = st.get(peer, {}).get("cpu")
                if ours is None or other is None:
                    rows.append([f"CPU/chunk {text} ({mode})", "not measured", "", "", ""])
                    continue
                ratio = ours / other
                floor = st.get("floor", {}).get("cpu")
                context = f"{floor / other:.2f}×" if floor and peer != "floor" else ""
                rows.append([f"CPU/chunk {text} ({mode})",
                             f"{fmt(ours, 2)} vs {fmt(other, 2)} µs = {ratio:.2f}×",
                             f"{limit:g}×", context, "met" if ratio <= limit else "**missed**"])
    imports = records.get("import", {}).get("data")
    if imports:
        row = next((r for r in imports["rows"] if r["label"] == "codelinkava"), None)
        if row and row["status"] == "ok":
            rows.append(["`import codelinkava` < 100 ms", f"{fmt(row['wall_ms'], 1)} ms", "100 ms",
                         "", "met" if row["wall_ms"] < imports["target_ms"] else "**missed**"])
    for name, record in records.items():  # sections with targets of their own
        module = importlib.import_module(SECTIONS[name])
        if hasattr(module, "targets"):
            rows += module.targets(record["data"])
    if not rows:
        return ""
    note = ("The floor's own ratio to the same peer is shown for context: where even the floor "
            "misses a limit, the cost is in the transport and the event loop that every "
            "aiohttp client shares, not in parsing.")
    note += (" Gateway rows: measured for `codelinkava serve`; the floor's column gives the "
             "thin relay's figure.")
    return "## Targets\n\n" + table(["target", "measured (codelinkava)", "limit",
                                     "the floor's ratio", "status"], rows) + "\n\n" + note + "\n"
