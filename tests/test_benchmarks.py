"""Specification of keras_vae/benchmarks.py's measurements (their speed is reported by the
benchmark itself, never asserted by a test)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from keras_vae.benchmarks import measure_training, pipeline_throughput, training_flops_per_example
from keras_vae.config import ModelConfig, TrainConfig


def test_flops_per_example_of_the_default_network_is_3_9_mflop():
    # 784·400 + 400·40 + 20·400 + 400·784 multiply-adds, ×2 FLOP, ×3 for the backward pass.
    assert training_flops_per_example(ModelConfig()) == 6 * 651_200
    assert training_flops_per_example(ModelConfig(hidden_dims=(512, 256))) == 6 * (
        784 * 512 + 512 * 256 + 256 * 40 + 20 * 256 + 256 * 512 + 512 * 784)


@pytest.mark.slow
def test_fast_path_gives_the_plain_path_loss_curve(binarized_mnist_splits):
    splits = {"train": dataclasses.replace(binarized_mnist_splits["train"],
                                           images=binarized_mnist_splits["train"].images[:4096],
                                           labels=None)}
    fast = TrainConfig(dataset="binarized_mnist")
    plain = dataclasses.replace(fast, jit_compile=False, steps_per_execution=1)
    fast_run, plain_run = (measure_training(c, splits, epochs=3) for c in (fast, plain))
    np.testing.assert_allclose(fast_run["loss_per_epoch"], plain_run["loss_per_epoch"],
                               rtol=1e-4)
    assert plain_run["loss_per_epoch"][-1] < plain_run["loss_per_epoch"][0]
    for run in (fast_run, plain_run):
        assert run["examples_per_s"] > 0 and run["first_epoch_s"] > 0


def test_pipeline_throughput_counts_real_examples(binarized_mnist_splits):
    assert pipeline_throughput(binarized_mnist_splits["validation"], 128, epochs=2) > 0


