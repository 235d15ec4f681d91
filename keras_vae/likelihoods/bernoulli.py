"""The Bernoulli likelihood: p(x|z) of binary pixels, one logit per pixel and channel."""

from __future__ import annotations

import math

from keras import ops


class Bernoulli:
    """Bernoulli(sigmoid(logits)) per pixel; parameters are the logits [.., H, W, C]."""

    name = "bernoulli"
    parameters_per_channel = 1
    fuse_in_evaluation = False
    """One softplus and a matmul per pixel: nothing for XLA to fuse."""

    def __init__(self, image_shape: tuple[int, int, int], components: int = 0):
        """`components` is part of every likelihood's signature; Bernoulli has none."""
        self.image_shape = tuple(image_shape)
        self.values_per_image = math.prod(self.image_shape)

    def neg_log_prob(self, x, logits):
        """Σ softplus(l) − Σ x·l over the image, never log(sigmoid(·)), so it stays finite
        for saturated pixels. With K samples per image, Σ x·l is a batched matrix-vector
        product rather than an elementwise product of K images: the importance-sampled NLL
        reads every image once instead of K times."""
        softplus = _sum_over_image(ops.softplus(logits))
        if len(logits.shape) == len(x.shape) + 1:
            n = ops.shape(x)[0]
            flat_x = ops.reshape(x, (n, self.values_per_image))
            flat_logits = ops.reshape(logits, (ops.shape(logits)[0], n, self.values_per_image))
            return softplus - ops.einsum("knp,np->kn", flat_logits, flat_x)
        return softplus - _sum_over_image(x * logits)

    def scoring_neg_log_prob(self, x, logits):
        """`neg_log_prob`: already the fastest form to score with."""
        return self.neg_log_prob(x, logits)

    def mean(self, logits):
        """E[x|z] = sigmoid(logits), in [0, 1]."""
        return ops.sigmoid(logits)

    def named_parameters(self, logits) -> dict:
        return {"logits": logits}


def _sum_over_image(values):
    return ops.sum(values, axis=(-3, -2, -1))
