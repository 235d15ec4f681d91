"""Specification of export/verify.py: the fixed latents and the bounds every export meets."""

from __future__ import annotations

import numpy as np

from export import pipeline, verify
from export.verify import parity_latents
from keras_vae.cli import RunFailure
from keras_vae.config import TrainConfig


def test_parity_latents_are_fixed_and_reach_the_tails():
    z = parity_latents(6)
    np.testing.assert_array_equal(z, parity_latents(6))
    assert np.abs(z[:4]).max() > 4 and np.abs(z[4:]).max() < 5


def test_int8_falls_back_to_per_channel_scales_when_per_tensor_misses_the_bound(
        small_export, tmp_path, monkeypatch):
    per_tensor_mad = small_export["int8"]["image_mean_abs_diff"]
    assert small_export["int8"]["weight_scales"] == "per tensor"  # the faster, when it fits
    calls = []
    write_int8 = pipeline.write_int8
    monkeypatch.setattr(pipeline, "write_int8",
                        lambda *args: calls.append(args[-1]) or write_int8(*args))
    monkeypatch.setattr(verify, "INT8_IMAGE_MAD", per_tensor_mad * 0.999)
    try:
        config = TrainConfig(model=small_export["vae"].config, dataset="binarized_mnist")
        result = pipeline.export_model(small_export["vae"], str(tmp_path / "export"), config)
    except RunFailure as error:  # per channel may not fit such a tight bound either
        assert "int8 decoder image MAD" in str(error)
    else:
        assert result["int8"]["weight_scales"] == "per channel"
        assert result["int8"]["image_mean_abs_diff"] < per_tensor_mad
    assert calls == [False, True]
