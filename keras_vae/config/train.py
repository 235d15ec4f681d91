"""The run's part of the record: `TrainConfig` (data, objective, the run's handling), which
holds the `ModelConfig`, with its choices and defaults. Imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from keras_vae.config.model import (
    PIXEL_KINDS,
    SPATIAL_XLA_SPEEDS_TRAINING,
    ModelConfig,
    require_at_least,
    require_choice,
)
from keras_vae.config.settings import setting
from keras_vae.model.likelihoods import LIKELIHOODS, likelihood_for
from keras_vae.model.networks import NETWORKS
from keras_vae.run.cli import (
    UsageError,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    size_pair,
)
from keras_vae.run.memory import DATA_SHARE_OF_MEMORY

LR_SCHEDULES = ("constant", "cosine")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
"""Keras dtype policies a run trains under: weights stay float32, layers compute in the
second type; the likelihood, the KL and the NLL are computed in float32 whatever it is."""
DEFAULT_EPOCHS = 10
FEWEST_DEFAULT_UPDATES = 3000
"""Without --epochs a run trains `DEFAULT_EPOCHS`, or as many as make this many updates
where those make fewer: a folder of 1,152 images is 9 updates an epoch, and its 90 updates
of 10 epochs drew coloured noise (docs/spatial.md). 10 epochs of MNIST's or
Fashion-MNIST's 50,000 training images make 3,910."""
DEFAULT_BATCH_SIZE = 128
SPATIAL_BATCH_PIXELS = 64 * 32 * 32
"""A spatial model's default batch holds at most this many pixels (height × width), in a
power of two: 64 images of 28×28 or 32×32, 16 of 64×64. Its memory grows with the
batch's pixels (about 26 MB an image of 64×64 in training, measured), and 128 images of
64×64 trained in 4.6 GB; these batches keep training under 2 GB (docs/spatial.md)."""
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
"""Pixels (height × width) an image file may declare before it is decoded: a 50-megapixel
photo, more than most cameras write (memory to decode one: `keras_vae.data.image_files`)."""
DEFAULT_SCORE_K = 16
"""Importance samples per image of the anomaly score (`keras_vae.measure.scoring`;
docs/scoring.md)."""
DEFAULT_FPR = 0.01
"""The share of a run's validation images that the anomaly score's threshold flags."""
SOURCE_PREFIXES = ("folder:", "npz:")
"""`--dataset` is a TFDS name, or one of these followed by a path."""


def updates_per_epoch(train_size: int, batch_size: int) -> int:
    return -(-train_size // batch_size)


def default_epochs(train_size: int | None, batch_size: int) -> int:
    """`DEFAULT_EPOCHS`, or as many as make `FEWEST_DEFAULT_UPDATES` updates of
    `batch_size` on `train_size` images where that is more."""
    if not train_size:
        return DEFAULT_EPOCHS
    return max(DEFAULT_EPOCHS, -(-FEWEST_DEFAULT_UPDATES
                                 // updates_per_epoch(train_size, batch_size)))


def default_batch_size(model: ModelConfig) -> int:
    """`DEFAULT_BATCH_SIZE`, or for a spatial model the largest power of two up to it whose
    images hold at most `SPATIAL_BATCH_PIXELS` pixels (at least 1)."""
    if not model.spatial:
        return DEFAULT_BATCH_SIZE
    height, width = model.image_shape[:2]
    fitting = max(1, SPATIAL_BATCH_PIXELS // (height * width))
    return min(DEFAULT_BATCH_SIZE, 2 ** (fitting.bit_length() - 1))


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


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; the command's flags come from its fields and
    ModelConfig's (`keras_vae.config.settings`), each field's meaning is its `help`.

    `dataset` is a TFDS name (any dataset with an `image` feature), `folder:PATH` or
    `npz:PATH` (see `keras_vae.data.sources`). Once the data are loaded, `for_data` records
    what their pixels are (`pixel_kind`) and fills the model's image shape, likelihood
    and label names, and the batch size and epochs left to their defaults, before the
    record is written. `jit_compile` None compiles the
    training step with XLA where that speeds the network family up
    (`keras_vae.model.networks.NETWORKS`).

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
    batch_size: int | None = setting(
        None, "examples per step", group="objective", parse=positive_int,
        default_text=f"{DEFAULT_BATCH_SIZE}; with --arch spatial the most images, a power "
                     f"of two, of at most {SPATIAL_BATCH_PIXELS:,} pixels in all (64 of "
                     f"32×32, 16 of 64×64)")
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
                SPATIAL_XLA_SPEEDS_TRAINING if self.model.spatial
                else NETWORKS[self.model.arch].xla_speeds_training))
        if self.image_size is not None:
            object.__setattr__(self, "image_size", tuple(int(d) for d in self.image_size))
            if len(self.image_size) != 2 or min(self.image_size) < 1:
                raise UsageError(f"image_size must be (height, width), not "
                                 f"{self.image_size!r}")
        if self.pixel_kind is not None:
            require_choice("pixel_kind", self.pixel_kind, PIXEL_KINDS)
        for name in ("steps_per_execution", "max_image_pixels"):
            require_at_least(name, getattr(self, name), 1)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) is not None:
                require_at_least(name, getattr(self, name), 1)
        if self.memory_budget_mb is not None:
            require_at_least("memory_budget_mb", self.memory_budget_mb, 0)
        require_at_least("kl_warmup_epochs", self.kl_warmup_epochs, 0)
        if not self.learning_rate > 0:
            raise UsageError(f"learning_rate must be above 0, not {self.learning_rate!r}")
        if not self.weight_decay >= 0:
            raise UsageError(f"weight_decay must be at least 0, not {self.weight_decay!r}")
        require_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        require_choice("strategy", self.strategy, STRATEGIES)
        require_choice("precision", self.precision, PRECISIONS)

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
        batch_size = self.batch_size or default_batch_size(model)
        epochs = self.epochs or default_epochs(train_size, batch_size)
        return dataclasses.replace(self, model=model, pixel_kind=pixel_kind, epochs=epochs,
                                   batch_size=batch_size)

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
