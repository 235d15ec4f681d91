"""The matmul and convolution work of one importance sample, counted by TensorFlow's own
graph profiler on the traced computation, so that every network family — dense layers,
convolutions at each resolution, upsampling paths — is counted by one rule instead of a
formula per architecture."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

COUNTED_OPS = ["Conv2D", "MatMul", "BatchMatMul.*"]
"""Op types whose FLOPs are counted: the multiply-adds that a roofline of float32 matmuls
bounds (2 FLOPs each). Elementwise work (activations, the likelihood's terms) is left out,
as it is for the dense networks' counts."""


def importance_sample_flops(vae) -> int:
    """FLOPs of the matmuls and convolutions that every importance sample of one image
    runs: the top-down pass from the posterior (a one-level model's decoder; a
    hierarchy's states, prior and posterior heads and pixels). The bottom-up pass runs
    once per image, not per sample, and is left out: its outputs are the traced
    function's inputs. An unconditional model's, as the bench builds them."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    image = np.zeros((1, *vae.config.image_shape), np.float32)
    features = [tf.TensorSpec(f.shape, f.dtype) for f in vae.features(image, None)]
    noise = tf.TensorSpec((1, sum(vae.config.levels)), tf.float32)

    @tf.function
    def one_sample(features, epsilon):
        return vae.posterior_pass(None, None, epsilon, features=list(features))[0]

    graph = one_sample.get_concrete_function(features, noise).graph
    options = option_builder.ProfileOptionBuilder(
        option_builder.ProfileOptionBuilder.float_operation()).with_empty_output().build()
    options["account_type_regexes"] = COUNTED_OPS
    verbosity = tf.compat.v1.logging.get_verbosity()
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)  # its v1 API notices
    try:
        return int(model_analyzer.profile(graph, options=options).total_float_ops)
    finally:
        tf.compat.v1.logging.set_verbosity(verbosity)
