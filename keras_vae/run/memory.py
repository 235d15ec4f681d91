"""Memory: the peak resident memory of this process, as every command and benchmark
reports it, and the machine's physical memory, which sizes the default data budget.

`VmHWM` from /proc/self/status belongs to the current program image. `ru_maxrss` does
not: Linux carries it across exec, so a command started from a large process (a
benchmark, a test runner) would report its parent's peak (measured: 2.4 GB reported for a
1.1 GB training). `ru_maxrss` remains the fallback where /proc is absent.
"""

from __future__ import annotations

import os
import resource

DATA_SHARE_OF_MEMORY = 4
"""Images up to a quarter of physical memory are held in memory; larger sets stream."""


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def physical_memory_mb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20


def default_data_budget_mb() -> int:
    """The default `--memory-budget-mb`: a quarter of this machine's physical memory."""
    return int(physical_memory_mb() // DATA_SHARE_OF_MEMORY)
