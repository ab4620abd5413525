"""One llama.cpp model on one worker thread, fed by an asyncio-friendly queue.

llama.cpp is blocking and not thread-safe, so each loaded model gets a single
worker thread that loads it and runs every generation on it, one job at a
time, first come first served. Callers on any event loop submit a job and
await its pieces; each token is handed over with `call_soon_threadsafe`.
When the caller goes away (break, cancel, client disconnect) it sets the
job's stop flag; the worker checks it after every token, so at most one more
token is generated -- `Job.tokens` lets tests and benchmarks prove it.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidRequestError, ProviderError

__all__ = ["Engine", "EngineStats", "Job"]

_END = object()


@dataclass
class EngineStats:
    """Counters a benchmark or the gateway's /health can read."""

    load_seconds: float | None = None
    jobs_done: int = 0
    jobs_stopped: int = 0  # ended early because the caller went away
    tokens: int = 0


@dataclass
class Job:
    """One generation request and what became of it."""

    messages: list[dict[str, Any]]
    params: dict[str, Any]
    deliver: Callable[[object], None]
    stop: threading.Event = field(default_factory=threading.Event)
    tokens: int = 0  # tokens generated for this job
    tokens_after_stop: int = 0  # tokens generated after stop was asked (at most 1)
    prompt_tokens: int = 0
    finish_reason: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.tokens,
            "total_tokens": self.prompt_tokens + self.tokens,
        }


def _default_threads() -> int:
    """Half the cores this process may use (llama-cpp-python's own default), at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // 2)


class Engine:
    """A model file, loaded lazily on its own worker thread."""

    def __init__(self, model_path: str, *, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.stats = EngineStats()
        self.last_job: Job | None = None
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._llm: Any = None
        self._load_error: BaseException | None = None
        self._loaded = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"codelinkava-llama-{id(self):x}", daemon=True
        )
        self._thread.start()

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set() and self._load_error is None

    async def wait_loaded(self) -> None:
        """Wait (without blocking the loop) until the model is loaded; raise if it could not be."""
        if not self._loaded.is_set():
            await asyncio.get_running_loop().run_in_executor(None, self._loaded.wait)
        if self._load_error is not None:
            raise ProviderError(
                f"could not load the model {self.model_path}: {self._load_error}"
            ) from self._load_error

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            from llama_cpp import Llama

            threads = self.n_threads or _default_threads()
            self._llm = Llama(
                model_path=self.model_path,
                n_ctx=self.n_ctx,
                n_threads=threads,
                # NOTE: llama-cpp-python's default batch threads is every core. On a small
                # machine that shares its cores (our event loop, other processes) those
                # threads spin-wait on each other: measured on 2 cores, a 40-word prompt
                # took 1.5-2.4 s with 2 batch threads and 0.18 s with 1.
                n_threads_batch=threads,
                verbose=False,
            )
            self.stats.load_seconds = time.perf_counter() - started
        except BaseException as exc:  # reported to every caller by wait_loaded()
            self._load_error = exc
        finally:
            self._loaded.set()
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._generate(job)

    def _generate(self, job: Job) -> None:
        self.last_job = job
        try:
            if self._load_error is not None:
                raise ProviderError(f"the model is not loaded: {self._load_error}")
            if job.stop.is_set():
                self.stats.jobs_stopped += 1
                return
            stream = self._llm.create_chat_completion(job.messages, stream=True, **job.params)
            try:
                for chunk in stream:
                    choice = chunk["choices"][0]
                    if choice.get("finish_reason"):
                        job.finish_reason = choice["finish_reason"]
                    content = choice["delta"].get("content")
                    if not content:
                        continue
                    job.tokens += 1
                    self.stats.tokens += 1
                    if job.stop.is_set():
                        job.tokens_after_stop += 1
                        break
                    job.deliver(content)
            finally:
                stream.close()  # stops llama.cpp's generation loop at once
            # The context now holds the prompt and every sampled token.
            job.prompt_tokens = max(0, int(self._llm.n_tokens) - job.tokens)
            if job.stop.is_set():
                self.stats.jobs_stopped += 1
            else:
                self.stats.jobs_done += 1
            job.deliver(_END)
        except ValueError as exc:  # llama-cpp-python's "Requested tokens exceed context window"
            job.deliver(InvalidRequestError(f"the conversation does not fit the model: {exc}"))
        except BaseException as exc:
            job.deliver(
                exc
                if isinstance(exc, ProviderError)
                else ProviderError(f"generation failed: {exc}")
            )
        finally:
            job.done.set()

    async def generate(
        self,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        *,
        on_job: Callable[[Job], None] | None = None,
    ) -> AsyncGenerator[str, None]:
        """Queue a job and yield its text pieces as the worker produces them.

        `on_job` receives the job when it is queued: its finish_reason and usage
        are the caller's to read once the pieces end.
        """
        await self.wait_loaded()
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[object] = asyncio.Queue()

        def deliver(item: object) -> None:
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, item)
            except RuntimeError:  # the caller's loop is closed: it left long ago
                job.stop.set()

        job = Job(messages=messages, params=params, deliver=deliver)
        if on_job is not None:
            on_job(job)
        self._jobs.put(job)
        try:
            while True:
                item = await pieces.get()
                if item is _END:
                    from .._stream_info import report_stream_info

                    report_stream_info(finish_reason=job.finish_reason or "stop", usage=job.usage())
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            job.stop.set()

    def close(self) -> None:
        """Stop the worker after the jobs already queued."""
        self._jobs.put(None)
