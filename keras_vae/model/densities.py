"""Log-densities and KL terms of the latent z, in nats.

Two priors p(z): the standard Normal N(0, I) of Kingma & Welling, whose KL to the
Gaussian posterior q(z|x) has a closed form, and the VampPrior of Tomczak & Welling
(2018), a uniform mixture of the posteriors of K learned pseudo-inputs, whose KL is
estimated from the sampled z. A prior is passed around as its `components`
(means [K, d], log_vars [K, d]), an empty list for the standard Normal.
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
    return ops.sum(gaussian_kl_per_unit(z_mean, z_log_var), axis=-1)


def gaussian_kl_between(mean_q, log_var_q, mean_p, log_var_p):
    """KL(N(mean_q, exp(log_var_q)) || N(mean_p, exp(log_var_p))) per example, summed over
    the latent dims (nats): ½ Σ (log σ_p² − log σ_q² + (σ_q² + (μ_q − μ_p)²)/σ_p² − 1)."""
    return 0.5 * ops.sum(log_var_p - log_var_q - 1.0
                         + (ops.exp(log_var_q) + ops.square(mean_q - mean_p))
                         * ops.exp(-log_var_p), axis=-1)


def gaussian_kl_per_unit(z_mean, z_log_var):
    """The KL of each latent unit, ½(μ² + σ² − 1 − log σ²): the closed form whose sum over
    the units is `gaussian_kl`."""
    return 0.5 * (ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var)


def log_mixture_normal(z, means, log_vars):
    """log (1/K) Σ_k N(z; means_k, exp(log_vars_k)) for z [..., d] and components [K, d].

    Each component's squared distance is computed as written, (z − μ_k)²/σ_k², on an
    [M, K, d] tensor: exact in float32 however sharp a component is. (Expanding it into
    z²/σ² − 2zμ/σ² + μ²/σ² subtracts terms of order 1/σ² from each other and lost whole
    nats at log-variances near −10.) Training holds a batch of z (times IWAE's k), for
    which the tensor is small; the evaluation's millions of z use
    `log_mixture_normal_by_matmul`.
    """
    flat = ops.reshape(z, (-1, 1, ops.shape(z)[-1]))  # [M, 1, d]
    return _log_mean_exp(log_normal(flat, means, log_vars), ops.shape(z)[:-1])


def log_mixture_normal_by_matmul(z, means, log_vars):
    """`log_mixture_normal` for many z at once: the squared distances expanded into two
    [M, d] × [d, K] matmuls instead of an [M, K, d] tensor, computed in float64 so that
    the cancellation of the expanded terms stays far below float32's own rounding (sharp
    components have 1/σ² of 10⁵ and more). Returns z's dtype."""
    dtype = z.dtype
    z, means, log_vars = (ops.cast(t, "float64") for t in (z, means, log_vars))
    precisions = ops.exp(-log_vars)  # [K, d]
    flat = ops.reshape(z, (-1, ops.shape(z)[-1]))  # [M, d]
    squared = (ops.matmul(ops.square(flat), ops.transpose(precisions))
               - 2.0 * ops.matmul(flat, ops.transpose(means * precisions))
               + ops.sum(ops.square(means) * precisions, axis=-1))  # [M, K]
    log_components = -0.5 * (squared + ops.sum(log_vars, axis=-1)
                             + ops.cast(ops.shape(means)[-1], "float64") * LOG_2PI)
    return ops.cast(_log_mean_exp(log_components, ops.shape(z)[:-1]), dtype)


def log_mixture_per_example(z, means, log_vars, log_weights):
    """log Σ_k π_k N(z; means_k, exp(log_vars_k)) for z [..., N, d], components of each
    example's own [N, K, d] and log π [N, K] (a conditional model's mixture for each
    image's class) → [..., N]. The evaluation's z [S, N, d] make an [S, N, K, d] tensor,
    which its passes keep within memory (`keras_vae.measure.nll`)."""
    log_components = log_normal(ops.expand_dims(z, -2), means, log_vars)  # [..., N, K]
    return ops.logsumexp(log_components + log_weights, axis=-1)


def _log_mean_exp(log_components, shape):
    """log (1/K) Σ_k exp(log_components[:, k]), reshaped to `shape`."""
    k = ops.cast(ops.shape(log_components)[-1], log_components.dtype)
    return ops.reshape(ops.logsumexp(log_components, axis=-1) - ops.log(k), shape)


def log_prior(z, components=(), by_matmul: bool = False):
    """log p(z) summed over the latent dims: N(0, I) when `components` is empty, else the
    mixture of its (means, log_vars); `by_matmul` for millions of z (the evaluation)."""
    if not len(components):
        return log_normal(z, 0.0, ops.zeros_like(z))
    mixture = log_mixture_normal_by_matmul if by_matmul else log_mixture_normal
    return mixture(z, *components)

