"""Specification of `python -m keras_vae.score`, the Python face's `score` and
serving/score.py: the same numbers for the same files, and bad input in one line."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from keras_vae.run.cli import run_command
from keras_vae.score import main
from serving import score as edge_score
from serving.vae_cli import SampleError
from tests import hostile_images
from tests.conftest import copy_edge_files, strokes


def _rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _folder(path, images: np.ndarray) -> str:
    os.makedirs(path)
    for i, image in enumerate(images):
        Image.fromarray(image[..., 0]).save(os.path.join(path, f"{i:02d}.png"))
    return str(path)


@pytest.fixture(scope="module")
def digits_and_noise() -> np.ndarray:
    """Four binarized MNIST test digits (0/255) and two images of uniform noise."""
    from keras_vae.data.pipeline import load_splits
    from keras_vae.measure.scoring import to_model_pixels

    digits = to_model_pixels(load_splits("binarized_mnist", max_examples=4)["test"])
    noise = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
    return np.concatenate([digits[:4], noise])


def test_the_command_scores_a_folder_as_python_and_the_edge_scorer_do(run_copy, tmp_path,
                                                                     digits_and_noise):
    """The command's scores.csv for a folder equals the Python face's numbers for the same
    images and serving/score.py's for the same files through the exported scorer.onnx;
    noise is flagged, the run's own kind of image is not; the pictures are written."""
    import keras_vae

    folder = _folder(tmp_path / "images", digits_and_noise)
    out = str(tmp_path / "scored")
    assert run_command(main, "keras_vae.score", [run_copy, f"folder:{folder}", "--out", out]) == 0
    rows = _rows(os.path.join(out, "scores.csv"))
    assert [os.path.basename(r["id"]) for r in rows] == [f"{i:02d}.png" for i in range(6)]
    assert [int(r["flagged"]) for r in rows][4:] == [1, 1]
    assert sum(int(r["flagged"]) for r in rows[:4]) <= 1
    python = keras_vae.load(run_copy).score(digits_and_noise)
    np.testing.assert_allclose([float(r["score"]) for r in rows], python["score"],
                               rtol=1e-3, atol=1e-3)
    edge_csv = str(tmp_path / "edge.csv")
    edge_score.main([os.path.join(run_copy, "export", "scorer.onnx"), folder, "--out",
                     edge_csv])
    edge = _rows(edge_csv)
    np.testing.assert_allclose([float(r["neg_log_likelihood_nats"]) for r in edge],
                               [float(r["neg_log_likelihood_nats"]) for r in rows], rtol=1e-4)
    assert [r["flagged"] for r in edge] == [r["flagged"] for r in rows]
    for picture in ("scores.png", "histogram.png"):
        assert Image.open(os.path.join(out, picture)).size[0] > 200


def test_a_calibration_says_how_far_it_is(run_copy, capsys):
    """Calibrating on a large validation split takes minutes (14 for 8,400 colour crops of
    a spatial model): it says how far it is, once a tenth in a log."""
    from keras_vae.measure.scoring import calibration_for
    from keras_vae.run.layout import load_run

    vae, config = load_run(run_copy)
    calibration = calibration_for(run_copy, vae, config, k=2)  # not the default: measured
    lines = capsys.readouterr().out.splitlines()
    total = len(calibration.validation_scores)
    assert lines[0].startswith(f"calibrating the anomaly score on the run's {total} ")
    assert lines[-1].startswith(f"calibrated on {total:,}/{total:,} validation images, ")
    assert 2 <= len(lines) <= 11


BAD_DATA = [
    ("a bomb in the folder", lambda t: hostile_images.png_declaring(t / "in" / "bomb.png",
                                                                    16_000, 16_000),
     "bomb.png: 16000×16000 is 256.0 million pixels, above the limit"),
    ("images of another size", lambda t: Image.fromarray(np.zeros((20, 20), np.uint8)).save(
        t / "in" / "small.png"), "has images of 28×28 (3), 20×20 (1); the run's are 28×28"),
]


@pytest.mark.parametrize("case, spoil, message", BAD_DATA, ids=[c[0] for c in BAD_DATA])
def test_bad_data_is_one_line_and_nothing_is_written(trained_run, tmp_path, capsys, case,
                                                     spoil, message):
    _folder(tmp_path / "in", strokes(3, seed=0))
    spoil(tmp_path)
    out = tmp_path / "scored"
    code = run_command(main, "keras_vae.score", [trained_run, f"folder:{tmp_path / 'in'}",
                                                 "--out", str(out)])
    error = capsys.readouterr().err
    assert code == 1 and message in error and error.count("\n") == 1
    assert not out.exists()


def test_the_edge_scorer_gives_the_exported_numbers_and_refuses_bad_files(small_export,
                                                                        tmp_path):
    """serving/score.py equals the Keras scorer on the files; a named pipe, a decompression
    bomb, a file of another size or a decoder instead of the scorer are one line each,
    and no CSV is written."""
    from export.endpoints import run_keras
    from export.scorer import scorer_endpoint
    from keras_vae.measure.scoring import Scorer

    images = strokes(5, seed=2)
    folder = _folder(tmp_path / "ok", images)
    scorer_file = small_export["paths"]["scorer_onnx"]
    out = str(tmp_path / "s.csv")
    said = edge_score.main([scorer_file, folder, "--threads", "1", "--out", out])
    assert said.startswith("5 images scored")
    expected = run_keras(scorer_endpoint(Scorer(small_export["vae"], 4,
                                                small_export["calibration"])), images)
    np.testing.assert_allclose([float(r["score"]) for r in _rows(out)], expected["score"],
                               rtol=1e-3, atol=1e-3)
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    hostile_images.named_pipe(bad / "pipe.png")
    hostile_images.png_declaring(bad / "bomb.png", 16_000, 16_000)
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(bad / "small.png")
    with pytest.raises(SampleError) as error:
        edge_score.main([scorer_file, str(bad), "--out", str(tmp_path / "no.csv")])
    said = str(error.value)
    assert "\n" not in said and said.startswith("3 of 8 files cannot be scored")
    for part in ("bomb.png: 16000×16000 pixels, above the limit", "pipe.png: not a regular "
                 "file", "small.png: 20×20, the model's images are 28×28"):
        assert part in said
    assert not (tmp_path / "no.csv").exists()
    with pytest.raises(SampleError, match="is a decoder, not the scorer; pass scorer.onnx"):
        edge_score.main([small_export["paths"]["decoder_onnx"], folder])


@pytest.mark.slow  # a Python of its own in a subprocess
def test_the_edge_scorer_runs_where_tensorflow_is_not_installed(small_export, tmp_path):
    """Copied with sample.py beside it onto a machine with numpy, onnxruntime and Pillow."""
    python = os.environ.get("EDGE_PYTHON")
    if not python:
        pytest.skip("EDGE_PYTHON (a Python with requirements-edge.txt alone) is not set")
    copy_edge_files(tmp_path)
    folder = _folder(tmp_path / "images", strokes(3, seed=4))
    done = subprocess.run([python, "score.py", small_export["paths"]["scorer_onnx"], folder,
                           "--out", "s.csv"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(_rows(tmp_path / "s.csv")) == 3


@pytest.mark.slow  # runs the command in a subprocess
@pytest.mark.parametrize("command", ["keras_vae.score", "keras_vae.score_bench"])
def test_a_usage_mistake_is_one_line_with_no_tensorflow_start_up(tmp_path, command):
    """Neither command loads TensorFlow before its arguments are checked."""
    import sys

    args = ([str(tmp_path), "fashion_mnist", "--out", str(tmp_path / "o"), "--fpr", "2"]
            if command == "keras_vae.score" else [str(tmp_path / "none")])
    done = subprocess.run([sys.executable, "-m", command, *args], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"{command}: error: ")


def test_the_bench_measures_every_score_on_every_set(trained_run, tmp_path, capsys):
    """`python -m keras_vae.score_bench` on a short run, its photographs from a folder of
    JPEGs: an AUROC for every score on every set, the threshold's false-positive rate on
    the test images and each set's share flagged; noise is told from digits."""
    import json

    from keras_vae.score_bench import main as bench_main

    os.makedirs(tmp_path / "photos")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(
        tmp_path / "photos" / "a.jpg")
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    assert run_command(bench_main, "keras_vae.score_bench", [
        str(run), "--count", "20", "--k", "2", "--photos", str(tmp_path / "photos")]) == 0
    with open(run / "score_bench.json") as f:
        result = json.load(f)
    assert list(result["aurocs"]) == ["digits", "upside-down", "inverted", "noise", "photos"]
    for row in result["aurocs"].values():
        assert {"likelihood", "typicality", "other views", "default"} <= set(row)
        assert all(0.0 <= value <= 1.0 for value in row.values())
    assert result["aurocs"]["noise"]["default"] > 0.9
    assert 0.0 <= result["test_flagged"] <= 1.0 and result["flagged"]["noise"] > 0.5
    assert "| noise |" in capsys.readouterr().out
