"""The variational autoencoder of Kingma & Welling (2013), as a subclassed Keras model.

The code follows the math, in `VAE.neg_elbo_terms`:

    q(z|x) = N(z_mean, exp(z_log_var))                   the encoder
    z = z_mean + exp(½·z_log_var)·ε,  ε ~ N(0, I)        `Sampling`, the reparameterization
    p(x|z)                                               the decoder and a pixel likelihood
    −ELBO = −log p(x|z) + KL(q(z|x) ‖ p(z))              reconstruction + KL, nats per example

The KL term reaches the objective through `add_loss` (`KLTerm`, weighted by β); the
importance-weighted bound of Burda et al. is `VAE.iwae_terms`. The prior p(z) is N(0, I),
or the VampPrior of Tomczak & Welling (a mixture of the encoder's posteriors at learned
pseudo-inputs). Images are [N, H, W, C] with pixels in [0, 1].

A conditional model (`ModelConfig.conditional`, Sohn et al. 2015) gives the encoder and the
decoder the label y as a second input, so they become q(z|x, y) and p(x|z, y), and its
batches are (images, labels).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from keras_vae.config import ModelConfig
from keras_vae.densities import gaussian_kl, gaussian_kl_between, log_normal, log_prior
from keras_vae.latents import component_draws, prior_draws
from keras_vae.likelihoods import make_likelihood
from keras_vae.likelihoods.bernoulli import Bernoulli
from keras_vae.networks.stack import build_decoder, build_encoder
from keras_vae.noise import counter_normal
from keras_vae.precision import as_float32
from keras_vae.priors import ClassPrior, PseudoInputs, VampComponents


@keras.saving.register_keras_serializable(package="keras_vae")
class Sampling(layers.Layer):
    """z = z_mean + exp(½·z_log_var)·ε, ε ~ N(0, I): the reparameterization trick.

    ε is seeded by a `keras.random.SeedGenerator`, whose state is saved with the model, so
    a reloaded model draws the same ε as the original; the draws come from
    `counter_normal`, which gives the same numbers with and without XLA.

    Args:
        seed: seed of the ε stream.

    Example:
        >>> z = Sampling(seed=1)([z_mean, z_log_var])
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})  # float32 under any policy
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        # Under a tf.distribute strategy each replica holds one slice of the global batch;
        # offsetting by the replica index gives every example the ε it gets on one device.
        replica = tf.distribute.get_replica_context()
        index = 0 if replica is None else replica.replica_id_in_sync_group
        shape = ops.shape(z_mean)
        epsilon = counter_normal(shape, self.seed_generator.next(),
                                 offset=tf.cast(index, tf.int64) * tf.cast(
                                     tf.reduce_prod(shape), tf.int64))
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    # Keras saves a layer's variables but not its SeedGenerator state; without it a
    # reloaded model would restart the ε stream and give different outputs.
    def save_own_variables(self, store):
        store["seed_generator_state"] = self.seed_generator.state

    def load_own_variables(self, store):
        self.seed_generator.state.assign(store["seed_generator_state"])

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_vae")
class KLTerm(layers.Layer):
    """Adds β·KL to the model's losses with `add_loss`; takes the KL per example, [N]
    nats, or per level and example, [L, N] (a hierarchy), and returns it per example
    summed over levels, [N].

    β lives in a non-trainable variable, so that KL warm-up
    (`keras_vae.callbacks.KLWarmup`) changes it without rebuilding the compiled step. The
    layer clears its loss at each call, so one step adds it once. With free bits λ > 0
    each level is charged β·max(λ, its batch-mean KL) instead of β·its batch-mean KL
    (Kingma et al. 2016): below λ nats a level's KL costs nothing, so the optimizer has
    no reason to empty it.

    Args:
        beta: the initial KL weight (1 for the true ELBO).
        free_bits: λ, nats per level (0: none).
    """

    def __init__(self, beta: float = 1.0, free_bits: float = 0.0, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})  # float32 under any policy
        self.initial_beta = float(beta)
        self.free_bits = float(free_bits)
        self.beta = self.add_weight(shape=(), name="beta", trainable=False,
                                    initializer=keras.initializers.Constant(self.initial_beta))

    def call(self, kl):
        by_level = kl if len(kl.shape) == 2 else kl[None]
        charged = ops.mean(by_level, axis=-1)  # [L]
        if self.free_bits > 0:  # never at 0: a VampPrior's estimate may average below 0
            charged = ops.maximum(charged, self.free_bits)
        self.add_loss(self.beta * ops.sum(charged))
        return ops.sum(by_level, axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape[-1:]

    def load_own_variables(self, store):
        # Checkpoints of keras-vae 0.1.0 kept β in the Sampling layer; their KL weight at
        # the end of training is the configured β, which this layer starts with.
        if "beta" in store:
            self.beta.assign(store["beta"])

    def get_config(self):
        return {**super().get_config(), "beta": self.initial_beta,
                "free_bits": self.free_bits}


def log_importance_weights(images, z, z_mean, z_log_var, parameters, log_p_z,
                           prior_weight=1.0, likelihood=None):
    """log w = log p(x|z) + w_p·(log p(z) − log q(z|x)) for K samples of z per image.

    Shapes: images [N, H, W, C]; z [K, N, d]; z_mean, z_log_var [N, d]; the decoder's
    parameters [K, N, H, W, C·P] and log p(z) [K, N] → [K, N]. `likelihood`: a
    `keras_vae.likelihoods` likelihood (None: Bernoulli). With `prior_weight` 1 (the
    default) these are the importance weights of p(x) = E_q[p(x, z) / q(z|x)]: the IWAE
    bound and the importance-sampled likelihood are log-mean-exps of them. A
    `prior_weight` below 1 tempers the latent term the way β tempers the ELBO's KL (KL
    warm-up of the IWAE).
    """
    likelihood = likelihood or Bernoulli(images.shape[1:])
    log_px_z = -likelihood.neg_log_prob(images, parameters)
    return log_px_z + prior_weight * (log_p_z - log_normal(z, z_mean, z_log_var))


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(keras.Model):
    """A VAE whose `fit` / `evaluate` report `loss` (negative ELBO), `reconstruction`, `kl`.

    Calling the model returns the parameters of p(x|z) for a batch of images, through one
    sampled z per image. The training objective is reconstruction + β·KL, or with
    `objective="iwae"` the negative importance-weighted bound over `iwae_k` samples. The
    reported metrics are always the negative ELBO and its two terms, reconstruction + KL,
    means over examples in nats, so runs with different β or objectives stay comparable.

    Args:
        config: a `ModelConfig`, or its dict form (as stored in a `.keras` file).

    A conditional model trains on (images, labels) pairs, as Keras passes x and y:
    `vae.fit(images, labels)`, or a dataset of such pairs.

    Example:
        >>> vae = VAE(ModelConfig(latent_dim=2, likelihood="bernoulli"))
        >>> vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> vae.fit(train_images, validation_data=val_images, epochs=10)
    """

    def __init__(self, config: ModelConfig | dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ModelConfig.from_dict(config)
        self.config = config or ModelConfig(likelihood="bernoulli")
        if not self.config.settled:
            raise ValueError("ModelConfig(likelihood='auto') is settled by the data "
                             "(TrainConfig.for_data); name the likelihood to build a model")
        self.likelihood = make_likelihood(self.config.likelihood, self.config.image_shape,
                                          self.config.mixture_components)
        self._build_networks()
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.build((None, *self.config.image_shape))

    def _build_networks(self) -> None:
        """The encoder, the sampling and KL layers, the prior's layers and the decoder,
        built in this order, which fixes which seeded initial weights each layer gets."""
        self.encoder = build_encoder(self.config)
        self.sampling = Sampling(seed=self.config.seed, name="sampling")
        self.kl_term = KLTerm(beta=self.config.beta, free_bits=self.config.free_bits,
                              name="kl_term")
        self.pseudo_inputs = (PseudoInputs(self.config.pseudo_inputs, self.config.image_shape,
                                           name="pseudo_inputs")
                              if self.config.prior == "vamp" else None)
        self.class_prior = (ClassPrior(self.config.classes, self.config.levels[-1],
                                       self.config.class_components, self.config.seed,
                                       name="class_prior")
                            if self.config.conditional else None)
        self.decoder = build_decoder(self.config, self.outputs_per_pixel)

    @property
    def outputs_per_pixel(self) -> int:
        """C·P: the decoder's outputs per pixel (P per channel, from the likelihood)."""
        return self.config.image_shape[-1] * self.likelihood.parameters_per_channel

    def build(self, input_shape):
        self.sampling.build([(None, self.config.latent_dim)] * 2)
        self.built = True
        self._build_input_free_layers()

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras's hook that builds a model under a tf.distribute strategy from its first
        batch; here only the optimizer is left to build. Keras 3.15 reduces that batch as
        one value, which fails for the (images, labels) of a conditional model under
        MultiWorkerMirroredStrategy; a model that `build` made whole skips it."""
        if (self._distribute_strategy is None
                or not all(layer.built for layer in self._flatten_layers())):
            return super()._maybe_symbolic_build(iterator, data_batch)
        with self.distribute_strategy.scope():
            if self.optimizer is not None and not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)

    def _build_input_free_layers(self, *more) -> None:
        """Builds the layers whose weights do not depend on an input (made when they are
        constructed), so that the whole model is built by `build`. Otherwise Keras builds
        it again under a tf.distribute strategy by calling it on the data's x alone,
        which for a conditional model is its images without their labels, and fails."""
        for layer in (self.kl_term, self.pseudo_inputs, self.class_prior, *more):
            if layer is not None and not layer.built:
                layer.build(None)

    def call(self, inputs, training=False):
        """images → parameters of p(x|z); a conditional model takes (images, labels)."""
        images, labels = self.batch_parts(inputs)
        z_mean, z_log_var = self.encode(images, labels, training=training)
        z = self.sampling([z_mean, z_log_var], training=training)
        return self.decode(z, labels, training=training)

    # --- the loss -----------------------------------------------------------------------

    def neg_elbo_terms(self, images, labels=None, training=False):
        """The negative ELBO of Kingma & Welling on a batch → (objective, reconstruction,
        KL by level): the objective is the batch mean that training minimizes;
        reconstruction [N] and the KL of each level [L, N] (here one) are nats per
        example, for the metrics."""
        z_mean, z_log_var = self.encode(images, labels, training=training)  # q(z|x)
        z = self.sampling([z_mean, z_log_var], training=training)  # z = μ + σ·ε
        parameters = self.decode(z, labels, training=training)  # p(x|z)
        reconstruction = self.likelihood.neg_log_prob(images, parameters)  # −log p(x|z)
        kl = ops.expand_dims(self.kl(z, z_mean, z_log_var, labels,
                                     self.prior_components(training)), 0)
        self.kl_term(kl)  # add_loss(β·mean KL)
        objective = ops.mean(reconstruction) + ops.sum(ops.stack(self.losses))  # + β·mean(KL)
        return objective, reconstruction, kl

    def kl(self, z, z_mean, z_log_var, labels=None, components=()):
        """KL(q(z|x) ‖ p(z)) per example, [N] nats (`prior_terms`)."""
        return self.prior_terms(z, z_mean, z_log_var, labels, components)[0]

    def prior_terms(self, z, z_mean, z_log_var, labels=None, components=(),
                    many_z: bool = False):
        """(KL(q(z|x) ‖ p(z)), log p(z)) per example for the top level's z drawn from
        q = N(z_mean, exp(z_log_var)), each computed once: the KL in closed form for N(0, I)
        and a conditional model's class Gaussian N(μ_y, σ_y²); for the VampPrior (its
        `components`) and a mixture per class the one-sample estimate log q(z|x) −
        log p(z) at the drawn z (unbiased, as Tomczak & Welling train it). The one place
        that tells the priors' KLs apart; `log_p_z` their densities."""
        log_p = self.log_p_z(z, labels, components, many_z)
        if len(components) or (self.class_prior is not None
                               and self.class_prior.components > 1):
            return log_normal(z, z_mean, z_log_var) - log_p, log_p
        if self.class_prior is None:
            return gaussian_kl(z_mean, z_log_var), log_p
        return gaussian_kl_between(z_mean, z_log_var, *self.class_prior(labels)), log_p

    def iwae_terms(self, images, labels=None, training=False):
        """The importance-weighted bound of Burda et al. with K = iwae_k samples per image
        → (objective = −mean log (1/K) Σ_k w_k, reconstruction [N] and KL by level [L, N]
        averaged over the K samples). β tempers log p(z) − log q(z|x) in the weights, as
        it weights the ELBO's KL."""
        z_mean, z_log_var = self.encode(images, labels, training=training)
        components = self.prior_components(training)
        k = self.config.iwae_k
        tiled = [ops.tile(t, (k, 1)) for t in (z_mean, z_log_var)]  # sample-major [K·N, d]
        z = self.sampling(tiled, training=training)
        tiled_labels = None if labels is None else ops.tile(labels, (k,))
        parameters = self.decode(z, tiled_labels, training=training)
        parameters = ops.reshape(parameters, (k, -1, *parameters.shape[1:]))
        z = ops.reshape(z, (k, -1, self.config.latent_dim))
        kl, log_p_z = self.prior_terms(z, z_mean, z_log_var, labels, components)
        log_w = log_importance_weights(images, z, z_mean, z_log_var, parameters, log_p_z,
                                       prior_weight=self.kl_term.beta,
                                       likelihood=self.likelihood)
        objective = -ops.mean(ops.logsumexp(log_w, axis=0) - math.log(k))
        reconstruction = ops.mean(self.likelihood.neg_log_prob(images, parameters), axis=0)
        kl = ops.mean(kl, axis=0) if len(kl.shape) == 2 else kl
        return objective, reconstruction, ops.expand_dims(kl, 0)

    def importance_proposal(self, images, labels=None) -> tuple:
        """What the importance-sampled NLL computes once per batch of images: q(z|x)'s
        (z_mean, z_log_var)."""
        return tuple(self.encode(images, labels))

    def importance_log_weights(self, images, proposal, epsilon, labels, components,
                               likelihood):
        """log w [S, B] for the noise ε [S, B, d] (`keras_vae.nll`): z = μ + σ·ε [S, B, d],
        decoded as S·B images (sample-major), scored by `likelihood`, with the prior's
        density computed for many z (`log_p_z`)."""
        z_mean, z_log_var = proposal
        z = z_mean + ops.exp(0.5 * z_log_var) * epsilon
        shape = ops.shape(epsilon)
        tiled_labels = None if labels is None else ops.tile(labels, (shape[0],))
        parameters = self.decode(ops.reshape(z, (-1, shape[-1])), tiled_labels)
        parameters = ops.reshape(parameters, (shape[0], shape[1], *parameters.shape[1:]))
        return log_importance_weights(images, z, z_mean, z_log_var, parameters,
                                      self.log_p_z(z, labels, components, many_z=True),
                                      likelihood=likelihood)

    def log_p_z(self, z, labels=None, components=(), many_z: bool = False):
        """log p(z) (or log p(z|y)) summed over the latent dims, for z [..., N, d]:
        `components` are the VampPrior's (`prior_components`, computed once by the
        caller); `many_z` for the evaluation's chunks of z (float64 matmuls for a
        VampPrior, `keras_vae.densities.log_mixture_normal_by_matmul`)."""
        if self.class_prior is not None:
            return self.class_prior.log_density(z, labels)
        return log_prior(z, components, by_matmul=many_z)

    def loss_terms(self, images, labels=None, training=False):
        """(objective, reconstruction [N], KL by level [L, N]) of the configured
        objective."""
        if self.config.objective == "iwae":
            return self.iwae_terms(images, labels, training)
        return self.neg_elbo_terms(images, labels, training)

    def train_step(self, data):
        images, labels = self.batch_parts(data)
        gradients, reconstruction, kl_by_level = self.gradients(images, labels)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        return self._update_metrics(reconstruction, kl_by_level)

    def gradients(self, images, labels):
        """(the objective's gradients, reconstruction, KL by level) on one batch."""
        with tf.GradientTape() as tape:
            objective, reconstruction, kl_by_level = self.loss_terms(images, labels,
                                                                     training=True)
            # Under a tf.distribute strategy gradients are summed over replicas; dividing
            # by the replica count makes the update that of the global-batch mean.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            # float16's loss scaling (the optimizer's apply_gradients unscales)
            scaled_objective = self.optimizer.scale_loss(objective / replicas)
        return (tape.gradient(scaled_objective, self.trainable_variables), reconstruction,
                kl_by_level)

    def test_step(self, data):
        images, labels = self.batch_parts(data)
        _, reconstruction, kl_by_level = self.loss_terms(images, labels, training=False)
        return self._update_metrics(reconstruction, kl_by_level)

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def _update_metrics(self, reconstruction, kl_by_level):
        """Adds a batch's per-example terms (reconstruction [N], KL by level [L, N]): each
        metric is the mean over every example seen, whatever the batch sizes (a short
        last batch weighs as its examples) and however many replicas share a batch."""
        kl = ops.sum(kl_by_level, axis=0)
        self.loss_tracker.update_state(reconstruction + kl)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        results = {m.name: m.result() for m in self.metrics}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3.15 reduces multi-worker step outputs with reduce(MEAN, v, axis=0),
            # which fails on scalars; a leading axis of 1 makes it return the scalar.
            results = {name: ops.reshape(value, (1,)) for name, value in results.items()}
        return results

    # --- the parts ----------------------------------------------------------------------

    def encode(self, images, labels=None, training=False):
        """q(z|x) (or q(z|x, y)): (z_mean, z_log_var), each [N, latent_dim], float32."""
        return as_float32(*self.encoder(self._with_labels(images, labels), training=training))

    def top_posterior(self, images, labels=None):
        """(mean, log_var) of the top level's posterior, the level a prior is on: for one
        level, `encode`."""
        return self.encode(images, labels)

    def decode(self, z, labels=None, training=False):
        """The parameters of p(x|z) (or p(x|z, y)), [N, H, W, C·P], float32."""
        return as_float32(self.decoder(self._with_labels(z, labels), training=training))[0]

    def mean_image(self, z, labels=None, training=False):
        """E[x|z] (or E[x|z, y]): the decoded images [N, H, W, C] in [0, 1] that pictures
        show."""
        return self.likelihood.mean(self.decode(z, labels, training=training))

    # --- sampling: what the exported decoder computes -------------------------------------

    def generator(self) -> keras.Model:
        """The model that draws images: the exported decoder (`export.endpoints`), the one
        sampling contract of every model. `noise` ε [N, Σ d_l], `temperature` t [N], a
        conditional model's `label` [N] and, for a prior mixture, `component_draw` u [N]
        in [0, 1) → z = μ + t·σ·ε, with (μ, σ) the prior's (`sampling_prior`) →
        parameters of p(x|z). The prior is inside the graph, so every format and a device
        need nothing but seeded noise. Built on the model's own layers (and, for the
        VampPrior, its mixture as constants)."""
        noise, temperature, label, draw = self.generator_inputs()
        prior = self.sampling_prior(label, draw)
        scale = ops.expand_dims(temperature, -1)
        z = (scale * noise if prior is None
             else prior[0] + scale * ops.exp(0.5 * prior[1]) * noise)
        inputs = [noise, temperature] + [i for i in (label, draw) if i is not None]
        return keras.Model(inputs, self.decoder(self._with_labels(z, label)),
                           name="generator")

    def generator_inputs(self) -> tuple:
        """(noise, temperature, label or None, component_draw or None): the Keras inputs
        of the sampling contract (`generator`)."""
        noise = keras.Input((sum(self.config.levels),), name="noise")
        temperature = keras.Input((), name="temperature")
        label = (keras.Input((), dtype="int64", name="label") if self.config.conditional
                 else None)
        draw = (keras.Input((), name="component_draw") if self.config.takes_component_draw
                else None)
        return noise, temperature, label, draw

    def sampling_prior(self, label, draw):
        """(mean, log_var) [N, d_top] of the top level's prior that a draw comes from: the
        VampPrior's component ⌊u·K⌋ (its mixture held as constants, `vamp_components`),
        the class's Gaussian or the mixture component that u picks (`ClassPrior.chosen`),
        or None for N(0, I)."""
        if self.pseudo_inputs is not None:
            return self.vamp_components()(draw)
        if self.class_prior is not None:
            return self.class_prior.chosen(label, draw)
        return None

    def vamp_components(self) -> VampComponents:
        """The VampPrior's mixture as it stands (`prior_components`), a layer that picks
        a component by a uniform draw."""
        means, log_vars = (ops.convert_to_numpy(t) for t in self.prior_components())
        return VampComponents(means, log_vars, name="vamp_components")

    def latent_decoder(self) -> keras.Model:
        """Decoding a given z, for encoded images and interpolation between them:
        `z` [N, Σ d_l] (level 1 first; a conditional model's `label` [N]) → parameters of
        p(x|z). The second exported signature (`decode_latent`) and file
        (latent_decoder.onnx)."""
        return self.decoder

    def encoder_model(self) -> keras.Model:
        """The model the export ships as the encoder: x (and y) → (z_mean, z_log_var)."""
        return self.encoder

    def sample_inputs(self, n: int, seed: int, labels=None, temperature: float = 1.0
                      ) -> dict:
        """The generator's inputs for n seeded draws (`keras_vae.latents`): "noise"
        [n, Σ d_l], "temperature", a conditional model's "label" (`labels`: one class
        per draw) and, for a prior mixture, n seeded uniform "component_draw"s."""
        inputs = {"noise": prior_draws(n, sum(self.config.levels), seed),
                  "temperature": np.full(n, temperature, np.float32)}
        if self.config.conditional:
            inputs["label"] = np.asarray(labels, np.int64)
        if self.config.takes_component_draw:
            inputs["component_draw"] = component_draws(n, seed)
        return inputs

    def sample_images(self, inputs: dict, batch_size: int = 1000) -> np.ndarray:
        """The mean images E[x|z] [N, H, W, C] that the generator draws from `inputs`
        (`sample_inputs`), in batches."""
        generator = self.generator()
        n = len(inputs["noise"])
        return np.concatenate([
            ops.convert_to_numpy(self.likelihood.mean(generator(
                [inputs[i.name][start:start + batch_size] for i in generator.inputs])))
            for start in range(0, n, batch_size)])

    def reconstructions(self, images: np.ndarray, labels: np.ndarray | None = None,
                        batch_size: int = 1000) -> np.ndarray:
        """E[x|z] [N, H, W, C] at each image's posterior mean (a hierarchy's mean path),
        given its label for a conditional model: what `reconstructions.png` shows, in
        batches."""
        def one_batch(start):
            batch = slice(start, start + batch_size)
            given = None if labels is None else labels[batch]
            z = ops.convert_to_numpy(self.encode(images[batch], given)[0])
            return ops.convert_to_numpy(self.mean_image(z, given))

        return np.concatenate([one_batch(start) for start in range(0, len(images), batch_size)])

    def prior_components(self, training=False) -> list:
        """The prior p(z) as components: [] for N(0, I); for the VampPrior [means,
        log_vars] ([K, d] each), the encoder's posteriors at the pseudo-inputs."""
        if self.pseudo_inputs is None:
            return []
        return list(self.encoder(self.pseudo_inputs.images(), training=training))

    def batch_parts(self, data):
        """(images, labels) of a batch: images alone, or an (images, labels) tuple as the
        pipeline gives a conditional model (labels None for an unconditional one)."""
        if not isinstance(data, (tuple, list)):
            return data, None
        return data[0], (data[1] if self.config.conditional and len(data) > 1 else None)

    def _with_labels(self, x, labels):
        if not self.config.conditional:
            return x
        if labels is None:
            raise ValueError("this model is conditional: pass the labels [N] as well")
        return [x, labels]

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}

    def get_compile_config(self):
        """None while the optimizer is detached, as `save_checkpoint` saves best.keras:
        that file holds no optimizer state, so it loads uncompiled (compile it to train
        on) instead of compiled with a fresh optimizer whose 36-odd variables Keras then
        warns it cannot find in the file."""
        return None if self.optimizer is None else super().get_compile_config()

    @classmethod
    def from_config(cls, config):
        return cls(**config)
