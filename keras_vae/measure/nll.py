"""How likely the model finds data, in nats: the importance-sampled NLL and latent usage.

The negative ELBO only bounds the negative log-likelihood from above. `importance_nll`
estimates the NLL itself by importance sampling with the encoder as proposal (Burda et
al., 2015):

    −log p(x) ≈ −log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x),

computed with log-sum-exp over k samples taken in chunks, so memory stays bounded whatever
k is. `latent_statistics` counts active latent units (Burda et al.'s criterion:
Cov_x(E_q[z_u]) > 0.01) and the KL per unit. `python -m keras_vae.evaluate` reports both.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from keras_vae.model.densities import gaussian_kl_per_unit
from keras_vae.model.noise import counter_normal
from keras_vae.model.vae import VAE

ACTIVE_UNIT_THRESHOLD = 0.01
CHUNK_BUDGET = 100 * 500 * 784
"""Floats in the largest tensor held at once (batch × samples × floats per sample): the
default batch and chunk of 28×28 Bernoulli images' decoder outputs."""


class FusedLikelihood:
    """A pixel likelihood whose `scoring_neg_log_prob` alone is compiled by XLA, as the
    `neg_log_prob` that the model's importance weights call.

    The discretized logistic is a dozen elementwise operations per mixture component,
    the Bernoulli an exponential per pixel, which XLA fuses into one pass; the decoder's
    matmuls stay on TensorFlow's own kernels, which XLA's CPU matmul does not beat
    (measured: docs/performance.md).
    """

    def __init__(self, likelihood):
        self.neg_log_prob = tf.function(likelihood.scoring_neg_log_prob, jit_compile=True,
                                        reduce_retracing=True)


FUSED_FROM_SAMPLES = 200_000
"""Images × k from which the scoring is compiled by XLA: each of the up to four shapes
of a call (full and last chunk, full and last batch) costs seconds to compile, which a
small evaluation does not win back, so small evaluations run unfused."""


def evaluation_likelihood(likelihood, jit_compile: bool,
                          total_samples: int = FUSED_FROM_SAMPLES):
    """The likelihood to score `total_samples` (images × k) importance samples with: its
    scoring form fused by XLA where that measured faster (the logistic mixture and the
    Bernoulli, once compiling pays), as is otherwise or when the whole function is
    compiled anyway."""
    fuse = (likelihood.fuse_in_evaluation and not jit_compile
            and total_samples >= FUSED_FROM_SAMPLES)
    return FusedLikelihood(likelihood) if fuse else likelihood


def make_log_weights(vae: VAE, jit_compile: bool, total_samples: int):
    """A compiled function (images [B, H, W, C], the proposal's parameters
    (`VAE.importance_proposal`), seed [2], samples, labels [B] or None, first_sample) →
    log w [samples, B]: the samples first_sample … first_sample + samples − 1 of those
    that `seed` draws, so that a seed's samples can be taken in several calls.

    log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x), z_i drawn from q(z|x) with the
    noise ε_i [samples, B, Σ d_l] (`VAE.importance_log_weights`); a VampPrior's components
    are computed once here, not per call. For a conditional model the weights are those
    of p(x|y). `total_samples` (images × k of the whole evaluation) decides whether the
    likelihood is fused by XLA (`evaluation_likelihood`).
    """
    components = [tf.constant(t) for t in vae.prior_components()]
    likelihood = evaluation_likelihood(vae.likelihood, jit_compile, total_samples)
    width = sum(vae.config.levels)

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def log_weights(images, proposal, seed, samples: int, labels=None, first_sample=0):
        offset = tf.cast(first_sample, tf.int64) * tf.cast(tf.shape(images)[0] * width,
                                                           tf.int64)
        epsilon = counter_normal(tf.stack([samples, tf.shape(images)[0], width]), seed,
                                 offset=offset)
        return vae.importance_log_weights(images, proposal, epsilon, labels, components,
                                          likelihood)

    return log_weights


_LARGEST_PER_SAMPLE = weakref.WeakKeyDictionary()
"""VAE → {(jit_compile, fused): `largest_tensor_per_sample`}: the shapes of a model's
graph do not change as it trains, and tracing it again cost a spatial Fashion-MNIST
model about 1.5 s per `importance_nll` call (a score, a `log_prob`)."""


def largest_tensor_per_sample(vae: VAE, log_weights, key=None) -> int:
    """Floats per importance sample of one image in the largest tensor that `log_weights`
    makes, read from its graph traced with the numbers of samples and images unknown.

    The decoder's outputs are not always the largest: a convolutional decoder's last
    feature maps hold 32 floats per pixel (28×28×32 on MNIST, 32 times its outputs), and
    sizing the passes by the outputs alone held 12 GB on MNIST's test set. `key`: what
    besides the model decides the graph (XLA, fusion), to remember the answer by."""
    known = _LARGEST_PER_SAMPLE.setdefault(vae, {})
    if key is not None and key in known:
        return known[key]
    image_shape = vae.config.image_shape
    proposal = vae.importance_proposal(tf.zeros([1, *image_shape]),
                                       tf.zeros([1], tf.int64) if vae.config.conditional
                                       else None)
    graph = log_weights.get_concrete_function(
        tf.TensorSpec([None, *image_shape], tf.float32),
        tuple(tf.TensorSpec([None, *p.shape[1:]], p.dtype) for p in proposal),
        tf.TensorSpec([2], tf.int64), tf.TensorSpec([], tf.int32),
        tf.TensorSpec([None], tf.int64) if vae.config.conditional else None,
        tf.TensorSpec([], tf.int32)).graph
    largest = _largest_per_unknown_row(graph)
    if key is not None:
        known[key] = largest
    return largest


def largest_tensor_per_decoding(vae: VAE) -> int:
    """Floats per decoded z in the largest tensor the decoder makes: its outputs for a
    dense decoder, the feature maps of a convolutional or spatial one (a spatial
    Fashion-MNIST model's 28×28×64 states are 4 times its 28×28×15 outputs)."""
    z = tf.TensorSpec([None, sum(vae.config.levels)], tf.float32)
    labels = tf.TensorSpec([None], tf.int64) if vae.config.conditional else None
    graph = tf.function(vae.decode).get_concrete_function(z, labels).graph
    return _largest_per_unknown_row(graph)


def _largest_per_unknown_row(graph) -> int:
    shapes = [t.shape.as_list() for op in graph.get_operations() for t in op.outputs
              if t.shape.rank is not None]
    return max(math.prod(d for d in shape if d is not None)
               for shape in shapes if None in shape)


def importance_nll(vae: VAE, images: np.ndarray, k: int, seed: int = 0,
                   batch_size: int = 100, chunk: int = 500, jit_compile: bool = False,
                   progress: Callable[[np.ndarray], None] | None = None,
                   labels: np.ndarray | None = None,
                   known: np.ndarray | None = None) -> np.ndarray:
    """−log p(x) per image (nats), from k importance samples taken `chunk` at a time; for
    a conditional model, −log p(x|y) given each image's label in `labels`.

    XLA is off by default here for the decoder: the work is large matmuls, which
    TensorFlow's own CPU kernels run faster than XLA's. The likelihood's per-pixel
    terms alone are fused by XLA (`FusedLikelihood`) once images × k reaches
    `FUSED_FROM_SAMPLES`.

    Peak extra memory is a few times the largest tensor, batch_size × samples per call ×
    its floats per sample (`largest_tensor_per_sample`) × 4 bytes, which is kept within
    `CHUNK_BUDGET` floats (157 MB): 470 MB for 28×28 Bernoulli images at the defaults,
    independent of k. A chunk's `chunk` samples are drawn by one seed; where its tensors
    would exceed the budget (a convolutional decoder's feature maps), they are scored in
    several calls that draw the same noise, so the estimate does not depend on the
    memory. `chunk` itself shrinks for larger images or the logistic mixture's parameters,
    as it always has, which keeps the documented estimates' digits.

    `progress(nll_so_far)` is called after every batch of images with the NLLs of the
    images done so far. `known` holds those of the first images from an interrupted call
    with the same arguments (a whole number of batches): they are kept, and the rest come
    out as the uninterrupted call would have given them, since every batch draws its ε
    by its position.
    """
    log_weights = make_log_weights(vae, jit_compile, total_samples=len(images) * k)
    outputs_per_image = int(np.prod(vae.config.image_shape[:2])) * vae.outputs_per_pixel
    chunk = max(1, min(chunk, CHUNK_BUDGET // (batch_size * outputs_per_image)))
    graph_key = (jit_compile, len(images) * k >= FUSED_FROM_SAMPLES)
    per_call = max(1, min(chunk, CHUNK_BUDGET // (
        batch_size * largest_tensor_per_sample(vae, log_weights, graph_key))))
    nll = np.empty(len(images))
    first = 0 if known is None else len(known)
    if first % batch_size and first != len(images):
        raise ValueError(f"{first} known NLLs are not a whole number of {batch_size}-batches")
    if first:
        nll[:first] = known
    for start in range(first, len(images), batch_size):
        batch = tf.constant(images[start:start + batch_size])
        batch_labels = None if labels is None else tf.constant(labels[start:start + batch_size])
        proposal = vae.importance_proposal(batch, batch_labels)
        total = tf.fill([len(batch)], -np.inf)
        for first in range(0, k, chunk):
            samples = min(chunk, k - first)
            seed_pair = tf.constant([seed, start * k + first], tf.int64)
            weights = [log_weights(batch, proposal, seed_pair, min(per_call, samples - at),
                                   batch_labels, tf.constant(at))
                       for at in range(0, samples, per_call)]
            chunk_lse = tf.reduce_logsumexp(tf.concat(weights, axis=0), axis=0)
            total = tf.experimental.numpy.logaddexp(total, chunk_lse)
        nll[start:start + len(batch)] = -(total.numpy() - math.log(k))
        if progress is not None:
            progress(nll[:start + len(batch)])
    return nll


def latent_statistics(vae: VAE, images: np.ndarray, batch_size: int | None = None,
                      labels: np.ndarray | None = None) -> dict:
    """Active units (Cov_x(E_q[z_u]) > 0.01), also per level of a hierarchy (z_u along
    the mean path, `VAE.encode`), and the mean KL of each latent unit (nats).

    The KL per unit exists for a one-level model with the N(0, I) prior only: a VampPrior's
    mixture does not factorize over units, and a class prior or a hierarchy's lower levels
    are not N(0, I), so it is None there.
    """
    means, kls = [], []
    batch_size = batch_size or vae.images_per_call()
    for start in range(0, len(images), batch_size):
        batch_labels = None if labels is None else labels[start:start + batch_size]
        z_mean, z_log_var = vae.encode(images[start:start + batch_size], batch_labels)
        means.append(z_mean.numpy())
        kls.append(np.asarray(gaussian_kl_per_unit(z_mean, z_log_var)))
    activity = np.var(np.concatenate(means), axis=0)
    edges = np.cumsum((0, *vae.config.levels))
    standard_prior = (vae.pseudo_inputs is None and not vae.config.conditional
                      and not vae.config.hierarchical)
    return {"active_units": int(np.sum(activity > ACTIVE_UNIT_THRESHOLD)),
            "active_units_per_level": [int(np.sum(activity[a:b] > ACTIVE_UNIT_THRESHOLD))
                                       for a, b in zip(edges[:-1], edges[1:], strict=True)],
            "unit_activity": activity.tolist(),
            "kl_per_unit": (np.concatenate(kls).mean(axis=0).tolist() if standard_prior
                            else None)}
