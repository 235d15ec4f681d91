"""A VampPrior model's prior, exported beside its decoder as `prior.npz`.

The decoder alone cannot draw samples: a sampler needs p(z). For N(0, I) that is common
knowledge; a VampPrior is a mixture of K Gaussians learned with the model, so its means
and log-variances ([K, latent_dim] float32 each) ship as a file that numpy reads on any
device (`serving/sample.py` finds it beside the ONNX decoder).
"""

from __future__ import annotations

import numpy as np
from keras import ops

PRIOR_FILE = "prior.npz"
"""The file name samplers look for beside the decoder (`serving/sample.py` holds the same
name, as it runs without this project; a test keeps the two equal)."""


def write_prior(vae, path: str) -> None:
    """Writes the model's VampPrior components to `path` (an .npz file name)."""
    means, log_vars = (ops.convert_to_numpy(t).astype(np.float32)
                       for t in vae.prior_components())
    with open(path, "wb") as f:
        np.savez(f, means=means, log_vars=log_vars)


def describe(path: str) -> dict:
    """The manifest entry's description of a prior file."""
    with np.load(path) as stored:
        return {"contents": "VampPrior: z ~ N(means[k], exp(log_vars[k])), k uniform",
                "means_shape": list(stored["means"].shape),
                "log_vars_shape": list(stored["log_vars"].shape)}
