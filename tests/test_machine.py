"""Specification of keras_vae/run/machine.py: benchmark tables name the machine they ran on,
and XLA gets the widest vectors the CPU has."""

from __future__ import annotations

import os

import pytest

from keras_vae.run import machine
from keras_vae.run.machine import describe_machine


def test_the_description_names_the_cpu_and_its_core_count():
    description = describe_machine()
    model, cores = description.rsplit(", ", 1)
    assert model and cores == f"{os.cpu_count()} cores"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            assert model in f.read()


@pytest.mark.parametrize("flags, avx512, expected", [
    (None, True, "--xla_cpu_prefer_vector_width=512"),
    ("--xla_cpu_enable_fast_math=false", True,
     "--xla_cpu_enable_fast_math=false --xla_cpu_prefer_vector_width=512"),
    ("--xla_cpu_prefer_vector_width=256", True, "--xla_cpu_prefer_vector_width=256"),
    (None, False, None),
])
def test_xla_gets_wide_vectors_on_avx512_unless_its_flags_choose(monkeypatch, flags, avx512,
                                                                 expected):
    """A user's own vector width stands; other flags are kept."""
    if flags is None:
        monkeypatch.delenv("XLA_FLAGS", raising=False)
    else:
        monkeypatch.setenv("XLA_FLAGS", flags)
    monkeypatch.setattr(machine, "_has_avx512", lambda: avx512)
    assert machine.prefer_wide_vectors() == (expected is not None and expected != flags)
    assert os.environ.get("XLA_FLAGS") == (expected or flags)


@pytest.mark.parametrize("flags, expected", [
    ("fpu sse4_2 avx2 avx512f avx512bw", True),
    ("fpu avx2 avx512fp16", False),  # another feature whose name starts alike
    ("fpu sse4_2 avx2", False),
    (None, False),  # no /proc/cpuinfo to read
])
def test_avx512_is_read_from_the_first_flags_line(monkeypatch, tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: A CPU\nflags\t\t: {flags}\n\n"
                       f"processor\t: 1\nflags\t\t: avx512f\n")

    def fake_open(path, *args, **kwargs):
        assert path == "/proc/cpuinfo"
        if flags is None:
            raise FileNotFoundError(path)
        return open(cpuinfo, *args, **kwargs)

    monkeypatch.setattr(machine, "open", fake_open, raising=False)
    assert machine._has_avx512() is expected


@pytest.mark.parametrize("flags, expected", [
    ("fpu avx512f avx512_bf16 amx_bf16 amx_tile", "AMX"),
    ("fpu avx512f avx512_bf16", "AVX-512 BF16"),
    ("fpu avx2 avx512f avx512_fp16", "none"),
    ("", "none"),
])
def test_the_bfloat16_instructions_are_named_from_the_cpu_flags(monkeypatch, flags, expected):
    """The precision benchmark says which bfloat16 path the CPU has, beside its figures."""
    monkeypatch.setattr(machine, "_cpuinfo", lambda field: flags if field == "flags" else None)
    assert machine.cpu_bfloat16_support() == expected
