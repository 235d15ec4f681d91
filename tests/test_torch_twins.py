"""Specification of keras_vae/benchmarks/torch_twins.py: the PyTorch networks do the same work."""

from __future__ import annotations

import numpy as np
import pytest

from keras_vae.benchmarks.torch_twins import TorchConvVAE
from keras_vae.benchmarks.training_speed import colour_split
from keras_vae.model.likelihoods.logistic import DiscretizedLogistic


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


def test_the_pytorch_hierarchy_is_keras_vaes_network_with_the_same_weights():
    """Given the Keras hierarchy's weights and the same noise, the PyTorch twin gives the
    same negative ELBO per example: the side by side times the same work."""
    torch = pytest.importorskip("torch")
    from keras_vae.benchmarks.torch_twins import TorchHierarchicalVAE
    from keras_vae.config import ModelConfig
    from keras_vae.model.vae import VAE

    rng = np.random.default_rng(2)
    images = (rng.random((6, 28, 28, 1)) < 0.3).astype(np.float32)
    vae = VAE(ModelConfig(latent_dim=(6, 4, 3), hidden_dims=(24,), likelihood="bernoulli"))
    vae(images)
    for weight in vae.weights:  # the zero-started heads too, so every path is compared
        weight.assign(rng.normal(0, 0.1, weight.shape).astype(np.float32))
    twin = TorchHierarchicalVAE(images, levels=(6, 4, 3), width=24)
    for name, linear in twin.layers.items():
        kernel, bias = _keras_layer(vae, name).get_weights()
        linear.weight.data = torch.from_numpy(kernel.T.copy())
        linear.bias.data = torch.from_numpy(bias)
    epsilon = rng.normal(size=(6, 13)).astype(np.float32)
    parameters, levels = vae.posterior_pass(images, None, epsilon)
    keras_loss = (vae.likelihood.neg_log_prob(images, parameters)
                  + sum(kl for _, kl, _ in levels))
    noise = [torch.from_numpy(e) for e in np.split(epsilon, [6, 10], axis=1)]
    torch_loss = twin.neg_elbo(twin.x, noise).detach().numpy()
    assert np.all(np.isfinite(torch_loss))
    np.testing.assert_allclose(torch_loss, np.asarray(keras_loss), rtol=1e-5)
    assert np.ptp(torch_loss) > 1  # examples differ: a real comparison, not of constants


def _keras_layer(vae, name: str):
    for layer in [*vae.posterior_heads, *vae.prior_heads]:
        if layer.name == name:
            return layer
    for state in vae.states:
        if state.name == name:
            return state.linear
    for network in (vae.encoder, vae.decoder):
        if name in [layer.name for layer in network.layers]:
            return network.get_layer(name)
    raise KeyError(name)


def test_the_pytorch_spatial_network_is_keras_vaes_with_the_same_weights():
    """Given the Keras spatial model's weights and the same noise, the PyTorch twin gives
    the same negative ELBO per example (every convolution, block, head, upsampling and
    the top map compared), so the bench's side by side times the same work."""
    torch = pytest.importorskip("torch")
    from keras_vae.benchmarks.torch_spatial import TorchSpatialVAE
    from keras_vae.config import ModelConfig
    from keras_vae.model.vae import VAE

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    vae = VAE(ModelConfig(arch="spatial", latent_dim=4, hidden_dims=(16,),
                          image_shape=(16, 16, 3), likelihood="logistic",
                          mixture_components=2))
    vae(images / 255)
    for weight in vae.weights:  # the zero-started heads too, so every path is compared
        weight.assign(rng.normal(0, 0.1, weight.shape).astype(np.float32))
    twin = TorchSpatialVAE(images, latent_channels=4, width=16, components=2)
    assert [m.shape for m in twin.maps] == [(8, 8, 4), (8, 8, 4), (4, 4, 4)]
    for name, conv in twin.convs.items():
        _copy_conv(torch, _spatial_layer(vae, name), conv)
    for name, block in twin.blocks.items():
        for keras_step, step in zip(_spatial_layer(vae, name).steps,
                                    (block.reduce, block.conv_a, block.conv_b, block.expand),
                                    strict=True):
            _copy_conv(torch, keras_step, step)
    twin.top_map.data = torch.from_numpy(np.transpose(vae.top_map.value.numpy(), (2, 0, 1)))
    epsilon = rng.normal(size=(5, sum(vae.config.levels))).astype(np.float32)
    parameters, levels = vae.posterior_pass(images / 255, None, epsilon)
    keras_loss = (vae.likelihood.neg_log_prob(images / 255, parameters)
                  + sum(kl for _, kl, _ in levels))
    noise = [torch.from_numpy(np.ascontiguousarray(np.transpose(
        e.reshape(5, *m.shape), (0, 3, 1, 2))))
        for e, m in zip(np.split(epsilon, np.cumsum(vae.config.levels)[:-1], axis=1),
                        twin.maps, strict=True)]
    torch_loss = twin.neg_elbo(twin.x, noise).detach().numpy()
    assert np.all(np.isfinite(torch_loss)) and np.ptp(torch_loss) > 1
    np.testing.assert_allclose(torch_loss, np.asarray(keras_loss), rtol=1e-4)


def _copy_conv(torch, keras_conv, conv) -> None:
    kernel, bias = keras_conv.get_weights()
    conv.weight.data = torch.from_numpy(np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1))))
    conv.bias.data = torch.from_numpy(bias)


def _spatial_layer(vae, name: str):
    for layer in [*vae.posterior_heads, *vae.prior_heads, *vae.z_projections, *vae.blocks,
                  vae.output_block, vae.output_conv]:
        if layer.name == name:
            return layer
    return vae.encoder.get_layer(name)
