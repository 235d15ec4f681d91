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

from keras_vae.cli import (
    UsageError,
    int_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    size_pair,
)
from keras_vae.likelihoods import LIKELIHOODS, likelihood_for
from keras_vae.memory import DATA_SHARE_OF_MEMORY
from keras_vae.networks import NETWORKS
from keras_vae.networks.latent_maps import (
    DEFAULT_LATENT_CHANNELS,
    DEFAULT_WIDTH,
    latent_maps,
    resolution_text,
)
from keras_vae.settings import setting

DEFAULT_IMAGE_SHAPE = (28, 28, 1)
"""A model's (height, width, channels) unless set; training sets it from the data."""

SPATIAL = "spatial"
"""The residual top-down network with latent feature maps (`keras_vae.networks.spatial`); the
other architectures are the dense stack's families (`keras_vae.networks.NETWORKS`)."""
SPATIAL_XLA_SPEEDS_TRAINING = True
"""Measured: XLA trains a 28×28 spatial model at 231 images/s against 200 without it
(batch 128, docs/spatial.md). In float32 only: XLA's CPU compiler refuses the bfloat16
convolutions' gradients ("Seen floating point types of different precisions … mixed
precision is disallowed"), so a mixed-precision spatial run trains without it."""
ARCHITECTURES = (*NETWORKS, SPATIAL)
DEFAULT_HIDDEN_DIMS = (400,)
OBJECTIVES = ("elbo", "iwae")
LR_SCHEDULES = ("constant", "cosine")
PRIORS = ("normal", "vamp")
LIKELIHOOD_CHOICES = ("auto", *LIKELIHOODS)
"""`auto`: the likelihood of the data's pixels, settled when they load (`for_data`)."""
PIXEL_KINDS = ("binary", "8-bit")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
"""Keras dtype policies a run trains under: weights stay float32, layers compute in the
second type; the likelihood, the KL and the NLL are computed in float32 whatever it is."""
DEFAULT_IWAE_K = 5
DEFAULT_EPOCHS = 10
FEWEST_DEFAULT_UPDATES = 3000
"""Without --epochs a run trains `DEFAULT_EPOCHS`, or as many as make this many updates
where those make fewer: a folder of 1,152 images is 9 updates an epoch, and its 90 updates
of 10 epochs drew coloured noise (docs/spatial.md). 10 epochs of MNIST's or
Fashion-MNIST's 50,000 training images make 3,910."""
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
DEFAULT_SCORE_K = 16
"""Importance samples per image of the anomaly score (`keras_vae.scoring`; docs/scoring.md)."""
DEFAULT_FPR = 0.01
"""The share of a run's validation images that the anomaly score's threshold flags."""
SOURCE_PREFIXES = ("folder:", "npz:")
"""`--dataset` is a TFDS name, or one of these followed by a path."""


def bits_per_dim(nats: float, image_shape) -> float:
    """Nats per image → bits per dimension (pixel and channel): nats / (H·W·C·ln 2)."""
    return nats / (math.prod(image_shape) * math.log(2))


def default_latent_and_prior(pixel_kind: str, conditional: bool, latent_dim, prior,
                             arch: str = "mlp") -> tuple:
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
    20. `--arch spatial`: latent maps of `DEFAULT_LATENT_CHANNELS` channels under N(0, I)
    (its levels are set by the image's size, `keras_vae.networks.latent_maps`)."""
    if arch == SPATIAL:
        return (DEFAULT_LATENT_CHANNELS if latent_dim is None else latent_dim,
                prior or "normal")
    eight_bit = pixel_kind == "8-bit"
    if latent_dim is None:
        latent_dim = DEFAULT_EIGHT_BIT_LEVELS if eight_bit else DEFAULT_LATENT_DIM
    if prior is None:
        prior = "vamp" if eight_bit and not conditional else "normal"
    return latent_dim, prior


def updates_per_epoch(train_size: int, batch_size: int) -> int:
    return -(-train_size // batch_size)


def default_epochs(train_size: int | None, batch_size: int) -> int:
    """`DEFAULT_EPOCHS`, or as many as make `FEWEST_DEFAULT_UPDATES` updates of
    `batch_size` on `train_size` images where that is more."""
    if not train_size:
        return DEFAULT_EPOCHS
    return max(DEFAULT_EPOCHS, -(-FEWEST_DEFAULT_UPDATES
                                 // updates_per_epoch(train_size, batch_size)))


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
        group="model", parse=positive_int, default_text=str(DEFAULT_PSEUDO_INPUTS))
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
        self._settle_hidden_dims()
        for width in self.hidden_dims:
            _at_least("every hidden width", width, 1)
        _at_least("beta", self.beta, 0)
        _at_least("free_bits", self.free_bits, 0)
        if not 0 <= self.dropout < 1:
            raise UsageError(f"dropout must be at least 0 and below 1, not {self.dropout!r}")
        _choice("arch", self.arch, ARCHITECTURES)
        _choice("objective", self.objective, OBJECTIVES)
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
                LIKELIHOODS[self.likelihood].pixel_kind, self.conditional, latent_dim, prior,
                self.arch)
        object.__setattr__(self, "prior", prior)
        if latent_dim is None:
            return
        levels = (tuple(int(d) for d in latent_dim)
                  if isinstance(latent_dim, (tuple, list)) else (int(latent_dim),))
        for size in levels:
            _at_least("every latent size", size, 1)
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
        the default is settled with the likelihood); a spatial model's are its maps'
        h·w·c (`latent_maps`)."""
        if self.latent_dim is None:
            return ()
        if self.arch == SPATIAL:
            return tuple(m.size for m in self.latent_maps)
        return self.latent_dim if isinstance(self.latent_dim, tuple) else (self.latent_dim,)

    @property
    def latent_maps(self) -> list:
        """A spatial model's levels as maps (`keras_vae.networks.latent_maps.LatentMap`),
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


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; the command's flags come from its fields and
    ModelConfig's (`keras_vae.settings`), each field's meaning is its `help`.

    `dataset` is a TFDS name (any dataset with an `image` feature), `folder:PATH` or
    `npz:PATH` (see `keras_vae.sources`). Once the data are loaded, `for_data` records
    what their pixels are (`pixel_kind`) and fills the model's image shape, likelihood
    and label names, before the record is written. `jit_compile` None compiles the
    training step with XLA where that speeds the network family up
    (`keras_vae.networks.NETWORKS`).

    Raises:
        UsageError: a setting is out of range or does not fit the dataset.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: str = setting(
        "mnist", "a TFDS dataset with images (e.g. mnist, binarized_mnist, fashion_mnist, "
        "cifar10), folder:PATH (image files; class subfolders give labels) or npz:PATH "
        "(arrays images, labels, label_names)", group="data")
    epochs: int | None = setting(
        None, "training epochs", group="objective", parse=positive_int,
        default_text=f"{DEFAULT_EPOCHS}, or as many as make {FEWEST_DEFAULT_UPDATES:,} "
                     f"updates where {DEFAULT_EPOCHS} make fewer (small data sets)")
    batch_size: int = setting(128, "examples per step", group="objective",
                              parse=positive_int)
    learning_rate: float = setting(1e-3, "Adam's learning rate", group="objective",
                                   parse=positive_float)
    weight_decay: float = setting(
        0.0, "decoupled weight decay of the kernels (AdamW): each step shrinks them by "
        "learning rate × this; biases and priors are left (0: plain Adam)",
        group="objective", parse=non_negative_float)
    dynamic_binarization: bool = setting(
        False, "8-bit data: train on a fresh Bernoulli draw of the pixels each epoch (IWAE "
        "paper), validate and test on one fixed draw", group="data")
    data_dir: str | None = setting(None, "TFDS data directory", group="data",
                                   default_text="$TFDS_DATA_DIR, else TFDS's")
    accept_manual_files: bool = setting(
        False, "prepare the dataset from the source files in DATA_DIR/downloads/manual even "
        "if their checksums differ from TFDS's (the same data recompressed, as Linux "
        "packages ship it)", group="data")
    out: str | None = setting(None, "run directory", group="run",
                              default_text="runs/<date>-<time>-<dataset>")
    jit_compile: bool | None = setting(
        None, "do not compile the training step with XLA (--arch conv never does: XLA's "
        "CPU convolutions train slower)", group="run", flag="--no-jit", const=False)
    steps_per_execution: int = setting(32, "training steps per compiled call", group="run",
                                       parse=positive_int)
    strategy: str = setting("auto", "tf.distribute strategy; multi_worker reads TF_CONFIG",
                            group="run", choices=STRATEGIES)
    max_examples: int | None = setting(
        None, "use only the first N examples of each split (quick runs)", group="data",
        parse=positive_int, metavar="N")
    kl_warmup_epochs: int = setting(
        0, "raise the KL weight linearly from 0 to --beta over this many epochs (0: none)",
        group="objective", parse=non_negative_int)
    lr_schedule: str = setting("constant", "constant, or cosine: decay to 0 over --epochs",
                               group="objective", choices=LR_SCHEDULES)
    early_stopping_patience: int | None = setting(
        None, "stop when the validation negative ELBO has not improved for this many "
        "epochs (after the warm-up); the best weights are kept", group="objective",
        parse=positive_int, default_text="train all --epochs")
    export: bool = setting(
        True, "skip the export at the end (run python -m export RUN_DIR later, e.g. on "
        "another machine)", group="run", flag="--no-export")
    image_size: tuple[int, int] | None = setting(
        None, "resize every image to H,W, e.g. 64,48, or to a square of one size, e.g. 64 "
        "(Lanczos); a folder of mixed sizes needs it", group="data", parse=size_pair,
        default_text="the data's size")
    split_seed: int = 0
    pixel_kind: str | None = None
    memory_budget_mb: int | None = setting(
        None, "hold the images in memory up to this size; a larger data set is decoded "
        "once into memory-mapped files in the run directory and streamed from disk, with "
        "the same batches", group="data", parse=non_negative_int,
        default_text=f"1/{DATA_SHARE_OF_MEMORY} of this machine's memory")
    keep_backup: bool = setting(
        False, "keep the resume state (backup/: weights and optimizer state) when training "
        "completes, so that --resume can train the run on later (else removed: it is the "
        "largest file)", group="run")
    precision: str = setting(
        "float32", "the Keras dtype policy training runs under: float32, or mixed_bfloat16 "
        "/ mixed_float16 (weights float32, layers computing in 16 bits, as GPUs run "
        "fastest; float16 with loss scaling). The likelihood, KL and NLL stay float32, "
        "and evaluation and every export compute in float32", group="run",
        choices=PRECISIONS)
    max_image_pixels: int = setting(
        DEFAULT_MAX_IMAGE_PIXELS, "refuse an image file (or npz image) that declares more "
        "pixels (height × width) than this, before decoding it; decoding takes up to "
        "about 19 bytes a pixel", group="data", parse=positive_int)

    def __post_init__(self):
        object.__setattr__(self, "dataset", _checked_dataset(self.dataset))
        if self.jit_compile is None:
            object.__setattr__(self, "jit_compile", (
                SPATIAL_XLA_SPEEDS_TRAINING and self.precision == "float32"
                if self.model.spatial else NETWORKS[self.model.arch].xla_speeds_training))
        if self.image_size is not None:
            object.__setattr__(self, "image_size", tuple(int(d) for d in self.image_size))
            if len(self.image_size) != 2 or min(self.image_size) < 1:
                raise UsageError(f"image_size must be (height, width), not "
                                 f"{self.image_size!r}")
        if self.pixel_kind is not None:
            _choice("pixel_kind", self.pixel_kind, PIXEL_KINDS)
        for name in ("batch_size", "steps_per_execution", "max_image_pixels"):
            _at_least(name, getattr(self, name), 1)
        if self.epochs is not None:
            _at_least("epochs", self.epochs, 1)
        if self.memory_budget_mb is not None:
            _at_least("memory_budget_mb", self.memory_budget_mb, 0)
        _at_least("kl_warmup_epochs", self.kl_warmup_epochs, 0)
        if not self.learning_rate > 0:
            raise UsageError(f"learning_rate must be above 0, not {self.learning_rate!r}")
        if not self.weight_decay >= 0:
            raise UsageError(f"weight_decay must be at least 0, not {self.weight_decay!r}")
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("strategy", self.strategy, STRATEGIES)
        _choice("precision", self.precision, PRECISIONS)

    @property
    def seed(self) -> int:
        return self.model.seed

    @property
    def measures_likelihood(self) -> bool:
        """Whether its losses are likelihoods of the data: always, except Bernoulli on
        8-bit pixels (without dynamic binarization), a cross-entropy against gray levels."""
        return not (self.model.likelihood == "bernoulli" and self.pixel_kind == "8-bit"
                    and not self.dynamic_binarization)

    def for_data(self, image_shape, pixel_kind: str, label_names=(),
                 train_size: int | None = None) -> TrainConfig:
        """This record completed by what the loaded data are (`train_size`, the training
        images, settles the default epochs: `default_epochs`).

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
        epochs = self.epochs or default_epochs(train_size, self.batch_size)
        return dataclasses.replace(self, model=model, pixel_kind=pixel_kind, epochs=epochs)

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
