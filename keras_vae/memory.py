"""Peak resident memory of this process, as every command and benchmark reports it.

`VmHWM` from /proc/self/status belongs to the current program image. `ru_maxrss` does
not: Linux carries it across exec, so a command started from a large process (a
benchmark, a test runner) would report its parent's peak (measured: 2.4 GB reported for a
1.1 GB training). `ru_maxrss` remains the fallback where /proc is absent.
"""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
