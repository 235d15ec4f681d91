"""The anomaly scorer, exported beside the decoder: `vae_scorer` for TF Serving and
scorer.onnx for onnxruntime and the browser page.

`vae_scorer`'s `serving_default`: `images` uint8 [N, H, W, C] (pixels as stored, 0…255)
→ `score` float32 [N] (higher = more unusual), `neg_log_likelihood` [N] nats,
`bits_per_dim` [N], `flagged` bool [N] (score above the run's threshold) and
`pixel_map` float32 [N, H, W] (−log p(x_ij | z) at the posterior mean). The score's
noise, the VampPrior's components and the run's calibration are constants in the graph
(`keras_vae.measure.scoring`), so every format computes the same numbers for the same image.
scorer.onnx carries the calibration in its metadata too (`threshold`, `fpr`, `k`).

Verified as the decoder is, on images made from the parity batch's decoded images and
their negatives: every output of the SavedModel and the ONNX file against Keras. The
score is a difference of likelihoods of thousands of nats over their spread, so its
float32 rounding is larger than an image's; `SCORE_TOLERANCE` bounds it.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from export.endpoints import Endpoint, run_keras
from export.onnx_model import onnx_function, write_onnx
from export.saved_model import saved_model_function, write_saved_model
from keras_vae.measure.scoring import in_batches

SCORER_FILES = {"scorer_saved_model": "vae_scorer", "scorer_onnx": "scorer.onnx"}
SCORE_TOLERANCE = 2e-3
"""Most the exported `score` may differ from Keras's, scaled: |diff| / max(1, |score|),
the score in standard deviations of the validation images' terms. An image far from the
data has −log p(x) of 10¹⁶ nats and more (its code lies where the VampPrior's narrow
components give it no density), whose float32 rounding is relative. −log p(x) itself is
held to the decoder's bound. Measured on the default Fashion-MNIST model:
docs/scoring.md."""


def scorer_endpoint(scorer) -> Endpoint:
    """The exported scorer: `scorer.function()` (`keras_vae.measure.scoring.Scorer`) by name."""
    function = scorer.function()
    shape = tuple(scorer.vae.config.image_shape)
    example = function(tf.zeros([1, *shape], tf.uint8))
    outputs = {name: (None, *value.shape[1:]) for name, value in example.items()}
    return Endpoint("vae_scorer", {"images": (None, *shape)}, outputs, function)


def scorer_metadata(metadata: dict, calibration, resize: bool) -> dict[str, str]:
    """The decoder's ONNX metadata with the scorer's role and calibration, and whether
    images are resized to the model's size (runs trained with --image-size)."""
    return {**metadata, "role": "scorer", "resize": str(resize).lower(),
            "threshold": repr(calibration.threshold),
            "fpr": repr(calibration.fpr), "k": str(calibration.k),
            "score": ("max(|z of -log p(x)|, z of the likelier other view); "
                      "keras_vae.measure.scoring")}


def write_scorer(vae, endpoint: Endpoint, staging: str, metadata: dict) -> dict[str, str]:
    """Writes both scorer files into `staging`; returns their staged paths."""
    staged = {key: os.path.join(staging, name) for key, name in SCORER_FILES.items()}
    write_saved_model(endpoint, vae, staged["scorer_saved_model"])
    write_onnx(endpoint, staged["scorer_onnx"], metadata)
    return staged


PARITY_IMAGES = 16
"""Of the decoder's parity images (the first four drawn at 4σ), how many the scorer is
verified on, with their negatives: each scoring runs every model 65 times."""


def parity_images(decoded: np.ndarray) -> np.ndarray:
    """uint8 images to verify the scorer on: the first `PARITY_IMAGES` of the decoder's
    parity images and their negatives (likely and very unlikely ones)."""
    pixels = np.round(np.clip(decoded[:PARITY_IMAGES], 0.0, 1.0) * 255).astype(np.uint8)
    return np.concatenate([pixels, 255 - pixels])


def scorer_parity(endpoint: Endpoint, staged: dict[str, str], images: np.ndarray,
                  batch_size: int) -> dict:
    """{format: {"score", "neg_log_likelihood", "flagged_differ"}}: the largest scaled
    differences (|diff| / max(1, |Keras value|), as `parity`) of the score and of
    −log p(x), and how many images a format flags otherwise than Keras. Each runs
    `batch_size` images at a time (`keras_vae.measure.scoring.batch_size_for`): 32 images at
    once held 19 GB for a 64×64 spatial model."""
    reference = in_batches(lambda part: run_keras(endpoint, part.numpy()), images,
                           batch_size)
    found = {}
    for key, opened in (("scorer_saved_model", saved_model_function),
                        ("scorer_onnx", onnx_function)):
        run = opened(staged[key])  # once: a file opened per batch kept memory each time
        outputs = in_batches(lambda part, run=run: run(part.numpy()), images, batch_size)
        nll = np.abs(outputs["neg_log_likelihood"] - reference["neg_log_likelihood"])
        found[key] = {
            "score": float((np.abs(outputs["score"] - reference["score"]) / np.maximum(
                1.0, np.abs(reference["score"]))).max()),
            "neg_log_likelihood": float((nll / np.maximum(
                1.0, np.abs(reference["neg_log_likelihood"]))).max()),
            "flagged_differ": int((outputs["flagged"] != reference["flagged"]).sum())}
    return found


def scorer_misses(parity: dict, tolerance: float) -> list[str]:
    """Each scorer file whose score or likelihood is off beyond its bound."""
    return [f"{key} score differs by {m['score']:.3g} (bound {SCORE_TOLERANCE}), "
            f"−log p(x) by {m['neg_log_likelihood']:.3g} (bound {tolerance})"
            for key, m in parity.items()
            if not (m["score"] <= SCORE_TOLERANCE and m["neg_log_likelihood"] <= tolerance)]

