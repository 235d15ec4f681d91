"""Latent codes to decode: seeded draws from a model's prior, and class grids.

Pictures, the samples' class check and the export's int8 check decode draws from the
model's own prior, as a user's sampler does, with numpy's seeded generator. (The edge
sampler and the browser page share a generator of their own, written for JavaScript too:
`serving/sample.py`.)
"""

from __future__ import annotations

import numpy as np


def prior_draws(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """n seeded draws of the generator's noise ε ~ N(0, I), float32 [n, latent_dim]; the
    generator scales them by the temperature and the prior's σ itself."""
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)


def component_draws(n: int, seed: int) -> np.ndarray:
    """n seeded uniforms in [0, 1), float32: which component of a prior mixture (the
    VampPrior, a class's mixture) the generator draws the top level from
    (`component_draw`)."""
    return np.random.default_rng([seed, 2]).random(n).astype(np.float32)


def every_class(inputs: dict, classes: int) -> dict:
    """Generator inputs (`VAE.sample_inputs`) with each draw given each label,
    class-major: every array repeated per class and `label` = 0…0, 1…1, …; row c of a
    grid of N columns shows every draw as class c."""
    n = len(next(iter(inputs.values())))
    tiled = {name: np.concatenate([value] * classes) for name, value in inputs.items()}
    return {**tiled, "label": np.arange(classes, dtype=np.int64).repeat(n)}
