"""llama.cpp's thread count under load: fixed settings against the engine's own choice.

    python -m bench.local_threads [--quick]     writes bench/results/local_threads.md

For each setting (`CODELINKAVA_LLAMA_THREADS` = 1, 2 ... up to the cores, and
`auto`: chosen by the engine for each job) a `codelinkava serve` subprocess
serves the local model on 127.0.0.1, and two loads are measured through it:

- 1 stream: one request at a time (a person chatting);
- 4 streams: four clients at once, each sending its next request when its
  answer ends (jobs queue on the engine's worker);
- 1 stream + a busy core: as the first, while another process spins on one
  core (a second worker's engine, a build, a test suite): where llama.cpp's
  spinning threads wait on the one the scheduler parked.

The figure is answer tokens per second over the whole load, client-side; the
settings run in interleaved rounds whose order alternates, each measurement after
a second of quiet (untimed), and each figure is a median over rounds. Target
(issue 14): `auto` >= 0.95x the best fixed setting for each load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.local_model import PROMPTS, Gateway
from codelinkava.providers._llama_engine import THREADS_ENV, usable_cores
from codelinkava.providers.local import DEFAULT_SAMPLING, default_model_path

__all__ = ["main", "render", "run"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "local_threads.md"
TARGET = 0.95
#: Seconds of quiet before each measurement (not timed).
SETTLE = 1.0
#: name -> (concurrent streams, whether another process keeps one core busy)
LOADS = {"1 stream": (1, False), "4 streams": (4, False), "1 stream + a busy core": (1, True)}
_SPIN = "import time\nend = time.monotonic() + 120\nwhile time.monotonic() < end: pass\n"


async def _client(
    session: aiohttp.ClientSession,
    url: str,
    model: str,
    first: int,
    requests: int,
    tokens: int,
    ttfts: list[float],
) -> int:
    """Send `requests` answers one after the other; the answer tokens received (and each
    answer's time to its first token appended to `ttfts`, in ms)."""
    received = 0
    for i in range(requests):
        sent = time.perf_counter()
        seen = received
        body = {
            "model": model,
            "messages": [{"role": "user", "content": PROMPTS[(first + i) % len(PROMPTS)]}],
            "stream": True,
            "max_tokens": tokens,
            "temperature": DEFAULT_SAMPLING["temperature"],
            "seed": DEFAULT_SAMPLING["seed"],
        }
        async with session.post(f"{url}/v1/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.content:
                if line.startswith(b"data: {") and json.loads(line[6:])["choices"][0]["delta"].get(
                    "content"
                ):
                    if received == seen:
                        ttfts.append((time.perf_counter() - sent) * 1000)
                    received += 1
    return received


async def _load(gateway: Gateway, streams: int, requests: int, tokens: int) -> tuple[float, float]:
    """(answer tokens per second, median time to first token in ms) with `streams`
    clients at once."""
    ttfts: list[float] = []
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        counts = await asyncio.gather(
            *(
                _client(session, gateway.url, gateway.model, s, requests, tokens, ttfts)
                for s in range(streams)
            )
        )
        return sum(counts) / (time.perf_counter() - started), statistics.median(ttfts)


def _measure(gateway: Gateway, load: str, requests: int, tokens: int) -> tuple[float, float]:
    """One load on one gateway; a spinning process beside it where the load says so
    (ended when the load ends, or after 120 s whatever happens)."""
    streams, busy = LOADS[load]
    # Untimed: the gateway measured just before must not be the load this one sees at
    # its first look (a person's next question does not start within a millisecond of
    # another process's last token either).
    time.sleep(SETTLE)
    spinner = subprocess.Popen([sys.executable, "-c", _SPIN]) if busy else None
    try:
        if spinner is not None:
            time.sleep(0.3)  # let the engine see it before the first job
        return asyncio.run(_load(gateway, streams, requests, tokens))
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def run(quick: Any = False) -> dict[str, Any]:
    """Measure every setting under every load; `quick` is a bool or `python -m bench`'s Config."""
    quick = bool(getattr(quick, "quick", quick))
    rounds, requests, tokens = (2, 2, 24) if quick else (5, 2, 64)
    cores = usable_cores()
    settings = [str(n) for n in range(1, cores + 1)] + ["auto"]
    model_path = default_model_path()
    gateways = {name: Gateway(model_path, env={THREADS_ENV: name}) for name in settings}
    figures: dict[str, dict[str, list[float]]] = {n: {load: [] for load in LOADS} for n in settings}
    ttfts: dict[str, dict[str, list[float]]] = {n: {load: [] for load in LOADS} for n in settings}
    try:
        for gateway in gateways.values():  # warm-up, not counted
            asyncio.run(_load(gateway, 1, 1, tokens))
        for rnd in range(rounds):
            order = settings if rnd % 2 == 0 else settings[::-1]
            for load in LOADS:
                for name in order:
                    rate, ttft = _measure(gateways[name], load, requests, tokens)
                    figures[name][load].append(rate)
                    ttfts[name][load].append(ttft)
    finally:
        for gateway in gateways.values():
            gateway.close()
    medians = {n: {load: statistics.median(v) for load, v in f.items()} for n, f in figures.items()}
    return {
        "quick": quick,
        "cores": cores,
        "rounds": rounds,
        "requests_per_stream": requests,
        "max_tokens": tokens,
        "figures": figures,
        "medians": medians,
        "ttft_ms": {
            n: {load: statistics.median(v) for load, v in f.items()} for n, f in ttfts.items()
        },
    }


def render(data: dict[str, Any], out_dir: Path | None = None) -> str:
    """The results as a Markdown section."""
    medians = data["medians"]
    fixed = [n for n in medians if n != "auto"]
    loads = list(next(iter(medians.values())))
    rows = ["| threads | " + " | ".join(f"{load}: tokens/s (range)" for load in loads) + " |"]
    rows.append("|---|" + "---|" * len(loads))
    for name in medians:
        cells = []
        for load in loads:
            values = data["figures"][name][load]
            cells.append(
                f"{medians[name][load]:.1f} ({min(values):.1f}-{max(values):.1f}); "
                f"first token {data['ttft_ms'][name][load]:.0f} ms"
            )
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    verdicts = []
    for load in loads:
        best = max(fixed, key=lambda n: medians[n][load])
        ratio = medians["auto"][load] / medians[best][load]
        met = "met" if ratio >= TARGET else "MISSED"
        verdicts.append(
            f"- {load}: auto is {ratio:.3f}x the best fixed setting ({best} "
            f"thread(s)): **{met}** (target >= {TARGET})."
        )
    return "\n".join(
        [
            "## The local model's threads under load",
            "",
            f"{data['cores']} usable cores; `{THREADS_ENV}` fixed at each count, and `auto`; "
            f"{data['rounds']} interleaved rounds, {data['requests_per_stream']} requests per "
            f"stream, max_tokens {data['max_tokens']}; median answer tokens/s through the "
            f"gateway (range over rounds).{' QUICK RUN.' if data['quick'] else ''}",
            "",
            *rows,
            "",
            *verdicts,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_threads", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 rounds, 2 requests, 24 tokens")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"default {RESULTS}")
    args = parser.parse_args(argv)
    text = render(run(args.quick))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
