"""Section `gateway`: what `codelinkava serve` adds between a client and its upstream.

One echo upstream (`bench.source`, its own process) and, each in a process of
its own on 127.0.0.1: the thin relay (the floor), `codelinkava serve`, and
where bench/.venv-peers has them, LiteLLM's proxy and `g4f api`. The measuring
client (`bench.gateway_client`) is a process of its own too. Every cell (mode ×
concurrency) runs each route in turn, A B C … A B C …, for several rounds; each
stream carries a nonce of its own and must come back exactly as asked. The
gateway's CPU is read from /proc around each of its runs.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import plots
from bench.common import ROOT, Config, Worker, fmt, median, percentile, runner_env, table
from bench.gateways import GATEWAYS, PEERS, ROUTES, Gateway, cpu_seconds, start_gateway
from bench.source import SourceServer

__all__ = ["render", "run", "summarize", "targets"]

TITLE = "Gateway: what `codelinkava serve` adds"
CELL_TIMEOUT = 240.0
OURS, FLOOR, DIRECT = "codelinkava", "relay", "direct"
MESSAGES = "codelinkava-messages"
RESPONSES = "codelinkava-responses"


def _settings(cfg: Config) -> dict[str, Any]:
    if cfg.quick:
        return {"rounds": cfg.rounds, "paced": {"n": 10, "delay_us": 2000},
                "fast": {"1": cfg.n, "10": cfg.n}, "levels": [1, 10],
                "profile": {"fast": [10, cfg.n, 0], "paced": [10, 10, 2000]}, "profile_runs": 1,
                "single_repeat": 1}
    return {
        "rounds": cfg.rounds,
        "paced": {"n": 50, "delay_us": 10_000},
        # chunks per stream in fast mode at each level; 100 × 2,000 would take LiteLLM's
        # proxy over a minute a round, so 100 streams get a tenth each
        "fast": {"1": cfg.n, "10": cfg.n, "100": max(cfg.n // 10, 20)},
        "levels": [1, 10, 100],
        # [streams, chunks each, delay_us] for the cProfile runs of our gateway
        "profile": {"fast": [10, cfg.n, 0], "paced": [100, 50, 10_000]},
        "profile_runs": 2,
        # a single stream gives one sample a run: it runs this many times a round
        "single_repeat": 5,
    }


def _cells(s: dict[str, Any]) -> list[dict[str, Any]]:
    cells = [{"mode": "paced", "c": c, "n": s["paced"]["n"], "delay_us": s["paced"]["delay_us"]}
             for c in s["levels"]]
    cells += [{"mode": "fast", "c": c, "n": s["fast"][str(c)], "delay_us": 0}
              for c in s["levels"]]
    for cell in cells:
        cell["repeat"] = s.get("single_repeat", 1) if cell["c"] == 1 else 1
    return cells


def _key(cell: dict[str, Any]) -> str:
    return f"{cell['mode']}/{cell['c']}"


def run(cfg: Config) -> dict[str, Any]:
    s = _settings(cfg)
    logs = cfg.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cells = _cells(s)
    status: dict[str, dict[str, Any]] = {}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {_key(c): {} for c in cells}
    started: dict[str, Gateway] = {}
    client = Worker(cfg.python, logs / "gateway-client.log", ("-m", "bench.gateway_client"))
    profile: dict[str, Any] = {}
    try:
        with SourceServer(cfg.python) as src:
            upstream = f"http://127.0.0.1:{src.port}/echo/v1"
            for name in GATEWAYS:
                if name in ROUTES:
                    _add_route(cfg, client, name, started, status, s)
                    continue
                if name in PEERS and cfg.peers_python is None:
                    status[name] = {"status": "not installed", "error":
                                    "bench/.venv-peers is absent: run `bash bench/setup_peers.sh`"
                                    if cfg.peers else "peers switched off (--no-peers)"}
                    continue
                t0 = time.monotonic()
                try:
                    started[name] = start_gateway(name, cfg, upstream, logs / f"gateway-{name}.log")
                except (RuntimeError, OSError) as exc:
                    status[name] = {"status": "failed", "error": f"{exc}"[:600]}
                    continue
                status[name] = {"status": "ok", "error": None,
                                "start_s": round(time.monotonic() - t0, 1)}
                _warm(cfg, client, started[name], status[name], s)
            for r in range(s["rounds"]):
                for cell in cells:
                    for name, gw in started.items():
                        if status[name]["status"] == "ok":
                            _measure(client, gw, cell, status[name], results[_key(cell)])
                cfg.log(f"gateway: round {r + 1}/{s['rounds']} done")
            for gw in started.values():
                gw.stop()
            profile = _profile(cfg, client, upstream, s, logs)
    finally:
        for gw in started.values():
            gw.stop()
        client.close()
    return {"settings": s, "cells": cells, "labels": GATEWAYS, "status": status,
            "results": results, "profile": profile}


def _add_route(cfg: Config, client: Worker, name: str, started: dict[str, Gateway],
               status: dict[str, dict[str, Any]], s: dict[str, Any]) -> None:
    """Another route of a started gateway (`ROUTES`), measured beside its chat route."""
    base, path, api = ROUTES[name]
    if status.get(base, {}).get("status") != "ok":
        status[name] = {"status": "failed", "error": f"{base} did not start"}
        return
    started[name] = started[base].route(name, path, api)
    status[name] = {"status": "ok", "error": None}
    _warm(cfg, client, started[name], status[name], s)


def _ask(client: Worker, gw: Gateway, c: int, n: int, delay_us: int,
         repeat: int = 1) -> dict[str, Any]:
    return client.ask({"op": "cell", "url": gw.url, "headers": gw.headers, "c": c, "n": n,
                       "delay_us": delay_us, "repeat": repeat, "api": gw.api}, CELL_TIMEOUT)


def _warm(cfg: Config, client: Worker, gw: Gateway, status: dict[str, Any],
          s: dict[str, Any]) -> None:
    """Imports, first-call caches and connection pools (to the most streams at once)."""
    top = max(s["levels"])
    for c, n, delay_us in ((top, 3, 1000), (top, 20, 0)):
        answer = _ask(client, gw, c, n, delay_us)
        if not answer.get("ok"):
            error = answer.get("errors") or answer.get("error")
            status.update({"status": "failed", "error": f"warm-up: {error}"[:600]})
            cfg.log(f"gateway: {gw.name} failed its warm-up: {error}")
            return


def _measure(client: Worker, gw: Gateway, cell: dict[str, Any], status: dict[str, Any],
             into: dict[str, list[dict[str, Any]]]) -> None:
    before = cpu_seconds(gw.pid) if gw.pid else None
    answer = _ask(client, gw, cell["c"], cell["n"], cell["delay_us"], cell["repeat"])
    if before is not None and gw.pid:
        after = cpu_seconds(gw.pid)
        answer["gateway_cpu_s"] = {k: after[k] - before[k] for k in after}
    if "c" not in answer:  # the client itself failed: no per-stream data
        status.update({"status": "failed", "error": answer.get("error")})
        return
    into.setdefault(gw.name, []).append(answer)


def _profile(cfg: Config, client: Worker, upstream: str, s: dict[str, Any],
             logs: Path) -> dict[str, Any]:
    """cProfile of our app in-process, one process per workload."""
    out = {}
    for mode, (c, n, delay_us) in s["profile"].items():
        cfg.log(f"gateway: cProfile of codelinkava serve, {mode} ({c} × {n} chunks)")
        with open(logs / "gateway-profile.log", "ab") as log:
            proc = subprocess.Popen(
                [cfg.python, "-m", "bench.gateway_profile", "--upstream", upstream], cwd=ROOT,
                env=runner_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                text=True, start_new_session=True)
            try:
                assert proc.stdout is not None and proc.stdin is not None
                line = proc.stdout.readline().strip()
                if not line.isdigit():
                    out[mode] = {"ok": False, "error": "the profiled gateway did not start"}
                    continue
                gw = Gateway("profiled", f"http://127.0.0.1:{line}/v1/chat/completions")
                _warm(cfg, client, gw, {}, {"levels": [c]})
                proc.stdin.write("start\n")
                proc.stdin.flush()
                chunks, errors = 0, []
                for _ in range(s["profile_runs"]):
                    answer = _ask(client, gw, c, n, delay_us)
                    chunks += answer.get("chunks", 0)
                    if not answer.get("ok"):
                        errors.append(answer.get("errors") or answer.get("error"))
                proc.stdin.close()
                tail = proc.stdout.read().strip().splitlines()
                stats = json.loads(tail[-1]) if tail else {"ok": False, "error": "no stats"}
                stats.update({"chunks": chunks, "streams": c * s["profile_runs"], "n": n,
                              "delay_us": delay_us, "errors": errors[:2]})
                out[mode] = stats
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
    return out


# ---- summaries ---------------------------------------------------------------------


def _cpu_s(runs: list[dict[str, Any]]) -> float | None:
    """The gateway's CPU over these runs: the ns-precise schedstat sum, unless threads
    that exited meanwhile (which only /proc/<p>/stat still counts) make it short."""
    cpu = [r["gateway_cpu_s"] for r in runs if "gateway_cpu_s" in r]
    if not cpu:
        return None
    sched = sum(c["sched"] for c in cpu)
    stat = sum(c["stat"] for c in cpu)
    return stat if stat - sched > 0.02 * len(cpu) else sched


def summarize(data: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """cell key -> route -> figures (ms, chunks/s, µs/chunk), pooled over the rounds."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key, routes in data["results"].items():
        cell: dict[str, dict[str, Any]] = {}
        for name, runs in routes.items():
            ttfc = sorted(t * 1e3 for r in runs for t in r["ttfc_s"])
            total = sorted(t * 1e3 for r in runs for t in r["total_s"])
            rates = [r["chunks_per_s"] for r in runs if r["chunks_per_s"]]
            round_p50 = [percentile(sorted(r["ttfc_s"]), 50) * 1e3 for r in runs if r["ttfc_s"]]
            chunks = sum(r["chunks"] for r in runs)
            cpu = _cpu_s(runs)
            cell[name] = {
                "ttfc_p50": percentile(ttfc, 50), "ttfc_p99": percentile(ttfc, 99),
                "ttfc_p50_min": min(round_p50, default=float("nan")),
                "ttfc_p50_max": max(round_p50, default=float("nan")),
                "total_p50": percentile(total, 50),
                "rate": median(rates), "rate_min": min(rates, default=float("nan")),
                "rate_max": max(rates, default=float("nan")),
                "cpu_us": cpu / chunks * 1e6 if cpu is not None and chunks else None,
                "client_cpu_us": sum(r["client_cpu_s"] for r in runs) / chunks * 1e6
                if chunks else None,
                "streams": sum(r["c"] for r in runs),
                "verified": sum(r["verified"] for r in runs),
                "crosstalk": sum(r["crosstalk"] for r in runs),
                "errors": [e for r in runs for e in r.get("errors", [])][:2],
                "runs": len(runs),
            }
        direct = cell.get(DIRECT)
        for st in cell.values():
            for k in ("ttfc_p50", "ttfc_p99", "total_p50"):
                st[f"added_{k}"] = st[k] - direct[k] if direct else None
            st["rate_ratio"] = st["rate"] / direct["rate"] if direct and direct["rate"] else None
        out[key] = cell
    return out


def targets(data: dict[str, Any]) -> list[list[str]]:
    """Rows for the report's Targets table: [target, measured, limit, the floor's, status]."""
    st = summarize(data)
    rows = []

    def get(key: str, name: str, field: str) -> float | None:
        value = st.get(key, {}).get(name, {}).get(field)
        return None if value is None or value != value else float(value)

    def status(ok: bool | None) -> str:
        return "not measured" if ok is None else "met" if ok else "**missed**"

    ours, floor = get("paced/1", OURS, "added_ttfc_p50"), get("paced/1", FLOOR, "added_ttfc_p50")
    rows.append(["gateway: added first chunk p50 ≤ 1 ms (paced, 1 stream)",
                 f"{fmt(ours, 2)} ms", "1 ms", f"{fmt(floor, 2)} ms",
                 status(None if ours is None else ours <= 1.0)])
    top = max(data["settings"]["levels"])
    ours, floor = get(f"paced/{top}", OURS, "added_ttfc_p50"), get(f"paced/{top}", FLOOR,
                                                                     "added_ttfc_p50")
    limit = 2 * max(floor or 0.0, 0.0)
    rows.append([f"gateway: added first chunk p50 ≤ 2× the thin relay's (paced, {top} streams)",
                 f"{fmt(ours, 2)} ms", f"{fmt(limit, 2)} ms", f"{fmt(floor, 2)} ms",
                 status(None if ours is None or floor is None else ours <= limit)])
    ours = get(f"paced/{top}", OURS, "rate_ratio")
    rows.append([f"gateway: chunks/s ≥ 0.95× direct (paced, {top} streams)", f"{fmt(ours, 3)}×",
                 "0.95×", f"{fmt(get(f'paced/{top}', FLOOR, 'rate_ratio'), 3)}×",
                 status(None if ours is None else ours >= 0.95)])
    for key in ("fast/10", f"paced/{top}"):
        ours = get(key, OURS, "cpu_us")
        rows.append([f"gateway: CPU per relayed chunk ≤ 20 µs ({key.replace('/', ', ')} streams)",
                     f"{fmt(ours, 1)} µs", "20 µs", f"{fmt(get(key, FLOOR, 'cpu_us'), 1)} µs",
                     status(None if ours is None else ours <= 20.0)])
    rows += _route_targets(get, status, top)
    return rows


def _route_targets(get: Any, status: Any, top: int) -> list[list[str]]:
    """The Messages and Responses routes against the chat route of the same process, in the
    same run."""
    rows = []
    for name, path in ((MESSAGES, "/v1/messages"), (RESPONSES, "/v1/responses")):
        for key in ("fast/10", f"paced/{top}"):
            chat, route = get(key, OURS, "cpu_us"), get(key, name, "cpu_us")
            ratio = route / chat if route is not None and chat else None
            rows.append([f"{path}: CPU per relayed chunk ≤ 1.5× the chat route's "
                         f"({key.replace('/', ', ')} streams)",
                         f"{fmt(route, 1)} µs ({fmt(ratio, 2)}×)", f"{fmt(chat, 1)} µs × 1.5",
                         f"{fmt(get(key, FLOOR, 'cpu_us'), 1)} µs",
                         status(None if ratio is None else ratio <= 1.5)])
        chat, route = get("paced/1", OURS, "ttfc_p50"), get("paced/1", name, "ttfc_p50")
        added = route - chat if route is not None and chat is not None else None
        rows.append([f"{path}: first chunk p50 ≤ the chat route's + 0.3 ms (paced, 1 stream)",
                     f"{fmt(route, 2)} ms ({'–' if added is None else f'{added:+.2f}'} ms)",
                     f"{fmt(chat, 2)} + 0.3 ms", f"{fmt(get('paced/1', FLOOR, 'ttfc_p50'), 2)} ms",
                     status(None if added is None else added <= 0.3)])
    return rows


# ---- Markdown -----------------------------------------------------------------------


def _added(value: float | None, digits: int = 2) -> str:
    if value is None or value != value:
        return ""
    return f" ({value:+.{digits}f})"


def _cell_table(data: dict[str, Any], st: dict[str, dict[str, dict[str, Any]]], mode: str) -> str:
    rows = []
    for cell in data["cells"]:
        if cell["mode"] != mode:
            continue
        figures = st.get(_key(cell), {})
        for name, label in data["labels"].items():
            f = figures.get(name)
            if f is None:
                continue
            ratio = f"{f['rate_ratio']:.3f}×" if f["rate_ratio"] else "–"
            verified = f"{f['verified']}/{f['streams']} ✓" if f["verified"] == f["streams"] \
                else f"**{f['verified']}/{f['streams']}** {'; '.join(map(str, f['errors']))}"
            rows.append([
                str(cell["c"]), label,
                f"**{fmt(f['ttfc_p50'], 2)}**{_added(f['added_ttfc_p50'])}",
                f"{fmt(f['ttfc_p50_min'], 2)}–{fmt(f['ttfc_p50_max'], 2)}",
                f"{fmt(f['ttfc_p99'], 2)}{_added(f['added_ttfc_p99'])}",
                f"{fmt(f['total_p50'], 1)}{_added(f['added_total_p50'], 1)}",
                f"{fmt(f['rate'], 0)} ({fmt(f['rate_min'], 0)}–{fmt(f['rate_max'], 0)})",
                ratio, fmt(f["cpu_us"], 1), fmt(f["client_cpu_us"], 1),
                verified, str(f["crosstalk"]),
            ])
    return table(["streams", "route", "first chunk p50 ms (added)", "p50 range over rounds",
                  "p99 ms (added)", "total p50 ms (added)", "chunks/s (range)", "× direct",
                  "gateway CPU µs/chunk", "client CPU µs/chunk", "streams verified",
                  "cross-talk"], rows)


def _status_md(data: dict[str, Any]) -> str:
    rows = []
    for name, st in data["status"].items():
        extra = f"started in {st['start_s']} s" if st.get("start_s") is not None else ""
        rows.append([data["labels"][name], st["status"], extra, st.get("error") or ""])
    return table(["route", "status", "", "note"], rows)


def _profile_md(data: dict[str, Any]) -> str:
    parts = []
    for mode, p in (data.get("profile") or {}).items():
        if not p.get("ok"):
            parts.append(f"cProfile ({mode}) failed: {p.get('error')}")
            continue
        per = 1e6 / p["chunks"] if p["chunks"] else float("nan")
        files = [[f"`{path}`", fmt(sec * per, 2), f"{sec / p['total_s'] * 100:.0f}%"]
                 for path, sec in list(p["files"].items())[:12]]
        ours = [[f"`{r['func']}`", str(r["calls"]), fmt(r["tottime_s"] * per, 2),
                 fmt(r["cumtime_s"] * per, 2)] for r in p["codelinkava"][:12]]
        head = (f"**{mode}** ({p['streams']} streams × {p['n']} chunks"
                f"{', ' + str(p['delay_us'] // 1000) + ' ms apart' if p['delay_us'] else ''}; "
                f"{fmt(p['total_s'] * per, 1)} µs per relayed chunk under the profiler, "
                "which inflates every figure).")
        parts.append(head + " Own time by file:\n\n"
                     + table(["file", "own µs/chunk", "share"], files)
                     + "\n\nFunctions in `src/codelinkava`, by own time:\n\n"
                     + table(["function", "calls", "own µs/chunk", "cumulative µs/chunk"], ours))
    return "\n\n".join(parts)


def render(data: dict[str, Any], out_dir: Path) -> str:
    s = data["settings"]
    st = summarize(data)
    figure = plots.gateway_figure(data, st, out_dir)
    paced = s["paced"]
    fast = ", ".join(f"{n:,} at {c}" for c, n in s["fast"].items())
    lines = [
        f"## {TITLE}",
        "",
        f"Direct (client → upstream) against each route in front of the same upstream, all on "
        f"127.0.0.1 and each in a process of its own: the echo source server, the gateway, and "
        f"the measuring client (raw aiohttp reads; parsing and checks only after the streams "
        f"end). Paced: {paced['n']} chunks {paced['delay_us'] / 1000:g} ms apart; fast: chunks "
        f"per stream as fast as the socket takes them ({fast} streams). {s['rounds']} "
        "interleaved rounds (every route in turn for each cell; a single stream runs "
        f"{s.get('single_repeat', 1)} times in a row) after a warm-up that also "
        "fills the connection pools. First chunk: from sending the request to the first "
        "non-empty `content`; p50/p99 pool every stream of every round, the range is the "
        "per-round p50's. (added) is the difference from direct. chunks/s: all content chunks "
        "of a cell over its wall time, median of the rounds. Gateway CPU: the gateway's "
        "process(es), from /proc, per relayed content chunk, request handling included.",
        "",
        "Client, upstream and gateway share the machine's cores: judge a gateway against the "
        "thin relay (aiohttp, forwarding the upstream's bytes as read), not against zero.",
        "",
        "Each stream's request carries a nonce; the upstream streams it back every 8th chunk, "
        "and an answer counts as verified only when its text is exactly what that request "
        "asked for. Cross-talk: answers carrying another request's nonce.",
        "",
        _status_md(data),
        "",
        "### Paced",
        "",
        _cell_table(data, st, "paced"),
        "",
        "### Fast",
        "",
        _cell_table(data, st, "fast"),
        "",
        "### Where `codelinkava serve`'s time goes",
        "",
        "The same app (`create_app`, provider openai, on uvicorn with uvloop as "
        "`codelinkava serve` runs it) in-process under cProfile; per relayed content chunk.",
        "",
        _profile_md(data),
        "",
    ]
    if figure:
        lines.append(f"![gateway: added first chunk, chunks/s, CPU]({figure})")
    return "\n".join(lines) + "\n"
