"""Section `routing`: what the router adds to the first chunk, and what hedging does to the tail.

Two measurements, every server a process of its own on 127.0.0.1, the
measuring client in this process:

1. **Overhead.** `codelinkava serve --provider openai` against the router with
   one deployment (`RouterBackend`), both in front of the same fast upstream
   (`bench.source`, 20 chunks). Single streams, one at a time, the two
   gateways interleaved round by round; the difference of the first-chunk
   medians is what routing costs.
2. **Hedging.** One model group of two deployments: `steady` always answers
   at once, `flaky` makes every `SLOW_EVERY`-th request wait `SLOW_MS` before
   its first chunk (a GC pause, a busy GPU). `simple-shuffle` without a hedge,
   with a fixed 50 ms hedge, and with the p95 hedge; concurrent streams; the
   first-chunk p50/p95/p99 and the upstream requests each answer cost (a hedge
   is a second request).

    .venv/bin/python -m bench.routing_bench            # writes bench/results/routing.{json,md}
    .venv/bin/python -m bench.routing_bench --quick    # a smoke run, to bench/results-quick/

As a section of `python -m bench` it offers `run(cfg)`, `render(data, out)` and
`targets(data)`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Config, fmt, machine, percentile, runner_env, table
from bench.gateways import Gateway, start_gateway
from bench.source import SourceServer

__all__ = ["render", "run", "targets"]

SLOW_EVERY = 10
SLOW_MS = 400
HEDGE_MS = 50
CHUNKS = 20
OVERHEAD_TARGET_MS = 0.2
_FIRST_CONTENT = re.compile(rb'"content":\s*"[^"]')
BODY = json.dumps(
    {"model": "m", "messages": [{"role": "user", "content": "bench"}], "stream": True}
).encode()


# ---- the flaky upstream (`python -m bench.routing_bench upstream`) ---------------------


def _sse() -> bytes:
    events = []
    for i in range(CHUNKS):
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}],
        }
        events.append(f"data: {json.dumps(chunk)}\n\n")
    return ("".join(events) + "data: [DONE]\n\n").encode()


async def _upstream(slow_every: int, slow_ms: int) -> None:
    from aiohttp import web

    body = _sse()
    count = {"requests": 0}

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        count["requests"] += 1
        if slow_every and count["requests"] % slow_every == 0:
            await asyncio.sleep(slow_ms / 1000)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        return response

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(count)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(
        target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True
    ).start()
    await stop.wait()
    await runner.cleanup()


# ---- the routed gateway (`python -m bench.routing_bench gateway CONFIG`) --------------


def _gateway(config_path: str) -> None:
    import uvicorn

    from codelinkava.routing import load_config
    from codelinkava.server import GatewaySettings, create_app
    from codelinkava.server.protocol import GuardedHttpToolsProtocol
    from codelinkava.server.routed import RouterBackend

    config = load_config(config_path)
    settings = GatewaySettings(api_key=None, max_concurrency=1000, chat_page=False, preload=False)
    app = create_app(settings, backend=RouterBackend(config.router(), preload=False))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, http=GuardedHttpToolsProtocol)
    )
    server.run(sockets=[sock])


# ---- processes --------------------------------------------------------------------------


def _spawn(name: str, args: list[str], log_path: Path) -> tuple[Gateway, int]:
    """`python -m bench.routing_bench ARGS` in a session of its own; the port it printed."""
    with open(log_path, "ab") as log:  # the child keeps its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.routing_bench", *args],
            cwd=ROOT,
            env=runner_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    process = Gateway(name, "", proc=proc)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    proc.stdout.close()
    if not line.isdigit():
        process.stop()
        raise RuntimeError(f"{name} did not start (see {log_path})")
    return process, int(line)


def _routed(
    deployments: list[dict[str, Any]], router: dict[str, Any], tmp: Path, name: str, logs: Path
) -> tuple[Gateway, str]:
    config = tmp / f"{name}.json"  # YAML is a superset of JSON
    config.write_text(json.dumps({"model_list": deployments, "router_settings": router}))
    gateway, port = _spawn(name, ["gateway", str(config)], logs / f"routing-{name}.log")
    gateway.url = f"http://127.0.0.1:{port}/v1/chat/completions"
    _wait_ready(gateway.url)
    return gateway, gateway.url


def _wait_ready(url: str) -> None:
    import urllib.request

    models = url.replace("/chat/completions", "/models")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(models, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the gateway at {url} did not start")


def _deployment(base: str, name: str) -> dict[str, Any]:
    return {
        "model_name": "m",
        "litellm_params": {"model": "openai/m", "api_base": base, "timeout": 30},
        "model_info": {"id": name},
    }


# ---- the measuring client ----------------------------------------------------------------


async def _first_chunks(url: str, requests: int, concurrency: int) -> list[float]:
    """Seconds to the first content of each answer; every answer read to its end."""
    import aiohttp

    times: list[float] = []
    left = {"n": requests}

    async def worker(session: aiohttp.ClientSession) -> None:
        while left["n"] > 0:
            left["n"] -= 1
            t0 = time.perf_counter()
            first = 0.0
            seen = b""
            headers = {"Content-Type": "application/json"}
            async with session.post(url, data=BODY, headers=headers) as r:
                if r.status != 200:
                    raise RuntimeError(f"{url} answered {r.status}: {await r.text()}")
                async for data in r.content.iter_any():
                    if not first and _FIRST_CONTENT.search(seen[-64:] + data):
                        first = time.perf_counter() - t0
                    seen += data
            if not seen.endswith(b"data: [DONE]\n\n") or b'"error"' in seen:
                raise RuntimeError(f"{url}: an answer did not end well: {seen[-200:]!r}")
            times.append(first)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return times


def _stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(t * 1000 for t in times)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else float("nan"),
    }


def _upstream_requests(port: int) -> int:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        requests: int = json.loads(response.read())["requests"]
        return requests


# ---- the section ----------------------------------------------------------------------------


def run(cfg: Config) -> dict[str, Any]:
    logs = cfg.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    per_round = 40 if cfg.quick else 200
    hedge_requests = 60 if cfg.quick else 1000
    data: dict[str, Any] = {
        "slow_every": SLOW_EVERY,
        "slow_ms": SLOW_MS,
        "hedge_ms": HEDGE_MS,
        "chunks": CHUNKS,
    }
    with tempfile.TemporaryDirectory(prefix="bench-routing-") as tmp_name:
        tmp = Path(tmp_name)
        data["overhead"] = _overhead(cfg, tmp, logs, per_round)
        data["hedging"] = _hedging(tmp, logs, hedge_requests, concurrency=4)
    return data


def _overhead(cfg: Config, tmp: Path, logs: Path, per_round: int) -> dict[str, Any]:
    cfg.log("bench routing: overhead (single upstream vs a router of one)")
    samples: dict[str, list[float]] = {"single": [], "routed": []}
    with SourceServer() as source:
        upstream = source.url(CHUNKS) + "/v1"
        single: Gateway = start_gateway("codelinkava", cfg, upstream, logs / "routing-single.log")
        routed, routed_url = _routed([_deployment(upstream, "only")], {}, tmp, "one", logs)
        try:
            urls = {"single": single.url, "routed": routed_url}
            for url in urls.values():  # warm-up: connections, caches
                asyncio.run(_first_chunks(url, 20, 1))
            for _ in range(cfg.rounds):
                for name, url in urls.items():
                    samples[name] += asyncio.run(_first_chunks(url, per_round, 1))
        finally:
            single.stop()
            routed.stop()
    stats = {name: _stats(times) for name, times in samples.items()}
    return {"stats": stats, "added_p50_ms": stats["routed"]["p50"] - stats["single"]["p50"]}


def _hedging(tmp: Path, logs: Path, requests: int, concurrency: int) -> dict[str, Any]:
    variants = {
        "no hedge": {},
        f"hedge after {HEDGE_MS} ms": {"hedging": {"m": {"delay": HEDGE_MS / 1000}}},
        "hedge after the p95": {"hedging": {"m": {"delay": "p95", "max_delay": 1.0}}},
    }
    out: dict[str, Any] = {}
    for label, router in variants.items():
        steady, steady_port = _spawn("steady", ["upstream"], logs / "routing-steady.log")
        flaky, flaky_port = _spawn(
            "flaky",
            ["upstream", "--slow-every", str(SLOW_EVERY), "--slow-ms", str(SLOW_MS)],
            logs / "routing-flaky.log",
        )
        deployments = [
            _deployment(f"http://127.0.0.1:{steady_port}/v1", "steady"),
            _deployment(f"http://127.0.0.1:{flaky_port}/v1", "flaky"),
        ]
        gateway, url = _routed(deployments, router, tmp, "hedge", logs)
        try:
            asyncio.run(_first_chunks(url, 40, concurrency))  # warm-up; teaches the p95
            before = _upstream_requests(steady_port) + _upstream_requests(flaky_port)
            times = asyncio.run(_first_chunks(url, requests, concurrency))
            sent = _upstream_requests(steady_port) + _upstream_requests(flaky_port) - before
        finally:
            for process in (gateway, steady, flaky):
                process.stop()
        out[label] = {**_stats(times), "upstream_per_answer": sent / len(times)}
    return out


def render(data: dict[str, Any], out_dir: Path) -> str:
    overhead = data["overhead"]
    rows = [
        [label, fmt(s["p50"], 2), fmt(s["p99"], 2), str(s["n"])]
        for label, s in (
            ("codelinkava serve (one upstream)", overhead["stats"]["single"]),
            ("router, one deployment", overhead["stats"]["routed"]),
        )
    ]
    hedge_rows = [
        [
            label,
            fmt(s["p50"], 1),
            fmt(s["p95"], 1),
            fmt(s["p99"], 1),
            fmt(s["max"], 1),
            f"{s['upstream_per_answer']:.2f}",
        ]
        for label, s in data["hedging"].items()
    ]
    return "\n".join(
        [
            "## Routing",
            "",
            "First chunk in ms, measured by a client process of its own through a gateway "
            "process in front of upstream processes (`bench/routing_bench.py`).",
            "",
            "### What the router adds",
            "",
            table(["gateway", "first chunk p50", "p99", "streams"], rows),
            "",
            f"Routing adds **{overhead['added_p50_ms']:+.3f} ms** to the median first chunk "
            f"(target ≤ {OVERHEAD_TARGET_MS} ms).",
            "",
            "### Hedged first chunk, one deployment sometimes slow",
            "",
            f"Two deployments; `flaky` holds every {data['slow_every']}th request "
            f"{data['slow_ms']} ms before its first chunk; 4 streams at once.",
            "",
            table(
                ["routing", "p50", "p95", "p99", "max", "upstream requests per answer"], hedge_rows
            ),
            "",
        ]
    )


def targets(data: dict[str, Any]) -> list[list[str]]:
    added = data["overhead"]["added_p50_ms"]
    return [
        [
            f"Routing adds ≤ {OVERHEAD_TARGET_MS} ms to the first chunk",
            f"{added:+.3f} ms (p50)",
            f"{OVERHEAD_TARGET_MS} ms",
            "",
            "met" if added <= OVERHEAD_TARGET_MS else "**missed**",
        ]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.routing_bench")
    sub = parser.add_subparsers(dest="command")
    up = sub.add_parser("upstream")
    up.add_argument("--slow-every", type=int, default=0)
    up.add_argument("--slow-ms", type=int, default=0)
    gw = sub.add_parser("gateway")
    gw.add_argument("config")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--out", type=Path, help="output folder (default bench/results/)")
    args = parser.parse_args(argv)
    if args.command == "upstream":
        asyncio.run(_upstream(args.slow_every, args.slow_ms))
        return 0
    if args.command == "gateway":
        _gateway(args.config)
        return 0
    cfg = Config(quick=args.quick)
    if args.quick:
        cfg.rounds = 2
        cfg.out = ROOT / "bench" / "results-quick"
    cfg.out = (args.out or cfg.out).resolve()
    cfg.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data = run(cfg)
    record = {
        "section": "routing",
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0)),
        "seconds": round(time.time() - t0, 1),
        "quick": cfg.quick,
        "machine": machine(),
        "data": data,
    }
    (cfg.out / "routing.json").write_text(json.dumps(record, indent=1))
    (cfg.out / "routing.md").write_text(render(data, cfg.out))
    cfg.log(f"bench routing: wrote {cfg.out / 'routing.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
