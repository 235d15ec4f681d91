"""Where a data set's uint8 images are held: memory, or above a budget a memory-mapped file.

Images above `--memory-budget-mb` (by default a quarter of the machine's memory) are
decoded once into a file that the operating system pages in as training reads it; the
tf.data pipeline gives the same batches from either (`keras_vae.data.pipeline`).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Storage:
    """Where a data set's uint8 images go: memory up to `budget_bytes`, above it a
    memory-mapped file in `spill_dir` (None: the system's temporary directory)."""

    budget_bytes: float = math.inf
    spill_dir: str | None = None

    def on_disk(self, shape) -> bool:
        return math.prod(shape) > self.budget_bytes

    def new_images(self, shape, on_disk: bool | None = None) -> np.ndarray:
        """An uninitialized uint8 array of `shape`: in memory, or on disk when `on_disk`
        (default: when the array alone is above the budget).

        On disk it is a memory-mapped file whose name is removed as soon as it is mapped:
        the operating system frees its space when the array is gone or the process ends,
        however it ends, and pages it in and out as training reads it.
        """
        if not (self.on_disk(shape) if on_disk is None else on_disk):
            return np.empty(shape, np.uint8)
        if self.spill_dir:
            os.makedirs(self.spill_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.spill_dir, prefix="keras-vae-images-",
                                         suffix=".u8") as file:
            return np.memmap(file.name, np.uint8, "w+", shape=tuple(shape))


IN_MEMORY = Storage()
"""Everything in memory, whatever its size."""


def take(images: np.ndarray, ids: np.ndarray, storage: Storage, on_disk: bool
         ) -> np.ndarray:
    """images[ids] copied into `storage` a block at a time (a memory-mapped source is never
    read whole)."""
    out = storage.new_images((len(ids), *images.shape[1:]), on_disk)
    for start in range(0, len(ids), 4096):
        out[start:start + 4096] = images[ids[start:start + 4096]]
    return out
