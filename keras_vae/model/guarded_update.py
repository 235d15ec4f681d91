"""The update of a training step, guarded where the levels need it: VDVAE's gradient
clipping and skipping.

Gradients are clipped to a global norm of `CLIP_NORM_PER_DIMENSION`·H·W·C, and an update
whose norm is not finite or above `SKIP_NORM_PER_DIMENSION`·H·W·C is skipped and counted.
Deep hierarchies need both. A one-level network says it needs neither (`OneLevel.guarded`):
the guard's conditional update cost the default MNIST model a sixth of its training
speed and a few seconds of XLA compilation (2026-12-06), and one-level runs have trained
without it since the first version.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_vae.model.precision import loss_scale

CLIP_NORM_PER_DIMENSION = 200.0
"""Gradients are clipped to this global norm times the number of data dimensions H·W·C.
VDVAE clips at 200 with its loss in nats per dimension; this loss is in nats per image,
whose gradients are H·W·C times larger. (A norm of 200 on the per-image loss clipped
nearly every update of a Fashion-MNIST hierarchy and left it 31 nats behind after two
epochs, 2026-11-29.)"""
SKIP_NORM_PER_DIMENSION = 400.0
"""An update whose gradient norm is not finite or above this times H·W·C is skipped, as
VDVAE skips them; the count goes into the metrics (`skipped_updates`)."""


def update(model, gradients):
    """Applies one update of `gradients` to `model`: guarded where its levels' network
    asks for it (`network.guarded`), else plainly → 1.0 if it was skipped, else 0.0."""
    if model.network.guarded:
        return guarded_update(model, gradients)
    model.optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
    return tf.constant(0.0)


def guarded_update(model, gradients):
    """Applies `gradients` to `model`'s trainable variables, clipped, unless the update
    must be skipped → 1.0 if it was skipped, else 0.0."""
    dimensions = float(np.prod(model.config.image_shape))
    scale = loss_scale(model.optimizer)  # float16's gradients come scaled
    norm = tf.linalg.global_norm(gradients)
    finite = tf.math.is_finite(norm)
    too_large = tf.logical_and(finite, norm >= SKIP_NORM_PER_DIMENSION * dimensions * scale)
    bound = CLIP_NORM_PER_DIMENSION * dimensions * scale
    factor = tf.minimum(1.0, bound / norm)  # exactly 1 below the bound
    clipped = [None if g is None else g * tf.cast(factor, g.dtype) for g in gradients]
    if isinstance(scale, float):
        return _apply_if(model, tf.logical_and(finite, tf.logical_not(too_large)), clipped)
    # float16's loss scaling skips a non-finite step itself, and lowers its scale
    return tf.maximum(_apply_if(model, tf.logical_not(too_large), clipped),
                      1.0 - tf.cast(finite, tf.float32))


def _apply_if(model, healthy, gradients):
    """Applies the update if `healthy` on every replica; → 1.0 if skipped, else 0.0.

    `apply_gradients` synchronizes replicas (a merge_call), which a tf.distribute
    strategy does not allow inside a cond in a replica's context: the choice is made
    once, in the cross-replica context, and the update then runs on every replica,
    as Keras's LossScaleOptimizer skips non-finite steps."""

    def apply(replica_gradients):
        model.optimizer.apply_gradients(zip(replica_gradients, model.trainable_variables,
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
