"""What machine a measurement was taken on, for benchmark tables and their JSON."""

from __future__ import annotations

import os
import platform


def describe_machine() -> str:
    """E.g. 'AMD EPYC, 2 cores': the CPU model from /proc/cpuinfo where there is one."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"
