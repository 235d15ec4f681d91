"""A VampPrior model's exported decoder holds its prior: nothing ships beside it."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from export.onnx_model import read_metadata, run_onnx


def test_a_vamp_prior_decoder_draws_from_its_mixture_inside_the_graph(vamp_export):
    """decoder.onnx given noise ε, temperature t and a component draw u decodes
    z = μ_k + t·σ_k·ε for k = ⌊u·K⌋, as latent_decoder.onnx decodes that z: the mixture
    is in the file, and no prior.npz is written."""
    paths, vae = vamp_export["paths"], vamp_export["vae"]
    assert "prior.npz" not in os.listdir(vamp_export["export_dir"]) and "prior" not in paths
    assert read_metadata(paths["decoder_onnx"])["prior"] == "vamp"
    means, log_vars = (keras.ops.convert_to_numpy(t) for t in vae.prior_components())
    n, d = 10, vae.config.latent_dim
    noise = np.random.default_rng(3).standard_normal((n, d)).astype(np.float32)
    draws = (np.arange(n, dtype=np.float32) + 0.5) / n  # every component once (K = 10)
    temperature = np.linspace(0.5, 1.5, n, dtype=np.float32)
    z = means + temperature[:, None] * np.exp(0.5 * log_vars) * noise
    sampled = run_onnx(paths["decoder_onnx"], {"noise": noise, "temperature": temperature,
                                               "component_draw": draws})
    decoded = run_onnx(paths["latent_decoder_onnx"], {"z": z.astype(np.float32)})
    matched = np.abs(sampled["logits"] - decoded["logits"]).max()
    assert matched < 1e-4
    wrong = means[::-1] + temperature[:, None] * np.exp(0.5 * log_vars[::-1]) * noise
    other = run_onnx(paths["latent_decoder_onnx"], {"z": wrong.astype(np.float32)})
    assert np.abs(sampled["logits"] - other["logits"]).max() > 100 * max(matched, 1e-7)


def test_the_decoder_saved_model_decodes_a_given_z_as_its_second_signature(vamp_export):
    signatures = tf.saved_model.load(vamp_export["paths"]["decoder_saved_model"]).signatures
    assert set(signatures) == {"serving_default", "decode_latent"}
    z = np.random.default_rng(4).standard_normal((3, vamp_export["vae"].config.latent_dim))
    served = signatures["decode_latent"](z=tf.constant(z, tf.float32))
    expected = vamp_export["vae"].decoder(z.astype(np.float32))
    np.testing.assert_allclose(served["logits"].numpy(), keras.ops.convert_to_numpy(expected),
                               rtol=1e-5, atol=1e-5)


def test_exporting_where_an_older_export_left_a_prior_file_removes_it(small_export,
                                                                    tmp_path):
    """A prior.npz that an export before the sampling contract left: the next export
    removes it, so no sampler takes it for the new decoder's prior."""
    import shutil

    from export.pipeline import export_model
    from keras_vae.config import TrainConfig

    shared = tmp_path / "export"
    shutil.copytree(small_export["export_dir"], shared)
    np.savez(shared / "prior.npz", means=np.zeros((2, 6)), log_vars=np.zeros((2, 6)))
    vae = small_export["vae"]
    result = export_model(vae, str(shared), TrainConfig(model=vae.config,
                                                        dataset="binarized_mnist"))
    assert "prior" not in result["paths"] and not (shared / "prior.npz").exists()
    with open(shared / "manifest.json") as f:
        assert "prior" not in json.load(f)["artifacts"]
