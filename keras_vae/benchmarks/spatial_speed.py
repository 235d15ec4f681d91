"""The spatial network's part of `python -m keras_vae.bench`: its training beside its
PyTorch twin (`keras_vae.benchmarks.torch_spatial`) on 32×32×3 images, and its
importance-sampled NLL per image on Fashion-MNIST beside its convolutions' time at the
roofline."""

from __future__ import annotations

import keras

from keras_vae.benchmarks.torch_spatial import TorchSpatialVAE
from keras_vae.benchmarks.training_speed import (
    COLOUR_SHAPE,
    alternate_epochs,
    colour_split,
    time_nll,
)
from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.data.pipeline import load_splits
from keras_vae.run.training import build_model

SPATIAL_EXAMPLES = 2048
"""Random 32×32×3 images per epoch of the side by side: 32 updates of the default batch,
about 15-20 s an epoch here, in each framework."""
SPATIAL_NLL_EXAMPLES = 30
"""Test images whose NLL the spatial row times (against their first third): each costs
about 50 times a dense model's image, so fewer are timed than `NLL_COST_EXAMPLES`."""


def spatial_config(image_shape=COLOUR_SHAPE, dataset: str = "npz:random",
                   pixel_kind: str = "8-bit") -> TrainConfig:
    """What `python -m keras_vae.train --arch spatial` trains on images of this shape and
    kind: its default batch, width, latent maps and (no) XLA."""
    return TrainConfig(dataset=dataset, model=ModelConfig(arch="spatial")).for_data(
        image_shape, pixel_kind)


def spatial_side_by_side(rounds: int = 3, examples: int = SPATIAL_EXAMPLES) -> dict | None:
    """The default spatial network on random 32×32×3 8-bit images (their content does not
    change a step's cost) against its PyTorch eager twin, alternating epochs
    (`alternate_epochs`); None without PyTorch."""
    config = spatial_config()
    split = colour_split(examples)
    model = config.model
    try:
        torch_vae = TorchSpatialVAE(split.images, model.latent_dim, model.hidden_dims[-1],
                                    config.batch_size, model.mixture_components)
    except ImportError:
        return None
    return {"image_shape": list(COLOUR_SHAPE), "examples": examples,
            "batch_size": config.batch_size, "width": model.hidden_dims[-1],
            "latent_channels": model.latent_dim,
            **alternate_epochs(config, {"train": split}, torch_vae, rounds)}


def spatial_nll_cost(roofline_gflops: float, examples: int = SPATIAL_NLL_EXAMPLES,
                     k: int = 5000) -> dict:
    """Seconds per image of the importance-sampled NLL of `--arch spatial` on
    Fashion-MNIST's first test images (fresh weights: the work does not depend on
    them), beside its convolutions' time at the roofline (`time_nll`)."""
    splits = load_splits("fashion_mnist", max_examples=examples)
    train = splits["train"]
    config = spatial_config(train.image_shape, "fashion_mnist", train.pixel_kind())
    keras.utils.set_random_seed(0)
    vae = build_model(config)
    return {"dataset": "fashion_mnist", "arch": config.model.arch,
            "latent_dim": config.model.latent_dim, "likelihood": config.model.likelihood,
            "k": k,
            **time_nll(vae, splits["test"].as_float(), k, roofline_gflops)}
