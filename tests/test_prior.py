"""Specification of export/prior.py: a VampPrior decoder ships its mixture."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.manifest import fingerprint
from export.onnx_model import read_metadata


def test_a_vamp_prior_model_ships_its_prior_beside_the_decoder(vamp_export, small_export):
    export_dir = vamp_export["export_dir"]
    latent_dim = vamp_export["vae"].config.latent_dim
    assert "prior.npz" in os.listdir(export_dir)
    assert "prior.npz" not in os.listdir(small_export["export_dir"])
    assert vamp_export["paths"]["prior"] == os.path.join(export_dir, "prior.npz")
    with np.load(vamp_export["paths"]["prior"]) as stored:
        for name, expected in zip(("means", "log_vars"), vamp_export["vae"].prior_components(),
                                  strict=True):
            assert stored[name].dtype == np.float32 and stored[name].shape == (10, latent_dim)
            np.testing.assert_array_equal(stored[name], keras.ops.convert_to_numpy(expected))
    with open(os.path.join(export_dir, "manifest.json")) as f:
        entry = json.load(f)["artifacts"]["prior"]
    assert entry["path"] == "prior.npz" and entry["means_shape"] == [10, latent_dim]
    assert entry == {**entry, **fingerprint(vamp_export["paths"]["prior"])}


def test_a_vamp_prior_decoder_names_its_prior_in_onnx_and_saved_model(vamp_export):
    assert read_metadata(vamp_export["paths"]["decoder_onnx"])["prior"] == "vamp"
    signatures = tf.saved_model.load(vamp_export["paths"]["decoder_saved_model"]).signatures
    assert set(signatures) == {"serving_default", "vamp_prior"}
    components = signatures["vamp_prior"](index=tf.constant([0, 9], tf.int64))
    means, log_vars = (keras.ops.convert_to_numpy(t) for t in vamp_export["vae"].prior_components())
    np.testing.assert_array_equal(components["means"].numpy(), means[[0, 9]])
    np.testing.assert_array_equal(components["log_vars"].numpy(), log_vars[[0, 9]])
    with pytest.raises(tf.errors.InvalidArgumentError):
        signatures["vamp_prior"](index=tf.constant([10], tf.int64))  # K = 10 components


def test_exporting_an_n01_model_where_a_vamp_model_was_removes_its_prior(vamp_export,
                                                                        small_export,
                                                                        tmp_path):
    """A shared export directory that held a VampPrior model's prior.npz: the next export,
    of a model with the N(0, I) prior, removes it, so no sampler takes it for that
    decoder's prior."""
    import shutil

    from export.pipeline import export_model
    from keras_vae.config import TrainConfig

    shared = tmp_path / "export"
    shutil.copytree(vamp_export["export_dir"], shared)
    vae = small_export["vae"]
    result = export_model(vae, str(shared), TrainConfig(model=vae.config,
                                                        dataset="binarized_mnist"))
    assert "prior" not in result["paths"] and not (shared / "prior.npz").exists()
    with open(shared / "manifest.json") as f:
        assert "prior" not in json.load(f)["artifacts"]
