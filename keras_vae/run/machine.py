"""What machine a measurement was taken on, for benchmark tables and their JSON."""

from __future__ import annotations

import os
import platform


def describe_machine() -> str:
    """E.g. 'AMD EPYC, 2 cores': the CPU model from /proc/cpuinfo where there is one."""
    model = _cpuinfo("model name") or platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores"


def _cpuinfo(field: str) -> str | None:
    """The value of /proc/cpuinfo's first `field` line; None where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f
                         if line.startswith(field)), None)
    except OSError:
        return None


WIDE_VECTORS_FLAG = "--xla_cpu_prefer_vector_width=512"


def prefer_wide_vectors() -> bool:
    """Asks XLA for 512-bit vector code on a CPU with AVX-512, unless XLA_FLAGS already
    sets a vector width; True if it did. XLA's CPU default is 256 bits. Measured here
    (docs/performance.md): the importance-sampled NLL's fused logistic scoring 1.4×
    faster, training unchanged. XLA reads its flags once, at its first compilation, so
    this must run before it (the commands call it as they load TensorFlow)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_prefer_vector_width" in flags or not _has_avx512():
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {WIDE_VECTORS_FLAG}".strip()
    return True


def cpu_bfloat16_support() -> str:
    """Which bfloat16 matmul instructions the CPU has, by /proc/cpuinfo's flags: "AMX"
    (Intel's tile units, with AVX-512 BF16 beside them), "AVX-512 BF16", or "none" (no
    native bfloat16 multiply, or no flags to read)."""
    flags = set((_cpuinfo("flags") or "").split())
    if "amx_bf16" in flags:
        return "AMX"
    return "AVX-512 BF16" if "avx512_bf16" in flags else "none"


def _has_avx512() -> bool:
    """Whether /proc/cpuinfo's flags list avx512f (False where there are none to read)."""
    return "avx512f" in (_cpuinfo("flags") or "").split()
