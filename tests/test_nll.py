"""Specification of keras_vae/measure/nll.py: the NLL estimate is trustworthy."""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import pytest

import keras_vae.measure.nll
from keras_vae.config import ModelConfig
from keras_vae.measure.nll import (
    CHUNK_BUDGET,
    FusedLikelihood,
    evaluation_likelihood,
    importance_nll,
    largest_tensor_per_sample,
    make_log_weights,
)
from keras_vae.model.likelihoods import make_likelihood
from keras_vae.model.likelihoods.bernoulli import Bernoulli
from keras_vae.model.likelihoods.logistic import DiscretizedLogistic
from keras_vae.model.networks import levels
from keras_vae.model.vae import VAE


@pytest.fixture(scope="module")
def two_d_vae(binarized_mnist_splits) -> VAE:
    """A small VAE with a 2-dimensional latent, trained briefly on real images."""
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=2, hidden_dims=(64,), seed=0))
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(binarized_mnist_splits["train"].as_float()[:10_000], batch_size=100, epochs=4,
            verbose=0)
    return vae


def test_nll_never_exceeds_the_negative_elbo(two_d_vae, binarized_mnist_splits):
    images = binarized_mnist_splits["test"].as_float()[:200]
    nll = importance_nll(two_d_vae, images, k=1000, seed=2)
    neg_elbo = two_d_vae.evaluate(images, batch_size=200, return_dict=True, verbose=0)["loss"]
    assert nll.mean() < neg_elbo


def test_the_logistic_fused_by_xla_scores_pixels_as_the_plain_one_does():
    """The evaluation's XLA-compiled logistic gives the plain one's values (to float
    rounding), extreme parameters included, and stays finite."""
    rng = np.random.default_rng(3)
    logistic = DiscretizedLogistic((4, 3, 2), components=3)
    fused = evaluation_likelihood(logistic, jit_compile=False)
    assert isinstance(fused, FusedLikelihood)
    x = rng.choice(np.arange(256, dtype=np.float32) / 255, size=(5, 4, 3, 2))
    parameters = rng.normal(0, 3, size=(7, 5, 4, 3, 2 * 9)).astype(np.float32)
    parameters[0] = rng.choice(np.float32([-1e4, -50, 0, 50, 1e4]), size=parameters[0].shape)
    plain_nll = keras.ops.convert_to_numpy(logistic.neg_log_prob(x, parameters))
    fused_nll = fused.neg_log_prob(x, parameters).numpy()
    assert np.isfinite(fused_nll).all()
    np.testing.assert_allclose(fused_nll, plain_nll, rtol=1e-5)
    assert evaluation_likelihood(logistic, jit_compile=True) is logistic
    assert evaluation_likelihood(logistic, jit_compile=False, total_samples=100 * 1000) is logistic


@pytest.mark.parametrize("image_shape", [(4, 4, 1), (4, 3, 2), (28, 28, 1)])
def test_the_bernoulli_fused_by_xla_scores_pixels_as_the_plain_one_does(image_shape):
    """Grouped logarithms (16 pixels divide 4×4 and 28×28, not 4×3×2) give `neg_log_prob`'s
    values and a float64 softplus's to float rounding, saturated logits included, for
    many samples per image and for one."""
    rng = np.random.default_rng(4)
    bernoulli = Bernoulli(image_shape)
    fused = evaluation_likelihood(bernoulli, jit_compile=False)
    assert isinstance(fused, FusedLikelihood)
    x = (rng.random((5, *image_shape)) < 0.3).astype(np.float32)
    logits = rng.normal(0, 4, size=(7, 5, *image_shape)).astype(np.float32)
    logits[0] = rng.choice(np.float32([-1e4, -80, 0, 80, 1e4]), size=logits[0].shape)
    exact = (np.logaddexp(0, logits.astype(np.float64)) - x * logits).sum(axis=(2, 3, 4))
    fused_nll = fused.neg_log_prob(x, logits).numpy()
    plain_nll = keras.ops.convert_to_numpy(bernoulli.neg_log_prob(x, logits))
    np.testing.assert_allclose(fused_nll, plain_nll, rtol=1e-6)
    np.testing.assert_allclose(fused_nll, exact, rtol=1e-6)
    one_sample = keras.ops.convert_to_numpy(bernoulli.scoring_neg_log_prob(x, logits[1]))
    np.testing.assert_allclose(one_sample, exact[1], rtol=1e-6)


@pytest.mark.slow
def test_with_k_1_the_estimate_is_an_unbiased_elbo(two_d_vae, binarized_mnist_splits):
    images = binarized_mnist_splits["test"].as_float()[:200]
    draws = np.stack([importance_nll(two_d_vae, images, k=1, seed=s) for s in range(20)])
    single_sample = draws.mean()
    standard_error = draws.mean(axis=1).std(ddof=1) / math.sqrt(len(draws))
    # The negative ELBO with the analytic KL, its reconstruction averaged over 20 z draws.
    neg_elbo = np.mean([two_d_vae.evaluate(images, batch_size=200, return_dict=True,
                                           verbose=0)["loss"] for _ in range(20)])
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


def test_a_chunk_scored_in_several_calls_gives_the_same_estimate(
        two_d_vae, binarized_mnist_splits, monkeypatch):
    """What keeps a convolutional model's evaluation within memory: a chunk whose tensors
    would exceed the budget is scored a few samples at a time, with the noise its seed
    draws for the whole chunk, so the estimate is the one a single call gives."""
    images = binarized_mnist_splits["test"].as_float()[:30]
    whole = importance_nll(two_d_vae, images, k=700, seed=4, batch_size=16, chunk=300)
    monkeypatch.setattr(keras_vae.measure.nll, "largest_tensor_per_sample",
                        lambda vae, log_weights, key: CHUNK_BUDGET // (16 * 70))
    in_calls_of_70 = importance_nll(two_d_vae, images, k=700, seed=4, batch_size=16,
                                    chunk=300)
    np.testing.assert_allclose(in_calls_of_70, whole, rtol=1e-6)


def test_the_largest_tensor_of_a_conv_decoder_is_its_feature_maps():
    """The memory of an evaluation is sized by this count; a convolutional decoder's
    largest tensor is a feature map, not its outputs (28×28×1 logits)."""
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=3, hidden_dims=(16,),
                          arch="conv", seed=0))
    feature_maps = max(math.prod(layer.output.shape[1:]) for layer in vae.decoder.layers)
    largest = largest_tensor_per_sample(vae, make_log_weights(vae, False, total_samples=1))
    assert largest == feature_maps > 28 * 28


def _log_prior_one_d(vae: VAE, z: np.ndarray) -> np.ndarray:
    """log p(z) on a 1-D grid in float64, written independently of keras_vae.model.densities:
    N(0, 1), or the VampPrior's mixture of the encoder's posteriors at its pseudo-inputs."""
    if vae.pseudo_inputs is None:
        return -0.5 * (z**2 + math.log(2 * math.pi))
    means, log_vars = (keras.ops.convert_to_numpy(t).astype(np.float64)[:, 0]
                       for t in vae.prior_components())
    components = -0.5 * ((z[:, None] - means) ** 2 / np.exp(log_vars) + log_vars
                         + math.log(2 * math.pi))
    peak = components.max(axis=1, keepdims=True)
    return (peak + np.log(np.exp(components - peak).mean(axis=1, keepdims=True)))[:, 0]


def _grid_bounds(vae: VAE) -> tuple[float, float]:
    """[−8, 8] for N(0, 1) (mass outside: 1e-15); widened to 8 standard deviations around
    every VampPrior component, whose latent scale is learned, not fixed."""
    if vae.pseudo_inputs is None:
        return -8.0, 8.0
    means, log_vars = (keras.ops.convert_to_numpy(t)[:, 0] for t in vae.prior_components())
    spread = 8 * np.exp(0.5 * log_vars)
    return min(-8.0, float(np.min(means - spread))), max(8.0, float(np.max(means + spread)))


def _log_bernoulli_one_d(logits: np.ndarray, images: np.ndarray) -> np.ndarray:
    """log p(x|z) [G, N] of binary images [N, ...] under decoder logits [G, ...]."""
    logits = logits.reshape(len(logits), -1).astype(np.float64)
    x = images.reshape(len(images), -1).astype(np.float64)
    return -(np.logaddexp(0.0, logits).sum(axis=1)[:, None] - logits @ x.T)


def _log_logistic_one_d(vae: VAE, parameters: np.ndarray, images: np.ndarray) -> np.ndarray:
    """log p(x|z) [G, N] of 8-bit images under the discretized logistic mixture, directly
    from its definition: P(bin) = σ((x − μ + 1/510)/s) − σ((x − μ − 1/510)/s), the edge
    bins taking the tails."""
    logits, locations, log_scales = (keras.ops.convert_to_numpy(t).astype(np.float64)
                                     for t in vae.likelihood.split(parameters))
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    x = images.astype(np.float64)[None, ..., None]  # [1, N, H, W, C, 1]
    centred = (x - locations[:, None]) / np.exp(log_scales[:, None])
    half_bin = 1 / (510 * np.exp(log_scales[:, None]))
    # σ(a) − σ(b) = σ(−b) − σ(−a): take the side of the location away from 1, where the
    # difference loses no digits.
    side = np.where(centred > 0, -1.0, 1.0)
    upper, lower = side * (centred + side * half_bin), side * (centred - side * half_bin)
    sigmoid = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731
    top, bottom, flipped = x > 254.5 / 255, x < 0.5 / 255, centred > 0
    upper_tail = np.where(flipped, bottom, top)  # the bin's edge at +∞ (−∞ when flipped)
    lower_tail = np.where(flipped, top, bottom)
    probability = (np.where(upper_tail, 1.0, sigmoid(upper))
                   - np.where(lower_tail, 0.0, sigmoid(lower)))
    probability = np.sum(weights[:, None] * probability, axis=-1)
    # A zero (underflow, far in the tails) only where the integrand is negligible.
    probability = np.maximum(probability, 1e-300)
    return np.log(probability).sum(axis=(2, 3, 4))


def _exact_nll_one_d(vae: VAE, images: np.ndarray, spacing: float) -> np.ndarray:
    """−log p(x) = −log ∫ p(x|z) p(z) dz by the rectangle rule over `_grid_bounds`, a
    chunk of the grid at a time. For a smooth integrand whose width spans many grid steps
    it is exact to float precision, which the caller checks by halving the grid."""
    low, high = _grid_bounds(vae)
    grid = np.arange(low, high + spacing / 2, spacing, dtype=np.float64)
    total = np.full(len(images), -np.inf)
    logistic = vae.config.likelihood == "logistic"
    for z in np.array_split(grid, max(1, len(grid) // (1000 if logistic else 20_000))):
        parameters = vae.decoder(z[:, None].astype(np.float32))
        log_px_z = (_log_logistic_one_d(vae, parameters, images) if logistic else
                    _log_bernoulli_one_d(keras.ops.convert_to_numpy(parameters), images))
        joint = log_px_z + _log_prior_one_d(vae, z)[:, None]
        peak = joint.max(axis=0)
        total = np.logaddexp(total, peak + np.log(np.exp(joint - peak).sum(axis=0)))
    return -(total + np.log(spacing))

def test_known_nlls_are_kept_and_the_rest_are_those_of_one_uninterrupted_call():
    """What a resumed evaluation relies on: each batch draws its ε by its position."""
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=3, hidden_dims=(16,)))
    images = (np.random.default_rng(0).random((120, 28, 28, 1)) < 0.2).astype(np.float32)
    whole = importance_nll(vae, images, k=10, seed=7, batch_size=50)
    resumed = importance_nll(vae, images, k=10, seed=7, batch_size=50, known=whole[:50])
    np.testing.assert_allclose(resumed, whole, rtol=1e-6)
    with pytest.raises(ValueError, match="not a whole number of 50-batches"):
        importance_nll(vae, images, k=10, seed=7, batch_size=50, known=whole[:30])



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
    vae = _one_d_latent_vae(monkeypatch, ModelConfig(likelihood="bernoulli", latent_dim=1,
                                                     hidden_dims=(256,),
                                                     seed=0, **prior))
    vae.fit(binarized_mnist_splits["train"].as_float()[:10_000], batch_size=100, epochs=5,
            verbose=0)
    _assert_estimate_matches_the_integral(vae, binarized_mnist_splits["test"].as_float()[:100])


@pytest.mark.slow
def test_k_5000_estimate_matches_numerical_integration_for_8_bit_pixels(monkeypatch):
    """The same check under the discretized logistic likelihood, on 8-bit images that
    vary along one direction (so a 1-D latent fits them), its integrand written
    independently of keras_vae.model.likelihoods in float64."""
    rng = np.random.default_rng(0)
    direction, offset = rng.normal(0, 2, (2, 1, 8, 8, 1))
    t = rng.normal(size=(5040, 1, 1, 1))
    gray = 1 / (1 + np.exp(-(direction * t + offset + rng.normal(0, 0.3, (5040, 8, 8, 1)))))
    images = (np.round(255 * gray) / 255).astype(np.float32)
    vae = _one_d_latent_vae(monkeypatch, ModelConfig(
        latent_dim=1, hidden_dims=(256,), seed=0, image_shape=(8, 8, 1),
        likelihood="logistic", mixture_components=2))
    vae.fit(images[:5000], batch_size=100, epochs=5, verbose=0)
    _assert_estimate_matches_the_integral(vae, images[5000:5040])


def _one_d_latent_vae(monkeypatch, config: ModelConfig) -> VAE:
    """A VAE of `config` whose decoder is linear (no hidden layer)."""
    keras.utils.set_random_seed(0)  # before any layer is built: the same model every time
    outputs = config.image_shape[-1] * make_likelihood(
        config.likelihood, config.image_shape, config.mixture_components).parameters_per_channel
    linear_decoder = levels.build_decoder(dataclasses.replace(config, hidden_dims=()), outputs)
    monkeypatch.setattr(levels, "build_decoder", lambda config, outputs: linear_decoder)
    vae = VAE(config)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    return vae


def _assert_estimate_matches_the_integral(vae: VAE, images: np.ndarray) -> None:
    exact = _exact_nll_one_d(vae, images, spacing=4e-3)
    coarse = _exact_nll_one_d(vae, images, spacing=8e-3)
    # The grid resolves every posterior: halving it moves no image by 1 % of the tolerance.
    assert np.abs(exact - coarse).max() < 1e-3
    estimate = importance_nll(vae, images, k=5000, seed=5)
    assert abs(estimate.mean() - exact.mean()) < 0.1, (estimate.mean(), exact.mean())
    assert np.quantile(np.abs(estimate - exact), 0.9) < 0.25


def test_the_largest_tensor_is_traced_once_per_model_and_graph(monkeypatch):
    """`importance_nll` sizes its calls by a trace of the model's graph with unknown
    dimensions; the shapes do not change as a model trains, so each model and kind of
    graph (XLA, fused likelihood) is traced for it once, not on every call."""
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=2, hidden_dims=(16,),
                          image_shape=(4, 4, 1)))
    traced = []
    measure = keras_vae.measure.nll._largest_per_unknown_row
    monkeypatch.setattr(keras_vae.measure.nll, "_largest_per_unknown_row",
                        lambda graph: traced.append(graph) or measure(graph))
    images = np.random.default_rng(0).integers(0, 2, (3, 4, 4, 1)).astype(np.float32)
    first = importance_nll(vae, images, k=5, seed=1)
    np.testing.assert_array_equal(importance_nll(vae, images, k=5, seed=1), first)
    assert len(traced) == 1
    importance_nll(vae, images, k=5, seed=1, jit_compile=True)
    assert len(traced) == 2
