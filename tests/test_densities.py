"""Specification of keras_vae/model/densities.py: log-densities and KL terms of z, in nats."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_vae.model.densities import (
    gaussian_kl,
    gaussian_kl_between,
    log_mixture_normal,
    log_mixture_normal_by_matmul,
    log_normal,
    log_prior,
)
from keras_vae.model.vae import Sampling


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


def _float64_mixture(z, means, log_vars):
    """log (1/K) Σ_k N(z; μ_k, σ_k²) in float64, component by component."""
    z, means, log_vars = (t.astype(np.float64) for t in (z, means, log_vars))
    log_components = -0.5 * np.sum((z[:, None, :] - means) ** 2 / np.exp(log_vars) + log_vars
                                   + math.log(2 * math.pi), axis=-1)
    top = log_components.max(axis=-1, keepdims=True)
    return (top[:, 0] + np.log(np.mean(np.exp(log_components - top), axis=-1)))


@pytest.mark.parametrize("low, high", [(-8, -4), (-10, -7), (-12, -9)])
@pytest.mark.parametrize("mixture", [log_mixture_normal, log_mixture_normal_by_matmul])
def test_sharp_components_keep_the_mixture_density_exact(mixture, low, high):
    """500 components in 40 dimensions with log-variances in [low, high]: at z drawn from
    the components (as q(z|x) draws them), within 1e-3 nats of float64 (the expanded
    float32 form was off by 0.003-0.17 nats on average there, by up to 0.9); far between
    them (log densities near −10⁵), within float32's relative rounding."""
    rng = np.random.default_rng(-low)
    means = rng.normal(0, 1, (500, 40)).astype(np.float32)
    log_vars = rng.uniform(low, high, (500, 40)).astype(np.float32)
    k = rng.integers(500, size=300)
    near = means[k] + np.exp(0.5 * log_vars[k]) * rng.normal(0, 1.5, (300, 40))
    z = np.concatenate([near, rng.normal(0, 1, (20, 40))]).astype(np.float32)
    exact = _float64_mixture(z, means, log_vars)
    computed = np.asarray(mixture(z, means, log_vars), np.float64)
    assert np.abs(computed - exact)[:300].max() <= 1e-3
    np.testing.assert_allclose(computed[300:], exact[300:], rtol=1e-6)


def test_a_mixture_of_standard_normals_is_the_standard_normal():
    z = np.random.default_rng(1).normal(0, 1.5, (50, 4)).astype(np.float32)
    standard = [np.zeros((6, 4), np.float32), np.zeros((6, 4), np.float32)]
    np.testing.assert_allclose(np.asarray(log_prior(z, standard)), np.asarray(log_prior(z)),
                               rtol=1e-5)


def test_estimated_kl_has_the_analytic_kl_as_its_mean_under_a_standard_normal_mixture():
    """The KL estimated under a VampPrior, log q(z|x) − log p(z) at the drawn z: averaged
    over many draws it must equal the closed-form KL when the mixture is N(0, I)."""
    n = 200_000
    z_mean = np.tile(np.array([[0.5, -1.0, 2.0]], np.float32), (n, 1))
    z_log_var = np.tile(np.log(np.array([[0.09, 2.25, 0.64]], np.float32)), (n, 1))
    standard = [np.zeros((3, 3), np.float32), np.zeros((3, 3), np.float32)]
    z = Sampling(seed=7)([z_mean, z_log_var])
    estimated = float(np.mean(log_normal(z, z_mean, z_log_var) - log_prior(z, standard)))
    exact = float(gaussian_kl(z_mean[:1], z_log_var[:1])[0])
    assert estimated == pytest.approx(exact, abs=0.02)


def test_gaussian_kl_is_zero_for_the_prior_itself():
    assert np.asarray(gaussian_kl(np.zeros((3, 5)), np.zeros((3, 5)))).tolist() == [0.0] * 3


def test_the_kl_between_two_gaussians_is_zero_for_equal_ones_and_matches_monte_carlo():
    rng = np.random.default_rng(3)
    mean_q, mean_p = rng.normal(size=(2, 1, 3))
    log_var_q, log_var_p = rng.normal(0, 0.5, size=(2, 1, 3))
    assert float(gaussian_kl_between(mean_q, log_var_q, mean_q, log_var_q)[0]) == (
        pytest.approx(0.0, abs=1e-12))
    z = mean_q + np.exp(0.5 * log_var_q) * rng.normal(size=(400_000, 3))
    log_q = -0.5 * np.sum((z - mean_q) ** 2 / np.exp(log_var_q) + log_var_q, axis=-1)
    log_p = -0.5 * np.sum((z - mean_p) ** 2 / np.exp(log_var_p) + log_var_p, axis=-1)
    exact = float(gaussian_kl_between(mean_q, log_var_q, mean_p, log_var_p)[0])
    assert np.mean(log_q - log_p) == pytest.approx(exact, abs=0.01)
    standard = float(gaussian_kl_between(mean_q, log_var_q, 0 * mean_p, 0 * log_var_p)[0])
    assert standard == pytest.approx(float(gaussian_kl(mean_q, log_var_q)[0]), rel=1e-6)
