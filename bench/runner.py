"""Runs clients in a process of its own and reports measurements as JSON.

Three ways to run it (`python -m bench.runner ...`, with the project's
.venv or `bench/.venv-peers`):

- `serve`: a long-lived worker for the interleaved rounds. One JSON command
  per line on stdin (`{"op": "stream", "client": ..., "base": ..., "n": ...}`,
  `{"op": "versions"}`, `{"op": "quit"}`), one JSON answer per line back.
- `concurrency --client C --base URL --n N -c K`: a fresh process runs K
  streams at once on one event loop and reports throughput, first-chunk
  latencies and peak RSS, then exits.
- `profile --client C --base URL --n N`: cProfile of the client's streams, and
  the pure decoding cost (no I/O) of the floor's and codelinkava's parsers.

Answers go to a private copy of stdout; stdout itself is pointed at stderr
so a library that prints cannot corrupt the protocol. Only the standard
library and aiohttp are imported up front (both virtualenvs have them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import os
import resource
import sys
import time
import traceback
from typing import Any, TextIO

from bench.clients import CLIENTS, State
from bench.payload import expected_text, render_events

__all__ = ["main"]


def _answer_channel() -> TextIO:
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def _raise_nofile_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY
                                                    else 65536, hard))


def _check(name: str, n: int, pieces: list[Any]) -> tuple[bool, str]:
    """Did the client produce exactly the expected text (the raw one: the exact body)?"""
    if CLIENTS[name].yields_bytes:
        got = b"".join(pieces)
        want = b"".join(render_events(n))
        return got == want, hashlib.sha1(got).hexdigest()
    text = "".join(pieces)
    return text == expected_text(n), hashlib.sha1(text.encode()).hexdigest()


async def _one_stream(state: State, name: str, base: str, t0: float) -> tuple[list[Any], float]:
    pieces: list[Any] = []
    first = 0.0
    async for piece in CLIENTS[name].stream(state, base):
        if not first:
            first = time.perf_counter()
        pieces.append(piece)
    return pieces, (first - t0 if first else float("nan"))


async def measure_stream(state: State, name: str, base: str, n: int) -> dict[str, Any]:
    """One stream, timed: wall, CPU of this process (all its threads), first chunk."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    pieces, ttfc = await _one_stream(state, name, base, t0)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    ok, sha = _check(name, n, pieces)
    return {"ok": ok, "wall_s": wall, "cpu_s": cpu, "ttfc_s": ttfc, "pieces": len(pieces),
            "sha": sha, "error": None if ok else "text differs from the expected text"}


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for dist in ("codelinkava", "aiohttp", "openai", "httpx", "pydantic", "litellm", "g4f"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def serve() -> None:
    out = _answer_channel()
    _raise_nofile_limit()
    state = State()
    with asyncio.Runner() as runner:
        for line in sys.stdin:
            cmd = json.loads(line)
            op = cmd.get("op")
            if op == "quit":
                break
            try:
                if op == "versions":
                    answer: dict[str, Any] = {"ok": True, "versions": versions()}
                elif op == "stream":
                    answer = runner.run(measure_stream(state, cmd["client"], cmd["base"], cmd["n"]))
                else:
                    answer = {"ok": False, "error": f"unknown op {op!r}"}
            except Exception as exc:
                traceback.print_exc()
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
            out.write(json.dumps(answer) + "\n")
        runner.run(state.aclose())


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


async def _concurrency(name: str, base: str, n: int, c: int, warm_base: str) -> dict[str, Any]:
    state = State()
    try:
        await measure_stream(state, name, warm_base, 5)  # imports, pools: not per-stream costs
        gc.collect()
        baseline = _rss_kib("VmRSS")
        exact_peak = _reset_peak_rss()
        c0 = time.process_time()
        t0 = time.perf_counter()
        results = await asyncio.gather(
            *(_one_stream(state, name, base, t0) for _ in range(c)), return_exceptions=True
        )
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        peak = _rss_kib("VmHWM")
    finally:
        await state.aclose()
    errors = [r for r in results if isinstance(r, BaseException)]
    good = [r for r in results if not isinstance(r, BaseException)]
    verified = sum(1 for pieces, _ in good if _check(name, n, pieces)[0])
    ttfcs = sorted(t for _, t in good)
    return {
        "ok": verified == c,
        "c": c, "n": n, "wall_s": wall, "cpu_s": cpu, "verified": verified,
        "chunks_per_s": c * n / wall,
        "ttfc_s": ttfcs,
        "baseline_rss_kib": baseline, "peak_rss_kib": peak, "exact_peak": exact_peak,
        "error": (f"{len(errors)} failed, first: {type(errors[0]).__name__}: {errors[0]}"[:500]
                  if errors else None if verified == c else f"{c - verified} streams differ"),
    }


def _decode_costs(n: int, piece: int, repeat: int) -> dict[str, float]:
    """µs per chunk of the parsers alone, on the body cut into `piece`-byte reads
    (piece 0: one read per event, as a paced stream arrives)."""
    from codelinkava.formats.openai_chunks import ChatStreamParser
    from codelinkava.formats.sse import SSEDecoder

    events = render_events(n)
    body = b"".join(events)
    pieces = [body[i : i + piece] for i in range(0, len(body), piece)] if piece else events
    payloads = [e[6:-2] for e in events[:-1]]
    loads = json.loads
    want = expected_text(n)

    def floor() -> str:
        out: list[str] = []
        buf = b""
        for data in pieces:
            *events, buf = (buf + data).split(b"\n\n")
            for event in events:
                payload = event[6:]
                if payload == b"[DONE]":
                    return "".join(out)
                content = loads(payload)["choices"][0]["delta"].get("content")
                if content:
                    out.append(content)
        return "".join(out)

    def ours() -> str:
        out: list[str] = []
        decoder = SSEDecoder()
        parser = ChatStreamParser()
        for data in pieces:
            for event in decoder.feed(data):
                text = parser.feed(event)
                if text is not None:
                    out.append(text)
                elif parser.done:
                    return "".join(out)
        return "".join(out)

    def sse_only() -> str:
        decoder = SSEDecoder()
        for data in pieces:
            decoder.feed(data)
        return want

    def json_only() -> str:
        for data in payloads:
            loads(data)
        return want

    out: dict[str, float] = {}
    for label, fn in (("floor", floor), ("codelinkava", ours), ("codelinkava sse only", sse_only),
                      ("json.loads only", json_only)):
        assert fn() == want, label
        best = float("inf")
        for _ in range(repeat):
            c0 = time.process_time()
            fn()
            best = min(best, time.process_time() - c0)
        out[label] = best / n * 1e6
    return out


async def _profile(name: str, base: str, n: int, repeat: int) -> dict[str, Any]:
    import cProfile
    import pstats

    state = State()
    try:
        await measure_stream(state, name, base, n)  # warm
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(repeat):
            await measure_stream(state, name, base, n)
        prof.disable()
    finally:
        await state.aclose()
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    rows = []
    for (path, line, func), (_cc, calls, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = path.split("site-packages/")[-1].split("/src/")[-1]
        rows.append({"func": f"{short}:{line}({func})", "calls": calls,
                     "tottime_us_per_chunk": tt / (n * repeat) * 1e6,
                     "cumtime_us_per_chunk": ct / (n * repeat) * 1e6})
    rows.sort(key=lambda r: -r["tottime_us_per_chunk"])
    return {"ok": True, "total_us_per_chunk": total / (n * repeat) * 1e6, "top": rows[:25]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.runner")
    sub = parser.add_subparsers(dest="op", required=True)
    sub.add_parser("serve")
    conc = sub.add_parser("concurrency")
    prof = sub.add_parser("profile")
    for p in (conc, prof):
        p.add_argument("--client", required=True, choices=sorted(CLIENTS))
        p.add_argument("--base", required=True)
        p.add_argument("--n", type=int, required=True)
    conc.add_argument("-c", type=int, required=True)
    conc.add_argument("--warm-base", required=True)
    prof.add_argument("--repeat", type=int, default=3)
    prof.add_argument("--decode-n", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.op == "serve":
        serve()
        return
    out = _answer_channel()
    _raise_nofile_limit()
    try:
        if args.op == "concurrency":
            answer = asyncio.run(
                _concurrency(args.client, args.base, args.n, args.c, args.warm_base))
        else:
            answer = asyncio.run(_profile(args.client, args.base, args.n, args.repeat))
            answer["decode_fast"] = _decode_costs(args.decode_n, 65536, 5)
            answer["decode_paced"] = _decode_costs(args.decode_n, 0, 5)
    except Exception as exc:
        traceback.print_exc()
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    out.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
