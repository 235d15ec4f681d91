"""`--arch spatial`: a top-down hierarchy whose latent levels are feature maps.

The top-down model of `keras_vae.model.vae` with convolutional paths, after VDVAE (Child 2021)
and NVAE (Vahdat & Kautz 2020), sized for a CPU:

    bottom-up   x → a 3×3 stem → per resolution a residual block, kept, then a 2×2
                average pool: activations d_r at every resolution r
                (`keras_vae.model.networks.latent_maps`: 28 → 14 → 7 → 4)
    top-down    the state starts as a learned map at the lowest resolution (plus a
                conditional model's label embedding); each level l, from the top:
                  prior      p(z_l | z_>l) = N(μ, σ²) by a 3×3 convolution of the state
                             (the top level's is the model's prior: N(0, I), the
                             VampPrior or the class prior, on its flat map)
                  posterior  q(z_l | x, z_>l): the prior's (μ, log σ²) plus a residual by
                             a 3×3 convolution of [state, d_r] (the top level's from d_r
                             alone)
                  merge      state += 1×1 convolution of z_l, then a residual block;
                             where the next level sits at a finer resolution, a bilinear
                             2× upsampling (cropped where a side was rounded up)
                then, at the image's resolution, a residual block and a 1×1 convolution
                to the likelihood's parameters of every pixel.

Residual blocks are VDVAE's bottleneck: four convolutions (1×1, 3×3, 3×3, 1×1, a quarter
of the width inside) each after a SiLU, added to their input; the last one starts at
zero, so a fresh block is the identity and depth does not blow the stream up. No batch
normalization anywhere: exports then compute what training computed, at every
temperature. The prior and residual-posterior heads start at zero, so a fresh model's
levels are N(0, I) with q = p, as the dense hierarchy's.

Every op converts to every export format (`keras_vae.model.networks`: Conv2D, bilinear
UpSampling2D, Cropping2D, AveragePooling2D, elementwise), and a level's map travels flat
[N, h·w·c], so the sampling contract, the densities and the evaluation are the
hierarchy's own.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from keras_vae.model.networks.latent_maps import resolutions
from keras_vae.model.networks.layers import OneHot, fan_in_uniform
from keras_vae.model.networks.levels import LevelNetwork
from keras_vae.model.precision import as_float32

LOG_VAR_CEILING = 5.0
"""No level's prior or posterior is wider than σ = e^2.5 ≈ 12. Training never asks for
more, but without a ceiling a prior learns widths it is never sampled at: a 32×32 colour
model drew NaN in 1 of 64 samples at temperature 1 after 5 epochs (a level-2 prior's
log-variance of 30 made z of 170,000 and the next level's 8,011; 2026-12-06). NVAE
soft-clamps its parameters for the same reason."""
BOTTLENECK = 4
"""A residual block's inner width is the stream's width over this (VDVAE's 0.25)."""


def _conv(filters: int, size: int, name: str, initializer=None) -> layers.Conv2D:
    return layers.Conv2D(filters, size, padding="same", name=name,
                         kernel_initializer=initializer or fan_in_uniform())


@keras.saving.register_keras_serializable(package="keras_vae")
class ResidualBlock(layers.Layer):
    """x + f(x), f four SiLU-then-convolution steps (1×1, 3×3, 3×3, 1×1) through a
    quarter of the width; the last convolution starts at zero (the block starts as the
    identity)."""

    def __init__(self, width: int, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        inner = max(1, width // BOTTLENECK)
        self.steps = [_conv(inner, 1, "reduce"), _conv(inner, 3, "conv_a"),
                      _conv(inner, 3, "conv_b"), _conv(width, 1, "expand", "zeros")]

    def call(self, x):
        h = x
        for step in self.steps:
            h = step(ops.silu(h))
        return x + h

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "width": self.width}


@keras.saving.register_keras_serializable(package="keras_vae")
class LearnedMap(layers.Layer):
    """x + a learned [h, w, c] map: the top-down path's learned start, added to what the
    top level's z makes."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.map_shape = tuple(shape)
        self.value = self.add_weight(shape=self.map_shape, initializer="zeros", name="value")

    def call(self, x):
        return x + self.value

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.map_shape)

    def get_config(self):
        return {**super().get_config(), "shape": list(self.map_shape)}


@keras.saving.register_keras_serializable(package="keras_vae")
class BatchReshape(layers.Layer):
    """x [N, …] → [N, *target], the batch size read from x when it runs, not left as -1:
    onnxruntime's shape inference, which its int8 quantization needs, cannot follow a -1
    through the graph. It keeps its input's dtype: under a mixed policy a Keras layer
    would cast the float32 means and log-variances it flattens to 16 bits."""

    def __init__(self, target, **kwargs):
        super().__init__(autocast=False, **kwargs)
        self.target = tuple(target)

    def call(self, x):
        return ops.reshape(x, (ops.shape(x)[0], *self.target))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.target)

    def get_config(self):
        return {**super().get_config(), "target": list(self.target)}


def _upsampling(size: tuple[int, int], target: tuple[int, int], name: str) -> list:
    """Bilinear 2× upsampling from `size`, cropped to `target` (odd sides were rounded up
    on the way down): bilinear, as the conv family's, for LiteRT's static shapes."""
    steps = [layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_upsample")]
    excess = (2 * size[0] - target[0], 2 * size[1] - target[1])
    if any(excess):
        steps.append(layers.Cropping2D(((0, excess[0]), (0, excess[1])), name=f"{name}_crop"))
    return steps


def build_spatial_bottom_up(config) -> keras.Model:
    """x (and a conditional model's label) → [d_1, …, d_R]: the activations at every
    resolution below the image's own (the ones that hold latents), finest first. The
    label joins as a learned per-class map added at the lowest resolution."""
    width = config.hidden_dims[-1]
    sides = resolutions(*config.image_shape[:2])
    images = keras.Input(shape=config.image_shape, name="image")
    inputs = [images]
    h = _conv(width, 3, "stem")(images)
    h = ResidualBlock(width, name="bottom_up_0")(h)
    features = []
    for r in range(1, len(sides)):
        h = layers.AveragePooling2D(2, padding="same", name=f"pool_{r}")(h)
        h = ResidualBlock(width, name=f"bottom_up_{r}")(h)
        features.append(h)
    if config.conditional:
        label = keras.Input(shape=(), dtype="int64", name="label")
        inputs.append(label)
        embedding = layers.Dense(width, name="label_embedding")(
            OneHot(config.classes, name="label_one_hot")(label))
        features[-1] = layers.Add(name="with_label")(
            [features[-1], layers.Reshape((1, 1, width))(embedding)])
    return keras.Model(inputs if config.conditional else images, features, name="encoder")


class SpatialLevels(LevelNetwork):
    """Feature-map levels (module docstring), the network parts of `keras_vae.model.vae.VAE`
    that `keras_vae.model.networks.levels` describes: where a level reads the bottom-up pass,
    how the state starts, gives a level's prior and takes its z, and how the pixels'
    parameters come out."""

    def build_paths(self) -> None:
        self.model.encoder = build_spatial_bottom_up(self.model.config)

    def build_heads(self) -> None:
        model, config = self.model, self.model.config
        width, maps = config.hidden_dims[-1], config.latent_maps
        top = len(maps) - 1
        sides = resolutions(*config.image_shape[:2])
        model.top_map = LearnedMap((maps[top].height, maps[top].width, width), name="top_map")
        model.label_embedding = (layers.Dense(width, name="top_down_label_embedding")
                                 if config.conditional else None)
        model.posterior_heads = [
            _conv(2 * m.channels, 3, f"posterior_{i + 1}",
                  "zeros" if i < top else None) for i, m in enumerate(maps)]
        model.prior_heads = [_conv(2 * m.channels, 3, f"prior_{i + 1}", "zeros")
                             for i, m in enumerate(maps[:-1])]
        model.z_projections = [_conv(width, 1, f"z_projection_{i + 1}")
                               for i in range(len(maps))]
        model.blocks = [ResidualBlock(width, name=f"top_down_{i + 1}")
                        for i in range(len(maps))]
        finer = [maps[i - 1].resolution if i else 0 for i in range(len(maps))]
        model.upsamplings = [
            _upsampling(sides[m.resolution], sides[finer[i]], f"level_{i + 1}")
            if finer[i] != m.resolution else [] for i, m in enumerate(maps)]
        model.to_maps = [BatchReshape(m.shape, name=f"to_map_{i + 1}")
                         for i, m in enumerate(maps)]
        model.to_flat = [BatchReshape((m.size,), name=f"to_flat_{i + 1}")
                         for i, m in enumerate(maps)]
        model.output_block = ResidualBlock(width, name="output_block")
        model.output_conv = _conv(model.outputs_per_pixel, 1, "parameters")

    def _flat(self, level, parameters):
        """A head's [N, h, w, 2c] → (mean, log_var), each flat [N, h·w·c], the
        log-variance at most `LOG_VAR_CEILING`."""
        mean, log_var = as_float32(*ops.split(parameters, 2, axis=-1))
        to_flat = self.model.to_flat[level]
        return to_flat(mean), to_flat(ops.minimum(log_var, LOG_VAR_CEILING))

    def top_state(self, z_top, labels, training=False):
        model = self.model
        top = len(model.config.levels) - 1
        state = model.top_map(model.z_projections[top](model.to_maps[top](z_top)))
        if model.label_embedding is not None:
            embedding = model.label_embedding(model.label_one_hot(labels))
            state = state + ops.expand_dims(ops.expand_dims(embedding, 1), 1)
        return self._advance(top, state)

    def prior_at(self, level, state):
        return self._flat(level, self.model.prior_heads[level](state))

    def merge(self, level, state, z, training=False):
        model = self.model
        return self._advance(level, state + model.z_projections[level](model.to_maps[level](z)))

    def _advance(self, level, state):
        """The level's residual block, then up to the next level's resolution."""
        state = self.model.blocks[level](state)
        for step in self.model.upsamplings[level]:
            state = step(state)
        return state

    def posterior_parameters(self, features, level, state_above):
        feature = features[self.model.config.latent_maps[level].resolution - 1]
        inputs = (feature if state_above is None
                  else ops.concatenate([state_above, feature], axis=-1))
        return self._flat(level, self.model.posterior_heads[level](inputs))

    def output(self, state, labels, training=False):
        model = self.model
        return as_float32(model.output_conv(ops.silu(model.output_block(state))))[0]
