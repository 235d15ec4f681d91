"""Specification of export/saved_model.py: what TF Serving loads, checked with TensorFlow's
own `saved_model_cli` (TF Serving executes exactly the `serving_default` signature)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from export.saved_model import existing_versions, next_version, publish_version


def _saved_model_cli(*args: str) -> str:
    command = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("model, inputs, outputs", [
    ("vae_decoder", {"noise": "(-1, 6)", "temperature": "(-1)"},
     {"image": "(-1, 28, 28, 1)", "logits": "(-1, 28, 28, 1)"}),
    ("vae_encoder", {"image": "(-1, 28, 28, 1)"}, {"z_mean": "(-1, 6)", "z_log_var": "(-1, 6)"}),
])
@pytest.mark.slow
def test_saved_model_cli_shows_the_serving_signature(small_export, model, inputs, outputs):
    shown = _saved_model_cli("show", "--dir", os.path.join(small_export["export_dir"], model, "1"),
                             "--tag_set", "serve", "--signature_def", "serving_default")
    for name, shape in {**inputs, **outputs}.items():
        kind = "inputs" if name in inputs else "outputs"
        block = shown.split(f"{kind}['{name}'] tensor_info:")[1]
        assert "dtype: DT_FLOAT" in block.splitlines()[1]
        assert f"shape: {shape}" in block.splitlines()[2]
    assert shown.count("tensor_info:") == len(inputs) + len(outputs)
    assert "Method name is: tensorflow/serving/predict" in shown


@pytest.mark.slow
def test_saved_model_cli_run_executes_the_decoder(small_export, tmp_path):
    np.save(tmp_path / "noise.npy", np.zeros((3, 6), np.float32))
    np.save(tmp_path / "temperature.npy", np.ones(3, np.float32))
    _saved_model_cli("run", "--dir", small_export["paths"]["decoder_saved_model"],
                     "--tag_set", "serve", "--signature_def", "serving_default",
                     "--inputs", f"noise={tmp_path / 'noise.npy'};"
                                 f"temperature={tmp_path / 'temperature.npy'}",
                     "--outdir", str(tmp_path), "--overwrite")
    image, logits = np.load(tmp_path / "image.npy"), np.load(tmp_path / "logits.npy")
    assert image.shape == logits.shape == (3, 28, 28, 1)
    np.testing.assert_allclose(image, 1 / (1 + np.exp(-logits)), atol=1e-6)


def test_versions_are_integers_above_every_existing_one(tmp_path):
    for path in ("vae_decoder/1", "vae_decoder/3", "vae_encoder/4", "vae_decoder/.staging-5"):
        os.makedirs(tmp_path / path)
    assert existing_versions(str(tmp_path / "vae_decoder")) == [1, 3]
    assert next_version(str(tmp_path), ["vae_decoder", "vae_encoder"]) == 5
    assert next_version(str(tmp_path / "empty"), ["vae_decoder"]) == 1


def test_publishing_never_overwrites_a_version(tmp_path):
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "saved_model.pb").write_bytes(b"new")
    os.makedirs(tmp_path / "vae_decoder" / "1")
    (tmp_path / "vae_decoder" / "1" / "saved_model.pb").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        publish_version(str(staged), str(tmp_path), "vae_decoder", 1)
    assert (tmp_path / "vae_decoder" / "1" / "saved_model.pb").read_bytes() == b"old"
    final = publish_version(str(staged), str(tmp_path), "vae_decoder", 2)
    assert open(os.path.join(final, "saved_model.pb"), "rb").read() == b"new"


def test_a_saved_model_stores_each_weight_once(small_export, vamp_export):
    """The checkpoint holds the network's parameters once (ExportArchive in Keras 3.15
    stores each twice), for the decoder with its extra signatures and for the encoder."""
    import tensorflow as tf

    for export in (small_export, vamp_export):
        for key, network in (("decoder_saved_model", export["vae"].decoder),
                             ("encoder_saved_model", export["vae"].encoder)):
            reader = tf.train.load_checkpoint(
                os.path.join(export["paths"][key], "variables", "variables"))
            stored = sum(int(np.prod(shape)) for name, shape
                         in reader.get_variable_to_shape_map().items()
                         if not name.startswith("_CHECKPOINTABLE"))
            assert stored == network.count_params(), key
