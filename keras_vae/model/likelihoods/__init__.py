"""p(x|z): how the decoder's output scores an image's pixels, in nats.

The decoder ends in one tensor of parameters per pixel and channel, [N, H, W, C·P]; a
likelihood (the `PixelLikelihood` interface) reads it. `LIKELIHOODS` is the one list of
them, by the name that `--likelihood` and the run record use:

- `bernoulli` (P = 1, logits): the likelihood of binary pixels, x ∈ {0, 1}. On gray levels
  it is still a cross-entropy, but not the likelihood of any data set of 8-bit images.
- `logistic` (P = 3·M): a mixture of M logistics over the 256 levels of 8-bit pixels, as in
  PixelCNN++ (Salimans et al., 2017), each channel independent given z. A true probability
  mass function over {0, 1/255, …, 1}, so its losses are likelihoods of the 8-bit data,
  comparable across models (in bits per dimension: nats / (H·W·C·ln 2)).

Adding a likelihood: a module in this package with a class of the interface below, and an
entry in `LIKELIHOODS`. The decoder's output width, the losses, the evaluation, the
pictures and every export format follow from the interface alone.

This module imports no TensorFlow (the run record reads the names and facts here); a
likelihood's class is imported when one is made.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol


class PixelLikelihood(Protocol):
    """What the model, the evaluation and the export ask of a likelihood.

    Pixels x are in [0, 1], [N, H, W, C]; parameters are the decoder's output,
    [N, H, W, C·P], or [K, N, H, W, C·P] for K samples of z per image.
    """

    name: str
    parameters_per_channel: int
    """P: the decoder's outputs per pixel and channel."""
    fuse_in_evaluation: bool
    """Whether XLA-compiling `scoring_neg_log_prob` alone speeds the importance-sampled
    NLL."""

    def neg_log_prob(self, x, parameters, exportable: bool = True):
        """−log p(x|z) summed over the image, nats: [N], or [K, N]. `exportable=False`
        allows TensorFlow ops that the export formats lack, where they are faster (a
        training step not compiled by XLA)."""

    def scoring_neg_log_prob(self, x, parameters):
        """The same values as `neg_log_prob` in the form fastest to score without a
        gradient: what the importance-sampled NLL calls."""

    def pixel_neg_log_prob(self, x, parameters):
        """−log p(x_ij|z) per pixel, summed over its channels, nats [N, H, W]: where an
        image is unlikely (the anomaly score's map, `keras_vae.measure.scoring`)."""

    def mean(self, parameters):
        """E[x|z], [N, H, W, C] in [0, 1]: the exported `image` and every picture."""

    def named_parameters(self, parameters) -> dict:
        """The parameters as the export names them ({name: tensor [N, H, W, C, …]})."""


@dataclass(frozen=True)
class LikelihoodEntry:
    """A registered likelihood: where its class lives ("module:Class"), which pixels it is
    the likelihood of ("binary" or "8-bit"), and its default number of mixture components
    (0 when it has none)."""

    location: str
    pixel_kind: str
    default_components: int = 0


LIKELIHOODS = {
    "bernoulli": LikelihoodEntry("keras_vae.model.likelihoods.bernoulli:Bernoulli", "binary"),
    "logistic": LikelihoodEntry("keras_vae.model.likelihoods.logistic:DiscretizedLogistic",
                                "8-bit", default_components=5),
}


def make_likelihood(name: str, image_shape, components: int = 0) -> PixelLikelihood:
    """The likelihood called `name` for images of `image_shape` (H, W, C)."""
    module, cls = LIKELIHOODS[name].location.split(":")
    return getattr(importlib.import_module(module), cls)(tuple(image_shape), components)


def likelihood_for(pixel_kind: str) -> str:
    """The name of the likelihood of `pixel_kind` pixels: what `--likelihood auto` picks."""
    return next(name for name, entry in LIKELIHOODS.items() if entry.pixel_kind == pixel_kind)
