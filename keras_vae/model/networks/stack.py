"""The encoder and the decoder: a family's image layers around the dense hidden layers."""

from __future__ import annotations

import keras
from keras import layers

from keras_vae.model.networks import network_family
from keras_vae.model.networks.layers import OneHot, dense, hidden_layer


def build_encoder(config) -> keras.Model:
    """x [N, H, W, C] in [0, 1] (and a conditional model's label [N]) → (z_mean,
    z_log_var), each [N, latent_dim]. The label joins after the family's image layers:
    they learn features shared by every class, the dense layers what the class changes.
    `config`: a `ModelConfig`."""
    inputs, h = _image_trunk(config)
    z_mean = dense(config.latent_dim, "z_mean")(h)
    z_log_var = dense(config.latent_dim, "z_log_var")(h)
    return keras.Model(inputs if config.conditional else inputs[0], [z_mean, z_log_var],
                       name="encoder")


def build_bottom_up(config) -> keras.Model:
    """A hierarchy's deterministic bottom-up pass: x (and a conditional model's label) →
    one feature vector per level, [d_1, …, d_L], each as wide as the last hidden layer:
    d_1 is the one-level encoder's last hidden layer, d_l+1 one more hidden layer on
    d_l (Ladder VAE, NVAE and VDVAE share this shape)."""
    family = network_family(config.arch)
    inputs, h = _image_trunk(config)
    features = [h]
    for level in range(2, len(config.levels) + 1):
        features.append(hidden_layer(features[-1], config.hidden_dims[-1],
                                     f"bottom_up_{level}", family.gated_hidden_units))
    return keras.Model(inputs if config.conditional else inputs[0], features,
                       name="encoder")


def _image_trunk(config) -> tuple[list, object]:
    """([image input, label input?], the last hidden layer over the image)."""
    family = network_family(config.arch)
    images = keras.Input(shape=config.image_shape, name="image")
    inputs = [images]
    h = layers.Flatten()(family.image_features(config, images))
    h = _with_label(config, inputs, h)
    for i, width in enumerate(config.hidden_dims):
        h = hidden_layer(h, width, f"encoder_hidden_{i}", family.gated_hidden_units)
    return inputs, h


def build_decoder(config, outputs_per_pixel: int) -> keras.Model:
    """z [N, latent_dim] (and a conditional model's label [N]) → the parameters of p(x|z),
    [N, H, W, outputs_per_pixel] (the encoder mirrored). The label joins the input of
    every dense layer (`_decoder`), so for `conv` it also shapes the grid the
    convolutions start from."""
    return _decoder(config, outputs_per_pixel, config.latent_dim, "z",
                    tuple(reversed(config.hidden_dims)))


def build_pixel_decoder(config, outputs_per_pixel: int, state_width: int) -> keras.Model:
    """A hierarchy's last top-down state [N, state_width] (and a conditional model's
    label) → the parameters of p(x|z_1…L), through the family's pixel layers alone: the
    top-down states are the decoder's hidden layers, so z_1 is as many layers from the
    pixels as a one-level model's z (one more hidden layer measured 20 nats worse after
    two Fashion-MNIST epochs, 2026-11-30)."""
    return _decoder(config, outputs_per_pixel, state_width, "state", ())


def _decoder(config, outputs_per_pixel: int, input_width: int, input_name: str,
             hidden_widths: tuple[int, ...]) -> keras.Model:
    """A conditional decoder's label joins the input of every dense layer, the last one
    (to the pixels' parameters) included: its E[y] is then a template of the class's
    pixels, which the one-level model measured it needs to draw the asked class
    (docs/results.md). A hierarchy's pixel decoder has that one dense layer only."""
    family = network_family(config.arch)
    z = keras.Input(shape=(input_width,), name=input_name)
    inputs = [z]
    one_hot = _label_input(config, inputs)
    h = z
    if not hidden_widths:  # a hierarchy's pixel decoder, whose input is the last state
        h = training_dropout(config, h, "state_dropout")
    for i, width in enumerate(hidden_widths):
        h = hidden_layer(_joined(h, one_hot, f"with_label_{i}"), width,
                         f"decoder_hidden_{i}", family.gated_hidden_units)
        h = training_dropout(config, h, f"decoder_dropout_{i}")
    parameters = family.pixel_parameters(config, _joined(h, one_hot, "with_label"),
                                         outputs_per_pixel)
    return keras.Model(inputs if config.conditional else z, parameters, name="decoder")


def training_dropout(config, h, name: str):
    """h with `config.dropout` of its features zeroed while training; h itself without
    dropout, so that such models keep the layers they always had."""
    if not config.dropout:
        return h
    return dropout_layer(config, name)(h)


def dropout_layer(config, name: str) -> layers.Dropout:
    """Keras's dropout, seeded from the run's seed (training sets it with
    `keras.utils.set_random_seed`, and each layer draws its own stream from it); its
    state is saved with the model, so a resumed run continues the same masks."""
    return layers.Dropout(config.dropout, name=name)


def _with_label(config, inputs: list, h):
    """For a conditional model: adds a `label` input to `inputs` and returns h with the
    label's one-hot vector appended, for the first dense layer."""
    return _joined(h, _label_input(config, inputs), "with_label")


def _label_input(config, inputs: list):
    """For a conditional model: adds a `label` input (int64 [N]) to `inputs` and returns
    its one-hot vector [N, classes]; None otherwise."""
    if not config.conditional:
        return None
    if config.classes < 1:
        raise ValueError("a conditional model needs label_names (the classes) in its config")
    label = keras.Input(shape=(), dtype="int64", name="label")
    inputs.append(label)
    return OneHot(config.classes, name="label_one_hot")(label)


def _joined(h, one_hot, name: str):
    """h with the label's one-hot appended (h itself without a label). A dense layer over
    [h, one-hot(y)] is W·h + E[y] + b: a learned embedding of y as wide as the layer."""
    if one_hot is None:
        return h
    return layers.Concatenate(name=name)([h, one_hot])
