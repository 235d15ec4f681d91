"""Specification of the VampPrior (--prior vamp): its density, its KL, training.

Saving is covered by test_model.py's round trip, for both priors.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae.config import ModelConfig
from keras_vae.model.vae import VAE


def _vamp_vae(**overrides) -> VAE:
    keras.utils.set_random_seed(0)
    config = {"latent_dim": 4, "hidden_dims": (32,), "seed": 3, "prior": "vamp",
              "pseudo_inputs": 10, **overrides}
    vae = VAE(ModelConfig(likelihood="bernoulli", **config))
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    return vae


def test_prior_components_are_the_encoder_posteriors_at_the_pseudo_inputs():
    vae = _vamp_vae()
    means, log_vars = vae.prior_components()
    assert means.shape == log_vars.shape == (10, 4)
    pseudo = vae.pseudo_inputs.images()
    assert pseudo.shape == (10, 28, 28, 1) and float(tf.reduce_min(pseudo)) > 0
    expected = vae.encoder(pseudo)
    np.testing.assert_allclose(means, expected[0], rtol=1e-6)
    np.testing.assert_allclose(log_vars, expected[1], rtol=1e-6)
    assert VAE(ModelConfig(likelihood="bernoulli")).prior_components() == []


@pytest.mark.slow
@pytest.mark.parametrize("objective", [{}, {"objective": "iwae", "iwae_k": 5}],
                         ids=["elbo", "iwae"])
def test_training_lowers_the_loss_and_moves_the_pseudo_inputs(binarized_mnist_splits,
                                                              objective):
    vae = _vamp_vae(**objective)
    before = keras.ops.convert_to_numpy(vae.pseudo_inputs.logits).copy()
    history = vae.fit(binarized_mnist_splits["train"].as_float()[:3000], batch_size=100,
                      epochs=3, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    np.testing.assert_allclose(history["loss"],
                               np.add(history["reconstruction"], history["kl"]), rtol=1e-5)
    moved = np.abs(keras.ops.convert_to_numpy(vae.pseudo_inputs.logits) - before)
    assert moved.mean() > 1e-3


@pytest.mark.slow
def test_the_vamp_prior_beats_the_standard_normal_on_the_same_short_training(
        binarized_mnist_splits):
    """The reason to offer it: on the same data, steps and seed, the validation negative
    ELBO is lower."""
    train = binarized_mnist_splits["train"].as_float()[:10_000]
    validation = binarized_mnist_splits["validation"].as_float()[:2000]
    losses = {}
    for prior in ({"prior": "normal", "pseudo_inputs": 0}, {}):
        vae = _vamp_vae(latent_dim=20, hidden_dims=(200,), **prior)
        vae.fit(train, batch_size=100, epochs=2, verbose=0)
        losses[prior.get("prior", "vamp")] = vae.evaluate(
            validation, batch_size=500, return_dict=True, verbose=0)["loss"]
    assert losses["vamp"] < losses["normal"] - 0.5, losses

