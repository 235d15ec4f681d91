"""Pictures of a model: samples from the prior and reconstructions, as PNG grids.

People judge a generative model by looking at it, so every run writes these pictures and
the README shows them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from keras_vae.atomic import atomic_path

UPSCALE = 2
"""Each pixel becomes UPSCALE×UPSCALE screen pixels so 28×28 digits are legible."""


def tile(images: np.ndarray, rows: int, cols: int, gap: int = 2) -> np.ndarray:
    """Images [N, 28, 28, 1] in [0, 1] → one canvas of ink in [0, 1], row-major, blank gaps."""
    n, h, w = images.shape[:3]
    if n > rows * cols:
        raise ValueError(f"{n} images do not fit a {rows}×{cols} grid")
    canvas = np.zeros((rows * (h + gap) - gap, cols * (w + gap) - gap), dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = image[..., 0]
    return canvas


def save_png(canvas: np.ndarray, path: str) -> None:
    """Writes a [H, W] canvas in [0, 1] as an 8-bit PNG, dark strokes on white."""
    pixels = np.round((1.0 - np.clip(canvas, 0.0, 1.0)) * 255).astype(np.uint8)
    image = Image.fromarray(pixels, mode="L")
    image = image.resize((image.width * UPSCALE, image.height * UPSCALE), Image.NEAREST)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def save_grid(images: np.ndarray, path: str) -> None:
    """A square-ish grid of images, e.g. 64 prior samples as 8×8."""
    cols = int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / cols))
    save_png(tile(images, rows, cols), path)


def save_reconstructions(inputs: np.ndarray, outputs: np.ndarray, path: str,
                         per_row: int = 16) -> None:
    """Pairs of rows: inputs above, their reconstructions below."""
    rows = []
    for start in range(0, len(inputs), per_row):
        for images in (inputs, outputs):
            row = images[start:start + per_row]
            blank = np.zeros((per_row - len(row), *row.shape[1:]), dtype=row.dtype)
            rows.append(np.concatenate([row, blank]))
    stacked = np.concatenate(rows)
    save_png(tile(stacked, len(rows), per_row), path)
