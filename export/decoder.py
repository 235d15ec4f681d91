"""The decoder as it leaves the repository: one signature, two formats, checked parity.

Signature (both formats): input `z` float32 [N, latent_dim] → outputs `image`, the Bernoulli
means sigmoid(logits) in [0, 1], and `logits`, both float32 [N, 28, 28, 1]. The batch
dimension is dynamic. TF Serving calls the SavedModel's `serving_default` signature; the
ONNX file carries the same names and, as metadata, the latent size and the run's config.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

import keras_vae
from keras_vae.atomic import atomic_path
from keras_vae.cli import RunFailure

DECODER_INPUT = "z"
DECODER_OUTPUTS = ("image", "logits")
ONNX_OPSET = 17
PARITY_TOLERANCE = 1e-5
"""Max |diff| / max(1, |keras value|) allowed between an fp32 artifact and Keras.

For `image` (values in [0, 1]) this is the absolute difference. Logits of a trained
decoder reach |50| and more, where float32 itself rounds by more than 1e-5 (the Keras
decoder is 1.7e-5 away from a float64 computation at |logit| ≈ 56), so for them the bound
is relative.
"""

PARITY_BATCH = 64
PARITY_SEED = 1234


def serving_function(decoder: keras.Model) -> tf.types.experimental.GenericFunction:
    """The decoder as a tf.function with the exported signature."""
    latent_dim = decoder.input_shape[-1]

    @tf.function(input_signature=[tf.TensorSpec([None, latent_dim], tf.float32,
                                                name=DECODER_INPUT)])
    def decode(z):
        logits = decoder(z, training=False)
        return {"image": tf.sigmoid(logits), "logits": logits}

    return decode


def write_saved_model(decoder: keras.Model, path: str) -> None:
    """Writes a SavedModel whose `serving_default` is `serving_function(decoder)`."""
    archive = keras.export.ExportArchive()
    archive.track(decoder)
    archive.add_endpoint("serving_default", serving_function(decoder))
    with atomic_path(path) as tmp:
        archive.write_out(tmp, verbose=False)


def write_onnx(decoder: keras.Model, path: str, metadata: dict[str, str]) -> None:
    """Converts the serving function with tf2onnx and stores `metadata` in the file."""
    function = serving_function(decoder)
    model_proto, _ = tf2onnx.convert.from_function(
        function, input_signature=function.input_signature, opset=ONNX_OPSET)
    for key, value in metadata.items():
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value
    model_proto.producer_name = "keras-vae"
    model_proto.producer_version = keras_vae.__version__
    onnx.checker.check_model(model_proto)
    with atomic_path(path) as tmp:
        onnx.save(model_proto, tmp)


def onnx_metadata(latent_dim: int, run_config: dict) -> dict[str, str]:
    """What an onnxruntime consumer needs to know without TensorFlow: strings only."""
    return {
        "latent_dim": str(latent_dim),
        "dataset": str(run_config.get("dataset", "")),
        "model_config": json.dumps(run_config.get("model", {}), sort_keys=True),
        "keras_vae_version": keras_vae.__version__,
    }


def parity_latents(latent_dim: int) -> np.ndarray:
    """A fixed batch of z ~ N(0, I) (plus a few large values) to compare artifacts on."""
    z = np.random.default_rng(PARITY_SEED).standard_normal((PARITY_BATCH, latent_dim))
    z[:4] *= 4.0  # the tails, where saturated logits would expose a careless sigmoid
    return z.astype(np.float32)


def run_saved_model(path: str, z: np.ndarray) -> dict[str, np.ndarray]:
    signature = tf.saved_model.load(path).signatures["serving_default"]
    return {k: v.numpy() for k, v in signature(**{DECODER_INPUT: tf.constant(z)}).items()}


def run_onnx(path: str, z: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    values = session.run(list(DECODER_OUTPUTS), {DECODER_INPUT: z})
    return dict(zip(DECODER_OUTPUTS, values, strict=True))


def parity(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict:
    """{"max_abs_diff": …, "max_scaled_diff": …} over every output value (see tolerance)."""
    abs_diffs = {k: np.abs(outputs[k] - reference[k]) for k in DECODER_OUTPUTS}
    return {
        "max_abs_diff": float(max(d.max() for d in abs_diffs.values())),
        "max_scaled_diff": float(max(
            (d / np.maximum(1.0, np.abs(reference[k]))).max() for k, d in abs_diffs.items())),
    }


def export_decoder(decoder: keras.Model, export_dir: str, run_config: dict) -> dict:
    """Writes `decoder_saved_model/` and `decoder.onnx` into `export_dir` and verifies them.

    Returns:
        {"decoder_saved_model": path, "decoder_onnx": path,
         "parity": {"saved_model": {...}, "onnx": {...}}} — `parity()` against Keras.

    Raises:
        RunFailure: an artifact differs from the Keras decoder by more than
            `PARITY_TOLERANCE`.
    """
    latent_dim = decoder.input_shape[-1]
    saved_model_path = os.path.join(export_dir, "decoder_saved_model")
    onnx_path = os.path.join(export_dir, "decoder.onnx")
    write_saved_model(decoder, saved_model_path)
    write_onnx(decoder, onnx_path, onnx_metadata(latent_dim, run_config))

    z = parity_latents(latent_dim)
    reference = {k: v.numpy() for k, v in serving_function(decoder)(tf.constant(z)).items()}
    measured = {
        "saved_model": parity(run_saved_model(saved_model_path, z), reference),
        "onnx": parity(run_onnx(onnx_path, z), reference),
    }
    failed = {name: m["max_scaled_diff"] for name, m in measured.items()
              if not m["max_scaled_diff"] <= PARITY_TOLERANCE}
    if failed:
        raise RunFailure(
            f"exported decoder differs from the Keras model by {failed} (allowed "
            f"{PARITY_TOLERANCE}); the artifacts in {export_dir} are not trustworthy")
    return {"decoder_saved_model": saved_model_path, "decoder_onnx": onnx_path,
            "parity": measured}
