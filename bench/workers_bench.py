"""Section `workers`: requests/s of `codelinkava serve --config` with 1, 2 and 4 worker
processes, and the same routed setup through LiteLLM's proxy, side by side.

Every piece is a process of its own on 127.0.0.1:

- two echo upstreams (`bench.source`), the two deployments of one model name
  in one config file (`simple-shuffle`, a master key);
- the routes: `codelinkava serve --config CFG --workers 1|2|4`, LiteLLM's
  proxy (`litellm --config CFG`, bench/.venv-peers, one process: its
  default) with the very same file, and direct (the client spreads its
  connections over both upstreams) as the reference;
- the measuring client (`python -m bench.workers_bench client`, a JSON-lines
  worker for `common.Worker`): a closed loop of C requests in flight, short
  streamed requests back to back for a fixed time, over C keep-alive
  connections or a new connection per request (uvicorn's workers share one
  listening socket: keep-alive connections stay where they were accepted),
  on uvloop with httptools' parser and nothing else, so that it costs little
  next to a gateway. Each request carries a nonce of its own; after the window every
  answer is checked to be exactly the text its request asked for
  (`gateway_client._verify`, also counting other requests' nonces: cross-talk).

Rounds are interleaved (each round runs every route in turn, the order rotating),
fresh connections each run. Around each run the section reads from /proc the
CPU of the route's process group (all its processes), of the upstreams, of the
routes standing idle, and the whole machine's (/proc/stat), so that it can say
where the cores went.

    .venv/bin/python -m bench.workers_bench           # writes bench/results/workers.{json,md}
    .venv/bin/python -m bench.workers_bench --quick   # a smoke run, to bench/results-quick/

As a section of `python -m bench` it offers `run(cfg)`, `render(data, out)` and
`targets(data)`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import ROOT, Config, Worker, fmt, machine, median, percentile, runner_env, table
from bench.gateways import MASTER_KEY, Gateway, _free_port, _launch, _wait_ready
from bench.source import SourceServer

__all__ = ["render", "run", "targets"]

MODEL = "gpt-3.5-turbo"  # the name the gateway client's request bodies ask for
WORKERS = (1, 2, 4)
LABELS = {
    "direct": "direct (client → both upstreams)",
    "w1": "codelinkava serve, 1 worker",
    "w2": "codelinkava serve, 2 workers",
    "w4": "codelinkava serve, 4 workers",
    "litellm": "LiteLLM proxy (1 process, its default)",
}
#: how the client's requests reach the route
MODES = {
    "keepalive": "keep-alive connections",
    "close": "a new connection per request",
}
TARGET_RATIO = 1.5
DIRECT_CLOSE_MAX = 3000  # requests a run: direct opens connections faster than any gateway
RUN_TIMEOUT = 120.0
_TICK = os.sysconf("SC_CLK_TCK")


def _settings(cfg: Config) -> dict[str, Any]:
    if cfg.quick:
        return {"rounds": cfg.rounds, "seconds": 0.5, "warm_s": 0.5, "c": 8, "n": 10,
                "max_requests": 5000}
    # 16 content chunks (+ the role, finish and [DONE] events): short answers, so the
    # gateway's per-request work (routing, the request's parsing, the response's set-up)
    # weighs as much as its per-chunk work
    return {"rounds": cfg.rounds, "seconds": 3.0, "warm_s": 1.0, "c": 32, "n": 16,
            "max_requests": 20_000}  # direct reaches it in about a second; the gateways do not


# ---- the measuring client (`python -m bench.workers_bench client`) ------------------------

_FIRST_CONTENT = re.compile(rb'"content":\s*"[^"]')


class _Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time (asyncio protocol)."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.transport: Any = None
        self.waiter: asyncio.Future[None] | None = None
        self.parts: list[bytes] = []
        self.first = 0.0
        self.tail = b""
        self.status = 0
        self.keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # httptools.HttpParserError and kin
            self._wake(exc)
            if self.transport is not None:
                self.transport.close()

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._wake(exc or ConnectionResetError("the server closed the connection"))

    def pause_writing(self) -> None:
        return None

    def resume_writing(self) -> None:
        return None

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # asked after the message: reset

    def on_body(self, body: bytes) -> None:
        if not self.first:
            if _FIRST_CONTENT.search(self.tail + body):
                self.first = time.perf_counter()
            self.tail = body[-24:]
        self.parts.append(body)

    def on_message_complete(self) -> None:
        self._wake(None)

    def _wake(self, exc: BaseException | None) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    async def request(self, data: bytes) -> tuple[int, float, float, bytes]:
        """(status, first content at, ended at, the decoded body)."""
        loop = asyncio.get_running_loop()
        self.parts, self.first, self.tail = [], 0.0, b""
        self.waiter = loop.create_future()
        self.transport.write(data)
        await asyncio.wait_for(self.waiter, 60)
        if not self.keep_alive:
            self.transport.close()
            self.transport = None
        return self.status, self.first, time.perf_counter(), b"".join(self.parts)


async def _load(urls: list[str], headers: dict[str, str], c: int, n: int, seconds: float,
                max_requests: int, close: bool = False) -> dict[str, Any]:
    """C connections (spread over `urls`) send requests back to back for `seconds`; with
    `close`, each request on a connection of its own (`Connection: close`)."""
    from urllib.parse import urlsplit

    from bench.gateway_client import _verify, request_body

    loop = asyncio.get_running_loop()
    targets = []
    for url in urls:
        parts = urlsplit(url)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        extra += "Connection: close\r\n" if close else ""
        head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Type: application/json\r\n{extra}").encode()
        targets.append((parts.hostname, parts.port, head))
    base = secrets.randbits(32)
    issued = {"n": 0}
    records: list[tuple[str, int, float, float, float, bytes]] = []
    errors: list[str] = []  # requests that got no whole response (the transport's failures)
    c0 = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(i: int) -> None:
        host, port, head = targets[i % len(targets)]
        conn: _Connection | None = None
        while time.perf_counter() < deadline and issued["n"] < max_requests:
            nonce = f"{(base + issued['n']) & 0xFFFFFFFF:08x}"
            issued["n"] += 1
            body = request_body(nonce, n, 0)
            t0 = time.perf_counter()  # a new connection's set-up counts too
            try:
                if conn is None or conn.transport is None:
                    _, conn = await loop.create_connection(_Connection, host, port)
                assert conn is not None
                status, first, end, answer = await conn.request(
                    head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = None
                if len(errors) > 200:
                    return
                await asyncio.sleep(0.01)
                continue
            records.append((nonce, status, t0, first, end, answer))
            if close and conn.transport is not None:  # whether or not the server closed it
                conn.transport.close()
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(worker(i) for i in range(c)))
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - c0
    # checks after the window: they cost the client nothing while it measures
    failed = len(errors)
    statuses: Counter[int] = Counter()
    ttfc: list[float] = []
    verified = in_window = crosstalk = chunks = 0
    for nonce, status, t0, first, end, answer in records:
        statuses[status] += 1
        check = _verify(status, answer, nonce, n)
        chunks += check["chunks"]
        crosstalk += bool(check["foreign"])
        if not check["ok"]:
            errors.append(str(check["error"]))
            continue
        verified += 1
        in_window += end <= deadline
        ttfc.append(round((first - t0) * 1e3, 4) if first else float("nan"))
    requests = len(records) + failed
    # the window: `seconds`, unless max_requests ended it sooner
    window = min(deadline, max((r[4] for r in records), default=deadline)) - start
    return {
        "ok": verified == requests and not errors, "requests": requests, "verified": verified,
        "in_window": in_window, "rate": in_window / window if window > 0 else 0.0, "wall_s": wall,
        "seconds": window,
        "chunks": chunks, "crosstalk": crosstalk, "statuses": {str(k): v for k, v in
                                                                statuses.items()},
        "error_count": len(errors), "errors": sorted(set(errors))[:3], "ttfc_ms": ttfc,
        "client_cpu_s": client_cpu,
    }


def _client_main() -> None:
    from bench.runner import _answer_channel, _raise_nofile_limit

    out = _answer_channel()
    _raise_nofile_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            cmd = json.loads(line)
            if cmd.get("op") == "quit":
                return
            try:
                answer = await _load(cmd["urls"], cmd.get("headers") or {}, cmd["c"], cmd["n"],
                                     cmd["seconds"], cmd["max_requests"], cmd.get("close", False))
            except Exception as exc:
                traceback.print_exc()
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
            out.write(json.dumps(answer) + "\n")

    asyncio.run(serve())


# ---- CPU from /proc ----------------------------------------------------------------------


def _proc_cpu(pid: int) -> tuple[float, float] | None:
    """(utime+stime from stat, the sum of the live threads' schedstat) in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
        rest = raw[raw.rindex(")") + 2 :].split()
        stat = (int(rest[11]) + int(rest[12])) / _TICK
        sched = 0.0
        for task in os.scandir(f"/proc/{pid}/task"):
            with open(f"{task.path}/schedstat") as f:
                sched += int(f.read().split()[0]) / 1e9
        return stat, sched
    except (OSError, ValueError, IndexError):
        return None


def _sessions(sids: set[int]) -> dict[int, dict[int, tuple[float, float]]]:
    """session id -> pid -> CPU so far, for every process in those sessions (one /proc pass)."""
    out: dict[int, dict[int, tuple[float, float]]] = {sid: {} for sid in sids}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                raw = f.read()
            sid = int(raw[raw.rindex(")") + 2 :].split()[3])
        except (OSError, ValueError, IndexError):
            continue
        if sid in out:
            cpu = _proc_cpu(int(entry.name))
            if cpu is not None:
                out[sid][int(entry.name)] = cpu
    return out


def _machine_cpu() -> dict[str, float]:
    """Busy, steal and total CPU seconds of the whole machine so far (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return {"busy": busy / _TICK, "steal": steal / _TICK, "total": (busy + idle + iowait) / _TICK}


def _spent(before: tuple[float, float], after: tuple[float, float]) -> float:
    """schedstat (ns-precise) unless threads that exited meanwhile make it short."""
    stat, sched = after[0] - before[0], after[1] - before[1]
    return stat if stat - sched > 0.02 else sched


def _group_cpu(before: dict[int, tuple[float, float]],
               after: dict[int, tuple[float, float]]) -> dict[int, float]:
    """pid -> CPU seconds spent between the two readings (processes born meanwhile: all)."""
    return {pid: _spent(before.get(pid, (0.0, 0.0)), cpu) for pid, cpu in after.items()}


# ---- the routes ------------------------------------------------------------------------------


def _config_text(upstreams: list[str]) -> str:
    """The one config file both gateways read (YAML)."""
    lines = ["model_list:"]
    for i, base in enumerate(upstreams):
        lines += [f"  - model_name: {MODEL}",
                  "    litellm_params:",
                  f"      model: openai/{MODEL}",
                  f"      api_base: {base}",
                  "      api_key: sk-bench-upstream",
                  f"    model_info: {{id: upstream-{'ab'[i]}}}"]
    lines += ["router_settings:", "  routing_strategy: simple-shuffle",
              "general_settings:", f"  master_key: {MASTER_KEY}", ""]
    return "\n".join(lines)


def _start(name: str, cfg: Config, config: Path, log_path: Path) -> Gateway:
    env = runner_env()
    port = _free_port()
    gw = Gateway(name, f"http://127.0.0.1:{port}/v1/chat/completions",
                 headers={"Authorization": f"Bearer {MASTER_KEY}"})
    if name == "litellm":
        python = cfg.peers_python
        assert python is not None
        cmd = [str(Path(python).parent / "litellm"), "--config", str(config),
               "--host", "127.0.0.1", "--port", str(port)]
        _launch(gw, cmd, log_path, env, cwd=config.parent)
        ready = f"http://127.0.0.1:{port}/health/liveliness"
    else:
        workers = int(name[1:])
        cmd = [str(Path(cfg.python).parent / "codelinkava"), "serve", "--config", str(config),
               "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning"]
        _launch(gw, cmd, log_path, env)
        ready = f"http://127.0.0.1:{port}/v1/models"
    _wait_ready(gw, ready, log_path)
    return gw


# ---- the section ---------------------------------------------------------------------------


def run(cfg: Config) -> dict[str, Any]:
    s = _settings(cfg)
    logs = cfg.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("workers-*.log"):  # one access-log line per answer: a run's worth only
        old.unlink()
    status: dict[str, dict[str, Any]] = {}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {mode: {} for mode in MODES}
    started: dict[str, Gateway] = {}
    client = Worker(cfg.python, logs / "workers-client.log",
                    ("-m", "bench.workers_bench", "client"))
    config_text = ""
    try:
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp, \
                SourceServer(cfg.python) as up_a, SourceServer(cfg.python) as up_b:
            upstreams = [f"http://127.0.0.1:{u.port}/echo/v1" for u in (up_a, up_b)]
            config = Path(tmp) / "config.yaml"
            config_text = _config_text(upstreams)
            config.write_text(config_text)
            up_pids = [p.proc.pid for p in (up_a, up_b) if p.proc is not None]
            for name in LABELS:
                if name == "direct":
                    status[name] = {"status": "ok", "error": None, "start_s": None}
                    continue
                if name == "litellm" and cfg.peers_python is None:
                    status[name] = {"status": "not installed", "error":
                                    "bench/.venv-peers is absent: run `bash bench/setup_peers.sh`"
                                    if cfg.peers else "peers switched off (--no-peers)"}
                    continue
                t0 = time.monotonic()
                try:
                    started[name] = _start(name, cfg, config, logs / f"workers-{name}.log")
                except (RuntimeError, OSError) as exc:
                    status[name] = {"status": "failed", "error": f"{exc}"[:600]}
                    cfg.log(f"workers: {name} did not start: {exc}")
                    continue
                status[name] = {"status": "ok", "error": None,
                                "start_s": round(time.monotonic() - t0, 1)}
            routes = {"direct": Gateway("direct", ""), **started}
            for name, gw in routes.items():  # warm-up: imports, caches, every worker
                for mode in MODES:
                    answer = _ask(client, gw, upstreams, s, mode, s["warm_s"])
                    if not answer.get("ok") and status[name]["status"] == "ok":
                        error = answer.get("errors") or answer.get("error")
                        status[name].update({"status": "failed",
                                             "error": f"warm-up ({mode}): {error}"[:600]})
                        cfg.log(f"workers: {name} failed its warm-up: {error}")
            order = [name for name in routes if status[name]["status"] == "ok"]
            for r in range(s["rounds"]):
                shift = r % max(len(order), 1)
                for mode in list(MODES) if r % 2 == 0 else list(MODES)[::-1]:
                    for name in order[shift:] + order[:shift]:
                        answer = _measure(client, routes[name], upstreams, s, mode, up_pids,
                                          started)
                        answer["round"] = r
                        runs[mode].setdefault(name, []).append(answer)
                        if "requests" not in answer:
                            cfg.log(f"workers: {name} ({mode}) round {r + 1}: "
                                    f"{answer.get('error')}")
                cfg.log(f"workers: round {r + 1}/{s['rounds']} done")
    finally:
        for gw in started.values():
            gw.stop()
        client.close()
    summary = {mode: _summarize(by_route) for mode, by_route in runs.items()}
    for by_route in runs.values():  # the raw first-chunk times are summarized, not kept
        for answers in by_route.values():
            for answer in answers:
                answer.pop("ttfc_ms", None)
    return {"settings": s, "labels": LABELS, "modes": MODES, "status": status,
            "config": config_text, "runs": runs, "summary": summary}


def _ask(client: Worker, gw: Gateway, upstreams: list[str], s: dict[str, Any], mode: str,
         seconds: float) -> dict[str, Any]:
    urls = [u + "/chat/completions" for u in upstreams] if gw.name == "direct" else [gw.url]
    most = s["max_requests"]
    if gw.name == "direct" and mode == "close":  # thousands of connections a second: enough
        most = min(most, DIRECT_CLOSE_MAX)
    return client.ask({"op": "load", "urls": urls, "headers": gw.headers, "c": s["c"],
                       "n": s["n"], "seconds": seconds, "max_requests": most,
                       "close": mode == "close"}, RUN_TIMEOUT)


def _measure(client: Worker, gw: Gateway, upstreams: list[str], s: dict[str, Any], mode: str,
             up_pids: list[int], started: dict[str, Gateway]) -> dict[str, Any]:
    sids = {g.pid for g in started.values() if g.pid}
    up_before = {pid: _proc_cpu(pid) for pid in up_pids}
    groups_before = _sessions(sids)
    client_before = _proc_cpu(client.proc.pid)
    machine_before = _machine_cpu()
    t0 = time.perf_counter()
    answer = _ask(client, gw, upstreams, s, mode, s["seconds"])
    wall = time.perf_counter() - t0
    machine_after = _machine_cpu()
    client_after = _proc_cpu(client.proc.pid)
    groups_after = _sessions(sids)
    up_after = {pid: _proc_cpu(pid) for pid in up_pids}
    per_route = {g.name: _group_cpu(groups_before[g.pid], groups_after[g.pid])
                 for g in started.values() if g.pid}
    gateway = per_route.pop(gw.name, {})
    leader = gw.pid
    answer["cpu"] = {
        "wall_s": wall,
        "gateway_s": sum(gateway.values()) if gw.pid else None,
        # the processes under the supervisor (the workers; multiprocessing's resource
        # tracker idles among them); for 1 worker, the one process
        "workers_s": sorted((v for p, v in gateway.items() if p != leader or len(gateway) == 1),
                            reverse=True),
        "supervisor_s": gateway.get(leader, 0.0) if len(gateway) > 1 else 0.0,
        "client_s": _spent(client_before, client_after)
        if client_before and client_after else None,
        "upstreams_s": sum(_spent(b, a) for pid in up_pids
                           if (b := up_before[pid]) and (a := up_after[pid])),
        "idle_routes_s": sum(sum(v.values()) for v in per_route.values()),
        "machine_busy_s": machine_after["busy"] - machine_before["busy"],
        "machine_steal_s": machine_after["steal"] - machine_before["steal"],
    }
    return answer


# ---- summaries ---------------------------------------------------------------------


def _paired(runs: dict[str, list[dict[str, Any]]], a: str, b: str) -> list[float]:
    """a's requests/s over b's, round by round (the two ran seconds apart)."""
    by_round = {r["round"]: r.get("rate") for r in runs.get(b, [])}
    out = []
    for r in runs.get(a, []):
        other = by_round.get(r["round"])
        if r.get("rate") and other:
            out.append(r["rate"] / other)
    return out


def _summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    routes: dict[str, dict[str, Any]] = {}
    for name, answers in runs.items():
        ok = [a for a in answers if "requests" in a]
        rates = [a["rate"] for a in ok]
        ttfc = sorted(t for a in ok for t in a.get("ttfc_ms", []) if t == t)
        round_p50 = [percentile(sorted(a["ttfc_ms"]), 50) for a in ok if a.get("ttfc_ms")]
        chunks = sum(a["chunks"] for a in ok)
        requests = sum(a["requests"] for a in ok)
        cpu = [a["cpu"] for a in ok]
        wall = sum(c["wall_s"] for c in cpu)

        def total(key: str, cpu: list[dict[str, Any]] = cpu) -> float | None:
            values = [c[key] for c in cpu if c.get(key) is not None]
            return sum(values) if values else None

        parts = {k: total(f"{k}_s") for k in ("gateway", "client", "upstreams", "idle_routes")}
        busy, steal = total("machine_busy_s") or 0.0, total("machine_steal_s") or 0.0
        cores = {k: v / wall if v is not None and wall else None for k, v in parts.items()}
        cores["machine"] = busy / wall if wall else None
        cores["steal"] = steal / wall if wall else None
        cores["rest"] = (busy - steal - sum(v or 0.0 for v in parts.values())) / wall \
            if wall else None
        shares = []  # the busiest worker's share of the workers' CPU, each run
        for c in cpu:
            workers = c.get("workers_s") or []
            if len(workers) > 1 and sum(workers) > 0:
                shares.append(workers[0] / sum(workers))
        statuses: Counter[str] = Counter()
        for a in ok:
            statuses.update(a.get("statuses", {}))
        gateway_s = parts["gateway"]
        routes[name] = {
            "rate": median(rates), "rate_min": min(rates, default=float("nan")),
            "rate_max": max(rates, default=float("nan")), "rates": [round(r, 1) for r in rates],
            "ttfc_p50": percentile(ttfc, 50), "ttfc_p99": percentile(ttfc, 99),
            "ttfc_p50_min": min(round_p50, default=float("nan")),
            "ttfc_p50_max": max(round_p50, default=float("nan")),
            "gateway_us_per_chunk": gateway_s / chunks * 1e6 if gateway_s and chunks else None,
            "gateway_ms_per_request": gateway_s / requests * 1e3
            if gateway_s and requests else None,
            "client_us_per_request": (parts["client"] or 0.0) / requests * 1e6
            if requests else None,
            "upstreams_us_per_request": (parts["upstreams"] or 0.0) / requests * 1e6
            if requests else None,
            "cores": cores,
            "busiest_worker_shares": [round(x, 3) for x in shares],
            "requests": requests, "verified": sum(a["verified"] for a in ok),
            "crosstalk": sum(a["crosstalk"] for a in ok),
            "error_count": sum(a["error_count"] for a in ok),
            "errors": sorted({e for a in ok for e in a.get("errors", [])})[:3],
            "statuses": dict(statuses), "runs": len(ok), "failed_runs": len(answers) - len(ok),
        }
    ratios = {}
    for a, b in (("w2", "w1"), ("w4", "w1"), ("w1", "litellm"), ("w2", "litellm"),
                 ("w4", "litellm"), ("w1", "direct")):
        values = _paired(runs, a, b)
        if values:
            ratios[f"{a}/{b}"] = {"median": median(values), "min": min(values),
                                  "max": max(values), "rounds": [round(v, 3) for v in values]}
    return {"routes": routes, "ratios": ratios, "ceiling": _ceiling(routes)}


def _ceiling(routes: dict[str, dict[str, Any]]) -> dict[str, float] | None:
    """What the CPU books allow 2 workers: at 1 worker's costs per request (gateway, client,
    upstreams), the cores less what others used cap requests/s at (cores - others) / cost."""
    one = routes.get("w1")
    if not one or not one.get("gateway_ms_per_request") or not one["rate"]:
        return None
    cost_s = (one["gateway_ms_per_request"] / 1e3 + (one["client_us_per_request"] or 0.0) / 1e6
              + (one["upstreams_us_per_request"] or 0.0) / 1e6)
    ncores = len(os.sched_getaffinity(0))
    others = max(0.0, (one["cores"]["rest"] or 0.0) + (one["cores"]["idle_routes"] or 0.0)
                 + (one["cores"]["steal"] or 0.0))
    rate_all = ncores / cost_s
    rate_left = max(ncores - others, 0.0) / cost_s
    return {"cost_ms": cost_s * 1e3, "cores": ncores, "other_cores": others,
            "rate_all_cores": rate_all, "rate_left_cores": rate_left,
            "ratio_all_cores": rate_all / one["rate"], "ratio_left_cores": rate_left / one["rate"]}


# ---- Markdown -----------------------------------------------------------------------


def _ratio(summary: dict[str, Any], key: str) -> str:
    r = summary["ratios"].get(key)
    if not r:
        return "–"
    return f"**{r['median']:.2f}×** ({r['min']:.2f}–{r['max']:.2f})"


def _shares(f: dict[str, Any]) -> str:
    shares = f.get("busiest_worker_shares") or []
    if not shares:
        return ""
    return f"{median(shares) * 100:.0f}% (" + ", ".join(f"{x * 100:.0f}" for x in shares) + ")"


def _route_rows(data: dict[str, Any], summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, label in data["labels"].items():
        f = summary["routes"].get(name)
        if f is None:
            continue
        vs_one = {"w1": "1.00×", "w2": _ratio(summary, "w2/w1"), "w4": _ratio(summary, "w4/w1")}
        verified = (f"{f['verified']}/{f['requests']} ✓" if f["verified"] == f["requests"]
                    and not f["error_count"] else
                    f"**{f['verified']}/{f['requests']}**, {f['error_count']} errors: "
                    + "; ".join(f["errors"]))
        non200 = {k: v for k, v in f["statuses"].items() if k != "200"}
        rows.append([
            label,
            f"**{fmt(f['rate'], 0)}** ({fmt(f['rate_min'], 0)}–{fmt(f['rate_max'], 0)})",
            vs_one.get(name, ""),
            f"{fmt(f['ttfc_p50'], 2)} ({fmt(f['ttfc_p50_min'], 2)}–{fmt(f['ttfc_p50_max'], 2)})",
            fmt(f["ttfc_p99"], 2),
            fmt(f["gateway_us_per_chunk"], 1),
            fmt(f["gateway_ms_per_request"], 2),
            fmt(f["client_us_per_request"], 0),
            _shares(f),
            verified,
            str(f["crosstalk"]),
            ", ".join(f"{k}: {v}" for k, v in sorted(non200.items())) or "none",
        ])
    return rows


def _cores_rows(data: dict[str, Any], summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, label in data["labels"].items():
        f = summary["routes"].get(name)
        if f is None:
            continue
        c = f["cores"]
        rows.append([label, fmt(c["machine"], 2), fmt(c["gateway"], 2), fmt(c["client"], 2),
                     fmt(c["upstreams"], 2), fmt(c["idle_routes"], 2), fmt(c["rest"], 2),
                     fmt(c["steal"], 2)])
    return rows


def _status_md(data: dict[str, Any]) -> str:
    rows = []
    for name, st in data["status"].items():
        extra = f"started in {st['start_s']} s" if st.get("start_s") is not None else ""
        rows.append([data["labels"][name], st["status"], extra, st.get("error") or ""])
    return table(["route", "status", "", "note"], rows)


def _mode_md(data: dict[str, Any], mode: str) -> str:
    summary = data["summary"][mode]
    ratios = [["2 workers / 1 worker", _ratio(summary, "w2/w1")],
              ["4 workers / 1 worker", _ratio(summary, "w4/w1")],
              ["1 worker / LiteLLM (one process each)", _ratio(summary, "w1/litellm")],
              ["2 workers / LiteLLM", _ratio(summary, "w2/litellm")],
              ["4 workers / LiteLLM", _ratio(summary, "w4/litellm")],
              ["1 worker / direct", _ratio(summary, "w1/direct")]]
    return "\n".join([
        f"### {MODES[mode]}",
        "",
        table(["route", "requests/s (range)", "× 1 worker", "first chunk p50 ms (range)",
               "p99 ms", "gateway CPU µs/chunk", "gateway CPU ms/answer",
               "client CPU µs/answer", "busiest worker: median (each round) %",
               "answers verified", "cross-talk", "non-200"], _route_rows(data, summary)),
        "",
        table(["ratio of requests/s", "round by round: median (min–max)"], ratios),
        "",
        "Cores busy during each route's runs (CPU seconds over wall seconds, all rounds): "
        "the machine (/proc/stat), and its parts.",
        "",
        table(["route", "machine", "gateway", "client", "upstreams", "idle routes",
               "rest (other users)", "steal"], _cores_rows(data, summary)),
        "",
    ])


def _limits_md(data: dict[str, Any]) -> str:
    out = []
    for mode, title in MODES.items():
        summary = data["summary"][mode]
        routes, ceiling = summary["routes"], summary.get("ceiling")
        one, two = routes.get("w1"), routes.get("w2")
        if not ceiling or not one or not two:
            continue
        out.append(
            f"- **{title}.** One answer through 1 worker cost "
            f"{fmt(one['gateway_ms_per_request'], 2)} ms of gateway CPU, "
            f"{fmt((one['client_us_per_request'] or 0) / 1e3, 2)} ms of client and "
            f"{fmt((one['upstreams_us_per_request'] or 0) / 1e3, 2)} ms of upstream CPU: "
            f"{fmt(ceiling['cost_ms'], 2)} ms in all. 1 worker used "
            f"{fmt(one['cores']['gateway'], 2)} cores (one is all it can use) and the "
            f"machine {fmt(one['cores']['machine'], 2)} of {ceiling['cores']}. At these costs "
            f"the {ceiling['cores']} cores carry at most {fmt(ceiling['rate_all_cores'], 0)} "
            f"requests/s, {fmt(ceiling['ratio_all_cores'], 2)}× 1 worker; less the "
            f"{fmt(ceiling['other_cores'], 2)} cores other processes took, "
            f"{fmt(ceiling['rate_left_cores'], 0)} requests/s "
            f"(**{fmt(ceiling['ratio_left_cores'], 2)}×**). Measured at 2 workers: machine "
            f"{fmt(two['cores']['machine'], 2)} cores (gateway {fmt(two['cores']['gateway'], 2)}"
            f", client {fmt(two['cores']['client'], 2)}, upstreams "
            f"{fmt(two['cores']['upstreams'], 2)}, others {fmt(two['cores']['rest'], 2)}), "
            f"{fmt(two['gateway_ms_per_request'], 2)} ms of gateway CPU per answer; the busiest "
            f"worker did {_shares(two) or '–'} of the workers' work.")
    return "\n".join(out)


def render(data: dict[str, Any], out_dir: Path) -> str:
    s = data["settings"]
    lines = [
        "## Workers: requests/s with 1, 2 and 4 worker processes, and LiteLLM's proxy",
        "",
        "One config file (two deployments of one model name, `simple-shuffle`, a master key; "
        "below) read unchanged by `codelinkava serve --config --workers N` and by LiteLLM's "
        "proxy, each a process group of its own on 127.0.0.1 in front of two echo upstreams "
        "(`bench.source`, a process each); direct is the client spread over both upstreams. "
        "Both gateways as they come: their access logs on (ours: a line per answer; "
        "LiteLLM's: uvicorn's), LiteLLM in one process (its default). "
        f"The measuring client, a process of its own (uvloop and httptools' parser), keeps "
        f"{s['c']} requests in flight, streamed answers of {s['n']} content chunks each, back "
        f"to back, for {s['seconds']:g} s a run; either over {s['c']} keep-alive connections "
        "(new ones each run) or a new connection per request. "
        f"{s['rounds']} interleaved rounds (every route and both ways in turn, the order "
        f"rotating) after a {s['warm_s']:g} s warm-up of each. requests/s: answers completed "
        "within the window over the window, median of the rounds (min–max). × 1 worker and "
        "the ratios: round by round (the routes of one round ran seconds apart), median "
        "(min–max). First chunk: from sending the request (connecting, for a new connection) "
        "to the first non-empty `content`; p50 and p99 pool every answer of every round, the "
        "range is the per-round p50's. Gateway CPU: every process of the route's group "
        "(workers and supervisor), from /proc, per content chunk and per answer. Busiest "
        "worker: its share of the workers' CPU in each round (even: 50% at 2, 25% at 4). "
        "Every answer is checked after the window to be exactly the text its own nonce asked "
        "for; cross-talk counts answers carrying another request's nonce.",
        "",
        _status_md(data),
        "",
    ]
    for mode in MODES:
        if mode in data["summary"]:
            lines += [_mode_md(data, mode), ""]
    lines += [
        "### What limits it on this machine",
        "",
        "Client, upstreams, gateway workers and whatever else runs on the machine share its "
        "cores. One worker can use one core; a second can only have what the rest leave.",
        "",
        _limits_md(data),
        "",
        table(["target", "measured (median of rounds)", "limit", "context", "status"],
              targets(data)),
        "",
        f"First chunk under this load is mostly waiting in line: with {s['c']} requests "
        f"always in flight, each waits about {s['c']} / (requests/s) in all; the routing "
        "section measures the first chunk of an unloaded gateway.",
        "",
        "`codelinkava serve --workers N` is uvicorn's multiprocess mode: the workers share "
        "one listening socket and whichever is awake first accepts what is waiting. "
        "Connections that live long (keep-alive) stay with the worker that accepted them, so "
        "a burst of new connections can all land on one worker while the others idle (the "
        "busiest-worker column); a connection per request is spread as it comes.",
        "",
        "The config file, as both gateways read it (ports vary):",
        "",
        "```yaml",
        data["config"].rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines) + "\n"


def targets(data: dict[str, Any]) -> list[list[str]]:
    rows = []
    for mode, title in MODES.items():
        summary = data["summary"].get(mode, {})
        r = summary.get("ratios", {}).get("w2/w1")
        target = f"workers: 2 workers ≥ {TARGET_RATIO}× one worker, requests/s ({title})"
        if not r:
            rows.append([target, "not measured", f"{TARGET_RATIO}×", "", "not measured"])
            continue
        ceiling = summary.get("ceiling") or {}
        context = (f"CPU ceiling here: {ceiling['ratio_left_cores']:.2f}×" if ceiling else "")
        reached = sum(v >= TARGET_RATIO for v in r["rounds"])
        rows.append([target, f"{r['median']:.2f}× ({r['min']:.2f}–{r['max']:.2f}; ≥ "
                     f"{TARGET_RATIO}× in {reached} of {len(r['rounds'])} rounds)",
                     f"{TARGET_RATIO}×", context,
                     "met" if r["median"] >= TARGET_RATIO else "**missed**"])
    return rows


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["client"]:
        _client_main()
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.workers_bench")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    parser.add_argument("--out", type=Path, help="output folder (default bench/results/)")
    parser.add_argument("--no-peers", action="store_true", help="leave LiteLLM out")
    args = parser.parse_args(argv)
    cfg = Config(quick=args.quick, peers=not args.no_peers)
    if args.quick:
        cfg.rounds = 2
        cfg.out = ROOT / "bench" / "results-quick"
    cfg.rounds = args.rounds or cfg.rounds
    cfg.out = (args.out or cfg.out).resolve()
    cfg.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data = run(cfg)
    record = {
        "section": "workers",
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0)),
        "seconds": round(time.time() - t0, 1),
        "quick": cfg.quick,
        "machine": machine(),
        "data": data,
    }
    (cfg.out / "workers.json").write_text(json.dumps(record, indent=1, ensure_ascii=False))
    (cfg.out / "workers.md").write_text(render(data, cfg.out))
    cfg.log(f"bench workers: wrote {cfg.out / 'workers.md'} ({record['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
