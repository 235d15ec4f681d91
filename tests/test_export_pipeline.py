"""Specification of export/pipeline.py (and the formats it writes): every artifact the
three kinds of users receive, verified against the Keras model."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import onnx
import pytest
import tensorflow as tf

from export import pipeline, verify
from export.endpoints import decoder_endpoint, run_keras
from export.litert import run_tflite
from export.manifest import fingerprint
from export.onnx_model import read_metadata, run_onnx
from export.saved_model import run_saved_model
from export.verify import FP32_TOLERANCE, INT8_IMAGE_MAD, INT8_SIZE_RATIO, parity_latents
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


@pytest.mark.parametrize("batch", [1, 7, 300])
def test_decoders_in_every_format_take_any_batch_size(small_export, batch):
    z = np.random.default_rng(batch).standard_normal((batch, LATENT_DIM)).astype(np.float32)
    expected = run_keras(decoder_endpoint(small_export["vae"].decoder), z)
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


def test_onnx_files_are_opset_17_with_names_dynamic_batch_and_metadata(small_export):
    paths = small_export["paths"]
    for key, inputs, outputs in (("decoder_onnx", ["z"], ["image", "logits"]),
                                 ("encoder_onnx", ["image"], ["z_log_var", "z_mean"])):
        model = onnx.load(paths[key])
        onnx.checker.check_model(model)
        assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
        assert [i.name for i in model.graph.input] == inputs
        assert sorted(o.name for o in model.graph.output) == outputs
        assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    metadata = read_metadata(paths["decoder_int8_onnx"])
    assert metadata["latent_dim"] == str(LATENT_DIM)
    assert metadata["dataset"] == "binarized_mnist"
    assert metadata["prior"] == "normal"
    assert json.loads(metadata["model_config"])["hidden_dims"] == [64]
    assert metadata["quantization"].startswith("dynamic int8")


def test_tflite_uses_builtin_ops_only(small_export):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=small_export["paths"]["decoder_tflite"])
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert ops and not any("Flex" in op or "Custom" in op for op in ops), ops


def test_manifest_lists_sizes_hashes_names_shapes_and_parity(small_export):
    export_dir = small_export["export_dir"]
    with open(os.path.join(export_dir, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["version"] == 1
    for key, entry in manifest["artifacts"].items():
        path = os.path.join(export_dir, entry["path"])
        assert fingerprint(path) == {"bytes": entry["bytes"], "sha256": entry["sha256"]}, key
    decoder = manifest["artifacts"]["decoder_saved_model"]
    assert decoder["inputs"] == {"z": [-1, LATENT_DIM]}
    assert decoder["outputs"] == {"image": [-1, 28, 28, 1], "logits": [-1, 28, 28, 1]}
    assert decoder["parity_vs_keras"] == small_export["parity"]["decoder_saved_model"]
    assert manifest["artifacts"]["encoder_onnx"]["inputs"] == {"image": [-1, 28, 28, 1]}
    assert manifest["artifacts"]["decoder_int8_onnx"]["int8_vs_fp32_onnx"] == small_export[
        "int8"]


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


def test_parity_latents_are_fixed_and_reach_the_tails():
    z = parity_latents(LATENT_DIM)
    np.testing.assert_array_equal(z, parity_latents(LATENT_DIM))
    assert np.abs(z[:4]).max() > 4 and np.abs(z[4:]).max() < 5


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


def test_int8_falls_back_to_per_channel_scales_when_per_tensor_misses_the_bound(
        small_export, tmp_path, monkeypatch):
    per_tensor_mad = small_export["int8"]["image_mean_abs_diff"]
    assert small_export["int8"]["weight_scales"] == "per tensor"  # the faster, when it fits
    calls = []
    write_int8 = pipeline.write_int8
    monkeypatch.setattr(pipeline, "write_int8",
                        lambda *args: calls.append(args[-1]) or write_int8(*args))
    monkeypatch.setattr(verify, "INT8_IMAGE_MAD", per_tensor_mad * 0.999)
    try:
        result = pipeline.export_model(small_export["vae"], str(tmp_path / "export"),
                                       _config(small_export["vae"]))
    except RunFailure as error:  # per channel may not fit such a tight bound either
        assert "int8 decoder image MAD" in str(error)
    else:
        assert result["int8"]["weight_scales"] == "per channel"
        assert result["int8"]["image_mean_abs_diff"] < per_tensor_mad
    assert calls == [False, True]


def test_a_vamp_prior_model_ships_its_prior_beside_the_decoder(vamp_export, small_export):
    export_dir = vamp_export["export_dir"]
    assert "prior.npz" in os.listdir(export_dir)
    assert "prior.npz" not in os.listdir(small_export["export_dir"])
    assert vamp_export["paths"]["prior"] == os.path.join(export_dir, "prior.npz")
    with np.load(vamp_export["paths"]["prior"]) as stored:
        for name, expected in zip(("means", "log_vars"), vamp_export["vae"].prior(),
                                  strict=True):
            assert stored[name].dtype == np.float32 and stored[name].shape == (10, LATENT_DIM)
            np.testing.assert_array_equal(stored[name], keras.ops.convert_to_numpy(expected))
    with open(os.path.join(export_dir, "manifest.json")) as f:
        entry = json.load(f)["artifacts"]["prior"]
    assert entry["path"] == "prior.npz" and entry["means_shape"] == [10, LATENT_DIM]
    assert entry == {**entry, **fingerprint(vamp_export["paths"]["prior"])}


def test_a_vamp_prior_decoder_names_its_prior_in_onnx_and_saved_model(vamp_export):
    assert read_metadata(vamp_export["paths"]["decoder_onnx"])["prior"] == "vamp"
    signatures = tf.saved_model.load(vamp_export["paths"]["decoder_saved_model"]).signatures
    assert set(signatures) == {"serving_default", "vamp_prior"}
    components = signatures["vamp_prior"](index=tf.constant([0, 9], tf.int64))
    means, log_vars = (keras.ops.convert_to_numpy(t) for t in vamp_export["vae"].prior())
    np.testing.assert_array_equal(components["means"].numpy(), means[[0, 9]])
    np.testing.assert_array_equal(components["log_vars"].numpy(), log_vars[[0, 9]])
    with pytest.raises(tf.errors.InvalidArgumentError):
        signatures["vamp_prior"](index=tf.constant([10], tf.int64))  # K = 10 components
