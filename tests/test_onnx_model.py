"""Specification of export/onnx_model.py: ONNX files with names, a dynamic batch and metadata."""

from __future__ import annotations

import json

import onnx

from export.onnx_model import read_metadata


def test_onnx_files_are_opset_17_with_names_dynamic_batch_and_metadata(small_export):
    paths = small_export["paths"]
    for key, inputs, outputs in (("decoder_onnx", ["noise", "temperature"], ["image", "logits"]),
                                 ("latent_decoder_onnx", ["z"], ["image", "logits"]),
                                 ("encoder_onnx", ["image"], ["z_log_var", "z_mean"])):
        model = onnx.load(paths[key])
        onnx.checker.check_model(model)
        assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
        assert [i.name for i in model.graph.input] == inputs
        assert sorted(o.name for o in model.graph.output) == outputs
        assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert [read_metadata(paths[key])["role"] for key in (
        "decoder_onnx", "decoder_int8_onnx", "latent_decoder_onnx", "encoder_onnx")] == [
        "decoder", "decoder", "latent_decoder", "encoder"]
    metadata = read_metadata(paths["decoder_int8_onnx"])
    assert metadata["latent_dim"] == str(small_export["vae"].config.latent_dim)
    assert metadata["dataset"] == "binarized_mnist"
    assert metadata["prior"] == "normal"
    assert json.loads(metadata["model_config"])["hidden_dims"] == [64]
    assert metadata["quantization"].startswith("dynamic int8")
