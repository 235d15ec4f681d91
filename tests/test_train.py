"""Specification of `python -m keras_vae.train`: artifacts, reproducibility, refusals."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
from PIL import Image

from export.onnx_model import run_onnx
from export.saved_model import run_saved_model
from export.verify import FP32_TOLERANCE, parity_latents
from keras_vae.measure.pictures import LABEL_MARGIN
from keras_vae.run.cli import run_command
from keras_vae.train import main
from tests.conftest import TRAINED_RUN_FLAGS

SMALL_RUN = ["--dataset", "binarized_mnist", "--epochs", "1", "--max-examples", "300",
             "--latent-dim", "4", "--hidden-dims", "64", "--no-jit", "--verbose", "2"]


def _train(run_dir: str, *extra: str) -> int:
    return run_command(main, "keras_vae.train", [*SMALL_RUN, "--out", run_dir, *extra])


@pytest.fixture(scope="module")
def short_run(trained_run) -> str:
    """The session's shared training run (never modified here)."""
    return trained_run


@pytest.fixture(scope="module")
def summary(short_run) -> dict:
    with open(os.path.join(short_run, "summary.json")) as f:
        return json.load(f)


def test_summary_reports_the_run_in_nats_per_example(summary):
    assert summary["dataset"] == "binarized_mnist"
    assert summary["config"]["model"] == {"latent_dim": 4, "hidden_dims": [64], "beta": 1.0,
                                          "free_bits": 0.0, "dropout": 0.0,
                                          "seed": 0, "arch": "mlp", "objective": "elbo",
                                          "iwae_k": 1, "prior": "normal",
                                          "pseudo_inputs": 0, "image_shape": [28, 28, 1],
                                          "likelihood": "bernoulli",
                                          "mixture_components": 0, "label_names": [],
                                          "conditional": False, "class_components": 1}
    assert summary["config"]["pixel_kind"] == "binary" and summary["measures_likelihood"]
    assert summary["losses_bound"] == "log p(x)"
    assert summary["image_shape"] == [28, 28, 1] and summary["likelihood"] == "bernoulli"
    assert summary["test_bits_per_dim"] == pytest.approx(
        summary["test_neg_elbo"] / (784 * np.log(2)))
    assert summary["config"]["epochs"] == summary["epochs_completed"] == 1
    assert len(summary["epoch_seconds"]) == 1 and summary["epoch_seconds"][0] > 0
    assert 0 < summary["train_seconds"][0] < summary["epoch_seconds"][0]
    assert summary["train_examples_per_second"] == pytest.approx(
        1000 / summary["train_seconds"][0])
    for key in ("val_neg_elbo", "test_neg_elbo", "test_reconstruction", "test_kl"):
        assert 0 < summary[key] < 600, key
    assert summary["test_neg_elbo"] == pytest.approx(
        summary["test_reconstruction"] + summary["test_kl"], rel=1e-5)


def test_every_artifact_exists_under_the_run_directory(short_run, summary):
    artifacts = summary["artifacts"]
    assert set(artifacts) >= {"checkpoint", "decoder_saved_model", "decoder_onnx",
                              "samples_png", "reconstructions_png", "encoder_saved_model",
                              "encoder_onnx", "decoder_int8_onnx", "decoder_tflite"}
    for path in artifacts.values():
        assert not os.path.isabs(path) and os.path.exists(os.path.join(short_run, path))
    assert os.path.exists(os.path.join(short_run, artifacts["decoder_saved_model"],
                                       "saved_model.pb"))
    assert os.path.isdir(os.path.join(short_run, "tensorboard"))
    with open(os.path.join(short_run, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["1"]  # counted from 1, as the console counts
    assert {"loss", "reconstruction", "kl", "val_loss", "epoch_seconds", "train_seconds",
            "peak_rss_mb"} <= set(rows[0])
    assert 0 < summary["training_peak_rss_mb"] == float(rows[0]["peak_rss_mb"])


def test_a_finished_run_keeps_no_resume_state_and_reports_its_size(short_run, summary):
    """The backup exists for crash recovery and goes when the run completes; best.keras
    holds no optimizer state; summary.json says what the run costs on disk."""
    assert not os.path.exists(os.path.join(short_run, "backup"))
    with zipfile.ZipFile(os.path.join(short_run, "best.keras")) as archive:
        with archive.open("model.weights.h5") as f, h5py.File(f) as weights:
            assert "optimizer" not in weights and "layers" in weights
    files = sum(os.path.getsize(os.path.join(folder, name))
                for folder, _, names in os.walk(short_run) for name in names)
    assert 0.9 * files < summary["run_dir_bytes"] <= files


def test_pictures_are_an_8x8_sample_grid_and_input_output_row_pairs(short_run, summary):
    samples = Image.open(os.path.join(short_run, summary["artifacts"]["samples_png"]))
    reconstructions = Image.open(
        os.path.join(short_run, summary["artifacts"]["reconstructions_png"]))
    assert samples.size == (2 * (8 * 30 - 2),) * 2
    assert reconstructions.size == (LABEL_MARGIN + 2 * (16 * 30 - 2), 2 * (4 * 30 - 2))
    assert 0 < np.asarray(samples).std()


def test_onnx_decoder_matches_the_saved_model(short_run, summary):
    z = parity_latents(4)
    inputs = {"noise": z, "temperature": np.full(len(z), 0.8, np.float32)}
    from_onnx = run_onnx(os.path.join(short_run, summary["artifacts"]["decoder_onnx"]),
                         inputs)
    from_saved_model = run_saved_model(
        os.path.join(short_run, summary["artifacts"]["decoder_saved_model"]), inputs)
    for name in ("image", "logits"):
        assert from_onnx[name].shape == (len(z), 28, 28, 1)
        assert np.max(np.abs(from_onnx[name] - from_saved_model[name])) <= 1e-5
    assert (summary["export"]["parity_vs_keras"]["decoder_onnx"]["max_scaled_diff"]
            <= FP32_TOLERANCE)


@pytest.mark.slow
def test_same_command_and_seed_give_the_same_results(short_run, summary, tmp_path):
    again_dir = str(tmp_path / "again")
    assert run_command(main, "keras_vae.train",
                       [*TRAINED_RUN_FLAGS, "--no-export", "--out", again_dir]) == 0
    with open(tmp_path / "again" / "summary.json") as f:
        again = json.load(f)
    for key in ("val_neg_elbo", "test_neg_elbo", "test_reconstruction", "test_kl"):
        assert again[key] == pytest.approx(summary[key], rel=1e-5), key


def test_a_finished_run_is_refused_and_left_untouched(short_run, capsys):
    summary_path = os.path.join(short_run, "summary.json")
    before = open(summary_path, "rb").read(), os.path.getmtime(summary_path)
    assert _train(short_run) == 2
    assert "holds a finished run; pass --resume" in capsys.readouterr().err
    assert (open(summary_path, "rb").read(), os.path.getmtime(summary_path)) == before


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "argument --epochs: '0' must be at least 1"),
    (["--batch-size", "ten"], "argument --batch-size: 'ten' is not a whole number"),
    (["--learning-rate", "nan"], "argument --learning-rate: 'nan' is not a finite number"),
    (["--hidden-dims", "400,-3"], "argument --hidden-dims: '400,-3' is not a comma-separated"),
    (["--dataset", "no_such_set"], "unknown dataset 'no_such_set': give a TFDS name"),
    (["--dynamic-binarization", "--max-examples", "300"], "binarized_mnist is already binary"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_bad_flags_get_one_line_and_exit_code_2(flags, message, capsys, tmp_path):
    args = ["--dataset", "binarized_mnist", "--out", str(tmp_path / "run"), *flags]
    assert run_command(main, "keras_vae.train", args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "run").exists()


def test_offline_unprepared_dataset_exits_1_with_one_line(offline, empty_data_dir, tmp_path,
                                                          capsys):
    args = ["--dataset", "fashion_mnist", "--data-dir", empty_data_dir,
            "--out", str(tmp_path / "run")]
    assert run_command(main, "keras_vae.train", args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'fashion_mnist' is not prepared" in err


def test_the_module_entry_point_reports_usage_errors_without_traceback():
    result = subprocess.run([sys.executable, "-m", "keras_vae.train", "--epochs", "-1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("keras_vae.train: error:")


@pytest.mark.slow
def test_early_stopping_ends_the_run_and_keeps_the_best_epoch(binarized_mnist_source,
                                                               tmp_path):
    """100 training images and a wide network overfit within a few epochs."""
    run_dir = str(tmp_path / "early")
    assert run_command(main, "keras_vae.train", [
        "--dataset", "binarized_mnist", "--epochs", "60", "--max-examples", "100",
        "--hidden-dims", "256", "--learning-rate", "0.01", "--batch-size", "20",
        "--early-stopping-patience", "2", "--no-export", "--no-jit", "--verbose", "0",
        "--out", run_dir]) == 0
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        validation = [float(row["val_loss"]) for row in csv.DictReader(f)]
    assert summary["epochs_completed"] == len(validation) < 60
    assert summary["best_epoch"] == int(np.argmin(validation)) + 1 == len(validation) - 2
    assert summary["val_neg_elbo"] == pytest.approx(min(validation))
    assert summary["export"] == {"skipped": f"python -m export {run_dir}"}  # --no-export
    assert not os.path.exists(os.path.join(run_dir, "export"))


@pytest.mark.slow
def test_a_failed_export_still_leaves_a_complete_evaluable_run(binarized_mnist_source,
                                                               tmp_path, capsys):
    """The run directory holds a file where the export directory goes: the export fails
    with its own line, the trained run is complete, and the line says how to retry."""
    from keras_vae.run.layout import load_run

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "export").write_text("not a directory")
    assert _train(str(run_dir)) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"retry the export with: python -m export {run_dir}" in error
    with open(run_dir / "summary.json") as f:
        written = json.load(f)
    assert written["epochs_completed"] == 1 and np.isfinite(written["test_neg_elbo"])
    assert written["export"] == {"skipped": f"python -m export {run_dir}"}
    assert "decoder_onnx" not in written["artifacts"]
    _, config = load_run(str(run_dir))  # what evaluate and plot start from
    assert config.dataset == "binarized_mnist"

    (run_dir / "export").unlink()
    from export.__main__ import main as export_main
    assert run_command(export_main, "export", [str(run_dir)]) == 0
    with open(run_dir / "summary.json") as f:
        assert json.load(f)["export"]["version"] == 1


@pytest.mark.slow
def test_8_bit_images_get_a_hierarchy_with_a_vampprior_top_when_no_flag_sets_them(
        tmp_path, capsys):
    """The 8-bit defaults (`config.default_latent_and_prior`, tested there for every
    case): the first line of the run says what it got, and config.json records it for
    every later command."""
    images = np.random.default_rng(0).integers(0, 256, (200, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "data.npz", images=images)
    run_dir = str(tmp_path / "run")
    assert run_command(main, "keras_vae.train", [
        "--dataset", f"npz:{tmp_path / 'data.npz'}", "--epochs", "1", "--batch-size", "50",
        "--hidden-dims", "16", "--no-export", "--no-jit", "--verbose", "0", "--out",
        run_dir]) == 0  # no XLA: its compile took 20 of the test's 27 s
    assert ("8-bit pixels, logistic likelihood, latent levels 32, 16, VampPrior of 500 "
            "pseudo-inputs on the top level;" in capsys.readouterr().out)
    with open(os.path.join(run_dir, "config.json")) as f:
        model = json.load(f)["model"]
    assert (model["latent_dim"], model["prior"], model["pseudo_inputs"]) == (
        [32, 16], "vamp", 500)
