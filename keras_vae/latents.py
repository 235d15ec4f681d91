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
                components: Sequence[np.ndarray] | None = None,
                temperature: float = 1.0) -> np.ndarray:
    """n seeded draws of z, float32 [n, latent_dim]: from N(0, t²I) when `components` is
    empty, else from the VampPrior mixture whose (means, log_vars) [K, latent_dim] it
    holds: a uniformly chosen component, then that component's Gaussian with its standard
    deviations scaled by the temperature t."""
    rng = np.random.default_rng(seed)
    chosen = rng.integers(len(components[0]), size=n) if components else None
    noise = temperature * rng.standard_normal((n, latent_dim))
    if chosen is None:
        return noise.astype(np.float32)
    means, log_vars = (np.asarray(t)[chosen] for t in components)
    return (means + np.exp(0.5 * log_vars) * noise).astype(np.float32)


def component_draws(n: int, seed: int) -> np.ndarray:
    """n seeded uniforms in [0, 1), float32: which VampPrior component a hierarchy's
    exported decoder draws its top level from (`component_draw`)."""
    return np.random.default_rng([seed, 2]).random(n).astype(np.float32)


def every_class(inputs: dict, classes: int) -> dict:
    """Generator inputs (`VAE.sample_inputs`) with each draw given each label,
    class-major: every array repeated per class and `label` = 0…0, 1…1, …; row c of a
    grid of N columns shows every draw as class c."""
    n = len(next(iter(inputs.values())))
    tiled = {name: np.concatenate([value] * classes) for name, value in inputs.items()}
    return {**tiled, "label": np.arange(classes, dtype=np.int64).repeat(n)}
