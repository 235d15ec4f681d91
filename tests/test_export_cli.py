"""Specification of `python -m export RUN_DIR`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from export.__main__ import main
from export.onnx_model import read_metadata
from keras_vae.run.cli import run_command


def test_reexport_adds_a_version_and_updates_summary_and_manifest(run_copy):
    trained_run = run_copy
    assert run_command(main, "export", [trained_run]) == 0
    with open(os.path.join(trained_run, "summary.json")) as f:
        summary = json.load(f)
    assert summary["export"]["version"] == 2
    assert summary["artifacts"]["decoder_saved_model"] == os.path.join("export", "vae_decoder",
                                                                       "2")
    assert summary["artifacts"]["encoder_saved_model"] == os.path.join("export", "vae_encoder",
                                                                       "2")
    for key in ("decoder_onnx", "encoder_onnx", "decoder_int8_onnx", "decoder_tflite"):
        assert os.path.isfile(os.path.join(trained_run, summary["artifacts"][key])), key
    with open(os.path.join(trained_run, "export", "manifest.json")) as f:
        assert json.load(f)["version"] == 2
    assert sorted(os.listdir(os.path.join(trained_run, "export", "vae_decoder"))) == ["1", "2"]


def test_export_to_a_shared_serving_base_prints_no_tensorflow_log_lines(run_copy, tmp_path):
    # A private copy: exporting records the new export in the run's summary.
    base = str(tmp_path / "models")
    done = subprocess.run([sys.executable, "-m", "export", run_copy, "--export-dir", base],
                          capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items()
                               if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert os.listdir(os.path.join(base, "vae_decoder")) == ["1"]


def test_an_interrupted_run_exports_with_its_dataset_in_the_metadata(run_copy, tmp_path):
    os.remove(os.path.join(run_copy, "summary.json"))  # as if training had been stopped
    base = str(tmp_path / "models")
    assert run_command(main, "export", [run_copy, "--export-dir", base]) == 0
    metadata = read_metadata(os.path.join(base, "decoder.onnx"))
    assert metadata["dataset"] == "binarized_mnist" and metadata["prior"] == "normal"
    assert not os.path.exists(os.path.join(run_copy, "summary.json"))


def test_a_failed_verification_is_recorded_in_the_summary_and_publishes_nothing(
        run_copy, monkeypatch):
    from export import pipeline, verify
    from keras_vae.run.cli import RunFailure

    monkeypatch.setattr(verify, "FP32_TOLERANCE", 0.0)  # ONNX never matches bit for bit
    before = sorted(os.listdir(os.path.join(run_copy, "export", "vae_decoder")))
    with pytest.raises(RunFailure, match="verification failed: decoder_onnx differs by"):
        pipeline.export_run(run_copy)
    with open(os.path.join(run_copy, "summary.json")) as f:
        written = json.load(f)
    assert "verification failed" in written["export"]["error"]
    assert sorted(os.listdir(os.path.join(run_copy, "export", "vae_decoder"))) == before


def test_an_int8_decoder_that_misses_its_bounds_is_left_out_and_the_rest_published(
        run_copy, monkeypatch, capsys):
    """A platform engineer's SavedModel does not wait on the edge's optional int8 file:
    the verified formats are published as the next version, and the int8 decoder of the
    earlier export goes too, so no sampler takes it for this decoder's."""
    from export import pipeline

    export_dir = os.path.join(run_copy, "export")
    assert os.path.isfile(os.path.join(export_dir, "decoder_int8.onnx"))  # version 1's
    tried = []
    monkeypatch.setattr(pipeline, "int8_misses", lambda quality: tried.append(
        quality["weight_scales"]) or ["int8 decoder is 42% of fp32 (bound 30%)"])
    assert run_command(main, "export", [run_copy]) == 0
    assert tried == ["per tensor", "per channel"]
    assert ("decoder_int8_onnx    left out, every int8 scheme missed a bound: int8 decoder "
            "is 42% of fp32 (bound 30%)") in capsys.readouterr().out
    assert not os.path.exists(os.path.join(export_dir, "decoder_int8.onnx"))
    with open(os.path.join(run_copy, "summary.json")) as f:
        summary = json.load(f)
    assert summary["export"]["version"] == 2 and "decoder_int8_onnx" not in summary["artifacts"]
    assert summary["export"]["int8_vs_fp32_onnx"]["left_out"] == (
        "int8 decoder is 42% of fp32 (bound 30%)")
    for key in ("decoder_saved_model", "decoder_onnx", "encoder_onnx", "decoder_tflite"):
        assert os.path.exists(os.path.join(run_copy, summary["artifacts"][key])), key
    with open(os.path.join(export_dir, "manifest.json")) as f:
        manifest = json.load(f)
    assert "decoder_int8_onnx" not in manifest["artifacts"]
    assert manifest["left_out"]["decoder_int8_onnx"]["weight_scales"] == "per channel"
    with open(os.path.join(export_dir, "web", "model.json")) as f:
        assert json.load(f)["decoders"] == {"fp32": "decoder.onnx"}
    assert "decoder_int8.onnx" not in os.listdir(os.path.join(export_dir, "web"))


def test_another_model_is_refused_from_a_shared_export_dir_unless_asked(run_copy, tmp_path,
                                                                        capsys):
    """The shared directory holds this run's export; a run of other data and latent size
    (its record edited so) is refused in one line naming what differs, before TensorFlow
    loads, and published as the next version with --replace-model. Paths print clean."""
    base = os.path.join(run_copy, "..", "models")
    assert run_command(main, "export", [run_copy, "--export-dir", base]) == 0
    out = capsys.readouterr().out
    assert "/../" not in out and f"→ {os.path.normpath(base)}" in out
    stages = [line.split(":")[1].split()[:2] for line in out.splitlines()
              if line.startswith("export: ")]  # each stage said as it starts, in order
    assert stages == [["the", "decoder,"], ["the", "anomaly"], ["verifying", "every"]]
    other = str(tmp_path / "other")
    shutil.copytree(run_copy, other)
    with open(os.path.join(other, "config.json")) as f:
        record = json.load(f)
    record["dataset"] = "npz:other.npz"
    with open(os.path.join(other, "config.json"), "w") as f:
        json.dump(record, f)
    before = sorted(os.listdir(os.path.join(base, "vae_decoder")))
    assert run_command(main, "export", [other, "--export-dir", base]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds the export of another model (dataset " in err
    assert "'binarized_mnist' (this run: 'npz:other.npz')" in err and "--replace-model" in err
    assert sorted(os.listdir(os.path.join(base, "vae_decoder"))) == before
    assert run_command(main, "export", [other, "--export-dir", base, "--replace-model"]) == 0
    assert sorted(os.listdir(os.path.join(base, "vae_decoder"))) == ["1", "2"]
