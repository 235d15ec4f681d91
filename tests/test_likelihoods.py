"""Specification of keras_vae/model/likelihoods/: p(x|z) is a probability of the data's pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from keras import ops

from keras_vae.model.likelihoods.bernoulli import Bernoulli
from keras_vae.model.likelihoods.logistic import (
    HALF_BIN,
    LOG_SCALE_RANGE,
    DiscretizedLogistic,
    _one_minus_exp_neg,
    bin_probability_terms,
)

LEVELS = np.arange(256, dtype=np.float32) / 255


def _random_parameters(rng, shape, components, spread=3.0):
    return rng.normal(0, spread, (*shape, 3 * components)).astype(np.float32)


def test_the_256_levels_of_a_pixel_have_probabilities_summing_to_one():
    """For random mixtures on a 1×1×1 image, Σ_k p(x = k/255) = 1 to 1e-5."""
    rng = np.random.default_rng(0)
    likelihood = DiscretizedLogistic((1, 1, 1), components=4)
    for _ in range(20):
        parameters = np.repeat(_random_parameters(rng, (1, 1, 1), 4), 256, axis=0)
        x = LEVELS.reshape(256, 1, 1, 1)
        log_p = ops.convert_to_numpy(-likelihood.neg_log_prob(x, parameters)).astype(np.float64)
        assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-5)


def test_the_edge_bins_take_the_tails():
    """A logistic centred far below 0 puts (almost) all its mass on 0, far above 1 on 255;
    a narrow one at 0.5 on the middle level."""
    x = LEVELS[:, None]
    for location, mode in ((-3.0, 0), (4.0, 255), (128 / 255, 128)):
        tail, ratio = bin_probability_terms(x, location, math.log(0.0002))
        log_p = np.log(ops.convert_to_numpy(ratio)) - ops.convert_to_numpy(tail)
        assert int(np.argmax(log_p)) == mode and np.exp(log_p[mode]) > 0.99


def _float64_neg_log_prob(x, parameters, components):
    """The mixture's NLL in float64 from log σ(a) + log(1 − σ(b)) + log(1 − e^(b − a)),
    each term with log1p / expm1: an independent reference."""
    x = x.astype(np.float64)[..., None]
    shaped = parameters.astype(np.float64).reshape(*parameters.shape[:-1], -1, 3, components)
    logits, locations = shaped[..., 0, :], 0.5 + shaped[..., 1, :]
    scales = np.exp(np.clip(shaped[..., 2, :] - 2.0, -7.0, 7.0))
    upper, lower = (x - locations + HALF_BIN) / scales, (x - locations - HALF_BIN) / scales
    log_sigmoid = lambda t: -np.logaddexp(0.0, -t)  # noqa: E731
    log_left, log_right = log_sigmoid(upper), log_sigmoid(-lower)
    log_width = np.log(-np.expm1(lower - upper))
    log_bins = np.where(x < HALF_BIN, log_left, np.where(
        x > 1 - HALF_BIN, log_right, log_left + log_right + log_width))
    log_pi = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    return -np.logaddexp.reduce(log_bins + log_pi, axis=-1).sum(axis=(-3, -2, -1))


def test_the_nll_equals_a_float64_reference_to_float32_rounding():
    """Over mixtures whose locations lie inside and far outside [0, 1], whose scales span
    the whole allowed range, at every level including the edge bins: per image of 8×8×3
    pixels, every form (training's with exportable ops and with TensorFlow's expm1, and
    scoring's) within 1e-6 relative (float32 rounding) of the float64 reference."""
    rng = np.random.default_rng(4)
    components, shape = 5, (8, 8, 3)
    likelihood = DiscretizedLogistic(shape, components)
    x = rng.choice(LEVELS, size=(200, *shape)).astype(np.float32)
    logits = rng.normal(0, 3, (200, *shape, components))
    locations = rng.uniform(-1.5, 2.5, (200, *shape, components))
    raw_log_scales = rng.uniform(-6.0, 10.0, (200, *shape, components))  # clipped at ±7
    parameters = np.concatenate([logits, locations, raw_log_scales], axis=-1).reshape(
        200, *shape[:2], -1).astype(np.float32)
    reference = _float64_neg_log_prob(x, parameters, components)
    for form in (likelihood.neg_log_prob, likelihood.scoring_neg_log_prob,
                 lambda x, p: likelihood.neg_log_prob(x, p, exportable=False)):
        nll = ops.convert_to_numpy(form(x, parameters)).astype(np.float64)
        np.testing.assert_allclose(nll, reference, rtol=1e-6)
    assert reference.min() > 10  # images with real probabilities, not near-certain ones


def test_the_log_probability_stays_finite_for_extreme_parameters():
    likelihood = DiscretizedLogistic((2, 2, 3), components=2)
    extreme = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32)
    rng = np.random.default_rng(1)
    parameters = rng.choice(extreme, size=(64, 2, 2, 3 * 3 * 2)).astype(np.float32)
    x = rng.choice(LEVELS, size=(64, 2, 2, 3)).astype(np.float32)
    for form in (likelihood.neg_log_prob, likelihood.scoring_neg_log_prob,
                 lambda x, p: likelihood.neg_log_prob(x, p, exportable=False)):
        nll = ops.convert_to_numpy(form(x, parameters))
        assert np.isfinite(nll).all() and (nll >= 0).all()


def test_the_mean_image_is_the_mean_of_the_256_levels_within_half_a_level():
    """`mean` is E[x|z] = Σ_k (k/255)·P(bin k), the probabilities taken from the
    likelihood's own `neg_log_prob` at every level (float64 sum), within 1/510, for
    mixtures whose scales span the whole allowed range and whose locations lie inside and
    outside [0, 1] (μ = 0, s = 0.1 has the mean 0.069, not 0)."""
    rng = np.random.default_rng(3)
    components, pixels = 3, 400
    likelihood = DiscretizedLogistic((1, 1, 1), components)
    logits = rng.normal(0, 2, (pixels, components))
    locations = rng.uniform(-0.6, 1.6, (pixels, components))
    raw_log_scales = rng.uniform(-5.5, 9.5, (pixels, components))  # + offset: [−7.5, 7.5]
    locations[0], raw_log_scales[0], logits[0] = 0.0, np.log(0.1) + 2, (0, -50, -50)
    parameters = np.concatenate([logits, locations - 0.5, raw_log_scales], axis=-1
                                ).astype(np.float32).reshape(pixels, 1, 1, 1, -1)
    log_p = np.stack([ops.convert_to_numpy(-likelihood.neg_log_prob(
        np.full((pixels, 1, 1, 1), level, np.float32), parameters[:, 0]))
        for level in LEVELS]).astype(np.float64)  # [256, pixels]
    direct = (LEVELS[:, None].astype(np.float64) * np.exp(log_p)).sum(axis=0)
    mean = ops.convert_to_numpy(likelihood.mean(parameters[:, 0])).ravel()
    assert np.abs(mean - direct).max() <= 1 / 510
    assert direct[0] == pytest.approx(0.0693, abs=1e-3) and mean[0] == pytest.approx(0.0693,
                                                                                      abs=1e-3)
    assert mean.min() >= 0.0 and mean.max() <= 1.0


def test_k_samples_per_image_give_the_same_values_as_one_at_a_time():
    rng = np.random.default_rng(2)
    for likelihood, per_channel in ((DiscretizedLogistic((4, 3, 2), 3), 9),
                                    (Bernoulli((4, 3, 2)), 1)):
        x = rng.choice(LEVELS, size=(5, 4, 3, 2)).astype(np.float32)
        parameters = rng.normal(size=(7, 5, 4, 3, 2 * per_channel)).astype(np.float32)
        together = ops.convert_to_numpy(likelihood.neg_log_prob(x, parameters))
        one_by_one = np.stack([ops.convert_to_numpy(likelihood.neg_log_prob(x, p))
                               for p in parameters])
        np.testing.assert_allclose(together, one_by_one, rtol=1e-5)


def test_the_bernoulli_nll_of_binary_pixels_is_their_log_probability():
    x = np.array([[[[0.0], [1.0]]]], np.float32)
    logits = np.array([[[[0.3], [-1.2]]]], np.float32)
    expected = -(math.log(1 - 1 / (1 + math.exp(-0.3))) + math.log(1 / (1 + math.exp(1.2))))
    assert float(Bernoulli((1, 2, 1)).neg_log_prob(x, logits)[0]) == pytest.approx(expected)


def test_a_bins_width_factor_is_exact_for_every_scale():
    """1 − e^(−δ) for δ = 1/(255·s), s over the whole range the log-scales are clipped to
    (δ from 3.6e-6 to 4.3), and across the switch from the series: within 3e-7 of float64's
    −expm1(−δ), relatively, where 1 − exp(−δ) in float32 is off by up to 1.7 %."""
    log_scales = np.linspace(*LOG_SCALE_RANGE, 2001)
    deltas = np.concatenate([np.exp(-log_scales) / 255,
                             np.linspace(0.49, 0.51, 201)]).astype(np.float32)
    exact = -np.expm1(-deltas.astype(np.float64))
    ours = np.asarray(_one_minus_exp_neg(ops.convert_to_tensor(deltas)), np.float64)
    assert np.abs(ours / exact - 1).max() < 3e-7
    naive = 1 - np.exp(-deltas)  # float32
    assert np.abs(naive / exact - 1).max() > 1e-2


@pytest.mark.parametrize("jit_compile", [False, True])
def test_only_a_training_step_without_xla_uses_tensorflows_expm1(jit_compile):
    """TensorFlow's Expm1 is faster than the series of `_one_minus_exp_neg` unfused, and
    slower under XLA; ONNX and LiteRT have no such op. So only the gradient of a model
    compiled without XLA has it; its evaluation and an XLA one keep to the series."""
    import keras
    import tensorflow as tf

    from keras_vae.config import ModelConfig
    from keras_vae.model.vae import VAE

    vae = VAE(ModelConfig(latent_dim=2, hidden_dims=(16,), image_shape=(4, 4, 1),
                          likelihood="logistic", mixture_components=2))
    vae.compile(optimizer=keras.optimizers.Adam(), jit_compile=jit_compile)
    vae.optimizer.build(vae.trainable_variables)
    images = tf.constant(np.random.default_rng(0).choice(LEVELS, (3, 4, 4, 1)), tf.float32)

    def op_types(function) -> set[str]:
        graph = tf.function(function).get_concrete_function().graph
        return {op.type for op in graph.get_operations()}

    assert ("Expm1" in op_types(lambda: vae.gradients(images, None))) is not jit_compile
    assert "Expm1" not in op_types(lambda: vae.loss_terms(images, training=False))
