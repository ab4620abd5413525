"""Iterate an async generator from synchronous code, wherever that code runs.

`create_completion` must work from plain scripts, from worker threads, and
from inside a running event loop (Jupyter, bot frameworks) without
nest_asyncio. So the async generator never runs on the caller's thread: it
runs on one long-lived daemon thread with its own event loop, shared by every
sync call. That loop also keeps its pooled HTTP session, so sync callers
reuse connections too.

A pump task on that loop drives the generator and hands items to the caller
through a thread-safe queue (one handoff per item, not one coroutine
submission per item, which measured several times slower). When the caller
stops early -- break, close(), an exception, Ctrl-C -- the pump task is
cancelled, which closes the generator and its HTTP response, and the caller
waits for that to finish before going on.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import queue
import sys
import threading
from collections.abc import AsyncGenerator, Iterator
from typing import TypeVar

from ..errors import ProviderError

__all__ = ["iterate_sync"]

T = TypeVar("T")
_CLOSE_WAIT_SECONDS = 10.0


class _LoopThread:
    """A daemon thread running an event loop, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=run, name="codelinkava-sync-bridge", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def is_current(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def shutdown(self) -> None:
        """Close the loop's HTTP session and stop the loop (at interpreter exit)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        if "codelinkava.transports.aiohttp" in sys.modules:
            from ..transports import aiohttp as transport

            future = asyncio.run_coroutine_threadsafe(transport.aclose_session(), loop)
            with contextlib.suppress(Exception):  # best effort at exit
                future.result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    def forget(self) -> None:
        """After fork the thread is gone in the child; start afresh there."""
        self._lock = threading.Lock()
        self._loop = self._thread = None


_bridge = _LoopThread()
atexit.register(_bridge.shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_bridge.forget)

_ITEM, _END, _ERROR = 0, 1, 2


def iterate_sync(agen: AsyncGenerator[T, None]) -> Iterator[T]:
    """Yield the items of `agen`, which runs on the bridge loop."""
    if _bridge.is_current():
        raise ProviderError(
            "create_completion was called on codelinkava's own loop thread; "
            "use create_async_generator there"
        )
    loop = _bridge.loop()
    items: queue.SimpleQueue[tuple[int, object]] = queue.SimpleQueue()
    finished = threading.Event()

    async def pump() -> None:
        try:
            async for item in agen:
                items.put((_ITEM, item))
            items.put((_END, None))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the caller, who re-raises it
            items.put((_ERROR, exc))
        finally:
            await agen.aclose()

    task_future = asyncio.run_coroutine_threadsafe(pump(), loop)
    # A done callback, not a line in pump(): a task cancelled before its first
    # step never runs its body, but still completes.
    task_future.add_done_callback(lambda _: finished.set())
    try:
        while True:
            kind, value = items.get()
            if kind == _ITEM:
                yield value  # type: ignore[misc]
            elif kind == _END:
                return
            else:
                assert isinstance(value, BaseException)
                raise value.with_traceback(value.__traceback__)
    finally:
        if not finished.is_set():
            task_future.cancel()  # thread-safe: it cancels the task on its own loop
            finished.wait(_CLOSE_WAIT_SECONDS)
