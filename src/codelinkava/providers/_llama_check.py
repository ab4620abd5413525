"""A trial run of the model in a child process, once per build, model and CPU.

A crash inside llama.cpp (a SIGSEGV in a CPU kernel, an abort in an assertion)
kills the whole process: the CLI dies with exit 139 and no word, the gateway with
every stream it serves. So before a process loads a model for the first time on a
machine, a child loads it with the chosen settings and answers a short question.
If the child dies by a signal and the settings used llama.cpp's extra buffer
types, a second child tries without them. The outcome is kept in a small JSON
file under the user's cache (`CODELINKAVA_CACHE_DIR`, else `~/.cache/codelinkava`),
keyed by llama-cpp-python's version and native libraries, the model file, the
CPU's flags and the user's setting: later loads cost nothing, and a crash is
reported at once, in one line that names the cause and the way out.

`CODELINKAVA_TEST_NATIVE_CRASH` (`always`, or `extra-buffers`: only when they are on)
makes the child crash for real, in native code, so tests prove the path on any CPU;
`illegal-instruction` makes it die of SIGILL, as a build for a newer CPU does.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ProviderError, ProviderNotWorkingError
from ._llama_setup import (
    EXTRA_BUFFERS_ENV,
    EngineSettings,
    build_features,
    choose_settings,
    read_cpu_flags,
)

__all__ = [
    "CACHE_DIR_ENV",
    "CRASH_HOOK_ENV",
    "CheckResult",
    "cache_file",
    "checked_settings",
    "run_trial",
]

CACHE_DIR_ENV = "CODELINKAVA_CACHE_DIR"
CRASH_HOOK_ENV = "CODELINKAVA_TEST_NATIVE_CRASH"
#: A trial loads the model and generates a few tokens: seconds for the embedded model,
#: a minute or two for a big GGUF file read from a slow disk.
TRIAL_TIMEOUT = 300.0
_CACHE_NAME = "engine-checks.json"
_TRIAL_QUESTION = "What is the capital of France?"


@dataclass(frozen=True)
class CheckResult:
    """What a trial run found: the settings that worked, or why none did."""

    settings: EngineSettings | None
    error: str | None = None
    #: llama.cpp's model buffers in the trial that worked ("CPU_Mapped", "AMX"...).
    buffers: tuple[str, ...] = ()

    def as_record(self) -> dict[str, Any]:
        return {
            "settings": None if self.settings is None else self.settings.as_dict(),
            "error": self.error,
            "buffers": list(self.buffers),
            "checked_at": time.time(),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CheckResult:
        settings = record.get("settings")
        return cls(
            settings=EngineSettings(**settings) if settings else None,
            error=record.get("error"),
            buffers=tuple(record.get("buffers", ())),
        )


def cache_file() -> Path:
    """Where trial outcomes are kept."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured) / _CACHE_NAME
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codelinkava" / _CACHE_NAME


def checked_settings(model_path: str, *, cpu: frozenset[str] | None = None) -> EngineSettings:
    """The settings this process may load `model_path` with, proved in a child process
    the first time; raises ProviderNotWorkingError when llama.cpp crashes either way.
    `cpu`: the CPU's flags (tests pass another CPU's; default: this one's)."""
    cpu = read_cpu_flags() if cpu is None else cpu
    key = _key(model_path, cpu)
    path = cache_file()
    result = _cached(path, key)
    if result is None:
        with _locked(path):
            result = _cached(path, key)  # another process may have checked meanwhile
            if result is None:
                result = _trial_runs(model_path, cpu)
                _store(path, key, result)
    if result.settings is None:
        raise ProviderNotWorkingError(result.error or "the local model cannot run here")
    return result.settings


def _trial_runs(model_path: str, cpu: frozenset[str]) -> CheckResult:
    """Try the chosen settings, then (after a crash with extra buffers on) without them."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ProviderNotWorkingError(
            f"the local model needs llama-cpp-python: pip install 'codelinkava[local]' ({exc})"
        ) from None

    build = build_features(llama_cpp.llama_print_system_info().decode(errors="replace"))
    first = choose_settings(cpu, build)
    tries = [first]
    if first.extra_buffers and not first.chosen:
        tries.append(EngineSettings(False, f"llama.cpp crashed with them on ({first.reason})"))
    crashes: list[str] = []
    for settings in tries:
        crash, buffers = run_trial(model_path, settings)
        if crash is None:
            return CheckResult(settings, buffers=buffers)
        crashes.append(f"{crash} with {settings.label}")
    return CheckResult(None, error=_crash_message(model_path, crashes))


def run_trial(model_path: str, settings: EngineSettings) -> tuple[str | None, tuple[str, ...]]:
    """(how the child died, or None; the model buffers it reported). An error that is
    not a crash (a broken file, no memory) is raised as it would be in this process."""
    command = [sys.executable, "-m", __name__, model_path, json.dumps(settings.as_dict())]
    try:
        child = subprocess.run(
            command,
            capture_output=True,
            timeout=TRIAL_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ProviderError(
            f"a trial run of {Path(model_path).name} did not finish within {TRIAL_TIMEOUT:.0f} s"
        ) from exc
    stderr = child.stderr.decode(errors="replace")
    buffers = tuple(_buffers(stderr))
    if child.returncode < 0:
        return _signal_name(-child.returncode), buffers
    if child.returncode != 0:
        reason = _child_error(child.stdout)
        if reason is None:
            lines = stderr.strip().splitlines()
            reason = lines[-1] if lines else f"exit status {child.returncode}"
        raise ProviderError(f"could not load the model {model_path}: {reason}")
    return None, buffers


def _crash_message(model_path: str, crashes: list[str]) -> str:
    """One line: what died, where it is written down, and the ways out."""
    import llama_cpp

    tried_off = any("extra buffer types off" in crash for crash in crashes)
    ways = [] if tried_off else [f"set {EXTRA_BUFFERS_ENV}=off"]
    if any(crash.startswith("SIGILL") for crash in crashes):
        # An instruction this CPU lacks (a build for a newer one): build for this CPU.
        rebuild = "reinstall llama-cpp-python built for this CPU (CMAKE_ARGS='-DGGML_NATIVE=ON' "
    else:
        rebuild = (
            "reinstall llama-cpp-python built for any x86-64 CPU (CMAKE_ARGS='-DGGML_NATIVE=OFF' "
        )
    ways += [
        rebuild + "pip install --no-cache-dir --force-reinstall llama-cpp-python==0.3.36)",
        "or use another provider (--provider openai --api-url URL)",
    ]
    return (
        f"the local model cannot run on this machine: llama.cpp crashed "
        f"({'; then '.join(crashes)}) in a trial run of {Path(model_path).name} under "
        f"llama-cpp-python {llama_cpp.__version__}; {'; '.join(ways)}. "
        f"Checked once for this build and model: delete {cache_file()} to check again"
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _buffers(stderr: str) -> list[str]:
    """The model buffer types llama.cpp logged while loading ("AMX model buffer size = ...")."""
    found: list[str] = []
    for line in stderr.splitlines():
        head, sep, _ = line.partition(" model buffer size")
        if sep and head.split():
            name = head.split()[-1]
            if name not in found:
                found.append(name)
    return found


def _child_error(stdout: bytes) -> str | None:
    for line in reversed(stdout.decode(errors="replace").splitlines()):
        with contextlib.suppress(ValueError):
            message = json.loads(line).get("error")
            if message:
                return str(message)
    return None


# The cache ------------------------------------------------------------------------


def _key(model_path: str, cpu: frozenset[str]) -> str:
    """What a trial's outcome depends on: the build, the model file, the CPU, the setting."""
    parts: list[Any] = [_llama_version(), _native_libraries(), _file_identity(model_path)]
    parts.append(sorted(cpu))
    parts.append(os.environ.get(EXTRA_BUFFERS_ENV, "auto").strip().lower())
    parts.append(os.environ.get(CRASH_HOOK_ENV, ""))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def _llama_version() -> str:
    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _native_libraries() -> list[Any]:
    """Name, size and mtime of each native library llama-cpp-python ships (a rebuild of
    the same version, say with other CMAKE_ARGS, changes them)."""
    try:
        spec = importlib.util.find_spec("llama_cpp")
    except (ImportError, ValueError, AttributeError):  # not importable, or blocked
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    try:
        files = sorted(lib.iterdir())
    except OSError:
        return []
    return [_file_identity(str(file)) for file in files if file.is_file()]


def _file_identity(path: str) -> list[Any]:
    try:
        info = os.stat(path)
    except OSError:
        return [path]
    return [os.path.abspath(path), info.st_size, info.st_mtime_ns]


def _cached(path: Path, key: str) -> CheckResult | None:
    try:
        records = json.loads(path.read_text())
        return CheckResult.from_record(records[key])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(path: Path, key: str, result: CheckResult) -> None:
    """Keep the outcome (best effort: a read-only home only means checking again)."""
    with contextlib.suppress(OSError):
        try:
            records = json.loads(path.read_text())
            if not isinstance(records, dict):
                records = {}
        except (OSError, ValueError):
            records = {}
        records[key] = result.as_record()
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(json.dumps(records, indent=1, sort_keys=True))
        os.replace(scratch, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One trial at a time across processes (gateway workers start together)."""
    try:
        import fcntl
    except ImportError:  # Windows: at worst, two workers both run the trial
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 -- held across the yield
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# The child ------------------------------------------------------------------------


def _child(model_path: str, settings_json: str) -> int:
    """Load the model as the engine would and answer one question; print one JSON line."""
    import faulthandler

    faulthandler.enable()  # a crash leaves its Python stack on stderr for the record
    settings = EngineSettings(**json.loads(settings_json))
    try:
        from ._llama_setup import open_llama

        llm = open_llama(model_path, settings, n_ctx=512, n_threads=1, verbose=True)
        hook = os.environ.get(CRASH_HOOK_ENV, "")
        if hook == "always" or (hook == "extra-buffers" and settings.extra_buffers):
            import ctypes

            ctypes.string_at(0)  # a real SIGSEGV in native code, as a broken kernel gives
        if hook == "illegal-instruction":  # as a build for a newer CPU dies on an older one
            signal.raise_signal(signal.SIGILL)
        messages = [{"role": "user", "content": _TRIAL_QUESTION}]
        answer = llm.create_chat_completion(messages, max_tokens=4, temperature=0.0)
        text = answer["choices"][0]["message"]["content"]
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps({"text": text}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_child(sys.argv[1], sys.argv[2]))
