"""The variational autoencoder of Kingma & Welling (2013), as a subclassed Keras model.

The code follows the math: the encoder maps x to q(z|x) = N(z_mean, exp(z_log_var)), the
`Sampling` layer draws z with the reparameterization trick and adds the KL term to the
model's losses, the decoder maps z to the parameters of p(x|z) for every pixel (see
`keras_vae.pixels`), and `train_step` / `test_step` add the reconstruction term −log p(x|z).
Images are [N, H, W, C] with pixels in [0, 1]; all losses are in nats per example.

A conditional model (`ModelConfig.conditional`, Sohn et al. 2015) gives the encoder and the
decoder the label y as a second input, so they become q(z|x, y) and p(x|z, y), and its
batches are (images, labels).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers, ops

from keras_vae.config import DEFAULT_IMAGE_SHAPE, ModelConfig
from keras_vae.densities import kl_to_prior, log_normal, log_prior
from keras_vae.noise import counter_normal
from keras_vae.pixels import Bernoulli, pixel_likelihood

CONV_FILTERS = (32, 64, 128, 256)
"""Channels of the conv encoder's stride-2 convolutions, one per stage (see `conv_stages`)."""

CONV_SMALLEST_SIDE = 8
"""The conv encoder halves the image until its shorter side is at most this: 28 → 14 → 7,
32 → 16 → 8, 64 → 32 → 16 → 8; at least one stage, at most len(CONV_FILTERS)."""


def conv_stages(image_shape) -> int:
    """How many stride-2 convolutions the conv encoder uses for this image size."""
    side, stages = min(image_shape[:2]), 0
    while stages < len(CONV_FILTERS) and (stages == 0 or side > CONV_SMALLEST_SIDE):
        side, stages = -(-side // 2), stages + 1
    return stages


def _fan_in_uniform():
    """Kernels drawn from U(±1/√fan_in), PyTorch's default for linear and conv layers.

    On this VAE it ends 10 epochs on binarized MNIST about 0.4 nats lower than Keras's
    Glorot default (test negative ELBO 103.3-103.5 vs 103.6-104.0 over seeds 0-2).
    """
    return keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")


def dense(units: int, name: str, activation: str | None = None) -> layers.Dense:
    return layers.Dense(units, activation=activation, name=name,
                        kernel_initializer=_fan_in_uniform())


def hidden_layer(h, width: int, name: str, gated: bool):
    """One hidden layer: ReLU(W·h + b), or with `gated` (W·h + b) ⊙ sigmoid(V·h + c).

    The gated form is the GatedDense unit of Dauphin et al. (2017) that Tomczak & Welling
    use in every VampPrior model: the sigmoid gate lets each unit scale its own output,
    at twice the weights of a plain layer. Both are ordinary Dense layers, so exports
    need nothing new.
    """
    if not gated:
        return dense(width, name, "relu")(h)
    linear = dense(width, f"{name}_linear")(h)
    gate = dense(width, f"{name}_gate", "sigmoid")(h)
    return layers.Multiply(name=name)([linear, gate])


def conv(filters: int, name: str, *, strides: int = 1,
         activation: str | None = "relu") -> layers.Conv2D:
    """A 3×3 'same' convolution with the same initializer."""
    return layers.Conv2D(filters, 3, strides=strides, padding="same", activation=activation,
                         name=name, kernel_initializer=_fan_in_uniform())


@keras.saving.register_keras_serializable(package="keras_vae")
class OneHot(layers.Layer):
    """Labels int [N] → one-hot float32 [N, classes]; a label outside [0, classes) → zeros.

    Built from Equal and Cast rather than `one_hot`, so that every exported format does the
    same with an out-of-range label: ONNX's OneHot counts negative labels from the end,
    where TensorFlow's gives zeros. Zeros make the label's term vanish from the first
    dense layer: the network then sees "no class".

    Args:
        classes: how many labels there are.
    """

    def __init__(self, classes: int, **kwargs):
        super().__init__(**kwargs)
        self.classes = classes

    def call(self, labels):
        labels = ops.expand_dims(ops.cast(labels, "int64"), -1)
        return ops.cast(ops.equal(labels, ops.arange(self.classes, dtype="int64")),
                        self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.classes)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes}


def with_label(config: ModelConfig, inputs: list, h):
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


def log_importance_weights(images, z, z_mean, z_log_var, parameters, prior_weight=1.0,
                           prior=None, likelihood=None, many_z: bool = False):
    """log w = log p(x|z) + w_p·(log p(z) − log q(z|x)) for K samples of z per image.

    Shapes: images [N, H, W, C]; z [K, N, d]; z_mean, z_log_var [N, d]; the decoder's
    parameters [K, N, H, W, C·P] → [K, N]. `likelihood`: a `keras_vae.pixels` likelihood
    (None: Bernoulli). `prior`: empty for N(0, I), else VampPrior components
    (see `keras_vae.densities`). With `prior_weight` 1 (the default) these are the
    importance weights of p(x) = E_q[p(x, z) / q(z|x)]: the IWAE bound and the
    importance-sampled likelihood are log-mean-exps of them. A `prior_weight` below 1
    tempers the latent term the way β tempers the ELBO's KL (KL warm-up of the IWAE).
    `many_z`: the evaluation's chunks of z, whose VampPrior density is computed by
    matmuls in float64 (`keras_vae.densities.log_mixture_normal_by_matmul`).
    """
    likelihood = likelihood or Bernoulli(images.shape[1:])
    log_px_z = -likelihood.neg_log_prob(images, parameters)
    log_ratio = log_prior(z, prior, by_matmul=many_z) - log_normal(z, z_mean, z_log_var)
    return log_px_z + prior_weight * log_ratio


@keras.saving.register_keras_serializable(package="keras_vae")
class Sampling(layers.Layer):
    """Draws z = z_mean + exp(0.5·z_log_var)·ε, ε ~ N(0, I), and adds β·KL with `add_loss`.

    Inputs are [z_mean, z_log_var] for the N(0, I) prior (exact KL), or
    [z_mean, z_log_var, prior_means, prior_log_vars] for a VampPrior (the KL estimated at
    the drawn z).

    The KL weight β lives in a non-trainable variable so that a callback can change it
    during training (KL warm-up) without rebuilding the model. ε is seeded by a
    `keras.random.SeedGenerator`, whose state is saved with the model, so a reloaded
    model draws the same ε as the original; the draws themselves come from
    `counter_normal`, which gives the same numbers with and without XLA.

    Args:
        beta: initial KL weight.
        seed: seed of the ε stream.

    Example:
        >>> z = Sampling(seed=1)([z_mean, z_log_var])
    """

    def __init__(self, beta: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.initial_beta = float(beta)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.beta = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_beta),
            trainable=False,
            name="beta",
        )

    def call(self, inputs):
        z_mean, z_log_var, *prior = inputs
        # Under a tf.distribute strategy each replica holds one slice of the global batch;
        # offsetting by the replica index gives every example the ε it gets on one device.
        replica = tf.distribute.get_replica_context()
        index = 0 if replica is None else replica.replica_id_in_sync_group
        shape = ops.shape(z_mean)
        epsilon = counter_normal(shape, self.seed_generator.next(),
                                 offset=tf.cast(index, tf.int64) * tf.cast(
                                     tf.reduce_prod(shape), tf.int64))
        z = z_mean + ops.exp(0.5 * z_log_var) * epsilon
        self.add_loss(self.beta * ops.mean(kl_to_prior(z, z_mean, z_log_var, prior)))
        return z

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    # Keras saves a layer's variables but not its SeedGenerator state; without it a
    # reloaded model would restart the ε stream and give different outputs.
    def save_own_variables(self, store):
        store["beta"] = self.beta
        store["seed_generator_state"] = self.seed_generator.state

    def load_own_variables(self, store):
        self.beta.assign(store["beta"])
        self.seed_generator.state.assign(store["seed_generator_state"])

    def get_config(self):
        return {**super().get_config(), "beta": self.initial_beta, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_vae")
class PseudoInputs(layers.Layer):
    """The VampPrior's K learned pseudo-images, sigmoid(logits) in [0, 1].

    The prior is the mixture (1/K) Σ_k q(z | u_k) of the encoder's posteriors at these
    images, so it follows the encoder as both train. Initialized near-black with a little
    noise (pixel values about 0.05 ± 0.01), as in Tomczak & Welling's code.

    Args:
        count: K, the number of pseudo-inputs (mixture components).
    """

    def __init__(self, count: int, image_shape=DEFAULT_IMAGE_SHAPE, **kwargs):
        super().__init__(**kwargs)
        self.count = count
        self.image_shape = tuple(image_shape)
        self.logits = self.add_weight(
            shape=(count, *self.image_shape), name="logits",
            initializer=keras.initializers.RandomNormal(mean=-2.94, stddev=0.2))

    def images(self):
        return ops.sigmoid(self.logits)

    def get_config(self):
        return {**super().get_config(), "count": self.count,
                "image_shape": list(self.image_shape)}


def build_encoder(config: ModelConfig) -> keras.Model:
    """x [N, H, W, C] in [0, 1] (and a conditional model's label [N]) → (z_mean,
    z_log_var), each [N, latent_dim]. The label joins after the convolutions: they learn
    features shared by every class, the dense layers what the class changes."""
    images = keras.Input(shape=config.image_shape, name="image")
    inputs = [images]
    h = images
    if config.arch == "conv":
        for i in range(conv_stages(config.image_shape)):
            h = conv(CONV_FILTERS[i], f"encoder_conv_{i}", strides=2)(h)
    h = with_label(config, inputs, layers.Flatten()(h))
    for i, width in enumerate(config.hidden_dims):
        h = hidden_layer(h, width, f"encoder_hidden_{i}", config.arch == "gated")
    z_mean = dense(config.latent_dim, "z_mean")(h)
    z_log_var = dense(config.latent_dim, "z_log_var")(h)
    return keras.Model(inputs if config.conditional else images, [z_mean, z_log_var],
                       name="encoder")


def build_decoder(config: ModelConfig) -> keras.Model:
    """z [N, latent_dim] (and a conditional model's label [N]) → the parameters of p(x|z),
    [N, H, W, C·P] (the encoder mirrored; P per channel, from the likelihood). The label
    joins z before the first dense layer, so for `conv` it shapes the grid the
    convolutions start from."""
    height, width, channels = config.image_shape
    outputs = channels * pixel_likelihood(config.likelihood, config.image_shape,
                                          config.mixture_components).parameters_per_channel
    z = keras.Input(shape=(config.latent_dim,), name="z")
    inputs = [z]
    h = with_label(config, inputs, z)
    decoder_input = inputs if config.conditional else z
    for i, hidden in enumerate(reversed(config.hidden_dims)):
        h = hidden_layer(h, hidden, f"decoder_hidden_{i}", config.arch == "gated")
    if config.arch != "conv":
        parameters = dense(height * width * outputs, "pixel_parameters")(h)
        parameters = layers.Reshape((height, width, outputs), name="parameters")(parameters)
        return keras.Model(decoder_input, parameters, name="decoder")
    stages = conv_stages(config.image_shape)
    grid = (-(-height // 2 ** stages), -(-width // 2 ** stages), CONV_FILTERS[stages - 1])
    h = dense(math.prod(grid), "decoder_to_grid", "relu")(h)
    h = layers.Reshape(grid)(h)
    # Convolve-and-upsample rather than transposed convolutions: no checkerboard
    # artifacts, and onnxruntime's dynamic int8 quantizes Conv but not ConvTranspose.
    # Bilinear, because Keras's nearest upsampling loses the static shape that the
    # LiteRT converter needs.
    for i in reversed(range(stages)):
        h = conv(CONV_FILTERS[i], f"decoder_conv_{stages - 1 - i}")(h)
        h = layers.UpSampling2D(2, interpolation="bilinear",
                                name=f"decoder_upsample_{stages - 1 - i}")(h)
    excess = (h.shape[1] - height, h.shape[2] - width)  # odd sizes were rounded up
    if any(excess):
        h = layers.Cropping2D(((0, excess[0]), (0, excess[1])), name="crop")(h)
    parameters = conv(outputs, "parameters", activation=None)(h)
    return keras.Model(decoder_input, parameters, name="decoder")


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(keras.Model):
    """A VAE whose `fit` / `evaluate` report `loss` (negative ELBO), `reconstruction`, `kl`.

    Calling the model returns the parameters of p(x|z) for a batch of images, through one
    sampled z per image. The training objective is reconstruction + the model's `add_loss`
    terms (β·KL), or with `objective="iwae"` the negative importance-weighted bound over
    `iwae_k` samples. The reported `loss` metric is always the negative ELBO,
    reconstruction + KL, in nats per example, so runs with different β or objectives stay
    comparable.

    Args:
        config: a `ModelConfig`, or its dict form (as stored in a `.keras` file).

    A conditional model trains on (images, labels) pairs, as Keras passes x and y:
    `vae.fit(images, labels)`, or a dataset of such pairs.

    Example:
        >>> vae = VAE(ModelConfig(latent_dim=2))
        >>> vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> vae.fit(train_images, validation_data=val_images, epochs=10)
    """

    def __init__(self, config: ModelConfig | dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ModelConfig.from_dict(config)
        self.config = config or ModelConfig()
        self.encoder = build_encoder(self.config)
        self.sampling = Sampling(beta=self.config.beta, seed=self.config.seed, name="sampling")
        self.pseudo_inputs = (PseudoInputs(self.config.pseudo_inputs, self.config.image_shape,
                                           name="pseudo_inputs")
                              if self.config.prior == "vamp" else None)
        self.likelihood = pixel_likelihood(self.config.likelihood, self.config.image_shape,
                                           self.config.mixture_components)
        self.decoder = build_decoder(self.config)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.build((None, *self.config.image_shape))

    def build(self, input_shape):
        self.sampling.build([(None, self.config.latent_dim)] * 2)
        self.built = True

    def call(self, inputs, training=False):
        """images → parameters of p(x|z); a conditional model takes (images, labels)."""
        images, labels = self.batch_parts(inputs)
        z_mean, z_log_var = self.encode(images, labels, training=training)
        z = self.sampling([z_mean, z_log_var, *self.prior(training)], training=training)
        return self.decode(z, labels, training=training)

    def encode(self, images, labels=None, training=False):
        """q(z|x) (or q(z|x, y)): (z_mean, z_log_var), each [N, latent_dim]."""
        return self.encoder(self._with_labels(images, labels), training=training)

    def decode(self, z, labels=None, training=False):
        """The parameters of p(x|z) (or p(x|z, y)), [N, H, W, C·P]."""
        return self.decoder(self._with_labels(z, labels), training=training)

    def _with_labels(self, x, labels):
        if not self.config.conditional:
            return x
        if labels is None:
            raise ValueError("this model is conditional: pass the labels [N] as well")
        return [x, labels]

    def batch_parts(self, data):
        """(images, labels) of a batch: images alone, or an (images, labels) tuple as the
        pipeline gives a conditional model (labels None for an unconditional one)."""
        if not isinstance(data, (tuple, list)):
            return data, None
        return data[0], (data[1] if self.config.conditional and len(data) > 1 else None)

    def prior(self, training=False) -> list:
        """The prior's components: [] for N(0, I), [means, log_vars] ([K, d] each) for the
        VampPrior, i.e. the encoder's posteriors at the pseudo-inputs."""
        if self.pseudo_inputs is None:
            return []
        return list(self.encoder(self.pseudo_inputs.images(), training=training))

    def mean_image(self, z, labels=None, training=False):
        """E[x|z] (or E[x|z, y]): the decoded images [N, H, W, C] in [0, 1] that pictures
        show."""
        return self.likelihood.mean(self.decode(z, labels, training=training))

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def _neg_elbo_terms(self, images, labels=None, training=False):
        """One forward pass → (objective: the batch mean in nats; reconstruction and kl:
        one value per example [N], in nats, which the metrics average over examples).

        ELBO: the objective sums the reconstruction and every `add_loss` term of this pass;
        the Sampling layer clears its losses at each call, so the KL is counted once per
        step. IWAE: K = iwae_k samples of z per image; the objective is
        −mean log (1/K) Σ_k w_k, and the reconstruction is averaged over the K samples.
        A conditional model's terms are those of log p(x|y), with `labels` given to both
        networks.
        """
        z_mean, z_log_var = self.encode(images, labels, training=training)
        prior = self.prior(training)
        if self.config.objective != "iwae":
            z = self.sampling([z_mean, z_log_var, *prior], training=training)
            parameters = self.decode(z, labels, training=training)
            reconstruction = self.likelihood.neg_log_prob(images, parameters)
            kl = kl_to_prior(z, z_mean, z_log_var, prior)
            objective = ops.mean(reconstruction) + ops.sum(ops.stack(self.losses))
            return objective, reconstruction, kl
        k, latent_dim = self.config.iwae_k, self.config.latent_dim
        tiled = [ops.tile(t, (k, 1)) for t in (z_mean, z_log_var)]  # sample-major [K·N, d]
        z = self.sampling([*tiled, *prior], training=training)
        tiled_labels = None if labels is None else ops.tile(labels, (k,))
        parameters = self.decode(z, tiled_labels, training=training)
        parameters = ops.reshape(parameters, (k, -1, *parameters.shape[1:]))
        z = ops.reshape(z, (k, -1, latent_dim))
        log_w = log_importance_weights(images, z, z_mean, z_log_var, parameters,
                                       prior_weight=self.sampling.beta, prior=prior,
                                       likelihood=self.likelihood)
        objective = -ops.mean(ops.logsumexp(log_w, axis=0) - math.log(k))
        reconstruction = ops.mean(self.likelihood.neg_log_prob(images, parameters), axis=0)
        kl = kl_to_prior(z, z_mean, z_log_var, prior)  # [N] for N(0, I), [K, N] estimated
        kl = ops.mean(kl, axis=0) if len(kl.shape) == 2 else kl
        return objective, reconstruction, kl

    def _update_metrics(self, reconstruction, kl):
        """Adds a batch's per-example terms: each metric is the mean over every example
        seen, whatever the batch sizes (a short last batch weighs as its examples) and
        however many replicas share a batch."""
        self.loss_tracker.update_state(reconstruction + kl)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        results = {m.name: m.result() for m in self.metrics}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3.15 reduces multi-worker step outputs with reduce(MEAN, v, axis=0),
            # which fails on scalars; a leading axis of 1 makes it return the scalar.
            results = {name: ops.reshape(value, (1,)) for name, value in results.items()}
        return results

    def train_step(self, data):
        images, labels = self.batch_parts(data)
        with tf.GradientTape() as tape:
            objective, reconstruction, kl = self._neg_elbo_terms(images, labels, training=True)
            # Under a tf.distribute strategy gradients are summed over replicas; dividing
            # by the replica count makes the update that of the global-batch mean.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_objective = objective / replicas
        gradients = tape.gradient(scaled_objective, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        return self._update_metrics(reconstruction, kl)

    def test_step(self, data):
        images, labels = self.batch_parts(data)
        _, reconstruction, kl = self._neg_elbo_terms(images, labels, training=False)
        return self._update_metrics(reconstruction, kl)

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

