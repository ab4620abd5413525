"""One llama.cpp model on one worker thread, fed by an asyncio-friendly queue.

llama.cpp is blocking and not thread-safe, so each loaded model gets a single
worker thread that loads it and runs every generation on it, one job at a
time, first come first served. Callers on any event loop submit a job and
await its pieces; each token is handed over with `call_soon_threadsafe`.
When the caller goes away (break, cancel, client disconnect) it sets the
job's stop flag; the worker checks it after every token, so at most one more
token is generated -- `Job.tokens` lets tests and benchmarks prove it.

The same question gets the same answer whatever was asked before. llama-cpp-python
reuses the KV cache of the longest prompt prefix the last job shared, so a prompt's
tokens were evaluated in batches whose split depended on the previous request, and
the logits differ in the last bits with the batch shape -- enough to flip a sampled
token at temperature 0.2. The worker therefore rewinds the context after every job to
one fixed prefix (the chat template's default start: system prompt and user header),
evaluated once, the same way, at load: every prompt is then split the same way every
time, at the cost of nothing for prompts that start with that prefix.

Before the load, `_llama_check` proves the model in a child process (a crash in
llama.cpp must not kill this one) and `_llama_setup` chooses how llama.cpp holds the
weights on this CPU. The thread count is every core other processes leave free,
looked at before each job and every 32 tokens (`_cpu_load`), unless fixed.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError, ProviderError
from ._cpu_load import CpuMeter, threads_for

if TYPE_CHECKING:
    from ._llama_setup import EngineSettings

__all__ = ["Engine", "EngineStats", "Job"]

log = logging.getLogger("codelinkava.local")

_END = object()
#: Tokens between two looks at the load within one answer (about half a second), and
#: an early look, which corrects a choice made on load that ended as the job began.
_REFIT_EVERY = 32
_REFIT_AT = frozenset({8})


@dataclass
class EngineStats:
    """What the worker has done; benchmarks and tests read it to prove generation stopped."""

    load_seconds: float | None = None
    jobs_done: int = 0
    jobs_stopped: int = 0  # ended early because the caller went away
    tokens: int = 0
    prefix_rebuilds: int = 0  # times the fixed prompt prefix was evaluated again
    threads: int = 0  # llama.cpp threads in use now
    thread_changes: int = 0  # times the load changed them


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


def _default_prompt_prefix(llm: Any) -> list[int]:
    """The tokens every prompt without a system message starts with, under the model's
    own chat template: where two one-word questions' prompts part. Empty (rewind to an
    empty context) when llama-cpp-python formats prompts some other way."""
    template = llm.metadata.get("tokenizer.chat_template")
    if llm.chat_handler is not None or llm.chat_format != "chat_template.default" or not template:
        return []
    try:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def text(token: int) -> str:
            return str(llm._model.token_get_text(token)) if token != -1 else ""

        formatter = Jinja2ChatFormatter(
            template=template, eos_token=text(llm.token_eos()), bos_token=text(llm.token_bos())
        )
        prompts = []
        for question in ("Hi", "Why?"):
            result = formatter(messages=[{"role": "user", "content": question}])
            prompts.append(
                llm.tokenize(result.prompt.encode(), add_bos=not result.added_special, special=True)
            )
    except Exception:  # an unusual template: no shared prefix, nothing lost but speed
        return []
    prefix: list[int] = []
    for first, second in zip(*prompts, strict=False):
        if first != second:
            break
        prefix.append(int(first))
    return prefix


#: A fixed llama.cpp thread count (generation and prompt), instead of one chosen by load.
THREADS_ENV = "CODELINKAVA_LLAMA_THREADS"


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fixed_threads(env: Mapping[str, str] | None = None) -> int | None:
    """The thread count `CODELINKAVA_LLAMA_THREADS` fixes, or None (chosen by load)."""
    value = (os.environ if env is None else env).get(THREADS_ENV, "").strip()
    if not value or value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise ProviderError(f"{THREADS_ENV}={value!r} is not a whole number >= 1 (or auto)")
    return int(value)


class Engine:
    """A model file, loaded lazily on its own worker thread."""

    def __init__(self, model_path: str, *, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        #: A fixed thread count (the argument, else CODELINKAVA_LLAMA_THREADS); None: by load.
        self.n_threads = n_threads or fixed_threads()
        self._cores = usable_cores()
        self._meter = CpuMeter() if self.n_threads is None else None
        self.stats = EngineStats()
        self.last_job: Job | None = None
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._llm: Any = None
        #: How llama.cpp was set up for this machine (known once loaded; see _llama_setup).
        self.settings: EngineSettings | None = None
        self._load_error: BaseException | None = None
        self._loaded = threading.Event()
        #: The tokens the context holds between jobs (see the module's docstring).
        self._prefix: list[int] = []
        self._grammar_checks: dict[str, bool] = {}
        self._grammar_lock = threading.Lock()
        self._exiting = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"codelinkava-llama-{id(self):x}", daemon=True
        )
        self._thread.start()
        atexit.register(self._stop_at_exit)

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set() and self._load_error is None

    @property
    def failure(self) -> str | None:
        """Why the model could not be loaded, once that is known; None while it loads or runs."""
        error = self._failure()
        return None if error is None else str(error)

    def _failure(self) -> ProviderError | None:
        error = self._load_error
        if not self._loaded.is_set() or error is None:
            return None
        if isinstance(error, ProviderError):  # already says what happened and what to do
            return error
        failure = ProviderError(f"could not load the model {self.model_path}: {error}")
        failure.__cause__ = error
        return failure

    async def wait_loaded(self) -> None:
        """Wait (without blocking the loop) until the model is loaded; raise if it could not be."""
        if not self._loaded.is_set():
            await asyncio.get_running_loop().run_in_executor(None, self._loaded.wait)
        failure = self._failure()
        if failure is not None:
            # One instance, raised for every caller: a fresh traceback each time, not a
            # chain that grows with every request to a model that cannot load.
            raise failure.with_traceback(None)

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            from ._llama_check import checked_settings
            from ._llama_setup import open_llama

            # Proved in a child process first: a crash in llama.cpp must not take us along.
            self.settings = checked_settings(self.model_path)
            threads = self.n_threads or self._cores
            self.stats.threads = threads
            self._llm = open_llama(
                self.model_path,
                self.settings,
                n_ctx=self.n_ctx,
                n_threads=threads,
                # The prompt's threads follow the same count: on cores another process
                # takes, llama.cpp's spinning threads wait on each other (a 40-word prompt
                # took 1.5-2.4 s with 2 batch threads on 2 busy cores, 0.18 s with 1).
                n_threads_batch=threads,
                verbose=False,
            )
            self._prepare_prefix()
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
        clean = False
        try:
            if self._load_error is not None:
                raise ProviderError(f"the model is not loaded: {self._load_error}")
            if job.stop.is_set() or self._exiting.is_set():
                self.stats.jobs_stopped += 1
                clean = True
                return
            self._check_logit_bias(job.params.get("logit_bias"))
            self._fit_threads()
            stream = self._llm.create_chat_completion(job.messages, stream=True, **job.params)
            try:
                for chunk in stream:
                    if job.tokens in _REFIT_AT or job.tokens % _REFIT_EVERY == _REFIT_EVERY - 1:
                        self._fit_threads()  # between two decodes: the load may have moved
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
            clean = True
            job.deliver(_END)
        except InvalidRequestError as exc:
            clean = True
            job.deliver(exc)
        except ValueError as exc:  # llama-cpp-python's "Requested tokens exceed context window"
            clean = True
            job.deliver(InvalidRequestError(f"the conversation does not fit the model: {exc}"))
        except BaseException as exc:
            job.deliver(
                exc
                if isinstance(exc, ProviderError)
                else ProviderError(f"generation failed: {exc}")
            )
        finally:
            job.done.set()
            if self._load_error is None and not self._exiting.is_set():
                self._rewind(clean=clean)

    def _fit_threads(self) -> None:
        """Use the cores other work leaves free (see `_cpu_load`), unless the count is fixed."""
        if self._meter is None:
            return
        others = self._meter.others_busy()
        if others is None:
            return
        threads = threads_for(self._cores, others)
        log.debug("other work on our cores: %.2f; llama.cpp threads: %d", others, threads)
        if threads != self.stats.threads:
            self._llm._ctx.set_n_threads(threads, threads)
            self.stats.threads = threads
            self.stats.thread_changes += 1

    def _prepare_prefix(self) -> None:
        """Find the fixed prefix and evaluate it; without one, every job starts empty."""
        try:
            self._prefix = _default_prompt_prefix(self._llm)
            self._rewind(clean=False)
        except Exception:  # a model we cannot read a prefix from still answers
            self._prefix = []
            self._llm.reset()

    def _rewind(self, *, clean: bool) -> None:
        """Leave the context holding exactly the fixed prefix, as evaluated at load.

        After a job whose prompt started with the prefix, its cache entries are the ones
        computed at load: dropping what follows them is free. Otherwise (another system
        prompt, a failed job) the prefix is evaluated again from an empty context, in one
        batch, as at load -- about as long as a short prompt, while the worker is idle.
        A prompt cannot be a strict prefix of the fixed one (every chat prompt ends with
        the assistant's header), so a prefix that reads the same was not recomputed.
        """
        llm = self._llm
        size = len(self._prefix)
        held = [int(token) for token in llm.input_ids[:size]] if llm.n_tokens >= size else None
        if clean and held == self._prefix:
            if llm.n_tokens > size:
                llm._ctx.kv_cache_seq_rm(-1, size, -1)
                llm.n_tokens = size
            return
        if self._loaded.is_set():
            self.stats.prefix_rebuilds += 1
        llm.reset()
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        if size:
            llm.eval(self._prefix)

    def _check_logit_bias(self, bias: Any) -> None:
        """llama-cpp-python indexes the logits with each key: one out of range would fail
        inside a sampler callback, where the error cannot reach the caller."""
        if not bias:
            return
        vocab = int(self._llm.n_vocab())
        for key in bias:
            token = int(key)
            if not 0 <= token < vocab:
                raise InvalidRequestError(
                    f"logit_bias names token {key}; this model's tokens are 0 to {vocab - 1}",
                    param="logit_bias",
                )

    def grammar_parses(self, grammar: str) -> bool:
        """Whether llama.cpp accepts a GBNF grammar. Asked before a job uses it: given a
        grammar it cannot parse, llama.cpp's sampler is null and the process crashes."""
        with self._grammar_lock:
            known = self._grammar_checks.get(grammar)
            if known is not None:
                return known
            import llama_cpp

            sampler = llama_cpp.llama_sampler_init_grammar(
                self._llm._model.vocab, grammar.encode(), b"root"
            )
            parses = bool(sampler)
            if parses:
                llama_cpp.llama_sampler_free(sampler)
            if len(self._grammar_checks) > 256:
                self._grammar_checks.clear()
            self._grammar_checks[grammar] = parses
            return parses

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
                    from ..core.stream_info import report_stream_info

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

    def _stop_at_exit(self) -> None:
        """At interpreter exit, wait (briefly) for the worker to leave llama.cpp: a daemon
        thread still in it when the model is freed crashes the process. The job it is
        running stops at its next token; queued ones are skipped."""
        self._exiting.set()
        job = self.last_job
        if job is not None:
            job.stop.set()
        self._jobs.put(None)
        self._thread.join(10)
