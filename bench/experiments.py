"""`python -m bench.experiments`: where does codelinkava's per-chunk CPU go?

Not part of the report run. It measures variants of the codelinkava client
side by side (interleaved rounds, one process, the source server in its own)
so that a proposed change to `src/codelinkava` comes with before/after
numbers. Variants that need a different implementation patch it in here, in
this process only; nothing under `src/` is changed.

    .venv/bin/python -m bench.experiments [--n 2000] [--paced-n 300] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from bench.clients import MESSAGES, MODEL, State, floor
from bench.common import fmt, median, table
from bench.payload import expected_text
from bench.source import SourceServer

__all__ = ["main"]


async def as_is(base: str) -> AsyncIterator[str]:
    from codelinkava import CodeLinkAva

    async for text in CodeLinkAva.create_async_generator(
        MODEL, MESSAGES, api_url=base + "/api/chat"
    ):
        yield text


async def no_idle_timer(base: str) -> AsyncIterator[str]:
    """The same call with the idle limit off: no timer armed per read."""
    from codelinkava import CodeLinkAva, Timeouts

    async for text in CodeLinkAva.create_async_generator(
        MODEL, MESSAGES, api_url=base + "/api/chat", timeout=Timeouts(idle=None)
    ):
        yield text


async def core_only(base: str) -> AsyncIterator[str]:
    """`_chat.stream_chat` consumed directly: one async-generator layer fewer."""
    from codelinkava import CodeLinkAva
    from codelinkava.config import split_options
    from codelinkava.core.stream import stream_chat

    options, extra = split_options({})
    body = {"messages": MESSAGES, "temperature": 0.6, "stream": True, **extra}
    headers = {**CodeLinkAva.headers(), "Content-Type": "application/json"}
    async for text in stream_chat(base + "/api/chat", headers, body, options):
        yield text


async def watchdog_timer(base: str) -> AsyncIterator[str]:
    """As is, with `AiohttpResponse.read_chunk` using one lazily re-armed timer per response."""
    async for text in as_is(base):
        yield text


async def floor_(base: str) -> AsyncIterator[str]:
    async for text in floor(_STATE, base):
        yield text


_STATE = State()


def _install_watchdog() -> Callable[[], None]:
    """Patch Response.read_chunk: instead of `asyncio.timeout_at` around every wait
    (a TimerHandle pushed on the loop's heap and cancelled per read), keep one
    timer per response; when it fires it checks the current deadline and re-arms
    itself if the deadline moved, else cancels the waiting task."""
    import aiohttp

    from codelinkava.errors import ProviderTimeoutError, StreamTruncatedError
    from codelinkava.transports import aiohttp as _http

    original = _http.AiohttpResponse.read_chunk
    state: dict[int, list[Any]] = {}  # id(response) -> [deadline, handle, task, fired]

    def _fire(key: int) -> None:
        entry = state.get(key)
        if entry is None:
            return
        deadline, _, task, _ = entry
        loop = asyncio.get_running_loop()
        if deadline is None or task is None:
            entry[1] = None
            return
        if loop.time() < deadline:
            entry[1] = loop.call_at(deadline, _fire, key)
            return
        entry[1] = None
        entry[3] = True
        task.cancel()

    async def read_chunk(self: Any, deadline: float | None, phase: str) -> bytes:
        content = self._content
        try:
            data = content.read_nowait()
            if not data and not content.at_eof():
                if deadline is None:
                    data = await content.readany()
                else:
                    key = id(self)
                    entry = state.get(key)
                    loop = asyncio.get_running_loop()
                    if entry is None:
                        entry = state[key] = [deadline, None, None, False]
                    entry[0] = deadline
                    entry[2] = asyncio.current_task()
                    if entry[1] is None or entry[1].when() > deadline:
                        if entry[1] is not None:
                            entry[1].cancel()
                        entry[1] = loop.call_at(deadline, _fire, key)
                    try:
                        data = await content.readany()
                    except asyncio.CancelledError:
                        task = asyncio.current_task()
                        if entry[3] and task is not None and task.uncancel() == 0:
                            entry[3] = False  # our own cancel: it is a timeout
                            raise TimeoutError from None
                        raise
                    finally:
                        entry[2] = None
        except TimeoutError:
            raise ProviderTimeoutError(_http.timeout_message(phase), phase=phase) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError) as exc:
            raise StreamTruncatedError(f"broke: {exc}") from exc
        self.bytes_read += len(data)
        if not data:
            entry = state.pop(id(self), None)
            if entry is not None and entry[1] is not None:
                entry[1].cancel()
        return data

    original_close = _http.AiohttpResponse.close

    def close(self: Any) -> None:
        entry = state.pop(id(self), None)
        if entry is not None and entry[1] is not None:
            entry[1].cancel()
        original_close(self)

    def undo() -> None:
        _http.AiohttpResponse.read_chunk = original  # type: ignore[method-assign]
        _http.AiohttpResponse.close = original_close  # type: ignore[method-assign]

    _http.AiohttpResponse.read_chunk = read_chunk  # type: ignore[method-assign]
    _http.AiohttpResponse.close = close  # type: ignore[method-assign]
    return undo


VARIANTS: dict[str, Callable[[str], AsyncIterator[str]]] = {
    "floor": floor_,
    "codelinkava as is": as_is,
    "idle timeout off (no timer per read)": no_idle_timer,
    "one generator layer fewer (stream_chat directly)": core_only,
    "one watchdog timer per response (patched read_chunk)": watchdog_timer,
}


async def _measure(variant: str, base: str, n: int) -> float:
    undo = _install_watchdog() if variant.startswith("one watchdog") else None
    try:
        c0 = time.process_time()
        parts = [text async for text in VARIANTS[variant](base)]
        cpu = time.process_time() - c0
    finally:
        if undo:
            undo()
    assert "".join(parts) == expected_text(n), variant
    return cpu / n * 1e6


async def _timer_cost(n: int = 200_000) -> str:
    """The bare cost of `asyncio.timeout_at` around an await, on an otherwise idle loop."""
    loop = asyncio.get_running_loop()
    c0 = time.process_time()
    for _ in range(n):
        await asyncio.sleep(0)
    bare = (time.process_time() - c0) / n * 1e6
    c0 = time.process_time()
    for _ in range(n):
        async with asyncio.timeout_at(loop.time() + 30):
            await asyncio.sleep(0)
    timed = (time.process_time() - c0) / n * 1e6
    return (f"await asyncio.sleep(0): {bare:.2f} µs; "
            f"inside asyncio.timeout_at: +{timed - bare:.2f} µs")


async def _run(args: argparse.Namespace) -> None:
    print(await _timer_cost())
    with SourceServer() as src:
        for mode, base, n in (("fast", src.url(args.n), args.n),
                              ("paced", src.url(args.paced_n, args.delay_us), args.paced_n)):
            results: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for variant in VARIANTS:
                await _measure(variant, base, n)  # warm-up
            for _ in range(args.rounds):
                for variant in VARIANTS:
                    results[variant].append(await _measure(variant, base, n))
            floor_cpu = median(results["floor"])
            rows = [[v, fmt(median(r), 2), f"{fmt(min(r), 2)}–{fmt(max(r), 2)}",
                     f"{median(r) / floor_cpu:.2f}×"] for v, r in results.items()]
            print(f"\n{mode}: {n} chunks" + (f", {args.delay_us} µs apart" if mode == "paced"
                                             else "") + f", {args.rounds} rounds\n")
            print(table(["variant", "CPU µs/chunk (median)", "min–max", "× floor"], rows))
    await _STATE.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.experiments")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--paced-n", type=int, default=300)
    parser.add_argument("--delay-us", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
