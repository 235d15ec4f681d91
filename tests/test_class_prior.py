"""Specification of a conditional model's class prior as a mixture (`--class-components`):
its density is the weighted mixture's, its draws come from the component the draw picks
by the weights, and it trains to a bound on log p(x|y) that the importance-sampled
estimate tightens."""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import onnxruntime as ort
import pytest

from export.pipeline import export_model
from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.measure.nll import importance_nll
from keras_vae.model.vae import VAE
from keras_vae.run.cli import UsageError
from serving import sample, vae_decoder, vae_draws

NAMES = ("bar", "blob", "ring")
SIDE = 12


def _model(levels=3, components=4, hidden=32, **settings):
    keras.utils.set_random_seed(0)
    config = ModelConfig(latent_dim=levels, hidden_dims=(hidden,), likelihood="bernoulli",
                         image_shape=(SIDE, SIDE, 1), conditional=True, label_names=NAMES,
                         class_components=components, **settings)
    vae = VAE(config)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    return vae


def _tables(vae) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The class prior's means and log-variances [classes, K, d] and weights [classes, K],
    read from its variables."""
    prior = vae.class_prior
    shape = (prior.classes, prior.components, prior.latent_dim)
    logits = np.asarray(prior.weight_logits, np.float64)
    weights = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    return (np.asarray(prior.means).reshape(shape), np.asarray(prior.log_vars).reshape(shape),
            weights)


def _unequal_weights(vae, seed: int = 5) -> None:
    """Gives every class's mixture its own unequal weights."""
    logits = np.random.default_rng(seed).normal(size=vae.class_prior.weight_logits.shape)
    vae.class_prior.weight_logits.assign(logits.astype(np.float32))


def _log_mixture(z: np.ndarray, means: np.ndarray, log_vars: np.ndarray,
                 weights: np.ndarray) -> np.ndarray:
    """log Σ_k π_k N(z; means_k, exp(log_vars_k)) in float64, z [..., d], components
    [K, d], weights [K]: written out, independently of keras_vae.model.densities."""
    z = z[..., None, :].astype(np.float64)
    log_components = -0.5 * np.sum(np.log(2 * math.pi) + log_vars
                                   + (z - means) ** 2 / np.exp(log_vars), axis=-1)
    peak = log_components.max(axis=-1, keepdims=True)
    return (peak + np.log((np.exp(log_components - peak) * weights).sum(axis=-1,
                                                                     keepdims=True)))[..., 0]


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of 12×12 binary pictures, each noisy copies of its own prototype."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(7).random((len(NAMES), SIDE, SIDE, 1)) < 0.3
    labels = rng.integers(0, len(NAMES), n)
    images = prototypes[labels] ^ (rng.random((n, SIDE, SIDE, 1)) < 0.05)
    return images.astype(np.float32), labels


def test_the_class_prior_is_the_weighted_mixture_of_the_labels_own_components():
    vae = _model()
    vae.fit(*_data(300), batch_size=100, epochs=1, verbose=0)  # components move apart
    _unequal_weights(vae)
    means, log_vars, weights = _tables(vae)
    labels = np.array([0, 1, 2, 1, 0], np.int64)
    z = np.random.default_rng(3).normal(size=(7, len(labels), 3)).astype(np.float32)
    expected = np.stack([_log_mixture(z[:, n], means[y], log_vars[y], weights[y])
                         for n, y in enumerate(labels)], axis=1)
    np.testing.assert_allclose(np.asarray(vae.class_prior.log_density(z, labels)),
                               expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(vae.prior.log_density(z[0], labels)), expected[0],
                               rtol=1e-5)


@pytest.mark.parametrize("levels", [3, (2, 3)])
def test_a_draw_comes_from_the_component_its_draw_picks(levels):
    """At temperature 0 a draw is its component's mean, so the exported decoder's image
    is the decoder's at that mean: the component of the label's mixture whose stretch of
    [0, 1), as long as its weight, holds u (u = 1: the last)."""
    vae = _model(levels=levels)
    _unequal_weights(vae)
    means, _, weights = _tables(vae)
    labels = np.array([0, 1, 2, 2, 0, 1], np.int64)
    ends = np.cumsum(weights[labels], axis=-1)
    middles = ends - weights[labels] / 2  # a draw inside each component's stretch
    draws = np.array([0.0, middles[1, 1], middles[2, 2], 1.0, middles[4, 3], middles[5, 0]],
                     np.float32)
    inputs = {**vae.sample_inputs(6, seed=1, labels=labels, temperature=0.0),
              "component_draw": draws}
    chosen = np.array([min(np.searchsorted(e, u, side="right"), 3)
                       for e, u in zip(ends, draws, strict=True)])
    assert set(chosen) == {0, 1, 2, 3}  # the draws reach every component
    top = means[labels, chosen]
    if vae.config.hierarchical:
        tops = [vae.sample_images({**inputs, "component_draw": middles[:, c].astype(
            np.float32)}) for c in range(4)]
        drawn = vae.sample_images(inputs)
        for n, c in enumerate(chosen):
            np.testing.assert_allclose(drawn[n], tops[c][n], atol=1e-6)
        assert np.abs(tops[0] - tops[1]).max() > 1e-3  # the components differ
    else:
        expected = np.asarray(vae.mean_image(top, labels))
        np.testing.assert_allclose(vae.sample_images(inputs), expected, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("levels", [3, (2, 3)])
def test_a_class_mixture_trains_to_a_bound_the_nll_estimate_tightens(levels):
    vae = _model(levels=levels)
    images, labels = _data(1500)
    vae.fit(images, labels, batch_size=100, epochs=4, verbose=0)
    test_images, test_labels = _data(100, seed=1)
    neg_elbo = vae.evaluate(test_images, test_labels, batch_size=100, return_dict=True,
                            verbose=0)
    assert np.isfinite(neg_elbo["loss"]) and neg_elbo["kl"] > 0
    by_k = [importance_nll(vae, test_images, k, seed=2, labels=test_labels).mean()
            for k in (1, 10, 500)]
    assert by_k[0] > by_k[1] > by_k[2]
    assert by_k[2] < neg_elbo["loss"]


@pytest.mark.slow
def test_a_one_level_class_mixture_ships_and_samples_alike_everywhere(tmp_path):
    """Every format passes the export's checks (it raises otherwise), the decoder takes
    the component draw beside noise and label, and the edge sampler's seeded draw through
    decoder.onnx is the Keras generator's for the same inputs."""
    vae = _model(levels=2, components=3, hidden=1024)
    vae.fit(*_data(300), batch_size=100, epochs=1, verbose=0)
    export_dir = str(tmp_path / "export")
    export_model(vae, export_dir, TrainConfig(model=vae.config, dataset="npz:x"))
    decoder = os.path.join(export_dir, "decoder.onnx")
    session = ort.InferenceSession(decoder)
    assert [i.name for i in session.get_inputs()] == ["noise", "temperature", "label",
                                                      "component_draw"]
    noise, labels = vae_draws.seeded_noise(6, 2, seed=4), np.array([0, 1, 2, 0, 1, 2])
    draws = vae_draws.component_draws({"component_draw"}, 6, seed=4)
    drawn = vae_decoder.decode(session, noise, labels, temperature=0.6, component_draw=draws)
    inputs = {"noise": noise, "temperature": np.full(6, 0.6, np.float32), "label": labels,
              "component_draw": draws}
    np.testing.assert_allclose(drawn, vae.sample_images(inputs), atol=1e-5)
    said = sample.main([decoder, "--label", "ring", "--n", "4",
                        "--out", str(tmp_path / "rings.png")])
    assert "z from its class's mixture" in said


def test_class_components_belong_to_conditional_models():
    with pytest.raises(UsageError, match="--class-components applies to --conditional"):
        ModelConfig(likelihood="bernoulli", class_components=3)
    with pytest.raises(UsageError, match="class_components"):
        ModelConfig(likelihood="bernoulli", conditional=True, class_components=0)
