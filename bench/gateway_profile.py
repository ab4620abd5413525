"""`codelinkava serve`'s app under cProfile, in a process of its own.

`python -m bench.gateway_profile --upstream URL` runs `create_app` (provider
openai, base URL the upstream) on uvicorn, as `codelinkava serve` does, with
cProfile for the event loop's thread. It prints its port, turns the profiler
on when it reads a line on stdin (so warm-up requests stay out), and when its
stdin closes it stops and prints one JSON line: the top functions' calls, own
and cumulative seconds, and the seconds spent in each file (C builtins by name).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import re
import socket
import sys
import threading
from collections import defaultdict
from typing import Any

__all__ = ["main"]


def _short(path: str) -> str:
    for marker in ("site-packages/", "/src/"):
        if marker in path:
            return path.split(marker)[-1]
    return re.sub(r"^.*/lib/python3\.\d+/", "", path)


def _stats(prof: cProfile.Profile) -> dict[str, Any]:
    stats = pstats.Stats(prof)
    rows = []
    files: dict[str, float] = defaultdict(float)
    for (path, line, func), (_cc, calls, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = _short(path)
        rows.append({"func": f"{short}:{line}({func})", "calls": calls, "tottime_s": tt,
                     "cumtime_s": ct})
        files[f"{func} (C)" if path == "~" else short] += tt
    rows.sort(key=lambda r: -r["tottime_s"])
    return {"ok": True, "total_s": sum(files.values()), "top": rows[:60],
            "codelinkava": [r for r in rows if r["func"].startswith("codelinkava/")][:40],
            "files": dict(sorted(files.items(), key=lambda kv: -kv[1])[:40])}


async def _serve(upstream: str, out: Any) -> cProfile.Profile:
    import uvicorn

    from codelinkava.server import GatewaySettings, create_app

    app = create_app(GatewaySettings(provider="openai", provider_options={"base_url": upstream},
                                     max_concurrency=1000, api_key=None))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    loop = asyncio.get_running_loop()
    prof = cProfile.Profile()

    def control() -> None:
        if sys.stdin.readline():
            loop.call_soon_threadsafe(prof.enable)  # on the loop's thread, which it profiles
            sys.stdin.read()
        loop.call_soon_threadsafe(setattr, server, "should_exit", True)

    threading.Thread(target=control, daemon=True).start()
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.05)
    out.write(f"{sock.getsockname()[1]}\n")
    out.flush()
    try:
        await task
    finally:
        prof.disable()
        sock.close()
    return prof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    from bench.runner import _answer_channel

    out = _answer_channel()
    try:  # the loop `codelinkava serve` gets from uvicorn when uvloop is installed
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        prof = runner.run(_serve(args.upstream, out))
    out.write(json.dumps(_stats(prof)) + "\n")


if __name__ == "__main__":
    main()
