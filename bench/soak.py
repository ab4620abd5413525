"""A bounded soak on 127.0.0.1: the gateway under load, the local model's worker, the client.

    python -m bench.soak                  # 50,000 streams at concurrency 200 (--requests N)
    python -m bench.soak --quick          # a one-minute smoke run of every phase

Phases (each checked, each reported with figures; exit status 1 if any check fails):

1. gateway: `codelinkava serve --provider openai` in front of a fast upstream (a
   subprocess of this script). Every request carries a unique nonce; the upstream
   echoes it in each chunk, so a client that sees another's text proves crossed
   responses. A third of the clients leave at a random chunk. Checked: zero crossed
   or corrupted answers, zero 5xx but the documented overload 503, every finished
   stream ends in [DONE], the gateway's RSS and open fds flat after warm-up.
2. local: the gateway in this process with `--provider local`; most clients leave
   after a few tokens. Checked from the engine's own counters: the worker stops
   generating for them (tokens spent per departed client), and is idle afterwards.
3. client: 10,000 streams of the library's own client cancelled at random points
   (task cancel, break, aclose). Checked: no tasks, sockets or warnings left over.

Everything listens on and talks to 127.0.0.1 only; every process started here is
stopped here, and every wait has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PIECES = 8  # chunks per upstream answer


# The upstream (its own process) -----------------------------------------------------


def run_upstream(port: int, delay: float) -> None:
    """An OpenAI-style upstream that echoes the request's nonce in every chunk."""
    from aiohttp import web

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        nonce = body["messages"][-1]["content"].removeprefix("nonce:")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for k in range(PIECES):
            chunk = {"choices": [{"index": 0, "delta": {"content": f"{nonce}#{k} "}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if delay:
                await asyncio.sleep(delay)
        finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await response.write(f"data: {json.dumps(finish)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response

    async def models(request: web.Request) -> web.Response:
        # As a real upstream does: the gateway lists what the upstream serves.
        return web.json_response({"object": "list", "data": [{"id": "soak", "object": "model"}]})

    import logging

    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # clients leave on purpose
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=4096)


# Processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def figures(pid: int) -> dict[str, int]:
    """RSS (KiB) and open file descriptors of a process, from /proc."""
    rss = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def wait_listening(port: int, process: subprocess.Popen[bytes], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {within}s")


def spawn(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a process from this repository's root with the configuration variables cleared."""
    return subprocess.Popen(command, cwd=ROOT, env=clean_env(), **kwargs)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def clean_env() -> dict[str, str]:
    drop = ("CODELINKAVA_API_URL", "CODELINKAVA_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY")
    return {k: v for k, v in os.environ.items() if k not in drop}


# Phase 1: the gateway under load ------------------------------------------------------------


async def one_stream(
    session: aiohttp.ClientSession, url: str, leave_after: int | None, tally: Counter[str]
) -> None:
    nonce = secrets.token_hex(8)
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": f"nonce:{nonce}"}],
        "stream": True,
    }
    try:
        async with asyncio.timeout(60), session.post(url, json=body) as response:
            tally[f"status {response.status}"] += 1
            if response.status != 200:
                await response.read()
                return
            seen = 0
            done = False
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].strip()
                if data == b"[DONE]":
                    done = True
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    tally["in-stream error"] += 1
                    return
                choice = chunk["choices"][0] if chunk.get("choices") else {}
                text = (choice.get("delta") or {}).get("content")
                if not text:
                    continue
                if text != f"{nonce}#{seen} ":
                    tally["crossed or corrupted"] += 1
                    return
                seen += 1
                if leave_after is not None and seen >= leave_after:
                    response.close()  # drop the connection mid-stream
                    tally["left mid-stream"] += 1
                    return
            if done and seen == PIECES:
                tally["complete"] += 1
            else:
                tally["incomplete"] += 1
    except TimeoutError:
        tally["client timeout"] += 1
    except (aiohttp.ClientError, OSError) as exc:
        tally[f"client error {type(exc).__name__}"] += 1


async def gateway_phase(args: argparse.Namespace) -> dict[str, Any]:
    up_port, gw_port = free_port(), free_port()
    upstream = spawn([sys.executable, "-m", "bench.soak", "--upstream", str(up_port)])
    gateway = None
    try:
        wait_listening(up_port, upstream)
        gateway = spawn(
            [sys.executable, "-m", "codelinkava.cli", "serve", "--port", str(gw_port),
             "--provider", "openai", "--base-url", f"http://127.0.0.1:{up_port}/v1",
             "--max-concurrency", str(args.max_concurrency), "--timeout", "30",
             "--max-retries", "0", "--log-level", "warning", "--grace", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_listening(gw_port, gateway)
        url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
        rng = random.Random(args.seed)
        tally: Counter[str] = Counter()
        samples: list[dict[str, Any]] = [{"done": 0, **figures(gateway.pid)}]
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        start = time.monotonic()
        async with aiohttp.ClientSession(connector=connector) as session:
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(args.requests):
                queue.put_nowait(i)
            step = max(1, args.requests // 20)
            finished = 0

            async def worker() -> None:
                nonlocal finished
                while True:
                    try:
                        queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    leave = rng.randrange(0, PIECES) if rng.random() < args.leave else None
                    await one_stream(session, url, leave, tally)
                    finished += 1
                    if finished % step == 0:
                        samples.append({"done": finished, **figures(gateway.pid)})

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            seconds = time.monotonic() - start
            async with session.get(f"http://127.0.0.1:{gw_port}/health") as response:
                health = await response.json()
        await asyncio.sleep(2)
        samples.append({"done": "idle +2 s", **figures(gateway.pid)})
    finally:
        if gateway is not None:
            stop(gateway)
        stop(upstream)
    log = gateway.stdout.read().decode(errors="replace") if gateway and gateway.stdout else ""
    warm = samples[min(2, len(samples) - 1)]  # after 10% of the requests
    end = samples[-1]
    statuses = {k: v for k, v in tally.items() if k.startswith("status")}
    bad_5xx = sum(v for k, v in statuses.items() if k.startswith("status 5") and k != "status 503")
    checks = {
        "zero crossed or corrupted answers": tally["crossed or corrupted"] == 0,
        "zero 5xx but the overload 503": bad_5xx == 0,
        "zero in-stream errors": tally["in-stream error"] == 0,
        "zero incomplete streams": tally["incomplete"] == 0,
        "zero client timeouts or errors": not any(
            k.startswith(("client timeout", "client error")) for k in tally
        ),
        "every request answered": sum(statuses.values()) == args.requests,
        "nothing in flight afterwards": health["in_flight"] == 0,
        "RSS flat after warm-up (< +32 MiB)": end["rss_kib"] - warm["rss_kib"] < 32 * 1024,
        "fds flat after warm-up (<= +4)": end["fds"] <= warm["fds"] + 4,
        "nothing logged at warning level": all(
            line.startswith("codelinkava gateway on") for line in log.strip().splitlines()
        ),
    }
    return {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "gateway_max_concurrency": args.max_concurrency,
        "seconds": round(seconds, 1),
        "requests_per_second": round(args.requests / seconds, 1),
        "tally": dict(tally),
        "health": health,
        "samples": samples,
        "warm": warm,
        "end": end,
        "log_tail": log[-2000:],
        "checks": checks,
    }


# Phase 2: the local model's worker ------------------------------------------------------------


def serve_in_thread(app: Any) -> tuple[Any, int, threading.Thread]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))

    def run() -> None:
        asyncio.run(server.serve(sockets=[sock]))
        sock.close()

    thread = threading.Thread(target=run, name="soak-local-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the local gateway did not start")
        time.sleep(0.02)
    return server, port, thread


async def local_phase(args: argparse.Namespace) -> dict[str, Any]:
    from codelinkava import LocalModel
    from codelinkava.server import GatewaySettings, create_app

    app = create_app(GatewaySettings(provider="local", api_key=None))
    server, port, thread = serve_in_thread(app)
    try:
        engine = LocalModel.engine()
        base = engine.stats.tokens, engine.stats.jobs_done, engine.stats.jobs_stopped
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        rng = random.Random(args.seed)
        read = {"full": 0, "left": 0}
        counts = {"full": 0, "left": 0}

        async def client(session: aiohttp.ClientSession) -> None:
            leave = rng.randrange(1, 6) if rng.random() < 2 / 3 else None
            body = {
                "messages": [{"role": "user", "content": "Tell me a long story about a ship."}],
                "stream": True,
                "max_tokens": args.local_tokens,
                "temperature": 0.7,
            }
            kind = "full" if leave is None else "left"
            async with asyncio.timeout(120), session.post(url, json=body) as response:
                assert response.status == 200, response.status
                seen = 0
                async for line in response.content:
                    if line.startswith(b"data: {") and b'"content":"' in line:
                        seen += 1
                        if leave is not None and seen >= leave:
                            response.close()
                            break
            read[kind] += seen
            counts[kind] += 1

        sem = asyncio.Semaphore(args.local_concurrency)

        async def bounded(session: aiohttp.ClientSession) -> None:
            async with sem:
                await client(session)

        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(bounded(session) for _ in range(args.local_requests)))
            # The worker must fall idle: no token generated for a client that left.
            await asyncio.sleep(1.0)
            settled = engine.stats.tokens
            await asyncio.sleep(1.0)
            idle = engine.stats.tokens == settled
            async with session.get(f"http://127.0.0.1:{port}/health") as response:
                health = await response.json()
        tokens = engine.stats.tokens - base[0]
        done = engine.stats.jobs_done - base[1]
        stopped = engine.stats.jobs_stopped - base[2]
    finally:
        server.should_exit = True
        thread.join(15)
    # Every token of a finished job was read (one token, one chunk), so the rest went to
    # clients that left; what they did not read is what the worker spent after they left.
    spent_on_leavers = tokens - read["full"]
    extra_per_leaver = (spent_on_leavers - read["left"]) / max(1, counts["left"])
    checks = {
        "every job ended, done or stopped": done + stopped == args.local_requests,
        "jobs of departed clients were stopped": stopped >= 1,
        "the worker is idle afterwards": idle and health["in_flight"] == 0,
        "under 8 tokens generated per departed client after it left": extra_per_leaver < 8,
    }
    return {
        "requests": args.local_requests,
        "concurrency": args.local_concurrency,
        "max_tokens": args.local_tokens,
        "clients_full": counts["full"],
        "clients_left": counts["left"],
        "jobs_done": done,
        "jobs_stopped": stopped,
        "tokens_generated": tokens,
        "tokens_read_by_full_clients": read["full"],
        "tokens_read_by_departed_clients": read["left"],
        "tokens_after_leaving_per_departed_client": round(extra_per_leaver, 2),
        "tokens_if_nobody_stopped_at_most": (counts["full"] + counts["left"]) * args.local_tokens,
        "health": health,
        "checks": checks,
    }


# Phase 3: the client's cancelled streams ---------------------------------------------------------


def own_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
    return count


async def client_phase(args: argparse.Namespace) -> dict[str, Any]:
    import codelinkava.transports.aiohttp
    from codelinkava import CodeLinkAva

    up_port = free_port()
    upstream = spawn(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--upstream",
            str(up_port),
            "--upstream-delay",
            "0.002",
        ]
    )
    try:
        wait_listening(up_port, upstream)
        url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
        rng = random.Random(args.seed)
        sockets_before = own_sockets()
        tasks_before = len(asyncio.all_tasks())
        ways: Counter[str] = Counter()

        async def consume(gen: Any, limit: int) -> None:
            seen = 0
            async for _ in gen:
                seen += 1
                if seen >= limit:
                    break

        async def abandon() -> None:
            messages = [{"role": "user", "content": f"nonce:{secrets.token_hex(4)}"}]
            gen = CodeLinkAva.create_async_generator("m", messages, api_url=url, timeout=10)
            how = rng.choice(("cancel", "break", "aclose"))
            ways[how] += 1
            if how == "cancel":
                task = asyncio.create_task(consume(gen, PIECES + 1))
                await asyncio.sleep(rng.random() * 0.01)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            elif how == "break":
                await consume(gen, rng.randrange(1, PIECES + 1))
            else:
                with contextlib.suppress(StopAsyncIteration):
                    for _ in range(rng.randrange(0, PIECES)):
                        await gen.__anext__()
                await gen.aclose()

        sem = asyncio.Semaphore(args.client_concurrency)

        async def bounded() -> None:
            async with sem:
                await abandon()

        start = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            await asyncio.gather(*(bounded() for _ in range(args.client_cancels)))
            seconds = time.monotonic() - start
            await asyncio.sleep(0.1)
            tasks_after = len(asyncio.all_tasks())
            pooled = own_sockets() - sockets_before  # keep-alive connections in the pool
            await codelinkava.transports.aiohttp.aclose_session()
            await asyncio.sleep(0.1)
            gc.collect()
            sockets_after = own_sockets() - sockets_before
        warned = [f"{w.category.__name__}: {w.message}" for w in caught]
    finally:
        stop(upstream)
    checks = {
        "no tasks left": tasks_after == tasks_before,
        "no sockets left once the pool is closed": sockets_after <= 0,
        "pooled connections within the pool limit": pooled <= 1024,
        "no warnings": not warned,
    }
    return {
        "streams": args.client_cancels,
        "concurrency": args.client_concurrency,
        "ways": dict(ways),
        "seconds": round(seconds, 1),
        "tasks_before": tasks_before,
        "tasks_after": tasks_after,
        "pooled_sockets_before_close": pooled,
        "sockets_after_close": sockets_after,
        "warnings": warned[:10],
        "checks": checks,
    }


# Main ------------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--max-concurrency", type=int, default=256, help="the gateway's limit")
    parser.add_argument("--leave", type=float, default=1 / 3, help="share of clients that leave")
    parser.add_argument("--local-requests", type=int, default=60)
    parser.add_argument("--local-concurrency", type=int, default=6)
    parser.add_argument("--local-tokens", type=int, default=200)
    parser.add_argument("--client-cancels", type=int, default=10_000)
    parser.add_argument("--client-concurrency", type=int, default=100)
    parser.add_argument("--only", choices=["gateway", "local", "client"], action="append")
    parser.add_argument("--quick", action="store_true", help="a small run of every phase")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.concurrency = min(args.requests, 1500), min(args.concurrency, 50)
        args.local_requests, args.local_tokens = min(args.local_requests, 9), 60
        args.client_cancels = min(args.client_cancels, 600)
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    phases = {"gateway": gateway_phase, "local": local_phase, "client": client_phase}
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    for name in args.only or list(phases):
        started = time.monotonic()
        print(f"[soak] {name} ...", file=sys.stderr, flush=True)
        results[name] = await phases[name](args)
        results[name]["phase_seconds"] = round(time.monotonic() - started, 1)
        for check, ok in results[name]["checks"].items():
            print(f"[soak]   {'ok  ' if ok else 'FAIL'} {check}", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.upstream:
        run_upstream(args.upstream, args.upstream_delay)
        return 0
    results = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    ok = all(all(r["checks"].values()) for k, r in results.items() if k != "args")
    print(
        json.dumps({k: v for k, v in results.items() if k != "args"}, indent=1, default=str)[:6000]
    )
    print(f"[soak] {'PASS' if ok else 'FAIL'} -> {args.out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
