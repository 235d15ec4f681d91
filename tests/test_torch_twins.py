"""Specification of keras_vae/torch_twins.py: the PyTorch networks do the same work."""

from __future__ import annotations

import numpy as np
import pytest

from keras_vae.benchmarks import colour_split
from keras_vae.likelihoods.logistic import DiscretizedLogistic
from keras_vae.torch_twins import TorchConvVAE


def test_the_pytorch_conv_network_scores_pixels_as_keras_vae_does():
    """The side-by-side is only fair if PyTorch computes the same loss."""
    torch = pytest.importorskip("torch")
    images = colour_split(4).images
    torch_vae = TorchConvVAE(images, components=2)
    parameters = np.random.default_rng(1).normal(0, 2, (4, 32, 32, 18)).astype(np.float32)
    keras_nll = DiscretizedLogistic((32, 32, 3), 2).neg_log_prob(images / 255, parameters)
    torch_nll = torch_vae._neg_log_prob(torch_vae.x, torch.from_numpy(
        parameters).permute(0, 3, 1, 2).contiguous())
    np.testing.assert_allclose(torch_nll.numpy(), keras_nll, rtol=1e-5)
