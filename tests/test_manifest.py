"""Specification of export/manifest.py and the manifest.json an export writes."""

from __future__ import annotations

import json
import os

import pytest

from export.manifest import fingerprint, model_identity, refuse_other_model
from keras_vae.run.cli import UsageError


def test_manifest_lists_sizes_hashes_names_shapes_and_parity(small_export):
    export_dir = small_export["export_dir"]
    with open(os.path.join(export_dir, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["version"] == 1
    for key, entry in manifest["artifacts"].items():
        path = os.path.join(export_dir, entry["path"])
        assert fingerprint(path) == {"bytes": entry["bytes"], "sha256": entry["sha256"]}, key
    decoder = manifest["artifacts"]["decoder_saved_model"]
    assert decoder["inputs"] == {"noise": [-1, small_export["vae"].config.latent_dim],
                                 "temperature": [-1]}
    assert decoder["outputs"] == {"image": [-1, 28, 28, 1], "logits": [-1, 28, 28, 1]}
    assert decoder["parity_vs_keras"] == small_export["parity"]["decoder_saved_model"]
    assert manifest["artifacts"]["encoder_onnx"]["inputs"] == {"image": [-1, 28, 28, 1]}
    assert manifest["artifacts"]["decoder_int8_onnx"]["int8_vs_fp32_onnx"] == small_export[
        "int8"]


def test_the_same_hierarchy_exported_again_is_not_another_model(tmp_path):
    """A hierarchy's level sizes are a tuple in its record and a list in manifest.json:
    exporting the same run again is a new version of the same model, and other level
    sizes are refused naming them."""
    from keras_vae.config import ModelConfig, TrainConfig

    def hierarchy(levels):
        return TrainConfig(model=ModelConfig(latent_dim=levels)).for_data(
            (28, 28, 1), "8-bit", ("shirt", "shoe"))

    with open(tmp_path / "manifest.json", "w") as f:
        json.dump({"model": model_identity(hierarchy((32, 16)))}, f)
    refuse_other_model(str(tmp_path), hierarchy((32, 16)))
    with pytest.raises(UsageError, match=r"latent_dim \[32, 16\] \(this run: \[32, 8\]\)"):
        refuse_other_model(str(tmp_path), hierarchy((32, 8)))
