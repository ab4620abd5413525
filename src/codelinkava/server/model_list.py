"""`ModelList`: the models an upstream lists, kept for a short time, and what to say when
asking fails.

`/v1/models` and the default model of a request that names none must be names the
upstream serves (a vLLM or llama.cpp server answers any other with a 404), but
asking the upstream on every request would put a round trip in the hot path. So the
list is asked for at start-up and whenever `/v1/models` finds it older than `ttl`;
the hot path only reads it (`names()`), and starts a refresh in the background when
it is due. One question is in flight at a time, however many callers wait for it.
A failed question never fails a caller: the last good list stays, else the name the
provider serves by default; it is logged once when the upstream stops answering, and
asked again after `retry_after` seconds (at most `ttl`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from codelinkava.errors import ProviderError

__all__ = ["LISTING_DEADLINE", "RETRY_AFTER_FAILURE", "ModelList"]

log = logging.getLogger("codelinkava.server")

#: The longest one question may take, whatever the provider's own limit.
LISTING_DEADLINE = 10.0
#: How soon a question that failed is asked again (at most `ttl`).
RETRY_AFTER_FAILURE = 5.0


class ModelList:
    """The names `ask()` answers, cached for `ttl` seconds; `fallback` until one answers."""

    def __init__(
        self,
        ask: Callable[[], Awaitable[list[str]]],
        fallback: str,
        ttl: float,
        *,
        retry_after: float = RETRY_AFTER_FAILURE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ttl >= 0:
            raise ValueError(f"the model list's ttl must be >= 0 seconds, got {ttl!r}")
        self._ask = ask
        self.fallback = fallback
        self.ttl = ttl
        self.retry_after = min(retry_after, ttl)
        self._clock = clock
        #: The last good answer; None until one came.
        self._names: list[str] | None = None
        #: When the last question ended (None: never asked), and whether it failed.
        self._asked_at: float | None = None
        self._failed = False
        self._pending: asyncio.Task[None] | None = None

    def names(self) -> list[str]:
        """What to list now, without waiting (the hot path: one clock read). Once the
        upstream has been asked, a list past its time is refreshed in the background."""
        if self._asked_at is not None and self._due():
            self._start_refresh()
        return list(self._names) if self._names else [self.fallback]

    async def fresh_names(self) -> list[str]:
        """What to list, asking the upstream first when the last answer is past its time."""
        if self._due():
            task = self._start_refresh()
            if task is not None:
                # shield: a caller that leaves does not cancel the question others wait on.
                await asyncio.shield(task)
        return list(self._names) if self._names else [self.fallback]

    async def aclose(self) -> None:
        """Cancel a question still in flight (at shutdown)."""
        task, self._pending = self._pending, None
        if task is None or task.done():
            return
        if task.get_loop() is not asyncio.get_running_loop():  # started by another loop's caller
            task.get_loop().call_soon_threadsafe(task.cancel)
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def _due(self) -> bool:
        if self._asked_at is None:
            return True
        wait = self.retry_after if self._failed else self.ttl
        return self._clock() - self._asked_at >= wait

    def _start_refresh(self) -> asyncio.Task[None] | None:
        """The question in flight, started if none is; None outside an event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        task = self._pending
        if task is None or task.done() or task.get_loop() is not loop:
            task = self._pending = loop.create_task(self._refresh(), name="model-list")
        return task

    async def _refresh(self) -> None:
        """Ask once; keep a good answer, log a failure, never raise."""
        try:
            async with asyncio.timeout(LISTING_DEADLINE):
                names = await self._ask()
        except Exception as exc:  # a failed listing must never fail a caller
            self._fail(f"{type(exc).__name__}: {exc}", exc)
            return
        names = [name for name in dict.fromkeys(names) if isinstance(name, str) and name]
        if not names:
            self._fail("the upstream lists no models", None)
            return
        self._names, self._failed, self._asked_at = names, False, self._clock()

    def _fail(self, why: str, exc: BaseException | None) -> None:
        serving = ", ".join(self._names) if self._names else self.fallback
        # Once when the upstream stops answering, not on every retry while it stays down.
        level = logging.DEBUG if self._failed else logging.WARNING
        # A bug behind the hook (not one of its typed errors) is logged with its traceback.
        unexpected = exc is not None and not isinstance(exc, ProviderError | TimeoutError)
        log.log(
            logging.ERROR if unexpected else level,
            "could not list the upstream's models (%s); serving %s",
            why,
            serving,
            exc_info=exc if unexpected else None,
        )
        self._failed, self._asked_at = True, self._clock()
