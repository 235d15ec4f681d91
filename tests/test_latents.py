"""Specification of keras_vae/model/latents.py: the draws every picture and check decodes."""

from __future__ import annotations

import numpy as np

from keras_vae.model.latents import component_draws, every_class, prior_draws


def test_draws_are_standard_normal_noise_and_uniform_component_picks():
    """What the generator takes (its prior scales and shifts them in the graph): N(0, 1)
    noise, uncorrelated across units, and component draws uniform on [0, 1), the same for
    the same seed."""
    noise = prior_draws(20_000, 2, 0)
    np.testing.assert_allclose(noise.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(noise.std(axis=0), 1.0, rtol=0.03)
    assert abs(np.corrcoef(noise.T)[0, 1]) < 0.03
    draws = component_draws(20_000, 0)
    assert 0 <= draws.min() and draws.max() < 1
    np.testing.assert_allclose(np.histogram(draws, bins=4, range=(0, 1))[0] / 20_000, 0.25,
                               atol=0.02)
    np.testing.assert_array_equal(prior_draws(5, 2, 0), noise[:5])


def test_every_class_gives_each_draw_each_class_row_by_row():
    noise = np.arange(6, dtype=np.float32).reshape(3, 2)
    inputs = every_class({"noise": noise, "temperature": np.ones(3), "label": np.zeros(3)}, 2)
    assert inputs["label"].tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(inputs["noise"], np.concatenate([noise, noise]))
    assert inputs["temperature"].shape == (6,)
