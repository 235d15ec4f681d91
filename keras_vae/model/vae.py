"""The variational autoencoder: one Keras model, a top-down stack of L ≥ 1 latent levels.

    generative, top-down:  p(z_L) the prior (`keras_vae.model.priors`: N(0, I), the VampPrior,
                           or a conditional model's class prior);
                           p(z_l | z_>l) = N(μ_l, σ_l²) from the top-down state s_l+1;
                           p(x | z_1…L) from the last state s_1
    inference:             a bottom-up pass gives features d_1 … d_L of x; then, top-down,
                           q(z_L | x) from d_L and q(z_l | x, z_>l) = N(μ_l + Δμ, σ_l²·Δσ²)
                           from [d_l, s_l+1]: relative to the prior, as NVAE
                           parameterizes it
    z_l = μ + exp(½·log σ²)·ε                       the reparameterization (`Sampling`)
    −ELBO = −log p(x | z) + Σ_l KL(q(z_l | x, z_>l) ‖ p(z_l | z_>l))   nats per example

With one level this is the VAE of Kingma & Welling (2013): the encoder's heads give
q(z|x), the decoder reads z. What a level is — a vector on dense layers, or a feature map
(`--arch spatial`) — is its network's business (`keras_vae.model.networks.levels`); this class
walks the levels and owns the objective, the guarded update, the metrics and what a
trained model computes. The KL reaches the objective through `add_loss` (`KLTerm`,
weighted by β); the importance-weighted bound of Burda et al. is `iwae_terms`. Images are
[N, H, W, C] with pixels in [0, 1].

Inference shares the top-down path with generation (Ladder VAE, NVAE, VDVAE): the prior
and state layers that draw a sample are the ones the posterior is measured against. The
prior and residual-posterior heads start at zero, so a fresh model's levels below the top
start as N(0, I) with q = p.

A conditional model (`ModelConfig.conditional`, Sohn et al. 2015) gives the encoder and the
decoder the label y as a second input, so they become q(z|x, y) and p(x|z, y), and its
batches are (images, labels).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from keras_vae.config import ModelConfig
from keras_vae.model.graphs import ModelGraphs
from keras_vae.model.guarded_update import update
from keras_vae.model.likelihoods import make_likelihood
from keras_vae.model.networks.layers import OneHot
from keras_vae.model.networks.levels import DenseLevels, OneLevel
from keras_vae.model.networks.spatial import SpatialLevels
from keras_vae.model.priors import ClassPrior, PseudoInputs, prior_for
from keras_vae.model.stochastic import KLTerm, Sampling
from keras_vae.model.top_down import tiled_labels


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(ModelGraphs, keras.Model):
    """A VAE whose `fit` / `evaluate` report `loss` (negative ELBO), `reconstruction`,
    `kl` and, with several levels, each level's KL (`kl_level_<l>`) and the updates the
    guard skipped.

    Calling the model returns the parameters of p(x|z) for a batch of images, through one
    posterior draw of every level. The training objective is reconstruction + β·KL, or
    with `objective="iwae"` the negative importance-weighted bound over `iwae_k` samples.
    The reported metrics are always the negative ELBO and its terms, means over examples
    in nats, so runs with different β or objectives stay comparable. `encode` gives each
    level's posterior along the mean path (z_l = μ_l), concatenated level 1 first;
    `decode` takes such a concatenation of z.

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
        self.network = levels_network(self)
        self.prior = prior_for(self)
        self._build_layers()
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        # Several levels report each level's KL; a guarded update, the updates it skipped.
        self.level_kl_trackers = [keras.metrics.Mean(name=f"kl_level_{i + 1}")
                                  for i in range(len(self.config.levels))
                                  if self.config.hierarchical]
        self.skipped_trackers = ([keras.metrics.Sum(name="skipped_updates")]
                                 if self.network.guarded else [])
        self.build((None, *self.config.image_shape))

    def _build_layers(self) -> None:
        """The network's bottom-up path, the layers every model has, then the network's
        top-down layers, in this order, which fixes which seeded initial weights each
        layer gets."""
        config = self.config
        self.network.build_paths()
        self.sampling = Sampling(seed=config.seed, name="sampling")
        self.kl_term = KLTerm(beta=config.beta, free_bits=config.free_bits, name="kl_term")
        self.pseudo_inputs = (PseudoInputs(config.pseudo_inputs, config.image_shape,
                                           name="pseudo_inputs")
                              if config.prior == "vamp" else None)
        self.class_prior = (ClassPrior(config.classes, config.levels[-1],
                                       config.class_components, config.seed,
                                       name="class_prior")
                            if config.conditional else None)
        self.label_one_hot = OneHot(config.classes, name="top_down_label")
        self.network.build_heads()

    def build(self, input_shape):
        """Creates every layer's weights with one pass over a blank image, so that a
        `.keras` file loads into them; then the layers whose weights depend on no input.
        Otherwise Keras builds the model again under a tf.distribute strategy by calling
        it on the data's x alone, which for a conditional model is its images without
        their labels, and fails."""
        self.sampling.build([(None, sum(self.config.levels))] * 2)
        self.built = True
        images = ops.zeros((1, *self.config.image_shape))
        labels = ops.zeros((1,), "int64") if self.config.conditional else None
        self.posterior_pass(images, labels, ops.zeros((1, sum(self.config.levels))))
        for layer in (self.kl_term, self.pseudo_inputs, self.class_prior, self.label_one_hot):
            if layer is not None and not layer.built:
                layer.build(None)

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

    def make_train_function(self, force=False):
        """Keras's training function, the optimizer built first, outside its trace.
        Without a tf.distribute strategy Keras 3.15 leaves the optimizer to be built while
        the first step is traced; a traced function that creates variables is traced
        twice by TensorFlow, so every first `fit` paid its tracing twice (a small spatial
        model: 19 s instead of 8, 2026-12-06). Under a strategy,
        `_maybe_symbolic_build` has built it."""
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)
        return super().make_train_function(force)

    def call(self, inputs, training=False):
        """images → parameters of p(x|z); a conditional model takes (images, labels)."""
        images, labels = self.batch_parts(inputs)
        parameters, _ = self.posterior_pass(images, labels,
                                            self.noise(ops.shape(images)[0]), training)
        return parameters

    # --- the loss -----------------------------------------------------------------------

    def neg_elbo_terms(self, images, labels=None, training=False):
        """The negative ELBO, −log p(x|z_1…L) + Σ_l KL(q(z_l|x, z_>l) ‖ p(z_l|z_>l)), with
        every level drawn once → (objective, reconstruction [N], KL by level [L, N]): the
        objective is the batch mean that training minimizes (+ β·KL through
        `add_loss`), the terms nats per example, for the metrics."""
        parameters, levels = self.posterior_pass(
            images, labels, self.noise(ops.shape(images)[0]), training,
            components=self.prior.components(training))
        reconstruction = self.likelihood.neg_log_prob(  # −log p(x|z)
            images, parameters, exportable=self._exportable_likelihood(training))
        kl_by_level = ops.stack([kl for _, kl, _ in levels])
        self.kl_term(kl_by_level)  # add_loss(β·KL), free bits per level
        objective = ops.mean(reconstruction) + ops.sum(ops.stack(self.losses))
        return objective, reconstruction, kl_by_level

    def iwae_terms(self, images, labels=None, training=False):
        """The importance-weighted bound of Burda et al. over K = iwae_k posterior draws
        of every level, log w = log p(x|z) + β·Σ_l (log p(z_l|z_>l) − log q(z_l|x, z_>l))
        → (objective = −mean log (1/K) Σ_k w_k, reconstruction [N] and KL by level
        [L, N] averaged over the K draws). The bottom-up pass runs once per image."""
        k = self.config.iwae_k
        features = [ops.tile(f, (k, *[1] * (len(f.shape) - 1)))  # sample-major [K·N, …]
                    for f in self.features(images, labels, training)]
        parameters, levels = self.posterior_pass(
            None, tiled_labels(labels, k), self.noise(k * ops.shape(images)[0]), training,
            features=features, components=self.prior.components(training))
        parameters = ops.reshape(parameters, (k, -1, *parameters.shape[1:]))
        log_px_z = -self.likelihood.neg_log_prob(  # [K, N]
            images, parameters, exportable=self._exportable_likelihood(training))
        log_ratio = ops.reshape(ops.sum(ops.stack([r for _, _, r in levels]), axis=0),
                                (k, -1))
        log_w = log_px_z + self.kl_term.beta * log_ratio
        objective = -ops.mean(ops.logsumexp(log_w, axis=0) - math.log(k))
        kl_by_level = ops.stack([ops.mean(ops.reshape(kl, (k, -1)), axis=0)
                                 for _, kl, _ in levels])
        return objective, ops.mean(-log_px_z, axis=0), kl_by_level

    def _exportable_likelihood(self, training) -> bool:
        """Whether the loss keeps to ops every export format has: all but a training
        step that XLA does not compile, for which TensorFlow's own expm1 is faster (under
        XLA the series is; `DiscretizedLogistic.neg_log_prob`)."""
        return not training or bool(self.jit_compile)

    def loss_terms(self, images, labels=None, training=False):
        """(objective, reconstruction [N], KL by level [L, N]) of the configured
        objective."""
        if self.config.objective == "iwae":
            return self.iwae_terms(images, labels, training)
        return self.neg_elbo_terms(images, labels, training)

    # --- training -----------------------------------------------------------------------

    def train_step(self, data):
        """One update, guarded where the levels need it (VDVAE does both): gradients
        clipped to a global norm, and an update whose norm is not finite or far too large
        skipped and counted (`keras_vae.model.guarded_update`)."""
        images, labels = self.batch_parts(data)
        gradients, reconstruction, kl_by_level = self.gradients(images, labels)
        skipped = update(self, gradients)
        for tracker in self.skipped_trackers:
            tracker.update_state(skipped)
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
        results = self._update_metrics(reconstruction, kl_by_level)
        results.pop("skipped_updates", None)  # validation updates nothing
        return results

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker,
                *self.level_kl_trackers, *self.skipped_trackers]

    def _update_metrics(self, reconstruction, kl_by_level):
        """Adds a batch's per-example terms (reconstruction [N], KL by level [L, N]): each
        metric is the mean over every example seen, whatever the batch sizes (a short
        last batch weighs as its examples) and however many replicas share a batch."""
        kl = ops.sum(kl_by_level, axis=0)
        self.loss_tracker.update_state(reconstruction + kl)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        for level, tracker in enumerate(self.level_kl_trackers):
            tracker.update_state(kl_by_level[level])
        results = {m.name: m.result() for m in self.metrics}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3.15 reduces multi-worker step outputs with reduce(MEAN, v, axis=0),
            # which fails on scalars; a leading axis of 1 makes it return the scalar.
            results = {name: ops.reshape(value, (1,)) for name, value in results.items()}
        return results

    # --- inputs and saving --------------------------------------------------------------

    def batch_parts(self, data):
        """(images, labels) of a batch: images alone, or an (images, labels) tuple as the
        pipeline gives a conditional model (labels None for an unconditional one)."""
        if not isinstance(data, (tuple, list)):
            return data, None
        return data[0], (data[1] if self.config.conditional and len(data) > 1 else None)

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


def levels_network(model):
    """The network of the levels that `model.config` describes."""
    if model.config.spatial:
        return SpatialLevels(model)
    return DenseLevels(model) if model.config.hierarchical else OneLevel(model)


for _earlier_name in ("HierarchicalVAE", "SpatialVAE"):
    # Runs saved before there was one model class name these; they load as a VAE.
    keras.saving.get_custom_objects()[f"keras_vae>{_earlier_name}"] = VAE
