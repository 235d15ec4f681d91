"""Specification of keras_vae/latents.py: the draws every picture and check decodes."""

from __future__ import annotations

import numpy as np

from keras_vae.latents import every_class, prior_draws


def test_mixture_draws_have_each_components_mean_and_spread():
    means = np.array([[-5.0, 0.0], [5.0, 1.0]], np.float32)
    log_vars = np.log(np.array([[0.25, 0.25], [1.0, 4.0]], np.float32))
    z = prior_draws(20_000, 2, 0, [means, log_vars])
    right = z[:, 0] > 0
    assert abs(right.mean() - 0.5) < 0.02
    np.testing.assert_allclose(z[right].mean(axis=0), [5.0, 1.0], atol=0.05)
    np.testing.assert_allclose(z[right].std(axis=0), [1.0, 2.0], rtol=0.03)
    np.testing.assert_allclose(z[~right].std(axis=0), [0.5, 0.5], rtol=0.03)


def test_every_class_gives_each_draw_each_class_row_by_row():
    noise = np.arange(6, dtype=np.float32).reshape(3, 2)
    inputs = every_class({"noise": noise, "temperature": np.ones(3), "label": np.zeros(3)}, 2)
    assert inputs["label"].tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(inputs["noise"], np.concatenate([noise, noise]))
    assert inputs["temperature"].shape == (6,)
