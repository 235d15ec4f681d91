"""Specification of keras_vae/benchmarks/training_speed.py's measurements (their speed is
reported by the benchmark itself, never asserted by a test)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from keras_vae.benchmarks.training_speed import (
    colour_split,
    default_config,
    hierarchy_side_by_side,
    measure_training,
    pipeline_paths,
    pipeline_throughput,
    training_flops_per_example,
)
from keras_vae.config import ModelConfig


def test_flops_per_example_of_the_default_network_are_3_28_mflop():
    """784·400 + 400·40 + 20·400 + 400·784 multiply-adds, 2 FLOP each forward and 4
    backward, but the first layer's input (the data) gets no gradient: 2 less there."""
    mnist_default = ModelConfig(likelihood="bernoulli")
    assert training_flops_per_example(mnist_default) == 6 * 651_200 - 2 * 784 * 400
    assert training_flops_per_example(mnist_default) / 1e6 == pytest.approx(3.28, abs=0.005)
    wider = dataclasses.replace(mnist_default, hidden_dims=(512, 256))
    assert training_flops_per_example(wider) == 6 * (
        784 * 512 + 512 * 256 + 256 * 40 + 20 * 256 + 256 * 512 + 512 * 784) - 2 * 784 * 512


@pytest.mark.slow
def test_fast_path_gives_the_plain_path_loss_curve(binarized_mnist_splits):
    splits = {"train": dataclasses.replace(binarized_mnist_splits["train"],
                                           images=binarized_mnist_splits["train"].images[:4096],
                                           labels=None)}
    fast = default_config(splits)
    plain = dataclasses.replace(fast, jit_compile=False, steps_per_execution=1)
    fast_run, plain_run = (measure_training(c, splits, epochs=3) for c in (fast, plain))
    np.testing.assert_allclose(fast_run["loss_per_epoch"], plain_run["loss_per_epoch"],
                               rtol=1e-4)
    assert plain_run["loss_per_epoch"][-1] < plain_run["loss_per_epoch"][0]
    for run in (fast_run, plain_run):
        assert run["examples_per_s"] > 0 and run["first_epoch_s"] > 0


@pytest.mark.slow
def test_the_hierarchy_is_timed_side_by_side_with_its_pytorch_twin(binarized_mnist_splits):
    pytest.importorskip("torch")
    splits = {"train": dataclasses.replace(binarized_mnist_splits["train"],
                                           images=binarized_mnist_splits["train"].images[:1024],
                                           labels=None)}
    result = hierarchy_side_by_side(splits, rounds=1)
    assert result["levels"] == [32, 16] and result["rounds"] == 1
    assert result["speedup"] == pytest.approx(result["keras_examples_per_s"]
                                              / result["torch_examples_per_s"])
    assert min(result["keras_examples_per_s"], result["torch_examples_per_s"]) > 0


def test_pipeline_throughput_counts_real_examples(binarized_mnist_splits):
    assert pipeline_throughput(binarized_mnist_splits["validation"], 128, epochs=2) > 0


def test_both_input_paths_are_measured_against_the_training_rate():
    pipeline = pipeline_paths(colour_split(300), 64, training_examples_per_s=100.0)
    for path in ("in_memory", "memory_mapped"):
        rate = pipeline[f"{path}_examples_per_s"]
        assert rate > 0 and pipeline[f"{path}_vs_training"] == pytest.approx(rate / 100.0)


def test_one_importance_sample_of_a_spatial_model_counts_every_top_down_convolution():
    """The profiler's count of a 16×16 spatial model's per-sample work, by hand: width
    16, latent maps of 4 channels at 8×8 (two) and 4×4; a residual block is
    16·4 + 9·4·4 + 9·4·4 + 4·16 = 416 multiply-adds a pixel. The bottom-up pass runs
    once per image and is not counted."""
    from keras_vae.benchmarks.flops import importance_sample_flops
    from keras_vae.model.vae import VAE

    vae = VAE(ModelConfig(arch="spatial", latent_dim=4, hidden_dims=(16,),
                          image_shape=(16, 16, 1), likelihood="logistic",
                          mixture_components=2))
    block = 16 * 4 + 2 * 9 * 4 * 4 + 4 * 16
    top = 4 * 4 * (9 * 16 * 8 + 4 * 16 + block)  # posterior from d_3, z's projection
    lower = 8 * 8 * (9 * 16 * 8 + 9 * 32 * 8 + 4 * 16 + block)  # prior, posterior on [s, d]
    pixels = 16 * 16 * (block + 16 * 6)  # the output block, 6 parameters a pixel
    assert importance_sample_flops(vae) == 2 * (top + 2 * lower + pixels)



@pytest.mark.slow
def test_the_spatial_nll_cost_times_the_default_fashion_model_beside_its_flops():
    """`--only spatial`'s NLL row: the model `--arch spatial` trains on Fashion-MNIST by
    default (here at k = 10 on 3 test images against the first), its per-image work the
    profiler's count of one sample (tested above on a smaller model) times k: 46.6 MFLOP
    a sample, 2026-12-06."""
    from keras_vae.benchmarks.spatial_speed import spatial_config, spatial_nll_cost

    row = spatial_nll_cost(roofline_gflops=100.0, examples=3, k=10)
    config = spatial_config((28, 28, 1), "fashion_mnist", "8-bit")
    assert (row["arch"], row["latent_dim"], row["likelihood"], row["k"]) == (
        "spatial", config.model.latent_dim, "logistic", 10)
    assert (row["examples"], row["fewer_examples"]) == (3, 1)
    assert row["matmul_gflop_per_image"] / 10 == pytest.approx(0.0466, rel=0.01)
    assert row["roofline_seconds_per_image"] == pytest.approx(
        row["matmul_gflop_per_image"] / 100.0)


@pytest.mark.slow
def test_each_network_is_timed_in_float32_and_computed_in_bfloat16_beside_it():
    """`--only precision`: both networks train under both policies on the same images,
    the bfloat16 one computing in bfloat16, and the speed-up is the ratio of the rates."""
    from keras_vae.benchmarks.precision_speed import precision_side_by_side
    from keras_vae.run.machine import cpu_bfloat16_support

    record = precision_side_by_side(rounds=1, examples=64, roofline_seconds=0.2)
    assert record["cpu_bfloat16"] == cpu_bfloat16_support()
    assert record["examples"] == 64 and record["rounds"] == 1
    assert set(record["matmul_roofline_gflops"]) == {"float32", "bfloat16"}
    assert min(record["matmul_roofline_gflops"].values()) > 0
    assert [row["arch"] for row in record["networks"].values()] == ["mlp", "spatial"]
    for row in record["networks"].values():
        assert row["compute_dtypes"] == {"float32": "float32", "mixed_bfloat16": "bfloat16"}
        assert row["float32_examples_per_s"] > 0 and row["mixed_bfloat16_examples_per_s"] > 0
        assert row["bfloat16_speedup"] == pytest.approx(
            row["mixed_bfloat16_examples_per_s"] / row["float32_examples_per_s"])
