"""Pictures of a model: what it generates, how it reconstructs, where it puts the data, and
how it learned.

People judge a generative model by looking at it, so every run writes these pictures and
the README shows them. `draw_run` writes them all; training calls it at the end and
`python -m keras_vae.plot RUN_DIR` calls it again for a finished run. Image grids are
numpy and Pillow; plots with axes use matplotlib. Every decoded image is the mean of
p(x|z), E[x|z], not a random draw of pixels.
"""

from __future__ import annotations

import os
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from keras_vae.model.latents import every_class
from keras_vae.run.atomic import atomic_path
from keras_vae.run.layout import (
    CURVES_PNG,
    LATENT_PNG,
    LEVELS_PNG,
    MANIFOLD_PNG,
    PSEUDO_INPUTS_PNG,
    RECONSTRUCTIONS_PNG,
    SAMPLES_PNG,
    TEMPERATURES_PNG,
)

N_SAMPLES = 64
N_RECONSTRUCTIONS = 32
MANIFOLD_SIDE = 20
CURVES = (("loss", "negative ELBO"), ("reconstruction", "reconstruction"), ("kl", "KL"))
SAMPLES_PER_CLASS = 10
"""Columns of a conditional model's samples.png; column j shares one z across classes."""
UPSCALE = 2
"""Each image pixel becomes UPSCALE×UPSCALE picture pixels, so 28×28 images are legible."""
LABEL_MARGIN = 48
"""Least width in picture pixels of the margin that names a picture's rows."""
GAP = 2
"""White pixels between the images of a grid."""


def tile(images: np.ndarray, rows: int, cols: int, gap: int = GAP) -> np.ndarray:
    """Images [N, H, W, C] in [0, 1] → one canvas [rows·(H+gap)−gap, cols·(W+gap)−gap, C],
    row-major, white between and after the last image."""
    n, height, width, channels = images.shape
    if n > rows * cols:
        raise ValueError(f"{n} images do not fit a {rows}×{cols} grid")
    cells = np.ones((rows * cols, height + gap, width + gap, channels), np.float32)
    cells[:n, :height, :width] = images
    canvas = cells.reshape(rows, cols, height + gap, width + gap, channels).swapaxes(1, 2)
    canvas = canvas.reshape(rows * (height + gap), cols * (width + gap), channels)
    return canvas[:canvas.shape[0] - gap, :canvas.shape[1] - gap]


def as_picture(canvas: np.ndarray) -> Image.Image:
    """A canvas [H, W, C] in [0, 1] as an 8-bit picture, UPSCALE× larger: grayscale for one
    channel, RGB for three (other channel counts show their first channel)."""
    pixels = np.round(np.clip(canvas, 0.0, 1.0) * 255).astype(np.uint8)
    picture = Image.fromarray(pixels if pixels.shape[-1] == 3 else pixels[..., 0])
    return picture.resize((picture.width * UPSCALE, picture.height * UPSCALE), Image.NEAREST)


def with_row_names(picture: Image.Image, names) -> Image.Image:
    """`picture` of len(names) equal rows, with each row's name in a white margin on the
    left, wide enough for the longest name."""
    widths = [8 + int(ImageDraw.Draw(picture).textlength(name)) for name in names]
    named = ImageOps.expand(picture, border=(max(LABEL_MARGIN, *widths), 0, 0, 0),
                            fill="white")
    pen, edges = ImageDraw.Draw(named), np.linspace(0, named.height, len(names) + 1)
    for name, top, bottom in zip(names, edges[:-1], edges[1:], strict=True):
        pen.text((4, (top + bottom) / 2), name, fill="black", anchor="lm")
    return named


def save_png(picture: Image.Image, path: str) -> None:
    """Writes a picture as PNG in one rename."""
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")


def save_grid(images: np.ndarray, path: str) -> None:
    """The squarest grid that holds the images (64 → 8×8), as a PNG."""
    cols = int(np.ceil(np.sqrt(len(images))))
    save_png(as_picture(tile(images, -(-len(images) // cols), cols)), path)


def save_reconstructions(inputs: np.ndarray, outputs: np.ndarray, path: str,
                         per_row: int = 16) -> None:
    """Pairs of rows: inputs above, their reconstructions below, each row named in a
    margin on the left ("input", "recon.")."""
    pairs = -(-len(inputs) // per_row)
    rows = []
    for start in range(0, pairs * per_row, per_row):
        for images in (inputs, outputs):
            row = images[start:start + per_row]
            rows.append(np.concatenate([row, np.zeros((per_row - len(row), *row.shape[1:]),
                                                      row.dtype)]))
    canvas = tile(np.concatenate(rows), len(rows), per_row)
    save_png(with_row_names(as_picture(canvas), ["input", "recon."] * pairs), path)


def manifold_latents(side: int = MANIFOLD_SIDE) -> np.ndarray:
    """A side×side grid of 2-D latents at Normal quantiles 0.05…0.95, row-major, z₂
    decreasing down the rows, so equal areas of the picture hold equal prior mass."""
    quantiles = [NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, side)]
    z1, z2 = np.meshgrid(quantiles, quantiles[::-1])
    return np.stack([z1.ravel(), z2.ravel()], axis=1).astype(np.float32)


def save_manifold(images: np.ndarray, path: str, side: int = MANIFOLD_SIDE) -> None:
    """Images decoded from `manifold_latents(side)`, tiled in the same order."""
    save_png(as_picture(tile(images, side, side, gap=0)), path)


def save_figure(figure, path: str) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def save_latent_scatter(z_mean: np.ndarray, labels: np.ndarray | None, path: str,
                        label_names: tuple[str, ...] = ()) -> None:
    """Test z_mean of a 2-D latent, one colour per label (one colour without labels), the
    legend naming the classes."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.6, 5.2))
    if labels is None:
        axes.scatter(z_mean[:, 0], z_mean[:, 1], s=2, alpha=0.4, rasterized=True)
    else:
        classes = np.unique(labels)
        colours = plt.get_cmap("tab10" if len(classes) <= 10 else "turbo", len(classes))
        for i, label in enumerate(classes):
            at = labels == label
            name = label_names[label] if label < len(label_names) else str(label)
            axes.scatter(z_mean[at, 0], z_mean[at, 1], s=2, alpha=0.6, color=colours(i),
                         label=name, rasterized=True)
        axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=5,
                    fontsize=8, frameon=False)
    axes.set(xlabel="z₁ (mean of q(z|x))", ylabel="z₂", title="test images in latent space")
    save_figure(figure, path)
    plt.close(figure)


def save_curves(history: list[dict], path: str) -> None:
    """Training and validation loss, reconstruction and KL per epoch (nats per example),
    and a hierarchy's KL of each level,
    one panel each, epochs counted from 1 on whole-number ticks; every epoch is a marker,
    so a run of one epoch shows its point. One legend for the figure, above the panels."""
    import matplotlib.pyplot as plt

    epochs = [int(row["epoch"]) for row in history]
    curves = CURVES + tuple((key, f"KL of level {key.rsplit('_', 1)[1]}")
                            for key in sorted(history[0]) if key.startswith("kl_level_"))
    figure, panels = plt.subplots(1, len(curves), figsize=(4.4 * len(curves), 3.6),
                                  layout="constrained", squeeze=False)
    panels = panels[0]
    marker = "o" if len(history) <= 30 else None
    for axes, (key, title) in zip(panels, curves, strict=True):
        axes.plot(epochs, [row[key] for row in history], marker=marker, markersize=3,
                  label="training")
        axes.plot(epochs, [row[f"val_{key}"] for row in history], marker=marker,
                  markersize=3, label="validation")
        axes.set(title=title, xlabel="epoch", ylabel="nats per example")
        axes.set_xticks(range(epochs[0], epochs[-1] + 1, -(-len(epochs) // 10)))
        axes.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
        axes.grid(alpha=0.3)
        _settle_y_range(axes, history, epochs, key)
    figure.legend(*panels[0].get_legend_handles_labels(), loc="outside upper center",
                  ncols=2, frameon=False)
    save_figure(figure, path)
    plt.close(figure)


def _settle_y_range(axes, history: list[dict], epochs: list[int], key: str) -> None:
    """The first epochs (and a KL warm-up's) dwarf the rest: the panel's range leaves out
    the first 5 % of epochs, so the converged part stays readable, and says which points
    that leaves off the chart."""
    first_settled = max(1, len(history) // 20) if len(history) > 3 else 0
    values = [row[k] for row in history[first_settled:] for k in (key, f"val_{key}")]
    margin = 0.05 * (max(values) - min(values)) + 0.5
    low, high = min(values) - margin, max(values) + margin
    axes.set_ylim(low, high)
    clipped = [e for e, row in zip(epochs, history, strict=True)
               if not all(low <= row[k] <= high for k in (key, f"val_{key}"))]
    if clipped:
        axes.text(0.98, 0.97, f"epochs {clipped[0]}–{clipped[-1]} off the chart"
                  if len(clipped) > 1 else f"epoch {clipped[0]} off the chart",
                  transform=axes.transAxes, ha="right", va="top", fontsize=8)


def draw_run(vae, test_images: np.ndarray, test_labels: np.ndarray | None,
             history: list[dict], run_dir: str, seed: int) -> dict[str, str]:
    """Every picture of a run, written into `run_dir`; returns {artifact: file name}.

    Samples (z from the model's prior) and decoded images are the means of p(x|z), in
    the data's size and channels; reconstructions decode z_mean. A conditional model's
    samples have one row per class, each column one z decoded with every label, and its
    reconstructions use the test images' own labels.
    A VampPrior model also gets its first 64 pseudo-inputs (`pseudo_inputs.png`).
    The manifold and the scatter need a 2-D latent; the scatter is coloured by label when
    the dataset has labels. A conditional model has no manifold: its picture would need
    one per class.
    """
    from keras import ops

    def decode(z, labels=None):
        return ops.convert_to_numpy(vae.mean_image(z, labels))

    def encode(images, labels):
        return ops.convert_to_numpy(vae.encode(images, labels)[0])

    labels = test_labels if vae.config.conditional else None
    _draw_samples(vae, os.path.join(run_dir, SAMPLES_PNG), seed)
    inputs = test_images[:N_RECONSTRUCTIONS]
    first = None if labels is None else labels[:N_RECONSTRUCTIONS]
    save_reconstructions(inputs, vae.reconstructions(inputs, first),
                         os.path.join(run_dir, RECONSTRUCTIONS_PNG))
    drawn = {"samples_png": SAMPLES_PNG, "reconstructions_png": RECONSTRUCTIONS_PNG}
    if vae.config.hierarchical:
        drawn.update(_draw_hierarchy(vae, test_images, labels, run_dir, seed))
    if vae.pseudo_inputs is not None:
        pseudo = ops.convert_to_numpy(vae.pseudo_inputs.images())[:N_SAMPLES]
        save_grid(pseudo, os.path.join(run_dir, PSEUDO_INPUTS_PNG))
        drawn["pseudo_inputs_png"] = PSEUDO_INPUTS_PNG
    if history:
        save_curves(history, os.path.join(run_dir, CURVES_PNG))
        drawn["curves_png"] = CURVES_PNG
    if vae.config.levels == (2,):  # a plane of codes (not two channels of feature maps)
        if not vae.config.conditional:
            save_manifold(decode(manifold_latents()), os.path.join(run_dir, MANIFOLD_PNG))
            drawn["manifold_png"] = MANIFOLD_PNG
        z_mean = np.concatenate([
            encode(test_images[i:i + 1000], None if labels is None else labels[i:i + 1000])
            for i in range(0, len(test_images), 1000)])
        save_latent_scatter(z_mean, test_labels, os.path.join(run_dir, LATENT_PNG),
                            vae.config.label_names)
        drawn["latent_scatter_png"] = LATENT_PNG
    return drawn


TEMPERATURES = (0.3, 0.6, 0.8, 1.0)
"""The rows of a hierarchy's temperatures.png."""
LEVEL_IMAGES, LEVEL_DRAWS = 4, 8
"""levels.png: test images, and draws per level kept."""


def _draw_hierarchy(vae, test_images: np.ndarray, labels, run_dir: str, seed: int) -> dict:
    """temperatures.png: the same noise drawn at every temperature of `TEMPERATURES`, a
    named row each (a conditional model: class 0). levels.png: for a few test images,
    what each level holds (VDVAE's figure): the image, then draws that keep its
    posterior's levels from l up and redraw those below, a row per image and l."""
    from keras import ops

    class_zero = np.zeros(SAMPLES_PER_CLASS) if vae.config.conditional else None
    rows = [vae.sample_images(vae.sample_inputs(SAMPLES_PER_CLASS, seed, class_zero, t))
            for t in TEMPERATURES]
    canvas = tile(np.concatenate(rows), len(rows), SAMPLES_PER_CLASS)
    save_png(with_row_names(as_picture(canvas), [f"t = {t}" for t in TEMPERATURES]),
             os.path.join(run_dir, TEMPERATURES_PNG))
    any_labels = np.zeros(LEVEL_DRAWS, np.int64) if vae.config.conditional else None
    noise = vae.sample_inputs(LEVEL_DRAWS, seed + 1, any_labels)["noise"]  # labels unused
    images, names = [], []
    for i in range(min(LEVEL_IMAGES, len(test_images))):  # a small folder has fewer
        image = test_images[i:i + 1]
        for first_kept, name in kept_rows(vae.config):
            label = None if labels is None else np.repeat(labels[i:i + 1], LEVEL_DRAWS)
            drawn = vae.keep_levels_and_redraw(np.repeat(image, LEVEL_DRAWS, 0), label,
                                               first_kept, noise)
            images.append(np.concatenate([image, ops.convert_to_numpy(drawn)]))
            names.append(name)
    canvas = tile(np.concatenate(images), len(images), LEVEL_DRAWS + 1)
    save_png(with_row_names(as_picture(canvas), names), os.path.join(run_dir, LEVELS_PNG))
    return {"temperatures_png": TEMPERATURES_PNG, "levels_png": LEVELS_PNG}


def kept_rows(config) -> list[tuple[int, str]]:
    """The rows of levels.png: (the first level kept, 1-based; the row's name). A dense
    hierarchy keeps z_l and above for each l > 1; a spatial model keeps whole
    resolutions — the coarsest, then it and the next finer, … — so that each row shows
    what the finer resolutions below it add."""
    if not config.spatial:
        return [(level, f"z{level}+ kept") for level in range(2, len(config.levels) + 1)]
    maps = config.latent_maps
    return [(i + 1, f"{m.height}x{m.width}+ kept") for i, m in enumerate(maps)
            if i and maps[i - 1].resolution != m.resolution]


def _draw_samples(vae, path: str, seed: int) -> None:
    """samples.png: 64 draws from the prior, or for a conditional model one named row per
    class, each column one draw of noise given every class."""
    if not vae.config.conditional:
        save_grid(vae.sample_images(vae.sample_inputs(N_SAMPLES, seed)), path)
        return
    names = vae.config.label_names
    inputs = every_class(vae.sample_inputs(SAMPLES_PER_CLASS, seed,
                                           labels=np.zeros(SAMPLES_PER_CLASS)), len(names))
    canvas = tile(vae.sample_images(inputs), len(names), SAMPLES_PER_CLASS)
    save_png(with_row_names(as_picture(canvas), names), path)
