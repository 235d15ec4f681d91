"""Specification of export/decoder.py: the signature TF Serving and onnxruntime see."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import onnx
import pytest

from export import decoder as export_decoder_module
from export.decoder import export_decoder, parity_latents, run_onnx, run_saved_model
from keras_vae.cli import RunFailure
from keras_vae.config import ModelConfig
from keras_vae.model import build_decoder

LATENT_DIM = 6
RUN_CONFIG = {"dataset": "binarized_mnist",
              "model": ModelConfig(latent_dim=LATENT_DIM, hidden_dims=(32,)).to_dict()}


@pytest.fixture(scope="module")
def decoder() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_decoder(ModelConfig(latent_dim=LATENT_DIM, hidden_dims=(32,)))


@pytest.fixture(scope="module")
def exported(decoder, tmp_path_factory) -> dict:
    return export_decoder(decoder, str(tmp_path_factory.mktemp("export")), RUN_CONFIG)


def _saved_model_cli(*args: str) -> str:
    command = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_saved_model_cli_shows_the_serving_signature(exported):
    shown = _saved_model_cli("show", "--dir", exported["decoder_saved_model"],
                             "--tag_set", "serve", "--signature_def", "serving_default")
    assert "inputs['z'] tensor_info:" in shown
    assert f"shape: (-1, {LATENT_DIM})" in shown
    assert "outputs['image'] tensor_info:" in shown and "outputs['logits'] tensor_info:" in shown
    assert shown.count("shape: (-1, 28, 28, 1)") == 2
    assert "Method name is: tensorflow/serving/predict" in shown


def test_saved_model_cli_run_executes_the_signature(exported, tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((3, LATENT_DIM), np.float32))
    _saved_model_cli("run", "--dir", exported["decoder_saved_model"], "--tag_set", "serve",
                           "--signature_def", "serving_default",
                           "--inputs", f"z={tmp_path / 'z.npy'}",
                           "--outdir", str(tmp_path), "--overwrite")
    image, logits = np.load(tmp_path / "image.npy"), np.load(tmp_path / "logits.npy")
    assert image.shape == logits.shape == (3, 28, 28, 1)
    np.testing.assert_allclose(image, 1 / (1 + np.exp(-logits)), atol=1e-6)


def test_onnx_file_is_valid_opset_17_with_the_same_names_and_metadata(exported):
    model = onnx.load(exported["decoder_onnx"])
    onnx.checker.check_model(model)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert [i.name for i in model.graph.input] == ["z"]
    assert sorted(o.name for o in model.graph.output) == ["image", "logits"]
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["latent_dim"] == str(LATENT_DIM)
    assert metadata["dataset"] == "binarized_mnist"
    assert '"hidden_dims": [32]' in metadata["model_config"]


@pytest.mark.parametrize("batch", [1, 7, 300])
def test_both_formats_accept_any_batch_size(exported, decoder, batch):
    z = np.random.default_rng(batch).standard_normal((batch, LATENT_DIM)).astype(np.float32)
    expected = np.asarray(decoder(z))
    for outputs in (run_onnx(exported["decoder_onnx"], z),
                    run_saved_model(exported["decoder_saved_model"], z)):
        assert outputs["logits"].shape == (batch, 28, 28, 1)
        np.testing.assert_allclose(outputs["logits"], expected, atol=1e-5)
        assert 0 <= outputs["image"].min() and outputs["image"].max() <= 1


def test_export_reports_measured_parity_within_tolerance(exported):
    for artifact in ("saved_model", "onnx"):
        measured = exported["parity"][artifact]
        assert 0 <= measured["max_scaled_diff"] <= measured["max_abs_diff"] + 1e-12
        assert measured["max_scaled_diff"] <= 1e-5
    assert exported["parity"]["onnx"]["max_abs_diff"] > 0  # a real, different runtime


def test_export_fails_loudly_when_an_artifact_disagrees(decoder, tmp_path, monkeypatch):
    def off_by_a_little(path, z):
        outputs = run_onnx(path, z)
        return {**outputs, "image": outputs["image"] + 1e-3}

    monkeypatch.setattr(export_decoder_module, "run_onnx", off_by_a_little)
    with pytest.raises(RunFailure, match=r"differs from the Keras model by \{'onnx'"):
        export_decoder(decoder, str(tmp_path), RUN_CONFIG)


def test_parity_latents_are_fixed():
    np.testing.assert_array_equal(parity_latents(4), parity_latents(4))
