"""The two layers that make a latent level stochastic: `Sampling` draws z by the
reparameterization trick, `KLTerm` adds the KL to the model's losses with `add_loss`."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

from keras_vae.model.noise import counter_normal


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
    (`keras_vae.run.callbacks.KLWarmup`) changes it without rebuilding the compiled step. The
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
