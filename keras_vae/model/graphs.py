"""What a trained `keras_vae.model.vae.VAE` computes besides its loss: encoding and decoding,
the exported graphs of the one sampling contract, and the log-weights that the
likelihood's and the scorer's estimates average. A base class of `VAE`, kept apart so
that each file holds one job; it overrides nothing."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_vae.model.densities import log_normal
from keras_vae.model.latents import component_draws, prior_draws
from keras_vae.model.priors import scaled_draw
from keras_vae.model.top_down import TopDown, tiled_labels

FLOATS_PER_CALL = 40_000_000
"""The batched passes that pictures and statistics make (`images_per_call`), and the
anomaly scorer's (`keras_vae.measure.scoring.batch_size_for`), keep their largest tensor
near this many floats (160 MB): a 64×64 spatial model's 1,000 images a
call held 1 GB in each of its full-resolution feature maps, and its evaluation 13.4 GB."""
MOST_IMAGES_PER_CALL = 1000


class ModelGraphs(TopDown):
    """The model's uses (see the module docstring); `self` is the `VAE`."""

    # --- encoding and decoding ----------------------------------------------------------

    def images_per_call(self) -> int:
        """Images per call of the batched passes below: `MOST_IMAGES_PER_CALL`, fewer where
        an image's largest tensor (the decoder's outputs, or a spatial network's
        full-resolution feature maps) would take more than `FLOATS_PER_CALL` in all."""
        height, width, _ = self.config.image_shape
        per_pixel = max(self.outputs_per_pixel,
                        self.config.hidden_dims[-1] if self.config.spatial else 0)
        return max(1, min(MOST_IMAGES_PER_CALL,
                          FLOATS_PER_CALL // (height * width * per_pixel)))

    def encode(self, images, labels=None, training=False):
        """Each level's posterior along the mean path (z_l = its posterior mean):
        (means, log_vars), each [N, Σ d_l], level 1 first, float32."""
        features = self.features(images, labels, training)

        def choose(level, prior_mean, prior_log_var, state_above):
            return self.posterior(features, level, prior_mean, prior_log_var, state_above)

        _, levels = self.top_down(choose, labels, features[0][:, :1], training)
        return (ops.concatenate([m for m, _ in levels], axis=-1),
                ops.concatenate([v for _, v in levels], axis=-1))

    def top_posterior(self, images, labels=None):
        """(mean, log_var) of q(z_L | x): the top level reads the bottom-up pass alone, so
        neither the levels below nor the decoder run."""
        top = len(self.config.levels) - 1
        return self.posterior(self.features(images, labels), top, None, None, None)

    def decode(self, z, labels=None, training=False):
        """The parameters of p(x | z_1…L) [N, H, W, C·P] for given z [N, Σ d_l], level 1
        first, float32."""
        given = self.split_levels(z)
        parameters, _ = self.top_down(lambda level, *prior: (given[level],), labels,
                                      z[:, :1], training)
        return parameters

    def mean_image(self, z, labels=None, training=False):
        """E[x|z] (or E[x|z, y]): the decoded images [N, H, W, C] in [0, 1] that pictures
        show."""
        return self.likelihood.mean(self.decode(z, labels, training=training))

    def prior_components(self, training=False) -> list:
        """The top prior's components: [] but for the VampPrior's [means, log_vars]."""
        return self.prior.components(training)

    def reconstructions(self, images: np.ndarray, labels: np.ndarray | None = None,
                        batch_size: int | None = None) -> np.ndarray:
        """E[x|z] [N, H, W, C] at each image's posterior mean path, given its label for a
        conditional model: what `reconstructions.png` shows, in batches
        (`images_per_call` unless given)."""
        batch_size = batch_size or self.images_per_call()
        def one_batch(start):
            batch = slice(start, start + batch_size)
            given = None if labels is None else labels[batch]
            z = ops.convert_to_numpy(self.encode(images[batch], given)[0])
            return ops.convert_to_numpy(self.mean_image(z, given))

        return np.concatenate([one_batch(start) for start in range(0, len(images), batch_size)])

    def keep_levels_and_redraw(self, images, labels, first_kept: int, noise,
                               temperature: float = 1.0):
        """What each level holds: the levels from `first_kept` (1-based) up taken from the
        images' posteriors along the mean path, every level below drawn from its prior
        with `noise` [N, Σ d_l] at `temperature` → mean images [N, H, W, C]."""
        features = self.features(images, labels)
        given = self.split_levels(noise)

        def choose(level, prior_mean, prior_log_var, state_above):
            if level + 1 >= first_kept:
                return self.posterior(features, level, prior_mean, prior_log_var,
                                      state_above)
            return (scaled_draw(prior_mean, prior_log_var, given[level], temperature),)

        parameters, _ = self.top_down(choose, labels, features[0][:, :1])
        return self.likelihood.mean(parameters)

    # --- the exported graphs ------------------------------------------------------------

    def generator(self) -> keras.Model:
        """The model that draws images: the exported decoder (`export.endpoints`), the one
        sampling contract of every model. `noise` ε [N, Σ d_l] (level 1 first),
        `temperature` t [N], a conditional model's `label` [N] and, for a prior mixture,
        `component_draw` u [N] in [0, 1) → z_l = μ_l + t·σ_l·ε_l top-down, the top
        level's drawn by the prior (`keras_vae.model.priors`) → parameters of p(x|z). The prior
        is inside the graph and no random op is, so every format and a device need
        nothing but seeded noise."""
        noise_input, temperature, label, draw = self.generator_inputs()
        noise, scale = self.split_levels(noise_input), ops.expand_dims(temperature, -1)

        def choose(level, prior_mean, prior_log_var, state_above):
            if state_above is None:  # the top level: the prior's own draw
                return (self.prior.draw(noise[level], scale, label, draw),)
            return (scaled_draw(prior_mean, prior_log_var, noise[level], scale),)

        parameters, _ = self.top_down(choose, label, noise_input[:, :1])
        inputs = [noise_input, temperature] + [i for i in (label, draw) if i is not None]
        return keras.Model(inputs, parameters, name="generator")

    def generator_inputs(self) -> tuple:
        """(noise, temperature, label or None, component_draw or None): the Keras inputs
        of the sampling contract (`generator`)."""
        noise = keras.Input((sum(self.config.levels),), name="noise")
        temperature = keras.Input((), name="temperature")
        draw = (keras.Input((), name="component_draw") if self.config.takes_component_draw
                else None)
        return noise, temperature, self.label_input(), draw

    def label_input(self):
        """A conditional model's Keras `label` input (int64 [N]); None for another."""
        return keras.Input((), dtype="int64", name="label") if self.config.conditional else None

    @staticmethod
    def with_label_input(x, label):
        """A Keras model's inputs: x, or [x, label] when there is a label input."""
        return x if label is None else [x, label]

    def latent_decoder(self) -> keras.Model:
        """Decoding a given z, for encoded images and interpolation between them:
        `z` [N, Σ d_l] (level 1 first; a conditional model's `label` [N]) → parameters of
        p(x|z). The second exported signature (`decode_latent`) and file
        (latent_decoder.onnx)."""
        z, label = keras.Input((sum(self.config.levels),), name="z"), self.label_input()
        return keras.Model(self.with_label_input(z, label), self.decode(z, label),
                           name="latent_decoder")

    def encoder_model(self) -> keras.Model:
        """image (and label) → (z_mean, z_log_var) [N, Σ d_l]: each level's posterior
        along the mean path, level 1 first (`encode`), as the export ships it."""
        image, label = keras.Input(self.config.image_shape, name="image"), self.label_input()
        return keras.Model(self.with_label_input(image, label), list(self.encode(image, label)),
                           name="posterior")

    def sample_inputs(self, n: int, seed: int, labels=None, temperature: float = 1.0
                      ) -> dict:
        """The generator's inputs for n seeded draws (`keras_vae.model.latents`): "noise"
        [n, Σ d_l], "temperature", a conditional model's "label" (`labels`: one class
        per draw) and, for a prior mixture, n seeded uniform "component_draw"s."""
        inputs = {"noise": prior_draws(n, sum(self.config.levels), seed),
                  "temperature": np.full(n, temperature, np.float32)}
        if self.config.conditional:
            inputs["label"] = np.asarray(labels, np.int64)
        if self.config.takes_component_draw:
            inputs["component_draw"] = component_draws(n, seed)
        return inputs

    def sample_images(self, inputs: dict, batch_size: int | None = None) -> np.ndarray:
        """The mean images E[x|z] [N, H, W, C] that the generator draws from `inputs`
        (`sample_inputs`), in batches (`images_per_call` unless given)."""
        batch_size = batch_size or self.images_per_call()
        generator = self.generator()
        n = len(inputs["noise"])
        return np.concatenate([
            ops.convert_to_numpy(self.likelihood.mean(generator(
                [inputs[i.name][start:start + batch_size] for i in generator.inputs])))
            for start in range(0, n, batch_size)])

    # --- the log-weights that the estimates average -------------------------------------

    def importance_proposal(self, images, labels=None) -> tuple:
        """The bottom-up features, computed once per batch of images."""
        return tuple(self.features(images, labels))

    def importance_log_weights(self, images, proposal, epsilon, labels, components,
                               likelihood):
        """log w = log p(x|z) + Σ_l (log p(z_l|z_>l) − log q(z_l|x, z_>l)) [S, B] for the
        noise ε [S, B, Σ d_l], every level drawn top-down from the posterior
        (`keras_vae.measure.nll`)."""
        shape = ops.shape(epsilon)
        tiled = [ops.tile(f, (shape[0], *[1] * (len(f.shape) - 1)))  # sample-major
                 for f in proposal]
        parameters, levels = self.posterior_pass(
            None, tiled_labels(labels, shape[0]), ops.reshape(epsilon, (-1, shape[-1])),
            features=tiled, components=components, many_z=True)
        parameters = ops.reshape(parameters, (shape[0], shape[1], *parameters.shape[1:]))
        log_ratio = ops.reshape(ops.sum(ops.stack([r for _, _, r in levels]), axis=0),
                                (shape[0], shape[1]))
        return -likelihood.neg_log_prob(images, parameters) + log_ratio

    def log_weights_keeping(self, images, epsilon, first_kept: int, likelihood,
                            components=()):
        """log w^{≥k} [N] for noise ε [N, Σ d_l]: the levels from `first_kept` (1-based)
        up drawn from the posterior, those below from their priors p(z_l | z_>l), so
        that log w = log p(x|z) + Σ_{l≥k} (log p(z_l|z_>l) − log q(z_l|x, z_>l)): the
        terms of Havtorn et al.'s bound L^{>k−1} (with `first_kept` 1, the ELBO's). What
        the hierarchical likelihood ratio compares (`keras_vae.measure.scoring`)."""
        features = self.features(images, None)
        noise = self.split_levels(epsilon)

        def choose(level, prior_mean, prior_log_var, state_above):
            if level + 1 < first_kept:
                return (scaled_draw(prior_mean, prior_log_var, noise[level], 1.0), 0.0)
            mean, log_var = self.posterior(features, level, prior_mean, prior_log_var,
                                           state_above)
            z = mean + ops.exp(0.5 * log_var) * noise[level]
            log_p = (self.prior.log_density(z, None, components) if state_above is None
                     else log_normal(z, prior_mean, prior_log_var))
            return z, log_p - log_normal(z, mean, log_var)

        parameters, levels = self.top_down(choose, None, features[0][:, :1])
        return -likelihood.neg_log_prob(images, parameters) + sum(r for _, r in levels)
