"""Specification of export/verify.py: the fixed latents and the bounds every export meets."""

from __future__ import annotations

import keras
import numpy as np
import onnx
import pytest

from export import pipeline, verify
from export.endpoints import decoder_endpoint
from export.onnx_model import convolution_weight_share, write_onnx
from export.verify import parity_latents
from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.model.vae import VAE


def test_parity_latents_are_fixed_and_reach_the_tails():
    z = parity_latents(6)
    np.testing.assert_array_equal(z, parity_latents(6))
    assert np.abs(z[:4]).max() > 4 and np.abs(z[4:]).max() < 5


def test_int8_falls_back_to_per_channel_scales_when_per_tensor_misses_the_bound(
        small_export, tmp_path, monkeypatch):
    per_tensor_mad = small_export["int8"]["outputs"]["image"]["mean"]
    assert small_export["int8"]["weight_scales"] == "per tensor"  # the faster, when it fits
    calls = []
    write_int8 = pipeline.write_int8
    monkeypatch.setattr(pipeline, "write_int8",
                        lambda *args: calls.append(args[2]) or write_int8(*args))
    tight = {**verify.INT8_BOUNDS, "image": {"mean": per_tensor_mad * 0.999, "p99": 1.0}}
    monkeypatch.setattr(verify, "INT8_BOUNDS", tight)
    config = TrainConfig(model=small_export["vae"].config, dataset="binarized_mnist")
    result = pipeline.export_model(small_export["vae"], str(tmp_path / "export"), config)
    assert calls == [False, True]
    assert result["int8"]["weight_scales"] == "per channel"
    if "left_out" in result["int8"]:  # per channel may not fit such a tight bound either
        assert "int8 decoder image mean difference" in result["int8"]["left_out"]
    else:
        assert result["int8"]["outputs"]["image"]["mean"] < per_tensor_mad


@pytest.fixture(scope="module")
def conv_decoder(tmp_path_factory) -> dict:
    """An untrained `--arch conv` model's fp32 ONNX decoder, staged as export stages it.
    Its dense layer is as wide as the default's, so that most weights are in MatMuls, as
    in a real model: with 64 units, an int8 file with fp32 convolutions was 42 % of fp32."""
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=6, arch="conv"))
    staging = tmp_path_factory.mktemp("conv_export")
    staged = {"decoder_onnx": str(staging / "decoder.onnx"),
              "decoder_int8_onnx": str(staging / "decoder_int8.onnx")}
    write_onnx(decoder_endpoint(vae.generator(), vae.likelihood), staged["decoder_onnx"], {})
    return {"staged": staged, "inputs": verify.int8_check_inputs(vae)}


def _op_types(path: str) -> set[str]:
    return {node.op_type for node in onnx.load(path).graph.node}


def test_a_conv_decoder_is_quantized_whole_when_that_meets_the_bounds(conv_decoder):
    quality = pipeline._quantize_decoder(conv_decoder["staged"], conv_decoder["inputs"])
    assert verify.int8_misses(quality) == []
    assert (quality["weight_scales"], quality["convolutions"]) == ("per tensor", "int8")
    assert "ConvInteger" in _op_types(conv_decoder["staged"]["decoder_int8_onnx"])


def test_a_conv_decoder_keeps_its_convolutions_fp32_when_int8_ones_miss_a_bound(
        conv_decoder, monkeypatch):
    """As the convolutional MNIST hierarchy's did (logits p99 0.35 against 0.3): the
    schemes with int8 convolutions miss, so the MatMuls alone are quantized."""
    tried = []

    def misses_with_int8_convolutions(quality):
        tried.append((quality["weight_scales"], quality["convolutions"]))
        return verify.int8_misses(quality) + (
            ["int8 convolutions"] if quality["convolutions"] == "int8" else [])

    monkeypatch.setattr(pipeline, "int8_misses", misses_with_int8_convolutions)
    quality = pipeline._quantize_decoder(conv_decoder["staged"], conv_decoder["inputs"])
    assert tried == [("per tensor", "int8"), ("per channel", "int8"), ("per tensor", "fp32")]
    assert verify.int8_misses(quality) == [] and quality["size_ratio"] <= 0.30
    ops = _op_types(conv_decoder["staged"]["decoder_int8_onnx"])
    assert "Conv" in ops and "ConvInteger" not in ops and "MatMulInteger" in ops


def test_a_decoder_of_convolutions_alone_is_not_tried_with_them_kept_fp32(
        conv_decoder, tmp_path, monkeypatch):
    """A spatial decoder's convolutions hold 99 % of its weights: kept fp32, its int8 file
    could not shrink to 30 % of fp32, so only the int8-convolution schemes are tried; and
    as its per-tensor file is over that size too, per-channel scales, which only add to
    a file's size, are not tried after it."""
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(arch="spatial", latent_dim=2, hidden_dims=(8,),
                          likelihood="bernoulli", image_shape=(8, 8, 1)))
    staged = {"decoder_onnx": str(tmp_path / "decoder.onnx"),
              "decoder_int8_onnx": str(tmp_path / "decoder_int8.onnx")}
    write_onnx(decoder_endpoint(vae.generator(), vae.likelihood), staged["decoder_onnx"], {})
    assert convolution_weight_share(staged["decoder_onnx"]) > 0.9
    assert convolution_weight_share(conv_decoder["staged"]["decoder_onnx"]) < 0.3
    tried = []

    def every_scheme_misses(quality):
        tried.append((quality["weight_scales"], quality["convolutions"]))
        return ["a miss"]

    monkeypatch.setattr(pipeline, "int8_misses", every_scheme_misses)
    quality = pipeline._quantize_decoder(staged, verify.int8_check_inputs(vae))
    assert tried == [("per tensor", "int8")]
    assert quality["left_out"] == "a miss" and quality["size_ratio"] > verify.INT8_SIZE_RATIO


def test_every_int8_output_is_checked_against_its_bound():
    """A parameter output off by more than its bound fails the check as the image would,
    naming the output and the statistic."""
    good = {"mean": 0.001, "p99": 0.01, "max": 0.05}
    int8 = {"outputs": {"image": good, "logits": {**good, "p99": 0.31}}, "size_ratio": 0.26}
    assert verify.int8_misses(int8) == ["int8 decoder logits p99 difference 0.31 (bound 0.3)"]
    assert verify.int8_misses({**int8, "outputs": {"image": good, "logits": good}}) == []


def test_the_int8_check_draws_from_the_models_own_prior(vamp_export, small_export):
    """The check feeds the sampling contract as a sampler does: N(0, 1) noise at
    temperature 1, and for a VampPrior component draws spread over [0, 1), so that every
    component of the mixture is drawn."""
    inputs = verify.int8_check_inputs(vamp_export["vae"])
    assert set(inputs) == {"noise", "temperature", "component_draw"}
    assert inputs["noise"].shape == (verify.INT8_BATCH, 6)
    components = np.floor(inputs["component_draw"] * 10).astype(int)  # K = 10
    assert set(components) == set(range(10))
    standard = verify.int8_check_inputs(small_export["vae"])
    assert set(standard) == {"noise", "temperature"}
    assert abs(standard["noise"].std() - 1) < 0.1 and np.all(standard["temperature"] == 1)
