"""Specification of export/manifest.py and the manifest.json an export writes."""

from __future__ import annotations

import json
import os

from export.manifest import fingerprint


def test_manifest_lists_sizes_hashes_names_shapes_and_parity(small_export):
    export_dir = small_export["export_dir"]
    with open(os.path.join(export_dir, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["version"] == 1
    for key, entry in manifest["artifacts"].items():
        path = os.path.join(export_dir, entry["path"])
        assert fingerprint(path) == {"bytes": entry["bytes"], "sha256": entry["sha256"]}, key
    decoder = manifest["artifacts"]["decoder_saved_model"]
    assert decoder["inputs"] == {"z": [-1, small_export["vae"].config.latent_dim]}
    assert decoder["outputs"] == {"image": [-1, 28, 28, 1], "logits": [-1, 28, 28, 1]}
    assert decoder["parity_vs_keras"] == small_export["parity"]["decoder_saved_model"]
    assert manifest["artifacts"]["encoder_onnx"]["inputs"] == {"image": [-1, 28, 28, 1]}
    assert manifest["artifacts"]["decoder_int8_onnx"]["int8_vs_fp32_onnx"] == small_export[
        "int8"]
