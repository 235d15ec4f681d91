"""Progress of long work over a known count: how far, how long so far, how long left."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def progress_lines(total: int, stream=None, resumed_at: int = 0) -> Callable[[int, str], None]:
    """`show(done, text)`: prints "text, E s elapsed, about L s left", in place on a
    terminal, otherwise one line per tenth of `total` (to stdout unless `stream` is
    given), so that a log holds ten lines however long the work. `resumed_at`: the count
    done by an earlier, interrupted run, left out of the rate."""
    stream = stream or sys.stdout
    start, interactive, shown = time.perf_counter(), stream.isatty(), [0]

    def show(done: int, text: str) -> None:
        elapsed = time.perf_counter() - start
        left = elapsed / max(done - resumed_at, 1) * (total - done)
        line = f"{text}, {elapsed:.0f} s elapsed, about {left:.0f} s left"
        if interactive:
            print(f"\r{line}", end="\n" if done == total else "", file=stream, flush=True)
        elif done == total or done * 10 // total > shown[0]:
            shown[0] = done * 10 // total
            print(line, file=stream, flush=True)

    return show
