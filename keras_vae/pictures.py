"""Pictures of a model: samples from the prior and reconstructions, as PNG grids.

People judge a generative model by looking at it, so every run writes these pictures and
the README shows them. The grid and PNG code lives in the standalone edge sampler
(`serving/sample.py`, which must run alone on a device), and is reused here.
"""

from __future__ import annotations

import numpy as np

from serving.sample import save_png, square_grid, tile


def save_grid(images: np.ndarray, path: str) -> None:
    """A square-ish grid of images in [0, 1], e.g. 64 prior samples as 8×8."""
    save_png(square_grid(images), path)


def save_reconstructions(inputs: np.ndarray, outputs: np.ndarray, path: str,
                         per_row: int = 16) -> None:
    """Pairs of rows: inputs above, their reconstructions below."""
    rows = []
    for start in range(0, len(inputs), per_row):
        for images in (inputs, outputs):
            row = images[start:start + per_row]
            blank = np.zeros((per_row - len(row), *row.shape[1:]), dtype=row.dtype)
            rows.append(np.concatenate([row, blank]))
    save_png(tile(np.concatenate(rows), len(rows), per_row), path)
