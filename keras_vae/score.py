"""`python -m keras_vae.score RUN DATA --out DIR`: which images don't belong to what a run
learned.

DATA takes the forms of `--dataset` (`folder:PATH`, `npz:PATH`, a TFDS name, here with a
split: `fashion_mnist:test`, the test split when none is named). Every image goes
through the run's own preprocessing (its --image-size, its channels, its pixel scale);
one that cannot be made to fit is refused in one line, before anything is scored. Writes:

    DIR/scores.csv       one row per image: id (the file, or the index), −log p(x) in nats
                         and bits/dim, the anomaly score, flagged (score above the run's
                         threshold)
    DIR/scores.png       the most and least unusual images, each above a map of where it
                         is unlikely
    DIR/histogram.png    the scores against those of the run's own validation images

The score and its threshold are `keras_vae.measure.scoring`'s; the threshold is calibrated once
per run on its validation images at `--fpr` and stored in RUN/scoring.json, which the
export carries into every format.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from keras_vae.config import DEFAULT_FPR, DEFAULT_SCORE_K, SOURCE_PREFIXES
from keras_vae.run.atomic import atomic_path
from keras_vae.run.cli import (
    ArgumentParser,
    RunFailure,
    UsageError,
    load_tensorflow,
    positive_float,
    positive_int,
    run_command,
)
from keras_vae.run.layout import check_trained_run, load_run

SCORES_CSV, SCORES_PNG, HISTOGRAM_PNG = "scores.csv", "scores.png", "histogram.png"


def read_data(spec: str, config) -> tuple[np.ndarray, list[str]]:
    """(uint8 images [N, H, W, C] on the 0…255 scale in the run's shape, an id for each)
    from DATA, or refuses in one line."""
    from keras_vae.data import sources
    from keras_vae.data.pipeline import load_splits

    if spec.startswith(SOURCE_PREFIXES):
        kind, path = spec.split(":", 1)
        sources.check_source_path(spec)
        if kind == "folder":
            found = sources.read_folder(path, config.image_size,
                                        max_pixels=config.max_image_pixels,
                                        model_size=config.model.image_shape[:2])
            ids = list(found.files)
        else:
            found = sources.read_npz(path, config.image_size, config.max_image_pixels)
            ids = [str(i) for i in range(len(found.images))]
        images = np.asarray(found.images)
    else:
        name, _, split = spec.partition(":")
        splits = load_splits(name, config.data_dir, image_size=config.image_size)
        if (split or "test") not in splits:
            raise UsageError(f"{spec}: no split {split!r}; name one of "
                             f"{', '.join(sorted(splits))}")
        images = np.asarray(splits[split or "test"].images)
        ids = [str(i) for i in range(len(images))]
    if len(images) == 0:
        raise RunFailure(f"{spec} holds no images")
    return fit_to_model(images, config.model.image_shape, spec), ids


def fit_to_model(images: np.ndarray, image_shape, source: str) -> np.ndarray:
    """Images in the model's shape on the 0…255 scale: data stored as 0/1 scaled up,
    grayscale repeated into colour; another size, or colour for a grayscale model,
    refused."""
    height, width, channels = image_shape
    if images.shape[1:3] != (height, width):
        raise RunFailure(f"{source}: its images are {images.shape[1]}×{images.shape[2]}, "
                         f"the run's are {height}×{width}; score images of that size "
                         f"(the run resizes only if it was trained with --image-size)")
    if images.shape[3] != channels:
        if images.shape[3] == 1 and channels == 3:
            images = np.repeat(images, 3, axis=-1)
        else:
            raise RunFailure(f"{source}: its images have {images.shape[3]} channels, the "
                             f"run's {channels}; convert them to grayscale first")
    return images * np.uint8(255) if int(images.max(initial=0)) <= 1 else images


def write_scores(path: str, ids: list[str], outputs: dict) -> None:
    """scores.csv, in one rename."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "neg_log_likelihood_nats", "bits_per_dim", "score", "flagged"])
        for i, name in enumerate(ids):
            writer.writerow([name, f"{outputs['neg_log_likelihood'][i]:.3f}",
                             f"{outputs['bits_per_dim'][i]:.5f}", f"{outputs['score'][i]:.4f}",
                             int(outputs["flagged"][i])])


def score(run_dir: str, data: str, out: str, k: int, fpr: float) -> str:
    """Scores DATA with the run's model into `out`; returns the closing line."""
    from keras_vae.measure.score_pictures import save_extremes, save_histogram
    from keras_vae.measure.scoring import Scorer, batch_size_for, calibration_for, in_batches

    vae, config = load_run(run_dir)
    if config.model.conditional:
        raise UsageError(f"{run_dir} is a conditional model, whose likelihood is of an "
                         f"image given its class; score with an unconditional run")
    images, ids = read_data(data, config)
    calibration = calibration_for(run_dir, vae, config, k, fpr)
    scorer = Scorer(vae, k, calibration)
    started = time.perf_counter()

    def progress(done: int) -> None:
        print(f"\rscored {done:,} of {len(images):,} images", end="", flush=True)

    outputs = in_batches(scorer.function(), images, batch_size_for(vae, k), progress)
    seconds = time.perf_counter() - started
    print()
    os.makedirs(out, exist_ok=True)
    write_scores(os.path.join(out, SCORES_CSV), ids, outputs)
    save_extremes(images, outputs["pixel_map"], outputs["score"],
                  os.path.join(out, SCORES_PNG))
    save_histogram(outputs["score"], np.asarray(calibration.validation_scores),
                   calibration.threshold, os.path.join(out, HISTOGRAM_PNG))
    flagged = int(outputs["flagged"].sum())
    return (f"{len(images):,} images scored in {seconds:.1f} s "
            f"({len(images) / seconds:,.0f} a second): {flagged:,} flagged "
            f"({flagged / len(images):.1%}; the threshold {calibration.threshold:.3f} flags "
            f"{calibration.fpr:.1%} of the run's validation images) → {out}")


def main(argv: Sequence[str]) -> None:
    parser = ArgumentParser(prog="python -m keras_vae.score",
                            description="Score images against a trained run: which ones "
                                        "don't belong.")
    parser.add_argument("run_dir", help="a run directory written by keras_vae.train")
    parser.add_argument("data", help="folder:PATH, npz:PATH or a TFDS name[:split]")
    parser.add_argument("--out", required=True, help="folder for scores.csv and pictures")
    parser.add_argument("--fpr", type=_rate, default=DEFAULT_FPR,
                        help="share of the run's validation images the threshold flags "
                             f"(default: {DEFAULT_FPR})")
    parser.add_argument("--k", type=positive_int, default=DEFAULT_SCORE_K,
                        help=f"importance samples per image (default: {DEFAULT_SCORE_K})")
    args = parser.parse_args(argv)
    check_trained_run(args.run_dir)
    if os.path.isfile(args.out):
        raise UsageError(f"--out {args.out} is a file; pass a folder")
    load_tensorflow(args.debug)
    print(score(args.run_dir, args.data, args.out, args.k, args.fpr))


def _rate(text: str) -> float:
    """An argparse `type`: a number strictly between 0 and 1."""
    value = positive_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be below 1, e.g. 0.01")
    return value


if __name__ == "__main__":
    sys.exit(run_command(main, "keras_vae.score"))
