"""A hierarchical (top-down) VAE: L stochastic levels z_1 … z_L, z_1 nearest the image.

    generative, top-down:  p(z_L) = N(0, I) (or a conditional model's class prior),
                           p(z_l | z_>l) = N(μ_l, σ_l²) from the top-down state s_l+1,
                           p(x | z_1…L) from the last state s_1, through the
                           network family's pixel layers alone
    inference:             a bottom-up pass gives features d_1 … d_L of x; then, top-down,
                           q(z_L | x) from d_L and q(z_l | x, z_>l) = N(μ_l + Δμ, σ_l²·Δσ²)
                           from [d_l, s_l+1]: relative to the prior, as NVAE parameterizes
                           it
    −ELBO = −log p(x | z) + Σ_l KL(q(z_l | x, z_>l) ‖ p(z_l | z_>l))

Inference shares the top-down path with generation (Ladder VAE, NVAE, VDVAE): the prior
and state layers that draw a sample are the ones the posterior is measured against. The
prior and residual-posterior heads start at zero, so a fresh model's levels start as
N(0, I) with q = p. The states form a residual stream, s_L = f(z_L) and
s_l = s_l+1 + f([s_l+1, z_l]) (VDVAE's form), so every level is one hidden layer from
the pixels, as a one-level model's z is. Measured after two Fashion-MNIST epochs
(2026-11-30, validation negative ELBO): 2064.3 nats with s_l = f([s_l+1, z_l]) and a
hidden layer before the pixels, 2029.9 with both changes, 2020.6 for the one-level model.

The exported decoder is the top-down path alone (`generator`): per-level noise ε (one
concatenation, level 1 first), a temperature t (scaling every level's σ, as VDVAE and NVAE
sample) and a conditional model's label → z_l = μ_l + t·σ_l·ε_l, top-down → p(x | z). No
random op is inside, so every format gives the same output for the same inputs.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from keras_vae.densities import gaussian_kl_between, log_normal
from keras_vae.model import VAE, KLTerm, Sampling
from keras_vae.networks import network_family
from keras_vae.networks.layers import OneHot, fan_in_uniform
from keras_vae.networks.stack import build_bottom_up, build_pixel_decoder, dropout_layer
from keras_vae.precision import as_float32, loss_scale
from keras_vae.priors import ClassPrior, PseudoInputs

CLIP_NORM_PER_DIMENSION = 200.0
"""Gradients are clipped to this global norm times the number of data dimensions H·W·C.
VDVAE clips at 200 with its loss in nats per dimension; this loss is in nats per image,
whose gradients are H·W·C times larger. (A norm of 200 on the per-image loss clipped
nearly every update of a Fashion-MNIST hierarchy and left it 31 nats behind after two
epochs, 2026-11-29.)"""
SKIP_NORM_PER_DIMENSION = 400.0
"""An update whose gradient norm is not finite or above this times H·W·C is skipped, as
VDVAE skips them; the count goes into the metrics (`skipped_updates`)."""


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


@keras.saving.register_keras_serializable(package="keras_vae")
class HierarchicalVAE(VAE):
    """A VAE with `len(config.levels)` stochastic levels (see the module docstring).

    Everything the one-level `VAE` offers works the same: `fit` reports the negative
    ELBO with its reconstruction and KL (also each level's KL, `kl_level_<l>`), the IWAE
    objective, β and KL warm-up, conditional models, export. `encode` gives each level's
    posterior along the mean path (z_l = μ_l), concatenated level 1 first; `decode` takes
    such a concatenation of z.
    """

    def _build_networks(self) -> None:
        """The layers every hierarchy has, then its network's own (`_build_paths`)."""
        config = self.config
        self._build_paths()
        self.sampling = Sampling(seed=config.seed, name="sampling")
        self.kl_term = KLTerm(beta=config.beta, free_bits=config.free_bits, name="kl_term")
        self.pseudo_inputs = (PseudoInputs(config.pseudo_inputs, config.image_shape,
                                           name="pseudo_inputs")
                              if config.prior == "vamp" else None)
        self.class_prior = (ClassPrior(config.classes, config.levels[-1], config.class_components,
                                       config.seed, name="class_prior")
                            if config.conditional else None)
        self.label_one_hot = OneHot(config.classes, name="top_down_label")
        self._build_heads()
        self.level_kl_trackers = [keras.metrics.Mean(name=f"kl_level_{i + 1}")
                                  for i in range(len(config.levels))]
        self.skipped_tracker = keras.metrics.Sum(name="skipped_updates")

    def _build_paths(self) -> None:
        """The bottom-up pass (built first, as its seeded weights always were)."""
        self.encoder = build_bottom_up(self.config)

    def _build_heads(self) -> None:
        """The dense top-down path: per level a prior and a posterior head and a state
        unit, and the pixel decoder."""
        config = self.config
        levels, width = config.levels, config.hidden_dims[-1]
        gated = network_family(config.arch).gated_hidden_units
        top = len(levels)
        self.posterior_heads = [gaussian_head(levels[i], f"posterior_{i + 1}", i + 1 < top)
                                for i in range(top)]
        self.prior_heads = [gaussian_head(levels[i], f"prior_{i + 1}", True)
                            for i in range(top - 1)]
        self.states = [StateUnit(width, gated, name=f"state_{i + 1}") for i in range(top)]
        self.update_dropout = (dropout_layer(config, "top_down_dropout")
                               if config.dropout else None)
        self.decoder = build_pixel_decoder(config, self.outputs_per_pixel, width)

    def build(self, input_shape):
        """Creates every layer's weights with one pass over a blank image (the top-down
        layers are built when first called), so that a `.keras` file loads into them."""
        self.sampling.build([(None, sum(self.config.levels))] * 2)
        self.built = True
        images = ops.zeros((1, *self.config.image_shape))
        labels = ops.zeros((1,), "int64") if self.config.conditional else None
        self.posterior_pass(images, labels, ops.zeros((1, sum(self.config.levels))))
        self._build_input_free_layers(self.label_one_hot)

    # --- the top-down path ------------------------------------------------------------

    def _split_levels(self, values):
        """[N, Σ d_l] → [values of level 1, …, level L]."""
        edges = np.cumsum((0, *self.config.levels))
        return [values[:, a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def _top_state(self, z_top, labels, training=False):
        """The top-down state that the top level's z (and the label) start."""
        z_top = ops.cast(z_top, self.states[-1].compute_dtype)
        if self.config.conditional:
            z_top = ops.concatenate([z_top, self.label_one_hot(labels)], axis=-1)
        return self.states[-1](z_top)

    def _prior_at(self, level, state):
        """(mean, log_var) of p(z_l | z_>l), flat [N, d_l], from the state above it."""
        return split_gaussian(self.prior_heads[level](state))

    def _merge(self, level, state, z, training=False):
        """The state below level l, once its z is drawn: s_l = s_l+1 + f([s_l+1, z_l])."""
        update = self.states[level](ops.concatenate([state, ops.cast(z, state.dtype)], axis=-1))
        if self.update_dropout is not None:
            update = self.update_dropout(update, training=training)
        return state + update

    def _top_prior(self, batch, labels):
        """(mean, log_var) of p(z_L): N(0, I), or p(z_L | y) for a conditional model;
        `batch` any tensor of the batch's size."""
        if self.class_prior is not None:
            return self.class_prior(labels)
        while len(batch.shape) > 2:
            batch = batch[:, 0]
        column = ops.zeros_like(batch[:, :1])
        return column, column

    def _output(self, state, labels, training=False):
        inputs = [state, labels] if self.config.conditional else state
        return as_float32(self.decoder(inputs, training=training))[0]

    def top_down(self, choose, labels, batch, training=False, top_prior=None):
        """Walks the levels from the top: `choose(level, prior_mean, prior_log_var,
        state_above)` returns a tuple whose first item is that level's z (the rest is
        whatever it measures); returns (the decoder's parameters, [what choose returned,
        level 1 first]). `batch`: a tensor of the batch size, for N(0, I)'s shape;
        `top_prior`: (mean, log_var) of p(z_L) when not `_top_prior`'s (the generator's
        VampPrior component)."""
        top = len(self.config.levels) - 1
        chosen = [None] * (top + 1)
        labels = _as_tensor(labels)
        mean, log_var = top_prior or self._top_prior(batch, labels)
        chosen[top] = choose(top, mean, log_var, None)
        state = self._top_state(chosen[top][0], labels, training)
        for level in range(top - 1, -1, -1):
            mean, log_var = self._prior_at(level, state)
            chosen[level] = choose(level, mean, log_var, state)
            state = self._merge(level, state, chosen[level][0], training)
        return self._output(state, labels, training), chosen

    def _posterior(self, features, level, prior_mean, prior_log_var, state_above):
        """(mean, log_var) of q(z_l | x, z_>l): from d_L at the top; below, the prior's
        plus a residual read from [d_l, s_l+1]."""
        if state_above is None:
            return self._posterior_parameters(features, level, None)
        delta_mean, delta_log_var = self._posterior_parameters(features, level, state_above)
        return prior_mean + delta_mean, prior_log_var + delta_log_var

    def _posterior_parameters(self, features, level, state_above):
        """The posterior head's (mean, log_var), flat [N, d_l]: at the top from d_L
        alone, below the residual from [d_l, s_l+1]."""
        inputs = (features[level] if state_above is None
                  else ops.concatenate([features[level], state_above], axis=-1))
        return split_gaussian(self.posterior_heads[level](inputs))

    def _features(self, images, labels, training=False):
        features = self.encoder([_as_tensor(images), _as_tensor(labels)]
                                if self.config.conditional else images, training=training)
        return features if isinstance(features, (list, tuple)) else [features]

    # --- what the one-level VAE offers -------------------------------------------------

    def posterior_pass(self, images, labels, epsilon, training=False, features=None,
                       components=(), many_z: bool = False):
        """One draw of every level from the posterior, top-down with noise ε [N, Σ d_l]
        → (the decoder's parameters, [per level (z, KL to its prior, log p − log q at
        z)], level 1 first). `features`: the bottom-up pass, if already computed;
        `components`: a VampPrior top level's (`prior_components`); the top level's KL
        and density are the one-level model's (`VAE.prior_terms`); `many_z` for the
        evaluation's large batches (`keras_vae.densities.log_prior`)."""
        features = features or self._features(images, labels, training)
        noise = self._split_levels(epsilon)

        def choose(level, prior_mean, prior_log_var, state_above):
            mean, log_var = self._posterior(features, level, prior_mean, prior_log_var,
                                            state_above)
            z = mean + ops.exp(0.5 * log_var) * noise[level]
            log_q = log_normal(z, mean, log_var)
            if state_above is None:  # the top level: the model's prior (`prior_terms`)
                kl, log_p = self.prior_terms(z, mean, log_var, labels, components, many_z)
                return z, kl, log_p - log_q
            log_ratio = log_normal(z, prior_mean, prior_log_var) - log_q
            return z, gaussian_kl_between(mean, log_var, prior_mean, prior_log_var), log_ratio

        return self.top_down(choose, labels, features[0][:, :1], training)

    def neg_elbo_terms(self, images, labels=None, training=False):
        """The negative ELBO: −log p(x|z_1…L) + Σ_l KL(q(z_l|x, z_>l) ‖ p(z_l|z_>l)), with
        every level drawn once → (objective, reconstruction [N], KL by level [L, N])."""
        epsilon = self._noise(images)
        parameters, levels = self.posterior_pass(images, labels, epsilon, training,
                                                 components=self.prior_components(training))
        reconstruction = self.likelihood.neg_log_prob(images, parameters)  # −log p(x|z)
        kl_by_level = ops.stack([kl for _, kl, _ in levels])
        self.kl_term(kl_by_level)  # add_loss(β·KL), free bits per level
        objective = ops.mean(reconstruction) + ops.sum(ops.stack(self.losses))
        return objective, reconstruction, kl_by_level

    def iwae_terms(self, images, labels=None, training=False):
        """The importance-weighted bound over K = iwae_k posterior draws of every level,
        log w = log p(x|z) + β·Σ_l (log p(z_l|z_>l) − log q(z_l|x, z_>l))."""
        k = self.config.iwae_k
        tiled = ops.tile(images, (k, 1, 1, 1))
        tiled_labels = None if labels is None else ops.tile(labels, (k,))
        parameters, levels = self.posterior_pass(
            tiled, tiled_labels, self._noise(tiled), training,
            components=self.prior_components(training))
        log_px_z = -self.likelihood.neg_log_prob(tiled, parameters)
        log_ratio = ops.sum(ops.stack([ratio for _, _, ratio in levels]), axis=0)
        log_w = ops.reshape(log_px_z + self.kl_term.beta * log_ratio, (k, -1))
        objective = -ops.mean(ops.logsumexp(log_w, axis=0) - math.log(k))
        reconstruction = ops.mean(ops.reshape(-log_px_z, (k, -1)), axis=0)
        kl_by_level = ops.stack([ops.mean(ops.reshape(kl, (k, -1)), axis=0)
                                 for _, kl, _ in levels])
        return objective, reconstruction, kl_by_level

    def _noise(self, images):
        """ε ~ N(0, I) [N, Σ d_l], drawn by the model's seeded `Sampling` layer."""
        zeros = ops.zeros((ops.shape(images)[0], sum(self.config.levels)))
        return self.sampling([zeros, zeros])

    def encode(self, images, labels=None, training=False):
        """Each level's posterior along the mean path (z_l = its posterior mean):
        (means, log_vars), each [N, Σ d_l], level 1 first."""
        features = self._features(images, labels, training)

        def choose(level, prior_mean, prior_log_var, state_above):
            mean, log_var = self._posterior(features, level, prior_mean, prior_log_var,
                                            state_above)
            return mean, log_var

        _, levels = self.top_down(choose, labels, features[0][:, :1], training)
        return (ops.concatenate([m for m, _ in levels], axis=-1),
                ops.concatenate([v for _, v in levels], axis=-1))

    def top_posterior(self, images, labels=None):
        """(mean, log_var) of q(z_L | x): the top level reads the bottom-up pass alone, so
        neither the levels below nor the decoder run."""
        top = len(self.config.levels) - 1
        return self._posterior(self._features(images, labels), top, None, None, None)

    def decode(self, z, labels=None, training=False):
        """The parameters of p(x | z_1…L) for given z [N, Σ d_l], level 1 first."""
        given = self._split_levels(z)
        parameters, _ = self.top_down(lambda level, *prior: (given[level],), labels,
                                      z[:, :1], training)
        return parameters

    def call(self, inputs, training=False):
        images, labels = self.batch_parts(inputs)
        parameters, _ = self.posterior_pass(images, labels, self._noise(images), training)
        return parameters

    def prior_components(self, training=False) -> list:
        """The top level's prior as components: [] for N(0, I) (or a class prior); for
        the VampPrior [means, log_vars] ([K, d_L] each), q(z_L | u_k) at the pseudo-inputs
        u_k — the top posterior reads the bottom-up pass alone, so it is a density of z_L
        for any image."""
        if self.pseudo_inputs is None:
            return []
        features = self._features(self.pseudo_inputs.images(), None, training)
        top = len(self.config.levels) - 1
        return list(self._posterior_parameters(features, top, None))

    def importance_proposal(self, images, labels=None) -> tuple:
        """The bottom-up features, computed once per batch of images."""
        return tuple(self._features(images, labels))

    def importance_log_weights(self, images, proposal, epsilon, labels, components,
                               likelihood):
        """log w = log p(x|z) + Σ_l (log p(z_l|z_>l) − log q(z_l|x, z_>l)) [S, B] for the
        noise ε [S, B, Σ d_l], every level drawn top-down from the posterior."""
        shape = ops.shape(epsilon)
        tiled = [ops.tile(f, (shape[0], *[1] * (len(f.shape) - 1)))  # sample-major
                 for f in proposal]
        tiled_labels = None if labels is None else ops.tile(labels, (shape[0],))
        parameters, levels = self.posterior_pass(
            None, tiled_labels, ops.reshape(epsilon, (-1, shape[-1])), features=tiled,
            components=components, many_z=True)
        parameters = ops.reshape(parameters, (shape[0], shape[1], *parameters.shape[1:]))
        log_ratio = ops.reshape(ops.sum(ops.stack([r for _, _, r in levels]), axis=0),
                                (shape[0], shape[1]))
        return -likelihood.neg_log_prob(images, parameters) + log_ratio

    # --- sampling: what the exported decoder computes -----------------------------------

    def generator(self) -> keras.Model:
        """The sampling contract of `VAE.generator`, drawn top-down: z_l = μ_l + t·σ_l·ε_l
        for every level (level 1 first in `noise`), the top level's (μ, σ) from
        `sampling_prior` (N(0, I), the VampPrior's or the class's component)."""
        noise_input, temperature, label, draw = self.generator_inputs()
        noise, scale = self._split_levels(noise_input), ops.expand_dims(temperature, -1)

        def choose(level, prior_mean, prior_log_var, state_above):
            return (prior_mean + scale * ops.exp(0.5 * prior_log_var) * noise[level],)

        parameters, _ = self.top_down(choose, label, noise_input[:, :1],
                                      top_prior=self.sampling_prior(label, draw))
        inputs = [noise_input, temperature] + [i for i in (label, draw) if i is not None]
        return keras.Model(inputs, parameters, name="generator")

    def latent_decoder(self) -> keras.Model:
        """`VAE.latent_decoder`: given z [N, Σ d_l] (level 1 first) → p(x|z) top-down."""
        z = keras.Input((sum(self.config.levels),), name="z")
        label = (keras.Input((), dtype="int64", name="label") if self.config.conditional
                 else None)
        parameters = self.decode(z, label)
        return keras.Model([z, label] if label is not None else z, parameters,
                           name="latent_decoder")

    def encoder_model(self) -> keras.Model:
        """image (and label) → (z_mean, z_log_var) [N, Σ d_l]: each level's posterior
        along the mean path, level 1 first (`encode`)."""
        image = keras.Input(self.config.image_shape, name="image")
        label = (keras.Input((), dtype="int64", name="label") if self.config.conditional
                 else None)
        z_mean, z_log_var = self.encode(image, label)
        return keras.Model([image, label] if label is not None else image,
                           [z_mean, z_log_var], name="posterior")

    def log_weights_keeping(self, images, epsilon, first_kept: int, likelihood,
                            components=()):
        """log w^{≥k} [N] for noise ε [N, Σ d_l]: the levels from `first_kept` (1-based)
        up drawn from the posterior, those below from their priors p(z_l | z_>l), so
        that log w = log p(x|z) + Σ_{l≥k} (log p(z_l|z_>l) − log q(z_l|x, z_>l)): the
        terms of Havtorn et al.'s bound L^{>k−1} (with `first_kept` 1, the ELBO's). What
        the hierarchical likelihood ratio compares (`keras_vae.scoring`)."""
        features = self._features(images, None)
        noise = self._split_levels(epsilon)

        def choose(level, prior_mean, prior_log_var, state_above):
            if level + 1 < first_kept:
                return (prior_mean + ops.exp(0.5 * prior_log_var) * noise[level], 0.0)
            mean, log_var = self._posterior(features, level, prior_mean, prior_log_var,
                                            state_above)
            z = mean + ops.exp(0.5 * log_var) * noise[level]
            log_p = (self.log_p_z(z, None, components) if state_above is None
                     else log_normal(z, prior_mean, prior_log_var))
            return z, log_p - log_normal(z, mean, log_var)

        parameters, levels = self.top_down(choose, None, features[0][:, :1])
        return -likelihood.neg_log_prob(images, parameters) + sum(r for _, r in levels)

    def keep_levels_and_redraw(self, images, labels, first_kept: int, noise,
                               temperature: float = 1.0):
        """What each level holds: the levels from `first_kept` (1-based) up taken from the
        images' posteriors along the mean path, every level below drawn from its prior
        with `noise` [N, Σ d_l] at `temperature` → mean images [N, H, W, C]."""
        features = self._features(images, labels)
        given = self._split_levels(noise)

        def choose(level, prior_mean, prior_log_var, state_above):
            if level + 1 >= first_kept:
                return self._posterior(features, level, prior_mean, prior_log_var,
                                       state_above)
            return (prior_mean + temperature * ops.exp(0.5 * prior_log_var) * given[level],)

        parameters, _ = self.top_down(choose, labels, features[0][:, :1])
        return self.likelihood.mean(parameters)

    # --- training: metrics per level, and guarded updates -------------------------------

    @property
    def metrics(self):
        return [*super().metrics, *self.level_kl_trackers, self.skipped_tracker]

    def _update_metrics(self, reconstruction, kl_by_level):
        for level, tracker in enumerate(self.level_kl_trackers):
            tracker.update_state(kl_by_level[level])
        return super()._update_metrics(reconstruction, kl_by_level)

    def test_step(self, data):
        results = super().test_step(data)
        results.pop("skipped_updates")  # validation updates nothing
        return results

    def train_step(self, data):
        """`VAE.train_step` with two guards that deep hierarchies need (VDVAE uses both):
        gradients clipped to a global norm of `CLIP_NORM_PER_DIMENSION`·H·W·C, and an
        update whose norm is not finite or above `SKIP_NORM_PER_DIMENSION`·H·W·C skipped
        and counted."""
        images, labels = self.batch_parts(data)
        gradients, reconstruction, kl_by_level = self.gradients(images, labels)
        dimensions = float(np.prod(self.config.image_shape))
        scale = loss_scale(self.optimizer)  # float16's gradients come scaled
        norm = tf.linalg.global_norm(gradients)
        finite = tf.math.is_finite(norm)
        too_large = tf.logical_and(finite, norm >= SKIP_NORM_PER_DIMENSION * dimensions * scale)
        clipped, _ = tf.clip_by_global_norm(
            gradients, CLIP_NORM_PER_DIMENSION * dimensions * scale, use_norm=norm)
        if isinstance(scale, float):
            skipped = self._apply_if(tf.logical_and(finite, tf.logical_not(too_large)), clipped)
        else:  # float16's loss scaling skips a non-finite step itself, and lowers its scale
            skipped = tf.maximum(self._apply_if(tf.logical_not(too_large), clipped),
                                 1.0 - tf.cast(finite, tf.float32))
        self.skipped_tracker.update_state(skipped)
        return self._update_metrics(reconstruction, kl_by_level)

    def _apply_if(self, healthy, gradients):
        """Applies the update if `healthy` on every replica; → 1.0 if skipped, else 0.0.

        `apply_gradients` synchronizes replicas (a merge_call), which a tf.distribute
        strategy does not allow inside a cond in a replica's context: the choice is made
        once, in the cross-replica context, and the update then runs on every replica,
        as Keras's LossScaleOptimizer skips non-finite steps."""

        def apply(replica_gradients):
            self.optimizer.apply_gradients(zip(replica_gradients, self.trainable_variables,
                                               strict=True))
            return tf.constant(0.0)

        context = tf.distribute.get_replica_context()  # without a strategy, the default
        unhealthy = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                       1.0 - tf.cast(healthy, tf.float32))

        def choose(strategy, unhealthy, gradients):
            def apply_on_every_replica():
                strategy.extended.call_for_each_replica(apply, args=(gradients,))
                return tf.constant(0.0)

            healthy_everywhere = strategy.experimental_local_results(unhealthy)[0] < 0.5
            return tf.cond(healthy_everywhere, apply_on_every_replica,
                           lambda: tf.constant(1.0))

        return context.merge_call(choose, args=(unhealthy, gradients))


def _as_tensor(values):
    """Images or labels given as numpy arrays (pictures, evaluation) as tensors: a Keras
    network called on a list refuses a mix of tensors (the top-down state) and arrays."""
    return ops.convert_to_tensor(values) if isinstance(values, np.ndarray) else values

