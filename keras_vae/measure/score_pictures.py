"""Pictures of a scoring: the most and least unusual images beside where each is unlikely,
and the scores against the run's own validation images."""

from __future__ import annotations

import numpy as np

from keras_vae.measure.pictures import as_picture, save_figure, save_png, tile, with_row_names

SHOWN = 8
"""Images per row of scores.png."""


def heat(maps: np.ndarray) -> np.ndarray:
    """Per-pixel −log p maps [N, H, W] → RGB [N, H, W, 3] in [0, 1], each map on its own
    logarithmic scale (unlikely pixels can cost a thousand times what likely ones do):
    black where the image is as likely as its likeliest 5 % of pixels, through red to
    yellow at its unlikeliest pixel. The map shows where an image is unlikely most."""
    low = np.quantile(maps, 0.05, axis=(1, 2), keepdims=True)
    excess = np.log1p(np.maximum(maps - low, 0.0))
    level = (excess / np.maximum(excess.max(axis=(1, 2), keepdims=True), 1e-6))[..., None]
    return np.concatenate([np.clip(2 * level, 0, 1), np.clip(2 * level - 1, 0, 1),
                           np.zeros_like(level)], axis=-1)


def save_extremes(images: np.ndarray, maps: np.ndarray, scores: np.ndarray, path: str
                  ) -> None:
    """Four named rows: the `SHOWN` most unusual images (highest score first) and their
    maps, then the least unusual and theirs. `images` uint8 [N, H, W, C]."""
    order = np.argsort(-scores, kind="stable")
    chosen = [order[:SHOWN], order[::-1][:SHOWN]]
    colour = images.shape[-1] == 3
    rows = []
    for picks in chosen:
        shown = images[picks].astype(np.float32) / 255
        rows += [shown if colour else np.repeat(shown, 3, axis=-1), heat(maps[picks])]
    width = max(len(r) for r in rows)
    padded = [np.concatenate([r, np.ones((width - len(r), *r.shape[1:]), np.float32)])
              for r in rows]
    canvas = tile(np.concatenate(padded), len(padded), width)
    names = ["most unusual", "where", "least unusual", "where"]
    save_png(with_row_names(as_picture(canvas), names), path)


def save_histogram(scores: np.ndarray, validation: np.ndarray, threshold: float,
                   path: str) -> None:
    """The scores against the run's validation images' (each as a share of its own set),
    the threshold as a line."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.6, 3.6))
    edge = max(float(np.quantile(validation, 0.999)), threshold) * 1.5
    bins = np.linspace(0.0, edge, 60)
    above = np.mean(scores > edge)
    scored = "scored" + (f" (the last bar: {above:.0%} above {edge:.1f})" if above else "")
    for values, name in ((validation, "the run's validation images"), (scores, scored)):
        axes.hist(np.clip(values, None, bins[-1]), bins=bins, alpha=0.55, label=name,
                  weights=np.full(len(values), 1 / max(1, len(values))))
    axes.axvline(threshold, color="black", linestyle="--", label="threshold")
    axes.set(xlabel="anomaly score (higher = more unusual)", ylabel="share of images")
    axes.legend(frameon=False)
    save_figure(figure, path)
    plt.close(figure)
