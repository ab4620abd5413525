"""Which llama.cpp settings this machine gets: decided from the CPU's features and the build's.

llama.cpp keeps a model's weights in "extra buffer types" when it can: repacked
for AVX2 (Q4_0, Q4_K, IQ4_NL...) or laid out for Intel's AMX tiles (Q4_0, Q4_1,
Q8_0, K-quants). llama-cpp-python 0.3.36 built natively on a Sapphire Rapids Xeon
(the cloud default: AWS c7i, GCP C3, Azure Dv6) dies of SIGSEGV in
`ggml_backend_amx_mul_mat` on the first prompt, and a native build from pip's wheel
cache can carry those kernels into any venv. With the weights in plain CPU buffers
the same build answers the same question the same way, so on a CPU with AMX the
extra buffer types are turned off; elsewhere they stay as llama.cpp chooses (for
our Q4_1 model no repacking applies, so nothing is lost either way).

This module is pure: the CPU's flags and the build's feature list come in as text
(`/proc/cpuinfo`, `llama_print_system_info()`), so tests decide every machine.
`open_llama` is the one place the choice reaches llama-cpp-python, and
`_llama_check` proves it in a child process before this process loads anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ProviderNotWorkingError

__all__ = [
    "AMX_FLAGS",
    "EXTRA_BUFFERS_ENV",
    "EngineSettings",
    "build_features",
    "choose_settings",
    "cpu_flags",
    "open_llama",
    "read_cpu_flags",
]

#: `auto` (the default), `on` or `off`: the user's word on llama.cpp's extra buffer types.
EXTRA_BUFFERS_ENV = "CODELINKAVA_LLAMA_EXTRA_BUFFERS"
#: /proc/cpuinfo's names for Intel's Advanced Matrix Extensions.
AMX_FLAGS = frozenset({"amx_int8", "amx_tile", "amx_bf16"})
_ON = frozenset({"on", "1", "true", "yes"})
_OFF = frozenset({"off", "0", "false", "no"})


@dataclass(frozen=True)
class EngineSettings:
    """How the engine loads a model here, and why (shown by errors and `providers`)."""

    extra_buffers: bool
    reason: str
    #: Whether the user chose it (by the variable): then a crash is reported, not worked around.
    chosen: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        return "extra buffer types on" if self.extra_buffers else "extra buffer types off"


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first processor in a `/proc/cpuinfo` text (x86's `flags`,
    ARM's `Features`); empty when the text has none."""
    for line in cpuinfo.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def read_cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """This machine's CPU flags; empty where the file does not exist (macOS, Windows)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return cpu_flags(file.read())
    except OSError:
        return frozenset()


def build_features(system_info: str) -> frozenset[str]:
    """The features a llama.cpp build was compiled with, from `llama_print_system_info()`
    ("CPU : SSE3 = 1 | AVX2 = 1 | AMX_INT8 = 1 | ..."): the names set to 1."""
    return frozenset(match.group(1) for match in re.finditer(r"([A-Z0-9_]+) = 1\b", system_info))


def choose_settings(
    cpu: frozenset[str], build: frozenset[str] | None, env: Mapping[str, str] | None = None
) -> EngineSettings:
    """The settings for a CPU and a build (None: not known yet, as before llama_cpp is
    imported). The user's variable wins; otherwise extra buffer types are off wherever
    llama.cpp could put weights in AMX tiles: an AMX CPU under a build with AMX kernels,
    or one whose kernels are not known."""
    env = os.environ if env is None else env
    choice = env.get(EXTRA_BUFFERS_ENV, "auto").strip().lower()
    if choice in _ON:
        return EngineSettings(True, f"{EXTRA_BUFFERS_ENV}={choice}", chosen=True)
    if choice in _OFF:
        return EngineSettings(False, f"{EXTRA_BUFFERS_ENV}={choice}", chosen=True)
    if choice not in ("", "auto"):
        raise ProviderNotWorkingError(f"{EXTRA_BUFFERS_ENV}={choice!r} is not one of auto, on, off")
    amx = [flag for flag in ("amx_int8", "amx_tile", "amx_bf16") if flag in cpu]
    if not amx:
        return EngineSettings(True, "no AMX on this CPU")
    if build is not None and "AMX_INT8" not in build:
        return EngineSettings(True, f"this CPU has {amx[0]} but this build has no AMX kernels")
    return EngineSettings(
        False, f"this CPU has {amx[0]}: llama.cpp's AMX kernels crash (llama-cpp-python 0.3.36)"
    )


def open_llama(model_path: str, settings: EngineSettings, **kwargs: Any) -> Any:
    """`llama_cpp.Llama(model_path, **kwargs)` with the settings applied.

    llama-cpp-python does not take `use_extra_bufts` as an argument: `Llama.__init__`
    builds its `model_params` from llama.cpp's defaults and loads the model in the same
    call. A subclass whose `model_params` is a property sets the field on the struct as
    it is assigned, before the load. If a release stops assigning it that way, or the
    struct loses the field, this raises instead of loading with AMX kernels unasked.
    """
    from llama_cpp import Llama, llama_model_params

    if settings.extra_buffers:
        return Llama(model_path=model_path, **kwargs)
    fields = {name for name, *_ in llama_model_params._fields_}
    if "use_extra_bufts" not in fields:
        raise _unsupported("its llama_model_params has no use_extra_bufts field")
    llm = _plain_buffers_llama(Llama)(model_path=model_path, **kwargs)
    if not getattr(llm, "_codelinkava_params_set", False) or llm.model_params.use_extra_bufts:
        raise _unsupported("Llama no longer assigns model_params before loading")
    return llm


def _plain_buffers_llama(base: type) -> type:
    """A `Llama` whose model parameters ask for plain CPU buffers only."""

    class PlainBuffersLlama(base):  # type: ignore[misc]
        @property
        def model_params(self) -> Any:
            return self.__dict__["_codelinkava_model_params"]

        @model_params.setter
        def model_params(self, params: Any) -> None:
            params.use_extra_bufts = False
            self.__dict__["_codelinkava_model_params"] = params
            self.__dict__["_codelinkava_params_set"] = True

    return PlainBuffersLlama


def _unsupported(why: str) -> ProviderNotWorkingError:
    import llama_cpp

    return ProviderNotWorkingError(
        f"llama-cpp-python {llama_cpp.__version__} cannot load with extra buffer types off "
        f"({why}); install the tested release (pip install 'llama-cpp-python==0.3.36') "
        f"or set {EXTRA_BUFFERS_ENV}=on"
    )
