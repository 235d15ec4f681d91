"""The encoder and the decoder: a family's image layers around the dense hidden layers."""

from __future__ import annotations

import keras
from keras import layers

from keras_vae.networks import network_family
from keras_vae.networks.layers import OneHot, dense, hidden_layer


def build_encoder(config) -> keras.Model:
    """x [N, H, W, C] in [0, 1] (and a conditional model's label [N]) → (z_mean,
    z_log_var), each [N, latent_dim]. The label joins after the family's image layers:
    they learn features shared by every class, the dense layers what the class changes.
    `config`: a `ModelConfig`."""
    family = network_family(config.arch)
    images = keras.Input(shape=config.image_shape, name="image")
    inputs = [images]
    h = layers.Flatten()(family.image_features(config, images))
    h = _with_label(config, inputs, h)
    for i, width in enumerate(config.hidden_dims):
        h = hidden_layer(h, width, f"encoder_hidden_{i}", family.gated_hidden_units)
    z_mean = dense(config.latent_dim, "z_mean")(h)
    z_log_var = dense(config.latent_dim, "z_log_var")(h)
    return keras.Model(inputs if config.conditional else images, [z_mean, z_log_var],
                       name="encoder")


def build_decoder(config, outputs_per_pixel: int) -> keras.Model:
    """z [N, latent_dim] (and a conditional model's label [N]) → the parameters of p(x|z),
    [N, H, W, outputs_per_pixel] (the encoder mirrored). The label joins z before the
    first dense layer, so for `conv` it also shapes the grid the convolutions start from."""
    family = network_family(config.arch)
    z = keras.Input(shape=(config.latent_dim,), name="z")
    inputs = [z]
    h = _with_label(config, inputs, z)
    for i, width in enumerate(reversed(config.hidden_dims)):
        h = hidden_layer(h, width, f"decoder_hidden_{i}", family.gated_hidden_units)
    parameters = family.pixel_parameters(config, h, outputs_per_pixel)
    return keras.Model(inputs if config.conditional else z, parameters, name="decoder")


def _with_label(config, inputs: list, h):
    """For a conditional model: adds a `label` input (int64 [N]) to `inputs` and returns h
    with the label's one-hot vector appended, for the first dense layer. A dense layer over
    [h, one-hot(y)] is W·h + E[y] + b: a learned embedding of y as wide as the layer."""
    if not config.conditional:
        return h
    if config.classes < 1:
        raise ValueError("a conditional model needs label_names (the classes) in its config")
    label = keras.Input(shape=(), dtype="int64", name="label")
    inputs.append(label)
    return layers.Concatenate(name="with_label")([h, OneHot(config.classes,
                                                            name="label_one_hot")(label)])
