"""Specification of keras_vae/likelihood.py: the NLL estimate is trustworthy."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_vae import model
from keras_vae.config import ModelConfig
from keras_vae.likelihood import importance_nll
from keras_vae.model import VAE


@pytest.fixture(scope="module")
def two_d_vae(binarized_mnist_splits) -> VAE:
    """A small VAE with a 2-dimensional latent, trained briefly on real images."""
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(latent_dim=2, hidden_dims=(64,), seed=0))
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(binarized_mnist_splits["train"].as_float()[:10_000], batch_size=100, epochs=10,
            verbose=0)
    return vae


def test_nll_never_exceeds_the_negative_elbo(two_d_vae, binarized_mnist_splits):
    images = binarized_mnist_splits["test"].as_float()[:200]
    nll = importance_nll(two_d_vae, images, k=1000, seed=2)
    neg_elbo = two_d_vae.evaluate(images, batch_size=200, return_dict=True, verbose=0)["loss"]
    assert nll.mean() < neg_elbo


@pytest.mark.slow
def test_with_k_1_the_estimate_is_an_unbiased_elbo(two_d_vae, binarized_mnist_splits):
    images = binarized_mnist_splits["test"].as_float()[:200]
    draws = np.stack([importance_nll(two_d_vae, images, k=1, seed=s) for s in range(40)])
    single_sample = draws.mean()
    standard_error = draws.mean(axis=1).std(ddof=1) / math.sqrt(len(draws))
    # The negative ELBO with the analytic KL, its reconstruction averaged over 40 z draws.
    neg_elbo = np.mean([two_d_vae.evaluate(images, batch_size=200, return_dict=True,
                                           verbose=0)["loss"] for _ in range(40)])
    assert abs(single_sample - neg_elbo) < 4 * standard_error + 0.05, (
        single_sample, neg_elbo, standard_error)


def test_more_samples_tighten_the_bound(two_d_vae, binarized_mnist_splits):
    images = binarized_mnist_splits["test"].as_float()[:100]
    by_k = [importance_nll(two_d_vae, images, k=k, seed=3).mean() for k in (1, 10, 1000)]
    assert by_k[0] > by_k[1] > by_k[2]


def test_chunked_estimate_is_reproducible(two_d_vae, binarized_mnist_splits):
    images = binarized_mnist_splits["test"].as_float()[:30]
    a = importance_nll(two_d_vae, images, k=700, seed=4, batch_size=16, chunk=300)
    b = importance_nll(two_d_vae, images, k=700, seed=4, batch_size=16, chunk=300)
    np.testing.assert_array_equal(a, b)


def _log_prior_one_d(vae: VAE, z: np.ndarray) -> np.ndarray:
    """log p(z) on a 1-D grid in float64, written independently of keras_vae.densities:
    N(0, 1), or the VampPrior's mixture of the encoder's posteriors at its pseudo-inputs."""
    if vae.pseudo_inputs is None:
        return -0.5 * (z**2 + math.log(2 * math.pi))
    means, log_vars = (keras.ops.convert_to_numpy(t).astype(np.float64)[:, 0]
                       for t in vae.prior())
    components = -0.5 * ((z[:, None] - means) ** 2 / np.exp(log_vars) + log_vars
                         + math.log(2 * math.pi))
    peak = components.max(axis=1, keepdims=True)
    return (peak + np.log(np.exp(components - peak).mean(axis=1, keepdims=True)))[:, 0]


def _grid_bounds(vae: VAE) -> tuple[float, float]:
    """[−8, 8] for N(0, 1) (mass outside: 1e-15); widened to 8 standard deviations around
    every VampPrior component, whose latent scale is learned, not fixed."""
    if vae.pseudo_inputs is None:
        return -8.0, 8.0
    means, log_vars = (keras.ops.convert_to_numpy(t)[:, 0] for t in vae.prior())
    spread = 8 * np.exp(0.5 * log_vars)
    return min(-8.0, float(np.min(means - spread))), max(8.0, float(np.max(means + spread)))


def _exact_nll_one_d(vae: VAE, images: np.ndarray, spacing: float) -> np.ndarray:
    """−log p(x) = −log ∫ p(x|z) p(z) dz by the rectangle rule over `_grid_bounds`, a
    chunk of the grid at a time. For a smooth integrand whose width spans many grid steps
    it is exact to float precision, which the caller checks by halving the grid."""
    low, high = _grid_bounds(vae)
    grid = np.arange(low, high + spacing / 2, spacing, dtype=np.float64)
    x = images.reshape(len(images), -1).astype(np.float64)
    total = np.full(len(images), -np.inf)
    for z in np.array_split(grid, max(1, len(grid) // 20_000)):
        logits = keras.ops.convert_to_numpy(vae.decoder(z[:, None].astype(np.float32)))
        logits = logits.reshape(len(z), -1).astype(np.float64)
        log_px_z = -(np.logaddexp(0.0, logits).sum(axis=1)[:, None] - logits @ x.T)  # [G, N]
        joint = log_px_z + _log_prior_one_d(vae, z)[:, None]
        peak = joint.max(axis=0)
        total = np.logaddexp(total, peak + np.log(np.exp(joint - peak).sum(axis=0)))
    return -(total + np.log(spacing))


@pytest.mark.slow
@pytest.mark.parametrize("prior", [{}, {"prior": "vamp", "pseudo_inputs": 20}],
                         ids=["normal", "vamp"])
def test_k_5000_estimate_matches_numerical_integration_over_a_1d_latent(
        binarized_mnist_splits, monkeypatch, prior):
    """A 1-D latent and a linear decoder: every posterior under N(0, 1) is log-concave
    (one mode), the case importance sampling with a Gaussian proposal is meant for, and
    the exact likelihood is a 1-D integral. The encoder keeps a hidden layer so that its
    proposal fits (a linear encoder's misplaced proposals put the estimate 1.7 nats high,
    and with a deep decoder some digits' posteriors have modes a Gaussian misses). With a
    VampPrior the same check covers the mixture density inside the estimate."""
    keras.utils.set_random_seed(0)  # before any layer is built: the same model every time
    linear_decoder = model.build_decoder(ModelConfig(latent_dim=1, hidden_dims=()))
    monkeypatch.setattr(model, "build_decoder", lambda config: linear_decoder)
    vae = VAE(ModelConfig(latent_dim=1, hidden_dims=(256,), seed=0, **prior))
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(binarized_mnist_splits["train"].as_float()[:10_000], batch_size=100, epochs=5,
            verbose=0)
    images = binarized_mnist_splits["test"].as_float()[:100]
    exact = _exact_nll_one_d(vae, images, spacing=5e-4)
    coarse = _exact_nll_one_d(vae, images, spacing=1e-3)
    assert np.abs(exact - coarse).max() < 1e-4  # the grid resolves every posterior
    estimate = importance_nll(vae, images, k=5000, seed=5)
    assert abs(estimate.mean() - exact.mean()) < 0.1, (estimate.mean(), exact.mean())
    assert np.quantile(np.abs(estimate - exact), 0.9) < 0.25
