"""Specification of `python -m export RUN_DIR`."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from export.__main__ import main
from keras_vae.cli import run_command


def test_reexport_adds_a_version_and_updates_summary_and_manifest(trained_run):
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


def test_export_to_a_shared_serving_base(trained_run, tmp_path):
    base = str(tmp_path / "models")
    assert run_command(main, "export", [trained_run, "--export-dir", base]) == 0
    assert os.listdir(os.path.join(base, "vae_decoder")) == ["1"]


@pytest.mark.parametrize("make_args, code, message", [
    (lambda run, tmp: [str(tmp / "missing")], 2, "has no best.keras"),
    (lambda run, tmp: [], 2, "the following arguments are required: run_dir"),
    (lambda run, tmp: [_corrupt_copy(run, tmp)], 1, "cannot load"),
])
def test_bad_input_gets_one_line(trained_run, tmp_path, capsys, make_args, code, message):
    assert run_command(main, "export", make_args(trained_run, tmp_path)) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def _corrupt_copy(run_dir: str, tmp_path) -> str:
    copy = tmp_path / "corrupt"
    copy.mkdir()
    data = open(os.path.join(run_dir, "best.keras"), "rb").read()
    (copy / "best.keras").write_bytes(data[: len(data) // 2])
    shutil.copy(os.path.join(run_dir, "summary.json"), copy / "summary.json")
    return str(copy)
