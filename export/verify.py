"""Proof that each exported file computes what the trained Keras model computes.

Every artifact runs on one fixed batch — latents z for the decoders, the decoded images
for the encoder, and for a conditional model labels for both (every class in turn, and
two out of range, so every format is held to the same answer for those) — and is
compared with the Keras model on the same batch.

Bounds:
- fp32 artifacts (SavedModel, ONNX, LiteRT): |diff| / max(1, |Keras value|) ≤ 1e-4 for
  every output value. For outputs in [0, 1] (`image`) that is the absolute difference;
  logits of a trained decoder reach |50| and more, so for large values it is relative.
  The bound is float32's own accuracy with a margin, not a guess: the Keras decoder of a
  trained gated VampPrior model is itself 1.06e-5 (scaled) from a float64 computation
  at the same z, and its ONNX file 2.0e-5, as summing hundreds of products in float32
  leaves errors near 1e-5 even on logits close to 0. A wrong weight, op or layout is
  off by orders of magnitude more.
- int8 ONNX decoder: mean |image − fp32 ONNX image| ≤ 0.01 and file size ≤ 30 % of fp32,
  measured on the batch's prior draws alone (`prior_draws`). Dynamic int8 scales the
  activations per batch, so the 4σ rows, which a prior sample almost never reaches, would
  coarsen every row beside them: on a gated VampPrior decoder of Fashion-MNIST (logistic
  likelihood) they raised the prior draws' MAD from 0.0045 to 0.0150 (per-channel weight
  scales).
"""

from __future__ import annotations

import os

import numpy as np

from keras_vae.cli import RunFailure

FP32_TOLERANCE = 1e-4
INT8_IMAGE_MAD = 0.01
INT8_SIZE_RATIO = 0.30
PARITY_BATCH = 64
PARITY_SEED = 1234
SATURATING_ROWS = 4
"""The first rows of the parity batch, scaled to 4σ to reach saturated pixels."""


def parity_latents(latent_dim: int) -> np.ndarray:
    """A fixed batch of z ~ N(0, I), the first `SATURATING_ROWS` scaled to 4σ to reach
    saturated pixels."""
    z = np.random.default_rng(PARITY_SEED).standard_normal((PARITY_BATCH, latent_dim))
    z[:SATURATING_ROWS] *= 4.0
    return z.astype(np.float32)


def prior_draws(inputs: dict) -> dict:
    """The parity batch's decoder inputs without the 4σ rows: what sampling feeds it."""
    return {name: value[SATURATING_ROWS:] for name, value in inputs.items()}


def parity_labels(classes: int) -> np.ndarray:
    """int64 labels of the parity batch: 0, 1, …, classes − 1 in turn, the last two rows
    −1 and `classes` (out of range)."""
    labels = np.arange(PARITY_BATCH) % classes
    labels[-2:] = (-1, classes)
    return labels.astype(np.int64)


def parity(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict:
    """{"max_abs_diff", "max_scaled_diff"} over every value of every reference output."""
    if set(outputs) != set(reference):
        raise RunFailure(f"exported outputs {sorted(outputs)} differ from the model's "
                         f"{sorted(reference)}")
    abs_diffs = {k: np.abs(outputs[k] - reference[k]) for k in reference}
    return {
        "max_abs_diff": float(max(d.max() for d in abs_diffs.values())),
        "max_scaled_diff": float(max(
            (d / np.maximum(1.0, np.abs(reference[k]))).max() for k, d in abs_diffs.items())),
    }


def int8_quality(int8_outputs: dict, fp32_outputs: dict, int8_path: str,
                 fp32_path: str) -> dict:
    return {
        "image_mean_abs_diff": float(np.mean(np.abs(int8_outputs["image"]
                                                    - fp32_outputs["image"]))),
        "size_ratio": os.path.getsize(int8_path) / os.path.getsize(fp32_path),
    }


def misses(fp32: dict[str, dict], int8: dict) -> list[str]:
    """Every bound that a measurement exceeds, as readable phrases (empty: all verified)."""
    found = [f"{name} differs by {m['max_scaled_diff']:.3g} (bound {FP32_TOLERANCE})"
             for name, m in fp32.items() if not m["max_scaled_diff"] <= FP32_TOLERANCE]
    if not int8["image_mean_abs_diff"] <= INT8_IMAGE_MAD:
        found.append(f"int8 decoder image MAD {int8['image_mean_abs_diff']:.3g} "
                     f"(bound {INT8_IMAGE_MAD})")
    if not int8["size_ratio"] <= INT8_SIZE_RATIO:
        found.append(f"int8 decoder is {int8['size_ratio']:.0%} of fp32 "
                     f"(bound {INT8_SIZE_RATIO:.0%})")
    return found
