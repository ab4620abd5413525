"""The local model through the gateway vs llama-cpp-python called directly, in one run.

    python -m bench.local_model [--quick]     writes bench/results/local_model.md

Both sides run the same GGUF file with the same threads, prompts and sampling
(seeded, so they generate the same tokens -- checked), in interleaved rounds
whose order alternates (ABBA), and each figure is a median:

- direct: `Llama.create_chat_completion(stream=True)` in this process; time to
  the first content delta, and decode speed from there to the last one.
- gateway: `codelinkava serve` in a subprocess on 127.0.0.1, a streaming HTTP
  client (aiohttp, one keep-alive session) on `/v1/chat/completions`; the same
  two times, seen by the client, so they include the engine's thread hop, the
  event loop, SSE framing, the socket and the client's JSON parsing.

Targets (issue 3): gateway throughput >= 0.95 of direct, < 5 ms added first-token time.
Used by `python -m bench` as a section too: `run(config)` accepts its Config.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from codelinkava.providers._llama_engine import THREADS_ENV, fixed_threads, usable_cores
from codelinkava.providers.local import DEFAULT_SAMPLING, LocalModel, default_model_path

__all__ = ["main", "render", "run"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "local_model.md"
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "What should I pack for a weekend hiking trip?",
    "Describe the water cycle.",
    "Give me some tips for learning a new language.",
]
TARGET_RATIO = 0.95
TARGET_ADDED_TTFT_MS = 5.0


@dataclass
class Sample:
    """One generation, seen from the caller."""

    side: str  # "direct" or "gateway"
    prompt: int
    round: int
    ttft_ms: float  # request sent -> first content token received
    decode_tps: float  # tokens after the first / time from the first to the last
    total_tps: float  # all tokens / time from the request to the last token
    tokens: int
    text: str


def _sampling(max_tokens: int) -> dict[str, Any]:
    return {**DEFAULT_SAMPLING, "max_tokens": max_tokens}


def _sample(
    side: str, prompt: int, rnd: int, started: float, times: list[float], text: str
) -> Sample:
    end = times[-1] if times else started
    decode = (len(times) - 1) / (end - times[0]) if len(times) > 1 and end > times[0] else 0.0
    return Sample(
        side=side,
        prompt=prompt,
        round=rnd,
        ttft_ms=(times[0] - started) * 1000 if times else float("nan"),
        decode_tps=decode,
        total_tps=len(times) / (end - started) if times else 0.0,
        tokens=len(times),
        text=text,
    )


class Direct:
    """llama-cpp-python as a user would call it, configured as the gateway's engine is."""

    def __init__(self, model_path: str, threads: int) -> None:
        from codelinkava.providers._llama_check import checked_settings
        from codelinkava.providers._llama_setup import open_llama

        # The settings the engine runs with here (plain buffers on an AMX CPU, where
        # llama.cpp's AMX kernels crash), so both sides run the same kernels.
        self.llm: Any = open_llama(
            model_path,
            checked_settings(model_path),
            n_ctx=2048,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )

    def generate(self, prompt: int, rnd: int, params: dict[str, Any]) -> Sample:
        messages = [{"role": "user", "content": PROMPTS[prompt]}]
        times: list[float] = []
        parts: list[str] = []
        started = time.perf_counter()
        for chunk in self.llm.create_chat_completion(messages, stream=True, **params):
            content = chunk["choices"][0]["delta"].get("content")
            if content:
                times.append(time.perf_counter())
                parts.append(content)
        return _sample("direct", prompt, rnd, started, times, "".join(parts))


class Gateway:
    """`codelinkava serve` in a subprocess, and a streaming client for it."""

    def __init__(self, model_path: str, env: dict[str, str] | None = None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CODELINKAVA_MODEL_PATH": model_path, **(env or {})}
        env.pop("CODELINKAVA_API_KEY", None)
        command = [sys.executable, "-m", "codelinkava.cli", "serve", "--port", str(self.port)]
        command += ["--log-level", "warning", "--grace", "1"]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the gateway did not start")
            time.sleep(0.05)
        self.model = Path(model_path).stem
        self.runner = asyncio.Runner()
        self.session: aiohttp.ClientSession = self.runner.run(self._session())

    @staticmethod
    async def _session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def generate(self, prompt: int, rnd: int, params: dict[str, Any]) -> Sample:
        return self.runner.run(self._generate(prompt, rnd, params))

    async def _generate(self, prompt: int, rnd: int, params: dict[str, Any]) -> Sample:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": PROMPTS[prompt]}],
            "stream": True,
            # repeat_penalty is not an OpenAI field: both sides use the engine's default.
            **{k: params[k] for k in ("temperature", "top_p", "seed", "max_tokens")},
        }
        times: list[float] = []
        parts: list[str] = []
        started = time.perf_counter()
        async with self.session.post(f"{self.url}/v1/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.content:
                if not line.startswith(b"data: {"):
                    continue
                content = json.loads(line[6:])["choices"][0]["delta"].get("content")
                if content:
                    times.append(time.perf_counter())
                    parts.append(content)
        return _sample("gateway", prompt, rnd, started, times, "".join(parts))

    def close(self) -> None:
        if hasattr(self, "runner"):
            self.runner.run(self.session.close())
            self.runner.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run(quick: Any = False) -> dict[str, Any]:
    """Measure both sides; `quick` is a bool, or `python -m bench`'s Config (its `.quick`)."""
    quick = bool(getattr(quick, "quick", quick))
    rounds, prompts, max_tokens = (2, 2, 32) if quick else (5, len(PROMPTS), 128)
    model_path = default_model_path()
    threads = fixed_threads() or usable_cores()
    params = _sampling(max_tokens)
    load = os.getloadavg()
    direct = Direct(model_path, threads)
    # The same threads on both sides: this compares the paths, not thread policies
    # (`bench/local_threads.py` measures the engine's own choice by load).
    gateway = Gateway(model_path, env={THREADS_ENV: str(threads)})
    samples: list[Sample] = []
    try:
        for side in (direct, gateway):  # warm-up: the first batch of each kind is slow
            for p in range(prompts):
                side.generate(p, -1, params)
        for rnd in range(rounds):
            for p in range(prompts):
                order = (direct, gateway) if (rnd + p) % 2 == 0 else (gateway, direct)
                for side in order:
                    samples.append(side.generate(p, rnd, params))
    finally:
        gateway.close()
    return _summarise(samples, quick, threads, max_tokens, rounds, prompts, load)


def _summarise(
    samples: list[Sample],
    quick: bool,
    threads: int,
    max_tokens: int,
    rounds: int,
    prompts: int,
    load: tuple[float, float, float],
) -> dict[str, Any]:
    by_side = {side: [s for s in samples if s.side == side] for side in ("direct", "gateway")}
    pairs = [
        (d, g)
        for d in by_side["direct"]
        for g in by_side["gateway"]
        if (d.prompt, d.round) == (g.prompt, g.round)
    ]
    summary = {
        side: {
            "ttft_ms": _median([s.ttft_ms for s in got]),
            "decode_tps": _median([s.decode_tps for s in got]),
            "total_tps": _median([s.total_tps for s in got]),
            "tokens": _median([float(s.tokens) for s in got]),
        }
        for side, got in by_side.items()
    }
    ratios = [g.decode_tps / d.decode_tps for d, g in pairs if d.decode_tps]
    total_ratios = [g.total_tps / d.total_tps for d, g in pairs if d.total_tps]
    added = [g.ttft_ms - d.ttft_ms for d, g in pairs]
    return {
        "quick": quick,
        "model": Path(default_model_path()).name,
        "served_as": LocalModel.default_model,
        "threads": threads,
        "max_tokens": max_tokens,
        "rounds": rounds,
        "prompts": prompts,
        "loadavg_before": [round(x, 2) for x in load],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "summary": summary,
        "decode_ratio": _median(ratios),
        "total_ratio": _median(total_ratios),
        "added_ttft_ms": _median(added),
        "added_ttft_ms_range": [min(added), max(added)] if added else [],
        "same_text": sum(d.text == g.text for d, g in pairs),
        "pairs": len(pairs),
        "samples": [asdict(s) | {"text": s.text[:40]} for s in samples],
    }


def render(data: dict[str, Any], out_dir: Path | None = None) -> str:
    """The results as a Markdown section."""
    s = data["summary"]
    ratio, added = data["decode_ratio"], data["added_ttft_ms"]
    ok_ratio = "met" if ratio >= TARGET_RATIO else "MISSED"
    ok_ttft = "met" if added < TARGET_ADDED_TTFT_MS else "MISSED"
    lo, hi = data["added_ttft_ms_range"] or [float("nan"), float("nan")]
    d, g = s["direct"], s["gateway"]
    rows = [
        (
            "time to first token (ms)",
            f"{d['ttft_ms']:.1f}",
            f"{g['ttft_ms']:.1f}",
            f"{added:+.2f} ms (paired median; range {lo:+.1f} to {hi:+.1f})",
        ),
        ("decode speed (tokens/s)", f"{d['decode_tps']:.1f}", f"{g['decode_tps']:.1f}",
         f"{ratio:.3f} x"),
        ("end-to-end (tokens/s)", f"{d['total_tps']:.1f}", f"{g['total_tps']:.1f}",
         f"{data['total_ratio']:.3f} x"),
        ("tokens per answer", f"{d['tokens']:.0f}", f"{g['tokens']:.0f}", ""),
    ]  # fmt: skip
    table = ["| median | direct llama-cpp-python | through the gateway | gateway vs direct |"]
    table.append("|---|---|---|---|")
    table += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(
        [
            "## The local model: gateway vs llama-cpp-python direct",
            "",
            f"{data['model']} (served as `{data['served_as']}`), {data['threads']} llama.cpp "
            f"thread(s), {data['prompts']} prompts x {data['rounds']} interleaved rounds (ABBA), "
            f"max_tokens {data['max_tokens']}, seeded sampling; one warm-up pass each, not "
            f"counted. Load average {data['loadavg_before']} before, "
            f"{data['loadavg_after']} after.{' QUICK RUN.' if data['quick'] else ''}",
            "",
            *table,
            "",
            f"- Throughput target (>= {TARGET_RATIO} of direct): **{ok_ratio}** ({ratio:.3f}).",
            f"- First-token target (< {TARGET_ADDED_TTFT_MS:.0f} ms added): **{ok_ttft}** "
            f"({added:+.2f} ms).",
            f"- Same text on both sides (same seed, same tokens): {data['same_text']} of "
            f"{data['pairs']} pairs.",
            "",
            "Direct: `Llama.create_chat_completion(stream=True)` in the benchmark process. "
            "Gateway: `codelinkava serve` in a subprocess; an aiohttp client streams "
            "`/v1/chat/completions` over 127.0.0.1 and parses each SSE chunk; times are the "
            "client's. Decode speed counts the tokens after the first over the time from the "
            "first to the last; end-to-end counts all tokens from sending the request.",
            "",
            "Both sides give llama.cpp as many batch (prompt) threads as generation threads. "
            "llama-cpp-python's default is every core for the batch: on these 2-core machines, "
            "shared with other work, a 40-word prompt then took 1.5-2.4 s instead of 0.18 s and "
            "the first answer after loading waited over 2 s for its first token (measured while "
            "fixing it in `providers/_llama_engine.py`).",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_model", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 prompts x 2 rounds, 32 tokens")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"default {RESULTS}")
    args = parser.parse_args(argv)
    data = run(args.quick)
    text = render(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
