"""Specification of keras_vae/model/networks/: every family builds the same encoder and decoder
shapes, and the registry is the one list of families."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_vae.config import ModelConfig
from keras_vae.model.networks import NETWORKS, network_family
from keras_vae.model.networks.conv import conv_stages
from keras_vae.model.networks.layers import OneHot
from keras_vae.model.vae import VAE


def _small_vae(**overrides) -> VAE:
    keras.utils.set_random_seed(0)
    return VAE(ModelConfig(**{"likelihood": "bernoulli", "latent_dim": 4, "hidden_dims": (32,),
                              "seed": 3, **overrides}))


def test_every_registered_family_builds_its_features_and_pixels():
    for name in NETWORKS:
        family = network_family(name)
        assert callable(family.image_features) and callable(family.pixel_parameters)


@pytest.mark.parametrize("arch, marker_layer", [("conv", "encoder_conv_0"),
                                                 ("gated", "encoder_hidden_0_gate")])
def test_other_architectures_keep_the_shapes_and_names_of_the_mlp(arch, marker_layer):
    other = _small_vae(arch=arch, hidden_dims=(64,))
    mlp = _small_vae()
    images = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    assert other(images).shape == mlp(images).shape == (3, 28, 28, 1)
    assert [o.shape for o in other.encoder(images)] == [o.shape for o in mlp.encoder(images)]
    assert other.decoder.layers[-1].name == mlp.decoder.layers[-1].name == "parameters"
    assert other.decoder.input_shape == mlp.decoder.input_shape == (None, 4)
    assert other.encoder.get_layer(marker_layer)


@pytest.mark.parametrize("shape, stages", [((8, 8, 1), 1), ((28, 28, 1), 2), ((32, 32, 3), 2),
                                           ((64, 64, 3), 3), ((27, 19, 3), 2),
                                           ((5, 7, 1), 1)])
def test_the_conv_network_derives_its_stages_from_the_image_size(shape, stages):
    assert conv_stages(shape) == stages
    config = ModelConfig(latent_dim=3, hidden_dims=(16,), arch="conv", image_shape=shape,
                         likelihood="logistic", mixture_components=2)
    vae = VAE(config)
    images = np.random.default_rng(0).random((2, *shape)).astype(np.float32)
    assert vae(images).shape == (2, *shape[:2], shape[2] * 3 * 2)
    assert len([layer for layer in vae.encoder.layers if "conv" in layer.name]) == stages
    vae.compile(optimizer="adam")
    losses = vae.evaluate(images, batch_size=2, return_dict=True, verbose=0)
    assert np.isfinite(losses["loss"])


@pytest.mark.parametrize("arch", ["mlp", "gated"])
def test_dense_networks_take_any_image_shape(arch):
    shape = (12, 10, 3)
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=3, hidden_dims=(16,), arch=arch,
                          image_shape=shape))
    images = np.random.default_rng(0).random((2, *shape)).astype(np.float32)
    assert vae(images).shape == (2, *shape)
    assert [t.shape for t in vae.encoder(images)] == [(2, 3), (2, 3)]


def test_a_gated_layer_is_its_linear_part_times_a_sigmoid_of_its_gate():
    encoder = _small_vae(arch="gated", hidden_dims=(16,)).encoder
    x = np.random.default_rng(1).random((5, 784)).astype(np.float32)
    w, b = encoder.get_layer("encoder_hidden_0_linear").get_weights()
    v, c = encoder.get_layer("encoder_hidden_0_gate").get_weights()
    expected = (x @ w + b) / (1 + np.exp(-(x @ v + c)))
    hidden = keras.Model(encoder.input, encoder.get_layer("encoder_hidden_0").output)
    np.testing.assert_allclose(hidden(x.reshape(5, 28, 28, 1)), expected, rtol=1e-5,
                               atol=1e-6)
    assert not np.allclose(w, v)  # two independently initialized kernels


def test_one_hot_labels_are_all_zero_outside_the_classes():
    one_hot = np.asarray(OneHot(3)(np.array([0, 2, -1, 3, 99])))
    np.testing.assert_array_equal(one_hot, [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0],
                                            [0, 0, 0]])
