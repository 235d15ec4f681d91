"""The network parts of a top-down VAE, one object per kind of level: where each level
reads the bottom-up pass, how the top-down state starts and takes each z, each level's
prior, and how the pixels' parameters come out. `keras_vae.model.vae.VAE` walks the levels;
these say what a level is.

- `OneLevel`: one vector level, the encoder x → (μ, log σ²) and the decoder z → p(x|z)
  of Kingma & Welling (`--latent-dim 20`).
- `DenseLevels`: several vector levels on dense layers (`--latent-dim 32,16`).
- `keras_vae.model.networks.spatial.SpatialLevels`: levels that are feature maps
  (`--arch spatial`).

Each builds its layers onto the model, under the attribute names that a run's `.keras`
file stores their weights by (Keras names a model's weights by its attributes), in two
steps: `build_paths` before the layers every model has, `build_heads` after, the order
that fixes which seeded initial weights each layer gets. Every level travels flat,
[N, d_l], between the model and these objects.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from keras_vae.model.networks import network_family
from keras_vae.model.networks.layers import fan_in_uniform
from keras_vae.model.networks.stack import (
    build_bottom_up,
    build_decoder,
    build_encoder,
    build_pixel_decoder,
    dropout_layer,
)
from keras_vae.model.precision import as_float32


@keras.saving.register_keras_serializable(package="keras_vae")
class StateUnit(layers.Layer):
    """The top-down state s = act(W·x + b), or with gating (W·x + b) ⊙ sigmoid(V·x + c),
    as the network family's hidden units are."""

    def __init__(self, width: int, gated: bool, **kwargs):
        super().__init__(**kwargs)
        self.width, self.gated = width, gated
        self.linear = layers.Dense(width, None if gated else "relu",
                                   kernel_initializer=fan_in_uniform(), name="linear")
        self.gate = (layers.Dense(width, "sigmoid", kernel_initializer=fan_in_uniform(),
                                  name="gate") if gated else None)

    def call(self, x):
        return self.linear(x) * self.gate(x) if self.gated else self.linear(x)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.width)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "gated": self.gated}


def gaussian_head(units: int, name: str, start_at_zero: bool) -> layers.Dense:
    """A dense layer to (mean, log-variance) of `units` latents; zero-initialized heads
    make a fresh prior N(0, I) and a fresh posterior equal to its prior."""
    initializer = "zeros" if start_at_zero else fan_in_uniform()
    return layers.Dense(2 * units, kernel_initializer=initializer, name=name)


def split_gaussian(parameters):
    """A head's [N, 2d] → (mean, log_var), float32 under any dtype policy."""
    return as_float32(*ops.split(parameters, 2, axis=-1))


class LevelNetwork:
    """What every kind of level network shares: the model it builds its layers onto (the
    bottom-up pass is the model's `encoder`, whatever it returns: `features`), and
    whether its updates need VDVAE's clipping and skipping
    (`keras_vae.model.guarded_update`): deep stacks do."""

    guarded = True

    def __init__(self, model):
        self.model = model


class OneLevel(LevelNetwork):
    """One level: the encoder's heads are the posterior's (μ, log σ²), the decoder reads
    z itself. The state the model walks is z; nothing lies below it."""

    guarded = False

    def build_paths(self) -> None:
        self.model.encoder = build_encoder(self.model.config)

    def build_heads(self) -> None:
        self.model.decoder = build_decoder(self.model.config, self.model.outputs_per_pixel)

    def posterior_parameters(self, features, level, state_above):
        return as_float32(*features)

    def top_state(self, z_top, labels, training=False):
        return z_top

    def output(self, state, labels, training=False):
        return as_float32(self.model.decoder(self.model.with_labels(state, labels),
                                             training=training))[0]


class DenseLevels(LevelNetwork):
    """Vector levels on dense layers (`keras_vae.model.vae` describes the walk): per level a
    prior and a posterior head and a state unit; the states form a residual stream,
    s_L = f(z_L) and s_l = s_l+1 + f([s_l+1, z_l]) (VDVAE's form), so every level is one
    hidden layer from the pixels, as a one-level model's z is. Measured after two
    Fashion-MNIST epochs (2026-11-30, validation negative ELBO): 2064.3 nats with
    s_l = f([s_l+1, z_l]) and a hidden layer before the pixels, 2029.9 with both changes,
    2020.6 for the one-level model."""

    def build_paths(self) -> None:
        """The bottom-up pass: one feature vector per level."""
        self.model.encoder = build_bottom_up(self.model.config)

    def build_heads(self) -> None:
        model, config = self.model, self.model.config
        levels, width = config.levels, config.hidden_dims[-1]
        gated = network_family(config.arch).gated_hidden_units
        top = len(levels)
        model.posterior_heads = [gaussian_head(levels[i], f"posterior_{i + 1}", i + 1 < top)
                                 for i in range(top)]
        model.prior_heads = [gaussian_head(levels[i], f"prior_{i + 1}", True)
                             for i in range(top - 1)]
        model.states = [StateUnit(width, gated, name=f"state_{i + 1}") for i in range(top)]
        model.update_dropout = (dropout_layer(config, "top_down_dropout")
                                if config.dropout else None)
        model.decoder = build_pixel_decoder(config, model.outputs_per_pixel, width)

    def posterior_parameters(self, features, level, state_above):
        """The posterior head's (mean, log_var): at the top from d_L alone, below the
        residual from [d_l, s_l+1]."""
        inputs = (features[level] if state_above is None
                  else ops.concatenate([features[level], state_above], axis=-1))
        return split_gaussian(self.model.posterior_heads[level](inputs))

    def top_state(self, z_top, labels, training=False):
        model = self.model
        z_top = ops.cast(z_top, model.states[-1].compute_dtype)
        if model.config.conditional:
            z_top = ops.concatenate([z_top, model.label_one_hot(labels)], axis=-1)
        return model.states[-1](z_top)

    def prior_at(self, level, state):
        return split_gaussian(self.model.prior_heads[level](state))

    def merge(self, level, state, z, training=False):
        update = self.model.states[level](
            ops.concatenate([state, ops.cast(z, state.dtype)], axis=-1))
        if self.model.update_dropout is not None:
            update = self.model.update_dropout(update, training=training)
        return state + update

    def output(self, state, labels, training=False):
        """The pixel decoder's parameters: the family's pixel layers alone."""
        inputs = [state, labels] if self.model.config.conditional else state
        return as_float32(self.model.decoder(inputs, training=training))[0]
