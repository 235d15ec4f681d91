"""One `python -m keras_vae.bench` run: the parts it was asked for, in one JSON record."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import keras
import tensorflow as tf

from keras_vae.benchmarks.precision_speed import PRECISION_EXAMPLES, precision_side_by_side
from keras_vae.benchmarks.spatial_speed import (
    SPATIAL_EXAMPLES,
    SPATIAL_NLL_EXAMPLES,
    spatial_nll_cost,
    spatial_side_by_side,
)
from keras_vae.benchmarks.training_speed import (
    COLOUR_EXAMPLES,
    NLL_COST_EXAMPLES,
    conv_side_by_side,
    hierarchy_side_by_side,
    matmul_roofline,
    mlp_benchmark,
    nll_cost,
)
from keras_vae.data.pipeline import load_splits
from keras_vae.run.machine import describe_machine


def run_benchmark(epochs: int, parts: tuple[str, ...],
                  on_row: Callable[[dict], None] | None = None,
                  max_examples: int | None = None) -> dict:
    """`parts`: "mlp" (the default network on binarized MNIST, every measurement but the
    others), "conv" (`conv_side_by_side`), "hierarchy" (`hierarchy_side_by_side`),
    "spatial" (`spatial_side_by_side` and `spatial_nll_cost`), "nll" (`nll_cost`),
    "precision" (`precision_side_by_side`), any of them; `on_row(row)` is called as each
    training configuration is measured. `max_examples` shrinks every training set, for a
    quick look (its figures are not comparable with a full run's)."""
    result = {"date": time.strftime("%Y-%m-%d"), "machine": describe_machine(),
              "tensorflow": tf.__version__, "keras": keras.__version__,
              "xla_flags": os.environ.get("XLA_FLAGS", ""), "epochs": epochs,
              "max_examples": max_examples}

    def roofline() -> float:
        if "matmul_roofline_gflops" not in result:  # the mlp part measures it first
            result["matmul_roofline_gflops"] = matmul_roofline()
        return result["matmul_roofline_gflops"]

    rounds = epochs - 1  # the side-by-side parts: a warm-up epoch, then the timed ones

    def at_most(examples: int) -> int:
        return min(max_examples or examples, examples)

    if "mlp" in parts:
        result.update(mlp_benchmark(epochs, on_row or (lambda row: None), max_examples))
    if "conv" in parts:
        result["conv_32x32x3"] = conv_side_by_side(rounds, at_most(COLOUR_EXAMPLES))
    if "hierarchy" in parts:
        result["hierarchy_side_by_side"] = hierarchy_side_by_side(
            load_splits("binarized_mnist", max_examples=max_examples), rounds)
    if "spatial" in parts:
        result["spatial_side_by_side"] = spatial_side_by_side(rounds,
                                                              at_most(SPATIAL_EXAMPLES))
        result["spatial_nll_cost"] = spatial_nll_cost(roofline(),
                                                      at_most(SPATIAL_NLL_EXAMPLES))
    if "nll" in parts:
        result["nll_cost"] = nll_cost(roofline(), at_most(NLL_COST_EXAMPLES))
    if "precision" in parts:
        result["precision"] = precision_side_by_side(rounds, at_most(PRECISION_EXAMPLES))
    return result
