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
- int8 ONNX decoder, against the fp32 ONNX decoder on `INT8_BATCH` draws from the model's
  own prior (the VampPrior's mixture for VampPrior models, with every class in turn for
  conditional ones): what sampling feeds it, in a batch of its own, since dynamic int8
  scales the activations per batch. Every output is compared: `image` by its absolute
  difference (pixels in [0, 1]), the likelihood's parameters by the scaled difference
  above. Mean, 99th percentile and maximum are reported; the mean and the 99th
  percentile are bounded (`INT8_BOUNDS`), since a mean alone is diluted by the many
  background pixels that both decoders saturate alike. The file is ≤ 30 % of fp32.
"""

from __future__ import annotations

import os

import numpy as np

from keras_vae.run.cli import RunFailure

FP32_TOLERANCE = 1e-3
"""Most an fp32 artifact may differ from Keras, scaled (|diff| / max(1, |Keras|)). Dense
decoders differ by 1e-7 to 1e-5; a 64×64 spatial decoder's 30-odd convolutions by
1.96e-4 in LiteRT (XNNPACK sums in another order; 2026-12-06); a wrong layout, scale or
op differs by far more than 1e-3."""
INT8_BOUNDS = {"image": {"mean": 0.01, "p99": 0.08},
               "parameters": {"mean": 0.05, "p99": 0.3}}
"""Most a dynamic-int8 decoder may differ from fp32: `image` in pixels, the likelihood's
parameters scaled (|diff| / max(1, |fp32|)). Trained decoders measured well inside them
(docs/export-and-serving.md); a wrong scale or layout is off by far more."""
INT8_BATCH = 256
INT8_ROWS_PER_CALL = 32
"""The int8 check runs its draws this many at a time (memory: `run_onnx`)."""
INT8_SIZE_RATIO = 0.30
PARITY_BATCH = 64
PARITY_SEED = 1234
SATURATING_ROWS = 4
"""The first rows of the fp32 parity batch, scaled to 4σ to reach saturated pixels."""


def parity_latents(latent_dim: int) -> np.ndarray:
    """A fixed batch of z ~ N(0, I), the first `SATURATING_ROWS` scaled to 4σ to reach
    saturated pixels."""
    z = np.random.default_rng(PARITY_SEED).standard_normal((PARITY_BATCH, latent_dim))
    z[:SATURATING_ROWS] *= 4.0
    return z.astype(np.float32)


def parity_inputs(decoder_inputs: dict, classes: int) -> dict:
    """The fixed fp32 parity batch for a decoder's inputs (`Endpoint.inputs`): z or noise
    from `parity_latents`, temperatures from 0.5 to 1.5, labels from `parity_labels`, a
    VampPrior hierarchy's component draws from 0 to 1 (both ends included: 1 picks the
    last component)."""
    values = {"label": lambda shape: parity_labels(classes),
              "component_draw": lambda shape: np.linspace(0.0, 1.0, PARITY_BATCH,
                                                          dtype=np.float32),
              "temperature": lambda shape: np.linspace(0.5, 1.5, PARITY_BATCH,
                                                       dtype=np.float32)}
    return {name: values.get(name, lambda shape: parity_latents(shape[-1]))(shape)
            for name, shape in decoder_inputs.items()}


def int8_check_inputs(vae) -> dict:
    """The int8 check's decoder inputs: `INT8_BATCH` draws from the model's own prior
    (`VAE.sample_inputs`: N(0, I), the VampPrior's mixture, or a conditional model's class
    prior with the classes 0, 1, …, classes − 1 in turn)."""
    labels = np.arange(INT8_BATCH) % max(1, vae.config.classes)
    return vae.sample_inputs(INT8_BATCH, PARITY_SEED, labels=labels)


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
    """{"outputs": {name: {"mean", "p99", "max"}}, "size_ratio"}: each output's
    differences (absolute for `image`, scaled for the parameters) and the file sizes."""
    outputs = {}
    for name, reference in fp32_outputs.items():
        diff = np.abs(int8_outputs[name] - reference)
        if name != "image":
            diff = diff / np.maximum(1.0, np.abs(reference))
        outputs[name] = {"mean": float(diff.mean()), "p99": float(np.percentile(diff, 99)),
                         "max": float(diff.max())}
    return {"outputs": outputs,
            "size_ratio": os.path.getsize(int8_path) / os.path.getsize(fp32_path)}


def int8_misses(int8: dict) -> list[str]:
    """Every `INT8_BOUNDS` bound or size bound that the int8 decoder exceeds."""
    found = []
    for name, measured in int8["outputs"].items():
        bounds = INT8_BOUNDS["image" if name == "image" else "parameters"]
        found += [f"int8 decoder {name} {statistic} difference {measured[statistic]:.3g} "
                  f"(bound {bound})" for statistic, bound in bounds.items()
                  if not measured[statistic] <= bound]
    if not int8["size_ratio"] <= INT8_SIZE_RATIO:
        found.append(f"int8 decoder is {int8['size_ratio']:.0%} of fp32 "
                     f"(bound {INT8_SIZE_RATIO:.0%})")
    return found


def parity_misses(fp32: dict[str, dict]) -> list[str]:
    """Every fp32 artifact that differs from Keras beyond `FP32_TOLERANCE`, as readable
    phrases (empty: all verified)."""
    return [f"{name} differs by {m['max_scaled_diff']:.3g} (bound {FP32_TOLERANCE})"
            for name, m in fp32.items() if not m["max_scaled_diff"] <= FP32_TOLERANCE]
