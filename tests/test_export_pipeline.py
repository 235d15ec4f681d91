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
    INT8_BOUNDS,
    INT8_ROWS_PER_CALL,
    INT8_SIZE_RATIO,
    int8_check_inputs,
)
from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.model.networks import NETWORKS
from keras_vae.model.vae import VAE
from keras_vae.run.cli import RunFailure

LATENT_DIM = 6


def _config(vae) -> TrainConfig:
    return TrainConfig(model=vae.config, dataset="binarized_mnist")


def test_export_dir_has_the_tf_serving_layout_and_every_file(small_export):
    export_dir = small_export["export_dir"]
    assert sorted(os.listdir(export_dir)) == [
        "decoder.onnx", "decoder.tflite", "decoder_int8.onnx", "encoder.onnx",
        "latent_decoder.onnx", "manifest.json", "scorer.onnx", "vae_decoder", "vae_encoder",
        "vae_scorer", "web"]
    for model in ("vae_decoder", "vae_encoder", "vae_scorer"):
        assert os.listdir(os.path.join(export_dir, model)) == ["1"]
        assert os.path.isfile(os.path.join(export_dir, model, "1", "saved_model.pb"))
        assert os.path.isdir(os.path.join(export_dir, model, "1", "variables"))


def test_every_fp32_artifact_matches_keras_within_the_bound(small_export):
    assert set(small_export["parity"]) == {"decoder_saved_model", "decoder_onnx",
                                           "decoder_tflite", "encoder_saved_model",
                                           "encoder_onnx", "latent_decoder_saved_model",
                                           "latent_decoder_onnx"}
    for name, measured in small_export["parity"].items():
        assert measured["max_scaled_diff"] <= FP32_TOLERANCE, name
    assert small_export["parity"]["decoder_onnx"]["max_abs_diff"] > 0  # a different runtime


def test_int8_decoder_is_small_and_close_to_fp32_in_every_output(small_export):
    int8 = small_export["int8"]
    assert int8["size_ratio"] <= INT8_SIZE_RATIO
    assert set(int8["outputs"]) == {"image", "logits"}
    for name, measured in int8["outputs"].items():
        bounds = INT8_BOUNDS["image" if name == "image" else "parameters"]
        assert 0 < measured["mean"] <= measured["p99"] <= measured["max"], name
        assert measured["mean"] <= bounds["mean"] and measured["p99"] <= bounds["p99"], name
    paths = small_export["paths"]
    ratio = os.path.getsize(paths["decoder_int8_onnx"]) / os.path.getsize(paths["decoder_onnx"])
    assert ratio == pytest.approx(int8["size_ratio"])
    nodes = {n.op_type for n in onnx.load(paths["decoder_int8_onnx"]).graph.node}
    assert "DynamicQuantizeLinear" in nodes and "MatMulInteger" in nodes


def test_int8_quality_is_measured_on_the_models_prior_draws(vamp_export):
    """The reported differences are those of the model's own prior draws (its VampPrior
    mixture here) in their own batch, recomputed from the published files."""
    vae, paths = vamp_export["vae"], vamp_export["paths"]
    inputs = int8_check_inputs(vae)
    int8, fp32 = (run_onnx(paths[key], inputs, INT8_ROWS_PER_CALL)
                  for key in ("decoder_int8_onnx", "decoder_onnx"))
    reported = vamp_export["int8"]["outputs"]
    assert reported["image"]["mean"] == pytest.approx(
        float(np.mean(np.abs(int8["image"] - fp32["image"]))), rel=1e-6)
    scaled = np.abs(int8["logits"] - fp32["logits"]) / np.maximum(1, np.abs(fp32["logits"]))
    assert reported["logits"]["max"] == pytest.approx(float(scaled.max()), rel=1e-6)


def test_onnx_runs_its_rows_a_part_at_a_time_to_the_same_numbers(small_export):
    inputs = int8_check_inputs(small_export["vae"])
    whole = run_onnx(small_export["paths"]["decoder_onnx"], inputs)
    parts = run_onnx(small_export["paths"]["decoder_onnx"], inputs, rows_per_call=100)
    assert set(parts) == set(whole) and len(parts["image"]) == len(inputs["noise"])
    for name, value in whole.items():
        np.testing.assert_allclose(parts[name], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 7, 300])
def test_decoders_in_every_format_take_any_batch_size(small_export, batch):
    rng = np.random.default_rng(batch)
    inputs = {"noise": rng.standard_normal((batch, LATENT_DIM)).astype(np.float32),
              "temperature": rng.uniform(0.5, 1.5, batch).astype(np.float32)}
    vae = small_export["vae"]
    expected = run_keras(decoder_endpoint(vae.generator(), vae.likelihood), inputs)
    paths = small_export["paths"]
    for run, path in ((run_onnx, paths["decoder_onnx"]),
                      (run_saved_model, paths["decoder_saved_model"]),
                      (run_tflite, paths["decoder_tflite"])):
        outputs = run(path, inputs)
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
        return {k: v + 1e-2 for k, v in run_tflite(path, inputs).items()}

    monkeypatch.setattr(pipeline, "run_tflite", off_by_a_little)
    with pytest.raises(RunFailure, match=r"decoder_tflite differs by 0\.01 "):
        pipeline.export_model(small_export["vae"], export_dir, _config(small_export["vae"]))
    after = {path: fingerprint(os.path.join(export_dir, path)) for path in os.listdir(export_dir)}
    assert after == before  # no version 2, no staging leftovers, files untouched


@pytest.mark.parametrize("arch", sorted(set(NETWORKS) - {"mlp"}))
def test_every_other_network_family_exports_with_the_same_names_and_shapes(small_export,
                                                                           tmp_path, arch):
    """Every registered family (the MLP is `small_export`) passes the export's checks,
    the convolutional one's scorer included."""
    from keras_vae.measure.scoring import Scorer, calibrate
    from tests.conftest import strokes

    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli",
                          latent_dim=LATENT_DIM, hidden_dims=(256,), arch=arch))
    export_dir = str(tmp_path / arch)
    calibration = (calibrate(Scorer(vae, 4), strokes(32, seed=1), fpr=0.1)
                   if arch == "conv" else None)  # convolutions are what tf2onnx could break
    pipeline.export_model(vae, export_dir, _config(vae),  # raises if unverified
                          calibration=calibration)

    def names_and_shapes(directory):
        with open(os.path.join(directory, "manifest.json")) as f:
            artifacts = json.load(f)["artifacts"]
        return {key: (entry.get("inputs"), entry.get("outputs"))
                for key, entry in artifacts.items()}

    expected = {key: value for key, value in names_and_shapes(small_export["export_dir"]).items()
                if calibration is not None or not key.startswith("scorer")}
    assert names_and_shapes(export_dir) == expected
    assert os.path.exists(os.path.join(export_dir, "decoder_int8.onnx"))




@pytest.mark.slow
def test_a_spatial_vampprior_decoder_ships_and_its_component_draw_picks_the_sample(tmp_path):
    """`--arch spatial --prior vamp`, what the docs tell 8-bit users to add: the top map's
    mixture ships as constants, every format passes the export's checks, and the same
    noise under component draws from two components gives two pictures, from one
    component one."""
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(arch="spatial", likelihood="logistic", latent_dim=2,
                          hidden_dims=(8,), image_shape=(8, 8, 3), prior="vamp",
                          pseudo_inputs=3))
    vae.pseudo_inputs.start_at(np.random.default_rng(0).random((3, 8, 8, 3)))
    result = pipeline.export_model(vae, str(tmp_path), _config(vae))  # raises if unverified
    path = result["paths"]["decoder_onnx"]
    width = sum(vae.config.levels)
    noise = np.tile(np.random.default_rng(1).standard_normal((1, width), np.float32), (3, 1))
    images = run_onnx(path, {"noise": noise, "temperature": np.ones(3, np.float32),
                             "component_draw": np.array([0.05, 0.3, 0.9], np.float32)})["image"]
    same = run_onnx(path, {"noise": noise[:1], "temperature": np.ones(1, np.float32),
                           "component_draw": np.array([0.1], np.float32)})["image"]
    np.testing.assert_allclose(same[0], images[0], atol=1e-6)  # 0.05 and 0.1: component 0
    assert np.abs(images[0] - images[2]).max() > 1e-3  # components 0 and 2
