"""Specification of keras_vae/model/noise.py: N(0, 1), seeded, the same with and without XLA."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_vae.model.noise import counter_normal


def _draw(shape, seed, jit_compile):
    return tf.function(lambda: counter_normal(shape, tf.constant(seed, tf.int64)),
                       jit_compile=jit_compile)().numpy()


def test_xla_and_plain_tensorflow_draw_the_same_numbers():
    plain, compiled = (_draw([128, 20], [7, 11], jit) for jit in (False, True))
    np.testing.assert_allclose(plain, compiled, rtol=0, atol=1e-6)


def test_draws_are_a_function_of_the_seed():
    np.testing.assert_array_equal(_draw([50], [1, 2], False), _draw([50], [1, 2], False))
    assert not np.array_equal(_draw([50], [1, 2], False), _draw([50], [1, 3], False))
    assert not np.array_equal(_draw([50], [1, 2], False), _draw([50], [2, 2], False))


def test_draws_are_standard_normal():
    z = _draw([1_000_000], [3, 4], False)
    assert abs(z.mean()) < 0.005 and abs(z.std() - 1) < 0.005
    assert abs(np.mean(z**4) - 3) < 0.05  # kurtosis of a normal
    assert abs(np.mean(np.abs(z) > 3) - 0.0027) < 0.0004  # normal tails
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.005  # neighbours independent
