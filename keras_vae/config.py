"""The one configuration object of a run.

`TrainConfig` is built by the CLI, drives data loading, model construction and training,
and is written verbatim into `summary.json` and the exported artifacts' metadata, so every
artifact says how it was made.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

IMAGE_SHAPE = (28, 28, 1)
"""Every supported dataset is 28×28 grayscale; pixels are in [0, 1]."""

ARCHITECTURES = ("mlp", "gated", "conv")
OBJECTIVES = ("elbo", "iwae")
LR_SCHEDULES = ("constant", "cosine")
PRIORS = ("normal", "vamp")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and objective of the VAE.

    Args:
        latent_dim: size of z. 2 gives plottable latent maps; 20 is the classic default.
        hidden_dims: widths of the dense hidden layers (ReLU), encoder order; the decoder
            mirrors them. With `arch="conv"` they sit between the convolutions and z.
        beta: weight of the KL term in the training objective (1.0 = the true ELBO).
        seed: seed of the sampling layer's ε draws, so a run is reproducible.
        arch: "mlp" (dense ReLU layers only), "gated" (the same widths as gated dense
            layers, (W·h + b) ⊙ sigmoid(V·h + c), as in Tomczak & Welling's VampPrior
            models) or "conv" (two stride-2 convolutions before the dense layers and two
            upsample-and-convolve steps after them, in the spirit of keras-io's VAE).
        objective: "elbo" (Kingma & Welling) or "iwae" (the importance-weighted bound of
            Burda et al. with `iwae_k` samples per image; tighter, k times the decoding).
        iwae_k: samples per image of the "iwae" objective.
        prior: "normal" (N(0, I), the KL in closed form) or "vamp" (the VampPrior of
            Tomczak & Welling: a mixture of the encoder's posteriors at `pseudo_inputs`
            learned images; the KL is estimated from the sampled z).
        pseudo_inputs: number of VampPrior components (0 with the normal prior).
    """

    latent_dim: int = 20
    hidden_dims: tuple[int, ...] = (400,)
    beta: float = 1.0
    seed: int = 0
    arch: str = "mlp"
    objective: str = "elbo"
    iwae_k: int = 1
    prior: str = "normal"
    pseudo_inputs: int = 0

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "hidden_dims": list(self.hidden_dims)}

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        return cls(**{**values, "hidden_dims": tuple(values["hidden_dims"])})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; the CLI flags map one to one onto it."""

    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    dynamic_binarization: bool = False
    data_dir: str | None = None
    out: str | None = None
    jit_compile: bool = True
    steps_per_execution: int = 32
    strategy: str = "auto"
    max_examples: int | None = None
    kl_warmup_epochs: int = 0
    lr_schedule: str = "constant"
    early_stopping_patience: int | None = None

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "model": self.model.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The inverse of `to_dict`; raises TypeError for settings this version lacks."""
        return cls(**{**values, "model": ModelConfig.from_dict(values["model"])})
