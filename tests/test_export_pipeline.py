"""Specification of export/pipeline.py (and the formats it writes): every artifact the
three kinds of users receive, verified against the Keras model."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import onnx
import pytest

from export import pipeline
from export.endpoints import decoder_endpoint, run_keras
from export.litert import run_tflite
from export.manifest import fingerprint
from export.onnx_model import run_onnx
from export.saved_model import run_saved_model
from export.verify import (
    FP32_TOLERANCE,
    INT8_IMAGE_MAD,
    INT8_SIZE_RATIO,
    SATURATING_ROWS,
    parity_latents,
    prior_draws,
)
from keras_vae.cli import RunFailure
from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.model import VAE

LATENT_DIM = 6


def _config(vae) -> TrainConfig:
    return TrainConfig(model=vae.config, dataset="binarized_mnist")


def test_export_dir_has_the_tf_serving_layout_and_every_file(small_export):
    export_dir = small_export["export_dir"]
    assert sorted(os.listdir(export_dir)) == [
        "decoder.onnx", "decoder.tflite", "decoder_int8.onnx", "encoder.onnx", "manifest.json",
        "vae_decoder", "vae_encoder"]
    for model in ("vae_decoder", "vae_encoder"):
        assert os.listdir(os.path.join(export_dir, model)) == ["1"]
        assert os.path.isfile(os.path.join(export_dir, model, "1", "saved_model.pb"))
        assert os.path.isdir(os.path.join(export_dir, model, "1", "variables"))


def test_every_fp32_artifact_matches_keras_within_the_bound(small_export):
    assert set(small_export["parity"]) == {"decoder_saved_model", "decoder_onnx",
                                           "decoder_tflite", "encoder_saved_model",
                                           "encoder_onnx"}
    for name, measured in small_export["parity"].items():
        assert measured["max_scaled_diff"] <= FP32_TOLERANCE, name
    assert small_export["parity"]["decoder_onnx"]["max_abs_diff"] > 0  # a different runtime


def test_int8_decoder_is_small_and_close_to_fp32(small_export):
    int8 = small_export["int8"]
    assert int8["size_ratio"] <= INT8_SIZE_RATIO
    assert 0 < int8["image_mean_abs_diff"] <= INT8_IMAGE_MAD
    paths = small_export["paths"]
    ratio = os.path.getsize(paths["decoder_int8_onnx"]) / os.path.getsize(paths["decoder_onnx"])
    assert ratio == pytest.approx(int8["size_ratio"])
    nodes = {n.op_type for n in onnx.load(paths["decoder_int8_onnx"]).graph.node}
    assert "DynamicQuantizeLinear" in nodes and "MatMulInteger" in nodes


def test_int8_quality_is_that_of_the_prior_draws_in_their_own_batch(small_export):
    """Dynamic int8 scales activations per batch: the 4σ rows of the parity batch are left
    out, so they do not coarsen the images that sampling actually produces."""
    paths, z = small_export["paths"], parity_latents(LATENT_DIM)
    assert len(prior_draws({"z": z})["z"]) == len(z) - SATURATING_ROWS

    def image_mad(inputs):
        int8, fp32 = (run_onnx(paths[key], inputs)["image"]
                      for key in ("decoder_int8_onnx", "decoder_onnx"))
        return float(np.mean(np.abs(int8 - fp32)))

    reported = small_export["int8"]["image_mean_abs_diff"]
    assert reported == pytest.approx(image_mad(prior_draws({"z": z})), rel=1e-6)
    assert reported != pytest.approx(image_mad({"z": z}), rel=1e-3)


@pytest.mark.parametrize("batch", [1, 7, 300])
def test_decoders_in_every_format_take_any_batch_size(small_export, batch):
    z = np.random.default_rng(batch).standard_normal((batch, LATENT_DIM)).astype(np.float32)
    vae = small_export["vae"]
    expected = run_keras(decoder_endpoint(vae.decoder, vae.likelihood), z)
    paths = small_export["paths"]
    for run, path in ((run_onnx, paths["decoder_onnx"]),
                      (run_saved_model, paths["decoder_saved_model"]),
                      (run_tflite, paths["decoder_tflite"])):
        outputs = run(path, z)
        assert set(outputs) == {"image", "logits"}
        assert outputs["image"].shape == (batch, 28, 28, 1)
        np.testing.assert_allclose(outputs["logits"], expected["logits"], atol=1e-5)


def test_encoder_formats_map_images_to_z_mean_and_z_log_var(small_export):
    images = np.random.default_rng(0).random((5, 28, 28, 1)).astype(np.float32)
    paths = small_export["paths"]
    for outputs in (run_onnx(paths["encoder_onnx"], images),
                    run_saved_model(paths["encoder_saved_model"], images)):
        assert {k: v.shape for k, v in outputs.items()} == {"z_mean": (5, LATENT_DIM),
                                                            "z_log_var": (5, LATENT_DIM)}


def test_a_second_export_adds_version_2_and_keeps_version_1(small_export, tmp_path):
    export_dir = str(tmp_path)
    first = pipeline.export_model(small_export["vae"], export_dir, _config(small_export["vae"]))
    v1 = fingerprint(first["paths"]["decoder_saved_model"])
    second = pipeline.export_model(small_export["vae"], export_dir, _config(small_export["vae"]))
    assert (first["version"], second["version"]) == (1, 2)
    assert sorted(os.listdir(os.path.join(export_dir, "vae_decoder"))) == ["1", "2"]
    assert fingerprint(first["paths"]["decoder_saved_model"]) == v1


def test_a_failed_verification_publishes_nothing(small_export, tmp_path, monkeypatch):
    export_dir = str(tmp_path)
    pipeline.export_model(small_export["vae"], export_dir, _config(small_export["vae"]))
    before = {path: fingerprint(os.path.join(export_dir, path))
              for path in os.listdir(export_dir)}

    def off_by_a_little(path, inputs):
        return {k: v + 1e-3 for k, v in run_tflite(path, inputs).items()}

    monkeypatch.setattr(pipeline, "run_tflite", off_by_a_little)
    with pytest.raises(RunFailure, match=r"decoder_tflite differs by 0\.001"):
        pipeline.export_model(small_export["vae"], export_dir, _config(small_export["vae"]))
    after = {path: fingerprint(os.path.join(export_dir, path)) for path in os.listdir(export_dir)}
    assert after == before  # no version 2, no staging leftovers, files untouched


@pytest.mark.parametrize("arch", ["conv", "gated"])
def test_other_architectures_export_with_the_same_names_and_shapes(small_export, tmp_path,
                                                                   arch):
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(latent_dim=LATENT_DIM, hidden_dims=(256,), arch=arch))
    export_dir = str(tmp_path / arch)
    pipeline.export_model(vae, export_dir, _config(vae))  # raises if unverified

    def names_and_shapes(directory):
        with open(os.path.join(directory, "manifest.json")) as f:
            artifacts = json.load(f)["artifacts"]
        return {key: (entry.get("inputs"), entry.get("outputs"))
                for key, entry in artifacts.items()}

    assert names_and_shapes(export_dir) == names_and_shapes(small_export["export_dir"])
    assert os.path.exists(os.path.join(export_dir, "decoder_int8.onnx"))


