"""The model's part of a run's record: `ModelConfig`, its choices and defaults.

Validated when built; a setting's default lives here and nowhere else. Imports no
TensorFlow, so commands can check their arguments instantly.
"""


from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from keras_vae.config.settings import setting
from keras_vae.model.likelihoods import LIKELIHOODS
from keras_vae.model.networks import NETWORKS
from keras_vae.model.networks.latent_maps import (
    DEFAULT_LATENT_CHANNELS,
    DEFAULT_WIDTH,
    latent_maps,
    resolution_text,
)
from keras_vae.run.cli import (
    UsageError,
    int_list,
    non_negative_float,
    positive_int,
)

DEFAULT_IMAGE_SHAPE = (28, 28, 1)
"""A model's (height, width, channels) unless set; training sets it from the data."""

SPATIAL = "spatial"
"""The residual top-down network with latent feature maps (`keras_vae.model.networks.spatial`); the
other architectures are the dense stack's families (`keras_vae.model.networks.NETWORKS`)."""
SPATIAL_XLA_SPEEDS_TRAINING = False
"""Measured (2026-12-06, docs/spatial.md): without XLA the spatial network trains faster
and in less memory, as `--arch conv` does: 347 Fashion-MNIST images/s against 163 with it
through the command (6,400 images, batch 128), 37 against 20 on 64×64 colour (batch 32).
XLA's CPU compiler also refuses the bfloat16 convolutions' gradients ("Seen floating
point types of different precisions … mixed precision is disallowed")."""
ARCHITECTURES = (*NETWORKS, SPATIAL)
DEFAULT_HIDDEN_DIMS = (400,)
OBJECTIVES = ("elbo", "iwae")
PRIORS = ("normal", "vamp")
LIKELIHOOD_CHOICES = ("auto", *LIKELIHOODS)
"""`auto`: the likelihood of the data's pixels, settled when they load (`for_data`)."""
PIXEL_KINDS = ("binary", "8-bit")
DEFAULT_IWAE_K = 5
DEFAULT_LATENT_DIM = 20
DEFAULT_EIGHT_BIT_LEVELS = (32, 16)
"""The latent levels of a model of 8-bit images unless set; see `default_latent_and_prior`."""
DEFAULT_PSEUDO_INPUTS = 500
DEFAULT_SPATIAL_PSEUDO_INPUTS = 50
"""The spatial network's VampPrior runs its bottom-up pass on every pseudo-input each
step: at 64×64 (batch 16) 50 of them took an epoch from 22 s to 40 s and 500 to 200 s
(docs/spatial.md)."""
DEFAULT_CLASS_COMPONENTS = 50
"""Gaussians per class in a conditional model's prior: on Fashion-MNIST (the default
conditional command, 10 epochs) 50 drew the asked class as often as 10 (87.5 %) and
nearer the data (Fréchet distance 27.45 against 29.44; one Gaussian: 85.7 %, 34.84)."""


def bits_per_dim(nats: float, image_shape) -> float:
    """Nats per image → bits per dimension (pixel and channel): nats / (H·W·C·ln 2)."""
    return nats / (math.prod(image_shape) * math.log(2))


def default_latent_and_prior(pixel_kind: str, conditional: bool, latent_dim, prior,
                             arch: str = "mlp") -> tuple:
    """(latent_dim, prior) with each one that is None replaced by its default, chosen by
    which configuration drew the samples nearest the data in about ten minutes of training
    here (docs/results.md, 10 epochs, Fréchet distance in a classifier's features).

    For 8-bit images a hierarchy of 32 and 16 with the VampPrior on its top level: on 32×32
    colour photographs it halved the next best distance (269.83 against 523.56 for the
    hierarchy under N(0, I) and 557.20 for one level with the VampPrior; its pseudo-inputs
    then started near-black; started at training images, 55.02 by another classifier); on
    Fashion-MNIST it came second to one level with the VampPrior (31.13 against 28.25;
    N(0, I) 42.66 and 54.08). Conditional models, which the VampPrior does not take, keep
    the hierarchy under their class prior (with a mixture per class, 87.5 % of samples of
    the class asked for, against 83.4 % for one level, which draws nearer the data: Fréchet
    distance 23.88 against 27.45). Binary images: Kingma & Welling's N(0, I) and 20.
    `--arch spatial`: latent maps of `DEFAULT_LATENT_CHANNELS` channels under N(0, I) (its
    levels are set by the image's size, `keras_vae.model.networks.latent_maps`)."""
    if arch == SPATIAL:
        return (DEFAULT_LATENT_CHANNELS if latent_dim is None else latent_dim,
                prior or "normal")
    eight_bit = pixel_kind == "8-bit"
    if latent_dim is None:
        latent_dim = DEFAULT_EIGHT_BIT_LEVELS if eight_bit else DEFAULT_LATENT_DIM
    if prior is None:
        prior = "vamp" if eight_bit and not conditional else "normal"
    return latent_dim, prior


def require_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise UsageError(f"{name} {value!r} is not one of {', '.join(map(str, choices))}")


def require_at_least(name: str, value, minimum) -> None:
    if not value >= minimum:
        raise UsageError(f"{name} must be at least {minimum}, not {value!r}")


def _applies_only(setting: str, value, neutral, condition: str) -> None:
    if value not in (None, neutral):
        raise UsageError(f"{setting} applies to {condition}; add that flag or drop it")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and objective of the VAE: each field's meaning is its `help`, which
    `python -m keras_vae.train --help` prints with the default.

    Several latent sizes, nearest the image first (`(32, 16)`), make a hierarchical
    (top-down) VAE with one stochastic level each (`keras_vae.hierarchy`); one size is
    the one-level VAE of Kingma & Welling. `latent_dim`, `prior` and the per-likelihood
    counts left None are settled with the likelihood (`default_latent_and_prior`), which
    the data settle when it is "auto" (`TrainConfig.for_data`); a model is built from a
    settled record. `image_shape` (height, width, channels; pixels in [0, 1]) and
    `label_names` (index = label) come from the data.

    Raises:
        UsageError: a setting is out of range, or given where it does not apply.
    """

    latent_dim: int | tuple[int, ...] | None = setting(
        None, "size of z; 2 gives plottable latent maps. Several sizes, nearest the image "
        "first (32,16), train a hierarchical VAE with a level each. With --arch spatial: "
        "the channels of the latent maps, one for every resolution or one each, nearest "
        "the image first", group="model",
        parse=int_list, default_text=(
            f"{','.join(map(str, DEFAULT_EIGHT_BIT_LEVELS))} under the logistic "
            f"likelihood (8-bit pixels), else {DEFAULT_LATENT_DIM}; "
            f"{DEFAULT_LATENT_CHANNELS} with --arch spatial"))
    hidden_dims: tuple[int, ...] | None = setting(
        None, "hidden widths, encoder order, e.g. 400 or 512,256; the decoder mirrors "
        "them (with --arch conv they sit between the convolutions and z; with --arch "
        "spatial one width: the channels of its residual stream)", group="model",
        parse=int_list, default_text=(
            f"{','.join(map(str, DEFAULT_HIDDEN_DIMS))}; {DEFAULT_WIDTH} with --arch "
            f"spatial"))
    beta: float = setting(1.0, "KL weight in the training objective (1: the true ELBO)",
                          group="objective", parse=non_negative_float)
    free_bits: float = setting(
        0.0, "nats of KL per latent level left uncharged (Kingma et al. 2016): each "
        "level's KL enters the objective as β·max(NATS, its batch mean), so no level "
        "collapses below it; the reported losses stay the true negative ELBO "
        "(--objective elbo)", group="objective", parse=non_negative_float, metavar="NATS")
    dropout: float = setting(
        0.0, "zero each of the decoder's dense hidden features with probability P while "
        "training (a hierarchy's top-down updates too): regularizes p(x|z) where "
        "training images fit far better than test images; inference and exports are "
        "unchanged", group="objective", parse=non_negative_float, metavar="P")
    seed: int = setting(0, "seed of weights, shuffling and sampling: the run's only seed",
                        group="model", parse=int)
    arch: str = setting(
        "mlp", "network family: mlp (dense ReLU layers), gated (gated dense layers, "
        "(W·h + b) ⊙ sigmoid(V·h + c)), conv (strided convolutions around the dense "
        "layers) or spatial (residual convolutions top-down, the latent levels feature "
        "maps at several resolutions)", group="model", choices=ARCHITECTURES)
    objective: str = setting(
        "elbo", "elbo, or iwae: the importance-weighted bound of Burda et al. (tighter, "
        "--iwae-k times the decoding)", group="objective", choices=OBJECTIVES)
    iwae_k: int | None = setting(None, "samples per image of --objective iwae",
                                 group="objective", parse=positive_int,
                                 default_text=str(DEFAULT_IWAE_K))
    prior: str | None = setting(
        None, "normal: N(0, I); vamp: the VampPrior, a mixture of the encoder's posteriors "
        "at learned pseudo-inputs (on a hierarchy's top level)", group="model",
        choices=PRIORS, default_text="vamp under the logistic likelihood (8-bit pixels) "
                                     "without --conditional or --arch spatial, else normal")
    pseudo_inputs: int | None = setting(
        None, "components of --prior vamp; given alone, it asks for --prior vamp",
        group="model", parse=positive_int,
        default_text=f"{DEFAULT_PSEUDO_INPUTS}; {DEFAULT_SPATIAL_PSEUDO_INPUTS} with --arch "
                     "spatial")
    image_shape: tuple[int, int, int] = DEFAULT_IMAGE_SHAPE
    likelihood: str = setting(
        "auto", "p(x|z): bernoulli for binary pixels, logistic (a discretized logistic "
        "mixture) for 8-bit ones; auto picks by the data's pixels", group="model",
        choices=LIKELIHOOD_CHOICES)
    mixture_components: int | None = setting(
        None, "logistics per pixel and channel of --likelihood logistic", group="model",
        parse=positive_int, default_text=str(LIKELIHOODS["logistic"].default_components))
    label_names: tuple[str, ...] = ()
    conditional: bool = setting(
        False, "a conditional VAE (Sohn et al. 2015): encoder and decoder also take the "
        "label and the prior is learned per class, so samples can be asked for by class "
        "(labelled data; not with --prior vamp)", group="model")
    class_components: int | None = setting(
        None, "Gaussians in each class's prior p(z|y) of a --conditional model: 1, or a "
        "mixture with learned weights", group="model", parse=positive_int,
        default_text=str(DEFAULT_CLASS_COMPONENTS))

    def __post_init__(self):
        require_choice("likelihood", self.likelihood, LIKELIHOOD_CHOICES)
        if self.prior is not None:
            require_choice("prior", self.prior, PRIORS)
        self._settle_latent_dim_and_prior()
        object.__setattr__(self, "image_shape", tuple(int(d) for d in self.image_shape))
        object.__setattr__(self, "label_names", tuple(self.label_names))
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise UsageError(f"image_shape must be (height, width, channels), not "
                             f"{self.image_shape!r}")
        self._settle_mixture_components()
        self._settle_hidden_dims()
        for width in self.hidden_dims:
            require_at_least("every hidden width", width, 1)
        require_at_least("beta", self.beta, 0)
        require_at_least("free_bits", self.free_bits, 0)
        if not 0 <= self.dropout < 1:
            raise UsageError(f"dropout must be at least 0 and below 1, not {self.dropout!r}")
        require_choice("arch", self.arch, ARCHITECTURES)
        require_choice("objective", self.objective, OBJECTIVES)
        if self.objective == "iwae":
            object.__setattr__(self, "iwae_k", self.iwae_k or DEFAULT_IWAE_K)
            require_at_least("iwae_k", self.iwae_k, 1)
            _applies_only("--free-bits", self.free_bits, 0, "--objective elbo")
        else:
            _applies_only("--iwae-k", self.iwae_k, 1, "--objective iwae")
            object.__setattr__(self, "iwae_k", 1)
        if self.prior == "vamp":
            if self.pseudo_inputs is None:
                object.__setattr__(self, "pseudo_inputs", DEFAULT_SPATIAL_PSEUDO_INPUTS
                                   if self.arch == SPATIAL else DEFAULT_PSEUDO_INPUTS)
            require_at_least("pseudo_inputs", self.pseudo_inputs, 1)
        elif self.prior is not None:
            _applies_only("--pseudo-inputs", self.pseudo_inputs, 0, "--prior vamp")
            object.__setattr__(self, "pseudo_inputs", 0)
        if not self.conditional:
            _applies_only("--class-components", self.class_components, 1, "--conditional")
            object.__setattr__(self, "class_components", 1)
        elif self.class_components is None:
            object.__setattr__(self, "class_components", DEFAULT_CLASS_COMPONENTS)
        require_at_least("class_components", self.class_components, 1)
        if self.conditional and self.prior == "vamp":
            raise UsageError("--conditional does not support --prior vamp (its pseudo-inputs "
                             "carry no label); drop one of them")

    def _settle_latent_dim_and_prior(self) -> None:
        latent_dim, prior = self.latent_dim, self.prior
        if prior is None and self.pseudo_inputs is not None:
            prior = "vamp"  # --pseudo-inputs alone asks for the VampPrior
        if self.likelihood != "auto":  # else settled with the likelihood
            latent_dim, prior = default_latent_and_prior(
                LIKELIHOODS[self.likelihood].pixel_kind, self.conditional, latent_dim, prior,
                self.arch)
        object.__setattr__(self, "prior", prior)
        if latent_dim is None:
            return
        levels = (tuple(int(d) for d in latent_dim)
                  if isinstance(latent_dim, (tuple, list)) else (int(latent_dim),))
        for size in levels:
            require_at_least("every latent size", size, 1)
        object.__setattr__(self, "latent_dim", levels[0] if len(levels) == 1 else levels)
        if self.arch == SPATIAL:
            try:
                latent_maps(self.image_shape, self.latent_dim)
            except ValueError as error:
                raise UsageError(f"--latent-dim {','.join(map(str, levels))}: {error}") \
                    from None

    def _settle_hidden_dims(self) -> None:
        spatial = self.arch == SPATIAL
        if self.hidden_dims is None:
            object.__setattr__(self, "hidden_dims",
                               (DEFAULT_WIDTH,) if spatial else DEFAULT_HIDDEN_DIMS)
        object.__setattr__(self, "hidden_dims", tuple(self.hidden_dims))
        if spatial and len(self.hidden_dims) != 1:
            raise UsageError(f"--arch spatial takes one width (its residual stream's "
                             f"channels), not {len(self.hidden_dims)}; give one number")
        if spatial:
            _applies_only("--dropout", self.dropout, 0.0, "--arch mlp, gated or conv")

    def _settle_mixture_components(self) -> None:
        if self.mixture_components is not None:
            require_at_least("mixture_components", self.mixture_components, 0)
        if self.likelihood == "auto":
            return  # settled with the likelihood
        default = LIKELIHOODS[self.likelihood].default_components
        if not default:
            _applies_only("--mixture-components", self.mixture_components, 0,
                          "--likelihood logistic")
            object.__setattr__(self, "mixture_components", 0)
            return
        if self.mixture_components is None:
            object.__setattr__(self, "mixture_components", default)
        require_at_least("mixture_components", self.mixture_components, 1)

    @property
    def levels(self) -> tuple[int, ...]:
        """The latent size of each stochastic level, nearest the image first (none until
        the default is settled with the likelihood); a spatial model's are its maps'
        h·w·c (`latent_maps`)."""
        if self.latent_dim is None:
            return ()
        if self.arch == SPATIAL:
            return tuple(m.size for m in self.latent_maps)
        return self.latent_dim if isinstance(self.latent_dim, tuple) else (self.latent_dim,)

    @property
    def latent_maps(self) -> list:
        """A spatial model's levels as maps (`keras_vae.model.networks.latent_maps.LatentMap`),
        nearest the image first."""
        return latent_maps(self.image_shape, self.latent_dim)

    @property
    def spatial(self) -> bool:
        return self.arch == SPATIAL

    @property
    def hierarchical(self) -> bool:
        """Whether the model is a top-down hierarchy (`keras_vae.hierarchy`): several
        levels, or the spatial network, whatever its number of levels."""
        return self.spatial or len(self.levels) > 1

    @property
    def latent_text(self) -> str:
        """What the latent levels are, in words for the run's first line."""
        levels = self.levels
        if self.spatial:
            maps = self.latent_maps
            text = (f"{len(maps)} latent maps at {resolution_text(self.image_shape)} "
                    f"({sum(levels)} numbers)")
        elif len(levels) > 1:
            text = f"latent levels {', '.join(map(str, levels))}"
        else:
            text = f"latent {levels[0]}"
        if self.prior == "vamp":
            text += (f", VampPrior of {self.pseudo_inputs} pseudo-inputs"
                     + (" on the top level" if self.hierarchical else ""))
        return text

    @property
    def takes_component_draw(self) -> bool:
        """Whether the generator picks a prior mixture's component from a uniform
        `component_draw` input: the VampPrior, or a conditional model's mixture per
        class."""
        return self.prior == "vamp" or self.class_components > 1

    @property
    def settled(self) -> bool:
        """Whether the likelihood, and with it the latent levels and the prior, are named
        (a model can be built from this record)."""
        return self.likelihood != "auto"

    @property
    def losses_bound(self) -> str:
        """What the model's losses bound: "log p(x|y)" when conditional, else "log p(x)"."""
        return "log p(x|y)" if self.conditional else "log p(x)"

    @property
    def classes(self) -> int:
        """How many labels the data have (0 when unlabeled)."""
        return len(self.label_names)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "hidden_dims": list(self.hidden_dims),
                "latent_dim": (list(self.latent_dim) if isinstance(self.latent_dim, tuple)
                               else self.latent_dim),
                "image_shape": list(self.image_shape), "label_names": list(self.label_names)}

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        """The inverse of `to_dict`. Records from before `class_components` had one
        Gaussian per class."""
        return cls(**{"class_components": 1, **values})
