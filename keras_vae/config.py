"""The one typed record of a run: `TrainConfig`, with the model's part in `ModelConfig`.

It is built once (by the CLI, or by code), validated when it is built, written to
`RUN_DIR/config.json` when the run starts, and read back by every command through
`keras_vae.run_layout.read_run_config`. Everything else that describes a run — the
summary, the ONNX metadata, the export manifest — is derived from it. A setting's
default lives here and nowhere else. This module imports no TensorFlow, so commands can
check their arguments instantly.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

from keras_vae.cli import UsageError
from keras_vae.likelihoods import LIKELIHOODS, likelihood_for
from keras_vae.networks import NETWORKS

DEFAULT_IMAGE_SHAPE = (28, 28, 1)
"""A model's (height, width, channels) unless set; training sets it from the data."""

ARCHITECTURES = tuple(NETWORKS)
OBJECTIVES = ("elbo", "iwae")
LR_SCHEDULES = ("constant", "cosine")
PRIORS = ("normal", "vamp")
LIKELIHOOD_CHOICES = ("auto", *LIKELIHOODS)
"""`auto`: the likelihood of the data's pixels, settled when they load (`for_data`)."""
PIXEL_KINDS = ("binary", "8-bit")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
DEFAULT_IWAE_K = 5
DEFAULT_LATENT_DIM = 20
DEFAULT_EIGHT_BIT_LEVELS = (32, 16)
"""The latent levels of a model of 8-bit images unless set; see `default_latent_and_prior`."""
DEFAULT_PSEUDO_INPUTS = 500
DEFAULT_CLASS_COMPONENTS = 50
"""Gaussians per class in a conditional model's prior: on Fashion-MNIST (the default
conditional command, 10 epochs) 50 drew the asked class as often as 10 (87.5 %) and
nearer the data (Fréchet distance 27.45 against 29.44; one Gaussian: 85.7 %, 34.84)."""
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
"""Pixels (height × width) an image file may declare before it is decoded: a 50-megapixel
photo, more than most cameras write (memory to decode one: `keras_vae.image_files`)."""
SOURCE_PREFIXES = ("folder:", "npz:")
"""`--dataset` is a TFDS name, or one of these followed by a path."""


def bits_per_dim(nats: float, image_shape) -> float:
    """Nats per image → bits per dimension (pixel and channel): nats / (H·W·C·ln 2)."""
    return nats / (math.prod(image_shape) * math.log(2))


def default_latent_and_prior(pixel_kind: str, conditional: bool, latent_dim, prior
                             ) -> tuple:
    """(latent_dim, prior) with each one that is None replaced by its default, chosen by
    which configuration drew the samples nearest the data in about ten minutes of training
    here (docs/results.md, 10 epochs, Fréchet distance in a classifier's features).

    For 8-bit images a hierarchy of 32 and 16 with the VampPrior on its top level: on
    32×32 colour photographs it halved the next best distance (269.83 against 523.56 for
    the hierarchy under N(0, I) and 557.20 for one level with the VampPrior); on
    Fashion-MNIST it came second to one level with the VampPrior (31.13 against 28.25;
    N(0, I) 42.66 and 54.08). Conditional models, which the VampPrior does not take, keep
    the hierarchy under their class prior (with a mixture per class, 87.5 % of samples of
    the class asked for, against 83.4 % for one level, which draws nearer the data:
    Fréchet distance 23.88 against 27.45). Binary images: Kingma & Welling's N(0, I) and
    20."""
    eight_bit = pixel_kind == "8-bit"
    if latent_dim is None:
        latent_dim = DEFAULT_EIGHT_BIT_LEVELS if eight_bit else DEFAULT_LATENT_DIM
    if prior is None:
        prior = "vamp" if eight_bit and not conditional else "normal"
    return latent_dim, prior


def _checked_dataset(dataset: str) -> str:
    """`--dataset` with a path's `~` expanded (the shell leaves `folder:~/x` alone)."""
    for prefix in SOURCE_PREFIXES:
        if dataset.startswith(prefix):
            if not dataset[len(prefix):]:
                raise UsageError(f"--dataset {dataset}: add the path after {prefix!r}")
            return prefix + os.path.expanduser(dataset[len(prefix):])
    if not dataset:
        raise UsageError("--dataset is empty; give a TFDS name, folder:PATH or npz:PATH")
    return dataset


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise UsageError(f"{name} {value!r} is not one of {', '.join(map(str, choices))}")


def _at_least(name: str, value, minimum) -> None:
    if not value >= minimum:
        raise UsageError(f"{name} must be at least {minimum}, not {value!r}")


def _applies_only(setting: str, value, neutral, condition: str) -> None:
    if value not in (None, neutral):
        raise UsageError(f"{setting} applies to {condition}; add that flag or drop it")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and objective of the VAE.

    Args:
        latent_dim: size of z. 2 gives plottable latent maps. Several sizes, nearest the
            image first (`(32, 16)`), make a hierarchical (top-down) VAE with one
            stochastic level each (`keras_vae.hierarchy`); one size is the one-level VAE
            of Kingma & Welling. None: by the likelihood's pixels and `conditional`
            (`default_latent_and_prior`), settled with the likelihood.
        hidden_dims: widths of the dense hidden layers, encoder order; the decoder
            mirrors them. With `arch="conv"` they sit between the convolutions and z.
        beta: weight of the KL term in the training objective (1.0 = the true ELBO).
        free_bits: nats of KL per level that the objective does not charge for (the "free
            bits" of Kingma et al. 2016, per level as in the Ladder VAE): each level's KL
            enters as β·max(λ, its batch mean), so a level below λ nats is free to carry
            information. 0 (default) charges every nat. The reported losses stay the true
            negative ELBO. With `objective="elbo"` only: the IWAE bound has no separate KL.
        dropout: the probability of zeroing each of the decoder's dense hidden features
            while training (a hierarchy's top-down residual updates and its last state):
            a regularizer of p(x|z), which is what the test NLL measures, for data a
            model fits far better than it generalizes (binarized MNIST's 50,000 fixed
            images). 0 (default): none. Inference and every export are unchanged.
        seed: seed of weights, of the sampling layer's ε draws and of the data order, so a
            run is reproducible (the run's only seed).
        arch: a network family of `keras_vae.networks`: "mlp" (dense ReLU layers),
            "gated" (the same widths as gated dense layers, (W·h + b) ⊙ sigmoid(V·h + c),
            as in Tomczak & Welling's VampPrior models) or "conv" (1-4 stride-2
            convolutions, by image size, before the dense layers, and as many
            upsample-and-convolve steps after them).
        objective: "elbo" (Kingma & Welling) or "iwae" (the importance-weighted bound of
            Burda et al. with `iwae_k` samples per image; tighter, k times the decoding).
        iwae_k: samples per image of "iwae" (None: 5); always 1 for "elbo".
        prior: "normal" (N(0, I), the KL in closed form) or "vamp" (the VampPrior of
            Tomczak & Welling: a mixture of the encoder's posteriors at `pseudo_inputs`
            learned images; the KL is estimated from the sampled z; a hierarchy has it on
            its top level). None: settled with the likelihood, as `latent_dim` is.
        pseudo_inputs: VampPrior components (None: 500); always 0 for "normal". Given
            with no prior, it asks for the VampPrior.
        image_shape: (height, width, channels) of the images, pixels in [0, 1].
        likelihood: p(x|z), one of `keras_vae.likelihoods`: "bernoulli" (binary pixels)
            or "logistic" (a discretized logistic mixture over 8-bit pixels); "auto" until
            the data settle it (`TrainConfig.for_data`). A model is built from a settled one.
        mixture_components: mixture components per pixel and channel of a likelihood that
            has them ("logistic"; None: its default, 5); always 0 for "bernoulli".
        label_names: the data's class names, index = label ("" when unlabeled).
        conditional: a conditional VAE (Sohn et al. 2015): q(z|x, y) and p(x|z, y) for a
            label y, and a prior p(z|y) learned per class (on a hierarchy's top level), so
            its losses bound log p(x|y), not log p(x). Needs labelled data; not with the
            VampPrior, whose pseudo-inputs have no labels.
        class_components: Gaussians in each class's prior p(z|y) of a conditional model:
            1, one Gaussian per class (the KL in closed form); more, a mixture per class
            with learned weights (the KL estimated from the sampled z, as the
            VampPrior's), which follows a class whose codes lie in several clusters.
            None: `DEFAULT_CLASS_COMPONENTS` for a conditional model; always 1 without
            `conditional`.

    Raises:
        UsageError: a setting is out of range, or given where it does not apply.
    """

    latent_dim: int | tuple[int, ...] | None = None
    hidden_dims: tuple[int, ...] = (400,)
    beta: float = 1.0
    free_bits: float = 0.0
    dropout: float = 0.0
    seed: int = 0
    arch: str = "mlp"
    objective: str = "elbo"
    iwae_k: int | None = None
    prior: str | None = None
    pseudo_inputs: int | None = None
    image_shape: tuple[int, int, int] = DEFAULT_IMAGE_SHAPE
    likelihood: str = "auto"
    mixture_components: int | None = None
    label_names: tuple[str, ...] = ()
    conditional: bool = False
    class_components: int | None = None

    def __post_init__(self):
        _choice("likelihood", self.likelihood, LIKELIHOOD_CHOICES)
        if self.prior is not None:
            _choice("prior", self.prior, PRIORS)
        self._settle_latent_dim_and_prior()
        object.__setattr__(self, "image_shape", tuple(int(d) for d in self.image_shape))
        object.__setattr__(self, "label_names", tuple(self.label_names))
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise UsageError(f"image_shape must be (height, width, channels), not "
                             f"{self.image_shape!r}")
        self._settle_mixture_components()
        for width in self.hidden_dims:
            _at_least("every hidden width", width, 1)
        _at_least("beta", self.beta, 0)
        _at_least("free_bits", self.free_bits, 0)
        if not 0 <= self.dropout < 1:
            raise UsageError(f"dropout must be at least 0 and below 1, not {self.dropout!r}")
        _choice("arch", self.arch, ARCHITECTURES)
        _choice("objective", self.objective, OBJECTIVES)
        object.__setattr__(self, "hidden_dims", tuple(self.hidden_dims))
        if self.objective == "iwae":
            object.__setattr__(self, "iwae_k", self.iwae_k or DEFAULT_IWAE_K)
            _at_least("iwae_k", self.iwae_k, 1)
            _applies_only("--free-bits", self.free_bits, 0, "--objective elbo")
        else:
            _applies_only("--iwae-k", self.iwae_k, 1, "--objective iwae")
            object.__setattr__(self, "iwae_k", 1)
        if self.prior == "vamp":
            if self.pseudo_inputs is None:
                object.__setattr__(self, "pseudo_inputs", DEFAULT_PSEUDO_INPUTS)
            _at_least("pseudo_inputs", self.pseudo_inputs, 1)
        elif self.prior is not None:
            _applies_only("--pseudo-inputs", self.pseudo_inputs, 0, "--prior vamp")
            object.__setattr__(self, "pseudo_inputs", 0)
        if not self.conditional:
            _applies_only("--class-components", self.class_components, 1, "--conditional")
            object.__setattr__(self, "class_components", 1)
        elif self.class_components is None:
            object.__setattr__(self, "class_components", DEFAULT_CLASS_COMPONENTS)
        _at_least("class_components", self.class_components, 1)
        if self.conditional and self.prior == "vamp":
            raise UsageError("--conditional does not support --prior vamp (its pseudo-inputs "
                             "carry no label); drop one of them")

    def _settle_latent_dim_and_prior(self) -> None:
        latent_dim, prior = self.latent_dim, self.prior
        if prior is None and self.pseudo_inputs is not None:
            prior = "vamp"  # --pseudo-inputs alone asks for the VampPrior
        if self.likelihood != "auto":  # else settled with the likelihood
            latent_dim, prior = default_latent_and_prior(
                LIKELIHOODS[self.likelihood].pixel_kind, self.conditional, latent_dim, prior)
        object.__setattr__(self, "prior", prior)
        if latent_dim is None:
            return
        levels = (tuple(int(d) for d in latent_dim)
                  if isinstance(latent_dim, (tuple, list)) else (int(latent_dim),))
        for size in levels:
            _at_least("every latent size", size, 1)
        object.__setattr__(self, "latent_dim", levels[0] if len(levels) == 1 else levels)

    def _settle_mixture_components(self) -> None:
        if self.mixture_components is not None:
            _at_least("mixture_components", self.mixture_components, 0)
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
        _at_least("mixture_components", self.mixture_components, 1)

    @property
    def levels(self) -> tuple[int, ...]:
        """The latent size of each stochastic level, nearest the image first (none until
        the default is settled with the likelihood)."""
        if self.latent_dim is None:
            return ()
        return self.latent_dim if isinstance(self.latent_dim, tuple) else (self.latent_dim,)

    @property
    def hierarchical(self) -> bool:
        return len(self.levels) > 1

    @property
    def latent_input(self) -> str:
        """The exported decoder's first input: "z", drawn from the prior by the caller,
        or "noise" ε, from which the decoder draws z itself (a conditional model's class
        prior, a hierarchy's levels)."""
        return "noise" if self.conditional or self.hierarchical else "z"

    @property
    def ships_prior_file(self) -> bool:
        """Whether samplers draw z from the VampPrior themselves, from the export's
        prior.npz: a one-level VampPrior model. A hierarchy's decoder holds its top
        level's mixture and takes `component_draw` (`keras_vae.hierarchy`)."""
        return self.prior == "vamp" and self.latent_input == "z"

    @property
    def takes_component_draw(self) -> bool:
        """Whether the exported decoder picks a prior mixture's component itself, from a
        uniform `component_draw` input: a hierarchy's top-level VampPrior, or a
        conditional model's mixture per class."""
        return ((self.prior == "vamp" and self.latent_input == "noise")
                or self.class_components > 1)

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
                "latent_dim": (list(self.latent_dim) if self.hierarchical
                               else self.latent_dim),
                "image_shape": list(self.image_shape), "label_names": list(self.label_names)}

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        """The inverse of `to_dict`. Records from before `class_components` had one
        Gaussian per class."""
        return cls(**{"class_components": 1, **values})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; the CLI flags map one to one onto it.

    `dataset` is a TFDS name (any dataset with an `image` feature), `folder:PATH` or
    `npz:PATH` (see `keras_vae.sources`). Images above `memory_budget_mb` (None: a quarter
    of the machine's memory) stream from a memory-mapped file instead of memory; the two
    give the same batches. Once the data are loaded, `for_data` records what their pixels
    are (`pixel_kind`) and fills the model's image shape, likelihood ("auto": Bernoulli for
    binary pixels, the discretized logistic for 8-bit ones) and label names, before the
    record is written. `jit_compile` None compiles the training step with XLA where that
    speeds the network family up (`keras_vae.networks.NETWORKS`).

    Raises:
        UsageError: a setting is out of range or does not fit the dataset.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    dynamic_binarization: bool = False
    data_dir: str | None = None
    accept_manual_files: bool = False
    out: str | None = None
    jit_compile: bool | None = None
    steps_per_execution: int = 32
    strategy: str = "auto"
    max_examples: int | None = None
    kl_warmup_epochs: int = 0
    lr_schedule: str = "constant"
    early_stopping_patience: int | None = None
    export: bool = True
    image_size: tuple[int, int] | None = None
    split_seed: int = 0
    pixel_kind: str | None = None
    memory_budget_mb: int | None = None
    keep_backup: bool = False
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS

    def __post_init__(self):
        object.__setattr__(self, "dataset", _checked_dataset(self.dataset))
        if self.jit_compile is None:
            object.__setattr__(self, "jit_compile",
                               NETWORKS[self.model.arch].xla_speeds_training)
        if self.image_size is not None:
            object.__setattr__(self, "image_size", tuple(int(d) for d in self.image_size))
            if len(self.image_size) != 2 or min(self.image_size) < 1:
                raise UsageError(f"image_size must be (height, width), not "
                                 f"{self.image_size!r}")
        if self.pixel_kind is not None:
            _choice("pixel_kind", self.pixel_kind, PIXEL_KINDS)
        for name in ("epochs", "batch_size", "steps_per_execution", "max_image_pixels"):
            _at_least(name, getattr(self, name), 1)
        if self.memory_budget_mb is not None:
            _at_least("memory_budget_mb", self.memory_budget_mb, 0)
        _at_least("kl_warmup_epochs", self.kl_warmup_epochs, 0)
        if not self.learning_rate > 0:
            raise UsageError(f"learning_rate must be above 0, not {self.learning_rate!r}")
        if not self.weight_decay >= 0:
            raise UsageError(f"weight_decay must be at least 0, not {self.weight_decay!r}")
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("strategy", self.strategy, STRATEGIES)

    @property
    def seed(self) -> int:
        return self.model.seed

    @property
    def measures_likelihood(self) -> bool:
        """Whether its losses are likelihoods of the data: always, except Bernoulli on
        8-bit pixels (without dynamic binarization), a cross-entropy against gray levels."""
        return not (self.model.likelihood == "bernoulli" and self.pixel_kind == "8-bit"
                    and not self.dynamic_binarization)

    def for_data(self, image_shape, pixel_kind: str, label_names=()) -> TrainConfig:
        """This record completed by what the loaded data are.

        Raises:
            UsageError: a setting does not fit the data.
        """
        trained_on = "binary" if self.dynamic_binarization else pixel_kind
        if self.dynamic_binarization and pixel_kind == "binary":
            raise UsageError(f"--dynamic-binarization needs 8-bit pixels; {self.dataset} is "
                             f"already binary")
        likelihood = self.model.likelihood
        if likelihood == "auto":
            likelihood = likelihood_for(trained_on)
        elif trained_on == "binary" and LIKELIHOODS[likelihood].pixel_kind != "binary":
            binary = "is binarized" if self.dynamic_binarization else "is binary"
            raise UsageError(f"--likelihood {likelihood} models 8-bit pixels, and "
                             f"{self.dataset} {binary}; use --likelihood bernoulli (or auto)")
        if self.model.conditional and not label_names:
            raise UsageError(f"--conditional needs labelled data, and {self.dataset} has no "
                             f"labels (class subfolders, npz 'labels' or a TFDS ClassLabel "
                             f"give them); drop --conditional")
        if self.model.mixture_components and not LIKELIHOODS[likelihood].default_components:
            raise UsageError(f"--mixture-components applies to --likelihood logistic, and "
                             f"{self.dataset}'s {trained_on} pixels take {likelihood}; drop "
                             f"it")
        model = dataclasses.replace(self.model, image_shape=tuple(image_shape),
                                    likelihood=likelihood, label_names=tuple(label_names))
        return dataclasses.replace(self, model=model, pixel_kind=pixel_kind)

    def to_dict(self) -> dict:
        values = {**dataclasses.asdict(self), "model": self.model.to_dict()}
        if self.image_size is not None:
            values["image_size"] = list(self.image_size)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The inverse of `to_dict`; raises TypeError for settings this version lacks.
        Records of keras-vae 0.1.0 read too: they named `pixel_kind` `pixels` and kept the
        likelihood asked for beside the model's own."""
        values = {key: value for key, value in values.items() if key != "likelihood"}
        if "pixels" in values:
            values["pixel_kind"] = values.pop("pixels")
        return cls(**{**values, "model": ModelConfig.from_dict(values["model"])})
