"""Latent codes to decode: seeded draws from a model's prior, and class grids.

Pictures, the samples' class check and the export's int8 check decode draws from the
model's own prior, as a user's sampler does, with numpy's seeded generator. (The edge
sampler and the browser page share a generator of their own, written for JavaScript too:
`serving/sample.py`.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def prior_draws(n: int, latent_dim: int, seed: int,
                components: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """n seeded draws of z, float32 [n, latent_dim]: from N(0, I) when `components` is
    empty, else from the VampPrior mixture whose (means, log_vars) [K, latent_dim] it
    holds: a uniformly chosen component, then that component's Gaussian."""
    rng = np.random.default_rng(seed)
    chosen = rng.integers(len(components[0]), size=n) if components else None
    noise = rng.standard_normal((n, latent_dim))
    if chosen is None:
        return noise.astype(np.float32)
    means, log_vars = (np.asarray(t)[chosen] for t in components)
    return (means + np.exp(0.5 * log_vars) * noise).astype(np.float32)


def every_class(z: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each z with each label, class-major: (z repeated per class [classes·N, d], labels
    int64 [classes·N]); row c of a grid of N columns shows every z as class c."""
    labels = np.arange(classes, dtype=np.int64).repeat(len(z))
    return np.concatenate([z] * classes), labels
