"""Log-densities and KL terms of the latent z, in nats.

Two priors p(z): the standard Normal N(0, I) of Kingma & Welling, whose KL to the
Gaussian posterior q(z|x) has a closed form, and the VampPrior of Tomczak & Welling
(2018), a uniform mixture of the posteriors of K learned pseudo-inputs, whose KL is
estimated from the sampled z. A prior is passed around as its components
(means [K, d], log_vars [K, d]), or as None or an empty list for the standard Normal.
"""

from __future__ import annotations

import math

from keras import ops

LOG_2PI = math.log(2 * math.pi)


def log_normal(x, mean, log_var):
    """log N(x; mean, exp(log_var)) summed over the last axis (nats); broadcasts."""
    return -0.5 * ops.sum(LOG_2PI + log_var + ops.square(x - mean) * ops.exp(-log_var),
                          axis=-1)


def gaussian_kl(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) per example, summed over latent dims (nats)."""
    return 0.5 * ops.sum(ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var, axis=-1)


def log_mixture_normal(z, means, log_vars):
    """log (1/K) Σ_k N(z; means_k, exp(log_vars_k)) for z [..., d] and components [K, d].

    The squared distances are expanded into matrix products, Σ z²/σ² − 2 z·μ/σ² + μ²/σ²,
    so the work is two [M, d] × [d, K] matmuls instead of an [M, K, d] tensor: the
    importance-sampled evaluation calls this for millions of z against 500 components.
    """
    precisions = ops.exp(-log_vars)  # [K, d]
    flat = ops.reshape(z, (-1, ops.shape(z)[-1]))  # [M, d]
    squared = (ops.matmul(ops.square(flat), ops.transpose(precisions))
               - 2.0 * ops.matmul(flat, ops.transpose(means * precisions))
               + ops.sum(ops.square(means) * precisions, axis=-1))  # [M, K]
    log_components = -0.5 * (squared + ops.sum(log_vars, axis=-1)
                             + ops.shape(means)[-1] * LOG_2PI)
    k = ops.cast(ops.shape(means)[0], log_components.dtype)
    log_p = ops.logsumexp(log_components, axis=-1) - ops.log(k)
    return ops.reshape(log_p, ops.shape(z)[:-1])


def log_prior(z, prior=None):
    """log p(z) summed over the latent dims: N(0, I) when `prior` is empty, else the mixture
    of its (means, log_vars)."""
    if not prior:
        return log_normal(z, 0.0, ops.zeros_like(z))
    return log_mixture_normal(z, *prior)


def kl_to_prior(z, z_mean, z_log_var, prior=None):
    """KL(q(z|x) || p(z)) per example: exact for N(0, I) (z unused), otherwise the
    one-sample estimate log q(z|x) − log p(z) at the sampled z (unbiased, as the
    VampPrior paper trains it)."""
    if not prior:
        return gaussian_kl(z_mean, z_log_var)
    return log_normal(z, z_mean, z_log_var) - log_mixture_normal(z, *prior)
