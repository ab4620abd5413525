"""What decides how llama.cpp runs on a machine: the CPU's flags, the build's features, the
user's variable. CI's CPU is whatever it is, so every CPU kind is written out here."""

from __future__ import annotations

import pytest

from codelinkava.errors import ProviderNotWorkingError
from codelinkava.providers._llama_setup import (
    EXTRA_BUFFERS_ENV,
    build_features,
    choose_settings,
    cpu_flags,
)

#: The head of /proc/cpuinfo on a Sapphire Rapids Xeon (AWS c7i, GCP C3), cut to its flags.
SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 avx512f avx512dq \
avx512bw avx512vl avx_vnni avx512_bf16 avx512_vnni amx_bf16 avx512_fp16 amx_tile amx_int8
bugs\t\t: spectre_v1

processor\t: 1
flags\t\t: fpu
"""
#: An AMD EPYC (Zen 4): AVX-512, no AMX.
ZEN4 = "flags\t\t: fpu sse sse2 fma avx f16c avx2 bmi2 avx512f avx512bw avx512_vnni avx512_bf16\n"
#: A Haswell-era Xeon: AVX2 only.
HASWELL = "flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2\n"
#: An ARM server (Graviton): `Features`, not `flags`.
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics\n"

#: `llama_print_system_info()` of llama-cpp-python 0.3.36, built natively on that Xeon.
NATIVE_ON_AMX = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | "
    "BMI2 = 1 | AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | "
    "AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
)
#: The same, built by `./dev` for any x86-64 CPU with AVX2 (GGML_NATIVE=OFF).
PORTABLE = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
)


def test_cpu_flags_are_read_from_the_first_processor() -> None:
    flags = cpu_flags(SAPPHIRE_RAPIDS)
    assert {"amx_int8", "amx_tile", "avx512f", "avx2"} <= flags
    assert "spectre_v1" not in flags  # the `bugs` line is not a flag


def test_cpu_flags_of_arm_and_of_nothing() -> None:
    assert "asimd" in cpu_flags(GRAVITON)
    assert cpu_flags("") == frozenset()
    assert cpu_flags("model name : something with: colons\n") == frozenset()


def test_build_features_are_the_names_set_to_one() -> None:
    assert "AMX_INT8" in build_features(NATIVE_ON_AMX)
    assert "AMX_INT8" not in build_features(PORTABLE)
    assert build_features("CPU : AVX2 = 1 | AVX512 = 0 | ") == frozenset({"AVX2"})


@pytest.mark.parametrize(
    ("cpuinfo", "system_info", "extra_buffers"),
    [
        pytest.param(SAPPHIRE_RAPIDS, NATIVE_ON_AMX, False, id="amx-cpu-native-build"),
        pytest.param(SAPPHIRE_RAPIDS, None, False, id="amx-cpu-build-not-known"),
        pytest.param(SAPPHIRE_RAPIDS, PORTABLE, True, id="amx-cpu-portable-build"),
        pytest.param(ZEN4, NATIVE_ON_AMX, True, id="zen4"),
        pytest.param(ZEN4, None, True, id="zen4-build-not-known"),
        pytest.param(HASWELL, PORTABLE, True, id="avx2-only"),
        pytest.param(GRAVITON, None, True, id="arm"),
        pytest.param("", None, True, id="no-cpuinfo"),
    ],
)
def test_extra_buffer_types_are_off_only_where_amx_kernels_could_run(
    cpuinfo: str, system_info: str | None, extra_buffers: bool
) -> None:
    build = None if system_info is None else build_features(system_info)
    settings = choose_settings(cpu_flags(cpuinfo), build, env={})
    assert settings.extra_buffers is extra_buffers
    assert not settings.chosen
    if not extra_buffers:
        assert "amx_int8" in settings.reason  # the reason names what decided it


@pytest.mark.parametrize(
    ("value", "extra_buffers"),
    [("on", True), ("ON", True), ("1", True), ("off", False), (" no ", False), ("0", False)],
)
def test_the_users_variable_wins_on_any_cpu(value: str, extra_buffers: bool) -> None:
    for cpuinfo in (SAPPHIRE_RAPIDS, HASWELL):
        settings = choose_settings(
            cpu_flags(cpuinfo), build_features(NATIVE_ON_AMX), env={EXTRA_BUFFERS_ENV: value}
        )
        assert settings.extra_buffers is extra_buffers
        assert settings.chosen
        assert EXTRA_BUFFERS_ENV in settings.reason


def test_auto_is_the_default() -> None:
    cpu = cpu_flags(SAPPHIRE_RAPIDS)
    assert choose_settings(cpu, None, env={EXTRA_BUFFERS_ENV: "auto"}) == choose_settings(
        cpu, None, env={}
    )


def test_a_misspelt_variable_is_refused_by_name() -> None:
    with pytest.raises(ProviderNotWorkingError, match=EXTRA_BUFFERS_ENV):
        choose_settings(cpu_flags(HASWELL), None, env={EXTRA_BUFFERS_ENV: "maybe"})
