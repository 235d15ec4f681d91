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
from dataclasses import dataclass, field

from keras_vae.cli import UsageError

IMAGE_SHAPE = (28, 28, 1)
"""Every supported dataset is 28×28 grayscale; pixels are in [0, 1]."""

ARCHITECTURES = ("mlp", "gated", "conv")
OBJECTIVES = ("elbo", "iwae")
LR_SCHEDULES = ("constant", "cosine")
PRIORS = ("normal", "vamp")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
DEFAULT_IWAE_K = 5
DEFAULT_PSEUDO_INPUTS = 500


@dataclass(frozen=True)
class DatasetSpec:
    """How one TFDS dataset maps onto train / validation / test images in [0, 1]."""

    pixel_max: int
    has_validation_split: bool
    is_binary: bool


DATASETS = {
    "mnist": DatasetSpec(pixel_max=255, has_validation_split=False, is_binary=False),
    "binarized_mnist": DatasetSpec(pixel_max=1, has_validation_split=True, is_binary=True),
    "fashion_mnist": DatasetSpec(pixel_max=255, has_validation_split=False, is_binary=False),
}


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
        latent_dim: size of z. 2 gives plottable latent maps; 20 is the classic default.
        hidden_dims: widths of the dense hidden layers, encoder order; the decoder
            mirrors them. With `arch="conv"` they sit between the convolutions and z.
        beta: weight of the KL term in the training objective (1.0 = the true ELBO).
        seed: seed of weights, of the sampling layer's ε draws and of the data order, so a
            run is reproducible (the run's only seed).
        arch: "mlp" (dense ReLU layers), "gated" (the same widths as gated dense layers,
            (W·h + b) ⊙ sigmoid(V·h + c), as in Tomczak & Welling's VampPrior models) or
            "conv" (two stride-2 convolutions before the dense layers and two
            upsample-and-convolve steps after them).
        objective: "elbo" (Kingma & Welling) or "iwae" (the importance-weighted bound of
            Burda et al. with `iwae_k` samples per image; tighter, k times the decoding).
        iwae_k: samples per image of "iwae" (None: 5); always 1 for "elbo".
        prior: "normal" (N(0, I), the KL in closed form) or "vamp" (the VampPrior of
            Tomczak & Welling: a mixture of the encoder's posteriors at `pseudo_inputs`
            learned images; the KL is estimated from the sampled z).
        pseudo_inputs: VampPrior components (None: 500); always 0 for "normal".

    Raises:
        UsageError: a setting is out of range, or given where it does not apply.
    """

    latent_dim: int = 20
    hidden_dims: tuple[int, ...] = (400,)
    beta: float = 1.0
    seed: int = 0
    arch: str = "mlp"
    objective: str = "elbo"
    iwae_k: int | None = None
    prior: str = "normal"
    pseudo_inputs: int | None = None

    def __post_init__(self):
        _at_least("latent_dim", self.latent_dim, 1)
        for width in self.hidden_dims:
            _at_least("every hidden width", width, 1)
        _at_least("beta", self.beta, 0)
        _choice("arch", self.arch, ARCHITECTURES)
        _choice("objective", self.objective, OBJECTIVES)
        _choice("prior", self.prior, PRIORS)
        object.__setattr__(self, "hidden_dims", tuple(self.hidden_dims))
        if self.objective == "iwae":
            object.__setattr__(self, "iwae_k", self.iwae_k or DEFAULT_IWAE_K)
            _at_least("iwae_k", self.iwae_k, 1)
        else:
            _applies_only("--iwae-k", self.iwae_k, 1, "--objective iwae")
            object.__setattr__(self, "iwae_k", 1)
        if self.prior == "vamp":
            if self.pseudo_inputs is None:
                object.__setattr__(self, "pseudo_inputs", DEFAULT_PSEUDO_INPUTS)
            _at_least("pseudo_inputs", self.pseudo_inputs, 1)
        else:
            _applies_only("--pseudo-inputs", self.pseudo_inputs, 0, "--prior vamp")
            object.__setattr__(self, "pseudo_inputs", 0)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "hidden_dims": list(self.hidden_dims)}

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        return cls(**values)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; the CLI flags map one to one onto it.

    Raises:
        UsageError: a setting is out of range or does not fit the dataset.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    dynamic_binarization: bool = False
    data_dir: str | None = None
    accept_manual_files: bool = False
    out: str | None = None
    jit_compile: bool = True
    steps_per_execution: int = 32
    strategy: str = "auto"
    max_examples: int | None = None
    kl_warmup_epochs: int = 0
    lr_schedule: str = "constant"
    early_stopping_patience: int | None = None
    export: bool = True

    def __post_init__(self):
        _choice("dataset", self.dataset, DATASETS)
        for name in ("epochs", "batch_size", "steps_per_execution"):
            _at_least(name, getattr(self, name), 1)
        _at_least("kl_warmup_epochs", self.kl_warmup_epochs, 0)
        if not self.learning_rate > 0:
            raise UsageError(f"learning_rate must be above 0, not {self.learning_rate!r}")
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("strategy", self.strategy, STRATEGIES)
        if self.dynamic_binarization and DATASETS[self.dataset].is_binary:
            raise UsageError(f"--dynamic-binarization needs a grayscale dataset; "
                             f"{self.dataset} is already binary (use mnist or fashion_mnist)")

    @property
    def seed(self) -> int:
        return self.model.seed

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "model": self.model.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The inverse of `to_dict`; raises TypeError for settings this version lacks."""
        return cls(**{**values, "model": ModelConfig.from_dict(values["model"])})
