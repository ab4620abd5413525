"""Section `client`: what it costs a client to turn an SSE stream into text.

Every client reads the same pre-rendered stream from `bench.source` (its own
process). Single streams run in interleaved rounds (A B C … A B C …) in two
long-lived workers, one per virtualenv; concurrency runs in a fresh process per
client and level, so peak RSS belongs to that client alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import plots
from bench.clients import CLIENTS
from bench.common import Config, Worker, fmt, median, percentile, run_once, table
from bench.source import SourceServer

__all__ = ["render", "run"]

TITLE = "Client: turning an SSE stream into text"
PACED_DELAY_US = 1000
STREAM_TIMEOUT = 180.0
FLOOR, OURS = "floor", "codelinkava"


def _settings(cfg: Config) -> dict[str, Any]:
    if cfg.quick:
        return {"n": cfg.n, "rounds": cfg.rounds, "paced_n": 20, "paced_delay_us": PACED_DELAY_US,
                "paced_rounds": cfg.rounds, "levels": {"1": cfg.n, "10": 20}, "profile_repeat": 1}
    return {
        "n": cfg.n, "rounds": cfg.rounds, "paced_n": 200, "paced_delay_us": PACED_DELAY_US,
        # a paced stream wakes the loop once per chunk: its CPU figures are noisier, and
        # its rounds cheap (0.2 s), so it gets three times as many
        "paced_rounds": 3 * cfg.rounds,
        # chunks per stream at each concurrency level
        "levels": {"1": cfg.n, "100": max(cfg.n // 10, 20), "1000": max(cfg.n // 20, 10)},
        "profile_repeat": 3,
    }


def run(cfg: Config) -> dict[str, Any]:
    s = _settings(cfg)
    logs = cfg.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    status: dict[str, dict[str, Any]] = {}
    workers: dict[str, Worker] = {}
    versions: dict[str, Any] = {}
    for venv in ("main", "peers"):
        python = cfg.python_for(venv)
        if python is not None:
            workers[venv] = Worker(python, logs / f"worker-{venv}.log")
            versions[venv] = workers[venv].ask({"op": "versions"}, 120).get("versions")
    for name, client in CLIENTS.items():
        if client.venv in workers:
            status[name] = {"status": "ok", "error": None}
        else:
            status[name] = {"status": "not installed",
                            "error": "bench/.venv-peers is absent: run `bash bench/setup_peers.sh`"
                            if cfg.peers else "peers switched off (--no-peers)"}
    single: dict[str, dict[str, list[dict[str, Any]]]] = {"fast": {}, "paced": {}}
    concurrency: dict[str, dict[str, Any]] = {}
    profile: dict[str, Any] = {}
    try:
        with SourceServer(cfg.python) as src:
            modes = {"fast": (src.url(s["n"]), s["n"], s["rounds"]),
                     "paced": (src.url(s["paced_n"], s["paced_delay_us"]), s["paced_n"],
                               s["paced_rounds"])}
            for mode, (base, n, rounds) in modes.items():
                cfg.log(f"client: single streams, {mode} ({n} chunks), {rounds} rounds")
                _rounds(cfg, workers, status, single[mode], base, n, rounds)
            for w in workers.values():
                w.close()
            workers.clear()
            concurrency = _concurrency(cfg, src, status, s["levels"], logs)
            profile = _profile(cfg, src, s, logs)
    finally:
        for w in workers.values():
            w.close(kill=True)
    labels = {name: {"label": c.label, "venv": c.venv, "reference": c.reference}
              for name, c in CLIENTS.items()}
    return {"settings": s, "versions": versions, "status": status, "labels": labels,
            "single": single, "concurrency": concurrency, "profile": profile}


def _rounds(
    cfg: Config,
    workers: dict[str, Worker],
    status: dict[str, dict[str, Any]],
    results: dict[str, list[dict[str, Any]]],
    base: str,
    n: int,
    rounds: int,
) -> None:
    names = [name for name in CLIENTS if status[name]["status"] == "ok"]
    for name in names:  # warm-up: imports, connection pools, first-call caches
        answer = workers[CLIENTS[name].venv].ask(
            {"op": "stream", "client": name, "base": base, "n": n}, STREAM_TIMEOUT)
        if not answer.get("ok"):
            status[name] = {"status": "failed", "error": answer.get("error")}
    for r in range(rounds):
        for name in names:
            if status[name]["status"] != "ok":
                continue
            answer = workers[CLIENTS[name].venv].ask(
                {"op": "stream", "client": name, "base": base, "n": n}, STREAM_TIMEOUT)
            if not answer.get("ok"):
                status[name] = {"status": "failed", "error": answer.get("error")}
                continue
            results.setdefault(name, []).append(answer)
        cfg.log(f"  round {r + 1}/{rounds} done")


def _concurrency(
    cfg: Config,
    src: SourceServer,
    status: dict[str, dict[str, Any]],
    levels: dict[str, int],
    logs: Path,
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for level, n in levels.items():
        cfg.log(f"client: concurrency {level} × {n} chunks, a fresh process per client")
        for name, client in CLIENTS.items():
            python = cfg.python_for(client.venv)
            if status[name]["status"] != "ok" or python is None:
                continue
            cmd = [python, "-m", "bench.runner", "concurrency", "--client", name,
                   "--base", src.url(n), "--n", str(n), "-c", level, "--warm-base", src.url(5)]
            out.setdefault(name, {})[level] = run_once(cmd, 300, logs / f"concurrency-{name}.log")
    return out


def _profile(cfg: Config, src: SourceServer, s: dict[str, Any], logs: Path) -> dict[str, Any]:
    cfg.log("client: profiling codelinkava (cProfile) and its parsers alone")
    out = {}
    for mode, base, n in (("fast", src.url(s["n"]), s["n"]),
                          ("paced", src.url(s["paced_n"], s["paced_delay_us"]), s["paced_n"])):
        cmd = [cfg.python, "-m", "bench.runner", "profile", "--client", OURS, "--base", base,
               "--n", str(n), "--repeat", str(s["profile_repeat"]), "--decode-n", str(s["n"])]
        out[mode] = run_once(cmd, 300, logs / "profile.log")
    return out


# ---- figures ----------------------------------------------------------------------


def summarize(data: dict[str, Any], mode: str) -> dict[str, dict[str, float]]:
    """Per client: medians and ranges of CPU µs/chunk, chunks/s, first chunk ms."""
    n = data["settings"]["n"] if mode == "fast" else data["settings"]["paced_n"]
    out = {}
    for name, runs in data["single"][mode].items():
        cpu = [r["cpu_s"] / n * 1e6 for r in runs]
        rate = [n / r["wall_s"] for r in runs]
        ttfc = [r["ttfc_s"] * 1e3 for r in runs]
        out[name] = {
            "cpu": median(cpu), "cpu_min": min(cpu), "cpu_max": max(cpu),
            "rate": median(rate), "rate_min": min(rate), "rate_max": max(rate),
            "ttfc": median(ttfc), "ttfc_min": min(ttfc), "ttfc_max": max(ttfc),
            "runs": len(runs), "verified": all(r["ok"] for r in runs),
        }
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _single_table(data: dict[str, Any], mode: str) -> str:
    stats = summarize(data, mode)
    floor = stats.get(FLOOR, {}).get("cpu")
    ours = stats.get(OURS, {}).get("cpu")
    rows = []
    for name, st in stats.items():
        label = data["labels"][name]["label"]
        rows.append([
            label,
            f"**{fmt(st['cpu'], 2)}** ({fmt(st['cpu_min'], 2)}–{fmt(st['cpu_max'], 2)})",
            f"{fmt(st['rate'], 0)} ({fmt(st['rate_min'], 0)}–{fmt(st['rate_max'], 0)})",
            f"{fmt(st['ttfc'], 2)} ({fmt(st['ttfc_min'], 2)}–{fmt(st['ttfc_max'], 2)})",
            f"{fmt(_ratio(st['cpu'], floor), 2)}×",
            f"{fmt(_ratio(st['cpu'], ours), 2)}×",
            f"{st['runs']}/{st['runs']} ✓" if st["verified"] else "✗",
        ])
    for name, st in data["status"].items():
        if name not in stats:
            label = data["labels"][name]["label"]
            rows.append([label, st["status"], "", "", "", "", st["error"] or ""])
    return table(["client", "CPU µs/chunk, median (min–max)", "chunks/s", "first chunk ms",
                  "× floor", "× codelinkava", "text verified"], rows)


def _concurrency_table(data: dict[str, Any]) -> str:
    rows = []
    for name, levels in data["concurrency"].items():
        for level, a in levels.items():
            label = data["labels"][name]["label"]
            if not a.get("ok") and "ttfc_s" not in a:
                rows.append([label, level, "", "failed", "", "", "", "", a.get("error") or ""])
                continue
            t = a["ttfc_s"]
            per_stream = (a["peak_rss_kib"] - a["baseline_rss_kib"]) / a["c"]
            rows.append([
                label, level, str(a["n"]), fmt(a["chunks_per_s"], 0),
                fmt(a["cpu_s"] / (a["c"] * a["n"]) * 1e6, 2),
                fmt(percentile(t, 50) * 1e3, 1), fmt(percentile(t, 99) * 1e3, 1),
                fmt(per_stream, 0),
                f"{a['verified']}/{a['c']} ✓" if a["ok"] else f"✗ {a.get('error') or ''}",
            ])
    return table(["client", "streams", "chunks each", "total chunks/s", "CPU µs/chunk",
                  "first chunk p50 ms", "p99 ms", "peak RSS KiB/stream", "text verified"], rows)


def _profile_md(data: dict[str, Any]) -> str:
    prof = data.get("profile") or {}
    parts = []
    fast = prof.get("fast") or {}
    if fast.get("decode_fast"):
        rows = []
        for label in fast["decode_fast"]:
            rows.append([label, fmt(fast["decode_fast"][label], 2),
                         fmt(fast["decode_paced"][label], 2)])
        parts.append(
            "Parsers alone, no I/O (µs per chunk, best of 5; the body cut into 64 KiB reads, "
            "or one read per event as a paced stream arrives):\n\n"
            + table(["parser", "64 KiB reads", "one event per read"], rows))
    for mode in ("fast", "paced"):
        p = prof.get(mode) or {}
        if not p.get("ok"):
            if p:
                parts.append(f"cProfile ({mode}) failed: {p.get('error')}")
            continue
        rows = [[f"`{r['func']}`", str(r["calls"]), fmt(r["tottime_us_per_chunk"], 2),
                 fmt(r["cumtime_us_per_chunk"], 2)] for r in p["top"][:15]]
        parts.append(
            f"cProfile of `CodeLinkAva`, {mode} stream (profiler overhead inflates every "
            f"figure; total {fmt(p['total_us_per_chunk'], 1)} µs/chunk under the profiler). "
            "Top functions by own time:\n\n"
            + table(["function", "calls", "own µs/chunk", "cumulative µs/chunk"], rows))
    return "\n\n".join(parts)


def render(data: dict[str, Any], out_dir: Path) -> str:
    s = data["settings"]
    figures = plots.client_figures(data, summarize(data, "fast"), summarize(data, "paced"), out_dir)
    lines = [
        f"## {TITLE}",
        "",
        f"Each client streams the same answer from a local source server (its own process) and "
        f"must produce exactly the expected text. Fast: {s['n']:,} chunks of ~180 bytes "
        f"(`data: {{…chat.completion.chunk…}}`), as fast as the socket takes them; paced: "
        f"{s['paced_n']} chunks {s['paced_delay_us'] / 1000:g} ms apart, so each arrives on its "
        f"own. {s['rounds']} interleaved rounds (paced: {s['paced_rounds']}) after one warm-up "
        "each; CPU is "
        "`time.process_time()` of the client's process (all its threads) over the stream, "
        "per content chunk. Spread is min–max over the rounds.",
        "",
        "### Single stream, fast",
        "",
        _single_table(data, "fast"),
        "",
        "### Single stream, paced",
        "",
        _single_table(data, "paced"),
        "",
        "### Concurrent streams on one event loop",
        "",
        "A fresh process per client and level: one warm-up stream, then all streams started "
        "at once with `asyncio.gather`. First chunk is timed from that start; peak RSS per "
        "stream is (peak − RSS before the streams) / streams.",
        "",
        _concurrency_table(data),
        "",
        "### Where codelinkava's time goes",
        "",
        _profile_md(data),
        "",
    ]
    lines += [f"![{title}]({name})" for name, title in figures]
    return "\n".join(lines) + "\n"
