"""Specification of keras_vae/run/memory.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

CHILD = ("import numpy as np; from keras_vae.run.memory import peak_rss_mb; "
         "before = peak_rss_mb(); block = np.ones({n}); print(before, peak_rss_mb())")


def _child_peaks(megabytes: int) -> tuple[float, float]:
    code = CHILD.format(n=megabytes * 2**20 // 8)
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60).stdout.split()
    return float(output[0]), float(output[1])


def test_peak_grows_when_the_process_touches_more_memory():
    before, after = _child_peaks(300)
    assert after >= before + 250


def test_a_child_of_a_large_process_reports_its_own_peak():
    parent_block = np.ones(800 * 2**20 // 8)  # this process now holds 800 MB more
    before, _ = _child_peaks(1)
    assert before < 400, before  # a fresh Python with numpy, not the parent's size
    del parent_block
