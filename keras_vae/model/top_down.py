"""The walk down a VAE's levels, and what its level networks and priors ask of the model:
a base class of `keras_vae.model.vae.VAE` that overrides nothing, below the model and its
uses (`keras_vae.model.graphs`) so that they call down into it.

The walk (`top_down`) starts at the top level's prior (`keras_vae.model.priors`), then for
each level asks the network (`keras_vae.model.networks.levels`) for the level's prior from
the state above, lets a `choose` function pick the level's z (a posterior draw, a prior
draw, a given z), and hands z to the network, which merges it into the state; at the
bottom the network gives the likelihood's parameters.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_vae.model.densities import gaussian_kl_between, log_normal


class TopDown:
    """The walk down the levels (see the module docstring); `self` is the `VAE`, which
    holds `config`, `likelihood`, `network`, `prior` and the `sampling` layer."""

    @property
    def outputs_per_pixel(self) -> int:
        """C·P: the decoder's outputs per pixel (P per channel, from the likelihood)."""
        return self.config.image_shape[-1] * self.likelihood.parameters_per_channel

    def split_levels(self, values):
        """[N, Σ d_l] → [values of level 1, …, level L]."""
        edges = np.cumsum((0, *self.config.levels))
        return [values[:, a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def top_down(self, choose, labels, batch, training=False):
        """Walks the levels from the top: `choose(level, prior_mean, prior_log_var,
        state_above)` returns a tuple whose first item is that level's z (the rest is
        whatever it measures); returns (the decoder's parameters, [what choose returned,
        level 1 first]). `batch`: a tensor of the batch size, for N(0, I)'s shape."""
        top = len(self.config.levels) - 1
        chosen = [None] * (top + 1)
        labels = self.checked_labels(labels)
        mean, log_var = self.prior.walk_parameters(batch, labels)
        chosen[top] = choose(top, mean, log_var, None)
        state = self.network.top_state(chosen[top][0], labels, training)
        for level in range(top - 1, -1, -1):
            mean, log_var = self.network.prior_at(level, state)
            chosen[level] = choose(level, mean, log_var, state)
            state = self.network.merge(level, state, chosen[level][0], training)
        return self.network.output(state, labels, training), chosen

    def posterior(self, features, level, prior_mean, prior_log_var, state_above):
        """(mean, log_var) of q(z_l | x, z_>l): from d_L at the top; below, the prior's
        plus a residual read from [d_l, s_l+1]."""
        if state_above is None:
            return self.network.posterior_parameters(features, level, None)
        delta_mean, delta_log_var = self.network.posterior_parameters(features, level,
                                                                      state_above)
        return prior_mean + delta_mean, prior_log_var + delta_log_var

    def features(self, images, labels, training=False):
        """The bottom-up pass (the `encoder`): what each level's posterior reads, a list
        (one level: the encoder's heads, z_mean and z_log_var). A spatial encoder of
        images up to 8×8 has one output, its only resolution's: a tensor, not a list."""
        outputs = self.encoder(self.with_labels(as_tensor(images), labels), training=training)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    def posterior_pass(self, images, labels, epsilon, training=False, features=None,
                       components=(), many_z: bool = False):
        """One draw of every level from the posterior, top-down with noise ε [N, Σ d_l]
        → (the decoder's parameters, [per level (z, KL to its prior, log p − log q at
        z)], level 1 first). `features`: the bottom-up pass, if already computed;
        `components`: the prior's (`prior.components`); `many_z` for the evaluation's
        large batches (`keras_vae.model.densities.log_prior`)."""
        features = features or self.features(images, labels, training)
        noise = self.split_levels(epsilon)

        def choose(level, prior_mean, prior_log_var, state_above):
            mean, log_var = self.posterior(features, level, prior_mean, prior_log_var,
                                           state_above)
            z = mean + ops.exp(0.5 * log_var) * noise[level]
            log_q = log_normal(z, mean, log_var)
            if state_above is None:  # the top level: the model's prior
                kl, log_p = self.prior.terms(z, mean, log_var, labels, components, many_z)
                return z, kl, log_p - log_q
            log_ratio = log_normal(z, prior_mean, prior_log_var) - log_q
            return z, gaussian_kl_between(mean, log_var, prior_mean, prior_log_var), log_ratio

        return self.top_down(choose, labels, features[0][:, :1], training)

    def noise(self, batch_size):
        """ε ~ N(0, I) [N, Σ d_l], drawn by the model's seeded `Sampling` layer."""
        zeros = ops.zeros((batch_size, sum(self.config.levels)))
        return self.sampling([zeros, zeros])

    def with_labels(self, x, labels):
        """A network's input: x, or [x, labels] for a conditional model."""
        if not self.config.conditional:
            return x
        return [as_tensor(x), self.checked_labels(labels)]

    def checked_labels(self, labels):
        """The labels as a tensor; a conditional model refuses to go without them."""
        if labels is None and self.config.conditional:
            raise ValueError("this model is conditional: pass the labels [N] as well")
        return as_tensor(labels)


def as_tensor(values):
    """Images or labels given as numpy arrays (pictures, evaluation) as tensors: a Keras
    network called on a list refuses a mix of tensors (the top-down state) and arrays."""
    return ops.convert_to_tensor(values) if isinstance(values, np.ndarray) else values


def tiled_labels(labels, k):
    """Labels [N] repeated for K sample-major draws, [K·N]; None stays None."""
    return None if labels is None else ops.tile(labels, (k,))
