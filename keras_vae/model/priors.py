"""The priors p(z_L) of the top latent level: one object per kind, and their layers.

Each kind (`StandardNormal`, `VampPrior`, `ClassGaussian`, `ClassMixture`; `prior_for`
picks one, the one place that tells them apart) gives the model what NVAE's `Normal`
gives its levels: its density (`log_density`), its KL to a Gaussian posterior
(`terms`: in closed form where there is one, else the one-sample estimate at the drawn
z, as Tomczak & Welling train the VampPrior), the (mean, log_var) the top-down walk
starts from (`walk_parameters`), and an exported draw of z_L from the sampling
contract's noise, temperature, label and component draw (`draw`, NVAE's
`sample_given_eps`).

The layers that hold a prior's weights:
- `ClassPrior`: a conditional model's p(z | y), one Gaussian or a mixture per class;
- `PseudoInputs`: the VampPrior's learned pseudo-images, whose posteriors under the
  encoder are its mixture's components (Tomczak & Welling 2018);
- `VampComponents`: that mixture frozen into constants, so that an exported decoder picks
  a component from a uniform draw without the encoder.

N(0, I) needs no layer. `keras_vae.model.vae.VAE` holds the layer its record asks for,
under the attribute name its saved files use.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from keras_vae.config import DEFAULT_IMAGE_SHAPE
from keras_vae.model.densities import (
    gaussian_kl,
    gaussian_kl_between,
    log_mixture_per_example,
    log_normal,
    log_prior,
)
from keras_vae.model.networks.layers import OneHot


@keras.saving.register_keras_serializable(package="keras_vae")
class ClassPrior(layers.Layer):
    """p(z | y) learned per class: the prior of a conditional model, so that a draw for
    class y lands where the encoder puts that class's images. One Gaussian
    N(μ_y, exp(log σ²_y)) per class, or a mixture Σ_k π_yk N(μ_yk, σ²_yk) of `components`
    of them with learned weights, for classes whose codes lie in several clusters.

    Labels int [N] → (means, log_vars), [N, latent_dim] each, or [N, components,
    latent_dim] for a mixture. The log-variance tables start at zero; one Gaussian's means
    too (N(0, I) for every class); a mixture's at seeded N(0, 0.1²) draws, near each other
    so that every component starts where the codes are (drawn at N(0, 1), half of them
    never took any class's codes and kept drawing from where none lie), and its weights
    equal. Learned weights leave a component the codes do not use a small share of the
    draws. A label outside [0, classes) gets zero means and equal weights, as `OneHot`
    makes it "no class" everywhere. A one-hot times the tables, so that every export
    format computes it alike.

    Args:
        classes: how many labels there are.
        latent_dim: the size of z.
        components: Gaussians per class.
        seed: seed of a mixture's initial means.
    """

    def __init__(self, classes: int, latent_dim: int, components: int = 1,
                 seed: int | None = None, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})  # float32 under any policy
        self.classes, self.latent_dim = classes, latent_dim
        self.components, self.seed = components, seed
        self.one_hot = OneHot(classes, name=f"{self.name}_one_hot")
        self.component_one_hot = OneHot(components, name=f"{self.name}_component_one_hot")
        means_start = ("zeros" if components == 1
                       else keras.initializers.RandomNormal(stddev=0.1, seed=seed))
        self.means = self.add_weight(shape=(classes, components * latent_dim), name="means",
                                     initializer=means_start)
        self.log_vars = self.add_weight(shape=(classes, components * latent_dim),
                                        name="log_vars", initializer="zeros")
        self.weight_logits = (self.add_weight(shape=(classes, components),
                                              name="weight_logits", initializer="zeros")
                              if components > 1 else None)

    def build(self, input_shape):
        for one_hot in (self.one_hot, self.component_one_hot):  # no weights of their own
            one_hot.build(input_shape)

    def call(self, labels):
        one_hot = self.one_hot(labels)
        means, log_vars = ops.matmul(one_hot, self.means), ops.matmul(one_hot, self.log_vars)
        if self.components == 1:
            return means, log_vars
        shape = (-1, self.components, self.latent_dim)
        return ops.reshape(means, shape), ops.reshape(log_vars, shape)

    def mixture_weights(self, labels, log: bool = False):
        """π_y [N, components]: each label's mixture weights (a softmax of its logits), or
        with `log` their logarithms (a log-softmax, finite however small a weight)."""
        logits = ops.matmul(self.one_hot(labels), self.weight_logits)
        return ops.log_softmax(logits, axis=-1) if log else ops.softmax(logits, axis=-1)

    def chosen(self, labels, draw=None):
        """(means, log_vars) [N, latent_dim] of the Gaussian a draw comes from: the
        class's own, or of a mixture the component whose stretch of [0, 1) holds draw
        [N] (uniform; stretches as long as the weights, in order; 1 gives the last),
        which the exported decoder takes as `component_draw`. With equal weights that is
        component ⌊draw·K⌋."""
        means, log_vars = self(labels)
        if self.components == 1:
            return means, log_vars
        ends = ops.cumsum(self.mixture_weights(labels), axis=-1)  # [N, K]
        passed = ops.sum(ops.cast(ops.expand_dims(draw, -1) >= ends, "float32"), axis=-1)
        index = ops.minimum(passed, self.components - 1)
        pick = ops.expand_dims(self.component_one_hot(ops.cast(index, "int64")), -1)
        return ops.sum(pick * means, axis=1), ops.sum(pick * log_vars, axis=1)

    def log_density(self, z, labels):
        """log p(z | y) [..., N] for z [..., N, latent_dim] and labels [N]."""
        means, log_vars = self(labels)
        if self.components == 1:
            return log_normal(z, means, log_vars)
        return log_mixture_per_example(z, means, log_vars,
                                       self.mixture_weights(labels, log=True))

    def compute_output_shape(self, input_shape):
        shape = ((input_shape[0], self.latent_dim) if self.components == 1
                 else (input_shape[0], self.components, self.latent_dim))
        return shape, shape

    def get_config(self):
        return {**super().get_config(), "classes": self.classes,
                "latent_dim": self.latent_dim, "components": self.components,
                "seed": self.seed}


PIXEL_MARGIN = 0.05
"""How near 0 or 1 a pseudo-image's pixel may start: sigmoid's slope there is 0.0475."""


@keras.saving.register_keras_serializable(package="keras_vae")
class PseudoInputs(layers.Layer):
    """The VampPrior's K learned pseudo-images, sigmoid(logits) in [0, 1].

    The prior is the mixture (1/K) Σ_k q(z | u_k) of the encoder's posteriors at these
    images, so it follows the encoder as both train. Built near-black with a little noise
    (pixel values about 0.05 ± 0.01), as in Tomczak & Welling's code; training starts them
    at training images instead (`start_at`).

    Args:
        count: K, the number of pseudo-inputs (mixture components).
    """

    def __init__(self, count: int, image_shape=DEFAULT_IMAGE_SHAPE, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})  # float32 under any policy
        self.count = count
        self.image_shape = tuple(image_shape)
        self.logits = self.add_weight(
            shape=(count, *self.image_shape), name="logits",
            initializer=keras.initializers.RandomNormal(mean=-2.94, stddev=0.2))

    def images(self):
        return ops.sigmoid(self.logits)

    def start_at(self, images: np.ndarray) -> None:
        """Sets the pseudo-images to `images` [K, H, W, C] in [0, 1], kept within
        `PIXEL_MARGIN` of 0 and 1 so that each stays trainable. Why: a component whose
        posterior lies away from every training image's gets no gradient (its
        responsibility for every code is about zero), so near-black starts stay near-black
        and draw dark samples; on 32×32 colour photographs, after 10 epochs of the spatial
        network, most of 50 had hardly moved (docs/spatial.md)."""
        pixels = np.clip(images, PIXEL_MARGIN, 1.0 - PIXEL_MARGIN)
        self.logits.assign(np.log(pixels / (1.0 - pixels)).astype(np.float32))

    def get_config(self):
        return {**super().get_config(), "count": self.count,
                "image_shape": list(self.image_shape)}


@keras.saving.register_keras_serializable(package="keras_vae")
class VampComponents(layers.Layer):
    """A uniform draw u [N] in [0, 1) → (means, log_vars) [N, d] of the VampPrior's
    component ⌊u·K⌋ (u = 1 gives the last): the mixture as constants, so that an exported
    decoder samples it without the pseudo-inputs and the encoder. The choice is a one-hot
    (Equal) times the tables, which every format computes alike."""

    def __init__(self, means, log_vars, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})  # float32 under any policy
        self.means = np.asarray(means, np.float32)
        self.log_vars = np.asarray(log_vars, np.float32)
        self.one_hot = OneHot(len(self.means), name=f"{self.name}_one_hot")

    def call(self, draw):
        count = len(self.means)
        index = ops.minimum(ops.floor(draw * count), count - 1)
        one_hot = self.one_hot(ops.cast(index, "int64"))
        return (ops.matmul(one_hot, ops.convert_to_tensor(self.means)),
                ops.matmul(one_hot, ops.convert_to_tensor(self.log_vars)))

    def compute_output_shape(self, input_shape):
        shape = (input_shape[0], self.means.shape[1])
        return shape, shape

    def get_config(self):
        return {**super().get_config(), "means": self.means.tolist(),
                "log_vars": self.log_vars.tolist()}


def scaled_draw(mean, log_var, noise, temperature):
    """z = μ + t·σ·ε: a draw of N(μ, σ²) at temperature t from the noise ε."""
    return mean + temperature * ops.exp(0.5 * log_var) * noise


class StandardNormal:
    """p(z_L) = N(0, I): the KL in closed form."""

    def __init__(self, model):
        self.model = model

    def components(self, training=False) -> list:
        """What the density needs computed once per batch: nothing."""
        return []

    def log_density(self, z, labels=None, components=(), many_z: bool = False):
        """log p(z_L) [..., N] for z [..., N, d]."""
        return log_prior(z, components, by_matmul=many_z)

    def terms(self, z, mean, log_var, labels=None, components=(), many_z: bool = False):
        """(KL(q ‖ p), log p(z)) per example for z drawn from q = N(mean, exp(log_var))."""
        return gaussian_kl(mean, log_var), self.log_density(z, labels, components, many_z)

    def walk_parameters(self, batch, labels):
        """(mean, log_var) that the top-down walk starts from; `batch` any tensor of the
        batch's size: zero columns, which broadcast."""
        while len(batch.shape) > 2:
            batch = batch[:, 0]
        column = ops.zeros_like(batch[:, :1])
        return column, column

    def draw(self, noise, temperature, label, component_draw):
        """z_L = t·ε for noise ε [N, d_L] and temperatures t [N, 1]."""
        return temperature * noise


class VampPrior(StandardNormal):
    """The VampPrior (1/K) Σ_k q(z_L | u_k): the encoder's top posteriors at the learned
    pseudo-inputs u_k (`PseudoInputs`); its KL the one-sample estimate."""

    def components(self, training=False) -> list:
        """[means, log_vars] [K, d_L]: q(z_L | u_k), computed once per batch; the top
        posterior reads the bottom-up pass alone, so it is a density of z_L for any
        image."""
        model = self.model
        features = model.features(model.pseudo_inputs.images(), None, training)
        return list(model.network.posterior_parameters(features, len(model.config.levels) - 1,
                                                       None))

    def terms(self, z, mean, log_var, labels=None, components=(), many_z: bool = False):
        log_p = self.log_density(z, labels, components, many_z)
        return log_normal(z, mean, log_var) - log_p, log_p

    def draw(self, noise, temperature, label, component_draw):
        """z_L = μ_k + t·σ_k·ε from the component k = ⌊u·K⌋, the mixture held as
        constants (`VampComponents`), so that an export needs neither the pseudo-inputs
        nor the encoder."""
        means, log_vars = (ops.convert_to_numpy(t) for t in self.components())
        mean, log_var = VampComponents(means, log_vars, name="vamp_components")(component_draw)
        return scaled_draw(mean, log_var, noise, temperature)


class ClassGaussian(StandardNormal):
    """A conditional model's p(z_L | y) = N(μ_y, σ_y²) (`ClassPrior`): the KL in closed
    form."""

    def log_density(self, z, labels=None, components=(), many_z: bool = False):
        return self.model.class_prior.log_density(z, labels)

    def terms(self, z, mean, log_var, labels=None, components=(), many_z: bool = False):
        return (gaussian_kl_between(mean, log_var, *self.model.class_prior(labels)),
                self.log_density(z, labels))

    def walk_parameters(self, batch, labels):
        return self.model.class_prior(labels)

    def draw(self, noise, temperature, label, component_draw):
        """z_L = μ + t·σ·ε from the class's Gaussian, or of a mixture the component that
        u picks."""
        mean, log_var = self.model.class_prior.chosen(label, component_draw)
        return scaled_draw(mean, log_var, noise, temperature)


class ClassMixture(ClassGaussian):
    """A conditional model's mixture per class (`ClassPrior` with several components):
    its KL the one-sample estimate."""

    def terms(self, z, mean, log_var, labels=None, components=(), many_z: bool = False):
        log_p = self.log_density(z, labels)
        return log_normal(z, mean, log_var) - log_p, log_p


def prior_for(model) -> StandardNormal:
    """The kind of prior `model.config` asks for."""
    config = model.config
    if config.conditional:
        return ClassMixture(model) if config.class_components > 1 else ClassGaussian(model)
    return VampPrior(model) if config.prior == "vamp" else StandardNormal(model)
