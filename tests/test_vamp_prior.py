"""Specification of the VampPrior (--prior vamp): its density, its KL, training.

Saving is covered by test_model.py's round trip, for both priors.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae.config import ModelConfig
from keras_vae.densities import gaussian_kl, log_mixture_normal, log_prior
from keras_vae.model import VAE, Sampling


def _vamp_vae(**overrides) -> VAE:
    keras.utils.set_random_seed(0)
    config = {"latent_dim": 4, "hidden_dims": (32,), "seed": 3, "prior": "vamp",
              "pseudo_inputs": 10, **overrides}
    vae = VAE(ModelConfig(**config))
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    return vae


def test_mixture_density_matches_the_direct_sum_over_components():
    rng = np.random.default_rng(0)
    means = rng.normal(0, 2, (7, 3))
    log_vars = rng.normal(-1, 1, (7, 3))
    z = rng.normal(0, 2, (5, 11, 3))
    direct = np.log(np.mean(np.exp(np.sum(
        -0.5 * ((z[..., None, :] - means) ** 2 / np.exp(log_vars) + log_vars
                + math.log(2 * math.pi)), axis=-1)), axis=-1))
    expanded = np.asarray(log_mixture_normal(*(t.astype(np.float32) for t in
                                               (z, means, log_vars))))
    assert expanded.shape == (5, 11)
    np.testing.assert_allclose(expanded, direct, rtol=1e-4, atol=1e-3)


def test_a_mixture_of_standard_normals_is_the_standard_normal():
    z = np.random.default_rng(1).normal(0, 1.5, (50, 4)).astype(np.float32)
    standard = [np.zeros((6, 4), np.float32), np.zeros((6, 4), np.float32)]
    np.testing.assert_allclose(np.asarray(log_prior(z, standard)), np.asarray(log_prior(z)),
                               rtol=1e-5)


def test_estimated_kl_has_the_analytic_kl_as_its_mean_under_a_standard_normal_mixture():
    """Sampling adds log q(z|x) − log p(z) at the drawn z under a VampPrior: averaged over
    many draws it must equal the closed-form KL when the mixture is N(0, I)."""
    n = 200_000
    z_mean = np.tile(np.array([[0.5, -1.0, 2.0]], np.float32), (n, 1))
    z_log_var = np.tile(np.log(np.array([[0.09, 2.25, 0.64]], np.float32)), (n, 1))
    standard = [np.zeros((3, 3), np.float32), np.zeros((3, 3), np.float32)]
    sampling = Sampling(seed=7)
    sampling([z_mean, z_log_var, *standard])
    (estimated,) = [float(loss) for loss in sampling.losses]
    exact = float(gaussian_kl(z_mean[:1], z_log_var[:1])[0])
    assert estimated == pytest.approx(exact, abs=0.02)


def test_prior_components_are_the_encoder_posteriors_at_the_pseudo_inputs():
    vae = _vamp_vae()
    means, log_vars = vae.prior()
    assert means.shape == log_vars.shape == (10, 4)
    pseudo = vae.pseudo_inputs.images()
    assert pseudo.shape == (10, 28, 28, 1) and float(tf.reduce_min(pseudo)) > 0
    expected = vae.encoder(pseudo)
    np.testing.assert_allclose(means, expected[0], rtol=1e-6)
    np.testing.assert_allclose(log_vars, expected[1], rtol=1e-6)
    assert VAE(ModelConfig()).prior() == []


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
        vae.fit(train, batch_size=100, epochs=8, verbose=0)
        losses[prior.get("prior", "vamp")] = vae.evaluate(
            validation, batch_size=500, return_dict=True, verbose=0)["loss"]
    assert losses["vamp"] < losses["normal"] - 0.5, losses

