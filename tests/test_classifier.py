"""Specification of keras_vae/measure/classifier.py: the judge of the samples."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_vae.measure.classifier import build_classifier, frechet_distance


def test_the_frechet_distance_is_zero_for_the_same_images_and_grows_with_difference():
    """In any classifier's feature space: 0 for a set against itself, small for two draws
    from one distribution, large against noise; symmetric."""
    keras.utils.set_random_seed(0)
    classifier = build_classifier((12, 12, 1), 3)
    rng = np.random.default_rng(0)
    blobs = lambda n: np.clip(rng.normal(0.3, 0.1, (n, 12, 12, 1)), 0, 1)  # noqa: E731
    first, second = blobs(600).astype(np.float32), blobs(600).astype(np.float32)
    noise = rng.random((600, 12, 12, 1)).astype(np.float32)
    assert frechet_distance(classifier, first, first) == pytest.approx(0, abs=1e-6)
    same = frechet_distance(classifier, first, second)
    different = frechet_distance(classifier, first, noise)
    assert 0 < same < different / 10
    assert frechet_distance(classifier, noise, first) == pytest.approx(different, rel=1e-6)
