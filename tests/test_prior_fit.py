"""Specification of fitting a conditional model's class prior to its codes after training
(`keras_vae.run.prior_fit`): EM raises the mixture's likelihood of the points every pass and
finds a known mixture; fitted into a model, the prior's own density of the codes rises. And
of starting a VampPrior's pseudo-inputs at training images."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae.config import ModelConfig
from keras_vae.data.pipeline import Split
from keras_vae.model.priors import PIXEL_MARGIN
from keras_vae.model.vae import VAE
from keras_vae.run import training
from keras_vae.run.layout import CHECKPOINT
from keras_vae.run.prior_fit import (
    _log_normal_table,
    fit_class_prior,
    fit_diagonal_mixture,
    start_pseudo_inputs,
)

TRUE_MEANS = np.array([[-2.0, 0.0], [1.5, 1.0]])
TRUE_VARIANCES = np.array([[0.25, 1.0], [0.5, 0.09]])
TRUE_WEIGHTS = np.array([0.3, 0.7])


def _known_mixture(n: int = 20_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.random(n) < TRUE_WEIGHTS[0]
    component = np.where(picks, 0, 1)
    return TRUE_MEANS[component] + np.sqrt(TRUE_VARIANCES[component]) * rng.standard_normal(
        (n, 2))


def test_the_log_normal_table_is_the_diagonal_gaussian_written_out():
    rng = np.random.default_rng(1)
    points, means = rng.normal(size=(7, 3)), rng.normal(size=(4, 3))
    variances = rng.uniform(0.1, 3.0, size=(4, 3))
    written_out = -0.5 * np.sum(np.log(2 * np.pi * variances)[None]
                                + (points[:, None] - means[None]) ** 2 / variances[None],
                                axis=-1)
    np.testing.assert_allclose(_log_normal_table(points, means, variances), written_out,
                               rtol=1e-10, atol=1e-10)


def test_em_raises_the_likelihood_every_pass_and_finds_a_known_mixture():
    points = _known_mixture()
    means, variances, log_weights, history = fit_diagonal_mixture(
        points, np.array([[-0.5, 0.5], [0.5, -0.5]]), np.ones((2, 2)), np.log([0.5, 0.5]),
        iterations=200, tolerance=1e-9)
    assert len(history) > 10
    assert np.all(np.diff(history) >= -1e-9)  # EM never lowers the likelihood
    order = np.argsort(means[:, 0])
    np.testing.assert_allclose(means[order], TRUE_MEANS, atol=0.05)
    np.testing.assert_allclose(variances[order], TRUE_VARIANCES, rtol=0.1)
    np.testing.assert_allclose(np.exp(log_weights[order]), TRUE_WEIGHTS, atol=0.02)


def test_one_component_is_fitted_in_one_pass_to_the_points_mean_and_variance():
    points = _known_mixture(2000)
    means, variances, log_weights, history = fit_diagonal_mixture(
        points, np.zeros((1, 2)), np.ones((1, 2)), np.zeros(1))
    np.testing.assert_allclose(means[0], points.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(variances[0], points.var(axis=0), rtol=1e-9)
    assert log_weights[0] == pytest.approx(0.0)
    assert len(history) == 3  # before, after the pass, and the pass that changed nothing


def test_a_component_no_point_takes_keeps_its_place_and_loses_its_weight():
    points = _known_mixture(2000)
    start_means = np.array([[-2.0, 0.0], [1.5, 1.0], [500.0, 500.0]])
    means, variances, log_weights, _ = fit_diagonal_mixture(
        points, start_means, np.ones((3, 2)), np.log(np.full(3, 1 / 3)))
    assert np.isfinite(means).all() and np.isfinite(variances).all()
    np.testing.assert_array_equal(means[2], start_means[2])
    assert np.exp(log_weights[2]) < 1e-20
    assert np.exp(log_weights[:2]).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("levels", [3, (4, 3)], ids=["one level", "hierarchy"])
def test_the_top_posterior_is_the_top_level_of_the_encoding(levels):
    config = ModelConfig(latent_dim=levels, hidden_dims=(32,), likelihood="bernoulli",
                         image_shape=(8, 8, 1), conditional=True,
                         label_names=("a", "b", "c"), class_components=4)
    vae = VAE(config)
    rng = np.random.default_rng(4)
    images = (rng.random((20, 8, 8, 1)) < 0.3).astype(np.float32)
    labels = rng.integers(0, 3, 20)
    top = config.levels[-1]
    for theirs, mine in zip(vae.encode(images, labels), vae.top_posterior(images, labels),
                            strict=True):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs)[:, -top:],
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("levels,components", [(3, 4), ((4, 3), 4), (3, 1)],
                         ids=["one level, mixture", "hierarchy, mixture", "one Gaussian"])
def test_a_fitted_class_prior_gives_the_codes_a_higher_density_in_the_model(levels,
                                                                            components):
    keras.utils.set_random_seed(0)
    config = ModelConfig(latent_dim=levels, hidden_dims=(32,), likelihood="bernoulli",
                         image_shape=(8, 8, 1), conditional=True,
                         label_names=("a", "b", "c"), class_components=components)
    vae = VAE(config)
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 600)
    images = (rng.random((600, 8, 8, 1)) < 0.2 + 0.3 * labels[:, None, None, None]
              ).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(100)
    top = config.levels[-1]
    vae.class_prior.means.assign(np.full(vae.class_prior.means.shape, 2.0, np.float32))

    def mean_density_of_codes() -> float:
        means, log_vars = (np.asarray(v)[:, -top:] for v in vae.encode(images, labels))
        draws = means + np.exp(0.5 * log_vars) * np.random.default_rng(3).standard_normal(
            (8, *means.shape))
        return float(np.mean(vae.class_prior.log_density(draws.astype(np.float32), labels)))

    before = mean_density_of_codes()
    fit = fit_class_prior(vae, dataset)
    after = mean_density_of_codes()
    assert fit["images"] == 600
    assert fit["mean_log_prior_after"] > fit["mean_log_prior_before"]
    assert fit["mean_log_prior_before"] == pytest.approx(before, abs=0.2)
    assert fit["mean_log_prior_after"] == pytest.approx(after, abs=0.2)
    assert after > before + 3.0  # the prior started 2 away from codes near 0 in each dimension


def _small_conditional(tmp_path):
    """A small conditional model (its prior moved 2 away from its codes), its data as
    (images, labels) batches, and a run directory."""
    keras.utils.set_random_seed(0)
    config = ModelConfig(latent_dim=3, hidden_dims=(32,), likelihood="bernoulli",
                         image_shape=(8, 8, 1), conditional=True,
                         label_names=("a", "b", "c"), class_components=4)
    vae = VAE(config)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 400)
    images = (rng.random((400, 8, 8, 1)) < 0.2 + 0.3 * labels[:, None, None, None]
              ).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(100)
    vae.evaluate(dataset, verbose=0)  # builds the metrics
    vae.class_prior.means.assign(np.full(vae.class_prior.means.shape, 2.0, np.float32))
    return vae, dataset, str(tmp_path)


def test_training_keeps_a_fit_that_lowers_the_validation_loss_and_saves_it(tmp_path):
    vae, dataset, run_dir = _small_conditional(tmp_path)
    fit = training._fit_class_prior(vae, dataset, dataset, run_dir)
    assert fit["kept"] is True and fit["val_loss_after"] < fit["val_loss_before"] - 1.0
    saved = keras.models.load_model(os.path.join(run_dir, CHECKPOINT))
    for mine, theirs in zip(vae.class_prior.weights, saved.class_prior.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


def test_training_puts_the_trained_tables_back_when_a_fit_raises_the_loss(tmp_path,
                                                                          monkeypatch):
    vae, dataset, run_dir = _small_conditional(tmp_path)
    trained = [np.asarray(weight).copy() for weight in vae.class_prior.weights]

    def a_worse_fit(model, data, seed=0):
        model.class_prior.means.assign(np.full(model.class_prior.means.shape, 9.0,
                                               np.float32))
        return {"images": 400, "seconds": 0.0, "mean_log_prior_before": 0.0,
                "mean_log_prior_after": 0.0}

    monkeypatch.setattr(training, "fit_class_prior", a_worse_fit)
    fit = training._fit_class_prior(vae, dataset, dataset, run_dir)
    assert fit["kept"] is False and fit["val_loss_after"] > fit["val_loss_before"]
    for weight, value in zip(vae.class_prior.weights, trained, strict=True):
        np.testing.assert_array_equal(np.asarray(weight), value)
    assert not os.path.exists(os.path.join(run_dir, CHECKPOINT))


def _vamp_model(pseudo_inputs: int) -> VAE:
    return VAE(ModelConfig(latent_dim=3, hidden_dims=(16,), image_shape=(4, 4, 1),
                           likelihood="logistic", prior="vamp", pseudo_inputs=pseudo_inputs))


@pytest.mark.parametrize("count,examples", [(5, 12), (7, 3)], ids=["K ≤ N", "K > N"])
def test_pseudo_inputs_start_at_training_images_kept_off_0_and_1(count, examples):
    images = np.random.default_rng(0).integers(0, 256, (examples, 4, 4, 1), dtype=np.uint8)
    images[0] = 0  # black and white pixels are moved PIXEL_MARGIN inward
    images[1] = 255
    vae = _vamp_model(count)
    start_pseudo_inputs(vae, Split(images=images, labels=None, pixel_max=255), seed=3)
    started = np.asarray(vae.pseudo_inputs.images())
    assert started.shape == (count, 4, 4, 1)
    targets = np.clip(images / 255.0, PIXEL_MARGIN, 1 - PIXEL_MARGIN)
    gaps = np.abs(started[:, None] - targets[None]).max(axis=(2, 3, 4))  # [K, N]
    assert (gaps.min(axis=1) < 1e-5).all()  # each one is a training image
    picked = gaps.argmin(axis=1)
    if count <= examples:
        assert len(set(picked)) == count  # distinct while there are enough
    assert started.min() >= PIXEL_MARGIN - 1e-6 and started.max() <= 1 - PIXEL_MARGIN + 1e-6


def test_pseudo_inputs_start_the_same_for_the_same_seed_and_not_for_another():
    images = np.random.default_rng(1).integers(0, 256, (50, 4, 4, 1), dtype=np.uint8)
    split = Split(images=images, labels=None, pixel_max=255)
    starts = []
    for seed in (4, 4, 5):
        vae = _vamp_model(6)
        start_pseudo_inputs(vae, split, seed)
        starts.append(np.asarray(vae.pseudo_inputs.images()))
    np.testing.assert_array_equal(starts[0], starts[1])
    assert not np.allclose(starts[0], starts[2])
