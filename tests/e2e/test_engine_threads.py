"""The engine's llama.cpp threads: fixed when asked, else the cores other work leaves free,
read back from llama.cpp itself."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from codelinkava.providers._llama_engine import THREADS_ENV, Engine, usable_cores
from codelinkava.providers.local import LocalModel, default_model_path

pytestmark = pytest.mark.e2e

SPIN = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end: pass\n"


async def answer(engine: Engine) -> str:
    params = LocalModel.sampling({"max_tokens": 40})
    messages = [{"role": "user", "content": "Describe the water cycle."}]
    return "".join([piece async for piece in engine.generate(messages, params)])


def llama_threads(engine: Engine) -> int:
    import llama_cpp

    return int(llama_cpp.llama_n_threads(engine._llm._ctx.ctx))


@pytest.fixture
def busy_cores() -> Iterator[int]:
    """Every core but one kept busy by other processes, for the test."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(usable_cores() - 1)
    ]
    time.sleep(0.3)
    try:
        yield len(spinners)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


async def test_a_fixed_count_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, "1")
    engine = Engine(default_model_path())
    try:
        assert await answer(engine)
        assert engine.stats.threads == 1
        assert engine.stats.thread_changes == 0
        assert llama_threads(engine) == 1
    finally:
        engine.close()


async def test_busy_cores_are_left_to_the_work_that_holds_them(
    monkeypatch: pytest.MonkeyPatch, busy_cores: int
) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    engine = Engine(default_model_path())
    try:
        await engine.wait_loaded()
        await asyncio.sleep(0.2)  # a window in which only the spinners run
        assert await answer(engine)
        assert engine.stats.threads == 1
        assert llama_threads(engine) == 1
    finally:
        engine.close()


def test_a_bad_count_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from codelinkava.errors import ProviderError

    monkeypatch.setenv(THREADS_ENV, "two")
    with pytest.raises(ProviderError, match=THREADS_ENV):
        Engine(default_model_path())
